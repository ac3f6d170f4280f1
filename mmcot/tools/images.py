"""The one place untrusted images are opened (items, the HTTP server, the python tool's outputs); the image tools are
in image_tools.py."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

MAX_PIXELS = 40_000_000  # a 6000x6000 photo passes; a decompression bomb does not


class ImageError(ValueError):
    """An image that cannot or must not be opened; the message says why."""


def open_image(source: str | Path | bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open a path or bytes as an RGB image, refusing decompression bombs, absurd sizes and non-images clearly."""
    label = "the image" if isinstance(source, bytes) else str(source)
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as e:
        raise ImageError(f"cannot read image file {label}: {e.strerror or e}") from None
    try:
        with Image.open(io.BytesIO(data)) as img:
            w, h = img.size
            if w * h > max_pixels:
                raise ImageError(f"image is {w}x{h} = {w * h} pixels, above the limit of {max_pixels}")
            img.load()
            return img.convert("RGB")
    except ImageError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageError(f"refused a decompression bomb: {e}") from None
    except Image.UnidentifiedImageError:
        raise ImageError(f"{label} is not a readable image: PIL knows no such format") from None
    except Exception as e:  # noqa: BLE001 - PIL raises many types for bad bytes
        raise ImageError(f"{label} is not a readable image ({type(e).__name__}: {e})") from None
