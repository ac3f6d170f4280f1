"""One agent run for the server: a whole conversation (as an OpenAI client sends it) through the controller.

The server is stateless like the OpenAI API: every request carries the conversation, so each run is one controller
turn over those messages (no checkpointer thread). The request's sampling parameters reach every model call through
``Sampled``, a view of the shared backend; the backend's batching layer still merges the calls of all requests.
Functions a client declares in ``tools`` that are not mmcot tools become ``ClientTool`` s: when the model calls one,
the run stops and the call goes back to the client (``finish_reason: "tool_calls"``), as with OpenAI's API.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from mmcot.agent.graph import run_turn
from mmcot.agent.state import Budget, Context, new_turn
from mmcot.models.backend import Backend, Request, Stream
from mmcot.reasoning import get_strategy, make_config
from mmcot.reasoning.solve import opens_think
from mmcot.reasoning.trace import Trace
from mmcot.tools.base import Tool, ToolCall, ToolContext, ToolResult


class Sampled:
    """``backend`` with a request's sampling overrides applied to each model call (other attributes pass through)."""

    def __init__(self, backend: Backend, overrides: dict[str, Any]):
        self.backend, self.overrides, self.name = backend, overrides, backend.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def _apply(self, request: Request) -> Request:
        s, o = request.sampling, self.overrides
        sampling = replace(
            s,
            max_tokens=min(s.max_tokens, o.get("max_tokens") or s.max_tokens),
            temperature=o["temperature"] if o.get("temperature") is not None else s.temperature,
            top_p=o["top_p"] if o.get("top_p") is not None else s.top_p,
            stop=list(dict.fromkeys(s.stop + (o.get("stop") or []))),
            seed=o["seed"] if o.get("seed") is not None else s.seed,
        )
        return replace(request, sampling=sampling)

    def generate(self, requests: list[Request]) -> list:
        return self.backend.generate([self._apply(r) for r in requests])

    def stream(self, request: Request) -> Stream:
        return self.backend.stream(self._apply(request))


class EitherEvent(threading.Event):
    """An event that also reads as set when ``other`` is (the controller only calls ``is_set``)."""

    def __init__(self, other: threading.Event):
        super().__init__()
        self.other = other

    def is_set(self) -> bool:
        return super().is_set() or self.other.is_set()


class ClientTool(Tool):
    """A function the client runs: calling it records the call and ends the run so the client can answer it."""

    def __init__(self, name: str, description: str, parameters: dict[str, Any], calls: list, cancel: threading.Event):
        self.name, self.description = name, description or ""
        self.parameters = parameters or {"type": "object", "properties": {}}
        self.calls, self.cancel = calls, cancel

    def call(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
        self.calls.append(ToolCall(self.name, arguments, id=f"call_{len(self.calls)}_{id(self):x}"))
        self.cancel.set()
        return ToolResult(text="(sent to the client)")


def to_state_messages(messages: list[dict[str, Any]]) -> tuple[list[dict], dict[str, Any], str]:
    """Backend-shaped messages (PIL images) -> controller messages (image ids), the images by id, the last question.

    An assistant message's ``tool_calls`` become ``<tool_call>`` blocks in its text, and a tool result names its
    function, as the controller's own loop writes them."""
    images: dict[str, Any] = {}
    names: dict[str, str] = {}
    out = []
    for m in messages:
        content = m["content"]
        if isinstance(content, list):
            parts = []
            for p in content:
                if p["type"] == "image":
                    image_id = f"image_{len(images)}"
                    images[image_id] = p["image"]  # a run that is not checkpointed keeps images as they are
                    parts.append({"type": "image", "image": image_id})
                else:
                    parts.append(p)
            content = parts
        msg: dict[str, Any] = {"role": m["role"], "content": content}
        if m.get("tool_calls"):
            blocks = []
            for c in m["tool_calls"]:
                names[c["id"]] = c["name"]
                try:
                    arguments = json.loads(c["arguments"] or "{}")
                except json.JSONDecodeError:
                    arguments = c["arguments"]
                blocks.append(f"<tool_call>{json.dumps({'name': c['name'], 'arguments': arguments})}</tool_call>")
            text = content if isinstance(content, str) else ""
            msg["content"] = (text + "\n" if text else "") + "\n".join(blocks)
        if m["role"] == "tool":
            msg["name"] = names.get(m.get("tool_call_id", ""), "")
            if isinstance(content, str):
                msg["content"] = [{"type": "text", "text": content}]
        out.append(msg)
    question = next((_text(m["content"]) for m in reversed(out) if m["role"] == "user"), "")
    return out, images, question


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(p.get("text", "") for p in content if p.get("type") == "text")


def check_strategy(strategy: str, knobs: dict[str, Any]) -> Any:
    """The strategy's config for ``knobs``; ValueError naming the problem."""
    return make_config(get_strategy(strategy), knobs)


def run_conversation(
    backend: Backend,
    messages: list[dict[str, Any]],
    strategy: str,
    knobs: dict[str, Any],
    tools: list[str] | None,
    client_tools: list[dict[str, Any]],
    budget: Budget,
    emit: Callable[[dict], None] | None,
    cancel: threading.Event,
    client_calls: list,
    stream: bool = False,
) -> Trace:
    """Run one controller turn over ``messages``; ``emit`` gets its events (with token events when ``stream``);
    ``client_calls`` receives the client-side tool calls made."""
    from mmcot.reasoning.solve import _tools

    strat = get_strategy(strategy)
    cfg = make_config(strat, knobs)
    state_messages, images, question = to_state_messages(messages)
    selected = _tools(cfg, tools, strat.name) if hasattr(cfg, "tools") else {}
    stop = EitherEvent(cancel)  # set by a client tool call, or by the request's cancel (disconnect, timeout)
    for f in client_tools:
        selected[f["name"]] = ClientTool(f["name"], f.get("description"), f.get("parameters"), client_calls, stop)
    turn = {**new_turn(state_messages[-1], images, question, strat.name, knobs), "messages": state_messages}
    ctx = Context(
        backend=backend,
        strategy=strat,
        config=cfg,
        tools=selected,
        budget=budget,
        stream_tokens=stream,
        opens_think=opens_think(backend),
        cancel=stop,
    )
    try:
        return run_turn(ctx, turn, emit)
    finally:
        ToolContext(state=ctx.tool_state).close()
