"""The bubblewrap sandbox around the Python tool's Jupyter kernels: what it isolates, what it does not, the command.

Each kernel runs in ``bwrap`` with its own namespaces (PID, network, IPC, UTS, cgroup, mount), then ``setpriv``
drops to a fresh unprivileged uid (when mmcot runs as root; otherwise the caller's own uid stays, mapped in a new
user namespace) with no capabilities and no-new-privs, then ``sandbox_launch.py`` sets rlimits and a seccomp filter
and execs the kernel. ``wrap(argv, ...)`` builds that command; ``check_sandbox()`` proves it works on this machine.

Isolated:
- network: a new network namespace with only its own loopback; the host's servers, loopback included, are out of
  reach. The kernel talks to mmcot over Unix sockets in a directory inside the sandbox, which mmcot reaches
  through ``/proc/PID/root`` and makes read-only once the kernel is up;
- files: a read-only view of /usr (with the /bin, /lib symlinks), the Python installation and the venv's packages;
  no /etc, /home, /root or project files; a new /proc and a minimal /dev; the only writable place is ``/tmp``, a
  tmpfs of ``scratch_mb``;
- processes: the kernel sees only its own processes, cannot signal mmcot's or PID 1, and dies with mmcot;
- resources: rlimits on address space (``memory_mb`` per process), CPU seconds over the kernel's life, processes
  and threads, file size, open files; no core dumps. Per-call timeouts, output caps and restarts live in kernels.py;
- system calls: new namespaces, mount, ptrace, bpf, keyctl, module loading, reboot and the like are denied.

Not isolated: the host's Linux kernel itself (a kernel exploit escapes any namespace sandbox); the public OS files
under /usr are readable; memory is capped per process, not per sandbox (no cgroup is used, so the worst case is
``memory_mb`` times ``max_processes``); CPU and disk bandwidth are shared with the host. As root, kernels run as
random uids from ``uid_base`` to ``uid_base + 50000``: other software using those uids would share their process
limit. Without root, the process limit counts all the user's processes, so it is set to that count plus
``max_processes`` when the kernel starts.

Opting out (no isolation at all, only for trusted code): ``SandboxConfig(enabled=False)`` or the environment
variable ``MMCOT_SANDBOX=off``.

Check this machine (setup.sh does): ``python -m mmcot.tools.sandbox`` prints what the sandbox runs or why it cannot.
"""

from __future__ import annotations

import functools
import os
import random
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from mmcot.tools.base import cache_dir

LAUNCHER = Path(__file__).with_name("sandbox_launch.py")
INSIDE_LAUNCHER = "/opt/mmcot/launch.py"
SOCKETS = "/opt/mmcot/sockets"  # the kernel binds its Unix sockets here; lock_sockets() then makes it read-only
OPT_OUT_HINT = "set MMCOT_SANDBOX=off to run Python tool code without any isolation (only for trusted code)"


class SandboxUnavailable(RuntimeError):
    """Isolation cannot be set up on this machine; the message says why and how to fix or opt out."""


def _env_enabled() -> bool:
    return os.environ.get("MMCOT_SANDBOX", "on").strip().lower() not in ("off", "0", "false", "no")


@dataclass(frozen=True)
class SandboxConfig:
    enabled: bool = field(
        default_factory=_env_enabled,
        metadata={"help": "Run kernels inside bubblewrap. False (or MMCOT_SANDBOX=off) runs them with no isolation."},
    )
    memory_mb: int = field(default=1024, metadata={"help": "Address-space limit of each sandboxed process (MiB)."})
    cpu_seconds: int = field(default=600, metadata={"help": "CPU seconds over a kernel's life; then it restarts."})
    max_processes: int = field(default=32, metadata={"help": "Processes and threads the kernel's uid may have."})
    max_file_mb: int = field(default=64, metadata={"help": "Largest file the kernel may write (MiB)."})
    max_open_files: int = field(default=256, metadata={"help": "Open file descriptors per process."})
    scratch_mb: int = field(default=256, metadata={"help": "Size of the writable tmpfs /tmp (MiB)."})
    seccomp: bool = field(default=True, metadata={"help": "Deny namespace, mount, ptrace, bpf... system calls."})
    uid_base: int = field(default=180_000, metadata={"help": "As root, kernels run as uids from this one up."})

    def __post_init__(self) -> None:
        for name in ("memory_mb", "cpu_seconds", "max_processes", "max_file_mb", "max_open_files", "scratch_mb"):
            if getattr(self, name) <= 0:
                raise ValueError(f"SandboxConfig.{name} must be positive, got {getattr(self, name)}")


