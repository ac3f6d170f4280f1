"""Load on ``mmcot serve``: throughput and p50/p99 latency at 1, 4 and 16 concurrent clients, side by side in one run.

Starts ``mmcot serve`` in a subprocess, then each level's clients send OpenAI chat completions (an image as a data URL
and a question) back to back. The server runs each request's agent in its own thread and the backend's batching layer
merges their model calls, so throughput should grow with concurrency (goal: >= 3x the sequential throughput at 16).
The last level also checks that every request succeeds (goal: 200 requests at 16 concurrency, zero errors).

    .venv/bin/python benchmarks/serve_load.py                      # tiny model, cot strategy, 32 tokens
    .venv/bin/python benchmarks/serve_load.py --strategy direct    # short answers: per-request overhead dominates
    .venv/bin/python benchmarks/serve_load.py --model smol --strategy cot --max-tokens 64
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from PIL import Image, ImageDraw


def image_url() -> str:
    img = Image.new("RGB", (96, 96), "white")
    draw = ImageDraw.Draw(img)
    draw.ellipse((10, 10, 40, 40), fill="red")
    draw.rectangle((50, 50, 85, 85), fill="blue")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def start_server(model: str, port: int) -> subprocess.Popen:
    mmcot = Path(sys.executable).with_name("mmcot")
    cmd = [str(mmcot), "serve", "--model", model, "--port", str(port), "--max-concurrency", "16", "--max-queue", "64"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ})
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"mmcot serve exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("mmcot serve did not start within 600 s")


def run_level(url: str, body: dict, clients: int, requests: int) -> dict:
    """``requests`` chat completions from ``clients`` threads; latencies, errors, tokens and wall time."""
    latencies: list[float] = []
    errors: list[str] = []
    tokens = [0]
    lock = threading.Lock()
    todo = iter(range(requests))

    def client() -> None:
        with httpx.Client(timeout=600) as http:
            while True:
                with lock:
                    if next(todo, None) is None:
                        return
                start = time.perf_counter()
                try:
                    r = http.post(url, json=body)
                    ok = r.status_code == 200
                except httpx.HTTPError as e:
                    ok, r = False, e
                took = time.perf_counter() - start
                with lock:
                    if ok:
                        latencies.append(took)
                        tokens[0] += r.json()["usage"]["completion_tokens"]
                    else:
                        errors.append(getattr(r, "text", str(r))[:200])

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {
        "clients": clients,
        "requests": requests,
        "errors": errors,
        "wall": wall,
        "rps": len(latencies) / wall,
        "tokens_per_s": tokens[0] / wall,
        "p50": q[49],
        "p99": q[98],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny", help="model spec for mmcot serve")
    ap.add_argument(
        "--strategy",
        default="cot",
        help="strategy (the model name's :STRATEGY); cot thinks, so each request generates about max_tokens tokens",
    )
    ap.add_argument("--max-tokens", type=int, default=32, help="max_tokens of each request")
    ap.add_argument("--levels", default="1:24,4:48,16:200", help="clients:requests for each level")
    ap.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    args = ap.parse_args()
    port = args.port
    if not port:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    load = os.getloadavg()[0]  # other work on the machine shifts every figure: say how busy it was
    server = start_server(args.model, port)
    try:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        name = httpx.get(f"http://127.0.0.1:{port}/v1/models").json()["data"][0]["id"]
        body = {
            "model": f"{name}:{args.strategy}",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": image_url()}},
                        {"type": "text", "text": "What shapes are in the picture?"},
                    ],
                }
            ],
            "max_tokens": args.max_tokens,
        }
        run_level(url, body, 4, 8)  # warm up: model, graph compilation, allocator
        results = []
        for level in args.levels.split(","):
            clients, requests = (int(x) for x in level.split(":"))
            results.append(run_level(url, body, clients, requests))
            r = results[-1]
            print(
                f"clients {clients:2d}: {requests:3d} requests in {r['wall']:6.1f} s, {r['rps']:5.2f} req/s, "
                f"{r['tokens_per_s']:6.1f} tokens/s, p50 {r['p50']:.2f} s, p99 {r['p99']:.2f} s, "
                f"errors {len(r['errors'])}",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(30)
    base = results[0]["rps"]
    print(
        f"\nmodel {args.model}, strategy {args.strategy}, max_tokens {args.max_tokens}, {os.cpu_count()} CPUs, "
        f"load average (1 min) {load:.1f} at the start and {os.getloadavg()[0]:.1f} at the end"
    )
    print("throughput vs 1 client: " + ", ".join(f"{r['clients']} clients {r['rps'] / base:.2f}x" for r in results))
    last = results[-1]
    print(
        f"goal >= 3x at {last['clients']} clients: {'met' if last['rps'] / base >= 3 else 'NOT met'}; "
        f"{last['requests']} requests at {last['clients']} clients with {len(last['errors'])} errors"
    )
    for e in last["errors"][:5]:
        print("  error:", e)


if __name__ == "__main__":
    main()
