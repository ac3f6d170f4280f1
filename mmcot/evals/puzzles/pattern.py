"""pattern: complete a sequence or grid with one cell missing (PuzzleVQA-style). Multiple choice.

Kinds: a row of colored shapes repeating with a period; a row of numbers following a rule; a row of shapes whose
sizes repeat; a 3x3 grid whose rows and columns share colors and shapes. Difficulty 1: period 2 colors, +1..+3
numbers. 2: period 3 colors, larger or negative steps, size cycles, row/column grids. 3: interleaved or doubling
numbers, grids where every row and column holds each color and each shape once.
"""

from __future__ import annotations

import random

from PIL import Image, ImageDraw

from mmcot.evals.item import Item
from mmcot.evals.puzzles.render import COLORS, SHAPES, background, draw_shape, font, jitter

CANVASES = [192, 256, 320, 384, 448, 512]
SIZES = {"small": 0.38, "medium": 0.62, "large": 0.88}  # fraction of the cell side
TEMPLATES = {
    "color": [
        "What color should replace the question mark?",
        "The colors follow a pattern. What color is the missing shape?",
        "Which color completes the sequence?",
    ],
    "number": [
        "Which number is missing from the sequence?",
        "What number should replace the question mark?",
        "The numbers follow a rule. What is the missing number?",
    ],
    "size": [
        "What size should the missing shape be?",
        "The sizes follow a pattern. Is the missing shape small, medium or large?",
        "Which size completes the sequence?",
    ],
    "grid": [
        "Which shape belongs in the empty cell of the grid?",
        "What should replace the question mark in the grid?",
        "The grid follows a pattern. Which shape is missing?",
    ],
}


