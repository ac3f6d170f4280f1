"""Procedural visual puzzles with exact answers: the world every mmcot capability is trained and measured on.

Each family is a seeded generator ``fn(rng: random.Random, difficulty: int) -> Item`` registered in
:data:`FAMILIES`; a dotted path ``pkg.mod:fn`` works as a family name too. :func:`generate` makes ``n`` items per
family, deterministic by (family, split, seed, index)::

    from mmcot.evals.puzzles import generate
    items = generate(["count", "clock"], n=5, seed=0, split="train")

From the shell: ``mmcot puzzles --family all --n 5 --out runs/puzzles --show`` (``mmcot puzzles --list``).
"""

from __future__ import annotations

import importlib
import inspect
import random
from collections.abc import Callable

from mmcot.evals.item import Item
from mmcot.evals.puzzles import (
    arithmetic,
    attribute,
    bar_chart,
    clock,
    count,
    maze,
    odd_one_out,
    pattern,
    rotation,
    small_object,
    spatial,
)
from mmcot.evals.puzzles.export import to_hf_dataset
from mmcot.evals.puzzles.scene import caption

NATIVE_RESOLUTION = 128  # the model's input side in px; scene families stay readable when resized to it

Generator = Callable[[random.Random, int], Item]

FAMILIES: dict[str, Generator] = {
    "count": count.generate,
    "attribute": attribute.generate,
    "spatial": spatial.generate,
    "odd_one_out": odd_one_out.generate,
    "small_object": small_object.generate,
    "pattern": pattern.generate,
    "arithmetic": arithmetic.generate,
    "maze": maze.generate,
    "clock": clock.generate,
    "bar_chart": bar_chart.generate,
    "rotation": rotation.generate,
}
SPLITS = ("train", "val", "test")
DIFFICULTIES = (1, 2, 3)

__all__ = [
    "FAMILIES",
    "NATIVE_RESOLUTION",
    "SPLITS",
    "caption",
    "describe",
    "generate",
    "item_seed",
    "puzzle",
    "resolve",
    "to_hf_dataset",
]


def resolve(family: str) -> tuple[str, Generator]:
    """``(name, generator)`` for a registered family name or a dotted path ``pkg.mod:fn``."""
    if family in FAMILIES:
        return family, FAMILIES[family]
    if ":" not in family:
        raise ValueError(
            f"unknown puzzle family {family!r}; known: {', '.join(FAMILIES)} (or a dotted path pkg.mod:fn)"
        )
    module_name, _, attr = family.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot load puzzle family {family!r}: {e}") from None
    if not callable(fn):
        raise ValueError(f"puzzle family {family!r} is not callable")
    return attr, fn


def describe(fn: Generator) -> str:
    """One line about a family: the first line of its module's (or function's) docstring."""
    doc = (inspect.getmodule(fn).__doc__ if fn in FAMILIES.values() else fn.__doc__) or ""
    line = doc.strip().splitlines()[0] if doc.strip() else ""
    head, sep, rest = line.partition(": ")
    return rest if sep and head.isidentifier() else line  # "count: how many ..." -> "how many ..."


def item_seed(family: str, split: str, seed: int, index: int) -> str:
    """The seed of one item. Splits never share a seed, so train, val and test are drawn from disjoint ranges."""
    return f"{family}/{split}/{seed}/{index}"


def _check(split: str, difficulty: int | None) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if difficulty is not None and difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be 1, 2 or 3 (got {difficulty})")


def _make(name: str, fn: Generator, index: int, seed: int, split: str, difficulty: int | None) -> Item:
    level = difficulty or DIFFICULTIES[index % len(DIFFICULTIES)]
    item = fn(random.Random(item_seed(name, split, seed, index)), level)
    if not isinstance(item, Item):
        raise TypeError(f"puzzle family {name!r} returned {type(item).__name__}, not an Item")
    item.id, item.category, item.difficulty = f"{name}-{split}-{index:06d}", name, level
    return item


def puzzle(family: str, index: int, seed: int = 0, split: str = "test", difficulty: int | None = None) -> Item:
    """One item, exactly as :func:`generate` makes item ``index`` of ``family`` (random access for data loaders)."""
    _check(split, difficulty)
    return _make(*resolve(family), index, seed, split, difficulty)


def generate(
    families: str | list[str] = "all",
    n: int = 10,
    seed: int = 0,
    split: str = "test",
    difficulty: int | None = None,
) -> list[Item]:
    """``n`` items per family. ``families`` is "all", a name, a comma-separated string or a list (dotted paths
    allowed). ``difficulty`` None cycles 1, 2, 3 over the index. Ids look like ``count-test-000003``."""
    _check(split, difficulty)
    if n < 0:
        raise ValueError(f"n must be >= 0 (got {n})")
    if isinstance(families, str):
        families = list(FAMILIES) if families == "all" else [f.strip() for f in families.split(",") if f.strip()]
    if not families:
        raise ValueError("no puzzle family given")
    resolved = [resolve(f) for f in families]
    return [_make(name, fn, index, seed, split, difficulty) for name, fn in resolved for index in range(n)]
