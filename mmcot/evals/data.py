"""Where evaluation items come from: the built-in puzzle suite, any items.jsonl, a VLMEvalKit-style TSV, easy-VQA.

Every loader returns ``(items, problems)``. A row that cannot become an Item is skipped and described in
``problems`` (``file:line: what is wrong``); only a source that cannot be used at all raises :class:`DataError`.
:func:`load` picks the loader from a source string::

    items, problems = load("suite", families=["count", "clock"], n=20, split="test")
    items, problems = load("runs/puzzles/items.jsonl")   # or a folder holding items.jsonl
    items, problems = load("MMBench_DEV_EN.tsv")         # index, image (base64), question, A..D, answer, category
    items, problems = load("easy-vqa", split="test")     # the easy-vqa package's own files, offline
"""

from __future__ import annotations

import ast
import base64
import csv
import sys
from pathlib import Path

from mmcot.evals.item import Item, load_items

SOURCES = ("suite", "easy-vqa")  # the named sources; anything else is a path
OPTION_LETTERS = "ABCDEFGHIJ"
TSV_KNOWN = {"index", "image", "image_path", "question", "hint", "answer", "category", *OPTION_LETTERS}


class DataError(ValueError):
    """A data source that cannot be used at all (missing file, unknown format, no such split); says why."""


def load(
    source: str,
    families: str | list[str] = "all",
    n: int = 20,
    seed: int = 0,
    split: str = "test",
    difficulty: int | None = None,
) -> tuple[list[Item], list[str]]:
    """Items from ``source``: "suite", "easy-vqa", or a path to an ``.jsonl`` / ``.tsv`` file or a folder holding
    ``items.jsonl``. Suite options (families, n per family, seed, difficulty) apply to the suite only; ``split``
    to the suite and easy-VQA. Duplicate ids are skipped (the first is kept), since results are keyed by id."""
    if source == "suite":
        items, problems = load_suite(families, n=n, seed=seed, split=split, difficulty=difficulty)
    elif source == "easy-vqa":
        items, problems = load_easy_vqa(split)
    else:
        path = Path(source)
        if path.is_dir():
            path = path / "items.jsonl"
        if not path.is_file():
            raise DataError(
                f"{path}: no such file (give a .jsonl or .tsv file, a folder with items.jsonl, or --suite)"
            )
        if path.suffix == ".jsonl":
            items, problems = load_items(path)
        elif path.suffix == ".tsv":
            items, problems = load_tsv(path)
        else:
            raise DataError(f"{path}: unknown format {path.suffix!r}; mmcot reads .jsonl (items.jsonl) and .tsv")
    seen: set[str] = set()
    unique = []
    for item in items:
        if item.id in seen:
            problems.append(f"{source}: duplicate id {item.id!r}; kept the first, skipped this one")
            continue
        seen.add(item.id)
        unique.append(item)
    return unique, problems


def load_suite(
    families: str | list[str] = "all", n: int = 20, seed: int = 0, split: str = "test", difficulty: int | None = None
) -> tuple[list[Item], list[str]]:
    """``n`` generated puzzles per family (see ``mmcot puzzles --list``); nothing is ever skipped."""
    from mmcot.evals.puzzles import generate

    try:
        return generate(families, n=n, seed=seed, split=split, difficulty=difficulty), []
    except (ValueError, KeyError) as e:
        raise DataError(f"suite: {e}") from None


def load_easy_vqa(split: str = "test", images: bool = True) -> tuple[list[Item], list[str]]:
    """easy-VQA (github.com/vzhou842/easy-VQA, shipped as the ``easy-vqa`` package): 64x64 images of one shape,
    questions about its color, its shape and yes/no presence; test 9,673 questions on 1,000 images. Categories
    come from the question's form: ``color``, ``shape`` or ``yes/no``. ``images=False`` skips reading the images
    (enough for counting answers)."""
    try:
        import easy_vqa
    except ImportError:
        raise DataError("easy-VQA needs the easy-vqa package: pip install easy-vqa") from None
    if split not in ("train", "test"):
        raise DataError(f"easy-VQA has a train and a test split, not {split!r}")
    from mmcot.tools.images import ImageError, open_image

    questions, answers, image_ids = getattr(easy_vqa, f"get_{split}_questions")()
    paths = getattr(easy_vqa, f"get_{split}_image_paths")()
    where = Path(easy_vqa.__file__).parent / "data" / split / "questions.json"
    opened: dict[int, object] = {}  # image id -> Image, or the error text
    items, problems = [], []
    for k, (question, answer, image_id) in enumerate(zip(questions, answers, image_ids, strict=True)):
        if images and image_id not in opened:
            try:
                opened[image_id] = open_image(paths[image_id])
            except KeyError:
                opened[image_id] = f"image {image_id} is missing from {split}/images"
            except ImageError as e:
                opened[image_id] = f"image {paths[image_id]}: {e}"
        img = opened.get(image_id)
        if isinstance(img, str):
            problems.append(f"{where}: entry {k}: {img}")
            continue
        items.append(
            Item(
                id=f"easy-vqa-{split}-{k:05d}",
                question=question,
                answer=answer,
                images=[img] if img is not None else [],
                category=easy_vqa_category(question),
                metadata={"image_id": image_id},
            )
        )
    return items, problems


