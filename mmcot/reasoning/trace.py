"""Trace: what every strategy returns. A graph of thought nodes plus the answer and why the run stopped.

Plain CoT is a one-node graph; tree and graph of thoughts use ``parents`` for branching and aggregation. Images are
held once in ``Trace.images`` by id (``image_0`` is the user's first image, tools add ``image_1``...), and nodes
refer to them by id, so the trace serializes to JSON with images as files or data URLs.
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image


@dataclass
class Node:
    id: int
    kind: str  # "thought" | "tool_call" | "tool_result" | "answer" | "score" | "crop" | ...
    text: str = ""
    parents: list[int] = field(default_factory=list)
    images: list[str] = field(default_factory=list)  # image ids in Trace.images
    tool_call: dict[str, Any] | None = None  # {"name": ..., "arguments": {...}}
    score: float | None = None
    tokens: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Trace:
    strategy: str
    question: str = ""
    nodes: list[Node] = field(default_factory=list)
    answer: str = ""
    stop_reason: str = ""  # "answer" | "max_steps" | "max_tokens" | "max_seconds" | "error: ..."
    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tool_calls: int = 0
    seconds: float = 0.0
    images: dict[str, Image.Image] = field(default_factory=dict)

    def add(self, kind: str, text: str = "", parents: list[int] | None = None, **kw: Any) -> Node:
        node = Node(id=len(self.nodes), kind=kind, text=text, parents=list(parents or []), **kw)
        self.nodes.append(node)
        return node

    def add_image(self, image: Image.Image) -> str:
        image_id = f"image_{len(self.images)}"
        self.images[image_id] = image
        return image_id

    def to_dict(self, image_dir: str | Path | None = None) -> dict[str, Any]:
        """JSON-ready dict. Images go to ``image_dir`` as PNG files (paths relative to it) or inline as data URLs."""
        d = asdict(self)
        d.pop("images")
        d["images"] = {}
        for image_id, img in self.images.items():
            if image_dir is not None:
                Path(image_dir).mkdir(parents=True, exist_ok=True)
                path = Path(image_dir) / f"{image_id}.png"
                img.save(path)
                d["images"][image_id] = path.name
            else:
                d["images"][image_id] = to_data_url(img)
        return d

    def to_json(self, image_dir: str | Path | None = None) -> str:
        return json.dumps(self.to_dict(image_dir))

    @classmethod
    def from_dict(cls, d: dict[str, Any], image_dir: str | Path | None = None) -> Trace:
        d = dict(d)
        images = {}
        for image_id, ref in d.pop("images", {}).items():
            images[image_id] = (
                from_data_url(ref) if ref.startswith("data:") else Image.open(Path(image_dir or ".") / ref)
            )
        nodes = [Node(**n) for n in d.pop("nodes", [])]
        return cls(nodes=nodes, images=images, **d)


def to_data_url(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def from_data_url(url: str) -> Image.Image:
    from mmcot.tools.images import open_image

    return open_image(base64.b64decode(url.split(",", 1)[1]))
