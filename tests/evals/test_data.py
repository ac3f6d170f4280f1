"""Loaders: items.jsonl written by hand, VLMEvalKit-style TSV, easy-VQA and the built-in suite; bad rows are skipped
and named by file and line, never fatal."""

import base64
import io
import json

import pytest
from PIL import Image

from mmcot.evals.data import DataError, easy_vqa_category, load, load_easy_vqa, load_tsv


def png(color="red", size=(32, 32)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def b64(color="red") -> str:
    return base64.b64encode(png(color)).decode()


def write_jsonl(tmp_path, lines):
    (tmp_path / "img").mkdir(exist_ok=True)
    (tmp_path / "img" / "a.png").write_bytes(png("red"))
    (tmp_path / "img" / "b.png").write_bytes(png("blue"))
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


def test_hand_written_jsonl_with_bad_lines(tmp_path):
    path = write_jsonl(
        tmp_path,
        [
            {"id": "q1", "image": "img/a.png", "question": "What color?", "answer": "red", "category": "color"},
            {"id": "q2", "images": ["img/a.png", "img/b.png"], "question": "Same?", "answer": "no"},
            '{"id": "q3", "question": "broken',
            {"id": "q4", "image": "img/missing.png", "question": "?", "answer": "x"},
            {"id": "q5", "image": "img/a.png", "question": "?", "answer": "x", "colour": "red"},
            {"id": "q6", "image": "img/a.png", "question": "Which?", "answer": "B", "choices": ["cat", "dog"]},
            {"id": "q1", "image": "img/b.png", "question": "again", "answer": "blue"},
            {"id": "q7", "image": "img/a.png", "question": "no answer"},
        ],
    )
    items, problems = load(str(path))
    assert [i.id for i in items] == ["q1", "q2", "q6"]
    assert items[0].image.getpixel((0, 0)) == (255, 0, 0) and items[0].category == "color"
    assert len(items[1].images) == 2 and items[2].choices == ["cat", "dog"]
    text = "\n".join(problems)
    assert f"{path}:3: malformed JSON" in text
    assert f"{path}:4: image 'img/missing.png'" in text
    assert f"{path}:5: unknown field(s) ['colour']" in text
    assert "duplicate id 'q1'" in text
    assert f"{path}:8: missing required field 'answer'" in text
    assert len(problems) == 5


def test_folder_means_its_items_jsonl(tmp_path):
    write_jsonl(tmp_path, [{"id": "q1", "image": "img/a.png", "question": "?", "answer": "red"}])
    items, _ = load(str(tmp_path))
    assert [i.id for i in items] == ["q1"]


def test_unusable_sources_raise(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load(str(tmp_path / "nope.jsonl"))
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="unknown format '.csv'"):
        load(str(tmp_path / "x.csv"))


def tsv(tmp_path, header, rows, name="bench.tsv"):
    path = tmp_path / name
    path.write_text("\n".join("\t".join(r) for r in [header, *rows]) + "\n")
    return path


def test_vlmevalkit_tsv(tmp_path):
    header = ["index", "image", "question", "hint", "A", "B", "C", "D", "answer", "category", "l2-category"]
    multi = str([b64("red"), b64("blue")])
    path = tsv(
        tmp_path,
        header,
        [
            ["10", b64("red"), "What color is it?", "", "red", "blue", "green", "", "A", "color", "perception"],
            ["11", "10", "Is it dark?", "Look closely.", "yes", "no", "", "", "b", "yesno", "perception"],
            ["12", multi, "Which is left?", "", "red", "blue", "", "", "A", "spatial", ""],
            ["13", b64("green"), "What is it?", "", "", "", "", "", "a square", "open", ""],
        ],
    )
    items, problems = load_tsv(path)
    assert problems == []
    red, ref, pair, open_ = items
    assert red.id == "10" and red.choices == ["red", "blue", "green"] and red.answer == "A"
    assert red.category == "color" and red.metadata == {"l2-category": "perception"}
    assert ref.image.getpixel((0, 0)) == (255, 0, 0)  # the image of row index 10
    assert ref.question == "Hint: Look closely.\nIs it dark?" and ref.answer == "B"
    assert [im.getpixel((0, 0)) for im in pair.images] == [(255, 0, 0), (0, 0, 255)]
    assert open_.choices is None and open_.answer == "a square"


def test_tsv_bad_rows_are_named_by_line(tmp_path):
    header = ["index", "image", "question", "A", "B", "C", "answer"]
    path = tsv(
        tmp_path,
        header,
        [
            ["1", b64(), "good", "x", "y", "", "A"],
            [
                "2",
                "not base64 at all but long enough to not be an index reference ....................",
                "q",
                "x",
                "y",
                "",
                "A",
            ],
            ["3", "99", "refers to a missing row", "x", "y", "", "A"],
            ["4", b64(), "answer out of range", "x", "y", "", "D"],
            ["5", b64(), "gap in options", "x", "", "z", "A"],
            ["6", b64(), "no answer", "x", "y", "", ""],
            ["7", "", "no image", "x", "y", "", "A"],
            ["8", b64(), "too few fields"],
            ["9", base64.b64encode(b"GIF89a" + bytes(100)).decode(), "corrupt image", "x", "y", "", "A"],
        ],
    )
    items, problems = load_tsv(path)
    assert [i.id for i in items] == ["1"]
    expected = {
        3: "is not a readable image",
        4: "refers to row index '99'",
        5: "answer 'D' names no option",
        6: "not consecutive from A",
        7: "no answer",
        8: "no image",
        9: "different number of fields",
        10: "is not a readable image",
    }
    assert len(problems) == len(expected)
    for line, message in expected.items():
        assert any(p.startswith(f"{path}:{line}: ") and message in p for p in problems), (line, problems)


def test_tsv_image_path_column_and_quoted_newlines(tmp_path):
    (tmp_path / "pic.png").write_bytes(png("blue"))
    path = tmp_path / "b.tsv"
    path.write_text('index\timage_path\tquestion\tanswer\n1\tpic.png\t"two\nlines"\tblue\n2\tgone.png\tq\tx\n')
    items, problems = load_tsv(path)
    assert items[0].question == "two\nlines" and items[0].image.getpixel((0, 0)) == (0, 0, 255)
    assert len(problems) == 1 and problems[0].startswith(f"{path}:4: image is not a readable image")


def test_tsv_without_required_columns(tmp_path):
    path = tsv(tmp_path, ["index", "image", "prompt"], [["1", b64(), "q"]])
    with pytest.raises(DataError, match="no 'question' column"):
        load_tsv(path)
    path = tsv(tmp_path, ["index", "question", "answer"], [["1", "q", "a"]])
    with pytest.raises(DataError, match="no 'image' or 'image_path' column"):
        load_tsv(path)


def test_easy_vqa_test_split():
    items, problems = load_easy_vqa("test")
    assert problems == [] and len(items) == 9673  # the package's own count (its data/README.md)
    counts = {c: sum(i.category == c for i in items) for c in ("yes/no", "color", "shape")}
    assert counts["yes/no"] == 7136  # "7136 testing questions that are yes/no"
    assert {i.answer for i in items if i.category == "shape"} == {"circle", "rectangle", "triangle"}
    assert {i.answer for i in items if i.category == "yes/no"} == {"yes", "no"}
    assert items[0].image.size == (64, 64)
    assert items[0].images[0] is items[1].images[0]  # questions about one image share it


def test_easy_vqa_train_without_images_and_bad_split():
    items, _ = load_easy_vqa("train", images=False)
    assert len(items) == 38575 and not items[0].images
    with pytest.raises(DataError, match="train and a test split"):
        load_easy_vqa("val")


def test_easy_vqa_category():
    assert easy_vqa_category("what is the color of the triangle?") == "color"
    assert easy_vqa_category("what color is the shape?") == "color"
    assert easy_vqa_category("what is the red shape?") == "shape"
    assert easy_vqa_category("does the image not contain a circle?") == "yes/no"


def test_suite():
    from mmcot.evals.puzzles import FAMILIES

    family = next(iter(FAMILIES))
    items, problems = load("suite", families=[family], n=3, seed=1, split="test")
    assert problems == [] and len(items) == 3 and all(i.category == family and i.images for i in items)
    again, _ = load("suite", families=family, n=3, seed=1, split="test")
    assert [i.question for i in again] == [i.question for i in items]
    with pytest.raises(DataError, match="suite: "):
        load("suite", families=["no-such-family"], n=1)
