"""Item: one visual question with an exact answer. Puzzles, items.jsonl, TSV and easy-VQA all load into it.

The on-disk form is one JSON object per line of ``items.jsonl``::

    {"id", "image" | "images", "question", "answer", "choices"?, "category"?, "difficulty"?, "metadata"?, "rationale"?}

where image paths are relative to the jsonl file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

KNOWN_FIELDS = {
    "id",
    "image",
    "images",
    "question",
    "answer",
    "choices",
    "category",
    "difficulty",
    "metadata",
    "rationale",
}


@dataclass
class Item:
    id: str
    question: str
    answer: str
    images: list[Image.Image] = field(default_factory=list)
    choices: list[str] | None = None
    category: str = ""
    difficulty: int = 1
    metadata: dict[str, Any] = field(default_factory=dict)
    rationale: list[str] = field(default_factory=list)

    @property
    def image(self) -> Image.Image | None:
        return self.images[0] if self.images else None

    def prompt(self) -> str:
        """The question as shown to a model, with lettered choices when there are any."""
        if not self.choices:
            return self.question
        letters = "ABCDEFGHIJ"
        opts = "\n".join(f"{letters[i]}. {c}" for i, c in enumerate(self.choices))
        return f"{self.question}\n{opts}"

    def to_json(self, image_paths: list[str]) -> dict[str, Any]:
        """The items.jsonl row; ``image_paths`` are where this item's images were saved, relative to the jsonl."""
        row: dict[str, Any] = {"id": self.id}
        if len(image_paths) == 1:
            row["image"] = image_paths[0]
        else:
            row["images"] = image_paths
        row.update(question=self.question, answer=self.answer)
        if self.choices:
            row["choices"] = self.choices
        row.update(category=self.category, difficulty=self.difficulty)
        if self.metadata:
            row["metadata"] = self.metadata
        if self.rationale:
            row["rationale"] = self.rationale
        return row


class ItemError(ValueError):
    """A row that cannot become an Item; the message names the file and line."""


def item_from_json(row: Any, base_dir: Path, where: str = "") -> Item:
    """Build an Item from an items.jsonl row, loading its images. Raises ItemError naming the problem."""
    from mmcot.tools.images import open_image  # the one place untrusted images are opened

    if not isinstance(row, dict):
        raise ItemError(f"{where}: expected a JSON object, got {type(row).__name__}")
    unknown = set(row) - KNOWN_FIELDS
    if unknown:
        raise ItemError(f"{where}: unknown field(s) {sorted(unknown)}; known: {sorted(KNOWN_FIELDS)}")
    for key in ("question", "answer"):
        if key not in row:
            raise ItemError(f"{where}: missing required field {key!r}")
    paths = row.get("images") or ([row["image"]] if row.get("image") else [])
    if isinstance(paths, str) or not all(isinstance(p, str) for p in paths):
        raise ItemError(f"{where}: 'images' must be a list of paths")
    images = []
    for p in paths:
        path = (base_dir / p) if not Path(p).is_absolute() else Path(p)
        try:
            images.append(open_image(path))
        except Exception as e:  # noqa: BLE001 - reported, the run goes on
            raise ItemError(f"{where}: image {p!r}: {e}") from None
    choices = row.get("choices")
    if choices is not None and (not isinstance(choices, list) or len(choices) < 2):
        raise ItemError(f"{where}: 'choices' must be a list of at least two options")
    return Item(
        id=str(row.get("id", where)),
        question=str(row["question"]),
        answer=str(row["answer"]),
        images=images,
        choices=[str(c) for c in choices] if choices else None,
        category=str(row.get("category") or ""),
        difficulty=int(row.get("difficulty") or 1),
        metadata=row.get("metadata") or {},
        rationale=list(row.get("rationale") or []),
    )


def save_items(items: list[Item], out_dir: str | Path) -> Path:
    """Write ``out_dir/items.jsonl`` plus one PNG per image; returns the jsonl path."""
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    path = out / "items.jsonl"
    with path.open("w") as f:
        for item in items:
            rel = []
            for k, img in enumerate(item.images):
                name = f"images/{item.id}.png" if len(item.images) == 1 else f"images/{item.id}_{k}.png"
                img.save(out / name)
                rel.append(name)
            f.write(json.dumps(item.to_json(rel)) + "\n")
    return path


def load_items(path: str | Path) -> tuple[list[Item], list[str]]:
    """Read an items.jsonl. Returns (items, problems): bad lines are skipped and described, never fatal."""
    path = Path(path)
    items, problems = [], []
    with path.open() as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                items.append(item_from_json(json.loads(line), path.parent, where))
            except json.JSONDecodeError as e:
                problems.append(f"{where}: malformed JSON ({e.msg} at column {e.colno})")
            except ItemError as e:
                problems.append(str(e))
    return items, problems
