"""How well a model answers region search's existence question on the tiles region search cuts, against the
puzzles' ground truth: is the small target inside the tile? Region search can only find what these verdicts point at,
so this is the first thing to check when it does not beat plain CoT on small-object search.

    nice -n 10 .venv/bin/python benchmarks/region_verdicts.py --model tiny --n 20
    nice -n 10 .venv/bin/python benchmarks/region_verdicts.py --model smol --n 40 --grid 4 --likelihood
    nice -n 10 .venv/bin/python benchmarks/region_verdicts.py --model smol --n 40 --grid 3 --detector

Tiles: the first two levels of the default search (2x2 tiles with 25% overlap over the image, then over its top-left
and bottom-right quarters); with ``--grid G``, one level of G x G tiles over the whole image (G=4: the scale at which
the target is legible). Prints the true- and false-positive rates and the balanced accuracy (chance: 50%). With
``--likelihood`` (local models) it also ranks the tiles by log P(yes) - log P(no) of the first answer token: the
ROC AUC over tiles (chance 0.5), and how often each puzzle's top-ranked tile holds the target. With ``--detector``
it ranks them the same way by the model's small-object detector (``mmcot train detector``), which region search
uses instead of the yes/no answers when the model ships one.
"""

from __future__ import annotations

import argparse

from mmcot.evals.puzzles import generate
from mmcot.models.backend import load_backend, user_message
from mmcot.models.detector import asked
from mmcot.reasoning import prompts
from mmcot.tools.detect import tiles


def yes_margins(backend, reqs: list) -> list[float]:
    """log P(yes) - log P(no) of the first answer token, each word in its spellings ("yes", "Yes", " yes")."""
    import torch

    tok = backend.processor.tokenizer
    ids = {w: [tok.encode(s, add_special_tokens=False)[0] for s in (w, w.title(), " " + w)] for w in ("yes", "no")}
    with torch.no_grad():
        _, logits, _ = backend.prefill([backend.prepare(r) for r in reqs], [1] * len(reqs))
    lp = logits.float().log_softmax(-1)
    return (torch.logsumexp(lp[:, ids["yes"]], -1) - torch.logsumexp(lp[:, ids["no"]], -1)).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny", help="model spec (tiny, smol, a folder, openai:URL#model)")
    parser.add_argument("--n", type=int, default=20, help="small_object puzzles (those with a target)")
    parser.add_argument("--grid", type=int, default=0, help="one level of G x G tiles (default: the search's two)")
    parser.add_argument("--likelihood", action="store_true", help="also rank tiles by P(yes) (local models)")
    parser.add_argument("--detector", action="store_true", help="also rank tiles by the model's detector")
    args = parser.parse_args()
    backend = load_backend(args.model)
    items = [
        it
        for it in generate("small_object", n=args.n, seed=0, split="test")
        if it.metadata["query"].get("target") is not None
    ]
    counts = {"tp": 0, "fn": 0, "fp": 0, "tn": 0}
    pos, neg, top = [], [], 0
    dpos, dneg, dtop = [], [], 0
    for it in items:
        x0, y0, x1, y1 = it.metadata["objects"][it.metadata["query"]["target"]]["bbox"]
        w, h = it.images[0].size
        regions = [[0, 0, w, h]] if args.grid else [[0, 0, w, h], [0, 0, w // 2, h // 2], [w // 2, h // 2, w, h]]
        boxes = [b for region in regions for b in tiles(region, args.grid or 2, 0.25)]
        question = prompts.EXISTS.format(target=prompts.search_target(it.question))
        reqs = [prompts.request([user_message(question, [it.images[0].crop(tuple(b))])], 4) for b in boxes]
        inside = [b[0] <= x0 and b[1] <= y0 and x1 <= b[2] and y1 <= b[3] for b in boxes]
        for holds, (c,) in zip(inside, backend.generate(reqs), strict=True):
            says = prompts.yes_score([c.text]) >= 0.5
            counts[("t" if says == holds else "f") + ("p" if says else "n")] += 1
        if args.likelihood:
            margins = yes_margins(backend, reqs)
            for m, holds in zip(margins, inside, strict=True):
                (pos if holds else neg).append(m)
            top += inside[max(range(len(boxes)), key=margins.__getitem__)]
        if args.detector:
            scores = [
                s
                for s, _ in backend.detector.score(
                    [it.images[0].crop(tuple(b)) for b in boxes], *asked(it.metadata["query"])
                )
            ]
            for m, holds in zip(scores, inside, strict=True):
                (dpos if holds else dneg).append(m)
            dtop += inside[max(range(len(boxes)), key=scores.__getitem__)]
    tpr = counts["tp"] / max(1, counts["tp"] + counts["fn"])
    fpr = counts["fp"] / max(1, counts["fp"] + counts["tn"])
    print(f"existence verdicts of {args.model} on {sum(counts.values())} tiles of {len(items)} small_object puzzles:")
    print(f"  {counts}")
    print(
        f"  true-positive rate {tpr:.0%}, false-positive rate {fpr:.0%}, balanced accuracy {(tpr + 1 - fpr) / 2:.0%}"
    )
    for label, p, n, t in (("log P(yes) - log P(no)", pos, neg, top), ("the detector's score", dpos, dneg, dtop)):
        if p and n:
            auc = sum((a > b) + 0.5 * (a == b) for a in p for b in n) / (len(p) * len(n))
            print(
                f"  ranked by {label}: AUC {auc:.3f} (chance 0.5); the top tile holds the target in "
                f"{t}/{len(items)} puzzles (a random tile holds it {len(p) / (len(p) + len(n)):.0%} of the time)"
            )


if __name__ == "__main__":
    main()
