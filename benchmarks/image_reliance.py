"""Does a model read its images? The likelihood gap behind the README's Models section.

    .venv/bin/python benchmarks/image_reliance.py --model tiny --family attribute --n 40

For ``--n`` validation puzzles of ``--family``, the direct-answer training conversation (``mmcot/models/data.py``) is
scored twice: with the puzzle's own image and with the next puzzle's image. It prints the mean log-probability of the
right answer's first token in both cases and their difference (the gap, in nats). A model that ignores its image has
a gap near 0; the gap grows as it learns to read it, well before greedy answers change (``mmcot eval --blind`` is the
accuracy version of the same control).
"""

from __future__ import annotations

import argparse
import random


def first_token_logprob(model, processor, row: dict, images: list) -> float:
    import torch

    messages = row["messages"]
    prompt = processor.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=False)
    full = processor(text=prompt + messages[-1]["content"], images=images, return_tensors="pt")
    n = len(processor(text=prompt, images=images, return_tensors="pt")["input_ids"][0])
    with torch.no_grad():
        logits = model(**full).logits[0, n - 1]
    return float(torch.log_softmax(logits.float(), -1)[full["input_ids"][0, n]])


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
    seeing = [first_token_logprob(model, processor, r, r["images"]) for r in rows]
    blind = [first_token_logprob(model, processor, r, rows[(i + 1) % len(rows)]["images"]) for i, r in enumerate(rows)]
    mean_seeing, mean_blind = sum(seeing) / len(seeing), sum(blind) / len(blind)
    print(f"{args.model} {args.family} (n={len(rows)}): first answer token log-prob {mean_seeing:.3f} with its image, "
          f"{mean_blind:.3f} with another; gap {mean_seeing - mean_blind:+.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
