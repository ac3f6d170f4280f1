"""One ``mmcot eval`` run per strategy on the built-in test split, then the runs side by side: the README's table of
accuracy per family x strategy, with mean model calls, tokens and seconds per item.

    nice -n 10 .venv/bin/python benchmarks/strategy_evals.py --model tiny --n 20 --out runs/strategies

Each run is ``mmcot eval --suite --split test --model M --strategy S --n N --out OUT/S`` (rerunning resumes
unfinished runs). Then ``mmcot eval compare OUT/*`` (with 95% intervals, in ``OUT/compare/``) and the README's table:
accuracy per strategy (rows) and family (columns), with mean model calls, generated tokens and seconds per item,
printed and written to ``OUT/table.md``.
Knobs per strategy come from ``--option S:KEY=VALUE`` (repeatable), e.g. ``--option tot:value=rollout``; a variant
of a strategy is an entry ``NAME+KEY=VALUE[+KEY=VALUE]`` in ``--strategies`` (its run folder has that name), e.g.
``--strategies cot,self-consistency+think=false``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

STRATEGIES = "direct,cot,describe,staged,self-consistency,best-of-n,tot,got,image-loop,region-search,react"


def mmcot(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "mmcot.cli", *args], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny", help="model spec")
    parser.add_argument("--n", type=int, default=20, help="puzzles per family")
    parser.add_argument("--family", default="all", help="puzzle families (comma-separated) or all")
    parser.add_argument("--strategies", default=STRATEGIES, help="comma-separated strategies")
    parser.add_argument("--option", action="append", default=[], help="STRATEGY:KEY=VALUE knob for one strategy")
    parser.add_argument("--batch-size", type=int, default=8, help="items solved concurrently")
    parser.add_argument("--out", type=Path, default=Path("runs/strategies"), help="folder of the runs")
    args = parser.parse_args()
    names = [s.strip() for s in args.strategies.split(",") if s.strip()]
    for name in names:
        strategy, *variant = name.split("+")
        options = variant + [o.split(":", 1)[1] for o in args.option if o.split(":", 1)[0] == name]
        mmcot(
            "eval", "--suite", "--split", "test", "--family", args.family, "--n", str(args.n), "--model", args.model,
            "--strategy", strategy, "--batch-size", str(args.batch_size), "--out", str(args.out / name),
            *[x for o in options for x in ("--option", o)],
        )  # fmt: skip
    if len(names) > 1:
        mmcot("eval", "compare", *[str(args.out / n) for n in names], "--out", str(args.out / "compare"))
    table = strategy_table(args.out, names)
    (args.out / "table.md").write_text(table)
    print(table)


def strategy_table(out: Path, names: list[str]) -> str:
    """Accuracy (%) per strategy and family, then all families, mean model calls, generated tokens, seconds."""
    runs = {name: json.loads((out / name / "summary.json").read_text()) for name in names}
    families = list(dict.fromkeys(f for s in runs.values() for f in s["by_category"]))
    head = ["strategy", *families, "all", "calls", "tokens", "s/item"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in runs.items():
        accs = [s["by_category"].get(f, {}).get("accuracy") for f in families] + [s["accuracy"]]
        m = s["means"]
        cells = [f"`{name}`", *("–" if a is None else f"{100 * a:.0f}" for a in accs)]
        cells += [f"{m['model_calls']:.1f}", f"{m['completion_tokens']:.0f}", f"{m['seconds']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    n = {s["n"] for s in runs.values()}
    return "\n".join(lines) + f"\n\n{'/'.join(map(str, sorted(n)))} items per strategy; accuracy in %.\n"


if __name__ == "__main__":
    main()
