"""Puzzle answers checked from the pixels, independently of the generators' bookkeeping: connected regions of each
color are found and classified (circle / square / triangle by compactness), clock hands are read by sampling rays,
mazes are solved by BFS over cell pixels, bars are measured, rotations are undone."""

import math
import re
from collections import deque

import numpy as np
import pytest
from PIL import Image, ImageChops

from mmcot.evals.puzzles import NATIVE_RESOLUTION, generate
from mmcot.evals.puzzles.render import PALETTE

NAMES = list(PALETTE)
RGB = np.array([PALETTE[c] for c in NAMES], dtype=np.float32)
QUADRANTS = ["top left", "top right", "bottom left", "bottom right"]


def palette_index(rgb: np.ndarray, max_dist: float = 45.0) -> np.ndarray:
    """For RGB values (..., 3): the index of the palette color within ``max_dist``, else -1."""
    rgb = rgb.astype(np.float32)
    d2 = np.stack([((rgb - c) ** 2).sum(-1) for c in RGB], axis=-1)
    idx = d2.argmin(-1)
    idx[d2.min(-1) > max_dist**2] = -1
    return idx


def color_map(img: Image.Image) -> np.ndarray:
    """Per pixel: the index of the nearby palette color, else -1."""
    return palette_index(np.asarray(img.convert("RGB")))


def shape_of(area: int, pixels: np.ndarray, centroid: np.ndarray) -> str:
    """circle / square / triangle, whatever the rotation, from two measures that tolerate pixelation: compactness
    (area over the squared max distance from the centroid: pi for a disc, 2 for a square, 1.3 for an equilateral
    triangle) and fill of the tightest rotated bounding box (0.79, 1, 0.5)."""
    r = np.sqrt(((pixels - centroid) ** 2).sum(1).max()) + 0.5
    compact = area / r**2
    box = np.inf
    for deg in range(0, 90, 3):
        t = math.radians(deg)
        x = pixels[:, 0] * math.cos(t) + pixels[:, 1] * math.sin(t)
        y = pixels[:, 1] * math.cos(t) - pixels[:, 0] * math.sin(t)
        box = min(box, (np.ptp(x) + 1) * (np.ptp(y) + 1))
    fill = area / box
    if fill < 0.66 or compact < 1.65:
        return "triangle"
    return "circle" if compact > 2.4 and fill < 0.87 else "square"


def label(mask: np.ndarray) -> list[np.ndarray]:
    """Connected (4-neighbour) components of a boolean mask, each as an array of (x, y) pixels. Works on runs of
    pixels per row joined by union-find, so it is fast on large images."""
    runs, parent = [], []
    padded = np.pad(mask.astype(np.int8), ((0, 0), (1, 1)))
    edges = np.diff(padded, axis=1)
    prev: list[int] = []
    for y in range(mask.shape[0]):
        starts, ends = np.nonzero(edges[y] == 1)[0], np.nonzero(edges[y] == -1)[0]
        current = []
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            k = len(runs)
            runs.append((y, a, b))
            parent.append(k)
            current.append(k)
            for j in prev:
                if runs[j][1] < b and a < runs[j][2]:  # overlapping runs in adjacent rows touch
                    ra, rb = k, j
                    while parent[ra] != ra:
                        ra = parent[ra]
                    while parent[rb] != rb:
                        rb = parent[rb]
                    parent[ra] = rb
        prev = current
    groups: dict[int, list] = {}
    for k, (y, a, b) in enumerate(runs):
        root = k
        while parent[root] != root:
            root = parent[root]
        xs = np.arange(a, b)
        groups.setdefault(root, []).append(np.stack([xs, np.full_like(xs, y)], axis=1))
    return [np.concatenate(g).astype(np.float32) for g in groups.values()]


def describe(pixels: np.ndarray, px: np.ndarray) -> dict | None:
    """Color (the most common palette color inside), area, centroid, bbox and shape of one component."""
    xs, ys = pixels[:, 0].astype(int), pixels[:, 1].astype(int)
    inside = palette_index(px[ys, xs])
    inside = inside[inside >= 0]
    if inside.size == 0:
        return None
    centroid = pixels.mean(0)
    return {
        "color": NAMES[np.bincount(inside).argmax()],
        "area": len(pixels),
        "center": centroid,
        "bbox": [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1],
        "shape": shape_of(len(pixels), pixels, centroid),
    }


