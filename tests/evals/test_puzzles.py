"""The puzzle world's API: registry, determinism, disjoint splits, every family at every difficulty, canonical
answers, JSON round trip, the Hugging Face export and the `mmcot puzzles` command."""

import doctest
import importlib
import json

import pytest
from PIL import ImageChops
from typer.testing import CliRunner

from mmcot.cli import app
from mmcot.evals.item import Item, load_items, save_items
from mmcot.evals.puzzles import (
    FAMILIES,
    NATIVE_RESOLUTION,
    caption,
    describe,
    generate,
    item_seed,
    puzzle,
    to_hf_dataset,
)
from mmcot.evals.score import normalize, score

REQUIRED = {"count", "attribute", "spatial", "small_object", "odd_one_out", "pattern", "arithmetic", "maze", "clock",
            "bar_chart", "rotation"}  # fmt: skip
SCENE_FAMILIES = ["count", "attribute", "spatial", "odd_one_out"]


def same_images(a: Item, b: Item) -> bool:
    return len(a.images) == len(b.images) and all(
        x.size == y.size and ImageChops.difference(x, y).getbbox() is None
        for x, y in zip(a.images, b.images, strict=True)
    )


def test_docstring_examples():
    for name in ("render", "scene"):
        result = doctest.testmod(importlib.import_module(f"mmcot.evals.puzzles.{name}"))
        assert result.attempted > 0 and result.failed == 0, name


def test_registry_and_native_resolution():
    assert REQUIRED <= set(FAMILIES)
    assert NATIVE_RESOLUTION == 128
    for name, fn in FAMILIES.items():
        assert describe(fn), f"{name} has no one-line description"


@pytest.mark.parametrize("family", sorted(REQUIRED))
@pytest.mark.parametrize("difficulty", [1, 2, 3])
def test_every_family_at_every_difficulty(family, difficulty):
    items = generate(family, n=6, seed=3, split="train", difficulty=difficulty)
    assert [it.id for it in items] == [f"{family}-train-{i:06d}" for i in range(6)]
    for it in items:
        assert it.category == family and it.difficulty == difficulty
        assert it.images and all(im.mode == "RGB" and min(im.size) >= 64 for im in it.images)
        assert it.question.strip() and it.answer.strip()
        assert normalize(it.answer) == it.answer, f"{it.id}: answer {it.answer!r} is not canonical"
        if it.choices:
            assert it.answer in it.choices and len(set(it.choices)) == len(it.choices) >= 2
            assert score(it.answer, it.answer, it.choices) == 1.0
        json.dumps(it.metadata)  # JSON-serializable
        assert it.rationale and all(isinstance(s, str) and s for s in it.rationale)


def test_deterministic_by_family_split_seed_index():
    a = generate("all", n=3, seed=7)
    b = generate("all", n=3, seed=7)
    assert [x.id for x in a] == [y.id for y in b]
    for x, y in zip(a, b, strict=True):
        assert (x.question, x.answer, x.choices, x.metadata, x.rationale) == (
            y.question,
            y.answer,
            y.choices,
            y.metadata,
            y.rationale,
        )
        assert same_images(x, y)
    # an item depends only on its own (family, split, seed, index), not on what else was generated
    alone = puzzle("clock", 2, seed=7)
    assert alone.id == "clock-test-000002" and alone.difficulty == 3
    assert alone.metadata == next(x for x in a if x.id == "clock-test-000002").metadata
    other = generate("all", n=3, seed=8)
    assert sum(same_images(x, y) for x, y in zip(a, other, strict=True)) == 0


def test_splits_use_disjoint_seeds_and_differ():
    seeds = {s: {item_seed(f, s, seed, i) for f in FAMILIES for seed in range(3) for i in range(50)} for s in
             ("train", "val", "test")}  # fmt: skip
    assert (
        not (seeds["train"] & seeds["val"])
        and not (seeds["train"] & seeds["test"])
        and not (seeds["val"] & seeds["test"])
    )
    train = generate(["count", "maze", "clock"], n=10, seed=0, split="train")
    test = generate(["count", "maze", "clock"], n=10, seed=0, split="test")
    train_bytes = {im.tobytes() for it in train for im in it.images}
    assert not any(im.tobytes() in train_bytes for it in test for im in it.images)


def test_difficulty_none_cycles_and_bad_arguments_are_clear():
    assert [it.difficulty for it in generate("count", n=4)] == [1, 2, 3, 1]
    with pytest.raises(ValueError, match="unknown puzzle family 'nope'"):
        generate("nope")
    with pytest.raises(ValueError, match="difficulty"):
        generate("count", difficulty=4)
    with pytest.raises(ValueError, match="split"):
        generate("count", split="dev")
    with pytest.raises(ValueError, match="cannot load"):
        generate("no_such_module_xyz:fn")


