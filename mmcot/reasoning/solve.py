"""``solve``: one question through one strategy, returned as a ``Trace``. The Python API (``mmcot.solve``) and what
``mmcot solve``, ``mmcot eval``, the chat and the HTTP server call.

    import mmcot
    trace = mmcot.solve("scene.png", "How many circles are there?", strategy="tot", model="smol", breadth=4)
    print(trace.answer, trace.stop_reason, trace.model_calls)

A problem is an ``Item`` (its images, question with lettered choices, and family), or images (paths, bytes or PIL)
plus a question. With ``thread=ID`` the question is one turn of a conversation checkpointed in SQLite
(``checkpoint``, default ``~/.mmcot/threads.sqlite``): later turns see the earlier ones, and a turn cut short by a
dead process continues where it stopped when ``solve(thread=ID)`` is called without a question.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from mmcot.agent.graph import run_turn, sqlite_checkpointer
from mmcot.agent.state import Budget, Context, new_turn, png
from mmcot.evals.item import Item
from mmcot.models.backend import Backend, user_message
from mmcot.reasoning import get_strategy, make_config
from mmcot.reasoning.trace import Trace

_backends: dict[str, Backend] = {}
_backends_lock = threading.Lock()


def default_checkpoint() -> Path:
    return Path(os.environ.get("MMCOT_HOME", Path.home() / ".mmcot")) / "threads.sqlite"


def default_model() -> str:
    """``smol`` when its checkpoint is shipped, else ``tiny`` (the spec used when none is given)."""
    from mmcot.models.load import shipped

    return "tiny" if "smol" not in shipped() and "tiny" in shipped() else "smol"


def get_backend(spec: str) -> Backend:
    """The backend for a model spec, loaded once per process."""
    from mmcot.models.backend import load_backend

    with _backends_lock:
        if spec not in _backends:
            _backends[spec] = load_backend(spec)
        return _backends[spec]


def solve(
    problem: Item | Image.Image | str | Path | bytes | list | None = None,
    question: str | None = None,
    strategy: str = "cot",
    model: str | None = None,
    backend: Backend | None = None,
    tools: list[str] | str | dict[str, Any] | None = None,
    budget: Budget | dict | None = None,
    emit: Callable[[dict], None] | None = None,
    stream_tokens: bool | None = None,
    cancel: threading.Event | None = None,
    thread: str | None = None,
    checkpoint: str | Path | None = None,
    tool_state: dict | None = None,
    **knobs: Any,
) -> Trace:
    """Solve ``problem`` with ``strategy`` (a name from ``mmcot strategies`` or ``pkg.mod:obj``) and its ``knobs``.

    ``model`` is a spec for ``load_backend`` (``tiny``, ``smol``, a folder, ``openai:URL#model``; default ``smol`` when
    it is shipped, else ``tiny``) unless ``backend`` is given. ``tools`` overrides the strategy's tool list (names or a ``{name: Tool}`` dict). ``budget`` caps steps,
    generated tokens and seconds. ``emit`` receives events as they happen (``token``, ``thought``, ``tool_call``,
    ``tool_result``, ``score``, ``answer``, ``stop``); tokens stream when ``emit`` is given unless ``stream_tokens``
    is False. Setting ``cancel`` stops the run at the next step (``stop_reason="cancelled"``). ``tool_state`` keeps
    per-conversation tool state (the Python kernel) across calls; by default it is fresh and released at the end.
    Raises ValueError for a bad strategy, knob, image or tool name."""
    checkpointer = sqlite_checkpointer(checkpoint or default_checkpoint()) if thread else None
    before = _thread_values(checkpointer, thread) if thread else {}
    resume = thread is not None and problem is None and question is None
    if resume:
        if not before or before.get("stop_reason"):
            raise ValueError(f"thread {thread!r} has no unfinished turn to resume; ask a question")
        strategy, knobs = before["strategy"], dict(before.get("knobs") or {})
    strat = get_strategy(strategy)
    cfg = make_config(strat, knobs)
    turn = (
        None if resume else _turn(problem, question, strat.name, knobs, len(before.get("images") or {}), bool(thread))
    )
    backend = backend or get_backend(model or default_model())
    ctx = Context(
        backend=backend,
        strategy=strat,
        config=cfg,
        tools=_tools(cfg, tools, strat.name),
        budget=budget if isinstance(budget, Budget) else Budget(**(budget or {})),
        stream_tokens=(emit is not None) if stream_tokens is None else stream_tokens,
        opens_think=opens_think(backend),
        image_size=image_size(backend),
        cancel=cancel,
        tool_state=tool_state if tool_state is not None else {},
    )
    try:
        return run_turn(ctx, turn, emit, thread, checkpointer)
    finally:
        if tool_state is None:
            from mmcot.tools.base import ToolContext

            ToolContext(state=ctx.tool_state).close()


def opens_think(backend: Backend) -> bool:
    """Whether the backend's generation prompt already opens ``<think>`` (a local ``-think`` model)."""
    template = getattr(getattr(backend, "processor", None), "chat_template", None) or ""
    return "think_default = true" in template


def history(thread: str, checkpoint: str | Path | None = None) -> list[dict]:
    """The messages of a conversation so far (images as ids), ``[]`` for a new thread."""
    values = _thread_values(sqlite_checkpointer(checkpoint or default_checkpoint()), thread)
    return list(values.get("messages") or [])


def _thread_values(checkpointer: Any, thread: str) -> dict:
    saved = checkpointer.get_tuple({"configurable": {"thread_id": thread}})
    return dict(saved.checkpoint.get("channel_values") or {}) if saved else {}


def _turn(problem: Any, question: str | None, strategy: str, knobs: dict, first_id: int, persist: bool) -> dict:
    """The input update of a new turn: the user's message with its images (ids continue the conversation's)."""
    from mmcot.tools.images import open_image

    choices, category = None, ""
    if isinstance(problem, Item):
        images, choices, category = list(problem.images), problem.choices, problem.category
        question = question or problem.prompt()
    else:
        sources = problem if isinstance(problem, list) else ([] if problem is None else [problem])
        images = [s if isinstance(s, Image.Image) else open_image(s) for s in sources]
    if not question or not question.strip():
        raise ValueError("no question given")
    images = [img if img.mode == "RGB" else img.convert("RGB") for img in images]
    ids = [f"image_{first_id + i}" for i in range(len(images))]
    stored = {i: png(img) if persist else img for i, img in zip(ids, images, strict=True)}
    return new_turn(user_message(question, ids), stored, question, strategy, knobs, choices=choices,
                    category=category)  # fmt: skip


def _tools(cfg: Any, tools: Any, strategy: str) -> dict[str, Any]:
    """The tools of this run: ``tools`` if given, else the names in the strategy's ``tools`` knob."""
    from mmcot.tools import resolve_tools

    if tools is not None and not hasattr(cfg, "tools"):
        raise ValueError(f"strategy {strategy} does not call tools; use image-loop or react")
    names = getattr(cfg, "tools", "") if tools is None else tools
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    try:
        return resolve_tools(names)
    except KeyError as e:
        raise ValueError(e.args[0]) from None


def image_size(backend: Backend) -> int | None:
    """The model's input side in pixels when the backend knows it (tools enlarge crops to it)."""
    size = getattr(getattr(getattr(backend, "processor", None), "image_processor", None), "size", None) or {}
    return size.get("height") or size.get("shortest_edge")
