"""Generation speed of the local backend, measured side by side in one run and printed as ratios.

    nice -n 10 .venv/bin/python benchmarks/generation.py --model tiny [--max-tokens 64 --repeats 3]

Every sequence generates exactly ``--max-tokens`` tokens (end-of-sequence tokens are ignored, as vLLM's
``ignore_eos`` does for benchmarks), greedy, one puzzle-like image per prompt. Rows:
- batch 1: one request; batch 8: eight different requests in one ``generate`` call (tokens/s of each);
- n=8: eight samples of one prompt in one request (one image encoding and one prefill, then 8 rows decode), against
  one sample and against 8 separate calls (the goal: n=8 costs at most 2x one call, not 8x);
- 8 concurrent callers: 8 threads each calling ``generate`` with one request at the same time (the batching layer
  merges them), against the same 8 calls one after another.
Each time is the median of ``--repeats`` runs, as wall time and as CPU time of this process (on a shared machine
the CPU time is the steadier measure of the work). A reference row runs transformers' own ``generate`` at batch 1.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import torch
from PIL import Image, ImageDraw

from mmcot.models.backend import Request, Sampling, load_backend


def scene(seed: int) -> Image.Image:
    rng = random.Random(seed)
    image = Image.new("RGB", (128, 128), "white")
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(2, 6)):
        x, y, r = rng.randint(10, 110), rng.randint(10, 110), rng.randint(5, 14)
        color = rng.choice(["red", "green", "blue", "yellow", "purple"])
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x - r, y - r, x + r, y + r), fill=color)
    return image


def request(seed: int, max_tokens: int, n: int = 1, temperature: float = 0.0) -> Request:
    question = ["How many shapes are there?", "What color is the largest shape?", "Is the red circle left of it?"]
    content = [{"type": "image", "image": scene(seed)}, {"type": "text", "text": question[seed % 3]}]
    sampling = Sampling(max_tokens=max_tokens, temperature=temperature, seed=seed)
    return Request([{"role": "user", "content": content}], n=n, sampling=sampling)


def timed(fn, repeats: int) -> tuple[float, float, int]:
    """Median wall seconds and median CPU seconds (all threads of this process) of ``fn()`` over repeats, and the
    completion tokens one run produced. CPU time is what the work costs; wall time also holds waiting for the CPU
    when other processes share it."""
    walls, cpus, tokens = [], [], 0
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        tokens = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny", help="a local model spec: tiny, smol, a folder")
    parser.add_argument("--max-tokens", type=int, default=64, help="tokens generated per sequence")
    parser.add_argument("--batch", type=int, default=8, help="batch size, n and number of concurrent callers")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (the median is reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    k, m = args.batch, args.max_tokens

    backend = load_backend(args.model)
    backend.eos_ids = set()  # every sequence runs to max_tokens, so all rows do the same work
    backend.generate([request(99, 4)])  # warm-up

    def tokens(out: list[list]) -> int:
        return sum(c.completion_tokens for cs in out for c in cs)

    def transformers_generate() -> int:
        prompt, images = backend.prepare(request(0, m))
        inputs = backend.processor(text=[prompt], images=images, return_tensors="pt")
        out = backend.model.generate(**inputs, max_new_tokens=m, min_new_tokens=m, do_sample=False)
        return out.shape[1] - inputs["input_ids"].shape[1]

    def concurrent() -> int:
        start = threading.Barrier(k)

        def call(seed):
            start.wait()
            return backend.generate([request(seed, m)])

        with ThreadPoolExecutor(k) as pool:
            return sum(tokens(out) for out in pool.map(call, range(k)))

    rows = {
        "batch 1 (one request)": lambda: tokens(backend.generate([request(0, m)])),
        "  the same with transformers' generate": transformers_generate,
        f"batch {k} (one generate call)": lambda: tokens(backend.generate([request(s, m) for s in range(k)])),
        f"n={k} samples of one prompt": lambda: tokens(backend.generate([request(0, m, k, 0.8)])),
        f"{k} separate calls, one after another": lambda: sum(
            tokens(backend.generate([request(0, m, 1, 0.8)])) for _ in range(k)
        ),
        f"{k} concurrent callers (batching layer)": concurrent,
        f"{k} sequential callers": lambda: sum(tokens(backend.generate([request(s, m)])) for s in range(k)),
    }
    results = {name: timed(fn, args.repeats) for name, fn in rows.items()}
    backend.close()

    print(f"model {args.model}, {m} tokens per sequence, median of {args.repeats} runs")
    print(f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'':42} {'wall s':>7} {'cpu s':>7} {'tokens':>7} {'tok/s':>7} {'tok/cpu-s':>10}")
    for name, (wall, cpu, n) in results.items():
        print(f"{name:42} {wall:7.2f} {cpu:7.2f} {n:7d} {n / wall:7.0f} {n / cpu:10.0f}")
    w = [wall for wall, _, _ in results.values()]
    c = [cpu for _, cpu, _ in results.values()]
    n = [n for _, _, n in results.values()]
    print(f"\n{'ratios (wall time; CPU time)':58}")
    for name, (i, j, per_token) in {
        f"throughput, batch {k} / batch 1": (0, 2, True),
        f"cost of n={k} samples / one sample (goal <= 2x)": (3, 0, False),
        f"{k} separate calls / n={k} in one request": (4, 3, False),
        f"{k} sequential callers / {k} concurrent callers": (6, 5, False),
    }.items():
        if per_token:  # tokens per second of j over i
            ratios = (n[j] / w[j]) / (n[i] / w[i]), (n[j] / c[j]) / (n[i] / c[i])
        else:
            ratios = w[i] / w[j], c[i] / c[j]
        print(f"{name:50} {ratios[0]:5.2f}x {ratios[1]:5.2f}x")


if __name__ == "__main__":
    main()
