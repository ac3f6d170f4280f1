"""Baseline solvers, the floor a model must beat: ``--solver random`` and ``--solver majority``.

- **random**: a multiple-choice item gets a uniformly random choice; an open item a uniformly random answer from
  its category's answer set in the evaluated data (answers the scorer treats as equal count once). Its expected
  accuracy is 1/k per item, so a run reports it next to the measured accuracy: a check that the scorer is honest
  (a lenient one scores above chance). Seeded per item id, so the predictions do not depend on thread order.
- **majority**: the most frequent answer of the item's category in the fit data; for multiple choice, the choice
  whose text was most often the answer there, ties broken by the most frequent answer letter. Fit data: the
  built-in suite's train split for ``--suite`` (never the test items), easy-VQA's train split for ``--easy-vqa``,
  ``--train-data FILE`` when given, and otherwise the evaluated items' own answers (said so in the summary).

    mmcot eval --suite --n 100 --solver majority --out runs/majority
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from typing import TYPE_CHECKING

from mmcot.evals.item import Item
from mmcot.evals.score import LETTERS, choice_index, normalize
from mmcot.evals.solvers import Outcome

if TYPE_CHECKING:
    from mmcot.evals.harness import EvalConfig

ALL = "\0all"  # the counter over every category, for items whose category the fit data never saw


def _lettered(item: Item, i: int) -> str:
    return f"{LETTERS[i]}. {item.choices[i]}"


class RandomSolver:
    name = "random"

    def __init__(self, items: list[Item], seed: int = 0):
        self.seed = seed
        self.answers: dict[str, dict[str, str]] = defaultdict(dict)  # category -> normalized answer -> first spelling
        for item in items:
            if not item.choices:
                self.answers[item.category].setdefault(normalize(item.answer), item.answer)
        self.info = {
            "uses": "a uniform choice for multiple choice; for open answers, uniform over the category's answer set "
            "in the evaluated data",
            "seed": seed,
        }

    def options(self, item: Item) -> list[str]:
        if item.choices:
            return [_lettered(item, i) for i in range(len(item.choices))]
        return list(self.answers.get(item.category, {}).values()) or [""]

    def expected(self, item: Item) -> float:
        """Chance: 1/k for k options. Not computed with the scorer, so a lenient scorer shows up as a measured
        accuracy above it."""
        return 1 / len(self.options(item))

    def __call__(self, items: list[Item]) -> list[Outcome]:
        return [Outcome(random.Random(f"{self.seed}:{it.id}").choice(self.options(it))) for it in items]


class MajoritySolver:
    name = "majority"

    def __init__(self, fit: list[Item], uses: str):
        self.counts: dict[str, Counter] = defaultdict(Counter)  # category -> normalized answer text -> count
        self.letters: dict[str, Counter] = defaultdict(Counter)  # category -> letter of the right choice -> count
        self.spelling: dict[str, str] = {}
        for item in fit:
            index = choice_index(item.answer, item.choices) if item.choices else None
            text = item.answer if index is None else item.choices[index]
            self.spelling.setdefault(normalize(text), text)
            for category in (item.category, ALL):
                self.counts[category][normalize(text)] += 1
                if index is not None:
                    self.letters[category][LETTERS[index]] += 1
        self.info = {"uses": uses, "fit_items": len(fit)}

    def predict(self, item: Item) -> str:
        category = item.category if item.category in self.counts else ALL
        counts, letters = self.counts[category], self.letters[category]
        if item.choices:
            best = max(
                range(len(item.choices)), key=lambda i: (counts[normalize(item.choices[i])], letters[LETTERS[i]], -i)
            )
            return _lettered(item, best)
        return self.spelling[counts.most_common(1)[0][0]] if counts else ""

    def __call__(self, items: list[Item]) -> list[Outcome]:
        return [Outcome(self.predict(item)) for item in items]


def random_solver(cfg: EvalConfig, items: list[Item]) -> RandomSolver:
    return RandomSolver(items, seed=cfg.seed)


def majority_solver(cfg: EvalConfig, items: list[Item]) -> MajoritySolver:
    from mmcot.evals import data

    same = " (the evaluated split itself)" if cfg.split == "train" else ""
    if cfg.train_data:
        fit, _ = data.load(cfg.train_data)
        uses = f"the answers of {cfg.train_data} (--train-data)"
    elif cfg.data == "suite":
        fit, _ = data.load_suite(cfg.families, n=cfg.fit_n, seed=cfg.seed, split="train", difficulty=cfg.difficulty)
        uses = f"the built-in suite's train split, {cfg.fit_n} per family{same}"
    elif cfg.data == "easy-vqa":
        fit, _ = data.load_easy_vqa("train", images=False)
        uses = f"easy-VQA's train split{same}"
    else:
        fit = items
        uses = "the evaluated items' own answers (no --train-data given): optimistic, it has seen the test labels"
    return MajoritySolver(fit, uses)
