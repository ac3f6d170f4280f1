"""Controller events to OpenAI chat-completion deltas: streamed tokens split into ``reasoning_content`` (inside
``<think>``) and ``content`` (the reply), tool calls and results shown as reasoning, tags held back until complete.

A step that the strategy starts inside ``<think>`` (its ``think`` knob, or a ``-think`` model) streams no opening tag,
so each step starts in the mode the run was configured with.
"""

from __future__ import annotations

import json
import re
from typing import Any

MODES = {
    "<think>": "reasoning",
    "</think>": "content",
    "<tool_call>": "tool",
    "</tool_call>": "content",
    "<answer>": "content",
    "</answer>": "content",
}
THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.S | re.I)
TOOL_CALL = re.compile(r"<tool_call>.*?(?:</tool_call>|$)", re.S | re.I)
TAGS = re.compile(r"</?(?:think|answer)>", re.I)


def visible(text: str) -> str:
    """A reply as the user reads it: no thinking, no tool-call blocks, no answer tags."""
    return TAGS.sub("", TOOL_CALL.sub("", THINK.sub("", text or ""))).strip()


def call_text(call: dict[str, Any] | None) -> str:
    call = call or {}
    return f"{call.get('name', '?')}({json.dumps(call.get('arguments') or {})})"


def reasoning_of(nodes: list[Any], final: str) -> str:
    """The thoughts and tool steps of a trace as text (``final``, the reply, is left to ``content``)."""
    parts = []
    for n in nodes:
        if n.kind == "tool_call":
            parts.append(f"→ {call_text(n.tool_call)}")
        elif n.kind == "tool_result":
            parts.append(f"← {n.text.strip()}")
        elif n.kind == "score":
            parts.append(f"score {n.score}: {n.text.strip()}".strip())
        elif n.text:
            think = " ".join(m.strip() for m in THINK.findall(n.text))
            parts.append(think if think or n.text == final else visible(n.text))
    return "\n\n".join(p for p in parts if p)


class Splitter:
    """Splits one choice's event stream into ``(field, text)`` deltas: field ``reasoning_content`` or ``content``."""

    def __init__(self, starts_thinking: bool):
        self.start = "reasoning" if starts_thinking else "content"
        self.mode, self.buf = self.start, ""
        self.streamed = False  # tokens of the current step were streamed (its thought event repeats them)
        self.sent_content = False

    def _emit(self, text: str, out: list[tuple[str, str]]) -> None:
        if not text or self.mode == "tool":
            return
        if self.mode == "content":
            if not self.sent_content:
                text = text.lstrip()
                if not text:
                    return
            self.sent_content = True
        out.append(("content" if self.mode == "content" else "reasoning_content", text))

    def _feed(self, text: str, out: list[tuple[str, str]]) -> None:
        self.buf += text
        while self.buf:
            i = self.buf.find("<")
            if i < 0:
                self._emit(self.buf, out)
                self.buf = ""
                return
            self._emit(self.buf[:i], out)
            self.buf = self.buf[i:]
            low = self.buf.lower()
            tag = next((t for t in MODES if low.startswith(t)), None)
            if tag:
                self.mode, self.buf = MODES[tag], self.buf[len(tag) :]
            elif any(t.startswith(low) for t in MODES):
                return  # maybe a tag cut in two: wait for the next token
            else:
                self._emit("<", out)
                self.buf = self.buf[1:]

    def _end_step(self, out: list[tuple[str, str]]) -> None:
        self._emit(self.buf, out)
        self.mode, self.buf, self.streamed = self.start, "", False

    def event(self, e: dict[str, Any]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        kind = e.get("type")
        if kind == "token":
            self.streamed = True
            self._feed(e.get("text", ""), out)
        elif kind == "thought":
            if not self.streamed:
                think = " ".join(m.strip() for m in THINK.findall(e.get("text", "")))
                if think:
                    out.append(("reasoning_content", think + "\n"))
            self._end_step(out)
        elif kind in ("tool_call", "tool_result", "score"):
            self._end_step(out)
            text = {
                "tool_call": lambda: f"\n→ {call_text(e.get('tool_call'))}\n",
                "tool_result": lambda: f"← {(e.get('text') or '').strip()}\n",
                "score": lambda: f"score {e.get('score')}\n",
            }[kind]()
            out.append(("reasoning_content", text))
        return out

    def final(self, reply: str, answer: str) -> list[tuple[str, str]]:
        """What is left to send when the run ends: the reply's content if none was streamed."""
        out: list[tuple[str, str]] = []
        self._end_step(out)
        if not self.sent_content:
            text = visible(reply) or answer
            if text:
                out.append(("content", text))
                self.sent_content = True
        return out
