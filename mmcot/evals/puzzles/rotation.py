"""rotation: which clockwise turn restores a rotated copy of an image? Two images per item, multiple choice.

Difficulty 1: 3 shapes, turned 90, 180 or 270 degrees. 2: 4 shapes, 0 is also possible. 3: 5-6 shapes, busier
backgrounds, 0 possible.
"""

from __future__ import annotations

import itertools
import random

from PIL import Image

from mmcot.evals.item import Item
from mmcot.evals.puzzles.render import COLORS, SHAPES, where
from mmcot.evals.puzzles.scene import name, render_scene

TEMPLATES = [
    "The second image is the first image rotated. How many degrees clockwise must the second image be turned to "
    "restore the first?",
    "Image 2 is a rotated copy of image 1. By how many degrees (clockwise) should image 2 be rotated to match image 1?",
    "Which clockwise rotation of the second picture gives back the first picture?",
]
# clockwise degrees -> the lossless PIL transpose that turns an image that far clockwise
CLOCKWISE = {0: None, 90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}


def rotate_cw(img: Image.Image, degrees: int) -> Image.Image:
    """Turn ``img`` clockwise by 0, 90, 180 or 270 degrees, losslessly."""
    op = CLOCKWISE[degrees % 360]
    return img.copy() if op is None else img.transpose(op)


def rotate_point_cw(point: list[float], canvas: list[int], degrees: int) -> list[float]:
    """Where a point lands when a ``canvas``-sized image is turned clockwise by ``degrees``."""
    x, y = point
    w, h = canvas
    for _ in range((degrees % 360) // 90):
        x, y, w, h = h - y, x, h, w
    return [x, y]


def _off_center(meta: dict) -> tuple[dict, float]:
    """The object farthest from the canvas center (the one to follow), and that distance."""
    cx, cy = meta["canvas"][0] / 2, meta["canvas"][1] / 2
    dist = [max(abs(o["center"][0] - cx), abs(o["center"][1] - cy)) for o in meta["objects"]]
    k = dist.index(max(dist))
    return meta["objects"][k], dist[k]


def generate(rng: random.Random, difficulty: int) -> Item:
    n = {1: 3, 2: 4, 3: rng.randint(5, 6)}[difficulty]
    specs = [{"color": c, "shape": s} for c, s in rng.sample(list(itertools.product(COLORS, SHAPES)), n)]
    while True:  # every shape differs, and one sits well off-center, so each turn moves it somewhere visibly new
        img, meta = render_scene(rng, specs, difficulty)
        if _off_center(meta)[1] >= 0.25 * meta["canvas"][0]:
            break
    options = [90, 180, 270] if difficulty == 1 else [0, 90, 180, 270]
    applied = rng.choice(options)
    restore = (360 - applied) % 360
    meta["query"] = {"rotation_cw": applied, "restore_cw": restore}
    return Item(
        id="",
        question=rng.choice(TEMPLATES),
        answer=str(restore),
        images=[img, rotate_cw(img, applied)],
        choices=[str(d) for d in options],
        metadata=meta,
        rationale=rationale(meta),
    )


def rationale(meta: dict) -> list[str]:
    """Steps from the scene metadata: follow one shape from the first image to the second, name the turn back."""
    canvas, q = meta["canvas"], meta["query"]
    obj = _off_center(meta)[0]
    moved = rotate_point_cw(obj["center"], canvas, q["rotation_cw"])
    before, after = where(obj["center"], canvas), where(moved, canvas)
    if q["rotation_cw"] == 0:
        return [
            f"In the first image the {name(obj)} is {before}; in the second it is also {after}.",
            "Every shape is where it was, so the second image is not turned at all.",
            "So the answer is 0.",
        ]
    return [
        f"In the first image the {name(obj)} is {before}; in the second it is {after}.",
        f"That move is a {q['rotation_cw']} degree clockwise turn.",
        f"Turning the second image a further {q['restore_cw']} degrees clockwise completes the full circle, "
        f"so the answer is {q['restore_cw']}.",
    ]