def objects_in(img: Image.Image, min_area: int = 20) -> list[dict]:
    """Every shape as a silhouette: connected pixels that differ from the background (estimated from the image's
    border, which the generators keep clear), holes filled, classified by dominant palette color and outline."""
    px = np.asarray(img.convert("RGB"), dtype=np.float32)
    border = np.concatenate([px[0], px[-1], px[:, 0], px[:, -1]])
    mask = ((px - np.median(border, axis=0)) ** 2).sum(-1) > 45**2
    h, w = mask.shape
    for hole in label(~mask):  # fill holes, so a hollow (stroke-only) shape has a solid silhouette
        xs, ys = hole[:, 0].astype(int), hole[:, 1].astype(int)
        if xs.min() > 0 and ys.min() > 0 and xs.max() < w - 1 and ys.max() < h - 1:
            mask[ys, xs] = True
    found = (describe(p, px) for p in label(mask) if len(p) >= min_area)
    return [o for o in found if o]


def named(objects: list[dict], text: str) -> dict:
    """The one object whose "color shape" appears in ``text``."""
    hits = [o for o in objects if f"{o['color']} {o['shape']}" in text]
    assert len(hits) == 1, (text, [(o["color"], o["shape"]) for o in objects])
    return hits[0]


def words_in(text: str, vocabulary) -> list[str]:
    """Vocabulary words in the order they appear in ``text``."""
    return sorted(
        (w for w in vocabulary if re.search(rf"\b{w}s?\b", text)), key=lambda w: re.search(rf"\b{w}s?\b", text).start()
    )


def items(family: str, n: int, seed: int = 11) -> list:
    return generate(family, n=n, seed=seed, split="val")


# --- scenes ---------------------------------------------------------------------------------------------------------


def test_count_equals_connected_regions_of_the_asked_color_and_shape():
    for it in items("count", 30):
        objs = objects_in(it.image)
        assert len(objs) == len(it.metadata["objects"]), it.id
        colors = words_in(it.question, NAMES)
        shapes = words_in(it.question, ["circle", "square", "triangle"])
        hits = [o for o in objs if (not colors or o["color"] == colors[0]) and (not shapes or o["shape"] == shapes[0])]
        assert str(len(hits)) == it.answer, (it.id, it.question, it.answer)


def test_attribute_answers_from_pixels():
    for it in items("attribute", 30):
        objs = objects_in(it.image)
        q = it.question
        if "largest" in q or "biggest" in q:
            target = max(objs, key=lambda o: o["area"])
            runner_up = sorted(o["area"] for o in objs)[-2] if len(objs) > 1 else 0
            assert target["area"] > 1.3 * runner_up, it.id
        elif words_in(q, NAMES):
            (target,) = [o for o in objs if o["color"] == words_in(q, NAMES)[0]]
        else:
            (target,) = [o for o in objs if o["shape"] == words_in(q, ["circle", "square", "triangle"])[0]]
        got = target["color"] if "color" in q.lower() else target["shape"]
        assert got == it.answer, (it.id, q, it.answer)


def test_spatial_answers_from_pixel_centroids():
    for it in items("spatial", 30):
        objs = objects_in(it.image)
        q = it.question
        side = it.image.width
        if it.choices:  # direction of a from b
            names = [f"{o['color']} {o['shape']}" for o in objs]
            first, second = sorted((n for n in names if n in q), key=q.index)
            if f"from the {first}" in q:  # "In which direction from B is A?"
                first, second = second, first
            a, b = objs[names.index(first)], objs[names.index(second)]
            dx, dy = a["center"] - b["center"]
            got = ("left" if dx < 0 else "right") if abs(dx) > abs(dy) else ("above" if dy < 0 else "below")
        elif it.answer in ("yes", "no"):
            names = [f"{o['color']} {o['shape']}" for o in objs]
            first, second = sorted((n for n in names if n in q), key=q.index)
            a, b = objs[names.index(first)], objs[names.index(second)]
            dx, dy = a["center"] - b["center"]
            if "left" in q:
                holds = dx < 0
            elif "right" in q:
                holds = dx > 0
            elif any(w in q for w in ("above", "higher")):
                holds = dy < 0
            else:
                holds = dy > 0
            assert abs(dx if ("left" in q or "right" in q) else dy) >= 0.1 * side, it.id  # a clear relation
            got = "yes" if holds else "no"
        else:
            key = {
                "left": lambda o: o["center"][0],
                "right": lambda o: -o["center"][0],
                "highest": lambda o: o["center"][1],
                "top": lambda o: o["center"][1],
                "lowest": lambda o: -o["center"][1],
                "bottom": lambda o: -o["center"][1],
            }
            word = next(w for w in key if w in q)
            best = min(objs, key=key[word])
            got = f"{best['color']} {best['shape']}"
        assert got == it.answer, (it.id, q, it.answer)


