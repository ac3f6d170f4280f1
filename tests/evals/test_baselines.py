"""Baselines: random hits chance exactly as the scorer sees it; majority counts the fit data, never the test items."""

import random

from mmcot.evals.baselines import MajoritySolver, RandomSolver, majority_solver
from mmcot.evals.harness import EvalConfig
from mmcot.evals.item import Item
from mmcot.evals.report import wilson
from mmcot.evals.score import score


def open_items(n=3000, seed=0):
    """Counting questions with answers 0..4 and colour questions with 6 colours, answers spelled several ways."""
    rng = random.Random(seed)
    items = []
    for k in range(n):
        if k % 2:
            items.append(
                Item(f"c{k}", "How many?", rng.choice(["0", "1", "two", "3", "four", "4.0"]), category="count")
            )
        else:
            items.append(
                Item(
                    f"k{k}",
                    "Color?",
                    rng.choice(["red", "Blue", "green", "gray", "yellow", "purple"]),
                    category="color",
                )
            )
    return items


def test_random_answer_sets_fold_what_the_scorer_folds():
    solver = RandomSolver(open_items())
    assert len(solver.answers["count"]) == 5  # "four" and "4.0" score the same: one option
    assert len(solver.answers["color"]) == 6
    assert solver.expected(open_items()[1]) == 1 / 5


def test_random_measured_accuracy_is_chance():
    items = open_items()
    items += [
        Item(f"m{k}", "Which?", random.Random(k).choice("ABCD"), choices=["w", "x", "y", "z"], category="mc")
        for k in range(1000)
    ]
    solver = RandomSolver(items, seed=3)
    outcomes = solver(items)
    right = sum(score(o.prediction, it.answer, it.choices) for o, it in zip(outcomes, items, strict=True))
    expected = sum(solver.expected(it) for it in items) / len(items)
    lo, hi = wilson(int(right), len(items))
    assert lo <= expected <= hi
    assert abs(expected - (1500 / 5 + 1500 / 6 + 1000 / 4) / 4000) < 1e-9
    assert all(o.prediction[0] in "ABCD" for o in outcomes[-1000:])  # "B. x": letter and text


def test_random_is_seeded_per_item_not_by_order():
    items = open_items(200)
    solver = RandomSolver(items, seed=7)
    forward = {it.id: o.prediction for it, o in zip(items, solver(items), strict=True)}
    backward = {it.id: o.prediction for it, o in zip(items[::-1], solver(items[::-1]), strict=True)}
    assert forward == backward
    other = {it.id: o.prediction for it, o in zip(items, RandomSolver(items, seed=8)(items), strict=True)}
    assert other != forward


def test_majority_per_category_and_for_choices():
    fit = [Item(f"a{k}", "How many?", a, category="count") for k, a in enumerate(["2", "two", "3", "2.0", "5"])]
    fit += [Item(f"b{k}", "Color?", a, category="color") for k, a in enumerate(["red", "blue", "Blue"])]
    fit += [Item("m1", "Which?", "B", choices=["cat", "dog"], category="mc")]
    fit += [Item("m2", "Which?", "owl", choices=["owl", "dog", "eel"], category="mc")]
    fit += [Item("m3", "Which?", "A", choices=["ant", "bee"], category="mc")]
    fit += [Item(f"L{k}", "Odd one?", "C", choices=["p", "q", "r"], category="letters") for k in range(3)]
    solver = MajoritySolver(fit, uses="test")
    assert solver.predict(Item("t1", "How many?", "9", category="count")) == "2"
    assert solver.predict(Item("t2", "Color?", "x", category="color")) == "blue"
    # the choice whose text was most often right, even against the more frequent letter (A)
    assert solver.predict(Item("t3", "Which?", "x", choices=["eel", "dog"], category="mc")) == "B. dog"
    # "dog" and "owl" were right once each: the tie goes to the more frequent right letter, A
    assert solver.predict(Item("t4", "Which?", "x", choices=["owl", "dog"], category="mc")) == "A. owl"
    assert solver.predict(Item("t4", "Which?", "x", choices=["dog", "owl"], category="mc")) == "A. dog"
    # no choice text was ever an answer: the most frequent right letter
    assert solver.predict(Item("t5", "Odd one?", "x", choices=["s", "t", "u"], category="letters")) == "C. u"
    # an unseen category falls back to all categories
    assert solver.predict(Item("t6", "?", "x", category="new")) == "2"


def test_majority_on_the_suite_counts_the_train_split(tmp_path):
    from mmcot.evals.data import load_suite

    family = "count"  # open numeric answers
    cfg = EvalConfig(out=str(tmp_path), families=family, n=5, solver="majority", fit_n=30)
    test_items, _ = load_suite(family, n=5, split="test")
    solver = majority_solver(cfg, test_items)
    assert solver.info["fit_items"] == 30 and "train split" in solver.info["uses"]
    train_items, _ = load_suite(family, n=30, split="train")
    answers = [it.answer for it in train_items]
    top = max(set(answers), key=answers.count)
    assert answers.count(solver.predict(test_items[0])) == answers.count(top)


def test_majority_on_a_file_says_it_uses_the_test_labels(tmp_path):
    items = open_items(50)
    solver = majority_solver(EvalConfig(out=str(tmp_path), data=str(tmp_path / "x.jsonl"), solver="majority"), items)
    assert "seen the test labels" in solver.info["uses"] and solver.info["fit_items"] == 50
