"""Puzzle generation speed: puzzles per second for every family, measured side by side in one run.

    nice -n 10 .venv/bin/python benchmarks/puzzles_speed.py            # 60 puzzles per family, difficulties 1-3
    nice -n 10 .venv/bin/python benchmarks/puzzles_speed.py --n 200 --save   # also time writing PNGs + items.jsonl

Prints a Markdown table (the one in the README's puzzles section). Generation is single-threaded Pillow. Besides
wall-clock rates it reports rates per second of this process's CPU time, which stay comparable on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from mmcot.evals.item import save_items
from mmcot.evals.puzzles import FAMILIES, generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60, help="puzzles per family (difficulties cycle 1, 2, 3)")
    parser.add_argument("--save", action="store_true", help="also time save_items (PNG encoding and items.jsonl)")
    args = parser.parse_args()
    generate("all", n=1)  # warm-up: imports, fonts
    header = "| family | puzzles/s (wall) | puzzles/s (CPU) | ms/puzzle (CPU) | mean image side (px) |"
    header += " saved/s (CPU) |" if args.save else ""
    print(f"{args.n} puzzles per family, CPU load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    total_n, total_wall, total_cpu = 0, 0.0, 0.0
    for name in FAMILIES:
        wall, cpu = time.perf_counter(), time.process_time()
        items = generate(name, n=args.n, seed=0, split="train")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        n = len(items)
        total_n, total_wall, total_cpu = total_n + n, total_wall + wall, total_cpu + cpu
        side = sum(im.width for it in items for im in it.images) / sum(len(it.images) for it in items)
        row = f"| {name} | {n / wall:.0f} | {n / cpu:.0f} | {1000 * cpu / n:.1f} | {side:.0f} |"
        if args.save:
            with tempfile.TemporaryDirectory() as tmp:
                cpu = time.process_time()
                save_items(items, tmp)
                row += f" {n / (time.process_time() - cpu):.0f} |"
        print(row)
    row = f"| **all** | {total_n / total_wall:.0f} | {total_n / total_cpu:.0f} | {1000 * total_cpu / total_n:.1f} | |"
    print(row + (" |" if args.save else ""))


if __name__ == "__main__":
    main()
