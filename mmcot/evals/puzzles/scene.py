"""The shared scene renderer: colored shapes placed without overlap on a varied background, with ground-truth
metadata (every object's shape, color, size, bounding box, center) and a faithful :func:`caption`.

Scene families (count, attribute, spatial, odd-one-out, small-object search) call :func:`render_scene` with a list
of object specs and get back the image and its metadata. Objects are at least 12% of the canvas side so the scene
stays readable when the whole canvas is resized to the model's native 128 px.

    >>> import random
    >>> img, meta = render_scene(random.Random(1), [{"shape": "circle", "color": "red"}], difficulty=1, canvas=128)
    >>> meta["objects"][0]["shape"], meta["objects"][0]["color"], img.size
    ('circle', 'red', (128, 128))
"""

from __future__ import annotations

import random
from statistics import median

from PIL import Image, ImageDraw

from mmcot.evals.puzzles.render import OUTLINE_DARK, background, draw_shape, jitter, shape_bbox, where

SCENE_CANVASES = [64, 96, 128, 160, 192, 224, 256, 320, 384, 448, 512]
MIN_FRACTION = 0.14  # nominal object size as a fraction of the canvas side; squares draw at 0.88 of it (>= 12%)


class PlacementError(RuntimeError):
    """The requested objects do not fit on the canvas without overlapping."""


def size_range(n_objects: int) -> tuple[float, float]:
    """Nominal object size range (fraction of the canvas side) for a scene of ``n_objects``."""
    if n_objects <= 3:
        return 0.2, 0.3
    if n_objects <= 5:
        return 0.16, 0.24
    return MIN_FRACTION, 0.19


def _overlaps(a: list[int], b: list[int], gap: float) -> bool:
    return not (a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1])


