"""Plain-text views for the terminal: a trace's events as they stream (``mmcot solve``), a finished trace, and the
strategy list (``mmcot strategies``)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

from mmcot.reasoning.trace import Trace


def short(text: str, width: int = 400) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 3] + "..."


def node_line(kind: str, node: int, text: str, parents: list[int], tool_call: dict | None = None,
              score: float | None = None, images: list[str] | None = None) -> str:  # fmt: skip
    head = f"[{node}] {kind}" + (f" <- {','.join(map(str, parents))}" if parents else "")
    if kind == "tool_call" and tool_call:
        body = f"{tool_call.get('name')} {json.dumps(tool_call.get('arguments', {}))}"
    else:
        body = short(text)
    if score is not None and kind != "score":
        body += f"  (score {score:.2f})"
    if images:
        body += f"  [{', '.join(images)}]"
    return f"{head}: {body}"


def printer(write: Callable[[str], None]) -> Callable[[dict], None]:
    """An ``emit`` that prints each event as a line; streamed tokens print as they come, on their own line."""
    streaming = {"on": False}

    def emit(event: dict) -> None:
        kind = event["type"]
        if kind == "token":
            if not streaming["on"]:
                write(f"  ({event['step']}) ")
                streaming["on"] = True
            write(event["text"])
            return
        if streaming["on"]:
            write("\n")
            streaming["on"] = False
        if kind in ("thought", "tool_call", "tool_result", "score"):
            images = list(event.get("images") or [])
            line = node_line(event["kind"], event["node"], event.get("text", ""), event.get("parents", []),
                             event.get("tool_call"), event.get("score"), images)  # fmt: skip
            write(line + "\n")

    return emit


def summary(trace: Trace) -> str:
    return (
        f"answer: {trace.answer or '(none)'}\n"
        f"stop: {trace.stop_reason} | {trace.model_calls} model calls, {trace.prompt_tokens} prompt + "
        f"{trace.completion_tokens} generated tokens, {trace.tool_calls} tool calls, {trace.seconds:.2f} s"
    )


def render(trace: Trace) -> str:
    """The whole trace, one node per line, then the answer and the costs."""
    lines = [f"strategy: {trace.strategy}", f"question: {short(trace.question)}"]
    for n in trace.nodes:
        lines.append(node_line(n.kind, n.id, n.text, n.parents, n.tool_call, n.score, n.images))
    return "\n".join(lines + [summary(trace)])


def strategies_table() -> str:
    from mmcot.reasoning import STRATEGIES

    lines = []
    for name, s in STRATEGIES.items():
        lines.append(f"{name:<17} {s.description}")
        for f in dataclasses.fields(s.config):
            flag = f"--{f.name.replace('_', '-')} {f.default}"
            lines.append(f"{'':<19}{flag:<24} {f.metadata.get('help', '')}")
    return "\n".join(lines)
