"""small_object: V*-style search for a tiny target among large distractors on a >= 448 px canvas.

The target, like the small clutter around it, is a hollow shape drawn as a thin colored stroke. Once the whole image
is resized to the model's native 128 px it spans at most 4 px and its stroke blends into the background, so neither
its shape nor its color can be read; after zooming into a region a quarter of the canvas side wide it is 10-13 px
and legible, so a crop/zoom tool or a region search finds it. Clutter shares the target's color or shape, so no
single low-resolution cue gives the answer. Difficulty 1: 448 px, 2 clutter shapes. 2: 512-576 px, 4. 3: 640-768
px, 6, busier backgrounds.
"""

from __future__ import annotations

import itertools
import random

from mmcot.evals.item import Item
from mmcot.evals.puzzles.render import COLORS, SHAPES, where
from mmcot.evals.puzzles.scene import name, render_scene

TARGET_FRACTION = (0.022, 0.025)  # of the canvas side: at most 4 px at 128 px, 10-13 px after a quarter-side zoom
QUADRANTS = ["top left", "top right", "bottom left", "bottom right"]
TEMPLATES = {
    "color": [
        "What color is the small {shape}?",
        "Find the tiny {shape} in the image. What color is it?",
        "There is a small {shape} somewhere in the picture. Which color does it have?",
    ],
    "shape": [
        "What shape is the small {color} object?",
        "Find the tiny {color} object in the image. What shape is it?",
        "Somewhere in the picture there is a small {color} shape. Is it a circle, a square or a triangle?",
    ],
    "quadrant": [
        "In which quadrant of the image is the small {color} {shape}?",
        "Where is the tiny {color} {shape}: top left, top right, bottom left or bottom right?",
        "Locate the small {color} {shape}. Which quarter of the image is it in?",
    ],
    "exists": [
        "Is there a small {color} {shape} in the image?",
        "Does the picture contain a tiny {color} {shape}?",
        "Look closely: can you find a small {color} {shape} anywhere?",
    ],
}


def quadrant(center: list[float], canvas: list[int]) -> str:
    return QUADRANTS[2 * (center[1] >= canvas[1] / 2) + (center[0] >= canvas[0] / 2)]


def zoom_box(center: list[float], canvas: list[int]) -> list[int]:
    """A square region a quarter of the canvas side wide, centered on ``center`` and kept inside the canvas."""
    side = canvas[0] // 4
    x0 = min(max(0, round(center[0] - side / 2)), canvas[0] - side)
    y0 = min(max(0, round(center[1] - side / 2)), canvas[1] - side)
    return [x0, y0, x0 + side, y0 + side]


def generate(rng: random.Random, difficulty: int) -> Item:
    side = {1: 448, 2: rng.choice([512, 576]), 3: rng.choice([640, 768])}[difficulty]
    kind = rng.choice(list(TEMPLATES))
    target = {"color": rng.choice(COLORS), "shape": rng.choice(SHAPES)}
    present = kind != "exists" or rng.random() < 0.5
    n_clutter = 2 * difficulty
    combos = [{"color": c, "shape": s} for c, s in itertools.product(COLORS, SHAPES)]
    if kind == "color":  # no other small shape has the target's shape, so the shape picks the target out
        pool = [c for c in combos if c["shape"] != target["shape"]]
    elif kind == "shape":
        pool = [c for c in combos if c["color"] != target["color"]]
    else:  # near misses: the target's color with another shape, or its shape with another color
        pool = [c for c in combos if (c["color"] == target["color"]) != (c["shape"] == target["shape"])]
    clutter = rng.sample(pool, n_clutter)
    if kind in ("quadrant", "exists"):  # one clutter shape always shares the target's color: color alone is no cue
        same_color = [c for c in pool if c["color"] == target["color"]]
        if not any(c["color"] == target["color"] for c in clutter):
            clutter[0] = rng.choice(same_color)
    large = [
        {"color": rng.choice(COLORS), "shape": rng.choice(SHAPES), "fraction": rng.uniform(0.14, 0.22)}
        for _ in range(rng.randint(3, 3 + difficulty))
    ]
    small = ([target] if present else []) + clutter
    while True:  # the target must sit clearly inside one quadrant
        specs = large + [dict(s, fraction=rng.uniform(*TARGET_FRACTION), hollow=True) for s in small]
        img, meta = render_scene(rng, specs, difficulty, canvas=side)
        if not present:
            break
        t = meta["objects"][len(large)]
        if min(abs(t["center"][0] - side / 2), abs(t["center"][1] - side / 2)) >= 0.06 * side:
            break
    index = len(large) if present else None
    query = {"kind": kind, "target": index, "color": target["color"], "shape": target["shape"]}
    if present:
        query["zoom_box"] = zoom_box(meta["objects"][index]["center"], meta["canvas"])
    meta["query"] = query
    choices = None
    if kind == "color":
        answer = target["color"]
    elif kind == "shape":
        answer, choices = target["shape"], list(SHAPES)
    elif kind == "quadrant":
        answer, choices = quadrant(meta["objects"][index]["center"], meta["canvas"]), list(QUADRANTS)
    else:
        answer = "yes" if present else "no"
    return Item(
        id="",
        question=rng.choice(TEMPLATES[kind]).format(**target),
        answer=answer,
        images=[img],
        choices=choices,
        metadata=meta,
        rationale=rationale(meta),
    )


def rationale(meta: dict) -> list[str]:
    """Steps from the scene metadata: the target is too small at full view, zoom into its region, read it."""
    q, objects, canvas = meta["query"], meta["objects"], meta["canvas"]
    want = f"{q['color']} {q['shape']}"
    looking = {"color": f"small {q['shape']}", "shape": f"small {q['color']} object"}.get(q["kind"], f"small {want}")
    steps = [f"The large shapes are easy to see, but the {looking} is too small to read at this size, so I zoom in."]
    if q["target"] is None:
        tiny = [o for o in objects if o["size"] < 0.05 * canvas[0]]
        listing = ", ".join(f"a {name(o)} {where(o['center'], canvas)}" for o in tiny)
        steps += [
            f"Zooming region by region, the small shapes are: {listing}.",
            f"None is a {want}, so the answer is no.",
        ]
        return steps
    obj = objects[q["target"]]
    steps.append(f"Zooming into the region {q['zoom_box']} {where(obj['center'], canvas)} shows a small {name(obj)}.")
    answer = {
        "color": f"Its color is {obj['color']}, so the answer is {obj['color']}.",
        "shape": f"It is a {obj['shape']}, so the answer is {obj['shape']}.",
        "quadrant": f"Its center {[round(c) for c in obj['center']]} lies in the {quadrant(obj['center'], canvas)} "
        f"quadrant of the {canvas[0]}x{canvas[1]} image, so the answer is {quadrant(obj['center'], canvas)}.",
        "exists": "So the answer is yes.",
    }[q["kind"]]
    return [*steps, answer]
