"""bar_chart: read a bar's value, the tallest or shortest bar, or a difference or sum off a bar chart.

Colored bars against a labeled y axis with gridlines. Open answer (a number or a color).

Difficulty 1: 3 bars, values 1-5, a gridline per unit. 2: 4-5 bars, values 1-10, labels every 2. 3: 5-6 bars,
values 1-20, gridlines every 2 (odd values sit between them), differences and sums.
"""

from __future__ import annotations

import random

from PIL import ImageDraw

from mmcot.evals.item import Item
from mmcot.evals.puzzles.render import COLORS, background, font, jitter

CANVASES = [192, 224, 256, 320, 384, 448, 512]
TEMPLATES = {
    "value": [
        "What is the value of the {a} bar?",
        "How high does the {a} bar reach?",
        "Read the height of the {a} bar from the axis.",
    ],
    "max": ["Which bar is the tallest?", "Which color has the highest value?", "Name the color of the largest bar."],
    "min": ["Which bar is the shortest?", "Which color has the lowest value?", "Name the color of the smallest bar."],
    "diff": [
        "How much taller is the {a} bar than the {b} bar?",
        "What is the difference between the {a} bar and the {b} bar?",
        "By how much does the {a} bar exceed the {b} bar?",
    ],
    "sum": [
        "What is the sum of the {a} and {b} bars?",
        "Add the values of the {a} bar and the {b} bar.",
        "What do the {a} and {b} bars total?",
    ],
}
LEVELS = {  # bars, max value, gridline step, label step, question kinds
    1: ((3, 3), 5, 1, 1, ["value", "max", "min"]),
    2: ((4, 5), 10, 1, 2, ["value", "max", "min", "diff"]),
    3: ((5, 6), 20, 2, 4, ["value", "diff", "sum", "max"]),
}


def generate(rng: random.Random, difficulty: int) -> Item:
    (lo, hi), top, grid_step, label_step, kinds = LEVELS[difficulty]
    n = rng.randint(lo, hi)
    colors = rng.sample(COLORS, n)
    values = rng.sample(range(1, top + 1), n)  # distinct, so tallest and shortest are unique
    side = rng.choice(CANVASES)
    img, bg = background(rng, (side, side), 1)
    draw = ImageDraw.Draw(img)
    left, right, top_px, bottom = side * 0.15, side * 0.96, side * 0.06, side * 0.9
    px_per_unit = (bottom - top_px) / top
    ink, grid = (30, 30, 30), tuple(max(0, c - 30) for c in bg["rgb"])
    fnt = font(side * 0.055)
    for v in range(0, top + 1, grid_step):
        y = round(bottom - v * px_per_unit)
        draw.line([(left, y), (right, y)], fill=grid, width=1)
        if v % label_step == 0:
            draw.text((left - side * 0.02, y), str(v), font=fnt, fill=ink, anchor="rm")
    slot = (right - left) / n
    bars = []
    for k, (color, value) in enumerate(zip(colors, values, strict=True)):
        x0 = round(left + slot * (k + 0.2))
        x1 = round(left + slot * (k + 0.8))
        y0 = round(bottom - value * px_per_unit)
        draw.rectangle([x0, y0, x1, round(bottom)], fill=jitter(rng, color))
        bars.append({"color": color, "value": value, "bbox": [x0, y0, x1, round(bottom)]})
    draw.line([(left, top_px), (left, bottom)], fill=ink, width=max(1, side // 160))
    draw.line([(left, bottom), (right, bottom)], fill=ink, width=max(1, side // 160))
    kind = rng.choice(kinds)
    a, b = rng.sample(range(n), 2)
    if kind == "diff" and values[a] < values[b]:
        a, b = b, a
    answer = {
        "value": str(values[a]),
        "max": colors[values.index(max(values))],
        "min": colors[values.index(min(values))],
        "diff": str(values[a] - values[b]),
        "sum": str(values[a] + values[b]),
    }[kind]
    meta = {
        "canvas": [side, side],
        "background": bg,
        "bars": bars,
        "axis": {
            "baseline_y": round(bottom),
            "px_per_unit": round(px_per_unit, 3),
            "max": top,
            "grid_step": grid_step,
        },
        "query": {"kind": kind, "a": a, "b": b},
    }
    return Item(
        id="",
        question=rng.choice(TEMPLATES[kind]).format(a=colors[a], b=colors[b]),
        answer=answer,
        images=[img],
        metadata=meta,
        rationale=rationale(meta),
    )


def rationale(meta: dict) -> list[str]:
    """Steps from the chart data: read every bar against the axis, then answer the asked comparison."""
    bars, q = meta["bars"], meta["query"]
    steps = ["Reading each bar against the axis: " + ", ".join(f"{b['color']} {b['value']}" for b in bars) + "."]
    a, b = bars[q["a"]], bars[q["b"]]
    kind = q["kind"]
    if kind == "value":
        steps.append(f"The {a['color']} bar reaches {a['value']}.")
    elif kind in ("max", "min"):
        pick = (max if kind == "max" else min)(bars, key=lambda bar: bar["value"])
        word = "tallest" if kind == "max" else "shortest"
        steps.append(f"The {word} is the {pick['color']} bar at {pick['value']}, so the answer is {pick['color']}.")
        return steps
    elif kind == "diff":
        steps.append(
            f"{a['color'].capitalize()} minus {b['color']}: {a['value']} - {b['value']} = {a['value'] - b['value']}."
        )
    else:
        steps.append(
            f"{a['color'].capitalize()} plus {b['color']}: {a['value']} + {b['value']} = {a['value'] + b['value']}."
        )
    value = {"value": a["value"], "diff": a["value"] - b["value"], "sum": a["value"] + b["value"]}[kind]
    return [*steps, f"So the answer is {value}."]
