"""Where a model looks when a question names an object: per layer and head, the attention mass that the question's
naming word (or the position that predicts the answer) puts on the named object's image tokens, and on the other
objects', averaged over attribute test puzzles of 4 or more objects, split by question kind and by whether the
model's first answer token is right. The positions and masks are the ones sft's grounding loss uses
(``--grounding_weight``, README, Models).

    python benchmarks/lookup_attention.py --model tiny --query word --n 150
"""

from __future__ import annotations

import argparse
from collections import defaultdict


def main() -> None:
    import torch

    from mmcot.evals.puzzles import puzzle
    from mmcot.models.backend import user_message
    from mmcot.models.data import grounding
    from mmcot.models.load import load_model
    from mmcot.models.sft import Collator
    from mmcot.models.targets import targets

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--query", choices=["word", "answer"], default="word")
    ap.add_argument("--n", type=int, default=150, help="puzzles of 4+ objects whose question names one by a word")
    args = ap.parse_args()

    model, processor = load_model(args.model)
    model.set_attn_implementation("eager")
    collate = Collator(processor, grounding_query=args.query)
    size = processor.image_processor.size["height"]
    grid = size // processor.patch_size
    total: dict[tuple, torch.Tensor] = defaultdict(lambda: 0)
    count: dict[tuple, int] = defaultdict(int)
    done, index = 0, 0
    while done < args.n:
        item, index = puzzle("attribute", index, 0, split="test"), index + 1
        ground = grounding(item)
        if len(item.metadata["objects"]) < 4 or not ground["word"]:
            continue
        messages = [user_message(item.prompt(), [None]), {"role": "assistant", "content": item.answer}]
        batch = collate([{"messages": messages, "images": item.images, "ground": ground}])
        query, target = batch.pop("ground_query")[0], batch.pop("ground_keys")[0]
        ids, labels = batch["input_ids"][0], batch.pop("labels")[0]
        image = (ids == processor.image_token_id).nonzero().flatten()[: grid * grid]
        other = torch.zeros_like(target)
        other[image[torch.from_numpy(targets(item, 0, size, grid)["thing"] >= 0)]] = True
        other &= ~target
        with torch.no_grad():
            out = model(**batch, output_attentions=True)
        answer = (labels != -100).nonzero().flatten()[0]
        right = out.logits[0, answer - 1].argmax() == labels[answer]
        key = (item.metadata["query"]["kind"], "right" if right else "wrong")
        attention = torch.stack([a[0, :, query] for a in out.attentions])  # (layers, heads, keys)
        total[key] = total[key] + torch.stack([(attention * m).sum(-1) for m in (target, other)])
        count[key] += 1
        done += 1
    print(f"{args.model}: attention of the {args.query} position, per head, on the named object | on other objects")
    for key in sorted(total):
        mean = total[key] / count[key]
        print(f"{key[0]}, answer {key[1]} (n={count[key]})")
        for layer in range(mean.shape[1]):
            named, others = (" ".join(f"{v:.2f}" for v in mean[k, layer]) for k in (0, 1))
            print(f"  layer {layer}: {named} | {others}")


if __name__ == "__main__":
    main()
