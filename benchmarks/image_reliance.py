"""Does a model read its images? The likelihood gap behind the README's Models section.

    .venv/bin/python benchmarks/image_reliance.py --model tiny --family attribute --n 40

For ``--n`` validation puzzles of ``--family``, the direct-answer training conversation (``mmcot/models/data.py``) is
scored twice: with the puzzle's own image and with the next puzzle's image. It prints the mean log-probability of the
right answer's first token in both cases and their difference (the gap, in nats), and how often that token is the
model's top choice. A model that ignores its image has a gap near 0; the gap grows as it learns to read it, well
before greedy answers change (``mmcot eval --blind`` is the accuracy version of the same control).
"""

from __future__ import annotations

import argparse
import random


def first_token(model, processor, row: dict, images: list) -> tuple[float, bool]:
    """The right answer's first-token log-probability, and whether it is the model's top token."""
    import torch

    messages = row["messages"]
    prompt = processor.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=False)
    full = processor(text=prompt + messages[-1]["content"], images=images, return_tensors="pt")
    n = len(processor(text=prompt, images=images, return_tensors="pt")["input_ids"][0])
    with torch.no_grad():
        logits = model(**full).logits[0, n - 1]
    right = full["input_ids"][0, n]
    return float(torch.log_softmax(logits.float(), -1)[right]), bool(logits.argmax() == right)


def main() -> None:
    from mmcot.evals.puzzles import puzzle
    from mmcot.models.data import conversation
    from mmcot.models.load import load_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny", help="tiny, smol or a checkpoint folder")
    parser.add_argument("--family", default="attribute")
    parser.add_argument("--n", type=int, default=40)
    args = parser.parse_args()
    model, processor = load_model(args.model)
    model.eval()
    rows = [conversation(puzzle(args.family, i, 0, "val"), "direct", random.Random(i)) for i in range(args.n)]
    rows = [r for r in rows if r]
    seeing = [first_token(model, processor, r, r["images"]) for r in rows]
    blind = [first_token(model, processor, r, rows[(i + 1) % len(rows)]["images"]) for i, r in enumerate(rows)]

    def mean(pairs: list, k: int) -> float:
        return sum(p[k] for p in pairs) / len(pairs)

    print(f"{args.model} {args.family} (n={len(rows)}): first answer token log-prob {mean(seeing, 0):.3f} with its "
          f"image, {mean(blind, 0):.3f} with another; gap {mean(seeing, 0) - mean(blind, 0):+.3f}; first token right "
          f"{mean(seeing, 1):.0%} seeing, {mean(blind, 1):.0%} blind")  # fmt: skip


if __name__ == "__main__":
    main()
