"""The tool layer: one registry of tools that the chat, the HTTP API, evals and RL rollouts all use.

    from mmcot.tools import TOOLS, ToolContext, parse_tool_calls, run_tool_call, tool_message, tool_schemas
    ctx = ToolContext(images={"image_0": img})
    calls, errors = parse_tool_calls(model_text)            # <tool_call>{"name": ..., "arguments": ...}</tool_call>
    result = run_tool_call(calls[0], ctx)                    # never raises; new images get ids image_1, ...
    messages.append(tool_message(result, calls[0]))          # a "tool" message with text and image parts
    ctx.close()                                              # end of the conversation: kills its Python kernel

``TOOLS`` maps names to tools; ``get_tool("my_pkg.module:tool")`` loads a user tool (a Tool, a Tool class, or a
typed function whose first parameter is the ToolContext). ``tool_schemas(...)`` exports them in the OpenAI
function-calling format.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any

from mmcot.tools.base import FunctionTool, Tool, ToolCall, ToolContext, ToolError, ToolResult
from mmcot.tools.calls import ToolCallError, check_arguments, parse_tool_calls, run_tool_call, tool_message
from mmcot.tools.detect import DETECT
from mmcot.tools.image_tools import IMAGE_TOOLS
from mmcot.tools.python_tool import PythonTool
from mmcot.tools.search import SearchTool

TOOLS: dict[str, Tool] = {tool.name: tool for tool in [*IMAGE_TOOLS, DETECT, PythonTool(), SearchTool()]}

__all__ = [
    "TOOLS", "FunctionTool", "Tool", "ToolCall", "ToolCallError", "ToolContext", "ToolError", "ToolResult",
    "check_arguments", "get_tool", "parse_tool_calls", "resolve_tools", "run_tool_call", "tool_message", "tool_schemas",
]  # fmt: skip


def get_tool(name: str) -> Tool:
    """A registered tool by name, or user code by dotted path ``pkg.module:obj``."""
    if name in TOOLS:
        return TOOLS[name]
    if ":" not in name:
        raise KeyError(f"unknown tool {name!r}; registered: {', '.join(TOOLS)}; or give a dotted path pkg.module:obj")
    module_name, _, attr = name.partition(":")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise KeyError(f"cannot load tool {name!r}: {e}") from None
    if isinstance(obj, type) and issubclass(obj, Tool):
        obj = obj()
    elif callable(obj) and not isinstance(obj, Tool):
        obj = FunctionTool(obj)
    if not isinstance(obj, Tool):
        raise KeyError(f"{name!r} is not a tool (a Tool, a Tool class or a typed function)")
    return obj


def resolve_tools(tools: Iterable[str | Tool] | Mapping[str, Tool] | None = None) -> dict[str, Tool]:
    """A name -> tool mapping from names, dotted paths, Tool objects or a mapping; None means every tool."""
    if tools is None:
        return dict(TOOLS)
    if isinstance(tools, Mapping):
        return dict(tools)
    out: dict[str, Tool] = {}
    for item in tools:
        tool = get_tool(item) if isinstance(item, str) else item
        out[tool.name] = tool
    return out


def tool_schemas(tools: Iterable[str | Tool] | Mapping[str, Tool] | None = None) -> list[dict[str, Any]]:
    """The OpenAI function-calling schemas of ``tools`` (names, dotted paths, Tools or a mapping; None: all)."""
    return [tool.schema() for tool in resolve_tools(tools).values()]