def easy_vqa_category(question: str) -> str:
    """``color`` ("what color is the circle?"), ``shape`` ("what shape is in the image?") or ``yes/no``."""
    q = question.lower()
    if not q.startswith("what"):
        return "yes/no"
    return "color" if "color" in q else "shape"


def load_tsv(path: str | Path) -> tuple[list[Item], list[str]]:
    """A VLMEvalKit-style TSV: columns ``index``, ``image`` (base64, a list of them as ``['...', '...']``, or
    another row's index whose image it shares), ``question``, options ``A``..``J``, ``answer`` (a letter, or the
    answer text for open questions), optional ``hint``, ``category`` and ``image_path`` (paths relative to the TSV,
    used when ``image`` is empty). Other columns go to the item's metadata. Rows without an image are skipped, as
    VLMEvalKit does."""
    path = Path(path)
    csv.field_size_limit(sys.maxsize)  # base64 images are far longer than csv's default field limit
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f, delimiter="\t")
            header = reader.fieldnames or []
            rows, start = [], 2
            for row in reader:
                rows.append((start, row))
                start = reader.line_num + 1
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: cannot read as a tab-separated file: {e}") from None
    for column in ("question", "answer"):
        if column not in header:
            raise DataError(f"{path}: no {column!r} column (columns: {header}); expected VLMEvalKit's layout")
    if "image" not in header and "image_path" not in header:
        raise DataError(f"{path}: no 'image' or 'image_path' column (columns: {header})")
    images_by_index = {_cell(r, "index"): _cell(r, "image") for _, r in rows if _cell(r, "index")}
    cache: dict[str, list] = {}
    items, problems = [], []
    for lineno, row in rows:
        where = f"{path}:{lineno}"
        try:
            items.append(_tsv_item(row, header, path.parent, images_by_index, cache, where))
        except DataError as e:
            problems.append(str(e))
    return items, problems


def _cell(row: dict, column: str) -> str:
    value = row.get(column)
    value = value.strip() if isinstance(value, str) else ""
    return "" if value.lower() in ("nan", "none") else value  # how pandas writes and reads a missing value


def _tsv_item(row: dict, header: list[str], base: Path, images_by_index: dict, cache: dict, where: str) -> Item:
    if None in row or None in row.values():
        raise DataError(f"{where}: the row has a different number of fields than the header ({len(header)})")
    index = _cell(row, "index") or where.rsplit(":", 1)[1]
    question, answer = _cell(row, "question"), _cell(row, "answer")
    if not question:
        raise DataError(f"{where}: empty question")
    if not answer:
        raise DataError(f"{where}: no answer (is this a test split without labels?)")
    present = [letter for letter in OPTION_LETTERS if _cell(row, letter)]
    choices = [_cell(row, letter) for letter in present]
    if present != list(OPTION_LETTERS[: len(present)]):
        raise DataError(f"{where}: options {present} are not consecutive from A")
    if len(choices) == 1:
        raise DataError(f"{where}: only one option ({present[0]})")
    if choices and len(answer) == 1 and answer.upper() in OPTION_LETTERS and answer.upper() not in present:
        raise DataError(f"{where}: answer {answer!r} names no option (options: {', '.join(present)})")
    hint = _cell(row, "hint")
    return Item(
        id=index,
        question=f"Hint: {hint}\n{question}" if hint else question,
        answer=answer.upper() if choices and len(answer) == 1 else answer,
        images=_tsv_images(row, index, base, images_by_index, cache, where),
        choices=choices or None,
        category=_cell(row, "category"),
        metadata={k: v for k, v in row.items() if k not in TSV_KNOWN and v and len(v) < 1000},
    )


def _tsv_images(row: dict, index: str, base: Path, images_by_index: dict, cache: dict, where: str) -> list:
    from mmcot.tools.images import ImageError, open_image

    raw = _cell(row, "image")
    if raw:
        key = f"index {index}"
        if len(raw) <= 64:  # VLMEvalKit's convention: a short value is the index of the row holding the image
            if len(images_by_index.get(raw, "")) <= 64:
                raise DataError(f"{where}: image refers to row index {raw!r}, which holds no image")
            key, raw = f"index {raw}", images_by_index[raw]

        def read(src: str):
            src = "".join(src.split(",", 1)[1] if src.startswith("data:") else src.split())
            return open_image(base64.b64decode(src, validate=True))
    elif _cell(row, "image_path"):
        key = raw = _cell(row, "image_path")

        def read(src: str):
            return open_image(base / src)
    else:
        raise DataError(f"{where}: no image (empty 'image' and no 'image_path')")
    if key not in cache:
        sources = _list_cell(raw)
        images = []
        for k, src in enumerate(sources):
            try:
                images.append(read(src))
            except (ValueError, ImageError) as e:  # binascii.Error is a ValueError
                label = f"image {k}" if len(sources) > 1 else "image"
                raise DataError(f"{where}: {label} is not a readable image: {e}") from None
        cache[key] = images
    return list(cache[key])


def _list_cell(value: str) -> list[str]:
    """``"['a', 'b']"`` -> ``['a', 'b']`` (VLMEvalKit's multi-image cells); anything else is one value."""
    if value.startswith("[") and value.endswith("]"):
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed = None
        if isinstance(parsed, list) and parsed and all(isinstance(v, str) for v in parsed):
            return parsed
    return [value]