def test_odd_one_out_from_pixels():
    for it in items("odd_one_out", 30):
        objs = objects_in(it.image)
        if it.answer in ("color", "shape", "size"):
            attr = it.answer
            if attr == "size":
                areas = sorted(o["area"] for o in objs)
                assert areas[-1] > 2 * areas[-2], it.id  # one shape clearly larger than all the others
                continue
            values = [o[attr] for o in objs]
            odd = [v for v in values if values.count(v) == 1]
            assert len(odd) == 1 and len(set(values)) == 2, (it.id, values)
            continue
        odd = named(objs, it.answer)
        others = [o for o in objs if o is not odd]
        assert any(len({o[a] for o in others}) == 1 and odd[a] != others[0][a] for a in ("color", "shape")), it.id


def test_scene_objects_survive_resizing_to_native_resolution():
    for it in generate(["count", "attribute", "spatial", "odd_one_out"], n=12, seed=5, split="val"):
        small = it.image.resize((NATIVE_RESOLUTION, NATIVE_RESOLUTION), Image.Resampling.BICUBIC)
        full = sorted((o["color"], o["shape"]) for o in objects_in(it.image))
        native = sorted((o["color"], o["shape"]) for o in objects_in(small))
        assert [c for c, _ in native] == [c for c, _ in full] and len(native) == len(it.metadata["objects"]), it.id
        agree = sum(a == b for a, b in zip(full, native, strict=True))
        assert agree >= len(full) - 1, (it.id, full, native)  # shapes still tell apart (at most one borderline)


# --- small-object search ----------------------------------------------------------------------------------------------


def small_regions(img: Image.Image) -> list[dict]:
    side = img.width
    return [r for r in objects_in(img, min_area=12) if r["bbox"][2] - r["bbox"][0] < 0.05 * side]


def zoom(img: Image.Image, center, fraction: float = 0.25) -> tuple[Image.Image, np.ndarray]:
    """Crop a square a quarter of the canvas side around ``center`` (kept inside the canvas), resize it to the
    native resolution; returns the zoomed view and where ``center`` lands in it."""
    side = round(img.width * fraction)
    x0 = int(min(max(0, center[0] - side / 2), img.width - side))
    y0 = int(min(max(0, center[1] - side / 2), img.height - side))
    crop = img.crop((x0, y0, x0 + side, y0 + side))
    spot = (np.asarray(center) - [x0, y0]) * NATIVE_RESOLUTION / side
    return crop.resize((NATIVE_RESOLUTION, NATIVE_RESOLUTION), Image.Resampling.BICUBIC), spot


def find_small_target(it) -> list[dict]:
    """The small shapes the question names (by color, shape or both; the question kind says which it asks)."""
    colors = words_in(it.question, NAMES)
    shapes = [] if it.metadata["query"]["kind"] == "shape" else words_in(it.question, ["circle", "square", "triangle"])
    return [
        s
        for s in small_regions(it.image)
        if (not colors or s["color"] == colors[0]) and (not shapes or s["shape"] == shapes[0])
    ]


@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_small_target_is_below_native_resolution_and_legible_after_zoom(difficulty):
    for it in generate("small_object", n=8, seed=2, split="val", difficulty=difficulty):
        assert it.image.width >= 448
        q = it.question
        wanted = find_small_target(it)
        if it.answer == "no":
            assert wanted == [], it.id
            continue
        assert len(wanted) == 1, (it.id, q, [(s["color"], s["shape"]) for s in small_regions(it.image)])
        t = wanted[0]
        scale = NATIVE_RESOLUTION / it.image.width
        extent = max(t["bbox"][2] - t["bbox"][0], t["bbox"][3] - t["bbox"][1])
        assert extent * scale <= 4.0, f"{it.id}: target spans {extent * scale:.1f} px at {NATIVE_RESOLUTION} px"
        # at native resolution a 4-px blob cannot show which of three shapes it is
        zoomed, spot = zoom(it.image, t["center"])
        near = min(objects_in(zoomed), key=lambda r: np.abs(r["center"] - spot).sum())
        zext = max(near["bbox"][2] - near["bbox"][0], near["bbox"][3] - near["bbox"][1])
        assert zext >= 9, f"{it.id}: only {zext} px after zooming"
        assert (near["color"], near["shape"]) == (t["color"], t["shape"]), it.id
        answer = {
            "color": t["color"],
            "shape": t["shape"],
            "quadrant": QUADRANTS[
                2 * (t["center"][1] >= it.image.height / 2) + (t["center"][0] >= it.image.width / 2)
            ],
            "exists": "yes",
        }[it.metadata["query"]["kind"]]
        assert answer == it.answer, (it.id, q)


