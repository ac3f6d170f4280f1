"""The detect tool: the shipped small-object detector finds puzzle targets in real puzzles and shows them zoomed;
targets it cannot know and missing images come back as errors the model reads."""

from mmcot.evals.puzzles import generate
from mmcot.tools import ToolContext, run_tool_call


def _detect(image, target: str, **ctx):
    return run_tool_call({"name": "detect", "arguments": {"target": target}}, ToolContext(images=image, **ctx))


def test_detect_finds_small_targets_and_zooms_in_on_them():
    items = [
        it for it in generate("small_object", n=16, seed=0, split="val") if it.metadata["query"]["target"] is not None
    ]
    hits = 0
    for item in items:
        q = item.metadata["query"]
        cx, cy = item.metadata["objects"][q["target"]]["center"]
        result = _detect({"image_0": item.images[0]}, f"small {q['color']} {q['shape']}", image_size=128)
        x0, y0, x1, y1 = result.metadata["box"]
        hits += (
            x0 <= cx < x1
            and y0 <= cy < y1
            and f"\nfound a{'n' * (q['color'] == 'orange')} {q['color']} {q['shape']} at [" in result.text
        )
        assert result.ok and result.images[0].size == (128, 128) and result.metadata["image_ids"] == ["image_1"]
        assert f"zoom of image_0 box [{x0}, {y0}, {x1}, {y1}]" in result.captions[0]  # crop_iou reads this
    assert hits >= 0.75 * len(items)  # its box held the target in 90% of 52 test puzzles (README, Tools)


def test_detect_says_what_it_cannot_find_or_read(image):
    unknown = _detect({"image_0": image}, "a dog")
    assert unknown.error and "names neither" in unknown.error and "triangle" in unknown.error
    assert "no image" in _detect({}, "red circle").error
    blank = _detect({"image_0": image}, "green square")
    assert blank.ok and "\nno green square found" in blank.text
