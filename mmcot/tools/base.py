"""Tool, ToolResult and ToolContext: one tool definition serves the chat, the API, evals and RL rollouts.

A tool never raises into the agent loop: failures come back as ``ToolResult(error=...)`` that the model reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image


@dataclass
class ToolResult:
    text: str = ""
    images: list[Image.Image] = field(default_factory=list)
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class ToolContext:
    """What a tool may touch: the conversation's images by id, its scratch dir and its per-conversation state
    (e.g. the Python kernel). ``add_image`` gives a tool's output image the next id (``image_1``, ``image_2``...)."""

    images: dict[str, Image.Image] = field(default_factory=dict)
    scratch: Path | None = None
    state: dict[str, Any] = field(default_factory=dict)

    def add_image(self, image: Image.Image) -> str:
        image_id = f"image_{len(self.images)}"
        self.images[image_id] = image
        return image_id
