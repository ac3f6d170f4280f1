"""How ``mmcot chat`` shows a turn as it happens: controller events (tokens, thoughts, tool calls, tool results with
images, scores, the answer) rendered with rich on a terminal, or as plain lines when output is not a TTY.

Thoughts stream dimmed while the model writes them, then collapse to a one-line summary (``/thoughts`` keeps them
expanded; ``/trace`` shows the whole last turn). Images made by tools are saved to the session folder and previewed
in the terminal with half-block characters (two pixels per character cell), with their path.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

from PIL import Image
from rich.color import Color
from rich.console import Console
from rich.live import Live
from rich.style import Style
from rich.text import Text

from mmcot.agent.server.stream import THINK, TOOL_CALL
from mmcot.agent.server.stream import visible as reply_text


def half_blocks(image: Image.Image, width: int = 48) -> Text:
    """A terminal preview of ``image``: each cell is '▀', the upper pixel as foreground, the lower as background."""
    w = max(1, min(width, image.width))
    h = max(2, round(image.height * w / image.width / 2) * 2)
    px = image.convert("RGB").resize((w, h), Image.Resampling.BOX).load()
    text = Text()
    for y in range(0, h, 2):
        for x in range(w):
            text.append("▀", Style(color=Color.from_rgb(*px[x, y]), bgcolor=Color.from_rgb(*px[x, y + 1])))
        text.append("\n")
    return text


def describe_call(call: dict[str, Any] | None) -> str:
    call = call or {}
    args = ", ".join(f"{k}={json.dumps(v)}" for k, v in (call.get("arguments") or {}).items())
    return f"{call.get('name', '?')}({args})"


def save_images(images: dict[str, Image.Image], folder: Path) -> dict[str, Path]:
    """Save a tool result's images as ``folder/<image id>.png``; returns id -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for image_id, img in images.items():
        paths[image_id] = folder / f"{image_id}.png"
        img.save(paths[image_id])
    return paths


class RichView:
    """Renders one turn at a time on a terminal. ``event`` is called from the chat's main thread."""

    def __init__(self, console: Console, folder: Path, show_thoughts: bool = False, preview_width: int = 48):
        self.console, self.folder = console, folder
        self.show_thoughts, self.preview_width = show_thoughts, preview_width
        self.live: Live | None = None
        self.stream = ""

    def _live_text(self) -> Text:
        tail = "\n".join(self.stream.splitlines()[-max(3, self.console.height - 6) :])
        return Text(tail or "…", style="dim italic")

    def _end_stream(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
        self.stream = ""

    def event(self, e: dict[str, Any]) -> None:
        kind = e.get("type")
        if kind == "token":
            self.stream += e.get("text", "")
            if self.live is None:
                self.live = Live(self._live_text(), console=self.console, transient=True, refresh_per_second=12)
                self.live.start()
            else:
                self.live.update(self._live_text())
            return
        self._end_stream()
        if e.get("kind") == "crop":
            for image_id, path in save_images(e.get("images") or {}, self.folder).items():
                self.console.print(Text(f"  ▸ {e.get('text', '')}  {image_id}: {path}", style="dim cyan"))
        elif kind == "thought":
            self.thought(e)
        elif kind == "tool_call":
            self.console.print(Text("🔧 " + describe_call(e.get("tool_call")), style="bold cyan"))
        elif kind == "tool_result":
            error = (e.get("text") or "").startswith("error:")
            self.console.print(Text("  ↳ " + (e.get("text") or "").strip(), style="red" if error else "cyan"))
            for image_id, path in save_images(e.get("images") or {}, self.folder).items():
                self.console.print(half_blocks(e["images"][image_id], self.preview_width), end="")
                self.console.print(Text(f"  {image_id}: {path}", style="cyan"))
        elif kind == "score":
            self.console.print(Text(f"  score {e.get('score')}: {e.get('text', '')[:100]}", style="dim"))
        elif kind == "answer":
            self.console.print(Text(reply_text(e.get("reply") or "") or e.get("text") or "(no answer)", style="bold"))
        elif kind == "stop":
            if e.get("reason") not in ("answer", "no_answer"):
                self.console.print(Text(f"[stopped: {e.get('reason')}]", style="yellow"))
            usage = e.get("usage") or {}
            calls, tokens = int(usage.get("model_calls", 0)), int(usage.get("completion_tokens", 0))
            n = int(usage.get("tool_calls") or 0)
            tools = f" · {n} tool call{'s' * (n != 1)}" if n else ""
            self.console.print(Text(f"{calls} model call{'s' * (calls != 1)} · {tokens} tokens{tools}", style="dim"))

    def thought(self, e: dict[str, Any]) -> None:
        text = THINK.sub(lambda m: m.group(1), TOOL_CALL.sub("", e.get("text") or "")).strip()
        if not text or text == reply_text(e.get("text") or ""):
            return  # a plain reply: the answer event shows it
        if self.show_thoughts:
            self.console.print(Text(text, style="dim italic"))
        else:
            first = " ".join(text.split())
            first = first[:70] + ("…" if len(first) > 70 else "")
            self.console.print(
                Text(f"▸ thought ({e.get('tokens') or len(text.split())} tokens): {first}", style="dim")
            )

    def close(self) -> None:
        self._end_stream()

    def cancelled(self) -> None:
        self._end_stream()
        self.console.print(Text("[cancelled]", style="yellow"))


class PlainView:
    """Plain lines for pipes and logs: no colors, no live updates, image paths instead of previews."""

    def __init__(self, out: TextIO, folder: Path, answer_only: bool = False):
        self.out, self.folder, self.answer_only = out, folder, answer_only

    def _print(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def event(self, e: dict[str, Any]) -> None:
        kind = e.get("type")
        images = save_images(e.get("images") or {}, self.folder) if e.get("images") else {}
        if kind == "answer":
            self._print(reply_text(e.get("reply") or "") or e.get("text") or "(no answer)")
        elif self.answer_only:
            return
        elif e.get("kind") == "crop":
            self._print(f"crop: {e.get('text', '')} " + " ".join(f"{i}: {p}" for i, p in images.items()))
        elif kind == "thought" and reply_text(e.get("text") or "") != (e.get("text") or "").strip():
            self._print("thought: " + " ".join((e.get("text") or "").split()))
        elif kind == "tool_call":
            self._print("tool call: " + describe_call(e.get("tool_call")))
        elif kind == "tool_result":
            self._print("tool result: " + (e.get("text") or "").strip())
            for image_id, path in images.items():
                self._print(f"image {image_id}: {path}")
        elif kind == "stop" and e.get("reason") not in ("answer", "no_answer"):
            self._print(f"[stopped: {e.get('reason')}]")

    def close(self) -> None:
        pass

    def cancelled(self) -> None:
        self._print("[cancelled]")


def make_view(
    folder: Path, plain: bool, show_thoughts: bool = False, answer_only: bool = False
) -> RichView | PlainView:
    if plain:
        return PlainView(sys.stdout, folder, answer_only=answer_only)
    return RichView(Console(highlight=False), folder, show_thoughts)