def test_small_target_color_washes_out_at_native_resolution():
    """Shrunk to 128 px, the target's few pixels are blends: (almost) none stays near its own color."""
    kept = total = 0
    for it in generate("small_object", n=30, seed=4, split="val"):
        if it.answer == "no":
            continue
        target = find_small_target(it)
        (x0, y0, x1, y1), scale = target[0]["bbox"], NATIVE_RESOLUTION / it.image.width
        native = np.asarray(it.image.resize((NATIVE_RESOLUTION,) * 2, Image.Resampling.BICUBIC), dtype=np.float32)
        patch = native[int(y0 * scale) : int(np.ceil(y1 * scale)), int(x0 * scale) : int(np.ceil(x1 * scale))]
        closest = np.sqrt(((patch - PALETTE[target[0]["color"]]) ** 2).sum(-1)).min()
        kept += closest < 45
        total += 1
    assert total >= 12 and kept <= 0.1 * total, (kept, total)


def test_small_target_color_is_not_a_giveaway_at_native_resolution():
    """Where the question names the target's color (quadrant, exists), another small shape shares that color."""
    for it in generate("small_object", n=24, seed=9, split="val"):
        if it.metadata["query"]["kind"] not in ("quadrant", "exists"):
            continue
        color = words_in(it.question, NAMES)[0]
        assert sum(s["color"] == color for s in small_regions(it.image)) >= 2 - (it.answer == "no"), it.id


# --- clock, maze, bar chart, rotation, pattern ----------------------------------------------------------------------------


def dark_angles(img: Image.Image, center, radius: float) -> list[float]:
    """Clockwise-from-12 angles (degrees) where a circle of ``radius`` crosses dark ink."""
    px = np.asarray(img.convert("L"), dtype=np.float32)
    out = []
    for k in range(720):
        a = k / 2
        x = center[0] + radius * math.sin(math.radians(a))
        y = center[1] - radius * math.cos(math.radians(a))
        if px[int(round(y)), int(round(x))] < 90:
            out.append(a)
    return out


def mean_angle(angles: list[float]) -> float:
    s = sum(math.sin(math.radians(a)) for a in angles)
    c = sum(math.cos(math.radians(a)) for a in angles)
    return math.degrees(math.atan2(s, c)) % 360


def gap(a: float, b: float) -> float:
    return abs((a - b + 180) % 360 - 180)


def test_clock_hands_in_the_pixels_match_the_time():
    for it in items("clock", 36):
        center, r = it.metadata["center"], it.metadata["radius"]
        minute_ink = dark_angles(it.image, center, 0.58 * r)  # only the long minute hand reaches this far
        assert minute_ink, it.id
        m_angle = mean_angle(minute_ink)
        assert max(gap(a, m_angle) for a in minute_ink) < 8, (it.id, "one minute hand")
        inner = dark_angles(it.image, center, 0.32 * r)  # both hands cross here
        hour_ink = [a for a in inner if gap(a, m_angle) > 6]
        h_angle = mean_angle(hour_ink) if hour_ink else m_angle
        minute = round(m_angle / 6) % 60
        hour = round((h_angle - minute * 0.5) / 30) % 12 or 12
        assert f"{hour}:{minute:02d}" == it.answer, (it.id, m_angle, h_angle)