def render_scene(
    rng: random.Random, specs: list[dict], difficulty: int, canvas: int | None = None
) -> tuple[Image.Image, dict]:
    """Draw ``specs`` (dicts with "shape", "color", optional "fraction": nominal size as a fraction of the canvas
    side, default drawn from :func:`size_range`; optional "rotation" in degrees, default random from difficulty 2)
    without overlap. Returns ``(image, metadata)``; metadata["objects"] follows the order of ``specs``."""
    side = canvas or rng.choice([c for c in SCENE_CANVASES if c >= 16 * len(specs)])  # small canvases: few objects
    lo, hi = size_range(len(specs))
    outline_style = rng.choice(["none", "dark", "shade"] if difficulty > 1 else ["none", "dark"])
    rotate = difficulty > 1
    img, bg = background(rng, (side, side), difficulty)
    margin, gap = max(2, side * 0.04), max(3, side * 0.03)
    shrink = 1.0
    for _attempt in range(30):
        placed: list[dict] = []
        for spec in specs:
            frac = spec.get("fraction") or rng.uniform(lo, hi)
            size = side * max(frac * shrink, min(frac, MIN_FRACTION))  # retries shrink, never below the minimum
            rot = 0.0
            if "rotation" in spec:
                rot = spec["rotation"]
            elif rotate and spec["shape"] == "square":
                rot = rng.uniform(-25, 25)
            elif rotate and spec["shape"] == "triangle":
                rot = rng.uniform(0, 360) if difficulty > 2 else rng.choice([0, 0, 180, 90, -90])
            rel = shape_bbox(spec["shape"], (0, 0), size, rot)
            for _ in range(200):
                cx = rng.uniform(margin - rel[0], side - margin - rel[2])
                cy = rng.uniform(margin - rel[1], side - margin - rel[3])
                box = shape_bbox(spec["shape"], (cx, cy), size, rot)
                if not any(_overlaps(box, p["bbox"], gap) for p in placed):
                    placed.append({"spec": spec, "size": size, "rotation": rot, "center": (cx, cy), "bbox": box})
                    break
            else:
                break
        if len(placed) == len(specs):
            break
        shrink *= 0.95
    else:
        raise PlacementError(f"could not place {len(specs)} objects on a {side}px canvas")

    ss = 4 if side <= 128 else 2 if side <= 256 else 1  # supersample small canvases so edges are anti-aliased
    layer = Image.new("RGBA", (side * ss, side * ss), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    objects = []
    for p in placed:
        spec = p["spec"]
        rgb = jitter(rng, spec["color"])
        outline = None
        if outline_style == "dark":
            outline = OUTLINE_DARK if bg["name"] != "dark slate" else (235, 235, 235)
        elif outline_style == "shade":
            outline = tuple(int(c * 0.55) for c in rgb)
        width = max(1, round(p["size"] * 0.05))
        fill = rgb
        if spec.get("hollow"):  # drawn as a colored stroke only: it washes out when the image is shrunk
            fill, outline, width = None, rgb, max(2, round(p["size"] * 0.18))
        center = (p["center"][0] * ss, p["center"][1] * ss)
        draw_shape(draw, spec["shape"], center, p["size"] * ss, fill, outline, width * ss, p["rotation"])
        x0, y0, x1, y1 = p["bbox"]
        objects.append(
            {
                "shape": spec["shape"],
                "color": spec["color"],
                "rgb": list(rgb),
                "size": round(p["size"]),
                "rotation": round(p["rotation"], 1),
                "outline": list(outline) if outline else None,
                "hollow": bool(spec.get("hollow")),
                "bbox": [x0, y0, x1, y1],
                "center": [(x0 + x1) / 2, (y0 + y1) / 2],
            }
        )
    if ss > 1:
        layer = layer.convert("RGBa").reduce(ss).convert("RGBA")
    img.paste(layer, (0, 0), layer)
    return img, {"canvas": [side, side], "background": bg, "objects": objects}


def name(obj: dict) -> str:
    """ "red circle"."""
    return f"{obj['color']} {obj['shape']}"


def size_word(obj: dict, objects: list[dict], canvas: list[int]) -> str:
    """ "tiny", "large", "small" or "" (ordinary), relative to the canvas and to the scene's median size."""
    if obj["size"] < 0.06 * min(canvas):
        return "tiny"
    typical = median(o["size"] for o in objects if o["size"] >= 0.06 * min(canvas))
    if obj["size"] > 1.3 * typical:
        return "large"
    if obj["size"] < 0.75 * typical:
        return "small"
    return ""


def reading_order(objects: list[dict], canvas: list[int]) -> list[int]:
    """Indices of objects top to bottom (by thirds of the canvas), then left to right."""
    return sorted(
        range(len(objects)), key=lambda i: (int(3 * objects[i]["center"][1] / canvas[1]), objects[i]["center"][0])
    )


def caption(metadata: dict) -> str:
    """A faithful description of every object in a scene: its size (when notable), color, shape and position.

    >>> caption({"canvas": [100, 100], "background": {"name": "white"},
    ...          "objects": [{"shape": "circle", "color": "red", "size": 20, "center": [15, 15]}]})
    'A 100x100 image on a white background with 1 shape: a red circle at the top left.'
    """
    if "objects" not in metadata or "canvas" not in metadata:
        raise ValueError("caption() needs scene metadata with 'canvas' and 'objects'")
    canvas, objects = metadata["canvas"], metadata["objects"]
    parts = []
    for i in reading_order(objects, canvas):
        obj = objects[i]
        hollow = "hollow" if obj.get("hollow") else ""
        words = " ".join(w for w in (size_word(obj, objects, canvas), hollow, obj["color"], obj["shape"]) if w)
        article = "an" if words[0] in "aeiou" else "a"
        parts.append(f"{article} {words} {where(obj['center'], canvas)}")
    bg = metadata.get("background", {}).get("name", "plain")
    n = len(objects)
    listing = parts[0] if n == 1 else ", ".join(parts[:-1]) + " and " + parts[-1] if parts else "nothing"
    return f"A {canvas[0]}x{canvas[1]} image on a {bg} background with {n} shape{'s' if n != 1 else ''}: {listing}."
