"""Image tools (Pillow): crop, zoom, rotate, flip, adjust, grayscale/threshold, a labeled grid, draw, image_info.

Every tool takes ``image``, the id of an image in the conversation (``image_0`` is the user's first; each tool
result gets the next id), defaulting to the latest one, so operations chain: ``grid`` -> ``zoom(cell="C3")`` ->
``adjust(contrast=2)``. Boxes are ``[left, top, right, bottom]`` in pixels, or fractions of the size with
``normalized=true``. Outputs larger than ``images.MAX_PIXELS`` are refused.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from PIL import Image, ImageColor, ImageDraw, ImageEnhance, ImageFont, ImageOps

from mmcot.tools.base import FunctionTool, Schema, ToolContext, ToolError, ToolResult
from mmcot.tools.images import MAX_PIXELS

Box = Annotated[list[float], Schema(items=4)]
Factor = Annotated[float, Schema(minimum=0.0, maximum=10.0)]
COLORS = {
    "black": (0, 0, 0), "white": (255, 255, 255), "gray": (128, 128, 128), "silver": (192, 192, 192),
    "red": (220, 30, 30), "maroon": (128, 0, 0), "orange": (255, 150, 0), "yellow": (240, 220, 20),
    "olive": (128, 128, 0), "green": (30, 170, 50), "lime": (0, 255, 0), "teal": (0, 128, 128),
    "cyan": (0, 220, 220), "blue": (30, 60, 220), "navy": (0, 0, 128), "purple": (128, 0, 160),
    "magenta": (230, 0, 230), "pink": (255, 160, 200), "brown": (140, 80, 30),
}  # fmt: skip


def resolve(ctx: ToolContext, image: str) -> tuple[str, Image.Image]:
    """(id, image) for an id such as ``image_2`` (or ``2``); an empty id is the latest image."""
    if not ctx.images:
        raise ToolError("there is no image in this conversation yet")
    key = image.strip().strip("<>").lower()
    if not key:
        key = next(reversed(ctx.images))
    elif key.isdigit():
        key = f"image_{key}"
    if key not in ctx.images:
        raise ToolError(f"no image '{image}'; the images are {', '.join(ctx.images)}")
    return key, ctx.images[key]


def _fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


def _pixels(img: Image.Image, box: list[float], normalized: bool) -> tuple[int, int, int, int]:
    """A box in pixels, clipped to the image; refuses empty and inverted boxes with the reason."""
    left, top, right, bottom = box
    if normalized:
        if not all(0 <= v <= 1 for v in box):
            raise ToolError(f"normalized box {_fmt(box)} must have values between 0 and 1")
        left, right, top, bottom = left * img.width, right * img.width, top * img.height, bottom * img.height
    if right <= left or bottom <= top:
        raise ToolError(f"box {_fmt(box)} must be [left, top, right, bottom] with right > left and bottom > top")
    x0, y0 = max(0, round(left)), max(0, round(top))
    x1, y1 = min(img.width, round(right)), min(img.height, round(bottom))
    if x1 - x0 < 1 or y1 - y0 < 1:
        hint = "; if these are fractions of the size, pass normalized=true" if max(box) <= 1 and not normalized else ""
        raise ToolError(f"box {_fmt(box)} is outside the {img.width}x{img.height} image or under 1 pixel{hint}")
    return x0, y0, x1, y1


def _checked(img: Image.Image) -> Image.Image:
    if img.width * img.height > MAX_PIXELS:
        raise ToolError(f"the result would be {img.width}x{img.height}, above the limit of {MAX_PIXELS} pixels")
    return img


def _result(img: Image.Image, caption: str, text: str = "") -> ToolResult:
    return ToolResult(text=text, images=[_checked(img)], captions=[caption])


def crop(ctx: ToolContext, box: Box, image: str = "", normalized: bool = False) -> ToolResult:
    """Cut a rectangle out of an image, at its original resolution.

    Args:
        box: [left, top, right, bottom] in pixels (or fractions of the size with normalized=true).
        image: Image id, e.g. image_0; default the latest image.
        normalized: The box is in fractions (0-1) of the image size.
    """
    image_id, img = resolve(ctx, image)
    pixels = _pixels(img, box, normalized)
    return _result(img.crop(pixels), f"crop of {image_id} box {_fmt(list(pixels))}")


def _cell(ctx: ToolContext, image_id: str, img: Image.Image, cell: str) -> tuple[str, Image.Image, tuple, str]:
    """The pixel box of grid cell ``cell`` (e.g. C3) on the grid drawn on (or from) this image."""
    grid = img.info.get("mmcot_grid")
    if grid is None:  # the image the grid was drawn from: use its most recent grid
        grids = [
            i.info["mmcot_grid"] for i in ctx.images.values() if i.info.get("mmcot_grid", (0, 0, ""))[2] == image_id
        ]
        grid = grids[-1] if grids else None
    if grid is None:
        raise ToolError(f"{image_id} has no grid; call grid(image='{image_id}') first, then zoom into a cell")
    rows, cols, source_id = grid
    m = re.fullmatch(r"([A-Za-z])\s*(\d+)", cell.strip())
    col, row = (ord(m.group(1).upper()) - 65, int(m.group(2)) - 1) if m else (-1, -1)
    if not (0 <= col < cols and 0 <= row < rows):
        last = f"{chr(64 + cols)}{rows}"
        raise ToolError(
            f"no cell '{cell}' in the {cols}x{rows} grid; cells are A1 to {last} (column letter, row number)"
        )
    source = ctx.images[source_id]
    w, h = source.width / cols, source.height / rows
    box = (round(col * w), round(row * h), round((col + 1) * w), round((row + 1) * h))
    return source_id, source, box, f"cell {cell.strip().upper()} of the {cols}x{rows} grid"


def zoom(
    ctx: ToolContext,
    box: Box | None = None,
    cell: str | None = None,
    image: str = "",
    normalized: bool = False,
    size: Annotated[int, Schema(minimum=16, maximum=2048)] | None = None,
) -> ToolResult:
    """Crop a region and enlarge it to the model's input size, to look closely at small details.

    Args:
        box: [left, top, right, bottom] in pixels (or fractions with normalized=true).
        cell: Instead of a box, a cell of the labeled grid drawn by the grid tool, e.g. C3 (column C, row 3).
        image: Image id, e.g. image_0; default the latest image.
        normalized: The box is in fractions (0-1) of the image size.
        size: Longer side of the result in pixels; default the model's input size.
    """
    if (box is None) == (cell is None):
        raise ToolError("give either box=[left, top, right, bottom] or cell (e.g. 'C3'), not both or neither")
    image_id, img = resolve(ctx, image)
    if cell is not None:
        image_id, img, pixels, where = _cell(ctx, image_id, img, cell)
    else:
        pixels = _pixels(img, box, normalized)
        where = f"box {_fmt(list(pixels))}"
    region = img.crop(pixels)
    side = size or ctx.image_size
    scale = side / max(region.size)
    out = region.resize((max(1, round(region.width * scale)), max(1, round(region.height * scale))), Image.LANCZOS)
    return _result(out, f"zoom of {image_id} {where}, {scale:.2g}x")


def rotate(ctx: ToolContext, degrees: float, image: str = "", expand: bool = True) -> ToolResult:
    """Rotate an image counter-clockwise (use a negative angle for clockwise).

    Args:
        degrees: Angle in degrees, counter-clockwise.
        image: Image id, e.g. image_0; default the latest image.
        expand: Grow the canvas so no corner is cut off.
    """
    image_id, img = resolve(ctx, image)
    out = img.rotate(degrees, resample=Image.BILINEAR, expand=expand, fillcolor=(255, 255, 255))
    return _result(out, f"{image_id} rotated {degrees:g} degrees counter-clockwise")


def flip(ctx: ToolContext, direction: Literal["horizontal", "vertical"] = "horizontal", image: str = "") -> ToolResult:
    """Mirror an image left-right (horizontal) or top-bottom (vertical).

    Args:
        direction: horizontal (left-right) or vertical (top-bottom).
        image: Image id, e.g. image_0; default the latest image.
    """
    image_id, img = resolve(ctx, image)
    how = Image.Transpose.FLIP_LEFT_RIGHT if direction == "horizontal" else Image.Transpose.FLIP_TOP_BOTTOM
    return _result(img.transpose(how), f"{image_id} flipped {direction}ly")


def adjust(
    ctx: ToolContext, image: str = "", contrast: Factor = 1.0, brightness: Factor = 1.0, sharpness: Factor = 1.0
) -> ToolResult:
    """Change contrast, brightness or sharpness (1 keeps it, 2 doubles it, 0.5 halves it).

    Args:
        image: Image id, e.g. image_0; default the latest image.
        contrast: Contrast factor.
        brightness: Brightness factor.
        sharpness: Sharpness factor.
    """
    image_id, img = resolve(ctx, image)
    factors = {"contrast": contrast, "brightness": brightness, "sharpness": sharpness}
    changed = {k: v for k, v in factors.items() if v != 1.0}
    if not changed:
        raise ToolError("nothing to adjust: give contrast, brightness or sharpness other than 1")
    enhancers = {"contrast": ImageEnhance.Contrast, "brightness": ImageEnhance.Brightness}
    enhancers["sharpness"] = ImageEnhance.Sharpness
    out = img.convert("RGB")
    for name, factor in changed.items():
        out = enhancers[name](out).enhance(factor)
    return _result(out, f"{image_id} with " + ", ".join(f"{k} x{v:g}" for k, v in changed.items()))


def grayscale(
    ctx: ToolContext, image: str = "", threshold: Annotated[int, Schema(minimum=0, maximum=255)] | None = None
) -> ToolResult:
    """Convert an image to grayscale, or to pure black and white with a threshold.

    Args:
        image: Image id, e.g. image_0; default the latest image.
        threshold: Pixels brighter than this (0-255) become white, the rest black; omit for plain grayscale.
    """
    image_id, img = resolve(ctx, image)
    gray = ImageOps.grayscale(img)
    if threshold is None:
        return _result(gray, f"{image_id} in grayscale")
    return _result(gray.point(lambda v: 255 if v > threshold else 0), f"{image_id} thresholded at {threshold}")


def _font(img: Image.Image, fraction: float = 0.04) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(10, round(min(img.size) * fraction)))


def _label(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, font, color) -> None:
    """Text on a filled box so it stays readable on any background."""
    left, top, right, bottom = draw.textbbox(xy, text, font=font)
    draw.rectangle((left - 2, top - 2, right + 2, bottom + 2), fill=color)
    draw.text(xy, text, font=font, fill="white" if sum(color[:3]) < 450 else "black")


def grid(
    ctx: ToolContext,
    image: str = "",
    rows: Annotated[int, Schema(minimum=1, maximum=26)] = 4,
    cols: Annotated[int, Schema(minimum=1, maximum=26)] = 4,
) -> ToolResult:
    """Overlay a labeled grid (columns A, B, C...; rows 1, 2, 3...) so you can name a region, then zoom(cell="C3").

    Args:
        image: Image id, e.g. image_0; default the latest image.
        rows: Number of rows.
        cols: Number of columns (at most 26).
    """
    image_id, img = resolve(ctx, image)
    out = img.convert("RGB")
    draw = ImageDraw.Draw(out)
    font = _font(out, 0.3 / max(rows, cols))
    w, h = out.width / cols, out.height / rows
    line = max(1, round(min(out.size) / 300))
    for c in range(1, cols):
        draw.line([(c * w, 0), (c * w, out.height)], fill=(255, 0, 0), width=line)
    for r in range(1, rows):
        draw.line([(0, r * h), (out.width, r * h)], fill=(255, 0, 0), width=line)
    for r in range(rows):
        for c in range(cols):
            _label(draw, (c * w + 3, r * h + 3), f"{chr(65 + c)}{r + 1}", font, (255, 0, 0))
    out.info["mmcot_grid"] = (rows, cols, image_id)
    return _result(out, f"{image_id} with a {cols}x{rows} grid, cells A1 (top left) to {chr(64 + cols)}{rows}")


def draw(
    ctx: ToolContext,
    image: str = "",
    boxes: list[Box] | None = None,
    points: list[Annotated[list[float], Schema(items=2)]] | None = None,
    labels: list[str] | None = None,
    normalized: bool = False,
    color: str = "red",
) -> ToolResult:
    """Draw boxes, points and labels on a copy of an image, e.g. to mark what you found.

    Args:
        image: Image id, e.g. image_0; default the latest image.
        boxes: Boxes [left, top, right, bottom] to outline.
        points: Points [x, y] to mark.
        labels: Text for the boxes, then the points, in order.
        normalized: Coordinates are fractions (0-1) of the image size.
        color: A color name (red, blue, ...) or #rrggbb.
    """
    image_id, img = resolve(ctx, image)
    boxes, points, labels = boxes or [], points or [], labels or []
    if not boxes and not points:
        raise ToolError("nothing to draw: give boxes and/or points")
    if len(labels) > len(boxes) + len(points):
        raise ToolError(f"{len(labels)} labels for {len(boxes) + len(points)} boxes and points")
    try:
        rgb = ImageColor.getrgb(color)
    except ValueError:
        raise ToolError(f"unknown color '{color}'; use a name such as red or blue, or #rrggbb") from None
    out = img.convert("RGB")
    pen = ImageDraw.Draw(out)
    font, width = _font(out), max(2, round(min(out.size) / 150))
    sx, sy = (out.width, out.height) if normalized else (1, 1)
    marks = [("box", b) for b in boxes] + [("point", p) for p in points]
    for i, (kind, coords) in enumerate(marks):
        if kind == "box":
            x0, y0, x1, y1 = _pixels(out, coords, normalized)
            pen.rectangle((x0, y0, x1 - 1, y1 - 1), outline=rgb, width=width)
            anchor = (x0 + width, y0 + width)
        else:
            x, y = coords[0] * sx, coords[1] * sy
            radius = width * 2
            pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=rgb, outline="white")
            anchor = (x + radius + 2, y - radius)
        if i < len(labels):
            _label(pen, anchor, labels[i], font, rgb)
    what = ", ".join(
        f"{n} {k}{'es' if k == 'box' and n > 1 else 's' if n > 1 else ''}"
        for k, n in (("box", len(boxes)), ("point", len(points)))
        if n
    )
    return _result(out, f"{image_id} with {what} drawn in {color}")


def _color_name(rgb: tuple[int, int, int]) -> str:
    return min(COLORS, key=lambda name: sum((a - b) ** 2 for a, b in zip(COLORS[name], rgb, strict=True)))


def image_info(
    ctx: ToolContext, image: str = "", colors: Annotated[int, Schema(minimum=1, maximum=12)] = 5
) -> ToolResult:
    """Describe an image without changing it: its size, mode and dominant colors (name, hex, share of pixels).

    Args:
        image: Image id, e.g. image_0; default the latest image.
        colors: How many dominant colors to list.
    """
    image_id, img = resolve(ctx, image)
    small = img.convert("RGB")
    small.thumbnail((128, 128))
    palette = small.quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
    counts = sorted(palette.getcolors(), reverse=True)
    flat = palette.getpalette()
    total = sum(n for n, _ in counts)
    parts = []
    for n, index in counts[:colors]:
        rgb = tuple(flat[3 * index : 3 * index + 3])
        parts.append(f"{_color_name(rgb)} #{rgb[0]:02x}{rgb[1]:02x}{rgb[2]:02x} {100 * n / total:.0f}%")
    text = f"{image_id}: {img.width}x{img.height} pixels, mode {img.mode}; dominant colors: {', '.join(parts)}"
    return ToolResult(text=text, metadata={"width": img.width, "height": img.height})


IMAGE_TOOLS = [FunctionTool(fn) for fn in (crop, zoom, rotate, flip, adjust, grayscale, grid, draw, image_info)]
