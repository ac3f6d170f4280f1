"""detect: find a small puzzle shape by its color and/or shape and zoom in on it, the grounding tool of
image-loop (OpenThinkIMG's tool set has one, GroundingDINO; V*'s search uses a localization model the same way).

A greedy two-level tile search scored by mmcot's small-object detector (``mmcot.models.detector``, the one shipped
in the smol checkpoint folder): tile the image 3 x 3 (25% overlap), keep the best tile, tile it again, and take the
best cell's center. The result says what it found there (e.g. "a green square"), where, and how sure it is, with an
enlarged view of the box around it, which the model looks at.
The detector knows the puzzle colors and shapes only; a target naming neither is refused with that list.
"""

from __future__ import annotations

import functools

from PIL import Image

from mmcot.evals.puzzles.render import COLORS, SHAPES
from mmcot.tools.base import FunctionTool, ToolContext, ToolError, ToolResult
from mmcot.tools.image_tools import resolve, zoom

FOUND = 0.35  # a detector score from which the target counts as found (region search's threshold)


def target_words(phrase: str) -> tuple[str | None, str | None]:
    """The puzzle color and shape a target phrase names, each None when it names none.

    >>> target_words("a small red triangle"), target_words("a tiny square"), target_words("a dog")
    (('red', 'triangle'), (None, 'square'), (None, None))
    """
    words = phrase.lower().replace(",", " ").split()
    return next((w for w in words if w in COLORS), None), next((w for w in words if w in SHAPES), None)


def with_article(phrase: str) -> str:
    """``phrase`` after "a" or "an".

    >>> with_article("orange circle"), with_article("red square")
    ('an orange circle', 'a red square')
    """
    return f"{'an' if phrase[:1].lower() in 'aeiou' else 'a'} {phrase}"


def tiles(box: list[float], grid: int, overlap: float) -> list[list[int]]:
    """``grid`` x ``grid`` overlapping tiles covering ``box`` (x0, y0, x1, y1), row by row.

    >>> tiles([0, 0, 100, 100], 2, 0.0)
    [[0, 0, 50, 50], [50, 0, 100, 50], [0, 50, 50, 100], [50, 50, 100, 100]]
    """
    x0, y0, x1, y1 = box
    w, h = (x1 - x0) / (grid - (grid - 1) * overlap), (y1 - y0) / (grid - (grid - 1) * overlap)
    sx, sy = w * (1 - overlap), h * (1 - overlap)
    return [
        [round(x0 + i * sx), round(y0 + j * sy), round(x0 + i * sx + w), round(y0 + j * sy + h)]
        for j in range(grid)
        for i in range(grid)
    ]


def around(point: list[float], side: int, size: tuple[int, int]) -> list[int]:
    """A ``side`` x ``side`` box centered on ``point``, moved inside an image of ``size`` (as far as it fits).

    >>> around([10, 50], 40, (100, 100)), around([95, 50], 40, (100, 100))
    ([0, 30, 40, 70], [60, 30, 100, 70])
    """
    x0 = min(max(0, round(point[0] - side / 2)), max(0, size[0] - side))
    y0 = min(max(0, round(point[1] - side / 2)), max(0, size[1] - side))
    return [x0, y0, min(size[0], x0 + side), min(size[1], y0 + side)]


def quarter(point: list[float], size: list[int]) -> str:
    """Which quarter of an image of ``size`` a point lies in.

    >>> quarter([10, 90], [100, 100])
    'bottom left'
    """
    return f"{'top' if point[1] < size[1] / 2 else 'bottom'} {'left' if point[0] < size[0] / 2 else 'right'}"


def locate(detector, image: Image.Image, color: str | None, shape: str | None, levels: int = 2, grid: int = 3):
    """Where the target most likely is: a greedy search over ``levels`` of tiles, each level's tiles scored in one
    batch. Returns (score, point [x, y], what the detector sees there, e.g. "green square")."""
    box, score, at = [0, 0, image.width, image.height], 0.0, (0.5, 0.5)
    for _ in range(levels):
        boxes = tiles(box, grid, 0.25)
        scored = detector.score([image.crop(tuple(b)) for b in boxes], color, shape)
        k = max(range(len(boxes)), key=lambda i: scored[i][0])
        box, (score, at) = boxes[k], scored[k]
    point = [box[0] + at[0] * (box[2] - box[0]), box[1] + at[1] * (box[3] - box[1])]
    return score, point, detector.label(image.crop(tuple(box)), at, color, shape)


@functools.cache
def shipped_detector():
    """The detector in the shipped smol folder (loaded once per process)."""
    from mmcot.models.detector import Detector
    from mmcot.models.load import CHECKPOINTS

    detector = Detector.load(CHECKPOINTS / "smol")
    if detector is None:
        raise ToolError("the detector is missing from mmcot's smol checkpoint folder (reinstall mmcot)")
    return detector


def detect(ctx: ToolContext, target: str, image: str = "") -> ToolResult:
    """Find a small shape by its color and/or shape, e.g. "red triangle", and zoom in on it.

    Args:
        target: What to find: a color and/or a shape, e.g. small red triangle, or square.
        image: Image id, e.g. image_0; default the latest image.
    """
    color, shape = target_words(target)
    if color is None and shape is None:
        raise ToolError(
            f"detect finds a color and/or shape, e.g. 'red triangle'; {target!r} names neither "
            f"(colors: {', '.join(COLORS)}; shapes: {', '.join(SHAPES)})"
        )
    image_id, img = resolve(ctx, image)
    score, point, seen = locate(shipped_detector(), img.convert("RGB"), color, shape)
    box = around(point, max(32, min(img.size) // 8), img.size)
    what = " ".join(w for w in (color, shape or "shape") if w)
    x, y = round(point[0]), round(point[1])
    if score >= FOUND:
        where = f"in the {quarter(point, img.size)} quarter of the {img.width}x{img.height} image"
        text = f"found {with_article(seen)} at [{x}, {y}], {where} (score {score:.2f})"
    else:
        text = f"no {what} found; the likeliest place is [{x}, {y}] (score {score:.2f})"
    result = zoom(ctx, box=box, image=image_id)  # the enlarged view
    result.text, result.captions = text, [f"zoom of {image_id} box {box} around the {what}"]
    result.metadata.update(box=box, point=[x, y], label=seen, score=round(score, 3))
    return result


DETECT = FunctionTool(detect)
