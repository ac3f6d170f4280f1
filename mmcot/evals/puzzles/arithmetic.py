"""arithmetic: an expression drawn as digits in the image ("12 + 7 = ?"); answer its value. Open numeric answer.

Difficulty 1: a + b with single digits. 2: two-digit sums and differences. 3: a x b + c or a x b - c (multiply
first), numbers in different colors, the whole line slightly tilted.
"""

from __future__ import annotations

import random

from PIL import Image, ImageDraw

from mmcot.evals.item import Item
from mmcot.evals.puzzles.render import COLORS, background, font, jitter

CANVASES = [128, 160, 192, 256, 320, 384, 448, 512]
TEMPLATES = [
    "What is the value of the expression in the image?",
    "Compute the result of the arithmetic shown.",
    "Solve the math problem in the picture.",
    "What number should replace the question mark?",
]
SYMBOL = {"+": "+", "-": "−", "*": "×"}


def _expression(rng: random.Random, difficulty: int) -> tuple[list[int], list[str]]:
    if difficulty == 1:
        return [rng.randint(1, 9), rng.randint(1, 9)], ["+"]
    if difficulty == 2:
        a, b = rng.randint(10, 99), rng.randint(2, 99)
        if rng.random() < 0.5:
            return [a, b], ["+"]
        return [max(a, b), min(a, b)], ["-"]
    a, b = rng.randint(2, 12), rng.randint(2, 9)
    op = rng.choice(["+", "-"])
    c = rng.randint(1, 20) if op == "+" else rng.randint(1, a * b)
    return [a, b, c], ["*", op]


def evaluate(operands: list[int], operators: list[str]) -> tuple[int, list[str]]:
    """The value (multiplication first, then left to right) and the worked steps."""
    nums, ops, steps = list(operands), list(operators), []
    while "*" in ops:
        i = ops.index("*")
        value = nums[i] * nums[i + 1]
        steps.append(f"{nums[i]} × {nums[i + 1]} = {value}")
        nums[i : i + 2], ops[i : i + 1] = [value], []
    value = nums[0]
    for op, n in zip(ops, nums[1:], strict=True):
        new = value + n if op == "+" else value - n
        steps.append(f"{value} {SYMBOL[op]} {n} = {new}")
        value = new
    return value, steps


def _draw_operator(
    draw: ImageDraw.ImageDraw, op: str, box: tuple[float, float, float, float], ink, width: int
) -> None:
    """Draw + - x = as strokes (the built-in font lacks the proper minus and times signs)."""
    x0, y0, x1, y1 = box
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * 0.32
    if op in "+-=":
        dy = r * 0.45 if op == "=" else 0
        draw.line([(cx - r, cy - dy), (cx + r, cy - dy)], fill=ink, width=width)
        if op == "=":
            draw.line([(cx - r, cy + dy), (cx + r, cy + dy)], fill=ink, width=width)
    if op == "+":
        draw.line([(cx, cy - r), (cx, cy + r)], fill=ink, width=width)
    if op == "*":
        d = r * 0.75
        draw.line([(cx - d, cy - d), (cx + d, cy + d)], fill=ink, width=width)
        draw.line([(cx - d, cy + d), (cx + d, cy - d)], fill=ink, width=width)


def render(rng: random.Random, operands: list[int], operators: list[str], difficulty: int) -> tuple[Image.Image, dict]:
    side = rng.choice(CANVASES)
    img, bg = background(rng, (side, side), min(difficulty, 2))
    tokens = [str(operands[0])]
    for op, n in zip(operators, operands[1:], strict=True):
        tokens += [op, str(n)]
    tokens += ["=", "?"]
    n_chars = sum(len(t) if t[0].isdigit() or t == "?" else 1.2 for t in tokens)
    size = min(side * 0.9 / (n_chars * 0.6), side * 0.35)
    fnt = font(size)
    dark = bg["name"] == "dark slate"
    ink = (235, 235, 235) if dark else (25, 25, 25)
    layer = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    widths = [draw.textlength(t, font=fnt) if t[0].isdigit() or t == "?" else size * 0.72 for t in tokens]
    x = (side - sum(widths)) / 2
    cy = side / 2 + rng.uniform(-0.15, 0.15) * side
    colors = []
    for t, w in zip(tokens, widths, strict=True):
        if t[0].isdigit() and difficulty == 3:
            color = jitter(rng, rng.choice([c for c in COLORS if c not in ("yellow", "gray")]))
        else:
            color = ink
        colors.append(list(color))
        if t[0].isdigit() or t == "?":
            draw.text((x + w / 2, cy), t, font=fnt, fill=color + (255,), anchor="mm")
        else:
            _draw_operator(draw, t, (x, cy - w / 2, x + w, cy + w / 2), color + (255,), max(1, round(size / 12)))
        x += w
    tilt = rng.uniform(-10, 10) if difficulty == 3 else 0.0
    if tilt:
        layer = layer.rotate(tilt, resample=Image.Resampling.BICUBIC, center=(side / 2, cy))
    img.paste(layer, (0, 0), layer)
    return img, {
        "canvas": [side, side],
        "background": bg,
        "tokens": tokens,
        "token_colors": colors,
        "font_px": round(size),
        "tilt": round(tilt, 1),
    }


def generate(rng: random.Random, difficulty: int) -> Item:
    operands, operators = _expression(rng, difficulty)
    value, _ = evaluate(operands, operators)
    img, meta = render(rng, operands, operators, difficulty)
    meta.update(operands=operands, operators=operators, value=value)
    return Item(
        id="",
        question=rng.choice(TEMPLATES),
        answer=str(value),
        images=[img],
        metadata=meta,
        rationale=rationale(meta),
    )


def rationale(meta: dict) -> list[str]:
    """Steps from the expression: read it, evaluate (multiplication first), state the value."""
    shown = " ".join(SYMBOL.get(t, t) for t in meta["tokens"])
    value, steps = evaluate(meta["operands"], meta["operators"])
    out = [f"The image shows {shown}."]
    if len(steps) > 1:
        out += [f"Multiplication first: {steps[0]}.", f"Then {steps[1]}."]
    else:
        out.append(f"{steps[0]}.")
    return [*out, f"So the answer is {value}."]
