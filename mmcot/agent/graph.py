"""The controller's graph: a strategy's nodes wired into one LangGraph ``StateGraph``, compiled once, and run.

Every graph is ``start -> (the strategy's nodes) -> finish -> END`` (a node whose fixed next step is ``finish`` runs
it itself), where ``start`` is LangGraph's ``START`` (the turn's input update, ``state.new_turn``, resets the last
turn's values). A strategy adds its nodes with
``Builder.node`` and its edges with ``Builder.edge``; every edge between a strategy's nodes passes a guard that
diverts to ``stop`` (then ``finish``) when a node failed, the run was cancelled, or a budget (steps, tokens, seconds)
is spent, so no strategy can loop silently or stop without saying why. A router may return ``Builder.send(...)``
branches to fan out in parallel (LangGraph ``Send``); their model calls land in the same backend batch.

``run_turn`` streams the graph (LangGraph ``stream_mode="custom"`` carries the events), optionally on a thread of a
SQLite checkpointer (one thread per conversation), and returns the turn as a ``Trace``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmcot.agent import nodes
from mmcot.agent.state import Context, State

if TYPE_CHECKING:
    from mmcot.reasoning.trace import Trace

Router = Callable[[State, Context], "str | list[Any]"]
_cache: dict[tuple, Any] = {}  # compiled graphs and checkpointers
_compile_lock = threading.Lock()


@dataclass
class Strategy:
    """What the controller runs: a name, a one-line description, a config dataclass of knobs and a graph builder."""

    name: str
    description: str
    config: type
    build: Callable[[Builder], None]


class Builder:
    """Wires a strategy into the controller graph. Node names ``start``, ``stop`` and ``finish`` are taken."""

    def __init__(self) -> None:
        from langgraph.graph import END, START, StateGraph

        self.graph = StateGraph(State, context_schema=Context)
        self.start, self.end = START, END
        self.nodes: dict[str, Callable] = {}
        self.then_finish: set[str] = set()
        for name, fn in (("stop", nodes.stop), ("finish", nodes.finish)):
            self.graph.add_node(name, nodes.as_node(name, fn))
        self.graph.add_edge("stop", "finish")
        self.graph.add_edge("finish", END)

    def node(self, name: str, fn: Callable[[State, nodes.Step], dict | None]) -> None:
        """Add ``fn(state, step) -> partial update`` as node ``name``."""
        self.nodes[name] = fn

    def edge(self, source: str, target: str | Router) -> None:
        """After ``source`` go to ``target``: a node name, or a router ``(state, ctx) -> name | [send(...), ...]``.

        Reaching ``finish`` is always allowed (the strategy is done; ``finish`` itself reports a failed node);
        anything else first passes the guard, except a fixed first node (a fresh turn is within budget, and a model
        call checks the budget and the cancel flag itself). Unguarded edges are plain LangGraph edges: a conditional
        one reads the whole state, about 0.3 ms a step. A node whose fixed next step is ``finish`` runs ``finish``
        itself, in the same LangGraph step (each step costs about 0.3 ms of LangGraph's own bookkeeping); so a node that
        ``send`` fans out to must go to a joining node, not straight to ``finish``."""
        if target == "finish" and source in self.nodes:
            self.then_finish.add(source)
            self.graph.add_edge(source, self.end)
            return
        if not callable(target) and (target == "finish" or source == "start"):
            self.graph.add_edge(self.start if source == "start" else source, target)
            return

        def route(state: State, runtime: Any) -> Any:
            ctx: Context = runtime.context
            if state.get("error"):
                return "stop"
            if state.get("stop_reason"):  # a node ended the turn early and said why
                return "finish"
            nxt = target(state, ctx) if callable(target) else target
            if nxt == "finish":
                return nxt
            if ctx.over_budget(state):
                return "stop"
            return nxt or "finish"  # an empty fan-out means nothing is left to explore

        route.__name__ = f"after_{source}"
        self.graph.add_conditional_edges(self.start if source == "start" else source, route)

    @staticmethod
    def send(node: str, state: State, branch: dict) -> Any:
        """One parallel branch: run ``node`` on the current state with ``state["branch"] = branch``."""
        from langgraph.types import Send

        return Send(node, {**state, "branch": branch})


def compiled(strategy: Strategy, checkpointer: Any = None) -> Any:
    """The strategy's compiled graph, built once per (strategy, checkpointer)."""
    key = (strategy.name, id(strategy.build), id(checkpointer))
    with _compile_lock:
        if key not in _cache:
            builder = Builder()
            strategy.build(builder)
            for name, fn in builder.nodes.items():
                builder.graph.add_node(name, nodes.as_node(name, fn, then_finish=name in builder.then_finish))
            _cache[key] = builder.graph.compile(checkpointer=checkpointer, name=strategy.name)
        return _cache[key]


def sqlite_checkpointer(path: str | Path) -> Any:
    """A LangGraph SQLite checkpointer on ``path`` (created if missing); one per path per process."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = str(Path(path).expanduser().resolve())
    with _compile_lock:
        key = ("sqlite", path)
        if key not in _cache:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            _cache[key] = SqliteSaver(sqlite3.connect(path, check_same_thread=False))
        return _cache[key]


def run_turn(
    ctx: Context,
    turn: dict | None,
    emit: Callable[[dict], None] | None = None,
    thread_id: str | None = None,
    checkpointer: Any = None,
) -> Trace:
    """Run one turn (``turn`` is the input update; ``None`` continues an interrupted turn on ``thread_id``)."""
    ctx.persist = bool(thread_id and checkpointer is not None)
    graph = compiled(ctx.strategy, checkpointer if thread_id else None)
    config = {"configurable": {"thread_id": thread_id}} if thread_id else {}
    state: State = {}
    # Without a listener only the state is streamed: asking LangGraph for "custom" events runs every node on a worker
    # thread (so events can be yielded while it runs), about 1 ms of handoff per step that a 2-token answer notices.
    modes = ["custom", "values"] if emit is not None else ["values"]
    for mode, chunk in graph.stream(turn, config, context=ctx, stream_mode=modes):
        if mode == "custom":
            emit(chunk)
        else:
            state = chunk
    return to_trace(state, ctx)


def to_trace(state: State, ctx: Context) -> Trace:
    import time

    from mmcot.reasoning.trace import Node, Trace  # the package of strategies imports this module

    usage = state.get("usage") or {}
    trace = Trace(
        strategy=ctx.strategy.name,
        question=state.get("question", ""),
        nodes=[Node(**n) for n in sorted(state.get("nodes") or [], key=lambda n: n["id"])],
        answer=state.get("answer") or "",
        stop_reason=state.get("stop_reason") or "",
        model_calls=int(usage.get("model_calls", 0)),
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        completion_tokens=int(usage.get("completion_tokens", 0)),
        tool_calls=int(usage.get("tool_calls", 0)),
        seconds=round(time.monotonic() - ctx.started, 4),
    )
    for image_id in state.get("images") or {}:
        trace.images[image_id] = ctx.image(state, image_id)
    return trace


def event_json(event: dict) -> dict:
    """An event with its PIL images as PNG data URLs, ready for JSON (SSE, logs)."""
    from mmcot.reasoning.trace import to_data_url

    if "images" not in event:
        return event
    return {**event, "images": {i: to_data_url(img) for i, img in event["images"].items()}}
