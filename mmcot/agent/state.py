"""The controller's state, its reducers, the run context and the budget.

``State`` is what LangGraph checkpoints: plain JSON-like values, with images stored once by id (``image_0`` is the
user's first image; tools and crops add ``image_1``...) and referred to by id everywhere else. A checkpointed run
stores them as PNG bytes; a run without a checkpointer keeps the PIL images (encoding a large image costs more than
a controller step).
``Context`` is per run and never checkpointed: the backend, the tools, the strategy's knobs, the budget, the cancel
flag and a few caches. A conversation is one LangGraph thread: ``messages`` and ``images`` grow turn after turn; the
rest belongs to the current turn and is reset when the next one starts.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, TypedDict, get_type_hints

from PIL import Image

if TYPE_CHECKING:
    from mmcot.agent.graph import Strategy
    from mmcot.models.backend import Backend


def extend(left: list | None, right: list | None) -> list:
    """Append; ``None`` resets to empty (a new turn)."""
    return [] if right is None else (left or []) + right


def merge(left: dict | None, right: dict | None) -> dict:
    """Shallow dict update; ``None`` resets to empty."""
    return {} if right is None else {**(left or {}), **right}


def add_counts(left: dict | None, right: dict | None) -> dict:
    """Sum counters key by key (usage from parallel branches adds up); ``None`` resets."""
    if right is None:
        return {}
    out = dict(left or {})
    for k, v in right.items():
        out[k] = out.get(k, 0) + v
    return out


def first(left: str | None, right: str) -> str:
    """The first reason given (parallel branches cancelled in one step each give one); ``""`` resets (a new turn)."""
    return right if not right or not left else left


class State(TypedDict, total=False):
    # the conversation, all turns; image parts are {"type": "image", "image": id}
    messages: Annotated[list[dict], extend]
    images: Annotated[dict[str, Any], merge]  # every image of the conversation: id -> PNG bytes (or PIL, unpersisted)
    strategy: str  # this turn's strategy and its knobs (what an interrupted turn resumes with)
    knobs: dict[str, Any]
    question: str  # this turn's question, with lettered choices when there are any
    choices: list[str] | None
    category: str  # the item's puzzle family when known ("" otherwise): few-shot examples come from it
    exchange: Annotated[list[dict], extend]  # this turn's messages after the user's: tool calls and their results
    nodes: Annotated[list[dict], extend]  # this turn's trace nodes (mmcot.reasoning.trace.Node as dicts)
    usage: Annotated[dict[str, float], add_counts]  # model_calls, prompt_tokens, completion_tokens, tool_calls, steps
    work: Annotated[dict[str, Any], merge]  # the strategy's own values (frontier, candidates, regions...)
    answer: str  # the best answer so far
    reply: str  # the assistant message that ends the turn (the raw model output behind the answer)
    error: Annotated[str, first]  # set when a step failed; the run stops with stop_reason "error: ..."
    stop_reason: Annotated[str, first]
    results: Annotated[list[dict], extend]  # what parallel branches found; the node after them reads and resets it
    branch: dict[str, Any]  # the payload of one Send branch (tree expansion)


REDUCERS = {
    k: t.__metadata__[0] for k, t in get_type_hints(State, include_extras=True).items() if hasattr(t, "__metadata__")
}


def apply_update(state: dict, update: dict) -> dict:
    """``state`` with a node's ``update`` applied through ``State``'s reducers, as LangGraph applies it (applied to a
    first update instead, it makes two updates one)."""
    out = dict(state)
    for key, value in update.items():
        reducer = REDUCERS.get(key)
        out[key] = reducer(state.get(key), value) if reducer else value
    return out


@dataclass
class Budget:
    """Limits of one turn. When one is hit the run ends with the best answer so far and says which limit stopped it."""

    max_steps: int = field(default=100, metadata={"help": "controller steps (node executions, branches included)"})
    max_tokens: int = field(default=8192, metadata={"help": "generated tokens, all model calls together"})
    max_seconds: float = field(default=600.0, metadata={"help": "wall-clock seconds"})

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.max_tokens < 1 or self.max_seconds <= 0:
            raise ValueError(f"budget limits must be positive, got {self}")


@dataclass
class Context:
    """Everything a run needs that is not checkpointed. One per ``solve`` call (or chat turn)."""

    backend: Backend
    strategy: Strategy
    config: Any  # the strategy's config dataclass (its knobs)
    tools: dict[str, Any] = field(default_factory=dict)  # name -> tool, as mmcot.tools.TOOLS holds them
    budget: Budget = field(default_factory=Budget)
    stream_tokens: bool = False  # stream the tokens of single-sample model steps as "token" events
    opens_think: bool = False  # the model's generation prompt already ends with <think> (a -think variant)
    cancel: threading.Event | None = None
    verifier: Callable[..., list[float]] | None = None  # external scorer (e.g. rl's PRM); None: the model judges
    tool_state: dict[str, Any] = field(default_factory=dict)  # per-conversation tool state (the Python kernel)
    image_size: int | None = None  # the model's input side: zoom enlarges crops to it (None: the tools' default)
    persist: bool = False  # the run is checkpointed: images go into the state as PNG bytes
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _next_node: int | None = None
    _next_image: int | None = None
    _decoded: dict[str, Image.Image] = field(default_factory=dict, repr=False)

    def over_budget(self, state: State) -> str | None:
        """Which limit is hit ("cancelled", "max_steps", "max_tokens", "max_seconds"), or None."""
        usage = state.get("usage") or {}
        if self.cancel is not None and self.cancel.is_set():
            return "cancelled"
        if usage.get("steps", 0) >= self.budget.max_steps:
            return "max_steps"
        if usage.get("completion_tokens", 0) >= self.budget.max_tokens:
            return "max_tokens"
        if time.monotonic() - self.started >= self.budget.max_seconds:
            return "max_seconds"
        return None

    def tokens_left(self, state: State) -> int:
        return self.budget.max_tokens - int((state.get("usage") or {}).get("completion_tokens", 0))

    def node_ids(self, state: State, k: int) -> list[int]:
        """``k`` fresh trace node ids; unique across parallel branches."""
        with self._lock:
            if self._next_node is None:
                self._next_node = 1 + max((n["id"] for n in state.get("nodes") or []), default=-1)
            start, self._next_node = self._next_node, self._next_node + k
        return list(range(start, start + k))

    def image_id(self, state: State) -> str:
        with self._lock:
            if self._next_image is None:
                self._next_image = len(state.get("images") or {})
            self._next_image += 1
            return f"image_{self._next_image - 1}"

    def advance_images(self, count: int) -> None:
        """Tools named their images themselves (``ToolContext.add_image``); keep later ids after theirs."""
        with self._lock:
            self._next_image = max(self._next_image or 0, count)

    def image(self, state: State, image_id: str) -> Image.Image:
        """The conversation's image ``image_id`` (decoded once per run)."""
        img = self._decoded.get(image_id)
        if img is None:
            data = (state.get("images") or {}).get(image_id)
            if data is None:
                raise KeyError(f"no image {image_id!r} in this conversation")
            img = data if isinstance(data, Image.Image) else Image.open(io.BytesIO(data)).convert("RGB")
            self._decoded[image_id] = img
        return img

    def stored(self, image: Image.Image) -> Any:
        """How an image goes into the state: PNG bytes when the run is checkpointed, else the image itself."""
        return png(image) if self.persist else image

    def remember(self, image_id: str, image: Image.Image) -> None:
        self._decoded[image_id] = image


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)  # fast; checkpoints favour speed over size
    return buf.getvalue()


def new_turn(user: dict, images: dict[str, Any], question: str, strategy: str, knobs: dict, **fields: Any) -> dict:
    """The input update that starts a turn: the user's message and images, and this turn's values reset."""
    return {
        "messages": [user],
        "images": images,
        "question": question,
        "strategy": strategy,
        "knobs": dict(knobs),
        **{k: None for k in ("nodes", "usage", "work", "exchange", "results")},
        **{k: "" for k in ("answer", "reply", "error", "stop_reason")},
        "choices": None,
        "category": "",
        **fields,
    }
