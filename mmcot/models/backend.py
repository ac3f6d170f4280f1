"""Backend: the one interface every strategy, the chat, the server and RL rollouts use to call a model.

A conversation is a list of messages in the Hugging Face / OpenAI chat shape. Content is a string or a list of
parts ``{"type": "text", "text": ...}`` and ``{"type": "image", "image": PIL.Image}``; roles are ``system``,
``user``, ``assistant`` and ``tool`` (a tool message may carry images too).

Implementations: ``mmcot.models.local.LocalBackend`` (transformers, batched, the n samples of one request share the
image encoding and prompt prefill) and ``mmcot.models.openai_backend.OpenAIBackend`` (any OpenAI-compatible server).
``load_backend(spec)`` picks one from a model spec string.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Message = dict[str, Any]


@dataclass
class Sampling:
    """How to sample. ``temperature=0`` is greedy."""

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None


@dataclass
class Request:
    """One conversation to continue, ``n`` times."""

    messages: list[Message]
    n: int = 1
    sampling: Sampling = field(default_factory=Sampling)
    prefix: str = ""  # text the assistant turn is forced to start with (e.g. "<think>"); not part of Completion.text


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"  # "stop" (eos or a stop string) or "length"


@runtime_checkable
class Backend(Protocol):
    name: str

    def generate(self, requests: list[Request]) -> list[list[Completion]]:
        """One list of ``request.n`` completions per request, in order."""
        ...

    def stream(self, request: Request) -> Iterator[str]:
        """Text deltas of a single completion (``request.n`` must be 1)."""
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
