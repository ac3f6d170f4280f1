"""Rule-based process rewards: the steps of a completion checked against the puzzle's ground-truth metadata.

- :func:`step_check_reward`: what the thoughts state about the scene (a count, an object of a color and shape, its
  position) checked against the scene's objects. The reward is the fraction of checkable statements that are true,
  so a right answer reached through a wrong count earns less than one reached through the right count.
- :func:`crop_iou_reward`: for search puzzles (a target object in the metadata), how well the regions the policy
  cropped or zoomed into cover the target: the best IoU of a crop that contains the target's center with the
  target's reference box (a quarter-canvas window around it when the puzzle gives one, else its bounding box).

Both return ``None`` ("does not apply") for a completion with nothing to check, which TRL counts as zero.
Scene metadata is what ``mmcot.evals.puzzles`` writes: ``canvas``, ``objects`` (color, shape, bbox, center) and a
``query``.
"""

from __future__ import annotations

import re
from typing import Any

from mmcot.evals.puzzles.render import COLORS, SHAPES, where
from mmcot.evals.score import NUMBER_WORDS
from mmcot.rl.rewards import Completion, as_dict, assistant_text, content_text, tool_messages

_THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.S)
_COLOR = "|".join(COLORS)
_SHAPE = "|".join(SHAPES)
_POSITION = r"at the (?:top|bottom)(?: left| right)?|on the (?:left|right)|in the center"
_NUMBER = r"\d+|no|" + "|".join(NUMBER_WORDS)
# "3 red circles", "no squares", "five shapes": a count of a kind of object
_COUNT = re.compile(rf"\b({_NUMBER})\s+(?:(?:small|tiny|large)\s+)?(?:({_COLOR})\s+)?({_SHAPE}|shape|object)s\b", re.I)
# "a red circle at the top left", "the blue square is on the left", "the only red object is at the top"
_OBJECT = re.compile(
    rf"\b({_COLOR})\s+({_SHAPE}|object|shape)\b(?!s)(?:(?:\s+is|\s+sits|,)?\s+({_POSITION})\b)?", re.I
)
_MAKES = re.compile(rf"\bthat makes\s+({_NUMBER})\b", re.I)
_RESULT = re.compile(r"^(image_\d+) \((\d+)x(\d+)\): (?:crop|zoom) of (image_\d+) box \[([-\d., ]+)\]")


def thoughts(completion: Completion) -> list[str]:
    """The sentences of a completion's reasoning (its ``<think>`` blocks, or all its text when there are none)."""
    text = assistant_text(completion)
    if "</think>" in text and "<think>" not in text.split("</think>", 1)[0]:
        text = "<think>" + text  # the generation prompt opened the think block
    blocks = _THINK.findall(text) or [text]
    return [s.strip() for b in blocks for s in re.split(r"(?<=[.!?])\s+|\n+", b) if s.strip()]


def _number(word: str) -> int:
    word = word.lower()
    return 0 if word == "no" else int(NUMBER_WORDS.get(word, word))


def _matches(obj: dict, color: str | None, shape: str | None) -> bool:
    kind = None if shape in (None, "shape", "object") else shape
    return (color is None or obj["color"] == color) and (kind is None or obj["shape"] == kind)


def check_statements(sentences: list[str], meta: dict[str, Any]) -> list[bool]:
    """One verdict per checkable statement in ``sentences`` about the scene in ``meta``.

    >>> meta = {"canvas": [90, 90], "query": {"color": "red", "shape": "circle"}, "objects": [
    ...     {"color": "red", "shape": "circle", "center": [10, 10]}, {"color": "red", "shape": "circle", "center": [80, 80]},
    ...     {"color": "blue", "shape": "square", "center": [45, 45]}]}
    >>> check_statements(["One red circle at the top left.", "A blue square at the top.", "That makes 2."], meta)
    [True, False, True]
    >>> check_statements(["There are three shapes and no green triangles."], meta)
    [True, True]
    """
    objects, canvas = meta.get("objects") or [], meta.get("canvas")
    query = meta.get("query") or {}
    verdicts = []
    for sentence in sentences:
        counted = []
        for m in _COUNT.finditer(sentence):
            color = m.group(2).lower() if m.group(2) else None
            verdicts.append(_number(m.group(1)) == sum(_matches(o, color, m.group(3).lower()) for o in objects))
            counted.append(m.span())
        for m in _OBJECT.finditer(sentence):
            if any(a <= m.start() < b for a, b in counted):
                continue
            color, shape, position = m.group(1).lower(), m.group(2).lower(), m.group(3)
            candidates = [o for o in objects if _matches(o, color, shape)]
            if position and canvas:
                candidates = [o for o in candidates if where(o["center"], canvas) == position.lower()]
            verdicts.append(bool(candidates))
        m = _MAKES.search(sentence)
        if m and "kind" not in query and ("color" in query or "shape" in query):  # the count family's total
            verdicts.append(
                _number(m.group(1)) == sum(_matches(o, query.get("color"), query.get("shape")) for o in objects)
            )
    return verdicts


