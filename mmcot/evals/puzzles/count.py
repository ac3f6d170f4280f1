"""count: how many shapes of a color, a shape, or both (or in total) are in a scene. Open numeric answer.

Difficulty 1: 2-5 shapes, count by color, by shape or all. 2: 4-7 shapes, zero counts possible. 3: 6-8 shapes,
count by color and shape among near-miss distractors (same color or same shape), rotated shapes, busier backgrounds.
"""

from __future__ import annotations

import random

from mmcot.evals.item import Item
from mmcot.evals.puzzles.render import COLORS, SHAPES, plural, where
from mmcot.evals.puzzles.scene import name, reading_order, render_scene

TEMPLATES = [
    "How many {t} are there?",
    "Count the {t} in the image.",
    "How many {t} can you see?",
    "What is the number of {t} in the picture?",
]
ORDINALS = ["One", "A second", "A third", "A fourth", "A fifth", "A sixth", "A seventh", "An eighth"]


def target_phrase(query: dict) -> str:
    """ "red circles", "circles", "red shapes" or "shapes" for a query {"color", "shape"} (either may be None)."""
    color, shape = query.get("color"), query.get("shape")
    noun = plural(shape) if shape else "shapes"
    return f"{color} {noun}" if color else noun


def matches(obj: dict, query: dict) -> bool:
    return all(query.get(k) in (None, obj[k]) for k in ("color", "shape"))


def _distractor(rng: random.Random, query: dict, near_miss: bool) -> dict:
    while True:
        spec = {"shape": rng.choice(SHAPES), "color": rng.choice(COLORS)}
        if near_miss and query.get("color") and query.get("shape"):
            keep = rng.choice(["color", "shape"])
            spec[keep] = query[keep]
        if not matches(spec, query):
            return spec


def generate(rng: random.Random, difficulty: int) -> Item:
    total = {1: rng.randint(2, 5), 2: rng.randint(4, 7), 3: rng.randint(6, 8)}[difficulty]
    mode = rng.choice(
        {1: ["color", "shape", "all"], 2: ["color", "shape", "both"], 3: ["both", "both", "color"]}[difficulty]
    )
    query = {
        "color": rng.choice(COLORS) if mode in ("color", "both") else None,
        "shape": rng.choice(SHAPES) if mode in ("shape", "both") else None,
    }
    n_match = total if mode == "all" else rng.randint(0 if difficulty > 1 else 1, min(total, 4 + difficulty))
    specs = []
    for _ in range(n_match):
        specs.append({"shape": query["shape"] or rng.choice(SHAPES), "color": query["color"] or rng.choice(COLORS)})
    specs += [
        _distractor(rng, query, near_miss=difficulty == 3 and rng.random() < 0.7) for _ in range(total - n_match)
    ]
    rng.shuffle(specs)
    img, meta = render_scene(rng, specs, difficulty)
    meta["query"] = query
    t = target_phrase(query)
    return Item(
        id="",
        question=rng.choice(TEMPLATES).format(t=t),
        answer=str(n_match),
        images=[img],
        metadata=meta,
        rationale=rationale(meta),
    )


def rationale(meta: dict) -> list[str]:
    """Steps from the scene metadata: what to look for, each match with its position, the total."""
    query, objects, canvas = meta["query"], meta["objects"], meta["canvas"]
    t = target_phrase(query)
    found = [objects[i] for i in reading_order(objects, canvas) if matches(objects[i], query)]
    steps = ["I count every shape." if not (query.get("color") or query.get("shape")) else f"I look for {t}."]
    if not found:
        steps.append(f"I find no {t}.")
    for k, obj in enumerate(found):
        steps.append(f"{ORDINALS[k]} {name(obj)} {where(obj['center'], canvas)}.")
    steps.append(f"That makes {len(found)}.")
    return steps
