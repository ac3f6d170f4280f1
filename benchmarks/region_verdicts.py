"""How well a model answers region search's existence question on the tiles region search cuts, against the
puzzles' ground truth: is the small target inside the tile? Region search can only find what these verdicts point at,
so this is the first thing to check when it does not beat plain CoT on small-object search.

    nice -n 10 .venv/bin/python benchmarks/region_verdicts.py --model tiny --n 20

Tiles: the first two levels of the default search (2x2 tiles with 25% overlap over the image, then over its top-left
and bottom-right quarters). Prints the true- and false-positive rates and the balanced accuracy (chance: 50%).
"""

from __future__ import annotations

import argparse

from mmcot.evals.puzzles import generate
from mmcot.models.backend import load_backend
from mmcot.reasoning import prompts
from mmcot.reasoning.region_search import tiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny", help="model spec (tiny, smol, a folder, openai:URL#model)")
    parser.add_argument("--n", type=int, default=20, help="small_object puzzles (those with a target)")
    args = parser.parse_args()
    backend = load_backend(args.model)
    items = [
        it for it in generate("small_object", n=args.n, seed=0, split="test") if it.metadata["query"].get("target")
    ]
    counts = {"tp": 0, "fn": 0, "fp": 0, "tn": 0}
    for it in items:
        x0, y0, x1, y1 = it.metadata["objects"][it.metadata["query"]["target"]]["bbox"]
        w, h = it.images[0].size
        boxes = [
            b
            for region in ([0, 0, w, h], [0, 0, w // 2, h // 2], [w // 2, h // 2, w, h])
            for b in tiles(region, 2, 0.25)
        ]
        question = prompts.EXISTS.format(target=prompts.search_target(it.question))
        reqs = [
            prompts.request([{"role": "user", "content": [{"type": "image", "image": it.images[0].crop(tuple(b))},
                                                          {"type": "text", "text": question}]}], 4)
            for b in boxes
        ]  # fmt: skip
        for b, (c,) in zip(boxes, backend.generate(reqs), strict=True):
            inside = b[0] <= x0 and b[1] <= y0 and x1 <= b[2] and y1 <= b[3]
            says = prompts.yes_score([c.text]) >= 0.5
            counts[("t" if says == inside else "f") + ("p" if says else "n")] += 1
    tpr = counts["tp"] / max(1, counts["tp"] + counts["fn"])
    fpr = counts["fp"] / max(1, counts["fp"] + counts["tn"])
    print(f"existence verdicts of {args.model} on {sum(counts.values())} tiles of {len(items)} small_object puzzles:")
    print(f"  {counts}")
    print(
        f"  true-positive rate {tpr:.0%}, false-positive rate {fpr:.0%}, balanced accuracy {(tpr + 1 - fpr) / 2:.0%}"
    )


if __name__ == "__main__":
    main()
