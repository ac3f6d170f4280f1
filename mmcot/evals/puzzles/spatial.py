"""spatial: where shapes are relative to each other: left of, right of, above, below, leftmost, lowest.

Yes/no questions about a relation between two shapes, the direction from one to another (multiple choice), or which
shape is leftmost/rightmost/highest/lowest (open). Only clear relations are asked.

Difficulty 1: 2-3 shapes. 2: 3-5 shapes. 3: 5-7 shapes, rotated shapes, busier backgrounds.
"""

from __future__ import annotations

import itertools
import random

from mmcot.evals.item import Item
from mmcot.evals.puzzles.render import COLORS, SHAPES, where
from mmcot.evals.puzzles.scene import name, render_scene

PHRASES = {
    "left": ["to the left of", "left of"],
    "right": ["to the right of", "right of"],
    "above": ["above", "higher than"],
    "below": ["below", "under", "lower than"],
}
OPPOSITE = {"left": "right", "right": "left", "above": "below", "below": "above"}
TEMPLATES = {
    "yesno": [
        "Is the {a} {rel} the {b}?",
        "Does the {a} appear {rel} the {b}?",
        "Looking at the picture, is the {a} {rel} the {b}?",
    ],
    "direction": [
        "Where is the {a} relative to the {b}? Answer left, right, above or below.",
        "In which direction from the {b} is the {a}: left, right, above or below?",
        "Is the {a} left of, right of, above or below the {b}?",
    ],
    "left": ["Which shape is the leftmost?", "Which object is furthest to the left?", "Name the shape farthest left."],
    "right": [
        "Which shape is the rightmost?",
        "Which object is furthest to the right?",
        "Name the shape farthest right.",
    ],
    "above": ["Which shape is the highest?", "Which object is closest to the top?", "Name the topmost shape."],
    "below": ["Which shape is the lowest?", "Which object is closest to the bottom?", "Name the bottommost shape."],
}
DIRECTIONS = ["left", "right", "above", "below"]
WORD = {"left": "to the left of", "right": "to the right of", "above": "above", "below": "below"}


def relation(a: dict, b: dict, canvas: list[int]) -> str | None:
    """The clear direction of ``a`` from ``b`` ("left", "right", "above", "below") or None when it is not clear:
    the boxes must be apart along the main axis, and the other axis must differ by at most half as much."""
    dx, dy = a["center"][0] - b["center"][0], a["center"][1] - b["center"][1]
    if abs(dx) >= 2 * abs(dy) and abs(dx) >= 0.12 * canvas[0]:
        if a["bbox"][2] < b["bbox"][0]:
            return "left"
        if a["bbox"][0] > b["bbox"][2]:
            return "right"
    if abs(dy) >= 2 * abs(dx) and abs(dy) >= 0.12 * canvas[1]:
        if a["bbox"][3] < b["bbox"][1]:
            return "above"
        if a["bbox"][1] > b["bbox"][3]:
            return "below"
    return None


def apart(a: dict, b: dict, direction: str, canvas: list[int]) -> bool:
    """Whether ``a`` is clearly ``direction`` of ``b`` along that one axis (boxes apart, centers >= 12% apart)."""
    axis = 0 if direction in ("left", "right") else 1
    before = direction in ("left", "above")
    first, second = (a, b) if before else (b, a)
    gap = second["center"][axis] - first["center"][axis]
    return first["bbox"][axis + 2] < second["bbox"][axis] and gap >= 0.12 * canvas[axis]


def extreme(objects: list[dict], direction: str, canvas: list[int]) -> int | None:
    """Index of the object clearly furthest in ``direction`` (its center >= 10% of the canvas past the next)."""
    axis = 0 if direction in ("left", "right") else 1
    sign = 1 if direction in ("left", "above") else -1
    order = sorted(range(len(objects)), key=lambda i: sign * objects[i]["center"][axis])
    if len(order) < 2:
        return None
    gap = sign * (objects[order[1]]["center"][axis] - objects[order[0]]["center"][axis])
    return order[0] if gap >= 0.1 * canvas[axis] else None


