"""Export puzzles as a Hugging Face ``datasets.Dataset``: the form TRL trainers take.

    from mmcot.evals.puzzles import generate, to_hf_dataset
    ds = to_hf_dataset(generate("count", n=100, split="train"))
    ds.save_to_disk("runs/count-hf")   # `mmcot puzzles --hf` does this into DIR/hf

Columns: id, images (a list of images, datasets' Image feature), question, answer, choices (empty list when
open), category, difficulty, metadata (a JSON string), rationale (a list of steps).
"""

from __future__ import annotations

import json
from typing import Any

from mmcot.evals.item import Item


def to_hf_dataset(items: list[Item]) -> Any:
    """A ``datasets.Dataset`` with one row per item (images as datasets' ``Image`` feature, metadata as JSON)."""
    import datasets  # heavy: imported only when exporting

    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "images": datasets.List(datasets.Image()),
            "question": datasets.Value("string"),
            "answer": datasets.Value("string"),
            "choices": datasets.List(datasets.Value("string")),
            "category": datasets.Value("string"),
            "difficulty": datasets.Value("int32"),
            "metadata": datasets.Value("string"),
            "rationale": datasets.List(datasets.Value("string")),
        }
    )
    rows = {
        "id": [it.id for it in items],
        "images": [list(it.images) for it in items],
        "question": [it.question for it in items],
        "answer": [it.answer for it in items],
        "choices": [list(it.choices or []) for it in items],
        "category": [it.category for it in items],
        "difficulty": [it.difficulty for it in items],
        "metadata": [json.dumps(it.metadata) for it in items],
        "rationale": [list(it.rationale) for it in items],
    }
    return datasets.Dataset.from_dict(rows, features=features)
