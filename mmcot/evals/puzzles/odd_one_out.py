"""odd_one_out: every shape but one follows a rule; name the odd one, or say how it differs. Multiple choice.

Difficulty 1: 4 identical shapes, one differs in color or shape. 2: 5-6 shapes, one differs in color, shape or size.
3: 6-8 shapes that all share one attribute and vary in the other; the odd one breaks the shared attribute.
"""

from __future__ import annotations

import random

from mmcot.evals.item import Item
from mmcot.evals.puzzles.render import COLORS, SHAPES, plural, where
from mmcot.evals.puzzles.scene import name, render_scene, size_range

TEMPLATES = {
    "which": [
        "Which object is the odd one out?",
        "Which shape does not belong with the others?",
        "One of these shapes is different from the rest. Which one?",
    ],
    "how": [
        "In what way is the odd one out different from the others?",
        "How does the odd object differ from the rest?",
        "What sets the odd one out apart: its color, its shape or its size?",
    ],
}
ATTRIBUTES = ["color", "shape", "size"]


def _other(rng: random.Random, values: list[str], not_this: str) -> str:
    return rng.choice([v for v in values if v != not_this])


def generate(rng: random.Random, difficulty: int) -> Item:
    total = {1: 4, 2: rng.randint(5, 6), 3: rng.randint(6, 8)}[difficulty]
    differs = rng.choice(["color", "shape"] + (["size"] if difficulty == 2 else []))
    base = {"color": rng.choice(COLORS), "shape": rng.choice(SHAPES), "rotation": 0.0}
    lo, hi = size_range(total)
    base["fraction"] = rng.uniform(lo, hi) if differs != "size" else 0.15
    odd = dict(base)
    if differs == "size":
        odd["fraction"] = 0.25
    else:
        odd[differs] = _other(rng, COLORS if differs == "color" else SHAPES, base[differs])
    others = [dict(base) for _ in range(total - 1)]
    if difficulty == 3:  # the others vary in the attribute that is not the rule
        free = "shape" if differs == "color" else "color"
        pool = SHAPES if free == "shape" else COLORS
        values = rng.sample(pool, min(len(pool), total - 1))
        for k, spec in enumerate(others):
            spec[free] = values[k % len(values)]
        odd[free] = rng.choice(pool)
    specs = [odd, *others]
    rng.shuffle(specs)
    img, meta = render_scene(rng, specs, difficulty)
    index = specs.index(odd)
    objects = meta["objects"]
    kind = "how" if differs == "size" or rng.random() < 0.35 else "which"
    meta["query"] = {"kind": kind, "odd": index, "differs_in": differs}
    if kind == "how":
        question, answer, choices = rng.choice(TEMPLATES["how"]), differs, list(ATTRIBUTES)
    else:
        answer = name(objects[index])
        present = sorted({name(o) for k, o in enumerate(objects) if k != index})
        absent = sorted({f"{c} {s}" for c in COLORS for s in SHAPES} - set(present) - {answer})
        distractors = rng.sample(present, min(3, len(present)))
        distractors += rng.sample(absent, 3 - len(distractors))
        choices = [answer, *distractors]
        rng.shuffle(choices)
        question = rng.choice(TEMPLATES["which"])
    return Item(
        id="",
        question=question,
        answer=answer,
        images=[img],
        choices=choices,
        metadata=meta,
        rationale=rationale(meta),
    )


def rationale(meta: dict) -> list[str]:
    """Steps from the scene metadata: the rule the others share, the one object that breaks it, the answer."""
    q, objects, canvas = meta["query"], meta["objects"], meta["canvas"]
    odd = objects[q["odd"]]
    others = [o for k, o in enumerate(objects) if k != q["odd"]]
    attr = q["differs_in"]
    pos = where(odd["center"], canvas)
    if attr == "size":
        typical = others[0]["size"]
        steps = [
            f"All the shapes are {plural(name(others[0]))} of about the same size, about {typical} px across.",
            f"The {name(odd)} {pos} is about {odd['size']} px across: it differs in size.",
        ]
    elif len({name(o) for o in others}) == 1:
        steps = [
            f"All the shapes are {plural(name(others[0]))} except one.",
            f"The {name(odd)} {pos} differs in {attr}.",
        ]
    else:
        shared = others[0][attr]
        rule, broken = (plural(shared), f"a {shared}") if attr == "shape" else (shared, shared)
        free = "colors" if attr == "shape" else "shapes"
        steps = [
            f"The shapes have different {free}, but all are {rule} except one.",
            f"The {name(odd)} {pos} is not {broken}: it differs in {attr}.",
        ]
    if q["kind"] == "how":
        steps.append(f"So it differs in {attr}.")
    else:
        steps.append(f"So the odd one out is the {name(odd)}.")
    return steps