def generate(rng: random.Random, difficulty: int) -> Item:
    kind = rng.choice(["yesno", "direction", "extreme"])
    lo, hi = {1: (2, 3), 2: (3, 5), 3: (5, 7)}[difficulty]
    combos = list(itertools.product(COLORS, SHAPES))
    while True:  # draw scenes until one has a clear relation of the chosen kind (a few tries at most)
        specs = [{"color": c, "shape": s} for c, s in rng.sample(combos, rng.randint(lo, hi))]
        img, meta = render_scene(rng, specs, difficulty)
        objects, canvas = meta["objects"], meta["canvas"]
        pairs = list(itertools.permutations(range(len(objects)), 2))
        if kind == "yesno":
            options = [(i, j, d) for i, j in pairs for d in DIRECTIONS if apart(objects[i], objects[j], d, canvas)]
        elif kind == "direction":
            options = [(i, j, relation(objects[i], objects[j], canvas)) for i, j in pairs]
            options = [o for o in options if o[2]]
        else:
            options = [(extreme(objects, d, canvas), None, d) for d in DIRECTIONS]
            options = [o for o in options if o[0] is not None]
        if options:
            break
    i, j, true_dir = rng.choice(options)
    a = name(objects[i])
    choices = None
    if kind == "yesno":
        asked = true_dir if rng.random() < 0.5 else OPPOSITE[true_dir]
        question = rng.choice(TEMPLATES["yesno"]).format(a=a, b=name(objects[j]), rel=rng.choice(PHRASES[asked]))
        answer = "yes" if asked == true_dir else "no"
        meta["query"] = {"kind": kind, "a": i, "b": j, "relation": asked}
    elif kind == "direction":
        question, answer, choices = (
            rng.choice(TEMPLATES["direction"]).format(a=a, b=name(objects[j])),
            true_dir,
            list(DIRECTIONS),
        )
        meta["query"] = {"kind": kind, "a": i, "b": j}
    else:
        question, answer = rng.choice(TEMPLATES[true_dir]), a
        meta["query"] = {"kind": kind, "direction": true_dir, "target": i}
    return Item(
        id="",
        question=question,
        answer=answer,
        images=[img],
        choices=choices,
        metadata=meta,
        rationale=rationale(meta),
    )


def _xy(obj: dict) -> str:
    return f"({round(obj['center'][0])}, {round(obj['center'][1])})"


def rationale(meta: dict) -> list[str]:
    """Steps from the scene metadata: locate the named shapes by their centers, compare coordinates, conclude."""
    q, objects, canvas = meta["query"], meta["objects"], meta["canvas"]
    if q["kind"] == "extreme":
        axis = 0 if q["direction"] in ("left", "right") else 1
        coord = "x" if axis == 0 else "y (it grows downward)"
        listing = ", ".join(f"{name(o)} {round(o['center'][axis])}" for o in objects)
        best = objects[q["target"]]
        pick = {"left": "smallest x", "right": "largest x", "above": "smallest y", "below": "largest y"}[
            q["direction"]
        ]
        return [
            f"I compare the {coord} of each shape's center: {listing}.",
            f"The {pick} is {round(best['center'][axis])}, the {name(best)} {where(best['center'], canvas)}.",
            f"So the answer is {name(best)}.",
        ]
    a, b = objects[q["a"]], objects[q["b"]]
    steps = [
        f"The {name(a)} is {where(a['center'], canvas)}, centered at {_xy(a)}.",
        f"The {name(b)} is {where(b['center'], canvas)}, centered at {_xy(b)}.",
    ]
    if q["kind"] == "yesno":
        asked = q["relation"]
        axis = 0 if asked in ("left", "right") else 1
        holds = apart(a, b, asked, canvas)
        actual = asked if holds else OPPOSITE[asked]
        coord = "x" if axis == 0 else "y"
        steps.append(
            f"Comparing {coord}: {round(a['center'][axis])} vs {round(b['center'][axis])}, "
            f"so the {name(a)} is {WORD[actual]} the {name(b)}."
        )
        steps.append(f"The question asks whether it is {WORD[asked]} the {name(b)}: {'yes' if holds else 'no'}.")
        return steps
    d = relation(a, b, canvas)
    dx, dy = round(abs(a["center"][0] - b["center"][0])), round(abs(a["center"][1] - b["center"][1]))
    main = "horizontal" if d in ("left", "right") else "vertical"
    steps.append(f"The horizontal gap is {dx} px and the vertical gap {dy} px, so the main direction is {main}.")
    steps.append(f"So the {name(a)} is {WORD[d]} the {name(b)}: the answer is {d}.")
    return steps
