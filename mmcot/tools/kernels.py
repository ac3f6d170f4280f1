"""Jupyter kernels for the Python tool: one sandboxed ipykernel per conversation, taken from a warm pool.

``Kernel`` starts ``python -m ipykernel_launcher`` inside the bubblewrap sandbox (see sandbox.py) and talks to it
with jupyter_client over Unix sockets that live inside the sandbox (mmcot reaches them through ``/proc/PID/root``,
so nothing on the host is writable by the kernel; their directory is made read-only once the kernel is up). ``Kernel.execute(code)`` returns an
``Execution``: the output in order (stdout, stderr, results; ANSI stripped, capped), PNG images from rich outputs
(a matplotlib figure, a displayed PIL image), the traceback, and what happened: a per-call timeout interrupts the
code (the kernel keeps its state) and kills the kernel if it does not stop; a kernel that dies (a limit, a crash,
``exit()``) is reported, and the caller restarts it.

``KernelPool`` keeps ``pool_size`` kernels started in a background thread so that taking one costs a queue get;
``get_pool(config)`` returns the process-wide pool for a config. Try it::

    python -c "from mmcot.tools.kernels import get_pool, KernelConfig; k = get_pool(KernelConfig()).take(); \
print(k.execute('1+1').text); k.close()"
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmcot.tools.sandbox import (
    SOCKETS,
    SandboxConfig,
    SandboxUnavailable,
    check_sandbox,
    lock_sockets,
    sandbox_uid,
    wrap,
)

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
CONNECTION = "/opt/mmcot/kernel.json"  # where the sandboxed kernel finds its connection file
FLOOD_FACTOR = 50  # output beyond this many times max_output_chars interrupts the run
SIGNAL_HINTS = {
    signal.SIGXCPU: "the CPU-time limit",
    signal.SIGKILL: "a kill (the memory, CPU-time or process limit, or a kill from its own code)",
    signal.SIGXFSZ: "the file-size limit",
    signal.SIGSEGV: "a crash (segmentation fault, often from running out of memory)",
}


@dataclass(frozen=True)
class KernelConfig:
    sandbox: SandboxConfig = field(default_factory=SandboxConfig, metadata={"help": "Isolation and rlimits."})
    timeout_s: float = field(
        default=30.0, metadata={"help": "Per-call wall-clock limit; then the code is interrupted."}
    )
    interrupt_grace_s: float = field(default=3.0, metadata={"help": "Wait after an interrupt before killing."})
    startup_timeout_s: float = field(default=60.0, metadata={"help": "Time a new kernel has to become ready."})
    max_output_chars: int = field(default=20_000, metadata={"help": "Characters of output returned per call."})
    max_images: int = field(default=8, metadata={"help": "Images returned per call."})
    max_message_mb: int = field(default=64, metadata={"help": "Largest message accepted from a kernel (MiB)."})
    pool_size: int = field(default=2, metadata={"help": "Kernels kept started and ready in the warm pool."})
    prelude: str = field(default="", metadata={"help": "Code each kernel runs once it is up, before it is used."})

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.max_output_chars <= 0 or self.pool_size < 0:
            raise ValueError("KernelConfig: timeout_s and max_output_chars must be positive, pool_size >= 0")


@dataclass
class Execution:
    """What one ``execute`` produced. ``status``: ok, error, timeout (interrupted), killed (timed out and did not
    stop, so the kernel was killed) or died (the kernel exited: a limit, a crash, ``exit()``)."""

    text: str = ""
    images: list[bytes] = field(default_factory=list)
    error: str | None = None
    status: str = "ok"
    notes: list[str] = field(default_factory=list)
    chars_seen: int = 0


_zmq_contexts: dict[int, Any] = {}


def _context(max_message_mb: int):
    """A zmq context per message cap: fast reconnects, no linger, and incoming messages capped (a kernel that sends
    a larger one is disconnected for a moment and the message is lost, so it cannot flood mmcot's memory)."""
    if max_message_mb not in _zmq_contexts:
        import zmq

        ctx = zmq.Context()
        ctx.setsockopt(zmq.RECONNECT_IVL, 5)
        ctx.setsockopt(zmq.LINGER, 0)
        ctx.setsockopt(zmq.MAXMSGSIZE, max_message_mb << 20)
        _zmq_contexts[max_message_mb] = ctx
    return _zmq_contexts[max_message_mb]


def _children(pid: int) -> list[int]:
    """Child pids of every thread of ``pid`` (empty when it is gone)."""
    out = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return out


class Kernel:
    """One running ipykernel (sandboxed unless the config opts out) and the client that talks to it."""

    def __init__(self, config: KernelConfig) -> None:
        self.config = config
        self.sandboxed = config.sandbox.enabled
        self.proc: subprocess.Popen | None = None
        self.client: Any = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.pid = 0  # the kernel process (inside the sandbox), as the host sees it
        self._monitor: Any = None  # reports when zmq drops the output connection
        self._start()

    # -- life cycle --------------------------------------------------------------------------------------------
    def _start(self) -> None:
        if self.sandboxed:
            check_sandbox(self.config.sandbox)
        self._tmp = tempfile.TemporaryDirectory(prefix="mmcot-kernel-")
        try:
            self._launch()
        except BaseException:
            self.close()
            raise

    def _launch(self) -> None:
        from jupyter_client.blocking import BlockingKernelClient

        info = {
            "transport": "ipc",
            "ip": f"{SOCKETS}/kernel",
            "key": secrets.token_hex(16),
            "signature_scheme": "hmac-sha256",
        }
        info |= {"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5}
        argv = [str(Path(sys.prefix) / "bin" / "python"), "-m", "ipykernel_launcher", "-f"]
        options = ["--HistoryManager.enabled=False", "--IPKernelApp.log_level=CRITICAL"]
        with open(self._log_path(), "wb") as log:
            if self.sandboxed:
                read, write = os.pipe()
                os.write(write, json.dumps(info).encode())
                os.close(write)
                uid = sandbox_uid(self.config.sandbox)
                cmd = wrap([*argv, CONNECTION, *options], uid, self.config.sandbox, files={CONNECTION: read})
                self.proc = subprocess.Popen(
                    cmd,
                    pass_fds=(read,),
                    start_new_session=True,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
                os.close(read)
                init = self._sandbox_init()
                info["ip"] = f"/proc/{init}/root{SOCKETS}/kernel"  # the sockets stay inside the sandbox
            else:
                info["ip"] = f"{self._tmp.name}/kernel"
                conn = Path(self._tmp.name) / "kernel.json"
                conn.write_text(json.dumps(info))
                env = dict(os.environ, JPY_PARENT_PID=str(os.getpid()))
                cmd = [*argv, str(conn), *options]
                self.proc = subprocess.Popen(
                    cmd,
                    start_new_session=True,
                    env=env,
                    cwd=self._tmp.name,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
        self.client = BlockingKernelClient(context=_context(self.config.max_message_mb))
        self.client.load_connection_info(info)
        self.client.start_channels(stdin=False, hb=False)
        self._watch_iopub()
        self._wait_ready()
        if self.sandboxed:
            lock_sockets(init)
        self.pid = _children(init)[0] if self.sandboxed else self.proc.pid
        if self.config.prelude:
            prelude = self.execute(self.config.prelude, silent=True)
            if prelude.status != "ok":
                raise RuntimeError(f"the kernel's prelude failed: {prelude.error or prelude.status}")

    def _log_path(self) -> Path:
        return Path(self._tmp.name) / "kernel.log"

    def _sandbox_init(self) -> int:
        """Host pid of the sandbox's PID 1, once its mounts are in place (its root is then the sandbox's root)."""
        deadline = time.monotonic() + self.config.startup_timeout_s
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SandboxUnavailable(f"the sandbox exited at start: {self._log_tail()}")
            try:
                pid = int(children.read_text().split()[0])
                if Path(f"/proc/{pid}/root{CONNECTION}").exists():
                    return pid
            except (OSError, IndexError, ValueError):
                pass
            time.sleep(0.002)
        raise SandboxUnavailable("the sandbox did not come up in time")

    def _log_tail(self) -> str:
        try:
            return " | ".join(self._log_path().read_text(errors="replace").strip().splitlines()[-3:])
        except OSError:
            return "(no log)"

    def _wait_ready(self) -> None:
        """Send kernel_info until a reply comes back on shell and a status message on iopub."""
        deadline = time.monotonic() + self.config.startup_timeout_s
        shell_ok = iopub_ok = False
        next_send = 0.0
        while not (shell_ok and iopub_ok):
            now = time.monotonic()
            if now > deadline:
                raise RuntimeError(f"the Python kernel did not become ready in time: {self._log_tail()}")
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the Python kernel exited at start (code {self.proc.returncode}): {self._log_tail()}"
                )
            if not shell_ok and now >= next_send:
                self.client.kernel_info()
                next_send = now + 0.5
            for channel in (self.client.shell_channel, self.client.iopub_channel):
                if channel.socket.poll(10):
                    msg = channel._recv()
                    shell_ok |= msg["msg_type"] == "kernel_info_reply"
                    iopub_ok |= channel is self.client.iopub_channel
        while self.client.iopub_channel.socket.poll(20):  # drain the remaining status messages
            self.client.iopub_channel._recv()

    def _watch_iopub(self, replace: bool = False) -> None:
        """(Re)open the output socket with a monitor: zmq drops, for good, a connection over which an oversized
        message arrives, and the monitor's DISCONNECTED event says when to open a new one."""
        import zmq

        if replace:
            self._unwatch_iopub()
            self.client.iopub_channel.close()
            self.client._iopub_channel = None
        self._monitor = self.client.iopub_channel.socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)

    def _unwatch_iopub(self) -> None:
        """Stop the monitor at the monitored socket before closing our end: libzmq sends events with a blocking
        send from the context's I/O thread, so an event raised after our end is gone (the kernel killed while its
        socket is being reaped) would block that thread for good, and with it every kernel connection after."""
        if self._monitor is not None:
            self.client.iopub_channel.socket.disable_monitor()
            self._monitor.close(linger=0)
            self._monitor = None

    def _dying(self) -> bool:
        """Whether the kernel is exiting (its connections drop first; give the process a moment to end)."""
        try:
            self.proc.wait(timeout=0.3)
        except subprocess.TimeoutExpired:
            return False
        return True

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def strays(self) -> int:
        """How many processes (not counting zombies) the kernel's code started and left running."""
        todo, count = _children(self.pid), 0
        while todo:
            pid = todo.pop()
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            count += state != "Z"
            todo += _children(pid)
        return count

    def death_reason(self) -> str:
        code = self.proc.poll() if self.proc else None
        if code is None:
            return "it stopped responding"
        if code < 0 or code > 128:  # bwrap reports a child killed by signal N as 128 + N
            signum = -code if code < 0 else code - 128
            name = signal.Signals(signum).name if signum in signal.Signals._value2member_map_ else f"signal {signum}"
            return f"killed by {name}: {SIGNAL_HINTS.get(signum, 'a signal')}"
        return f"it exited with code {code}"

    def close(self) -> None:
        """Kill the kernel and everything it started (the whole sandbox) and free its files."""
        if self.client is not None:
            self._unwatch_iopub()
            self.client.stop_channels()
            self.client = None
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def interrupt(self) -> None:
        """Ask the kernel to interrupt the running cell (a message, so no signal reaches bwrap)."""
        msg = self.client.session.msg("interrupt_request", content={})
        self.client.control_channel.send(msg)

    # -- running code ------------------------------------------------------------------------------------------
    def execute(self, code: str, timeout: float | None = None, silent: bool = False) -> Execution:
        """Run ``code`` and collect its outputs; never raises for anything the code does."""
        cfg, out = self.config, Execution()
        if not self.alive():
            out.status, out.error = "died", f"the kernel is not running ({self.death_reason()})"
            return out
        msg_id = self.client.execute(code, silent=silent, store_history=not silent, allow_stdin=False)
        self._follow(msg_id, out, timeout or cfg.timeout_s)
        if out.status == "ok" and out.error is not None:
            out.status = "error"
        strays = self.strays() if self.alive() else 0
        if strays:
            out.status = "killed"
            out.error = f"the code left {strays} processes running, so the kernel was killed with them"
            self.close()
        if out.chars_seen > cfg.max_output_chars:
            out.notes.append(f"output truncated to {cfg.max_output_chars} of {out.chars_seen} characters")
        return out

    def _follow(self, msg_id: str, out: Execution, timeout: float) -> None:
        """Collect the outputs of request ``msg_id`` until it is done; interrupt it when it runs past ``timeout`` or
        floods, kill the kernel when an interrupt does not stop it.

        Done means the reply has come and the kernel's idle status for it, or the status of a later probe
        (kernel_info): the kernel publishes in order, so a probe's status follows every output of the request.
        Probes go out each second after the reply, in case the idle status was lost with a dropped connection."""
        import zmq
        from zmq.utils.monitor import recv_monitor_message

        cfg, shell = self.config, self.client.shell_channel
        deadline = time.monotonic() + timeout
        interrupted_at: float | None = None
        reply_at: float | None = None
        probes: set[str] = set()
        probed_at = 0.0
        idle = False
        while not (reply_at and idle):
            now = time.monotonic()
            if not self.alive():
                out.status, out.error = "died", f"the Python kernel died ({self.death_reason()})"
                return
            flood = out.chars_seen > FLOOD_FACTOR * cfg.max_output_chars
            if interrupted_at is None and (now > deadline or flood):
                self.interrupt()
                interrupted_at = now
                if flood:
                    out.notes.append(f"output passed {FLOOD_FACTOR * cfg.max_output_chars} characters: interrupted")
                else:
                    out.status = "timeout"
                    out.notes.append(f"execution timed out after {timeout:g} s and was interrupted")
            if interrupted_at is not None and now - interrupted_at > cfg.interrupt_grace_s:
                out.status = "killed"
                out.error = "the code did not stop after an interrupt, so the kernel was killed"
                self.close()
                return
            if reply_at and now - probed_at > 1.0:
                probes.add(self.client.kernel_info())
                probed_at = now
            iopub = self.client.iopub_channel
            poller = zmq.Poller()
            for sock in (shell.socket, iopub.socket, self._monitor):
                poller.register(sock, zmq.POLLIN)
            for sock, _ in poller.poll(50):
                if sock is self._monitor:
                    if recv_monitor_message(sock)["event"] == zmq.EVENT_DISCONNECTED and not self._dying():
                        note = f"some output was lost (a single output over {cfg.max_message_mb} MiB is dropped)"
                        out.notes += [note] if note not in out.notes else []
                        self._watch_iopub(replace=True)
                        probed_at = 0.0 if reply_at else probed_at
                    break
                channel = shell if sock is shell.socket else iopub
                msg = channel._recv()
                parent = msg.get("parent_header", {}).get("msg_id")
                if channel is iopub and parent in probes and msg["msg_type"] == "status":
                    idle = True
                if parent != msg_id:
                    continue
                if channel is shell:
                    reply_at = time.monotonic()
                    if msg["content"].get("status") == "error" and out.error is None:
                        out.error = self._format_error(msg["content"])
                else:
                    idle |= self._collect(msg, out)

    def _collect(self, msg: dict, out: Execution) -> bool:
        """Add one iopub message to ``out``; True when it is the final idle status."""
        kind, content = msg["msg_type"], msg["content"]
        if kind == "status":
            return content.get("execution_state") == "idle"
        if kind == "stream":
            self._add_text(out, content.get("text", ""))
        elif kind in ("execute_result", "display_data"):
            data = content.get("data", {})
            if "image/png" in data and len(out.images) < self.config.max_images:
                out.images.append(base64.b64decode(data["image/png"]))
            elif "image/png" in data:
                out.notes.append(f"more than {self.config.max_images} images: the rest were dropped")
            elif "text/plain" in data:
                self._add_text(out, data["text/plain"] + "\n")
        elif kind == "error":
            out.error = self._format_error(content)
        return False

    def _add_text(self, out: Execution, text: str) -> None:
        text = ANSI.sub("", text)
        room = self.config.max_output_chars - len(out.text)
        if room > 0:
            out.text += text[:room]
        out.chars_seen += len(text)

    def _format_error(self, content: dict) -> str:
        trace = ANSI.sub("", "\n".join(content.get("traceback") or []))
        trace = "\n".join(line for line in trace.splitlines() if line.strip("-")).strip()
        head = f"{content.get('ename', 'Error')}: {content.get('evalue', '')}"
        text = trace if head.split(":")[0] in trace else f"{head}\n{trace}".strip()
        limit = self.config.max_output_chars
        return text if len(text) <= limit else text[: limit // 2] + "\n...\n" + text[-limit // 2 :]


class KernelPool:
    """Kernels started ahead of time; ``take()`` hands one out and the pool starts a replacement.

    Every kernel is started by the pool's own long-lived thread, also when ``take()`` finds the pool empty: bwrap's
    --die-with-parent follows the thread that started it, and a short-lived caller thread (a server worker, a
    LangGraph branch) must not take its kernel down when it ends."""

    def __init__(self, config: KernelConfig) -> None:
        self.config = config
        self._ready: queue.Queue[Kernel] = queue.Queue()
        self._cond = threading.Condition()
        self._waiting = 0  # take() calls waiting for a kernel
        self._attempts = 0  # kernel starts finished, failed or not
        self._failure: tuple[int, BaseException] | None = None  # the last failed start and its number
        self._closed = False
        threading.Thread(target=self._fill, name="mmcot-kernel-pool", daemon=True).start()

    def _needed(self) -> bool:
        return self._closed or self._ready.qsize() < self.config.pool_size + self._waiting

    def _fill(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(self._needed)
                if self._closed:
                    return
            try:
                kernel = Kernel(self.config)
            except Exception as e:  # noqa: BLE001 - handed to the waiting take() calls
                with self._cond:
                    self._attempts += 1
                    self._failure = (self._attempts, e)
                    self._cond.notify_all()
                    self._cond.wait_for(lambda: self._closed or self._waiting > 0, timeout=5)
                continue
            with self._cond:
                self._attempts += 1
                if self._closed:
                    kernel.close()
                    return
                self._ready.put(kernel)
                self._cond.notify_all()

    def take(self) -> Kernel:
        """A ready kernel: a warm one, else one started now (raises what stopped it, e.g. SandboxUnavailable)."""
        with self._cond:
            self._waiting += 1
            since = self._attempts
            self._cond.notify_all()
            try:
                while True:
                    self._cond.wait_for(lambda: not self._ready.empty() or self._failed_since(since))
                    if not self._ready.empty():
                        kernel = self._ready.get_nowait()
                        if kernel.alive():
                            return kernel
                        kernel.close()
                    else:
                        raise self._failure[1]
            finally:
                self._waiting -= 1
                self._cond.notify_all()

    def _failed_since(self, attempt: int) -> bool:
        return self._failure is not None and self._failure[0] > attempt

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        while True:
            try:
                self._ready.get_nowait().close()
            except queue.Empty:
                break


_pools: dict[KernelConfig, KernelPool] = {}
_pools_lock = threading.Lock()


def get_pool(config: KernelConfig) -> KernelPool:
    """The process-wide warm pool for ``config`` (started on first use, closed at exit)."""
    with _pools_lock:
        if config not in _pools:
            _pools[config] = KernelPool(config)
        return _pools[config]


@atexit.register
def _close_pools() -> None:
    for pool in list(_pools.values()):
        pool.close()
