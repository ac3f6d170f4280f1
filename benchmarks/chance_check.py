"""Is the scorer honest? ``mmcot eval --solver random`` must score chance on every kind of input it reads.

    .venv/bin/python benchmarks/chance_check.py --out runs/chance          # --n 100 puzzles per family

It writes two files with plain json / pandas / Pillow (no mmcot code): an items.jsonl in the style a person writes
(colour, count and multiple-choice questions, answers spelled many ways: "Red", "RED.", "two", "4", letters) and a
VLMEvalKit-style TSV made from easy-VQA's train split (base64 images, rows that share an image refer to its row's
index, options A-D, letter answers). Then it runs the ``mmcot eval`` command on the built-in puzzles (written by
``mmcot puzzles``), on those two files and on easy-VQA's test split, and prints the measured accuracy with its 95%
interval next to chance computed here, independently of mmcot's scorer: 1/#choices, or 1/#distinct answers of the
item's category as this script knows them. A lenient scorer would land above chance, a strict one below.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import subprocess
import sys
import time
from pathlib import Path

COLORS = {"red": (220, 40, 40), "green": (40, 160, 60), "blue": (40, 80, 220), "yellow": (230, 200, 30),
          "purple": (130, 50, 170), "gray": (128, 128, 128)}  # fmt: skip
NUMBERS = ["one", "two", "three", "four", "five"]


def mmcot(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "mmcot.cli", *args], check=True, stdout=subprocess.DEVNULL)


def hand_written_jsonl(folder: Path, n: int, seed: int = 0) -> list[float]:
    """``n`` items drawn with Pillow, answers spelled as a person might; returns each item's chance."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    (folder / "pics").mkdir(parents=True, exist_ok=True)
    rows, chance = [], []
    for k in range(n):
        img = Image.new("RGB", (96, 96), "white")
        draw = ImageDraw.Draw(img)
        kind = ("color", "count", "shape")[k % 3]
        color = rng.choice(list(COLORS))
        row = {"id": f"hw-{k}", "image": f"pics/{k}.png", "category": kind}
        if kind == "color":
            draw.ellipse([30, 30, 66, 66], fill=COLORS[color])
            spelled = rng.choice([color, color.title(), color.upper() + ".", f"the {color}"])
            row.update(question="What color is the dot?", answer=spelled)
            chance.append(1 / len(COLORS))
        elif kind == "count":
            count = rng.randint(1, 5)
            for i in range(count):
                draw.ellipse([4 + 18 * i, 40, 18 + 18 * i, 54], fill=COLORS[color])
            spelled = rng.choice([str(count), NUMBERS[count - 1], NUMBERS[count - 1].title() + "."])
            row.update(question="How many dots are there?", answer=spelled)
            chance.append(1 / 5)
        else:
            truth = rng.choice(["circle", "square"])
            (draw.ellipse if truth == "circle" else draw.rectangle)([30, 30, 66, 66], fill=COLORS[color])
            shapes = [
                truth,
                *rng.sample(["triangle", "star", "heart", "circle" if truth == "square" else "square"], 2),
            ]
            rng.shuffle(shapes)
            answer = rng.choice([truth, "ABC"[shapes.index(truth)]])
            row.update(question="Which shape is drawn?", choices=shapes, answer=answer)
            chance.append(1 / len(shapes))
        img.save(folder / row["image"])
        rows.append(row)
    (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return chance


def vlmevalkit_tsv(path: Path, n: int, seed: int = 0) -> list[float]:
    """The first ``n`` questions of easy-VQA's train split as a VLMEvalKit multiple-choice TSV; returns chance."""
    import easy_vqa
    import pandas as pd

    rng = random.Random(seed)
    questions, answers, image_ids = easy_vqa.get_train_questions()
    paths = easy_vqa.get_train_image_paths()
    colors = sorted({a for q, a in zip(questions, answers, strict=True) if "color" in q})
    shapes = ["circle", "rectangle", "triangle"]
    first_row: dict[int, int] = {}
    rows, chance = [], []
    for index, (q, a, image_id) in enumerate(list(zip(questions, answers, image_ids, strict=True))[:n]):
        if a in ("yes", "no"):
            options, category = ["yes", "no"], "yes/no"
        elif a in shapes:
            options, category = rng.sample(shapes, 3), "shape"
        else:
            options, category = [a, *rng.sample([c for c in colors if c != a], 3)], "color"
            rng.shuffle(options)
        if image_id in first_row:
            image = str(first_row[image_id])  # VLMEvalKit: a short value names the row that holds the image
        else:
            first_row[image_id] = index
            image = base64.b64encode(Path(paths[image_id]).read_bytes()).decode()
        row = {"index": index, "image": image, "question": q, "answer": "ABCD"[options.index(a)], "category": category}
        row.update({letter: option for letter, option in zip("ABCD", options, strict=False)})
        rows.append(row)
        chance.append(1 / len(options))
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    return chance


def puzzle_chance(items_jsonl: Path) -> list[float]:
    rows = [json.loads(line) for line in items_jsonl.read_text().splitlines()]
    answers: dict[str, set] = {}
    for r in rows:
        answers.setdefault(r["category"], set()).add(r["answer"].strip().lower())
    return [1 / len(r["choices"]) if r.get("choices") else 1 / len(answers[r["category"]]) for r in rows]


def easy_vqa_chance() -> list[float]:
    import easy_vqa

    questions, answers, _ = easy_vqa.get_test_questions()
    kind = ["yes/no" if not q.startswith("what") else "color" if "color" in q else "shape" for q in questions]
    distinct = {k: len({a for a, k2 in zip(answers, kind, strict=True) if k2 == k}) for k in set(kind)}
    return [1 / distinct[k] for k in kind]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/chance", help="folder for the data and the eval runs")
    parser.add_argument("--n", type=int, default=100, help="puzzles per family")
    parser.add_argument("--files", type=int, default=900, help="items in the hand-written jsonl and in the TSV")
    args = parser.parse_args()
    out = Path(args.out)
    mmcot("puzzles", "--family", "all", "--n", str(args.n), "--out", str(out / "puzzles"))
    cases = [
        ("mmcot puzzles (all families)", ["--data", str(out / "puzzles" / "items.jsonl")]),
        ("hand-written items.jsonl", ["--data", str(out / "hand" / "items.jsonl")]),
        ("VLMEvalKit TSV (easy-VQA train)", ["--data", str(out / "easy_vqa_train.tsv")]),
        ("easy-VQA test split", ["--easy-vqa"]),
    ]
    chances = [
        puzzle_chance(out / "puzzles" / "items.jsonl"),
        hand_written_jsonl(out / "hand", args.files),
        vlmevalkit_tsv(out / "easy_vqa_train.tsv", args.files),
        easy_vqa_chance(),
    ]
    print("| data | n | random baseline | 95% interval | chance (independent) | chance inside | eval s |")
    print("|---|---|---|---|---|---|---|")
    for (name, data_args), chance in zip(cases, chances, strict=True):
        run_dir = out / ("run-" + name.split()[0].lower().replace("-", ""))
        start = time.perf_counter()
        mmcot("eval", *data_args, "--solver", "random", "--out", str(run_dir))
        seconds = time.perf_counter() - start
        summary = json.loads((run_dir / "summary.json").read_text())
        lo, hi = summary["ci95"]
        expected = sum(chance) / len(chance)
        inside = "yes" if lo <= expected <= hi else "NO"
        print(
            f"| {name} | {summary['n']} | {100 * summary['accuracy']:.1f}% | {100 * lo:.1f}–{100 * hi:.1f}% "
            f"| {100 * expected:.1f}% | {inside} | {seconds:.0f} |"
        )


if __name__ == "__main__":
    main()
