"""Where attribute answers are lost: reading the named object, or finding it? The breakdown behind the README's Models.

    .venv/bin/mmcot eval --suite --family attribute --n 400 --model tiny --strategy direct --out runs/eval/attr
    .venv/bin/python benchmarks/attribute_lookup.py runs/eval/attr/results.jsonl

Every attribute question names one object by one attribute and asks for the other (the color of the only circle,
the shape of the only blue object, or an attribute of the largest). This prints accuracy per question kind and per
number of objects in the scene: with one object there is nothing to find, so that row measures reading alone. Then,
for the misses in scenes of two or more objects, how many answers name an attribute of another object in the same
scene (a wrong object found) rather than one no object has (a misread). Items are rebuilt from their ids (the
suite's puzzles are a pure function of family, split, seed and index), so any strategy's results work.
"""

from __future__ import annotations

import argparse
import collections
import json


def main() -> None:
    from mmcot.evals.puzzles import puzzle
    from mmcot.evals.score import score

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", help="results.jsonl of an `mmcot eval` run on the attribute family")
    parser.add_argument("--seed", type=int, default=0, help="the suite's seed (mmcot eval's default is 0)")
    args = parser.parse_args()
    hits = collections.defaultdict(lambda: [0, 0])
    misses = collections.Counter()
    for line in open(args.results, encoding="utf-8"):
        row = json.loads(line)
        family, split, index = row["id"].rsplit("-", 2)
        if family != "attribute":
            continue
        item = puzzle(family, int(index), args.seed, split)
        query, objects = item.metadata["query"], item.metadata["objects"]
        group = (query["kind"], min(len(objects), 4))
        hits[group][0] += bool(row["correct"])
        hits[group][1] += 1
        if not row["correct"] and len(objects) > 1:
            key = "color" if query["kind"].startswith("color") else "shape"
            others = {o[key] for k, o in enumerate(objects) if k != query["target"]}
            named = any(score(str(row["prediction"]), other) for other in others)  # the eval's own notion of a match
            misses["another object's" if named else "no object's"] += 1
    print("| question | objects | right | accuracy |\n|---|---|---|---|")
    for (kind, n), (right, total) in sorted(hits.items()):
        print(f"| {kind} | {'4+' if n == 4 else n} | {right}/{total} | {right / total:.0%} |")
    print(f"misses with 2+ objects: {dict(misses)}")


if __name__ == "__main__":
    main()
