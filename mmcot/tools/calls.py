"""From model text to a tool result in the conversation: parse, check, run, render.

- ``parse_tool_calls(text, tools)`` finds ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks (the
  Hermes/Qwen convention), lenient about whitespace, code fences and a missing closing tag (generation often stops
  at ``</tool_call>``), strict about the rest: each problem becomes a ``ToolCallError`` whose text tells the model
  what to fix on its next turn.
- ``check_arguments(schema, arguments)`` validates arguments against a tool's JSON schema (the subset that
  ``FunctionTool`` writes) and returns them cleaned (a whole float for an integer becomes an int, nulls drop).
- ``run_tool_call(call, ctx, tools)`` runs one call and never raises. Each image the tool returns gets the
  conversation's next id (``ctx.add_image``) and the result's text names it: ``image_3 (448x448): zoom of image_0
  box [10, 10, 60, 60]``; the ids are also in ``result.metadata["image_ids"]``.
- ``tool_message(result, call)`` renders a result as a ``tool`` message: a text part, then one image part
  ``{"type": "image", "image": PIL}`` per new image.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mmcot.tools.base import Tool, ToolCall, ToolContext, ToolError, ToolResult

OPEN, CLOSE = re.compile(r"<tool_call>", re.I), re.compile(r"</tool_call>", re.I)
FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
TYPE_WORDS = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false"}
TYPE_WORDS |= {"array": "a list", "object": "an object"}


@dataclass
class ToolCallError:
    """A tool call that could not be used; ``str()`` is the message for the model."""

    index: int  # 0-based position of the <tool_call> block in the text
    message: str
    raw: str = ""  # the block's text as the model wrote it
    name: str = ""  # the tool name, when it could be read

    def __str__(self) -> str:
        return f"tool call {self.index + 1}{f' ({self.name})' if self.name else ''}: {self.message}"

    def as_result(self) -> ToolResult:
        return ToolResult(error=str(self), metadata={"parse_error": True})


def _describe(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return "one of " + ", ".join(json.dumps(v) for v in prop["enum"])
    word = TYPE_WORDS.get(prop.get("type", ""), "a value")
    if prop.get("type") == "array":
        n = (prop.get("minItems"), prop.get("maxItems"))
        count = f" {n[0]}" if n[0] is not None and n[0] == n[1] else ""
        inner = TYPE_WORDS.get(prop.get("items", {}).get("type", ""), "values").removeprefix("an ").removeprefix("a ")
        return f"a list of{count} {inner}s" if prop.get("items") else word
    return word


def _check(prop: dict[str, Any], value: Any, path: str) -> tuple[Any, list[str]]:
    kind, bad = prop.get("type"), [f"'{path}' must be {_describe(prop)}, got {json.dumps(value)[:80]}"]
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        value = int(value)
    ok = {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
    }.get(kind, True)
    if not ok or ("enum" in prop and value not in prop["enum"]):
        return value, bad
    if kind == "array":
        if not prop.get("minItems", 0) <= len(value) <= prop.get("maxItems", len(value)):
            return value, bad
        out, problems = [], []
        for i, item in enumerate(value):
            item, p = _check(prop.get("items", {}), item, f"{path}[{i}]")
            out.append(item)
            problems += p
        return out, problems
    if kind in ("integer", "number"):
        if "minimum" in prop and value < prop["minimum"] or "maximum" in prop and value > prop["maximum"]:
            low, high = prop.get("minimum", "-inf"), prop.get("maximum", "inf")
            return value, [f"'{path}' must be between {low} and {high}, got {value}"]
    return value, []


def check_arguments(schema: dict[str, Any], arguments: Any) -> tuple[dict[str, Any], list[str]]:
    """(cleaned arguments, problems) for ``arguments`` against an object schema."""
    if not isinstance(arguments, dict):
        return {}, [f'"arguments" must be a JSON object, got {json.dumps(arguments)[:80]}']
    props = schema.get("properties", {})
    cleaned, problems = {}, []
    for name, value in arguments.items():
        if name not in props:
            problems.append(f"unknown argument '{name}' (this tool takes: {', '.join(props) or 'no arguments'})")
        elif value is None and name not in schema.get("required", []):
            continue
        else:
            cleaned[name], p = _check(props[name], value, name)
            problems += p
    for name in schema.get("required", []):
        if name not in arguments:
            problems.append(f"missing required argument '{name}' ({_describe(props[name])})")
    return cleaned, problems


def _blocks(text: str) -> list[str]:
    """The text inside each <tool_call> block; an unclosed last block runs to the end of the text."""
    parts = OPEN.split(text)[1:]
    return [CLOSE.split(part, maxsplit=1)[0] for part in parts]


def parse_tool_calls(text: str, tools: Mapping[str, Tool] | None = None) -> tuple[list[ToolCall], list[ToolCallError]]:
    """The tool calls in ``text`` and the problems with the ones that cannot run.

    With ``tools`` (default: the registry), unknown names and bad arguments are problems too."""
    if tools is None:
        from mmcot.tools import TOOLS as tools
    calls, errors = [], []
    for index, raw in enumerate(_blocks(text)):
        body = FENCE.sub("", raw.strip()).strip()
        if not body:
            errors.append(ToolCallError(index, 'empty tool call; write {"name": ..., "arguments": {...}}', raw))
            continue
        try:
            obj, end = json.JSONDecoder().raw_decode(body)
        except json.JSONDecodeError as e:
            where = body[max(0, e.pos - 20) : e.pos + 20]
            errors.append(ToolCallError(index, f"not valid JSON ({e.msg} at character {e.pos}: ...{where}...)", raw))
            continue
        if body[end:].strip():
            errors.append(
                ToolCallError(index, f"unexpected text after the JSON object: {body[end:].strip()[:40]!r}", raw)
            )
            continue
        call, problem = _to_call(obj, tools, index)
        if problem:
            errors.append(
                ToolCallError(index, problem, raw, name=obj.get("name", "") if isinstance(obj, dict) else "")
            )
        else:
            calls.append(call)
    return calls, errors


def _to_call(obj: Any, tools: Mapping[str, Tool], index: int) -> tuple[ToolCall | None, str]:
    if not isinstance(obj, dict):
        return None, 'a tool call must be a JSON object {"name": ..., "arguments": {...}}'
    extra = set(obj) - {"name", "arguments", "id"}
    if extra:
        return None, f'unexpected keys {sorted(extra)}; a tool call has only "name" and "arguments"'
    name, arguments = obj.get("name"), obj.get("arguments", {})
    if not isinstance(name, str) or not name:
        return None, 'missing "name" (a string naming the tool)'
    if isinstance(arguments, str):  # the OpenAI wire form: arguments as a JSON string
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as e:
            return None, f'"arguments" is a string that is not valid JSON ({e.msg})'
    if name not in tools:
        return None, f"unknown tool '{name}'; available tools: {', '.join(tools) or 'none'}"
    arguments, problems = check_arguments(tools[name].parameters, arguments)
    if problems:
        return None, "; ".join(problems)
    return ToolCall(name, arguments, str(obj.get("id") or f"call_{index}")), ""


def _as_call(call: Any) -> ToolCall:
    if isinstance(call, ToolCall):
        return call
    if isinstance(call, dict) and isinstance(call.get("function"), dict):  # an OpenAI tool_calls entry
        fn = call["function"]
        arguments = fn.get("arguments") or {}
        if isinstance(arguments, str):
            arguments = json.loads(arguments) if arguments.strip() else {}
        return ToolCall(fn.get("name", ""), arguments, call.get("id", ""))
    if isinstance(call, dict):
        return ToolCall(call.get("name", ""), call.get("arguments") or {}, call.get("id", ""))
    raise TypeError(f"not a tool call: {call!r}")


def run_tool_call(call: Any, ctx: ToolContext, tools: Mapping[str, Tool] | None = None) -> ToolResult:
    """Run one call (a ToolCall, a ``{"name", "arguments"}`` dict or an OpenAI ``tool_calls`` entry); never raises.

    ``tools`` defaults to the registry. New images get ids in ``ctx`` and are named in the result's text."""
    from mmcot.tools import TOOLS

    tools = TOOLS if tools is None else tools
    try:
        call = _as_call(call)
    except (TypeError, ValueError, json.JSONDecodeError) as e:
        return ToolResult(error=f"malformed tool call: {e}")
    tool = tools.get(call.name)
    if tool is None:
        return ToolResult(error=f"unknown tool '{call.name}'; available tools: {', '.join(tools) or 'none'}")
    arguments, problems = check_arguments(tool.parameters, call.arguments)
    if problems:
        return ToolResult(error=f"bad arguments for {call.name}: " + "; ".join(problems))
    try:
        result = tool.call(arguments, ctx)
    except ToolError as e:
        result = ToolResult(error=str(e))
    except Exception as e:  # noqa: BLE001 - a broken tool is the model's data, never the loop's crash
        result = ToolResult(error=f"{call.name} failed: {type(e).__name__}: {e}")
    if not isinstance(result, ToolResult):
        return ToolResult(error=f"{call.name} returned {type(result).__name__}, not a ToolResult")
    return _name_images(result, ctx)


def _name_images(result: ToolResult, ctx: ToolContext) -> ToolResult:
    if "image_ids" in result.metadata or not result.images:
        return result
    lines, ids = [], []
    for i, image in enumerate(result.images):
        image_id = ctx.add_image(image)
        ids.append(image_id)
        caption = result.captions[i] if i < len(result.captions) else "tool output"
        lines.append(f"{image_id} ({image.width}x{image.height}): {caption}")
    result.metadata["image_ids"] = ids
    result.text = "\n".join(lines + ([result.text] if result.text else []))
    return result


def tool_message(result: ToolResult, call: Any = None) -> dict[str, Any]:
    """The ``tool`` message that carries ``result`` back into the conversation (text first, then the images)."""
    text = result.text
    if result.error:
        text = f"{text}\nerror: {result.error}" if text else f"error: {result.error}"
    content: list[dict[str, Any]] = [{"type": "text", "text": text}]
    content += [{"type": "image", "image": image} for image in result.images]
    message: dict[str, Any] = {"role": "tool", "content": content}
    if call is not None:
        call = _as_call(call)
        message["name"] = call.name
        if call.id:
            message["tool_call_id"] = call.id
    return message
