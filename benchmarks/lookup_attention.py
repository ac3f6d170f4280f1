"""Where a model looks when a question names an object: per layer and head, the attention mass that the question's
naming word (or the position that predicts the answer) puts on the named object's image tokens, and on the other
objects', averaged over attribute test puzzles of 4 or more objects, split by question kind and by whether the
model's first answer token is right. The positions and masks are the ones sft's grounding loss uses
(``--grounding_weight``, README, Models). With ``--probe``, also what that position holds: a linear probe per layer,
fit on train puzzles and scored on test ones, of the answer (the named object's asked attribute). With ``--tokens``,
what the image tokens themselves say: for each object patch, whether the nearest color word's embedding (and the
nearest shape word's) is the object's own.

    python benchmarks/lookup_attention.py --model tiny --query word --n 150 --probe
    python benchmarks/lookup_attention.py --model tiny --tokens
"""

from __future__ import annotations

import argparse
from collections import defaultdict


def batches(collate, split: str, n: int):
    """(item, collated batch) for the first ``n`` attribute puzzles of ``split`` with 4+ objects whose question names
    the object by one word."""
    from mmcot.evals.puzzles import puzzle
    from mmcot.models.backend import user_message
    from mmcot.models.data import grounding

    done, index = 0, 0
    while done < n:
        item, index = puzzle("attribute", index, 0, split=split), index + 1
        ground = grounding(item)
        if len(item.metadata["objects"]) < 4 or not ground["word"]:
            continue
        messages = [user_message(item.prompt(), [None]), {"role": "assistant", "content": item.answer}]
        yield item, collate([{"messages": messages, "images": item.images, "ground": ground}])
        done += 1


def probe(model, collate, train: int = 1200, test: int = 400) -> None:
    """Per question kind and layer, the test accuracy of a linear probe of the answer on the grounded position."""
    import torch

    def states(split, n):
        out = defaultdict(lambda: ([], []))
        for item, batch in batches(collate, split, n):
            query = batch.pop("ground_query")[0]
            batch.pop("ground_keys"), batch.pop("labels")
            with torch.no_grad():
                hidden = model(**batch, output_hidden_states=True).hidden_states
            xs, ys = out[item.metadata["query"]["kind"]]
            xs.append(torch.stack([h[0, query] for h in hidden]))
            ys.append(item.answer)
        return out

    fit, held = states("train", train), states("test", test)
    for kind in sorted(fit):
        labels = sorted(set(fit[kind][1]))
        x, y = torch.stack(fit[kind][0]), torch.tensor([labels.index(a) for a in fit[kind][1]])
        xt, yt = (
            torch.stack(held[kind][0]),
            torch.tensor([labels.index(a) if a in labels else -1 for a in held[kind][1]]),
        )
        scores = []
        for layer in range(x.shape[1]):
            mean, spread = x[:, layer].mean(0), x[:, layer].std(0) + 1e-4
            w = torch.zeros(x.shape[-1], len(labels), requires_grad=True)
            b = torch.zeros(len(labels), requires_grad=True)
            opt = torch.optim.Adam([w, b], lr=1e-2)
            for _ in range(300):
                loss = torch.nn.functional.cross_entropy((x[:, layer] - mean) / spread @ w + b, y)
                opt.zero_grad()
                (loss + 1e-3 * w.pow(2).sum()).backward()
                opt.step()
            with torch.no_grad():
                scores.append(((xt[:, layer] - mean) / spread @ w + b).argmax(-1).eq(yt).float().mean().item())
        print(f"{kind} (train {len(y)}, test {len(yt)}): probe accuracy of the answer, embedding then after each layer: "
              + " ".join(f"{s:.2f}" for s in scores))  # fmt: skip


def tokens(model, processor, collate, n: int) -> None:
    """Per object patch of ``n`` test scenes: is the cosine-nearest color word (and shape word) the object's own?"""
    import torch

    from mmcot.models.sft import word_embedding
    from mmcot.models.targets import COLORS, SHAPES, targets

    embed = model.get_input_embeddings().weight.detach()

    def unit(names):
        return torch.nn.functional.normalize(
            torch.stack([word_embedding(processor.tokenizer, embed, w) for w in names]), dim=-1
        )

    colors, shapes = unit(COLORS), unit(SHAPES[1:4])
    size = processor.image_processor.size["height"]
    grid = size // processor.patch_size
    right, total = torch.zeros(2), 0
    for item, batch in batches(collate, "test", n):
        ids = batch["input_ids"][0]
        for key in ("ground_query", "ground_keys", "labels"):
            batch.pop(key)
        with torch.no_grad():
            image = model(**batch, output_hidden_states=True).hidden_states[0][0, ids == processor.image_token_id]
        t = targets(item, 0, size, grid)
        on = torch.from_numpy(t["thing"] >= 0) & torch.from_numpy((t["shape"] >= 1) & (t["shape"] <= 3))
        x = torch.nn.functional.normalize(image[: grid * grid][on], dim=-1)
        right += torch.stack([
            (x @ colors.T).argmax(-1).eq(torch.from_numpy(t["color"])[on] - 1).sum(),
            (x @ shapes.T).argmax(-1).eq(torch.from_numpy(t["shape"])[on] - 1).sum(),
        ])  # fmt: skip
        total += int(on.sum())
    print(f"image tokens of {total} object patches: nearest color word their own {right[0] / total:.0%}, "
          f"nearest shape word their own {right[1] / total:.0%}")  # fmt: skip


def main() -> None:
    import torch

    from mmcot.models.load import load_model
    from mmcot.models.sft import Collator
    from mmcot.models.targets import targets

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--query", choices=["word", "answer"], default="word")
    ap.add_argument("--n", type=int, default=150, help="puzzles of 4+ objects whose question names one by a word")
    ap.add_argument("--probe", action="store_true", help="also probe the position for the answer, per layer")
    ap.add_argument("--tokens", action="store_true", help="only check the image tokens against the word embeddings")
    args = ap.parse_args()

    model, processor = load_model(args.model)
    model.set_attn_implementation("eager")
    collate = Collator(processor, grounding_query=args.query)
    if args.tokens:
        return tokens(model, processor, collate, args.n)
    size = processor.image_processor.size["height"]
    grid = size // processor.patch_size
    total: dict[tuple, torch.Tensor] = defaultdict(lambda: 0)
    count: dict[tuple, int] = defaultdict(int)
    for item, batch in batches(collate, "test", args.n):
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
    print(f"{args.model}: attention of the {args.query} position, per head, on the named object | on other objects")
    for key in sorted(total):
        mean = total[key] / count[key]
        print(f"{key[0]}, answer {key[1]} (n={count[key]})")
        for layer in range(mean.shape[1]):
            named, others = (" ".join(f"{v:.2f}" for v in mean[k, layer]) for k in (0, 1))
            print(f"  layer {layer}: {named} | {others}")
    if args.probe:
        probe(model, collate)


if __name__ == "__main__":
    main()
