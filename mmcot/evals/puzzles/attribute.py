"""attribute: the color of a shape, the shape of a color, or an attribute of the largest shape. Open answer.

Difficulty 1: 1-3 shapes. 2: 3-5 shapes. 3: 5-7 shapes, and questions about the largest shape.
"""

from __future__ import annotations

import random

from mmcot.evals.item import Item
from mmcot.evals.puzzles.render import COLORS, SHAPES, where
from mmcot.evals.puzzles.scene import name, render_scene, size_range

TEMPLATES = {
    "color_of_shape": [
        "What color is the {shape}?",
        "Which color does the {shape} have?",
        "The {shape} is what color?",
        "Name the color of the {shape}.",
    ],
    "shape_of_color": [
        "What shape is the {color} object?",
        "Which shape is drawn in {color}?",
        "What is the shape of the {color} figure?",
        "Name the shape of the {color} object.",
    ],
    "color_of_largest": [
        "What color is the largest shape?",
        "Which color does the biggest object have?",
        "Name the color of the largest figure.",
    ],
    "shape_of_largest": [
        "What shape is the largest object?",
        "Which shape is the biggest one?",
        "Name the shape of the largest figure.",
    ],
}
SHAPE_REASON = {
    "circle": "It is round with no corners, so it is a circle.",
    "square": "It has four equal sides and four corners, so it is a square.",
    "triangle": "It has three corners, so it is a triangle.",
}


def generate(rng: random.Random, difficulty: int) -> Item:
    total = {1: rng.randint(1, 3), 2: rng.randint(3, 5), 3: rng.randint(5, 7)}[difficulty]
    kinds = ["color_of_shape", "shape_of_color"] + (
        ["color_of_largest", "shape_of_largest"] if difficulty == 3 else []
    )
    kind = rng.choice(kinds)
    target = {"shape": rng.choice(SHAPES), "color": rng.choice(COLORS)}
    others = []
    for _ in range(total - 1):
        spec = {"shape": rng.choice(SHAPES), "color": rng.choice(COLORS)}
        if kind == "color_of_shape":
            spec["shape"] = rng.choice([s for s in SHAPES if s != target["shape"]])
        elif kind == "shape_of_color":
            spec["color"] = rng.choice([c for c in COLORS if c != target["color"]])
        others.append(spec)
    if kind.endswith("largest"):
        target["fraction"] = size_range(total)[1] * rng.uniform(1.6, 1.75)  # clearly larger, even a triangle
    specs = [target, *others]
    rng.shuffle(specs)
    img, meta = render_scene(rng, specs, difficulty)
    index = specs.index(target)
    meta["query"] = {"kind": kind, "target": index}
    obj = meta["objects"][index]
    answer = obj["color"] if kind.startswith("color") else obj["shape"]
    return Item(
        id="",
        question=rng.choice(TEMPLATES[kind]).format(shape=obj["shape"], color=obj["color"]),
        answer=answer,
        images=[img],
        metadata=meta,
        rationale=rationale(meta),
    )


def rationale(meta: dict) -> list[str]:
    """Steps from the scene metadata: find the one object the question names, then read the asked attribute."""
    kind, index = meta["query"]["kind"], meta["query"]["target"]
    objects, canvas = meta["objects"], meta["canvas"]
    obj = objects[index]
    pos = where(obj["center"], canvas)
    if kind == "color_of_shape":
        steps = [f"The question is about the {obj['shape']}.", f"There is one {obj['shape']}, {pos}."]
    elif kind == "shape_of_color":
        steps = [f"The question is about the {obj['color']} object.", f"The only {obj['color']} object is {pos}."]
    else:
        runner_up = max(o["size"] for i, o in enumerate(objects) if i != index)
        steps = [
            f"I compare the sizes of the {len(objects)} shapes.",
            f"The {name(obj)} {pos} is the largest, about {obj['size']} px across; the next is about {runner_up} px.",
        ]
    if kind.startswith("color"):
        steps += [f"It is filled with {obj['color']}.", f"So the answer is {obj['color']}."]
    else:
        steps += [SHAPE_REASON[obj["shape"]], f"So the answer is {obj['shape']}."]
    return steps
