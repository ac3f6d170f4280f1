"""Drawing primitives every puzzle family shares: the color and shape vocabulary, jittered colors, varied
backgrounds, shape outlines, position words and a scalable font. Pillow only.

    >>> import random
    >>> rgb = jitter(random.Random(0), "red")
    >>> all(abs(a - b) <= JITTER for a, b in zip(rgb, PALETTE["red"]))
    True
"""

from __future__ import annotations

import math
import random

from PIL import Image, ImageDraw, ImageFont

# Canonical RGB of each color word; drawn colors are jittered around these and stay unambiguous to a person.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (215, 40, 40),
    "orange": (245, 135, 25),
    "yellow": (240, 210, 35),
    "green": (40, 160, 65),
    "blue": (45, 95, 220),
    "purple": (135, 60, 185),
    "gray": (128, 128, 128),
}
COLORS = list(PALETTE)
SHAPES = ["circle", "square", "triangle"]
JITTER = 14  # max per-channel offset from the canonical RGB

# Backgrounds stay far from every object color: light tints (channels >= 215) or a dark slate.
LIGHT_BACKGROUNDS = {
    "white": (250, 250, 250),
    "cream": (250, 244, 228),
    "light gray": (230, 230, 232),
    "pale blue": (226, 236, 248),
    "pale green": (230, 244, 230),
    "pale pink": (248, 234, 238),
}
DARK_BACKGROUNDS = {"dark slate": (38, 42, 50)}
OUTLINE_DARK = (25, 25, 25)


def jitter(rng: random.Random, color: str, amount: int = JITTER) -> tuple[int, int, int]:
    """A drawn RGB for a color word: the canonical value plus a small random offset (gray stays neutral)."""
    base = PALETTE[color]
    if color == "gray":
        d = rng.randint(-amount, amount)
        return tuple(max(0, min(255, c + d + rng.randint(-2, 2))) for c in base)
    return tuple(max(0, min(255, c + rng.randint(-amount, amount))) for c in base)


def background(rng: random.Random, size: tuple[int, int], difficulty: int) -> tuple[Image.Image, dict]:
    """A canvas with a varied background: solid, vertical gradient, faint grid or fine noise (more at higher
    difficulty). Returns the image and a JSON description ``{"name", "rgb", "style"}``."""
    dark = difficulty >= 2 and rng.random() < 0.12
    name, base = rng.choice(list((DARK_BACKGROUNDS if dark else LIGHT_BACKGROUNDS).items()))
    rgb = tuple(max(0, min(255, c + rng.randint(-5, 5))) for c in base)
    styles = ["solid"] * 3 + ["gradient"] * difficulty + ["grid", "noise"] * (difficulty - 1)
    style = rng.choice(styles)
    img = Image.new("RGB", size, rgb)
    shade = tuple(max(0, c - 14) if not dark else c + 14 for c in rgb)
    if style == "gradient":
        mask = Image.linear_gradient("L").resize(size)
        img = Image.composite(Image.new("RGB", size, shade), img, mask)
    elif style == "grid":
        draw = ImageDraw.Draw(img)
        step = max(8, min(size) // rng.randint(6, 12))
        for x in range(step, size[0], step):
            draw.line([(x, 0), (x, size[1])], fill=shade)
        for y in range(step, size[1], step):
            draw.line([(0, y), (size[0], y)], fill=shade)
    elif style == "noise":
        noise = Image.effect_noise(size, 40).convert("RGB")
        img = Image.blend(img, noise, 0.08)
    return img, {"name": name, "rgb": list(rgb), "style": style}


def shape_points(shape: str, center: tuple[float, float], size: float, rotation: float = 0.0) -> list[tuple]:
    """Polygon vertices of a square or triangle of nominal ``size`` px, rotated ``rotation`` degrees."""
    cx, cy = center
    if shape == "square":
        r, angles = size * 0.44 * math.sqrt(2), [45, 135, 225, 315]
    elif shape == "triangle":
        r, angles = size * 0.6, [-90, 30, 150]
        cy += size * 0.08  # center the triangle's bounding box rather than its centroid
    else:
        raise ValueError(f"no polygon for shape {shape!r}")
    return [
        (cx + r * math.cos(math.radians(a + rotation)), cy + r * math.sin(math.radians(a + rotation))) for a in angles
    ]


def shape_bbox(shape: str, center: tuple[float, float], size: float, rotation: float = 0.0) -> list[int]:
    """Pixel bounding box ``[x0, y0, x1, y1]`` of a shape as :func:`draw_shape` draws it."""
    if shape == "circle":
        r = size / 2
        return [round(center[0] - r), round(center[1] - r), round(center[0] + r), round(center[1] + r)]
    pts = shape_points(shape, center, size, rotation)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return [math.floor(min(xs)), math.floor(min(ys)), math.ceil(max(xs)), math.ceil(max(ys))]


def draw_shape(
    draw: ImageDraw.ImageDraw,
    shape: str,
    center: tuple[float, float],
    size: float,
    fill: tuple[int, int, int] | None,
    outline: tuple[int, int, int] | None = None,
    width: int = 1,
    rotation: float = 0.0,
) -> None:
    """Draw one shape (circle, square, triangle) centered at ``center``; ``fill`` None draws only the outline."""
    if shape == "circle":
        draw.ellipse(shape_bbox(shape, center, size), fill=fill, outline=outline, width=width if outline else 0)
    else:
        draw.polygon(
            shape_points(shape, center, size, rotation), fill=fill, outline=outline, width=width if outline else 0
        )


def where(center: tuple[float, float] | list[float], canvas: tuple[int, int] | list[int]) -> str:
    """A position phrase on a 3x3 grid: "at the top left", "in the center", "on the right", ..."""
    col = min(2, int(3 * center[0] / canvas[0]))
    row = min(2, int(3 * center[1] / canvas[1]))
    v, h = ["top", "", "bottom"][row], ["left", "", "right"][col]
    if v and h:
        return f"at the {v} {h}"
    if v:
        return f"at the {v}"
    if h:
        return f"on the {h}"
    return "in the center"


def plural(noun: str, n: int = 2) -> str:
    return noun if n == 1 else noun + "s"


def font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's built-in scalable font at ``size`` px (no font file needed)."""
    return ImageFont.load_default(size=max(6, int(size)))