def _number_rule(rng: random.Random, difficulty: int, n: int) -> tuple[list[int], str]:
    if difficulty == 1:
        start, step = rng.randint(1, 9), rng.randint(1, 3)
        return [start + step * i for i in range(n)], f"each number is {step} more than the one before"
    if difficulty == 2:
        step = rng.choice([2, 3, 4, 5, 6, 7, 8, 9, 10])
        if rng.random() < 0.5:
            start = rng.randint(step * (n - 1) + 1, step * (n - 1) + 20)
            return [start - step * i for i in range(n)], f"each number is {step} less than the one before"
        start = rng.randint(1, 20)
        return [start + step * i for i in range(n)], f"each number is {step} more than the one before"
    if rng.random() < 0.5:
        start, factor = rng.randint(1, 5), 2 if n > 4 else rng.choice([2, 3])
        return [start * factor**i for i in range(n)], f"each number is {factor} times the one before"
    a, b, da, db = rng.randint(1, 9), rng.randint(20, 40), rng.randint(1, 4), -rng.randint(1, 4)
    seq = [a + da * (i // 2) if i % 2 == 0 else b + db * (i // 2) for i in range(n)]
    return seq, f"two sequences alternate: one grows by {da}, the other shrinks by {-db}"


def _spec(rng: random.Random, difficulty: int) -> dict:
    """The puzzle's solution structure: cells (row-major), grid shape, missing index, rule and answer."""
    kind = rng.choice(
        {1: ["color", "number"], 2: ["color", "number", "size", "grid"], 3: ["number", "grid", "color"]}[difficulty]
    )
    if kind == "grid":
        cs, ss = rng.sample(COLORS, 3), rng.sample(SHAPES, 3)
        if difficulty == 2:
            cells = [{"color": cs[r], "shape": ss[c]} for r in range(3) for c in range(3)]
            rule = "each row has one color and each column has one shape"
        else:
            cells = [{"color": cs[(r + c) % 3], "shape": ss[(c - r) % 3]} for r in range(3) for c in range(3)]
            rule = "every row and every column holds each color once and each shape once"
        return {"kind": kind, "rows": 3, "cols": 3, "cells": cells, "missing": rng.randrange(9), "rule": rule}
    n = rng.randint(5, 6) if kind == "number" else rng.randint(6, 7)
    if kind == "number":
        values, rule = _number_rule(rng, difficulty, n)
        cells = [{"number": v} for v in values]
    else:
        period = 2 if difficulty == 1 else 3
        shape = rng.choice(SHAPES)
        if kind == "color":
            motif = rng.sample(COLORS, period)
            cells = [{"color": motif[i % period], "shape": shape} for i in range(n)]
            rule = f"the colors repeat every {period}: {', '.join(motif)}"
        else:
            motif = rng.choice([["small", "large"], ["small", "medium", "large"], ["large", "medium", "small"]])
            color = rng.choice(COLORS)
            cells = [{"color": color, "shape": shape, "size": motif[i % len(motif)]} for i in range(n)]
            rule = f"the sizes repeat: {', '.join(motif)}"
    missing = rng.randrange(n) if difficulty > 1 else rng.randrange(2, n)
    return {"kind": kind, "rows": 1, "cols": n, "cells": cells, "missing": missing, "rule": rule}


def _label(cell: dict) -> str:
    if "number" in cell:
        return str(cell["number"])
    return f"{cell['color']} {cell['shape']}"


def answer_of(spec: dict) -> str:
    cell = spec["cells"][spec["missing"]]
    return {"color": cell.get("color"), "number": str(cell.get("number")), "size": cell.get("size")}.get(
        spec["kind"], _label(cell)
    )


def _choices(rng: random.Random, spec: dict, answer: str) -> list[str]:
    kind = spec["kind"]
    if kind == "size":
        return list(SIZES)
    if kind == "color":
        pool = [c for c in COLORS if c != answer]
    elif kind == "number":
        n = int(answer)
        steps = {abs(a["number"] - b["number"]) for a, b in zip(spec["cells"], spec["cells"][1:], strict=False)}
        pool = sorted({n + d for d in (1, -1, 2, -2, *steps, *(-s for s in steps)) if n + d >= 0 and d} - {n})
        pool = [str(v) for v in pool]
    else:
        color, shape = answer.split()
        pool = [f"{c} {s}" for c in COLORS for s in SHAPES if (c == color) != (s == shape)]
    choices = [answer, *rng.sample(pool, 3)]
    rng.shuffle(choices)
    return choices


def render(rng: random.Random, spec: dict, difficulty: int) -> tuple[Image.Image, list[list[int]]]:
    side = rng.choice(CANVASES)
    img, bg = background(rng, (side, side), min(difficulty, 2))
    draw = ImageDraw.Draw(img)
    rows, cols = spec["rows"], spec["cols"]
    cell = int(side * 0.9 / max(rows, cols))
    x_start = (side - cols * cell) // 2
    y_start = (side - rows * cell) // 2
    ink = (30, 30, 30) if bg["name"] != "dark slate" else (235, 235, 235)
    frame = tuple((c + i) // 2 for c, i in zip(bg["rgb"], ink, strict=True))
    boxes = []
    for k, c in enumerate(spec["cells"]):
        r, q = divmod(k, cols)
        box = [x_start + q * cell, y_start + r * cell, x_start + (q + 1) * cell, y_start + (r + 1) * cell]
        boxes.append(box)
        inner = [box[0] + 2, box[1] + 2, box[2] - 2, box[3] - 2]
        center = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        if k == spec["missing"]:
            draw.rectangle(inner, outline=ink, width=max(1, cell // 24))
            draw.text(center, "?", font=font(cell * 0.6), fill=ink, anchor="mm")
            continue
        draw.rectangle(inner, outline=frame, width=1)
        if "number" in c:
            draw.text(
                center, str(c["number"]), font=font(cell * (0.5 if c["number"] < 100 else 0.4)), fill=ink, anchor="mm"
            )
        else:
            size = cell * SIZES[c.get("size", "large")] * 0.9
            draw_shape(draw, c["shape"], center, size, jitter(rng, c["color"]))
    return img, boxes


def generate(rng: random.Random, difficulty: int) -> Item:
    spec = _spec(rng, difficulty)
    img, boxes = render(rng, spec, difficulty)
    answer = answer_of(spec)
    meta = {"canvas": list(img.size), "cell_boxes": boxes, **spec}
    return Item(
        id="",
        question=rng.choice(TEMPLATES[spec["kind"]]),
        answer=answer,
        images=[img],
        choices=_choices(rng, spec, answer),
        metadata=meta,
        rationale=rationale(meta),
    )


def rationale(meta: dict) -> list[str]:
    """Steps from the solution structure: read the cells, state the rule, apply it to the missing cell."""
    kind, cells, missing = meta["kind"], meta["cells"], meta["missing"]
    answer = answer_of(meta)
    if kind == "grid":
        r, c = divmod(missing, 3)
        rows = "; ".join(
            ", ".join("?" if 3 * i + j == missing else _label(cells[3 * i + j]) for j in range(3)) for i in range(3)
        )
        return [
            f"Row by row the grid holds: {rows}.",
            f"The rule: {meta['rule']}.",
            f"The empty cell is in row {r + 1}, column {c + 1}, so it must be a {answer}.",
        ]
    key = {"color": "color", "number": "number", "size": "size"}[kind]
    seen = ", ".join("?" if i == missing else str(cell[key]) for i, cell in enumerate(cells))
    return [
        f"Left to right the {key}s are: {seen}.",
        f"The rule: {meta['rule']}.",
        f"The missing cell is number {missing + 1}, so it is {answer}.",
    ]
