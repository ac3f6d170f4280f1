"""Parsing model output into tool calls, checking arguments, running calls without raising, rendering results."""

import pytest

from mmcot.tools import (
    TOOLS,
    ToolCall,
    ToolContext,
    ToolResult,
    check_arguments,
    parse_tool_calls,
    run_tool_call,
    tool_message,
)
from mmcot.tools.base import FunctionTool, ToolError


def test_parse_is_lenient_about_layout():
    text = (
        'Let me look closer.\n<tool_call>\n  {"name": "zoom", "arguments": {"box": [1, 2, 30, 40]}}\n</tool_call>'
        '\n<TOOL_CALL>```json\n{"name": "flip", "arguments": {}}\n```</TOOL_CALL>'
        '<tool_call>{"name": "rotate", "arguments": "{\\"degrees\\": 90}"}'  # unclosed: generation stopped there
    )
    calls, errors = parse_tool_calls(text)
    assert errors == []
    assert [c.name for c in calls] == ["zoom", "flip", "rotate"]
    assert calls[0].arguments == {"box": [1, 2, 30, 40]}
    assert calls[2].arguments == {"degrees": 90}
    assert [c.id for c in calls] == ["call_0", "call_1", "call_2"]


def test_no_calls_in_plain_text():
    assert parse_tool_calls("The answer is 4.") == ([], [])


@pytest.mark.parametrize(
    "body, message",
    [
        ("", "empty tool call"),
        ('{"name": "crop" "arguments": {}}', "not valid JSON (Expecting ',' delimiter"),
        ('{"name": "crop", "arguments": {}} and then', "unexpected text after the JSON object"),
        ('["crop"]', "must be a JSON object"),
        ('{"arguments": {}}', 'missing "name"'),
        ('{"name": "crop", "args": {}}', "unexpected keys ['args']"),
        ('{"name": "zoomm", "arguments": {}}', "unknown tool 'zoomm'; available tools: crop, zoom"),
        ('{"name": "crop", "arguments": {"box": [1, 2]}}', "'box' must be a list of 4 numbers, got [1, 2]"),
        ('{"name": "crop", "arguments": {}}', "missing required argument 'box' (a list of 4 numbers)"),
        ('{"name": "crop", "arguments": {"box": [0, 0, 5, 5], "colour": 1}}', "unknown argument 'colour'"),
        ('{"name": "flip", "arguments": {"direction": "diagonal"}}', "'direction' must be one of \"horizontal\""),
        ('{"name": "grid", "arguments": {"rows": 40}}', "'rows' must be between 1 and 26, got 40"),
        ('{"name": "rotate", "arguments": {"degrees": "ninety"}}', "'degrees' must be a number"),
        ('{"name": "rotate", "arguments": "{bad"}', '"arguments" is a string that is not valid JSON'),
        ('{"name": "rotate", "arguments": [90]}', '"arguments" must be a JSON object'),
    ],
)
def test_parse_errors_tell_the_model_what_to_fix(body, message):
    calls, errors = parse_tool_calls(f"thinking... <tool_call>{body}</tool_call>")
    assert calls == []
    assert len(errors) == 1
    assert message in str(errors[0]), str(errors[0])
    assert str(errors[0]).startswith("tool call 1")
    assert errors[0].as_result().error == str(errors[0])


def test_good_and_bad_calls_are_separated():
    text = '<tool_call>{"name": "flip", "arguments": {}}</tool_call><tool_call>{"name": "x"}</tool_call>'
    calls, errors = parse_tool_calls(text)
    assert [c.name for c in calls] == ["flip"]
    assert [e.index for e in errors] == [1]
    assert str(errors[0]).startswith("tool call 2 (x): unknown tool")


def test_parse_against_a_given_tool_set():
    text = '<tool_call>{"name": "python", "arguments": {"code": "1"}}</tool_call>'
    assert parse_tool_calls(text, tools={"crop": TOOLS["crop"]})[1][0].message.startswith("unknown tool 'python'")


def test_check_arguments_cleans():
    schema = TOOLS["zoom"].parameters
    args, problems = check_arguments(schema, {"box": [1.0, 2, 3, 4.5], "size": 64.0, "cell": None})
    assert problems == []
    assert args == {"box": [1.0, 2, 3, 4.5], "size": 64}  # whole float -> int; null optional dropped
    assert isinstance(args["size"], int)
    _, problems = check_arguments(schema, {"size": True})
    assert problems == ["'size' must be an integer, got true"]


def test_run_never_raises(ctx):
    def broken(ctx: ToolContext) -> ToolResult:
        """Always breaks."""
        raise ZeroDivisionError("boom")

    def wrong_type(ctx: ToolContext) -> ToolResult:
        """Returns the wrong type."""
        return "text"

    def refuses(ctx: ToolContext) -> ToolResult:
        """Refuses politely."""
        raise ToolError("not like that")

    tools = {f.__name__: FunctionTool(f) for f in (broken, wrong_type, refuses)}
    assert (
        run_tool_call({"name": "broken", "arguments": {}}, ctx, tools).error
        == "broken failed: ZeroDivisionError: boom"
    )
    assert "returned str" in run_tool_call({"name": "wrong_type"}, ctx, tools).error
    assert run_tool_call(ToolCall("refuses"), ctx, tools).error == "not like that"
    assert run_tool_call({"name": "nope"}, ctx, tools).error.startswith("unknown tool 'nope'")
    assert run_tool_call(42, ctx, tools).error.startswith("malformed tool call")
    bad = run_tool_call({"name": "crop", "arguments": {"box": "all"}}, ctx)
    assert bad.error.startswith("bad arguments for crop: 'box' must be a list of 4 numbers")


def test_run_accepts_the_openai_wire_form(ctx):
    call = {"id": "call_9", "type": "function", "function": {"name": "flip", "arguments": '{"direction": "vertical"}'}}
    result = run_tool_call(call, ctx)
    assert result.ok and result.metadata["image_ids"] == ["image_1"]
    message = tool_message(result, call)
    assert message["tool_call_id"] == "call_9" and message["name"] == "flip"


def test_new_images_get_ids_and_are_named(ctx):
    result = run_tool_call(ToolCall("crop", {"box": [20, 20, 60, 60]}), ctx)
    assert result.metadata["image_ids"] == ["image_1"]
    assert result.text == "image_1 (40x40): crop of image_0 box [20, 20, 60, 60]"
    assert list(ctx.images) == ["image_0", "image_1"]
    message = tool_message(result, ToolCall("crop", id="call_0"))
    assert message["role"] == "tool"
    assert message["content"][0] == {"type": "text", "text": result.text}
    assert message["content"][1]["type"] == "image" and message["content"][1]["image"] is ctx.images["image_1"]
    again = run_tool_call(ToolCall("crop", {"box": [0, 0, 10, 10]}), ctx)  # the default image is now image_1
    assert again.text.startswith("image_2 (10x10): crop of image_1")


def test_error_message_renders_for_the_model():
    message = tool_message(ToolResult(text="partial output", error="it broke"))
    assert message == {"role": "tool", "content": [{"type": "text", "text": "partial output\nerror: it broke"}]}
