"""The python tool on real sandboxed Jupyter kernels: state, outputs, images both ways, timeouts, restarts, pool."""

import os
import signal
import time
from dataclasses import replace

from PIL import Image

from mmcot.tools import ToolCall, ToolContext, run_tool_call, tool_message
from mmcot.tools.kernels import Kernel, KernelConfig, get_pool
from mmcot.tools.python_tool import PythonTool
from mmcot.tools.sandbox import SandboxConfig, check_sandbox


def py(tool, ctx, code):
    return run_tool_call(ToolCall("python", {"code": code}), ctx, {"python": tool})


def test_state_is_kept_and_outputs_come_in_order(python_tool, pyctx):
    assert py(python_tool, pyctx, "x = 20").text == "(no output)"
    # stdout and stderr are separate streams: only a flush orders them (as in a terminal)
    result = py(python_tool, pyctx, "import sys\nprint('out', flush=True)\nprint('err', file=sys.stderr)\nx + 22")
    assert result.ok and result.text == "out\nerr\n42"
    assert result.metadata["status"] == "ok"


def test_traceback_is_plain_text(python_tool, pyctx):
    result = py(python_tool, pyctx, "print('before')\n1 / 0")
    assert result.text == "before"
    assert "ZeroDivisionError: division by zero" in result.error and "\x1b" not in result.error
    assert "----> 2 1 / 0" in result.error


def test_conversation_images_are_in_the_kernel(python_tool, pyctx):
    code = "print(image_0.size, np.asarray(images['image_0']).shape, image_0.getpixel((30, 30)))"
    assert py(python_tool, pyctx, code).text == "(200, 100) (100, 200, 3) (220, 30, 30)"
    pyctx.add_image(
        Image.new("RGB", (7, 5), "black")
    )  # a later image (e.g. from another tool) is sent before the call
    assert py(python_tool, pyctx, "image_1.size").text == "(7, 5)"


def test_figures_and_displayed_images_come_back_with_ids(python_tool, pyctx):
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()\nimage_0.crop((20, 20, 60, 60))"
    result = py(python_tool, pyctx, code)
    assert result.ok, result.error
    assert result.metadata["image_ids"] == ["image_1", "image_2"]
    assert result.text.startswith("image_1 (")
    assert "image_2 (40x40): python output image 2" in result.text
    assert pyctx.images["image_2"].getpixel((5, 5)) == (220, 30, 30)
    message = tool_message(result, ToolCall("python", id="call_0"))
    assert [part["type"] for part in message["content"]] == ["text", "image", "image"]
    assert py(python_tool, pyctx, "image_2.size").text == "(40, 40)"  # the kernel's own output is now a named image


def test_timeout_interrupts_and_keeps_state(attack_tool, ctx):
    py(attack_tool, ctx, "kept = 'yes'")
    start = time.monotonic()
    result = py(attack_tool, ctx, "while True: pass")
    # bounded, not timed: on a loaded machine the interrupt itself can take seconds (CI failed once at 13 s of 7)
    assert time.monotonic() - start < 3 * (attack_tool.config.timeout_s + attack_tool.config.interrupt_grace_s)
    assert result.metadata["status"] == "timeout" and "KeyboardInterrupt" in result.error
    assert "timed out after 4 s and was interrupted" in result.text
    assert py(attack_tool, ctx, "kept").text == "'yes'"


def test_output_is_capped(python_tool, pyctx):
    result = py(python_tool, pyctx, "print('z' * 5000)")
    assert result.text.count("z") == python_tool.config.max_output_chars
    assert "[output truncated to 2000 of 5001 characters]" in result.text


def test_a_dead_kernel_is_restarted_and_the_model_told(python_tool, pyctx):
    py(python_tool, pyctx, "y = 1")
    result = py(python_tool, pyctx, "import os; os._exit(3)")
    assert result.metadata["status"] == "died"
    assert "the Python kernel died (it exited with code 3); the kernel was restarted" in result.error
    assert "NameError" in py(python_tool, pyctx, "y").error
    assert py(python_tool, pyctx, "image_0.size").text == "(200, 100)"  # images are sent to the new kernel


def test_close_kills_the_kernel(python_tool):
    ctx = ToolContext()
    py(python_tool, ctx, "1")
    proc = ctx.state["python"].kernel.proc
    ctx.close()
    assert proc.poll() is not None and "python" not in ctx.state


def test_pool_hands_out_warm_kernels(python_tool):
    pool = get_pool(python_tool.config)
    deadline = time.monotonic() + 30
    while pool._ready.qsize() < python_tool.config.pool_size and time.monotonic() < deadline:
        time.sleep(0.05)
    start = time.monotonic()
    kernel = pool.take()
    took = time.monotonic() - start
    try:
        assert kernel.alive() and took < 0.5
        assert kernel.execute("print(np.zeros(3).sum())").text == "0.0\n"  # the prelude ran before it was handed out
    finally:
        kernel.close()


def test_a_kernel_dying_after_its_monitor_is_stopped_leaves_the_connections_working(python_tool):
    """libzmq raises monitor events from the zmq context's I/O thread with a blocking send. A kernel that dies while
    its client is closing (its monitor's reading end already closed) once blocked that thread for good, and every
    kernel started after it in the process never became ready. Stopping the monitor comes first now."""
    config = replace(python_tool.config, pool_size=0, startup_timeout_s=20.0)
    doomed = Kernel(config)
    doomed._unwatch_iopub()  # what close() does first
    os.killpg(doomed.proc.pid, signal.SIGKILL)  # the kernel goes while its output socket is still connected
    doomed.proc.wait()
    time.sleep(0.3)
    doomed.close()
    kernel = Kernel(config)  # the same zmq context
    try:
        assert kernel.execute("print(6 * 7)").text == "42\n"
    finally:
        kernel.close()


def test_refuses_without_isolation_unless_opted_out(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap, no setpriv
    check_sandbox.cache_clear()
    try:
        tool = PythonTool(KernelConfig(pool_size=0, timeout_s=29.0))
        result = py(tool, ToolContext(), "1 + 1")
        assert "the python tool is unavailable" in result.error
        assert "needs bwrap and setpriv" in result.error and "MMCOT_SANDBOX=off" in result.error
    finally:
        check_sandbox.cache_clear()
    monkeypatch.setenv("MMCOT_SANDBOX", "off")
    assert SandboxConfig().enabled is False
    unsafe = PythonTool(KernelConfig(pool_size=0, timeout_s=28.0))
    ctx = ToolContext()
    try:
        result = py(unsafe, ctx, "import os; os.getuid()")
        assert result.ok and result.text == str(os.getuid())  # explicitly opted out: no sandbox at all
    finally:
        ctx.close()