def step_check_reward(completions: list[Completion], metadata: list[Any], **kwargs: Any) -> list[float | None]:
    """The fraction of the thoughts' checkable statements (counts, objects by color and shape, positions) that the
    scene's metadata confirms; None when nothing is checkable.

    >>> meta = '{"canvas": [90, 90], "objects": [{"color": "red", "shape": "circle", "center": [10, 10]}]}'
    >>> step_check_reward(["<think>One red circle at the top left.</think><answer>1</answer>",
    ...                    "<think>Two red circles.</think><answer>2</answer>", "<answer>1</answer>"], [meta] * 3)
    [1.0, 0.0, None]
    """
    rewards: list[float | None] = []
    for completion, meta in zip(completions, metadata, strict=True):
        verdicts = check_statements(thoughts(completion), as_dict(meta))
        rewards.append(sum(verdicts) / len(verdicts) if verdicts else None)
    return rewards


def iou(a: list[float], b: list[float]) -> float:
    """Intersection over union of two ``[left, top, right, bottom]`` boxes.

    >>> iou([0, 0, 10, 10], [5, 0, 15, 10])
    0.3333333333333333
    """
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def crop_regions(completion: Completion, size: tuple[float, float]) -> list[list[float]]:
    """The regions of the original image (``image_0``, of ``size``) that the completion's crop and zoom results
    show, composed through crops of crops. Read from the tool results' text, which names each new image, its size,
    its source image and the box in that source's pixels (``image_2 (448x448): zoom of image_1 box [...]``)."""
    regions = {"image_0": [0.0, 0.0, float(size[0]), float(size[1])]}
    sizes = {"image_0": (float(size[0]), float(size[1]))}
    out = []
    for message in tool_messages(completion):
        for line in content_text(message.get("content")).splitlines():
            m = _RESULT.match(line.strip())
            if not m or m.group(4) not in regions:
                continue
            new, w, h, source = m.group(1), float(m.group(2)), float(m.group(3)), m.group(4)
            box = [float(v) for v in m.group(5).split(",")]
            (x0, y0, x1, y1), (sw, sh) = regions[source], sizes[source]
            sx, sy = (x1 - x0) / sw, (y1 - y0) / sh
            regions[new] = [x0 + box[0] * sx, y0 + box[1] * sy, x0 + box[2] * sx, y0 + box[3] * sy]
            sizes[new] = (w, h)
            out.append(regions[new])
    return out


def crop_iou_reward(completions: list[Completion], metadata: list[Any], **kwargs: Any) -> list[float | None]:
    """For puzzles with a target object: the best IoU, with the target's reference box, of a cropped or zoomed
    region that contains the target's center (0 when no crop does); None without crops or without a target.

    >>> meta = '{"canvas": [400, 400], "objects": [{"bbox": [110, 110, 120, 120], "center": [115, 115]}], ' \\
    ...        '"query": {"target": 0, "zoom_box": [65, 65, 165, 165]}}'
    >>> good = [{"role": "tool", "content": "image_1 (448x448): zoom of image_0 box [60, 60, 170, 170], 4.1x"}]
    >>> off = [{"role": "tool", "content": "image_1 (100x100): crop of image_0 box [200, 200, 300, 300]"}]
    >>> [round(r, 2) if r is not None else r for r in crop_iou_reward([good, off, "no tools"], [meta] * 3)]
    [0.83, 0.0, None]
    """
    rewards: list[float | None] = []
    for completion, raw in zip(completions, metadata, strict=True):
        meta = as_dict(raw)
        query, objects = meta.get("query") or {}, meta.get("objects") or []
        target = query.get("target")
        if not isinstance(target, int) or not 0 <= target < len(objects) or not meta.get("canvas"):
            rewards.append(None)
            continue
        regions = crop_regions(completion, tuple(meta["canvas"]))
        if not regions:
            rewards.append(None)
            continue
        obj = objects[target]
        reference = query.get("zoom_box") or obj["bbox"]
        cx, cy = obj["center"]
        inside = [r for r in regions if r[0] <= cx <= r[2] and r[1] <= cy <= r[3]]
        rewards.append(max((iou(r, reference) for r in inside), default=0.0))
    return rewards
