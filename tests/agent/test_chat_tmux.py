"""``mmcot chat`` driven in a real terminal (tmux), keys typed and the screen read back as a user sees it.

On the shipped tiny model: attach an image, ask, watch the answer arrive, cancel a long answer with Ctrl-C, quit,
resume the session (its transcript is shown) and go on. Whether the tiny model calls a tool is up to its weights, so
the tool-call display (the call, its result image saved to the session folder and previewed in half-blocks, then the
answer) and a cancel in mid-stream are driven by a scripted model launched through the same ``mmcot chat`` command:
control flow of the terminal view only.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")

ENV = "env -u COLUMNS -u LINES HF_HUB_OFFLINE=1"  # pytest's COLUMNS would narrow the terminal


class Terminal:
    """A detached tmux session running one command; ``wait`` polls the screen for a pattern."""

    def __init__(self, command: str, width: int = 120, height: int = 50):
        self.name = f"mmcot-test-{uuid.uuid4().hex[:8]}"
        size = ["-x", str(width), "-y", str(height)]
        shell = f"{command}; echo CHAT-EXITED-$?; sleep 600"
        quiet = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, *size, shell], check=True, **quiet)

    def screen(self) -> str:
        out = subprocess.run(
            ["tmux", "capture-pane", "-p", "-J", "-S", "-2000", "-t", self.name], capture_output=True, text=True
        )
        return out.stdout

    def wait(self, pattern: str, timeout: float = 300, after: int = 0) -> re.Match:
        """The first match of ``pattern`` in the screen text after character ``after``."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.compile(pattern, re.M).search(self.screen(), after)
            if m:
                return m
            assert time.monotonic() < deadline, f"timed out waiting for {pattern!r}; screen:\n{self.screen()}"
            time.sleep(0.1)

    def send(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def type(self, text: str) -> None:
        """Type a line, wait until the prompt echoes it, then press Enter."""
        self.send("-l", text)
        self.wait(re.escape(text[-40:]) + r"\s*\Z")
        self.send("Enter")

    def answered(self, question: str, timeout: float = 300) -> str:
        """Wait until the answer to ``question`` is in and the prompt is back; the screen text of that turn."""
        start = self.wait(r"^you(?: \[\+\d+ images?\])?> " + re.escape(question[:60])).end()
        self.wait(r"^\d+ model calls? · \d+ tokens.*\n+you>", timeout, after=start)
        return self.screen()[start:]

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


@pytest.mark.slow
def test_chat_on_the_tiny_model_in_a_terminal(tmp_path):
    """Slow: the chat (and the model) starts twice, and a deep tree of thoughts runs until Ctrl-C."""
    from PIL import Image, ImageDraw

    image = tmp_path / "shapes.png"
    img = Image.new("RGB", (96, 96), "white")
    ImageDraw.Draw(img).ellipse((10, 10, 40, 40), fill="red")
    img.save(image)
    home = tmp_path / "home"
    chat = f"cd {tmp_path} && {ENV} {sys.executable} -m mmcot.cli chat --model tiny --strategy cot --home {home}"

    term = Terminal(chat)
    try:
        session = term.wait(r"session (\d{8}-\w+)").group(1)
        term.wait(r"^you>")
        term.type(f"/image {image}")
        term.wait(r"attached shapes\.png \(96x96\)")
        term.wait(r"^you \[\+1 image\]>")
        term.type("What color is the circle?")
        turn = term.answered("What color is the circle?")
        assert "error" not in turn and "Traceback" not in turn

        # a long answer (a deep tree of thoughts), cancelled with Ctrl-C once it is under way: the chat goes on
        term.type("/strategy tot breadth=4 depth=8 max_tokens=64 seed=3")  # seed 0 ends at once: "</think><>"
        term.wait(r"^you>", after=term.wait(r"strategy: tot breadth=4 depth=8").end())
        term.type("Describe everything you see, in detail.")
        asked = term.wait(r"^you> Describe everything").end()
        term.wait(r"▸ thought|score", after=asked)
        term.send("C-c")
        term.wait(r"\[cancelled\]\n(.*\n)*you>", after=asked)
        term.type("/quit")
        term.wait(r"CHAT-EXITED-0")
    finally:
        term.close()

    term = Terminal(f"{chat} --resume {session[:12]}")
    try:
        term.wait(rf"session {session}")
        term.wait(r"you: What color is the circle\? \[turn0-0-shapes\.png\]")  # the transcript so far
        term.wait(r"mmcot \(cancelled\):")
        term.wait(r"^you>")
        term.type("/strategy direct")
        # typed ahead of the prompt, the tty turns Enter into a newline (ICRNL), which the input keeps as a new line
        term.wait(r"^you>", after=term.wait(r"strategy: direct").end())
        term.type("What did I ask you first?")
        assert "Traceback" not in term.answered("What did I ask you first?")
        term.send("C-d")
        term.wait(r"CHAT-EXITED-0")
    finally:
        term.close()
    listing = subprocess.run(
        [sys.executable, "-m", "mmcot.cli", "chat", "--list", "--home", str(home)], capture_output=True, text=True
    )
    assert session in listing.stdout and " 6 turns " in listing.stdout and "tiny/direct" in listing.stdout


LAUNCHER = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("scripted", {scripted!r})
scripted = importlib.util.module_from_spec(spec)
spec.loader.exec_module(scripted)
from mmcot.reasoning.solve import _backends

ZOOM = '<tool_call>{{"name": "zoom", "arguments": {{"image": "image_0", "box": [0, 0, 48, 48]}}}}</tool_call>'

def respond(request):
    if request.messages[-1]["role"] == "tool":
        return "It is red.</think><answer>The circle is red.</answer>"
    if "story" in str(request.messages[-1]["content"]):
        return " ".join(["once"] * 2000)
    return "I should zoom in.</think>" + ZOOM

_backends["scripted"] = scripted.ScriptedBackend(respond, delay=0.02)  # the chat's get_backend finds it loaded
from mmcot.cli import main
sys.argv = ["mmcot", "chat", "--model", "scripted", "--strategy", "image-loop", *sys.argv[1:]]
main()
"""


def test_tool_calls_and_cancel_in_a_terminal(tmp_path):
    from PIL import Image, ImageDraw

    image = tmp_path / "my shapes.png"
    img = Image.new("RGB", (96, 96), "white")
    ImageDraw.Draw(img).ellipse((10, 10, 40, 40), fill="red")
    img.save(image)
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER.format(scripted=str(Path(__file__).with_name("scripted.py"))))
    home = tmp_path / "home"
    term = Terminal(f"cd {tmp_path} && {ENV} {sys.executable} {launcher} --home {home}")
    try:
        session = term.wait(r"session (\d{8}-\w+)").group(1)
        term.wait(r"^you>")
        term.type(f"What color is the circle in '{image}'?")  # an image path typed into the message
        term.wait(r"attached my shapes\.png")
        turn = term.answered("What color is the circle in")
        call = re.search(r"🔧 zoom\(image=\"image_0\", box=\[0, 0, 48, 48\]\)", turn)
        assert call, turn
        shown = re.search(r"image_1: (\S+\.png)", turn)
        assert shown and (home / session / "image_1.png").is_file()
        assert "▀" * 16 in turn[call.end() : shown.start()]  # the half-block preview, above its path
        assert re.search(r"^The circle is red\.$", turn, re.M)
        assert "· 1 tool call\n" in turn

        term.type("Tell me a long story.")
        asked = term.wait(r"^you> Tell me a long story").end()
        term.wait(r"once once once", after=asked)  # the answer streams
        term.send("C-c")
        term.wait(r"\[cancelled\]\n(.*\n)*you>", after=asked)
        term.type("/quit")
        term.wait(r"CHAT-EXITED-0")
    finally:
        term.close()
