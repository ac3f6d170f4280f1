"""Tool-layer benchmarks, measured side by side in one run: kernels (warm-pool take, `1+1` round trip, cold start,
sandboxed versus unsandboxed) and the image tools on a 2048x2048 image.

    nice -n 10 .venv/bin/python benchmarks/tools_bench.py [--rounds 200] [--starts 5]

Goals (issue 4): taking a kernel from the warm pool < 10 ms; a `1+1` round trip p50 < 20 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from PIL import Image, ImageDraw

from mmcot.tools import TOOLS, ToolCall, ToolContext, run_tool_call
from mmcot.tools.kernels import Kernel, KernelConfig, KernelPool
from mmcot.tools.python_tool import PythonTool
from mmcot.tools.sandbox import SandboxConfig, check_sandbox


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def kernels(sandboxed: bool, rounds: int, starts: int) -> dict[str, list[float]]:
    config = KernelConfig(sandbox=SandboxConfig(enabled=sandboxed), pool_size=1)
    if sandboxed:
        check_sandbox(config.sandbox)  # once per process, like the first kernel of a session
    cold = []
    for _ in range(starts):
        start = time.perf_counter()
        Kernel(config).close()
        cold.append(time.perf_counter() - start)
    pool = KernelPool(config)
    takes = []
    for _ in range(starts):
        while pool._ready.qsize() < 1:  # wait until the pool is warm again
            time.sleep(0.01)
        start = time.perf_counter()
        kernel = pool.take()
        takes.append(time.perf_counter() - start)
        kernel.close()
    kernel = pool.take()
    kernel.execute("1+1")
    trips = timed(lambda: kernel.execute("1+1"), rounds)
    kernel.close()
    pool.close()
    return {"cold start": cold, "warm-pool take": takes, "1+1 round trip": trips}


def image_tools(repeats: int) -> dict[str, list[float]]:
    img = Image.new("RGB", (2048, 2048), "white")
    draw = ImageDraw.Draw(img)
    for i in range(0, 2048, 64):
        draw.ellipse((i, i, i + 60, i + 60), fill=(i % 255, 80, 200))
    calls = {
        "crop": {"box": [512, 512, 1536, 1536]},
        "zoom": {"box": [100, 100, 400, 400]},
        "rotate": {"degrees": 30},
        "flip": {"direction": "horizontal"},
        "adjust": {"contrast": 1.5, "brightness": 1.2, "sharpness": 2},
        "grayscale": {"threshold": 128},
        "grid": {"rows": 8, "cols": 8},
        "draw": {"boxes": [[10, 10, 500, 500], [600, 600, 900, 900]], "labels": ["a", "b"]},
        "image_info": {},
    }
    out = {}
    for name, arguments in calls.items():
        ctx, call = ToolContext(images={"image_0": img}), ToolCall(name, dict(arguments, image="image_0"))
        out[name] = timed(lambda ctx=ctx, call=call: run_tool_call(call, ctx, TOOLS), repeats)
    # sending a 2048x2048 image into a sandboxed kernel (the python tool does this once per image)
    tool = PythonTool(KernelConfig(pool_size=1))
    send = []
    for _ in range(3):
        ctx = ToolContext(images={"image_0": img})
        tool.setup(ctx)
        start = time.perf_counter()
        run_tool_call(ToolCall("python", {"code": "image_0.size"}), ctx, {"python": tool})
        send.append(time.perf_counter() - start)
        ctx.close()
    out["python: first call with a 2048x2048 image"] = send
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="1+1 round trips per kernel")
    parser.add_argument("--starts", type=int, default=5, help="cold starts and warm takes per mode")
    parser.add_argument("--repeats", type=int, default=10, help="calls per image tool")
    args = parser.parse_args()

    load = os.getloadavg()[0]
    sandboxed = kernels(True, args.rounds, args.starts)
    plain = kernels(False, args.rounds, args.starts)
    print(f"Python kernels ({args.starts} starts/takes, {args.rounds} round trips; medians unless noted)")
    print(f"{'':24}{'sandboxed':>12}{'unsandboxed':>14}{'ratio':>8}")
    for key in sandboxed:
        a, b = statistics.median(sandboxed[key]), statistics.median(plain[key])
        print(f"{key:24}{ms(a):>12}{ms(b):>14}{a / b:>7.2f}x")
    trips = sandboxed["1+1 round trip"]
    print(f"{'1+1 round trip p90':24}{ms(pct(trips, 0.9)):>12}{ms(pct(plain['1+1 round trip'], 0.9)):>14}")
    take, p50 = statistics.median(sandboxed["warm-pool take"]), statistics.median(trips)
    print(f"goals: warm-pool take {ms(take).strip()} (< 10 ms: {'met' if take < 0.01 else 'MISSED'}), ", end="")
    print(f"1+1 p50 {ms(p50).strip()} (< 20 ms: {'met' if p50 < 0.02 else 'MISSED'})")
    print()
    print(f"Image tools on a 2048x2048 image ({args.repeats} calls each; median, p90)")
    for name, times in image_tools(args.repeats).items():
        print(f"  {name:44}{ms(statistics.median(times))}{ms(pct(times, 0.9))}")
    print(f"\nload average at the start {load:.1f}, at the end {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
