"""Cost of the strategies and of the controller itself, measured side by side in one run and printed as ratios.

    nice -n 10 .venv/bin/python benchmarks/strategies.py --model tiny [--n 6 --family count]

- Tree of thoughts (breadth 4, depth 3, its default beam and value) against one CoT pass on the same puzzles:
  wall time, model calls and generated tokens. Goal: ToT costs at most 4x the CoT pass in time (not 12x), thanks to
  the parallel expansion (LangGraph ``Send``) landing in one backend batch and each state's samples sharing one
  prefill.
- The controller's own overhead, per strategy: the wall time of ``solve`` minus the time the backend was busy
  (the union of all ``generate``/``stream`` intervals, so parallel branches count once), as a fraction of that model
  time. Goal: at most 5%. Strategies that call tools are left out (tool time is neither).
Runs one item at a time; totals over ``--n`` puzzles.
"""

from __future__ import annotations

import argparse
import threading
import time

from mmcot.evals.puzzles import generate
from mmcot.models.backend import load_backend
from mmcot.reasoning.solve import solve

OVERHEAD = ["direct", "cot", "describe", "staged", "self-consistency", "best-of-n", "tot", "got", "region-search"]


class Timed:
    """A backend wrapper that records when the real backend is busy."""

    def __init__(self, backend):
        self.backend, self.name = backend, backend.name
        self.processor = getattr(backend, "processor", None)  # lets solve see the model's template and image size
        self.intervals: list[tuple[float, float]] = []
        self.lock = threading.Lock()

    def generate(self, requests):
        start = time.perf_counter()
        try:
            return self.backend.generate(requests)
        finally:
            with self.lock:
                self.intervals.append((start, time.perf_counter()))

    def stream(self, request):
        start = time.perf_counter()
        try:
            yield from self.backend.stream(request)
        finally:
            with self.lock:
                self.intervals.append((start, time.perf_counter()))

    def busy(self) -> float:
        """Seconds during which at least one call was running."""
        total, end = 0.0, float("-inf")
        for a, b in sorted(self.intervals):
            if b > end:
                total += b - max(a, end)
                end = b
        return total


def run(backend: Timed, items: list, strategy: str, **knobs) -> dict:
    backend.intervals.clear()
    wall = calls = tokens = 0
    for item in items:
        start = time.perf_counter()
        trace = solve(item, strategy=strategy, backend=backend, **knobs)
        wall += time.perf_counter() - start
        calls += trace.model_calls
        tokens += trace.completion_tokens
    return {"wall": wall, "model": backend.busy(), "calls": calls, "tokens": tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny", help="model spec (tiny, smol, a folder, openai:URL#model)")
    parser.add_argument("--family", default="count", help="puzzle family of the items")
    parser.add_argument("--n", type=int, default=6, help="puzzles")
    args = parser.parse_args()
    backend = Timed(load_backend(args.model))
    items = generate(args.family, n=args.n, seed=0, split="test")
    solve(items[0], strategy="direct", backend=backend)  # warm-up: first-call costs out of the measurement

    cot = run(backend, items, "cot")
    tot = run(backend, items, "tot", breadth=4, depth=3)
    print(f"ToT (breadth 4, depth 3) vs one CoT pass on {args.n} {args.family} puzzles, model {args.model}:")
    for key, label in (("wall", "time"), ("calls", "model calls"), ("tokens", "generated tokens")):
        ratio = tot[key] / max(cot[key], 1e-9)
        print(f"  {label:<17} {tot[key]:>9.2f} vs {cot[key]:>8.2f}   ratio {ratio:5.2f}x")
    print(f"  goal: time ratio <= 4x -> {'met' if tot['wall'] <= 4 * cot['wall'] else 'NOT met'}")

    print("\ncontroller overhead = (wall - backend busy) / backend busy:")
    worst = 0.0
    for name in OVERHEAD:
        r = tot if name == "tot" else cot if name == "cot" else run(backend, items, name)
        overhead = (r["wall"] - r["model"]) / max(r["model"], 1e-9)
        worst = max(worst, overhead)
        print(f"  {name:<17} wall {r['wall']:7.2f} s  model {r['model']:7.2f} s  overhead {100 * overhead:5.1f}%")
    print(f"  goal: <= 5% -> {'met' if worst <= 0.05 else 'NOT met'} (worst {100 * worst:.1f}%)")


if __name__ == "__main__":
    main()
