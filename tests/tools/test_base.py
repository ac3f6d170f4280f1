"""Tool definitions: schemas from type hints and docstrings, ToolCall, ToolContext, the registry."""

import copy
import json
import pickle
from typing import Annotated, Literal

import pytest

from mmcot.tools import TOOLS, FunctionTool, Tool, ToolCall, ToolContext, ToolResult, get_tool, tool_schemas
from mmcot.tools.base import Schema


def measure(
    ctx: ToolContext,
    what: str,
    unit: Literal["px", "cm"] = "px",
    scale: Annotated[float, Schema(minimum=0, maximum=5)] = 1.0,
    points: list[Annotated[list[int], Schema(items=2)]] | None = None,
    note: str | None = None,
) -> ToolResult:
    """Measure something in the image.

    Longer explanation in a second paragraph.

    Args:
        what: The thing to measure.
        unit: Units of the answer,
            continued on a second line.
        scale: A factor.
    """
    return ToolResult(text=f"{what} {unit} {scale} {points} {note}")


def test_schema_from_hints_and_docstring():
    tool = FunctionTool(measure)
    assert tool.name == "measure"
    assert tool.description == "Measure something in the image. Longer explanation in a second paragraph."
    props = tool.parameters["properties"]
    assert tool.parameters["required"] == ["what"]
    assert tool.parameters["additionalProperties"] is False
    assert props["what"] == {"type": "string", "description": "The thing to measure."}
    assert props["unit"]["enum"] == ["px", "cm"] and props["unit"]["type"] == "string"
    assert props["unit"]["description"] == "Units of the answer, continued on a second line."
    assert props["unit"]["default"] == "px"
    assert props["scale"] | {} == {
        "type": "number",
        "minimum": 0,
        "maximum": 5,
        "description": "A factor.",
        "default": 1.0,
    }
    assert props["points"]["items"] == {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2}
    assert props["note"] == {"type": "string"}  # optional: no default written, not required
    json.dumps(tool.schema())


def test_openai_schema_shape():
    schemas = tool_schemas(["crop", "python"])
    assert [s["function"]["name"] for s in schemas] == ["crop", "python"]
    for s in schemas:
        assert s["type"] == "function"
        assert set(s["function"]) == {"name", "description", "parameters"}
        assert s["function"]["parameters"]["type"] == "object"
    assert len(tool_schemas()) == len(TOOLS)
    assert tool_schemas({"m": FunctionTool(measure)})[0]["function"]["name"] == "measure"


def test_unsupported_hint_is_refused():
    def bad(ctx: ToolContext, x: set[int]) -> ToolResult:
        return ToolResult()

    with pytest.raises(TypeError, match="unsupported type"):
        FunctionTool(bad)


def test_registry_has_every_tool_of_the_issue():
    assert set(TOOLS) == {
        "crop", "zoom", "rotate", "flip", "adjust", "grayscale", "grid", "draw", "image_info", "detect", "python",
        "search",
    }  # fmt: skip
    for name, tool in TOOLS.items():
        assert isinstance(tool, Tool) and tool.name == name and tool.description


def test_get_tool_by_dotted_path():
    fn_tool = get_tool("mmcot.tools.image_tools:crop")  # a typed function becomes a FunctionTool
    assert fn_tool.name == "crop" and fn_tool.parameters == TOOLS["crop"].parameters
    assert get_tool("mmcot.tools.python_tool:PythonTool").name == "python"  # a Tool class is instantiated
    assert get_tool("zoom") is TOOLS["zoom"]
    with pytest.raises(KeyError, match="unknown tool"):
        get_tool("nope")
    with pytest.raises(KeyError, match="cannot load"):
        get_tool("no_such_module:thing")
    with pytest.raises(KeyError, match="not a tool"):
        get_tool("json:__doc__")


def test_tool_call_is_a_dict_with_attributes():
    call = ToolCall("crop", {"box": [0, 0, 1, 1]}, "call_0")
    assert call == {"name": "crop", "arguments": {"box": [0, 0, 1, 1]}, "id": "call_0"}
    assert (call.name, call.arguments, call.id) == ("crop", {"box": [0, 0, 1, 1]}, "call_0")
    assert json.loads(json.dumps(call)) == call
    for clone in (copy.deepcopy(call), pickle.loads(pickle.dumps(call))):
        assert clone == call and clone.name == "crop"
    wire = call.to_openai()
    assert wire["function"]["name"] == "crop" and json.loads(wire["function"]["arguments"]) == call.arguments


def test_context_ids_and_close():
    closed = []

    class Resource:
        def close(self):
            closed.append(True)

    ctx = ToolContext(images={"image_0": None}, state={"python": Resource(), "plain": 3})
    assert ctx.add_image(None) == "image_1"
    ctx.close()
    assert closed == [True] and ctx.state == {"plain": 3}