def _python_roots() -> list[Path]:
    """The directories the kernel's interpreter needs: the base installation, the venv, their site-packages."""
    roots = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}
    roots |= {Path(sysconfig.get_path(key)).resolve() for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    # keep only the outermost directories that are not already inside /usr (bound whole)
    roots = {r for r in roots if r.exists() and not r.is_relative_to("/usr")}
    return sorted(r for r in roots if not any(r != o and r.is_relative_to(o) for o in roots))


def _dirs(path: Path) -> list[str]:
    """``--dir`` every parent of ``path`` with mode 0755 (bwrap would make them 0700, unreadable after the uid drop)."""
    args: list[str] = []
    for parent in reversed(path.parents[:-1]):
        args += ["--perms", "0755", "--dir", str(parent)]
    return args


@functools.cache
def _fontlist() -> Path | None:
    """matplotlib's font cache, built once on the host: a fresh sandbox would rebuild it (seconds) at its first plot."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        folder = cache_dir() / f"matplotlib-{version('matplotlib')}"
    except PackageNotFoundError:
        return None
    if not any(folder.glob("fontlist-*.json")):
        env = dict(os.environ, MPLCONFIGDIR=str(folder))
        cmd = [sys.executable, "-c", "import matplotlib.font_manager"]
        subprocess.run(cmd, env=env, capture_output=True, timeout=300, check=False)
    return next(folder.glob("fontlist-*.json"), None)


def _tasks_of(uid: int) -> int:
    """Threads running as ``uid`` on this machine (what RLIMIT_NPROC counts)."""
    count = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            count += int(fields["Threads"]) if int(fields["Uid"].split()[0]) == uid else 0
        except (OSError, KeyError, ValueError):
            continue
    return count


def sandbox_uid(config: SandboxConfig) -> int | None:
    """A fresh uid for one kernel when running as root (so RLIMIT_NPROC binds it alone); None otherwise."""
    return config.uid_base + random.randrange(50_000) if os.geteuid() == 0 else None


def wrap(argv: list[str], uid: int | None, config: SandboxConfig, files: dict[str, int] | None = None) -> list[str]:
    """The command that runs ``argv`` (an interpreter under the Python roots) inside the sandbox as ``uid``.

    ``files`` maps paths under /opt/mmcot to file descriptors whose data bwrap places there read-only (pass the
    descriptors to the child: ``Popen(..., pass_fds=...)``).
    """
    cmd = ["bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup"]
    cmd += ["--die-with-parent", "--new-session", "--hostname", "sandbox"]
    if uid is None:
        cmd += ["--unshare-user"]
    cmd += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            cmd += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            cmd += ["--ro-bind", top, top]
    # the scratch tmpfs first, so Python roots that live under /tmp are bound on top of it rather than hidden
    cmd += ["--size", str(config.scratch_mb << 20), "--perms", "01777", "--tmpfs", "/tmp"]
    for root in _python_roots():
        cmd += _dirs(root) + ["--ro-bind", str(root), str(root)]
    cmd += ["--perms", "0755", "--dir", "/opt", "--perms", "0755", "--dir", "/opt/mmcot"]
    cmd += ["--ro-bind", str(LAUNCHER), INSIDE_LAUNCHER, "--perms", "0777", "--dir", SOCKETS]
    for path, fd in (files or {}).items():
        cmd += ["--perms", "0444", "--ro-bind-data", str(fd), path]
    cmd += ["--proc", "/proc", "--dev", "/dev"]
    fontlist = _fontlist()
    if fontlist is not None:
        mpl = "/tmp/.matplotlib"
        cmd += ["--perms", "01777", "--dir", mpl, "--ro-bind", str(fontlist), f"{mpl}/{fontlist.name}"]
    cmd += ["--chdir", "/tmp"]
    env = {"HOME": "/tmp", "TMPDIR": "/tmp", "PATH": f"{Path(sys.prefix) / 'bin'}:/usr/bin:/bin", "LANG": "C.UTF-8"}
    env |= {"MPLCONFIGDIR": "/tmp/.matplotlib", "IPYTHONDIR": "/tmp/.ipython", "MALLOC_ARENA_MAX": "2"}
    env |= {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd += ["--clearenv"] + [arg for k, v in env.items() for arg in ("--setenv", k, v)]
    if uid is not None:
        cmd += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all"]
        cmd += ["--bounding-set=-all", "--no-new-privs", "--"]
    nproc = config.max_processes if uid is not None else _tasks_of(os.getuid()) + config.max_processes
    limits = {"--as": config.memory_mb << 20, "--cpu": config.cpu_seconds, "--nproc": nproc}
    limits |= {"--fsize": config.max_file_mb << 20, "--nofile": config.max_open_files, "--core": 0}
    limits |= {"--seccomp": int(config.seccomp)}
    cmd += [argv[0], INSIDE_LAUNCHER] + [str(a) for kv in limits.items() for a in kv] + ["--", *argv]
    return cmd


def lock_sockets(init_pid: int) -> None:
    """Once the kernel has bound its sockets, make their directory read-only to it: it can then neither remove
    them nor put a symlink in their place (mmcot, as root, would otherwise follow one to a host socket)."""
    os.chmod(f"/proc/{init_pid}/root{SOCKETS}", 0o755)


@functools.cache
def check_sandbox(config: SandboxConfig) -> None:
    """Prove that a sandboxed interpreter starts and can import the kernel's packages; raise SandboxUnavailable."""
    missing = [tool for tool in ("bwrap", "setpriv") if shutil.which(tool) is None]
    if missing:
        raise SandboxUnavailable(
            f"the Python tool's sandbox needs {' and '.join(missing)} (Debian: apt-get install bubblewrap util-linux; "
            f"./setup.sh installs them), or {OPT_OUT_HINT}"
        )
    cmd = wrap(
        [str(Path(sys.prefix) / "bin" / "python"), "-c", "import ipykernel, PIL, numpy"], sandbox_uid(config), config
    )
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SandboxUnavailable(f"the sandbox did not start ({e}); {OPT_OUT_HINT}") from None
    if out.returncode != 0:
        detail = (out.stderr or out.stdout).strip().splitlines()[-3:]
        hint = (
            " (is the interpreter readable by an unprivileged uid? see setup.sh)" if "ermission" in out.stderr else ""
        )
        raise SandboxUnavailable(f"the sandbox failed on this machine{hint}: {' | '.join(detail)}; {OPT_OUT_HINT}")


if __name__ == "__main__":
    config = SandboxConfig(enabled=True)
    try:
        check_sandbox(config)
    except SandboxUnavailable as e:
        sys.exit(f"sandbox: unavailable: {e}")
    who = f"uids from {config.uid_base}" if os.geteuid() == 0 else f"uid {os.geteuid()} in a user namespace"
    print(f"sandbox: ok (bubblewrap, {who}, roots {', '.join(map(str, _python_roots()))})")
