"""Tool, ToolCall, ToolResult and ToolContext: one tool definition serves the chat, the API, evals and RL rollouts.

A tool has a name, a description, a JSON schema for its arguments and ``call(arguments, ctx) -> ToolResult``.
``FunctionTool(fn)`` makes one from a typed function whose first parameter is the ``ToolContext``: the schema
comes from the type hints (``Literal`` gives an enum, ``X | None`` an optional argument, ``Annotated[T, Schema(...)]``
adds bounds) and the docstring (first paragraph: description; ``Args:`` lines: one per argument).
Stateful tools (the Python kernel) are small ``Tool`` subclasses whose per-conversation state lives in
``ctx.state`` and is released by ``ctx.close()``.

A tool never raises into the agent loop: failures come back as ``ToolResult(error=...)`` that the model reads.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image


def cache_dir() -> Path:
    """Where the tools keep their caches and indexes: ``$XDG_CACHE_HOME/mmcot`` (``~/.cache/mmcot``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mmcot"


class ToolError(Exception):
    """A problem the model caused and can fix (bad box, unknown image id): its message goes back to the model."""


@dataclass
class ToolResult:
    text: str = ""
    images: list[Image.Image] = field(default_factory=list)
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    captions: list[str] = field(default_factory=list)  # one per image: what it shows ("zoom of image_0 box [...]")

    @property
    def ok(self) -> bool:
        return self.error is None


class ToolCall(dict):
    """One tool call: a JSON-ready dict ``{"name", "arguments", "id"}`` (as traces and checkpoints store it) that
    also reads as attributes: ``call.name``, ``call.arguments``, ``call.id``."""

    def __init__(self, name: str = "", arguments: dict[str, Any] | None = None, id: str = "") -> None:
        super().__init__(name=name, arguments=dict(arguments or {}), id=id)

    name = property(lambda self: self["name"])
    arguments = property(lambda self: self["arguments"])
    id = property(lambda self: self["id"])

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI ``tool_calls`` entry (arguments as a JSON string, as that API sends them)."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": json.dumps(self.arguments)},
        }


@dataclass
class ToolContext:
    """What a tool may touch: the conversation's images by id, its scratch dir and its per-conversation state
    (e.g. the Python kernel). ``add_image`` gives a tool's output image the next id (``image_1``, ``image_2``...)."""

    images: dict[str, Image.Image] = field(default_factory=dict)
    scratch: Path | None = None
    state: dict[str, Any] = field(default_factory=dict)
    image_size: int = 448  # the model's input resolution: zoom upscales a crop to this longer side

    def add_image(self, image: Image.Image) -> str:
        image_id = f"image_{len(self.images)}"
        self.images[image_id] = image
        return image_id

    def close(self) -> None:
        """Release per-conversation resources (a Python kernel goes back, killed, never reused)."""
        for key, value in list(self.state.items()):
            if hasattr(value, "close"):
                value.close()
                del self.state[key]


class Tool:
    """A tool: ``name``, ``description``, ``parameters`` (JSON schema of the arguments object) and ``call``."""

    name: str = ""
    description: str = ""
    parameters: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}

    def call(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
        raise NotImplementedError

    def schema(self) -> dict[str, Any]:
        """The OpenAI function-calling form: ``{"type": "function", "function": {name, description, parameters}}``."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    def __repr__(self) -> str:
        return f"<tool {self.name}>"


class FunctionTool(Tool):
    """A tool made from a typed function ``fn(ctx, **arguments) -> ToolResult``."""

    def __init__(self, fn: Callable[..., ToolResult], name: str | None = None) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.description, self.parameters = schema_from_function(fn)

    def call(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
        return self.fn(ctx, **arguments)


@dataclass(frozen=True)
class Schema:
    """Bounds for an argument, as ``Annotated[int, Schema(minimum=1)]`` or ``Annotated[list[float], Schema(items=4)]``."""

    minimum: float | None = None
    maximum: float | None = None
    items: int | None = None  # exact length of a list

    def keywords(self) -> dict[str, Any]:
        out = {k: v for k, v in (("minimum", self.minimum), ("maximum", self.maximum)) if v is not None}
        return out | ({"minItems": self.items, "maxItems": self.items} if self.items is not None else {})


def _type_schema(hint: Any) -> dict[str, Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return _type_schema(args[0]) | args[1].keywords()
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            raise TypeError(f"unsupported union {hint}")
        return _type_schema(rest[0])
    if origin is typing.Literal:
        return {"type": _type_schema(type(args[0]))["type"], "enum": list(args)}
    if origin is list:
        return {"type": "array", "items": _type_schema(args[0])} if args else {"type": "array"}
    simple = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object"}
    if hint in simple:
        return {"type": simple[hint]}
    raise TypeError(f"unsupported type {hint} in a tool signature")


def _docstring_args(doc: str) -> tuple[str, dict[str, str]]:
    """The description (text before ``Args:``, paragraphs joined) and one help string per argument."""
    head, _, args_block = doc.partition("Args:")
    described: dict[str, str] = {}
    current = None
    for line in args_block.splitlines():
        m = re.match(r"\s*(\w+)\s*(?:\([^)]*\))?:\s*(.*)", line)
        if m and (current is None or len(line) - len(line.lstrip()) <= 8):
            current = m.group(1)
            described[current] = m.group(2).strip()
        elif current and line.strip():
            described[current] += " " + line.strip()
    description = " ".join(" ".join(p.split()) for p in head.strip().split("\n\n"))
    return description, described


def schema_from_function(fn: Callable[..., Any]) -> tuple[str, dict[str, Any]]:
    """(description, JSON schema) of ``fn``'s arguments after the first (the ToolContext)."""
    hints = typing.get_type_hints(fn, include_extras=True)
    description, helps = _docstring_args(inspect.getdoc(fn) or "")
    properties, required = {}, []
    for param in list(inspect.signature(fn).parameters.values())[1:]:
        prop = _type_schema(hints[param.name])
        if param.name in helps:
            prop["description"] = helps[param.name]
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
        elif param.default is not None:
            prop["default"] = param.default
        properties[param.name] = prop
    schema: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    schema["additionalProperties"] = False
    return description, schema
