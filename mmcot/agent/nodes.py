"""The controller's nodes: ``State -> partial update`` functions, and ``Step``, the handle each node gets.

A strategy writes its nodes as ``fn(state, step) -> dict``. ``step`` calls the model (batched, budget-capped,
tokens streamed when asked), runs tools, adds trace nodes and images, and emits events; whatever it records is merged
into the node's update, so every strategy counts usage, streams and checkpoints the same way. A node that raises
ends the run with ``stop_reason = "error: ..."`` and keeps the trace so far.

The shared nodes live here too: ``finish`` of every turn, ``stop`` (a budget, an error or a cancel ended the
turn), and the model-and-tools loop (``model_step``, ``tool_step``) behind ``image-loop``, ``react`` and
the chat.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from PIL import Image

from mmcot.agent.state import Context, State, apply_update
from mmcot.evals.score import extract_answer
from mmcot.models.backend import Completion, Request, Sampling

log = logging.getLogger(__name__)
THINK, END_THINK, ANSWER, END_ANSWER = "<think>", "</think>", "<answer>", "</answer>"
TOOL_CALL = re.compile(r"<tool_call>.*?(?:</tool_call>|$)", re.S)
EVENT_OF_KIND = {"thought": "thought", "tool_call": "tool_call", "tool_result": "tool_result", "score": "score"}


class OutOfBudget(Exception):
    """Raised by ``Step.generate`` when no tokens are left or the run was cancelled; the node's work so far is kept."""


