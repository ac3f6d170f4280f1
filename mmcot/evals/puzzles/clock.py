"""clock: read an analog clock. Answer "h:mm" (12-hour, e.g. "3:15"). The hour hand moves with the minutes.

Difficulty 1: on the hour or half hour, all twelve numerals. 2: multiples of five minutes, numerals at 12, 3, 6, 9.
3: any minute, tick marks only.
"""

from __future__ import annotations

import math
import random

from PIL import Image, ImageDraw

from mmcot.evals.item import Item
from mmcot.evals.puzzles.render import background, font, jitter

CANVASES = [128, 160, 192, 256, 320, 384, 448, 512]
FACES = [(252, 252, 250), (250, 243, 225), (235, 242, 250), (245, 245, 245)]
HOUR_HAND, MINUTE_HAND = 0.5, 0.85  # hand lengths as fractions of the face radius
TEMPLATES = [
    "What time does the clock show?",
    "What time is it on this clock?",
    "Read the time on the clock face.",
    "What time is displayed? Answer as h:mm.",
]


def angles(hour: int, minute: int) -> tuple[float, float]:
    """Clockwise degrees from 12 o'clock of the hour and minute hands."""
    return (hour % 12) * 30 + minute * 0.5, minute * 6.0


def _point(center: tuple[float, float], radius: float, angle: float) -> tuple[float, float]:
    a = math.radians(angle)
    return center[0] + radius * math.sin(a), center[1] - radius * math.cos(a)


def generate(rng: random.Random, difficulty: int) -> Item:
    hour = rng.randint(1, 12)
    minute = {1: rng.choice([0, 30]), 2: 5 * rng.randint(0, 11), 3: rng.randint(0, 59)}[difficulty]
    side = rng.choice(CANVASES)
    img, bg = background(rng, (side, side), 1)
    ss = 4 if side <= 256 else 2  # draw at ss x and reduce, so hands and rim are anti-aliased
    big = img.resize((side * ss, side * ss), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(big)
    center = (side / 2 + rng.uniform(-0.03, 0.03) * side, side / 2 + rng.uniform(-0.03, 0.03) * side)
    radius = side * rng.uniform(0.4, 0.46)
    c, r = (center[0] * ss, center[1] * ss), radius * ss  # drawing coordinates
    ink = (25, 25, 30)
    rim = jitter(rng, rng.choice(["blue", "red", "gray", "green", "purple"])) if rng.random() < 0.5 else ink
    draw.ellipse([c[0] - r, c[1] - r, c[0] + r, c[1] + r], fill=rng.choice(FACES), outline=rim, width=round(r * 0.05))
    n_ticks = 60 if difficulty == 3 else 12
    for k in range(n_ticks):
        major = k % (n_ticks // 12) == 0
        w = max(ss, round(r * (0.025 if major else 0.01)))
        angle = k * 360 / n_ticks
        draw.line([_point(c, r * (0.82 if major else 0.88), angle), _point(c, r * 0.93, angle)], fill=ink, width=w)
    numerals = {1: list(range(1, 13)), 2: [12, 3, 6, 9], 3: []}[difficulty]
    fnt = font(r * 0.18)
    for n in numerals:
        draw.text(_point(c, r * 0.7, n * 30), str(n), font=fnt, fill=ink, anchor="mm")
    hour_angle, minute_angle = angles(hour, minute)
    for angle, length, width in ((hour_angle, HOUR_HAND, 0.07), (minute_angle, MINUTE_HAND, 0.04)):
        draw.line([c, _point(c, r * length, angle)], fill=ink, width=max(2 * ss, round(r * width)))
    cap = r * 0.06
    draw.ellipse([c[0] - cap, c[1] - cap, c[0] + cap, c[1] + cap], fill=ink)
    img = big.reduce(ss)
    meta = {
        "canvas": [side, side],
        "background": bg,
        "center": [round(center[0], 1), round(center[1], 1)],
        "radius": round(radius, 1),
        "hour": hour,
        "minute": minute,
        "hour_angle": hour_angle,
        "minute_angle": minute_angle,
        "hand_lengths": {"hour": HOUR_HAND, "minute": MINUTE_HAND},
        "numerals": numerals,
    }
    return Item(
        id="",
        question=rng.choice(TEMPLATES),
        answer=f"{hour}:{minute:02d}",
        images=[img],
        metadata=meta,
        rationale=rationale(meta),
    )


def rationale(meta: dict) -> list[str]:
    """Steps from the hand angles: where the minute hand points, where the hour hand points, the time."""
    hour, minute = meta["hour"], meta["minute"]
    mark = minute / 5
    if minute == 0:
        minute_step = "The long minute hand points straight up at 12: 0 minutes."
    elif mark == int(mark):
        minute_step = f"The long minute hand points at the {int(mark)}: {int(mark)} × 5 = {minute} minutes."
    else:
        minute_step = f"The long minute hand is {minute % 5} ticks past the {int(mark) or 12}: {minute} minutes."
    nxt = hour % 12 + 1
    hour_step = (
        f"The short hour hand points at the {hour}."
        if minute == 0
        else f"The short hour hand is between the {hour} and the {nxt}, so the hour is {hour}."
    )
    return [minute_step, hour_step, f"So the time is {hour}:{minute:02d}."]
