"""Which vision objective teaches the tower faster: CLIP's contrastive loss or supervised per-patch heads?

    .venv/bin/python benchmarks/vision_objectives.py --seconds 240 --probe-steps 150 [--tokenizer runs/tiny/tokenizer]

Both objectives train the same fresh tower (same seed, batch, learning rate, data stream) for the same wall time.
Each trained tower is then frozen and read by the same probe: fresh linear heads (per-patch color, shape, object
centers) trained for ``--probe-steps`` steps, then checked on validation puzzles (``vision.check_tower``). A random
frozen tower gets the same probe as the floor. The table shows what each objective put into the patch tokens (the
features LLaVA's projector reads), with throughput, and the ratio heads / contrastive.
"""

from __future__ import annotations

import argparse
import time

import torch
from transformers import AutoTokenizer

from mmcot.models.presets import VisionArch
from mmcot.models.vision import VISION_FAMILY_WEIGHTS, VisionRows, build_pretrainer, check_tower, new_tower


def batches(rows: VisionRows, batch_size: int, start: int = 0):
    i = start
    while True:
        items = [rows[(i + k) % len(rows)] for k in range(batch_size)]
        i += batch_size
        yield {key: torch.stack([it[key] for it in items]) for key in items[0]}


def train(module, rows, batch_size: int, lr: float, seconds: float | None = None, steps: int | None = None):
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    start, n, images = time.time(), 0, 0
    for batch in batches(rows, batch_size):
        loss = module(**batch)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad()
        n, images = n + 1, images + batch_size
        if (seconds and time.time() - start > seconds) or (steps and n >= steps):
            break
    return n, images / (time.time() - start)


def probe(tower, rows, check_rows, batch_size: int, steps: int, lr: float):
    module = build_pretrainer(tower, "heads")
    module.tower.requires_grad_(False)
    train(module, rows, batch_size, lr, steps=steps)
    return check_tower(module, check_rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=240, help="training time per objective")
    ap.add_argument("--probe-steps", type=int, default=150, help="steps of the linear probe")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--tokenizer", default="runs/tiny/tokenizer", help="tokenizer of the contrastive text encoder")
    ap.add_argument("--check", type=int, default=200, help="validation puzzles for the check")
    args = ap.parse_args()
    arch = VisionArch()
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    rows = VisionRows(VISION_FAMILY_WEIGHTS, 10**6, arch.image_size, arch.patch_size, tokenizer=tokenizer)
    probe_rows = VisionRows(VISION_FAMILY_WEIGHTS, 10**6, arch.image_size, arch.patch_size, seed=1)
    check_rows = VisionRows(VISION_FAMILY_WEIGHTS, args.check, arch.image_size, arch.patch_size, split="val")
    results = {}
    for objective in ("random", "heads", "contrastive"):
        torch.manual_seed(0)
        tower = new_tower(arch)
        steps, speed = 0, 0.0
        if objective != "random":
            module = build_pretrainer(tower, objective, len(tokenizer))
            steps, speed = train(module, rows, args.batch_size, args.lr, seconds=args.seconds)
        check = probe(tower, probe_rows, check_rows, args.batch_size, args.probe_steps, args.lr)
        results[objective] = (steps, speed, check)
        print(f"{objective}: {steps} steps, {speed:.0f} images/s, probe: {check}", flush=True)
    keys = ["color_accuracy", "shape_accuracy", "center_recall", "center_precision", "count_accuracy"]
    print(f"\nSame {args.seconds:.0f} s of training each, then the same {args.probe_steps}-step linear probe:\n")
    print("| objective | steps | images/s | " + " | ".join(keys) + " |")
    print("|---" * (3 + len(keys)) + "|")
    for name, (steps, speed, check) in results.items():
        print(f"| {name} | {steps} | {speed:.0f} | " + " | ".join(f"{getattr(check, k):.3f}" for k in keys) + " |")
    h, c = results["heads"][2], results["contrastive"][2]
    ratios = " | ".join(f"{getattr(h, k) / max(getattr(c, k), 1e-9):.2f}" for k in keys)
    print(f"| heads / contrastive | | | {ratios} |")


if __name__ == "__main__":
    main()
