"""Dense targets for pretraining the vision tower: what each patch token should encode, read from puzzle metadata.

For an image resized to the native resolution and cut into a ``grid`` x ``grid`` array of patches, every patch gets:

- ``color``: the color of the thing covering it (0 none, 1-7 the puzzle colors);
- ``shape``: what covers it (0 none, circle, square, triangle, bar, hour hand, minute hand);
- ``thing``: which object covers it (its index in ``metadata["objects"]``, bars, ...; -1 none): a question's
  grounding (``data.grounding``);
- ``center``: 1 when an object's center falls in it (counting = counting these patches);
- ``offset``: where in the patch that center lies (x, y in [0, 1]) and ``size``: the object's side as a fraction
  of the image (largest/smallest questions; a bar's height), both only on center patches (``mask``);
and every clock gets ``clock``: sin and cos of the hour and minute hand angles. Labels are rasterized from the
metadata (the same shapes the puzzle drew, re-drawn as a label image), so they are exact, and rotated with the
image for the rotation family. Families without usable geometry (maze, arithmetic, number patterns) get ignore
labels (-100) and contribute nothing.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from mmcot.evals.item import Item

COLORS = ["red", "orange", "yellow", "green", "blue", "purple", "gray"]
SHAPES = ["none", "circle", "square", "triangle", "bar", "hour hand", "minute hand"]
IGNORE = -100
MIN_COVER = 0.2  # fraction of a patch an object must cover to label it
TINY_PX = 7  # objects narrower than this (at the native resolution) get no shape label


def targets(item: Item, image_index: int, image_size: int, grid: int) -> dict[str, np.ndarray]:
    """The dense targets of one image of ``item`` (see the module doc), as numpy arrays over ``grid * grid``."""
    n = grid * grid
    out = {
        "color": np.full(n, IGNORE, np.int64),
        "shape": np.full(n, IGNORE, np.int64),
        "thing": np.full(n, -1, np.int64),
        "center": np.full(n, IGNORE, np.int64),
        "offset": np.zeros((n, 2), np.float32),
        "size": np.zeros(n, np.float32),
        "mask": np.zeros(n, np.float32),
        "clock": np.zeros(4, np.float32),
        "clock_mask": np.zeros(1, np.float32),
    }
    things = _things(item)
    if things is None:
        return out
    meta = item.metadata
    w, h = meta["canvas"]
    sx, sy = image_size / w, image_size / h
    label = Image.new("RGB", (image_size, image_size), (0, 0, 0))
    draw = ImageDraw.Draw(label)
    for k, t in enumerate(things, 1):
        _draw(draw, t, sx, sy, k)
    rotation = meta.get("query", {}).get("rotation_cw", 0) if image_index == 1 else 0
    if rotation:
        from mmcot.evals.puzzles.rotation import rotate_cw

        label = rotate_cw(label, rotation)
    ids = np.asarray(label)[:, :, 0].astype(np.int64)
    patch = image_size // grid
    cells = ids.reshape(grid, patch, grid, patch).transpose(0, 2, 1, 3).reshape(n, patch * patch)
    color, shape, thing = np.zeros(n, np.int64), np.zeros(n, np.int64), out["thing"]
    for p in range(n):
        counts = np.bincount(cells[p], minlength=len(things) + 1)
        counts[0] = 0
        k = int(counts.argmax())
        if counts[k] >= MIN_COVER * patch * patch:
            color[p], shape[p], thing[p] = *_classes(things[k - 1]), k - 1
    center = np.zeros(n, np.int64)
    for k, t in enumerate(things):
        if t["kind"] != "object":
            continue
        cx, cy = t["center"]
        if rotation:
            from mmcot.evals.puzzles.rotation import rotate_point_cw

            cx, cy = rotate_point_cw([cx, cy], [w, h], rotation)
        x, y = cx * sx, cy * sy
        col, row = min(grid - 1, int(x // patch)), min(grid - 1, int(y // patch))
        p = row * grid + col
        center[p], thing[p] = 1, k
        color[p], shape[p] = _classes(t)  # a small object still labels the patch its center is in
        if t["size"] * sx < TINY_PX:
            shape[p] = IGNORE  # a few pixels wide at this resolution: its shape is not visible, only its color
        out["offset"][p] = (x / patch - col, y / patch - row)
        out["size"][p] = t["size"] / max(w, h)
        out["mask"][p] = 1.0
    out["color"], out["shape"], out["center"] = color, shape, center
    if item.category == "clock":
        hour, minute = math.radians(meta["hour_angle"]), math.radians(meta["minute_angle"])
        out["clock"] = np.array([math.sin(hour), math.cos(hour), math.sin(minute), math.cos(minute)], np.float32)
        out["clock_mask"][0] = 1.0
    return out


def _classes(t: dict) -> tuple[int, int]:
    color = COLORS.index(t["color"]) + 1 if t.get("color") in COLORS else 0
    return color, SHAPES.index(t["shape"])


def _things(item: Item) -> list[dict] | None:
    """What is drawn, as dicts {kind, shape, color, center, size, ...} in canvas pixels; None without geometry."""
    meta = item.metadata
    if "objects" in meta:  # every scene family
        return [dict(o, kind="object") for o in meta["objects"]]
    if item.category == "bar_chart":
        return [
            {"kind": "object", "shape": "bar", "color": b["color"], "bbox": b["bbox"],
             "center": [(b["bbox"][0] + b["bbox"][2]) / 2, (b["bbox"][1] + b["bbox"][3]) / 2],
             "size": b["bbox"][3] - b["bbox"][1]}
            for b in meta["bars"]
        ]  # fmt: skip
    if item.category == "pattern":
        from mmcot.evals.puzzles.pattern import SIZES

        out = []
        for k, (box, cell) in enumerate(zip(meta["cell_boxes"], meta["cells"], strict=True)):
            if k == meta["missing"] or "shape" not in cell:
                continue
            side = (box[2] - box[0]) * SIZES[cell.get("size", "large")] * 0.9
            center = [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]
            out.append({"kind": "object", "shape": cell["shape"], "color": cell["color"], "center": center,
                        "size": side, "rotation": 0.0})  # fmt: skip
        return out or None  # number sequences: digits have no per-patch label here
    if item.category == "clock":
        c, r = meta["center"], meta["radius"]
        hands = []
        for name, angle, length in (("hour hand", meta["hour_angle"], meta["hand_lengths"]["hour"]),
                                    ("minute hand", meta["minute_angle"], meta["hand_lengths"]["minute"])):  # fmt: skip
            a = math.radians(angle)
            tip = [c[0] + r * length * math.sin(a), c[1] - r * length * math.cos(a)]
            hands.append({"kind": "line", "shape": name, "color": None, "points": [c, tip]})
        return hands
    return None


def _draw(draw: ImageDraw.ImageDraw, t: dict, sx: float, sy: float, k: int) -> None:
    from mmcot.evals.puzzles.render import draw_shape

    fill = (k, 0, 0)
    if t["kind"] == "line":
        draw.line([(x * sx, y * sy) for x, y in t["points"]], fill=fill, width=5)  # generous: hands are thin
    elif t["shape"] == "bar":
        x0, y0, x1, y1 = t["bbox"]
        draw.rectangle([x0 * sx, y0 * sy, x1 * sx, y1 * sy], fill=fill)
    else:
        center = (t["center"][0] * sx, t["center"][1] * sy)
        draw_shape(draw, t["shape"], center, t["size"] * sx, fill, rotation=t.get("rotation", 0.0))
