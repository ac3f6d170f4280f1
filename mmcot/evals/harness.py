"""The evaluation harness behind ``mmcot eval``: load items, run a solver over them, score, write a run folder.

    mmcot eval --suite --family count,clock --n 50 --solver random --out runs/random
    mmcot eval --data runs/puzzles/items.jsonl --model tiny --strategy cot --batch-size 8 --out runs/tiny-cot

A run folder holds ``config.json``, ``results.jsonl`` (one line per finished item, appended and flushed at once:
id, category, question, answer, prediction, correct, tokens, model and tool calls, seconds, the trace), the item
images under ``images/`` and trace images under ``traces/<id>/``, ``summary.json`` and the report
(``report.md``, ``report.html``, ``accuracy.png``). A crash loses at most the items in flight: running the same
command again skips the ids already done (and retries those that failed with an error).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mmcot.evals.item import Item
from mmcot.evals.score import score
from mmcot.evals.solvers import Outcome, Solver

METRICS = ("prompt_tokens", "completion_tokens", "tokens", "model_calls", "tool_calls", "seconds")
NO_CATEGORY = "(none)"
# config fields that may change between a run and its resumption; any other difference means a different run
RESUMABLE = {"out", "batch_size", "limit"}


class RunError(RuntimeError):
    """The run cannot start or go on (e.g. its folder holds a different run); the message says what to do."""


@dataclass
class EvalConfig:
    out: str = field(default="", metadata={"help": "run folder for results.jsonl, summary.json and the report"})
    data: str = field(
        default="suite",
        metadata={"help": '"suite", "easy-vqa", or a .jsonl / .tsv file (or a folder holding items.jsonl)'},
    )
    families: str = field(default="all", metadata={"help": "suite only: comma-separated puzzle families, or all"})
    n: int = field(default=20, metadata={"help": "suite only: puzzles per family"})
    seed: int = field(default=0, metadata={"help": "seed of the suite's puzzles and of the random baseline"})
    split: str = field(default="test", metadata={"help": "suite: train, val or test; easy-VQA: train or test"})
    difficulty: int | None = field(default=None, metadata={"help": "suite only: 1, 2 or 3 (default: all three)"})
    solver: str = field(default="", metadata={"help": "random, majority or pkg.mod:factory (default random)"})
    model: str = field(default="", metadata={"help": "model spec (tiny, smol, a folder, openai:URL#model)"})
    strategy: str = field(default="", metadata={"help": "reasoning strategy for --model (default cot)"})
    strategy_options: dict[str, Any] = field(default_factory=dict, metadata={"help": "keyword arguments to solve()"})
    batch_size: int = field(default=8, metadata={"help": "items solved concurrently"})
    limit: int | None = field(default=None, metadata={"help": "evaluate only the first N items"})
    train_data: str = field(default="", metadata={"help": "majority only: a .jsonl / .tsv whose answers it counts"})
    fit_n: int = field(default=100, metadata={"help": "majority on the suite: train puzzles per family it counts"})
    blind: bool = field(
        default=False,
        metadata={"help": "blind control: each item gets the images of the next item of its category (a solver that "
                  "reads its images drops toward the prior; one that scores the same was not reading them)"},
    )  # fmt: skip

    def __post_init__(self):
        if self.model and self.solver:
            raise ValueError("give either --solver or --model, not both")
        if self.strategy and not self.model:
            raise ValueError("--strategy needs --model")
        if self.model:
            self.strategy = self.strategy or "cot"
        else:
            self.solver = self.solver or "random"
        if self.data not in ("suite", "easy-vqa"):
            self.data = str(Path(self.data).expanduser().resolve())
        if self.train_data:
            self.train_data = str(Path(self.train_data).expanduser().resolve())
        if self.n < 1 or self.batch_size < 1 or (self.limit is not None and self.limit < 1) or self.fit_n < 1:
            raise ValueError("--n, --batch-size, --limit and fit_n must be at least 1")


def run(cfg: EvalConfig, show_progress: bool = True) -> dict[str, Any]:
    """Evaluate, resuming whatever ``cfg.out`` already holds; returns the summary (also in summary.json)."""
    from mmcot.evals import report
    from mmcot.evals.data import load
    from mmcot.evals.solvers import build_solver

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    _check_same_run(out, cfg)
    items, problems = load(cfg.data, cfg.families, n=cfg.n, seed=cfg.seed, split=cfg.split, difficulty=cfg.difficulty)
    items = items[: cfg.limit] if cfg.limit else items
    items = blinded(items) if cfg.blind else items
    if not items:
        raise RunError(f"no items to evaluate in {cfg.data}" + "".join(f"\n  {p}" for p in problems[:10]))
    solver = build_solver(cfg, items)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    done = read_results(out)
    todo = [item for item in items if item.id not in done or done[item.id].get("error")]
    try:
        with _append(out / "results.jsonl") as f, _progress(len(items), len(items) - len(todo), show_progress) as step:
            for item, outcome, error in solve_all(solver, todo, cfg.batch_size):
                row = result_row(item, outcome, error, out, getattr(solver, "expected", None))
                f.write(json.dumps(row) + "\n")
                f.flush()
                done[item.id] = row
                step(row["correct"])
    finally:
        getattr(solver, "close", lambda: None)()
    rows = [done[item.id] for item in items if item.id in done]
    summary = summarize(rows, problems)
    summary.update(solver={"name": solver.name, **solver.info}, config=asdict(cfg))
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    report.write_report(out, summary, rows)
    return summary


def blinded(items: list[Item]) -> list[Item]:
    """``items`` with each one's images swapped for those of the next item of its category (cyclically), so that
    questions and answers stay and the images no longer belong to them. A category of one item keeps its images."""
    from dataclasses import replace

    groups: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(item.category, []).append(i)
    out = list(items)
    for idx in groups.values():
        for a, b in zip(idx, idx[1:] + idx[:1], strict=True):
            out[a] = replace(items[a], images=items[b].images)
    return out


def solve_all(solver: Solver, items: list[Item], batch_size: int) -> Iterator[tuple[Item, Outcome | None, str]]:
    """``(item, outcome, error)`` as each item finishes, ``batch_size`` items in flight. A solver that raises on an
    item yields ``(item, None, "Type: message")`` and the others go on."""

    def one(item: Item) -> tuple[Item, Outcome | None, str]:
        start = time.perf_counter()
        try:
            (outcome,) = solver([item])
            if not isinstance(getattr(outcome, "prediction", None), str):
                raise TypeError(f"the solver returned {outcome!r:.200}, not an Outcome with a str prediction")
        except Exception as e:  # noqa: BLE001 - one item's failure is recorded, not fatal
            return item, None, f"{type(e).__name__}: {e}"
        outcome.seconds = outcome.seconds or time.perf_counter() - start
        return item, outcome, ""

    pool = ThreadPoolExecutor(batch_size, thread_name_prefix="mmcot-eval")
    try:
        futures = [pool.submit(one, item) for item in items]
        for future in as_completed(futures):
            yield future.result()
    finally:  # on Ctrl-C or an error, do not start the items still queued
        pool.shutdown(wait=False, cancel_futures=True)


def result_row(item: Item, outcome: Outcome | None, error: str, out: Path, expected=None) -> dict[str, Any]:
    """The results.jsonl line of one item; saves its images (and its trace's) as files under ``out``."""
    outcome = outcome or Outcome(prediction="")
    name = file_name(item.id)
    images = []
    for k, img in enumerate(item.images):
        rel = f"images/{name}.png" if len(item.images) == 1 else f"images/{name}_{k}.png"
        (out / rel).parent.mkdir(exist_ok=True)
        img.save(out / rel, compress_level=1)  # a copy for the report: fast beats small
        images.append(rel)
    trace = None
    if outcome.trace is not None:
        trace = outcome.trace.to_dict(out / "traces" / name)
        trace["images"] = {k: f"traces/{name}/{v}" for k, v in trace["images"].items()}
    row = {
        "id": item.id,
        "category": item.category,
        "difficulty": item.difficulty,
        "question": item.question,
        "choices": item.choices,
        "answer": item.answer,
        "prediction": outcome.prediction,
        "correct": not error and score(outcome.prediction, item.answer, item.choices) == 1.0,
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
        "tokens": outcome.prompt_tokens + outcome.completion_tokens,
        "model_calls": outcome.model_calls,
        "tool_calls": outcome.tool_calls,
        "seconds": round(outcome.seconds, 4),
        "images": images,
        "trace": trace,
    }
    if expected is not None:
        row["expected"] = expected(item)
    if error:
        row["error"] = error
    return row


def file_name(item_id: str) -> str:
    """A file-system-safe name for an id, unique even when two ids differ only in unsafe characters."""
    safe = re.sub(r"[^\w.-]", "_", item_id)[:80]
    return safe if safe == item_id else f"{safe}-{hashlib.sha1(item_id.encode()).hexdigest()[:8]}"


def summarize(rows: list[dict[str, Any]], problems: list[str] | None = None) -> dict[str, Any]:
    """Accuracy, its 95% Wilson interval and per-item means, overall and per category; plus skipped input."""
    by_category: dict[str, list] = {}
    for row in rows:
        by_category.setdefault(row["category"] or NO_CATEGORY, []).append(row)
    summary = _stats(rows)
    summary["by_category"] = {name: _stats(rs) for name, rs in sorted(by_category.items())}
    summary["errors"] = sum(1 for r in rows if r.get("error"))
    summary["skipped"] = list(problems or [])
    return summary


def _stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from mmcot.evals.report import wilson

    n, k = len(rows), sum(1 for r in rows if r["correct"])
    stats = {"accuracy": k / n if n else 0.0, "n": n, "correct": k, "ci95": list(wilson(k, n))}
    stats["means"] = {m: sum(r[m] for r in rows) / n if n else 0.0 for m in METRICS}
    if rows and all("expected" in r for r in rows):
        stats["expected_accuracy"] = sum(r["expected"] for r in rows) / n
    return stats


def read_results(out: Path) -> dict[str, dict[str, Any]]:
    """id -> latest row of ``out/results.jsonl`` (a line cut short by a crash is ignored)."""
    rows = {}
    path = out / "results.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and "id" in row:
                rows[row["id"]] = row
    return rows


def _append(path: Path):
    """Open for appending, first dropping a last line a crash cut short so the next row starts on its own line."""
    if path.exists():
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            path.write_bytes(data[: data.rfind(b"\n") + 1])
    return path.open("a")


def _check_same_run(out: Path, cfg: EvalConfig) -> None:
    path = out / "config.json"
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise RunError(f"{path} is not valid JSON; delete the run folder or use another --out") from None
    new = asdict(cfg)
    diffs = [f"{k}: {old.get(k)!r} -> {new[k]!r}" for k in new if k not in RESUMABLE and old.get(k) != new[k]]
    if diffs:
        raise RunError(
            f"{out} holds a run with another configuration ({'; '.join(diffs)}); use another --out, or delete it"
        )


class _progress:
    """A rich progress bar with the running accuracy; ``advance(correct)`` after each finished item."""

    def __init__(self, total: int, completed: int, enabled: bool):
        self.total, self.completed, self.enabled, self.right, self.seen = total, completed, enabled, 0, 0

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("eval"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[acc]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self.bar.start()
            self.task = self.bar.add_task("eval", total=self.total, completed=self.completed, acc="")
        return self.advance

    def advance(self, correct: bool) -> None:
        self.seen += 1
        self.right += bool(correct)
        if self.enabled:
            self.bar.update(self.task, advance=1, acc=f"acc {self.right / self.seen:.1%} of {self.seen} new")

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.stop()
