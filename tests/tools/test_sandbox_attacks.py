"""The attack suite: code a model might run in the python tool, each attack blocked or contained.

Each row runs real code in a real sandboxed kernel and then checks three things: the attack's effect did not happen,
the kernel answers again (restarted if it had to be), and this host process is unharmed. The README's table of
results comes from this file (see the 'Tools and the sandbox' section).
"""

import os
import socket
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from mmcot.tools import ToolCall, ToolContext, run_tool_call
from mmcot.tools.python_tool import PythonTool

from .conftest import ATTACKS, LIMITS

HOME = str(Path.home())
VENV = str(Path(os.sys.prefix))


@pytest.fixture(scope="module")
def loopback_server():
    """A TCP server on the host's loopback that records every connection it accepts."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted = []

    def serve():
        while True:
            try:
                accepted.append(server.accept())
            except OSError:
                return

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1], accepted
    server.close()


@pytest.fixture
def run(attack_tool, kernel_state):
    ctx = ToolContext(state=kernel_state)  # the rows share a kernel while it survives them

    def run_code(code: str):
        return run_tool_call(ToolCall("python", {"code": code}), ctx, {"python": attack_tool})

    yield run_code
    # the kernel comes back (restarted if the attack killed it) and the host is unharmed
    assert run_code("print(6 * 7)").text == "42"


def test_read_etc_shadow(run):
    result = run("print(open('/etc/shadow').read())")
    assert "FileNotFoundError" in result.error  # there is no /etc in the sandbox at all


def test_read_files_in_the_users_home(run):
    result = run(f"import os\nprint(os.listdir({HOME!r}))\nprint(open({HOME!r} + '/.bashrc').read())")
    assert "FileNotFoundError" in result.error or "PermissionError" in result.error
    assert "PermissionError" in run("print(open('/proc/1/root/etc/passwd').read())").error


def test_write_outside_the_scratch_dir(run, tmp_path):
    for target in (f"{VENV}/pwned", "/usr/pwned", "/pwned", str(tmp_path / "pwned")):
        result = run(f"open({target!r}, 'w').write('x')")
        assert result.error and ("OSError" in result.error or "Error" in result.error.split(":")[0]), target
        assert not Path(target).exists()
    assert run("open('/tmp/ok.txt', 'w').write('fine')").text == "4"  # the scratch dir is writable


def test_connect_to_a_loopback_server_on_the_host(run, loopback_server):
    port, accepted = loopback_server
    result = run(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)")
    assert "ConnectionRefusedError" in result.error
    result = run(f"import socket\nsocket.create_connection(('localhost', {port}), timeout=2)")
    assert result.error
    assert accepted == []


def test_fork_bomb(run):
    result = run("import os\nwhile True:\n    os.fork()")
    # bounded by RLIMIT_NPROC; the processes it left behind are killed with the kernel, which restarts
    assert result.metadata["status"] in ("killed", "timeout", "died")
    assert "restarted" in result.error


def test_exceed_the_memory_limit(run):
    # address space runs out fast when the pages are not touched; touched pages hit the same limit, only slower
    result = run("blocks = []\nwhile True:\n    blocks.append(np.empty(16 * 2**20, dtype=np.uint8))")
    assert "MemoryError" in result.error
    assert "MemoryError" in run("x = bytearray(64 * 2**30)").error


def test_infinite_loop(run):
    run("state = 'kept'")
    result = run("while True:\n    pass")
    assert result.metadata["status"] == "timeout" and "KeyboardInterrupt" in result.error
    assert run("state").text == "'kept'"


def test_infinite_loop_that_ignores_interrupts(run):
    result = run("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass")
    assert result.metadata["status"] == "killed" and "restarted" in result.error


def test_kill_the_parent(run):
    assert "PermissionError" in run("import os\nos.kill(os.getppid(), 9)").error


def test_kill_pid_1(run):
    assert "PermissionError" in run("import os\nos.kill(1, 9)").error


def test_kill_everything_and_mmcot(run):
    result = run("import os\nos.kill(-1, 9)")  # only the kernel's own processes are in reach
    assert result.error
    result = run(f"import os\nos.kill({os.getpid()}, 9)")  # mmcot's pid means nothing inside the PID namespace
    assert "ProcessLookupError" in result.error or "PermissionError" in result.error


def test_fill_the_disk(run):
    result = run("f = open('/tmp/big', 'wb')\nwhile True:\n    f.write(b'x' * 2**20)")
    assert "File too large" in result.error  # RLIMIT_FSIZE
    code = "import itertools\nfor n in itertools.count():\n    open(f'/tmp/f{n}', 'wb').write(b'x' * 8 * 2**20)"
    assert "No space left on device" in run(code).error  # the scratch tmpfs is full; the host disk is not touched


def test_ctypes_escapes(run):
    code = (
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "for name, call in [('setuid', lambda: libc.setuid(0)), ('unshare', lambda: libc.unshare(0x10000000)),\n"
        "                   ('mount', lambda: libc.mount(b'none', b'/usr', b'tmpfs', 0, None)),\n"
        "                   ('ptrace', lambda: libc.ptrace(16, 1, 0, 0)), ('chroot', lambda: libc.chroot(b'/tmp'))]:\n"
        "    print(name, call(), ctypes.get_errno())"
    )
    lines = run(code).text.splitlines()
    assert len(lines) == 5 and all(line.endswith(" -1 1") for line in lines), lines  # all fail with EPERM


def test_os_and_subprocess_escapes(run):
    code = (
        "import os, subprocess\n"
        "for attempt in (lambda: os.setuid(0), lambda: os.chroot('/tmp'), lambda: os.chmod('/usr/bin', 0o777)):\n"
        "    try:\n        attempt()\n    except OSError as e:\n        print(type(e).__name__)\n"
        "print(subprocess.run('id -u; cat /etc/shadow; ls /root; su -c id; mount -t tmpfs none /usr', shell=True,\n"
        "                     capture_output=True, text=True, input=''))"
    )
    result = run(code)
    lines = result.text.splitlines()
    assert lines[:3] == ["PermissionError", "PermissionError", "OSError"]  # the last: a read-only file system
    assert "stdout='0\\n'" not in result.text and "root:" not in result.text and "must be superuser" in result.text


def test_swap_the_kernels_socket_for_a_symlink(run):
    # mmcot (root) reconnects to these sockets; a symlink there would point it at a host socket
    code = "import os\nos.unlink('/opt/mmcot/sockets/kernel-2')\nos.symlink('/run/host.sock', '/opt/mmcot/sockets/kernel-2')"
    assert "PermissionError" in run(code).error
    assert "PermissionError" in run("open('/opt/mmcot/sockets/new', 'w')").error


def test_limits_are_in_force(run, attack_tool):
    code = (
        "import os, resource\nstatus = dict(l.split(':\\t') for l in open('/proc/self/status').read().splitlines())\n"
        "print(os.getuid() != 0, status['CapEff'], status['NoNewPrivs'], status['Seccomp'])\n"
        "print([resource.getrlimit(getattr(resource, 'RLIMIT_' + n))[0] for n in 'AS CPU NPROC FSIZE NOFILE CORE'.split()])"
    )
    limits = attack_tool.config.sandbox
    expected = [limits.memory_mb << 20, limits.cpu_seconds, limits.max_processes, limits.max_file_mb << 20]
    expected += [limits.max_open_files, 0]
    assert run(code).text.splitlines() == [
        f"{os.geteuid() == 0} 0000000000000000 1 2",  # unprivileged, no capabilities, no-new-privs, seccomp filter
        str(expected),
    ]


def test_gigantic_output(run):
    result = run("print('x' * 20_000_000)")  # one 20 MB message: over the 8 MiB cap, dropped
    assert "some output was lost" in result.text
    result = run("while True:\n    print('y' * 1000)")  # a flood of small ones: capped, then interrupted
    capped = "y" * 100 in result.text and "[output truncated to 2000 of " in result.text
    dropped = "some output was lost" in result.text  # a fast CPU batches the flood into one message over the cap
    assert capped or dropped
    assert len(result.text) < 2000 + 400 and "interrupted" in result.text  # at most max_output_chars, plus the notes
    assert result.metadata["status"] in ("error", "timeout", "killed")  # interrupted (flood or timeout), or killed


def test_use_up_the_cpu_time_limit():
    tool = PythonTool(replace(ATTACKS, sandbox=replace(LIMITS, cpu_seconds=3), timeout_s=60.0, pool_size=0))
    ctx = ToolContext()
    try:
        result = run_tool_call(ToolCall("python", {"code": "while True:\n    pass"}), ctx, {"python": tool})
        assert result.metadata["status"] == "died"
        assert "killed by SIGXCPU: the CPU-time limit" in result.error and "the kernel was restarted" in result.error
        assert run_tool_call(ToolCall("python", {"code": "print(1)"}), ctx, {"python": tool}).text == "1"
    finally:
        ctx.close()
