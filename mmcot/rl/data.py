"""RL prompts: puzzle-world or items.jsonl items turned into the rows TRL's GRPO and DPO trainers read.

A row is ``{"prompt": [messages], "images": [PIL...], "answer", "choices", "metadata", "id", "category"}``: the
prompt is the user turn ``mmcot solve`` sends (one image part per image, then the question with lettered choices);
thinking (a generation prompt opened with ``<think>``) and the tool list are added by the chat template, exactly as
the strategies render them. The other columns reach reward functions as keyword arguments. ``metadata`` is kept as
a JSON string so rows of every puzzle family fit one dataset column.

    from mmcot.rl.data import DataArgs, load_rows
    rows = load_rows(DataArgs(data="suite", families="count,attribute", n_per_family=200))
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any

from mmcot.evals.item import Item
from mmcot.models.backend import user_message


class RLDataError(ValueError):
    """Data that cannot feed a job (unknown source, no usable rows); the message says why."""


@dataclass
class DataArgs:
    """Where a job's training prompts and its held-out items come from (fields shared by every RL job config)."""

    data: str = field(
        default="suite", metadata={"help": "'suite' (generated puzzles), 'easy-vqa', or a path to items.jsonl / .tsv."}
    )
    families: str = field(default="all", metadata={"help": "Suite: puzzle families, comma-separated."})
    n_per_family: int = field(default=200, metadata={"help": "Suite: training puzzles per family."})
    puzzle_split: str = field(default="train", metadata={"help": "Suite: the split training puzzles come from."})
    puzzle_seed: int = field(default=0, metadata={"help": "Suite: seed of the generated puzzles."})
    difficulty: int | None = field(default=None, metadata={"help": "Suite: difficulty 1-3 (default: cycle 1, 2, 3)."})
    limit: int | None = field(default=None, metadata={"help": "Use at most this many training items."})
    heldout_data: str = field(default="suite", metadata={"help": "Held-out items: 'suite' or a path, as `data`."})
    heldout_families: str = field(default="", metadata={"help": "Suite: held-out families (default: `families`)."})
    heldout_n: int = field(default=20, metadata={"help": "Suite: held-out puzzles per family."})
    heldout_split: str = field(default="val", metadata={"help": "Suite: the held-out split (never the train split)."})


def load(
    source: str, families: str, n: int, split: str, seed: int, difficulty: int | None, limit: int | None
) -> list[Item]:
    """Items from a source (see :class:`DataArgs`); bad rows of a file are reported on stderr and skipped."""
    from mmcot.evals.data import DataError
    from mmcot.evals.data import load as load_source

    try:
        items, problems = load_source(source, families=families, n=n, seed=seed, split=split, difficulty=difficulty)
    except (DataError, ValueError) as e:
        raise RLDataError(str(e)) from None
    for problem in problems:
        print(f"warning: skipped {problem}", file=sys.stderr)
    items = items[:limit] if limit else items
    if not items:
        raise RLDataError(f"no usable items in {source!r}")
    return items


def train_items(args: DataArgs) -> list[Item]:
    return load(
        args.data, args.families, args.n_per_family, args.puzzle_split, args.puzzle_seed, args.difficulty, args.limit
    )


def heldout_items(args: DataArgs) -> list[Item]:
    if args.heldout_data == "suite" and args.data == "suite" and args.heldout_split == args.puzzle_split:
        raise RLDataError(f"held-out items must not come from the training split ({args.puzzle_split!r})")
    families = args.heldout_families or args.families
    return load(
        args.heldout_data, families, args.heldout_n, args.heldout_split, args.puzzle_seed, args.difficulty, None
    )


def prompt_messages(item: Item) -> list[dict[str, Any]]:
    """The user turn for ``item``: its images, then the question. Image parts carry no pixels; TRL puts the row's
    ``images`` into them in order."""
    return [user_message(item.prompt(), [None] * len(item.images))]


def to_row(item: Item) -> dict[str, Any]:
    """One dataset row for TRL (see the module docstring)."""
    return {
        "prompt": prompt_messages(item),
        "images": list(item.images),
        "answer": item.answer,
        "choices": list(item.choices or []),
        "metadata": json.dumps(item.metadata or {}),
        "id": item.id,
        "category": item.category,
    }


def to_dataset(items: list[Item]):
    """A ``datasets.Dataset`` of :func:`to_row` rows (images stay PIL images)."""
    from datasets import Dataset

    return Dataset.from_list([to_row(item) for item in items])
