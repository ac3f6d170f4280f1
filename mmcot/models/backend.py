"""Backend: the one interface every strategy, the chat, the server and RL rollouts use to call a model.

A conversation is a list of messages in the Hugging Face / OpenAI chat shape. Content is a string or a list of
parts ``{"type": "text", "text": ...}`` and ``{"type": "image", "image": PIL.Image}``; roles are ``system``,
``user``, ``assistant`` and ``tool`` (a tool message may carry images too).

Implementations: ``mmcot.models.local.LocalBackend`` (transformers, batched, the n samples of one request share the
image encoding and prompt prefill) and ``mmcot.models.openai_backend.OpenAIBackend`` (any OpenAI-compatible server).
``load_backend(spec)`` picks one from a model spec string.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

Message = dict[str, Any]
MAX_ASPECT = 200  # the most elongated image a backend takes (as Qwen2-VL's processor)


class RequestError(ValueError):
    """A request a backend cannot serve as given (bad parameters, messages or images); the message says what to fix.
    The HTTP server answers it with a 400."""


@dataclass
class Sampling:
    """How to sample. ``temperature=0`` is greedy."""

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None

    def __post_init__(self):
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        if self.max_tokens < 1:
            raise RequestError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise RequestError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise RequestError(f"top_p must be in (0, 1], got {self.top_p}")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise RequestError(f"stop must be non-empty strings, got {self.stop!r}")


@dataclass
class Request:
    """One conversation to continue, ``n`` times. ``tools`` are listed for the model as its chat template lists
    ``tools=[...]`` (a local model), or as a Hermes tools block in the system message (an OpenAI-compatible server)."""

    messages: list[Message]
    n: int = 1
    sampling: Sampling = field(default_factory=Sampling)
    prefix: str = ""  # text the assistant turn is forced to start with (e.g. "<think>"); not part of Completion.text
    tools: list[dict[str, Any]] = field(default_factory=list)  # OpenAI function schemas the model may call

    def __post_init__(self):
        if self.n < 1:
            raise RequestError(f"n must be at least 1, got {self.n}")
        if not isinstance(self.messages, list) or not self.messages:
            raise RequestError("messages must be a non-empty list of chat messages")


def user_message(text: str, images: list[Any] | tuple = ()) -> dict[str, Any]:
    """A user turn the way mmcot's models are trained on it: the images, then the text (LLaVA's order; the shipped
    checkpoints were trained so, and every prompt mmcot builds goes through here). An image that is ``None`` is a
    bare ``{"type": "image"}`` placeholder, filled later from a row's ``images`` (training rows, TRL)."""
    parts = [{"type": "image"} if im is None else {"type": "image", "image": im} for im in images]
    return {"role": "user", "content": [*parts, {"type": "text", "text": text}]}


def part_image(value: Any, where: str = "image") -> Any:
    """The RGB PIL image of an image part's ``image`` value (a PIL image, a path or bytes); a RequestError that says
    what to fix otherwise. Empty, oversized and extremely elongated images are refused: processors that resize the
    short side (CLIP's) would turn a 1x5000 strip into gigabytes."""
    from PIL import Image

    from mmcot.tools.images import MAX_PIXELS, ImageError, open_image

    if isinstance(value, (str, Path, bytes)):
        try:
            value = open_image(value)
        except ImageError as e:
            raise RequestError(f"{where}: {e}") from None
    if not isinstance(value, Image.Image):
        raise RequestError(f"{where}: an image part needs a PIL image, a path or bytes, got {type(value).__name__}")
    w, h = value.size
    if not w or not h or w * h > MAX_PIXELS or max(w, h) > MAX_ASPECT * min(w, h):
        raise RequestError(
            f"{where}: cannot take a {w}x{h} image; resize, crop or pad it to at most {MAX_PIXELS} pixels "
            f"and an aspect ratio under {MAX_ASPECT}:1"
        )
    return value if value.mode == "RGB" else value.convert("RGB")


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"  # "stop" (eos or a stop string) or "length"


class Stream(Iterator[str]):
    """What ``Backend.stream`` returns: iterate it for text deltas; once it is exhausted, ``completion`` holds the
    whole Completion (text, exact token counts, finish reason). Closing it (or dropping the last reference to it)
    stops the generation. Wraps a generator that yields the deltas and returns the Completion."""

    def __init__(self, deltas: Generator[str, None, Completion]):
        self._deltas = deltas
        self.completion: Completion | None = None

    def __next__(self) -> str:
        try:
            return next(self._deltas)
        except StopIteration as done:
            self.completion = self.completion or done.value
            raise

    def close(self) -> None:
        self._deltas.close()


@runtime_checkable
class Backend(Protocol):
    name: str

    def generate(self, requests: list[Request]) -> list[list[Completion]]:
        """One list of ``request.n`` completions per request, in order."""
        ...

    def stream(self, request: Request) -> Stream:
        """Text deltas of a single completion (``request.n`` must be 1); then ``.completion`` holds all of it."""
        ...


def load_backend(spec: str, **kwargs: Any) -> Backend:
    """A backend from a model spec: ``tiny``, ``smol`` (shipped presets, optionally ``smol-think``...), a folder
    holding a transformers VLM, or ``openai:URL#model`` for any OpenAI-compatible server."""
    if spec.startswith("openai:"):
        from mmcot.models.openai_backend import OpenAIBackend

        url, _, model = spec[len("openai:") :].partition("#")
        return OpenAIBackend(base_url=url, model=model or "default", **kwargs)
    from mmcot.models.local import LocalBackend

    return LocalBackend.from_spec(spec, **kwargs)
