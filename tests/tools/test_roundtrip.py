"""For every tool: a call written by a model (a string) reaches a result and comes back into the conversation as a
tool message, with each new image under the next id and named in the text."""

import re

import pytest
from PIL import Image

from mmcot.tools import TOOLS, ToolContext, parse_tool_calls, run_tool_call, tool_message
from mmcot.tools.local_index import build_index
from mmcot.tools.search import SearchConfig, SearchTool

from .conftest import scene

# tool -> (what the model wrote, how many images the result adds)
CALLS = {
    "crop": ('{"name": "crop", "arguments": {"image": "image_0", "box": [20, 20, 60, 60]}}', 1),
    "zoom": ('```json\n{"name": "zoom", "arguments": {"box": [0.5, 0, 1, 1], "normalized": true}}\n```', 1),
    "rotate": ('{"name": "rotate", "arguments": {"degrees": -90, "image": "image_1"}}', 1),
    "flip": ('{"name": "flip", "arguments": {"direction": "vertical"}}', 1),
    "adjust": ('{"name": "adjust", "arguments": {"contrast": 1.5, "sharpness": 2}}', 1),
    "grayscale": ('{"name": "grayscale", "arguments": {"threshold": 100}}', 1),
    "grid": ('{"name": "grid", "arguments": {"image": "image_0", "rows": 3, "cols": 3}}', 1),
    "draw": ('{"name": "draw", "arguments": {"boxes": [[1, 1, 30, 30]], "labels": ["here"]}}', 1),
    "image_info": ('{"name": "image_info", "arguments": {}}', 0),
    "detect": ('{"name": "detect", "arguments": {"target": "red circle", "image": "image_0"}}', 1),
    "python": (
        '{"name": "python", "arguments": {"code": "import matplotlib.pyplot as plt\\n'
        'plt.imshow(np.asarray(image_1)); plt.show()\\nprint(len(images))"}}',
        1,
    ),
    "search": ('{"name": "search", "arguments": {"query": "square corners"}}', 0),
}


def test_every_tool_is_covered():
    assert set(CALLS) == set(TOOLS)


@pytest.fixture
def tools(tmp_path, python_tool):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "square.md").write_text("# Squares\n\nA square has four equal sides and four corners.")
    build_index(tmp_path / "docs", tmp_path / "index.sqlite")
    search = SearchTool(SearchConfig(backend="local", index=str(tmp_path / "index.sqlite")))
    return TOOLS | {"python": python_tool, "search": search}


@pytest.mark.parametrize("name", list(CALLS))
def test_model_text_to_conversation(name, tools):
    ctx = ToolContext(images={"image_0": scene(), "image_1": Image.new("RGB", (64, 32), "navy")})
    try:
        written, new = CALLS[name]
        model_text = f"<think>I should use {name}.</think>\n<tool_call>\n{written}\n</tool_call>"
        calls, errors = parse_tool_calls(model_text, tools)
        assert errors == [] and len(calls) == 1 and calls[0].name == name
        result = run_tool_call(calls[0], ctx, tools)
        assert result.ok, result.error
        message = tool_message(result, calls[0])
        assert message["role"] == "tool" and message["name"] == name and message["tool_call_id"] == "call_0"
        text, images = message["content"][0]["text"], [p["image"] for p in message["content"][1:]]
        assert len(images) == new and list(ctx.images)[2:] == [f"image_{2 + i}" for i in range(new)]
        for i, image in enumerate(images):  # each new image is named, with its size, in the text
            image_id = f"image_{2 + i}"
            assert ctx.images[image_id] is image
            assert re.search(rf"^{image_id} \({image.width}x{image.height}\): \S", text, re.M), text
        if name == "python":
            assert text.rstrip().endswith("2")  # the kernel saw both conversation images
        if name == "search":
            assert "four equal sides" in text and "<untrusted_search_results>" in text
        if name == "image_info":
            assert text.startswith("image_1: 64x32 pixels")  # default: the latest image
    finally:
        ctx.close()