class Step:
    """One execution of one node: model calls, tool calls, trace nodes, images and events, merged into its update."""

    def __init__(self, name: str, state: State, ctx: Context, writer: Callable[[dict], None] | None):
        self.name, self.state, self.ctx, self.writer = name, state, ctx, writer
        self.nodes: list[dict] = []
        self.images: dict[str, Any] = {}
        self.usage: dict[str, float] = {"steps": 1}

    @property
    def config(self) -> Any:
        return self.ctx.config

    def emit(self, event: dict) -> None:
        if self.writer is not None:
            self.writer(event)

    # ---- images and messages ----

    def image(self, image_id: str) -> Image.Image:
        return self.ctx.image(self.state, image_id)

    def add_image(self, image: Image.Image) -> str:
        image_id = self.ctx.image_id(self.state)
        self.images[image_id] = self.ctx.stored(image)
        self.ctx.remember(image_id, image)
        return image_id

    def render(self, messages: list[dict]) -> list[dict]:
        """State messages (images as ids) -> backend messages (images as PIL)."""
        out = []
        for m in messages:
            content = m.get("content")
            if isinstance(content, list):
                content = [
                    {"type": "image", "image": self.image(p["image"])} if p.get("type") == "image" else p
                    for p in content
                ]
            out.append({**m, "content": content})
        return out

    def user_images(self) -> list[str]:
        """Ids of the images in this turn's user message."""
        content = (self.state.get("messages") or [{}])[-1].get("content")
        return [p["image"] for p in content if p.get("type") == "image"] if isinstance(content, list) else []

    # ---- the model ----

    def generate(self, requests: list[Request], stream: bool = False) -> list[list[Completion]]:
        """Run requests in one backend call (the backend batches them and shares each prompt's prefill across its
        ``n`` samples). Max tokens are capped so the turn's token budget holds. With ``stream`` (a reasoning step
        the user watches), a single sample streams its tokens as events when the run streams tokens.

        A model never taught to think (the shipped smol) ends its turn inside the ``<think>`` it was given: what it
        wrote there was its reply, so it comes back after an empty thought (``</think>``). One that ends at once,
        writing nothing, is asked once more without the ``<think>`` (or, where its chat template opened it, with the
        thought closed), within what is left of the token budget. Either way its reply is not silently lost."""
        if self.ctx.cancel is not None and self.ctx.cancel.is_set():
            raise OutOfBudget("cancelled")
        used = int(self.usage.get("completion_tokens", 0))
        left = self.ctx.tokens_left(self.state) - used
        if left <= 0:
            raise OutOfBudget("max_tokens")
        capped = [  # where the template opened <think>, it is there already
            replace(r, prefix=r.prefix.removeprefix(THINK) if self.ctx.opens_think else r.prefix)
            for r in _fit(requests, left)
        ]
        out = self._call(capped, requests, stream)
        if self.ctx.cancel is not None and self.ctx.cancel.is_set():
            return out  # cut short by the user, not ended by the model
        # replies that open with <think>; a stop string (tot's one-line thoughts) also ends one without </think>
        opened = [i for i, r in enumerate(requests) if r.prefix == THINK and set(r.sampling.stop) <= {"</tool_call>"}]
        for i in opened:
            out[i] = [replace(c, text=END_THINK + c.text) if _ended_in_thought(c) else c for c in out[i]]
        silent = [i for i in opened if all(c.text == END_THINK for c in out[i])]
        left -= int(self.usage.get("completion_tokens", 0)) - used
        if silent and left <= 0:
            self.usage["capped"] = 1  # the first try spent the token budget: no second one
        elif silent:  # without the <think>, or, where the template opened it, with it closed at once
            prefix = END_THINK if self.ctx.opens_think else ""
            retry = [replace(r, prefix=prefix) for r in _fit([capped[i] for i in silent], left)]
            again = self._call(retry, [requests[i] for i in silent], stream)
            for i, completions in zip(silent, again, strict=True):
                out[i] = [replace(c, text=END_THINK + c.text) for c in completions]
        return out

    def _call(self, capped: list[Request], wanted: list[Request] | None, stream: bool) -> list[list[Completion]]:
        """One backend call, its usage counted (``wanted``: the requests before the budget cap, if any)."""
        single = len(capped) == 1 and capped[0].n == 1
        if stream and self.ctx.stream_tokens and single:
            out = [[self._stream(capped[0])]]
        else:
            out = self.ctx.backend.generate(capped)
        self.usage["model_calls"] = self.usage.get("model_calls", 0) + len(capped)
        for req, want, completions in zip(capped, wanted or capped, out, strict=True):
            self.usage["prompt_tokens"] = self.usage.get("prompt_tokens", 0) + completions[0].prompt_tokens
            self.usage["completion_tokens"] = self.usage.get("completion_tokens", 0) + sum(
                c.completion_tokens for c in completions
            )
            if req.sampling.max_tokens < want.sampling.max_tokens and any(
                c.finish_reason == "length" for c in completions
            ):
                self.usage["capped"] = 1  # the token budget cut a generation short
        return out

    def _stream(self, request: Request) -> Completion:
        """One sample, its text deltas emitted as ``token`` events; a cancel stops the generation mid-way."""
        parts: list[str] = []
        stream = self.ctx.backend.stream(request)
        for delta in stream:
            parts.append(delta)
            self.emit({"type": "token", "step": self.name, "text": delta})
            if self.ctx.cancel is not None and self.ctx.cancel.is_set():
                getattr(stream, "close", lambda: None)()  # stops the generation
                break
        done = getattr(stream, "completion", None)  # exact counts once the stream is exhausted
        if done is not None:
            return done
        finish = "length" if len(parts) >= request.sampling.max_tokens else "stop"
        return Completion(text="".join(parts), completion_tokens=len(parts), finish_reason=finish)

    # ---- the trace ----

    def node(self, kind: str, text: str = "", parents: list[int] | None = None, **fields: Any) -> int:
        """Add a trace node (see mmcot.reasoning.trace.Node) and emit it as an event; returns its id."""
        (node_id,) = self.ctx.node_ids(self.state, 1)
        node = {"id": node_id, "kind": kind, "text": text, "parents": list(parents or []), "images": [], **fields}
        node.setdefault("meta", {})["step"] = self.name
        self.nodes.append(node)
        event = {"type": EVENT_OF_KIND.get(kind, "thought"), "node": node_id, "kind": kind, "text": text}
        event.update({k: v for k, v in fields.items() if k in ("tool_call", "score", "tokens")})
        event["parents"] = node["parents"]
        if node["images"]:
            event["images"] = {i: self.image(i) for i in node["images"]}
        self.emit(event)
        return node_id

    # ---- tools ----

    def run_tool(self, call: dict, parent: int | None = None) -> dict:
        """Run one parsed tool call through mmcot.tools (never raises); returns the tool message for the model.
        Images the tool makes join the conversation under their new ids and appear in the trace node."""
        from mmcot.tools.base import ToolContext
        from mmcot.tools.calls import run_tool_call, tool_message

        known = list(self.state.get("images") or {}) + list(self.images)
        tctx = ToolContext(images={i: self.image(i) for i in known}, state=self.ctx.tool_state)
        if self.ctx.image_size:
            tctx.image_size = self.ctx.image_size
        result = run_tool_call(call, tctx, tools=self.ctx.tools)
        self.usage["tool_calls"] = self.usage.get("tool_calls", 0) + 1
        new_ids = list(result.metadata.get("image_ids", []))
        for image_id in new_ids:
            self.images[image_id] = self.ctx.stored(tctx.images[image_id])
            self.ctx.remember(image_id, tctx.images[image_id])
        self.ctx.advance_images(len(tctx.images))
        message = tool_message(result, call)
        ids = iter(new_ids)
        message["content"] = [
            {"type": "image", "image": next(ids)} if p["type"] == "image" else p for p in message["content"]
        ]
        text = prompts_text(message)
        meta = {"error": result.error} if result.error else {}
        self.node(
            "tool_result",
            text,
            parents=[parent] if parent is not None else None,
            images=new_ids,
            tool_call=dict(call),
            meta=meta,
        )
        return message

    def update(self, out: dict | None) -> dict:
        """The node's update: what ``fn`` returned plus what the step recorded (a ``None`` in ``out`` resets)."""
        out = dict(out or {})
        for key, mine in (("nodes", self.nodes), ("images", self.images), ("usage", self.usage)):
            if key in out and out[key] is None:
                continue
            out[key] = mine + out.get(key, []) if key == "nodes" else {**mine, **out.get(key, {})}
        return out