def test_maze_answers_by_bfs_over_the_pixels():
    for it in items("maze", 24):
        m = it.metadata
        n, cell, (ox, oy) = len(m["grid"]), m["cell_px"], m["origin"]
        px = np.asarray(it.image.convert("RGB"), dtype=np.int32)
        open_, start, goal = {}, None, None
        for r in range(n):
            for c in range(n):
                rgb = px[oy + r * cell + cell // 2, ox + c * cell + cell // 2]
                open_[(r, c)] = rgb.sum() > 300 or rgb.max() - rgb.min() > 80  # floor or a colored dot
                if rgb[1] > rgb[0] + 60:
                    start = (r, c)
                elif rgb[0] > rgb[1] + 100:
                    goal = (r, c)
        dist, queue = {start: 0}, deque([start])
        while queue:
            r, c = queue.popleft()
            for nxt in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                if open_.get(nxt) and nxt not in dist:
                    dist[nxt] = dist[(r, c)] + 1
                    queue.append(nxt)
        if it.answer in ("yes", "no"):
            assert ("yes" if goal in dist else "no") == it.answer, it.id
        else:
            assert str(dist[goal]) == it.answer, it.id


def test_bar_chart_answers_from_measured_bar_heights():
    for it in items("bar_chart", 30):
        baseline, per_unit = it.metadata["axis"]["baseline_y"], it.metadata["axis"]["px_per_unit"]
        cmap = color_map(it.image)
        row = cmap[baseline - 4]  # just above the x axis line
        values, x = {}, 0
        while x < len(row):
            if row[x] < 0:
                x += 1
                continue
            start = x
            while x < len(row) and row[x] == row[start]:
                x += 1
            if x - start >= 4:
                col = cmap[:, (start + x) // 2]
                top = baseline - 4
                while top > 0 and col[top - 1] == row[start]:
                    top -= 1
                values[NAMES[row[start]]] = round((baseline - top) / per_unit)
        q = it.question
        named_colors = words_in(q, NAMES)
        if "tallest" in q or "highest" in q or "largest" in q:
            got = max(values, key=values.get)
        elif "shortest" in q or "lowest" in q or "smallest" in q:
            got = min(values, key=values.get)
        elif len(named_colors) == 2:
            a, b = (values[c] for c in named_colors)
            got = str(a + b if any(w in q for w in ("sum", "Add", "total")) else a - b)
        else:
            got = str(values[named_colors[0]])
        assert got == it.answer, (it.id, q, values)


def test_rotating_back_restores_the_original():
    for it in items("rotation", 24):
        first, second = it.images
        ops = {
            0: None,
            90: Image.Transpose.ROTATE_270,
            180: Image.Transpose.ROTATE_180,
            270: Image.Transpose.ROTATE_90,
        }
        matches = []
        for choice in it.choices:
            op = ops[int(choice)]
            back = second if op is None else second.transpose(op)
            if ImageChops.difference(back, first).getbbox() is None:
                matches.append(choice)
        assert matches == [it.answer], (it.id, matches)


def test_pattern_colors_and_grids_from_cell_pixels():
    checked = 0
    for it in items("pattern", 40):
        kind = it.metadata["kind"]
        if kind not in ("color", "grid"):
            continue
        cells = []
        for k, box in enumerate(it.metadata["cell_boxes"]):
            crop = it.image.crop((box[0] + 3, box[1] + 3, box[2] - 3, box[3] - 3))  # inside the cell's frame
            found = objects_in(crop, min_area=10)
            cells.append(None if k == it.metadata["missing"] else max(found, key=lambda r: r["area"]))
        missing = cells.index(None)
        if kind == "color":
            seq = [c["color"] if c else None for c in cells]
            period = next(
                p
                for p in range(1, 4)
                if all(seq[i] == seq[i + p] for i in range(len(seq) - p) if None not in (seq[i], seq[i + p]))
            )
            got = next(seq[i] for i in range(missing % period, len(seq), period) if seq[i])
        else:
            r, c = divmod(missing, 3)
            row = [cells[3 * r + j] for j in range(3) if cells[3 * r + j]]
            col = [cells[3 * i + c] for i in range(3) if cells[3 * i + c]]
            all_colors = {x["color"] for x in cells if x}
            all_shapes = {x["shape"] for x in cells if x}
            row_colors = {x["color"] for x in row}
            col_shapes = {x["shape"] for x in col}
            color = row_colors.pop() if len(row_colors) == 1 else (all_colors - row_colors).pop()
            shape = col_shapes.pop() if len(col_shapes) == 1 else (all_shapes - col_shapes).pop()
            got = f"{color} {shape}"
        assert got == it.answer, (it.id, got)
        checked += 1
    assert checked >= 10
