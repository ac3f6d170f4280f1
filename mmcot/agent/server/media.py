"""Untrusted request content to mmcot messages: image URLs decoded under the server's limits, OpenAI messages to the
Hugging Face chat shape the backends take.

Images come as data URLs (or bare base64 for ``/v1/solve``); ``file://`` URLs are read only when the server was
started with ``--allow-files DIR`` and only below that folder; remote ``http(s)`` URLs are never fetched. Every image
is opened by ``mmcot.tools.images.open_image`` (decompression bombs and absurd sizes refused).
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from PIL import Image

from mmcot.agent.server.errors import APIError
from mmcot.agent.server.protocol import ChatMessage
from mmcot.tools.images import ImageError, open_image


def decode_image(url: str, *, max_pixels: int, files_root: Path | None, param: str) -> Image.Image:
    """One image from a data URL, bare base64 or (when enabled) a file URL; a 400 that names the problem otherwise."""
    if url.startswith(("http://", "https://")):
        raise APIError(400, "remote image URLs are not fetched; send the image inline as a data URL", param=param)
    if url.startswith("file:"):
        raw = _read_file(url, files_root, param)
    else:
        header, sep, data = url.partition(",")
        if sep and not header.startswith("data:"):
            raise APIError(400, "an image must be a data URL (data:image/png;base64,...)", param=param)
        if sep and not header.endswith(";base64"):
            raise APIError(400, "an image data URL must be base64-encoded (data:image/png;base64,...)", param=param)
        try:
            raw = base64.b64decode(data if sep else url, validate=True)
        except (binascii.Error, ValueError):
            raise APIError(400, "the image is not valid base64", param=param, code="invalid_base64") from None
    try:
        return open_image(raw, max_pixels=max_pixels)
    except ImageError as e:
        reason = (
            "the data is not an image Pillow can read (PNG, JPEG, GIF, WebP...)" if "Unidentified" in str(e) else e
        )
        raise APIError(400, f"bad image: {reason}", param=param, code="invalid_image") from None


def _read_file(url: str, root: Path | None, param: str) -> bytes:
    if root is None:
        raise APIError(400, "file URLs are disabled on this server (start it with --allow-files DIR)", param=param)
    path = Path(unquote(urlparse(url).path)).resolve()
    if not path.is_relative_to(root):
        raise APIError(400, f"file URLs must point inside the allowed folder {root}", param=param)
    try:
        return path.read_bytes()
    except OSError as e:
        raise APIError(400, f"cannot read {path.name}: {e.strerror or e}", param=param) from None


def convert_messages(
    messages: list[ChatMessage], *, max_images: int, max_pixels: int, files_root: Path | None
) -> list[dict[str, Any]]:
    """OpenAI request messages to mmcot messages (content parts ``text`` / ``image`` with PIL images)."""
    out: list[dict[str, Any]] = []
    n_images = 0
    for i, m in enumerate(messages):
        msg: dict[str, Any] = {"role": "system" if m.role == "developer" else m.role}
        if isinstance(m.content, list):
            parts = []
            for j, part in enumerate(m.content):
                if part.type == "text":
                    parts.append({"type": "text", "text": part.text})
                    continue
                n_images += 1
                if n_images > max_images:
                    raise APIError(400, f"too many images: this server takes at most {max_images} per request")
                param = f"messages[{i}].content[{j}].image_url"
                parts.append(
                    {
                        "type": "image",
                        "image": decode_image(
                            part.image_url.url, max_pixels=max_pixels, files_root=files_root, param=param
                        ),
                    }
                )
            msg["content"] = parts
        else:
            msg["content"] = m.content or ""
        if m.tool_calls:
            msg["tool_calls"] = [
                {"id": c.id, "name": c.function.name, "arguments": c.function.arguments} for c in m.tool_calls
            ]
        if m.tool_call_id:
            msg["tool_call_id"] = m.tool_call_id
        out.append(msg)
    if not any(m["role"] == "user" for m in out):
        raise APIError(400, "the conversation has no user message", param="messages")
    if out[-1]["role"] not in ("user", "tool"):
        raise APIError(400, "the last message must come from the user (or be a tool result)", param="messages")
    return out