def prompts_text(message: dict) -> str:
    content = message.get("content")
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content if p["type"] == "text")


def as_node(name: str, fn: Callable[[State, Step], dict | None], then_finish: bool = False) -> Callable:
    """Wrap ``fn(state, step)`` as a LangGraph node; exceptions become ``error`` and the trace so far is kept. With
    ``then_finish`` the node also runs ``finish`` on the state its update leads to, and returns both updates as one."""

    def node(state: State, runtime: Any) -> dict:
        step = Step(name, state, runtime.context, runtime.stream_writer)
        try:
            out = fn(state, step)
        except OutOfBudget as e:
            out = {"stop_reason": str(e)}  # no tokens left, or cancelled: the turn ends with what it has
        except Exception as e:  # noqa: BLE001 - a failed step ends the turn with a reason, never a lost trace
            log.debug("step %s failed", name, exc_info=True)
            out = {"error": f"{name}: {type(e).__name__}: {e}"}
        out = step.update(out)
        if not then_finish:
            return out
        if state.get("branch") is not None:  # a strategy's wiring error: each branch would end the turn on its own
            raise ValueError(
                f"node {name!r} is a parallel branch with a fixed edge to finish; join the branches first"
            )
        after = apply_update(state, out)
        end = Step("finish", after, runtime.context, runtime.stream_writer)
        return apply_update(out, end.update(finish(after, end)))

    node.__name__ = name
    return node


# ---- the nodes every turn has ----


def stop(state: State, step: Step) -> dict:
    """A limit, a failure or a cancel ended the turn early; record which."""
    reason = f"error: {state['error']}" if state.get("error") else step.ctx.over_budget(state) or "max_tokens"
    return {"stop_reason": reason}


def finish(state: State, step: Step) -> dict:
    """End of the turn: settle the stop reason, add the exchange and the reply to the conversation, announce both."""
    answer = state.get("answer") or ""
    cancelled = step.ctx.cancel is not None and step.ctx.cancel.is_set()  # e.g. mid-stream in the last step
    capped = (state.get("usage") or {}).get("capped")
    reason = state.get("stop_reason") or (f"error: {state['error']}" if state.get("error") else "")
    reason = reason or ("cancelled" if cancelled else "max_tokens" if capped else "")
    reason = reason or ("answer" if answer else "no_answer")
    reply = state.get("reply") or answer
    step.emit({"type": "answer", "text": answer, "reply": reply})
    step.emit({"type": "stop", "reason": reason, "usage": dict(state.get("usage") or {})})
    return {
        "stop_reason": reason,
        "messages": list(state.get("exchange") or []) + [{"role": "assistant", "content": reply}],
    }


# ---- the model-and-tools loop (image-loop, react, chat) ----