def test_dotted_path_family():
    items = generate("mmcot.evals.puzzles.clock:generate", n=2, seed=1)
    assert [it.id for it in items] == ["generate-test-000000", "generate-test-000001"]
    assert all(":" in it.answer for it in items)


def test_json_round_trip_through_save_and_load(tmp_path):
    items = generate("all", n=2, seed=5)
    path = save_items(items, tmp_path / "out")
    loaded, problems = load_items(path)
    assert problems == [] and len(loaded) == len(items)
    for a, b in zip(items, loaded, strict=True):
        assert (a.id, a.question, a.answer, a.choices, a.category, a.difficulty, a.rationale) == (
            b.id,
            b.question,
            b.answer,
            b.choices,
            b.category,
            b.difficulty,
            b.rationale,
        )
        assert json.loads(json.dumps(a.metadata)) == b.metadata
        assert same_images(a, b)  # PNG is lossless
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert "images" in next(r for r in rows if r["category"] == "rotation")  # two images per rotation item


def test_hf_dataset_export():
    items = generate(["count", "rotation"], n=2, seed=0)
    ds = to_hf_dataset(items)
    assert len(ds) == 4
    assert set(ds.column_names) >= {"images", "question", "answer", "choices", "category", "metadata", "rationale"}
    row = ds[2]
    assert row["category"] == "rotation" and len(row["images"]) == 2
    assert row["images"][0].size == items[2].images[0].size
    assert json.loads(row["metadata"]) == json.loads(json.dumps(items[2].metadata))
    assert row["answer"] in row["choices"] and row["rationale"] == items[2].rationale


def test_caption_describes_every_object():
    for it in generate(SCENE_FAMILIES, n=6, seed=2):
        text = caption(it.metadata)
        assert text.count(",") + text.count(" and ") >= len(it.metadata["objects"]) - 1
        for obj in it.metadata["objects"]:
            assert f"{obj['color']} {obj['shape']}" in text
    with pytest.raises(ValueError):
        caption({"grid": []})


def test_scene_families_stay_readable_at_native_resolution():
    for it in generate(SCENE_FAMILIES, n=30, seed=4):
        side = it.metadata["canvas"][0]
        objects = it.metadata["objects"]
        assert len(objects) <= 8
        for k, o in enumerate(objects):
            x0, y0, x1, y1 = o["bbox"]
            assert min(x1 - x0, y1 - y0) >= 0.12 * side, f"{it.id}: object {k} too small to read at 128 px"
            assert 0 <= x0 and 0 <= y0 and x1 <= side and y1 <= side
            for p in objects[k + 1 :]:
                q = p["bbox"]
                assert x1 <= q[0] or q[2] <= x0 or y1 <= q[1] or q[3] <= y0, f"{it.id}: objects overlap"


def test_at_least_three_paraphrases_per_question_type():
    for name in FAMILIES:
        module = importlib.import_module(f"mmcot.evals.puzzles.{name}")
        templates = module.TEMPLATES
        groups = templates.values() if isinstance(templates, dict) else [templates]
        assert all(len(set(g)) >= 3 for g in groups), name
    questions = {it.question for it in generate("clock", n=40)}
    assert len(questions) >= 3


def test_variety_of_canvases_and_backgrounds():
    items = generate("all", n=12, seed=0)
    sizes = {im.size[0] for it in items for im in it.images}
    assert min(sizes) <= 96 and max(sizes) >= 512
    styles = {it.metadata["background"]["style"] for it in items if "background" in it.metadata}
    assert {"solid", "gradient"} <= styles and len(styles) >= 3


def test_cli_writes_items_hf_and_contact_sheet(tmp_path):
    out = tmp_path / "puzzles"
    result = CliRunner().invoke(
        app, ["puzzles", "--family", "count,clock", "--n", "2", "--out", str(out), "--hf", "--show"]
    )
    assert result.exit_code == 0, result.output
    assert "wrote 4 puzzles" in result.output and "contact sheet" in result.output
    items, problems = load_items(out / "items.jsonl")
    assert problems == [] and [it.category for it in items] == ["count", "count", "clock", "clock"]
    assert (out / "contact_sheet.png").stat().st_size > 0 and (out / "hf").is_dir()
    import datasets

    assert len(datasets.load_from_disk(str(out / "hf"))) == 4


def test_cli_list_and_errors(tmp_path):
    runner = CliRunner()
    listed = runner.invoke(app, ["puzzles", "--list"])
    assert listed.exit_code == 0 and all(name in listed.output for name in REQUIRED)
    bad = runner.invoke(app, ["puzzles", "--family", "count,nope", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "unknown puzzle family 'nope'" in bad.output and "Traceback" not in bad.output
    bad = runner.invoke(app, ["puzzles", "--difficulty", "7", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "difficulty" in bad.output
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    bad = runner.invoke(app, ["puzzles", "--family", "count", "--n", "1", "--out", str(blocker)])
    assert bad.exit_code == 1 and "cannot write" in bad.output