def _fit(requests: list[Request], left: int) -> list[Request]:
    """The requests with their max tokens capped so that all their samples together fit in ``left`` tokens."""
    cap = max(1, left // sum(r.n for r in requests))
    return [replace(r, sampling=replace(r.sampling, max_tokens=min(r.sampling.max_tokens, cap))) for r in requests]


def _ended_in_thought(c: Completion) -> bool:
    """Whether a completion that opened with ``<think>`` ended its turn (not its token budget) without closing it."""
    return c.finish_reason == "stop" and END_THINK not in c.text and "<tool_call>" not in c.text


def answer_of(text: str) -> str:
    """The answer in a model output, tool calls left out, extracted as the evals scorer does."""
    return extract_answer(TOOL_CALL.sub(" ", text or ""))


def model_step(state: State, step: Step) -> dict:
    """The model continues the conversation; tool calls in its output go to ``tool_step``, else the turn ends.

    Reads the strategy config's ``max_tokens``, ``temperature``, ``think`` (start with ``<think>``), ``system``
    and ``max_turns``; the context's tools go to the backend, which lists them for the model (``Request.tools``)."""
    from mmcot.tools.calls import parse_tool_calls

    cfg = step.config
    messages = [m for m in list(state.get("messages") or []) + list(state.get("exchange") or [])]
    system = getattr(cfg, "system", "")
    if system:
        messages = [{"role": "system", "content": system}] + [m for m in messages if m.get("role") != "system"]
    sampling = Sampling(max_tokens=cfg.max_tokens, temperature=cfg.temperature, stop=["</tool_call>"])
    tools = [t.schema() for t in offered(step.ctx.tools or {}, bool(state.get("images") or step.images))]
    request = Request(
        step.render(messages), sampling=sampling, prefix=THINK if getattr(cfg, "think", False) else "", tools=tools
    )
    (completion,) = step.generate([request], stream=True)[0]
    text = request.prefix + completion.text
    if "<tool_call>" in text and "</tool_call>" not in text and completion.finish_reason == "stop":
        text += "</tool_call>"  # generation stopped at the closing tag, which the backend leaves out
    calls, problems = parse_tool_calls(text, step.ctx.tools)
    tokens, short, meta = completion.completion_tokens, "", {}
    if not (calls or problems):
        text, tokens, short, meta = answer_now(step, request, text, tokens)
    work = state.get("work") or {}
    parents = [work["last"]] if "last" in work else None
    thought = step.node("thought", text, parents=parents, tokens=tokens, meta=meta)
    work = {"calls": [], "problems": [], "turns": work.get("turns", 0) + 1, "last": thought}
    if (calls or problems) and work["turns"] < cfg.max_turns:
        for call in calls:
            work["calls"].append(
                {"call": dict(call), "node": step.node("tool_call", parents=[thought], tool_call=dict(call))}
            )
        work["problems"] = [str(p) for p in problems]
        return {"exchange": [{"role": "assistant", "content": text}], "work": work}
    out = {"answer": answer_of(text), "reply": text, "work": work}
    if calls or problems:
        out["stop_reason"] = "max_turns"  # it still wanted tools; the answer is the best it wrote so far
    if short:
        out["stop_reason"] = short
    return out


def offered(tools: dict, images: bool) -> list:
    """The tools listed for the model: mmcot's image tools only once the conversation has an image (asked a plain
    question with zoom listed, a model taught tool traces zooms into an image that does not exist)."""
    from mmcot.tools import TOOLS

    return [
        t
        for t in tools.values()
        if images or TOOLS.get(t.name) is not t or "image" not in t.parameters.get("properties", {})
    ]


def answer_now(step: Step, request: Request, text: str, tokens: int) -> tuple[str, int, str, dict]:
    """A final turn whose thought ended (or ran out of tokens) with no answer after it goes on from
    ``…</think><answer>`` so the model writes one (s1's budget forcing). Returns (text, tokens, the stop reason
    when no tokens were left for it, the trace node's meta)."""
    if THINK not in text or answer_of(text):
        return text, tokens, "", {}
    prefix = (text if END_THINK in text.split(THINK)[-1] else text.rstrip() + END_THINK) + ANSWER
    sampling = replace(request.sampling, stop=[END_ANSWER])
    try:
        (c,) = step.generate([replace(request, sampling=sampling, prefix=prefix)], stream=True)[0]
    except OutOfBudget as e:  # no tokens left to answer with: the thought stands, and the stop reason says why
        return text, tokens, str(e), {}
    # the tag as the prefix tokenizes it is not always the tag as trained: the model may write it again
    answer = c.text.split(END_ANSWER)[0].strip().removeprefix(ANSWER).strip()
    return f"{prefix}{answer}{END_ANSWER}", tokens + c.completion_tokens, "", {"forced_answer": True}


def tool_step(state: State, step: Step) -> dict:
    """Run the tool calls of the last model step; their results (text and images) go back to the model."""
    work = state.get("work") or {}
    messages = [step.run_tool(pending["call"], parent=pending["node"]) for pending in work.get("calls", [])]
    for problem in work.get("problems", []):  # malformed calls: the model reads what was wrong and may retry
        step.node("tool_result", f"error: {problem}", parents=[work["last"]], meta={"error": problem})
        messages.append({"role": "tool", "content": [{"type": "text", "text": f"error: {problem}"}]})
    return {"exchange": messages, "work": {"calls": [], "problems": []}}


def after_model(state: State, ctx: Context) -> str:
    work = state.get("work") or {}
    return "tools" if work.get("calls") or work.get("problems") else "finish"
