"""Training conversations from the puzzle world, in the exact shapes the strategies prompt with.

Every row is ``{"messages": [...], "images": [PIL, ...]}``: Hugging Face chat messages whose image parts are
``{"type": "image"}`` placeholders, filled in order (user and tool messages alike) from ``images``. Kinds:

- ``direct``: the question (with lettered choices) -> the bare answer.
- ``think``: the same -> ``<think>`` the item's rationale, one step a line ``</think><answer>...</answer>``.
- ``describe``: "Describe the image." -> a faithful description built from the metadata.
- ``exists``: "Is there a small red triangle in this image?" -> yes/no, on whole scenes and on the crops a region
  search looks at.
- ``context``: "Description of the image: ...\\n<question>" (describe-then-reason) -> the answer.
- ``zoomed``: the whole image, a zoomed crop and the region-search note -> the answer.
- ``tool``: tool-using traces run through the real tools: zoom into a small object (image-loop), compute with
  ``python`` (arithmetic, chart sums); the tool messages carry their images.
- ``judge``: "Is this answer correct? Answer yes or no." over right and wrong worked answers (verification).

Prompt strings match ``mmcot/reasoning/prompts.py`` word for word (a test checks it). ``Rows`` is a torch-style
dataset that generates row ``i`` deterministically, so a resumed run sees the same data.
"""

from __future__ import annotations

import functools
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from mmcot.evals.item import Item
from mmcot.models.backend import user_message

# Word for word the strategies' prompts (mmcot/reasoning/prompts.py).
THINK, END_THINK, ANSWER, END_ANSWER = "<think>", "</think>", "<answer>", "</answer>"
DESCRIBE = "Describe the image."
EXISTS = "Is there {target} in this image?"
FROM_DESCRIPTION = "Description of the image: {description}\n{question}"
JUDGE = "Question: {question}\nProposed reasoning and answer: {candidate}\nIs this answer correct? Answer yes or no."
ZOOMED = "This is a zoomed-in view of part of the image (box {box} of the original)."

DESCRIBE_ASKS = [DESCRIBE, DESCRIBE, "Describe this image.", "What is in this picture?", "Describe what you see."]
THINK_ASKS = [
    "Think step by step, then give the answer in <answer></answer>.",
    "Reason step by step before answering.",
    "Explain your reasoning, then answer.",
]
DIRECT_ASKS = ["Answer with a single word or number.", "Answer briefly.", "Give only the answer."]
SCENE_FAMILIES = ("count", "attribute", "spatial", "odd_one_out", "small_object", "rotation")
IMAGE_LOOP_TOOLS = ("detect", "zoom", "crop")
PYTHON_TOOLS = ("python",)
DETECT_THINK = "The {what} is too small to see at this size, so I find it and zoom in on it."
KINDS = ("direct", "think", "describe", "exists", "lookup", "context", "zoomed", "tool", "judge")


@dataclass
class DataMix:
    """Which conversations a training stage sees: puzzle families, kinds and their weights, the seed."""

    families: str = field(default="all", metadata={"help": "Puzzle families, comma-separated, or 'all'."})
    kinds: str = field(
        default="direct:8,think:4,describe:2,exists:2,context:1,zoomed:1,tool:1,judge:1",
        metadata={"help": "Conversation kinds with weights, 'kind:weight,...' (" + ", ".join(KINDS) + ")."},
    )
    family_weights: str = field(
        default="count:2,spatial:2,attribute:1.5",
        metadata={"help": "Extra weight of some families, 'family:weight,...' (others weigh 1)."},
    )
    question_weights: str = field(
        default="",
        metadata={"help": "Weight of some question kinds within their family, 'kind:weight,...' (the puzzles' "
                  "metadata query kinds, e.g. shape_of_color:2,shape_of_largest:2; others weigh 1)."},
    )  # fmt: skip
    data_seed: int = field(default=0, metadata={"help": "Seed of the puzzles (train split) and of the mix."})

    def __post_init__(self):
        for kind in parse_weights(self.kinds):
            if kind not in KINDS:
                raise ValueError(f"unknown conversation kind {kind!r}; kinds: {', '.join(KINDS)}")
        if any(w <= 0 for w in parse_weights(self.question_weights).values()):
            raise ValueError(f"question_weights must be positive: {self.question_weights!r}")


def parse_weights(text: str) -> dict[str, float]:
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition(":")
        try:
            out[name.strip()] = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"bad weight in {part!r}: expected name:number") from None
    return out


# Families each kind applies to (None: every family); rows draw a family, then a kind that fits it.
APPLIES = {
    "exists": set(SCENE_FAMILIES) - {"rotation"},
    "lookup": set(SCENE_FAMILIES) - {"rotation", "small_object"},
    "zoomed": {"small_object"},
    "tool": {"small_object", "arithmetic", "bar_chart"},
}
# Rough token counts (tiny tokenizer) per kind, for batching rows of similar length together.
LENGTH_HINTS = {"direct": 100, "think": 170, "describe": 150, "exists": 85, "lookup": 160, "context": 190, "zoomed": 200,
                "judge": 200, "tool": 500}  # fmt: skip


class Rows:
    """A deterministic, indexable stream of training rows: row ``i`` is always the same conversation."""

    def __init__(self, mix: DataMix, size: int):
        from mmcot.evals.puzzles import FAMILIES, puzzle

        names = list(FAMILIES) if mix.families == "all" else [f.strip() for f in mix.families.split(",") if f.strip()]
        extra = parse_weights(mix.family_weights)
        self.families = names
        self.family_weights = [extra.get(f, 1.0) for f in names]
        self.kinds = parse_weights(mix.kinds)
        self.questions = parse_weights(mix.question_weights)
        self.mix, self.size = mix, size
        if self.questions:  # the question kinds these families ask, from a sample of their puzzles
            known = {
                puzzle(f, k, 0, split="train").metadata.get("query", {}).get("kind") for f in names for k in range(60)
            }
            if unknown := set(self.questions) - known:
                raise ValueError(f"question kinds {sorted(unknown)} are not asked by families {', '.join(names)}; "
                                 f"they ask: {', '.join(sorted(k for k in known if k))}")  # fmt: skip

    def keep(self, item: Item, rng: random.Random) -> bool:
        """Whether a drawn puzzle stays, so that question kinds come in proportion to ``question_weights``."""
        if not self.questions:
            return True
        top = max([1.0, *self.questions.values()])
        return rng.random() * top < self.questions.get(item.metadata.get("query", {}).get("kind"), 1.0)

    def __len__(self) -> int:
        return self.size

    def draw(self, rng: random.Random) -> tuple[str, str]:
        """A family, then a kind that applies to it."""
        family = rng.choices(self.families, self.family_weights)[0]
        kinds = {k: w for k, w in self.kinds.items() if family in APPLIES.get(k, {family})} or self.kinds
        return family, rng.choices(list(kinds), list(kinds.values()))[0]

    def length_hint(self, i: int) -> int:
        family, kind = self.draw(random.Random(f"row/{self.mix.data_seed}/{i}"))
        return LENGTH_HINTS[kind] + (64 if family == "rotation" else 0)

    def __getitem__(self, i: int) -> dict[str, Any]:
        from mmcot.evals.puzzles import puzzle

        if not 0 <= i < self.size:
            raise IndexError(i)
        rng = random.Random(f"row/{self.mix.data_seed}/{i}")
        kind = None
        for attempt in range(20):  # a kind that does not fit this item (a chart question without a sum) draws again
            if kind is None:
                family, kind = self.draw(rng)
            item = puzzle(family, i * 20 + attempt, self.mix.data_seed, split="train")
            if not self.keep(item, rng) and attempt < 19:
                continue  # a question kind weighted down: another puzzle of the same family
            row = conversation(item, kind, rng)
            if row is not None:
                if kind == "direct":  # the answer comes at once: the position that predicts it is known
                    row["ground"] = grounding(item)
                return row
            kind = None
        raise RuntimeError(f"no conversation of kinds {list(self.kinds)} fits families {self.families}")

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self[i] for i in range(self.size))

    def as_dataset(self):
        """A ``datasets.Dataset`` of row indices whose rows are generated on access (what TRL's trainers take)."""
        from datasets import Dataset

        def transform(batch: dict[str, list]) -> dict[str, list]:
            rows = [self[i] for i in batch["index"]]
            return {key: [r.get(key) for r in rows] for key in ("messages", "images", "ground")}

        return Dataset.from_dict({"index": list(range(self.size))}).with_transform(transform)


def grounding(item: Item) -> dict | None:
    """The objects of ``item``'s scene that its answer is read from, for sft's grounding loss (``--grounding_weight``):
    the one an attribute question names ("the red object", "the largest shape"), the one a spatial question names or
    asks for ("Is the red circle left of the blue square?": both), the ones a count question counts, and the word that
    names the object where one word does. None when the family has no objects, or no objects are named (a count of
    zero, which only the 'count' grounding query uses: it reads the empty list)."""
    meta, query = item.metadata, item.metadata.get("query", {})
    word = None  # the question's word that names the object by itself: "red" in "What shape is the red object?"
    if query.get("kind") in ("color_of_shape", "shape_of_color"):
        word = meta["objects"][query["target"]][query["kind"].split("_")[-1]]
    if item.category == "attribute" or (item.category == "spatial" and query.get("kind") == "extreme"):
        objects = [query["target"]]
    elif item.category == "spatial":
        objects = [query["a"], query["b"]]
    elif item.category == "count":
        from mmcot.evals.puzzles.count import matches

        objects = [i for i, o in enumerate(meta["objects"]) if matches(o, query)]
    else:
        return None
    return {"objects": objects, "word": word, "item": item} if objects or item.category == "count" else None


def user(images: list[Image.Image], text: str) -> dict:
    return user_message(text, [None] * len(images))


def row(messages: list[dict], images: list[Image.Image]) -> dict:
    return {"messages": messages, "images": images}


def think_reply(rationale: list[str], answer: str) -> str:
    return f"{THINK}{chr(10).join(rationale)}{END_THINK}{ANSWER}{answer}{END_ANSWER}"


def conversation(item: Item, kind: str, rng: random.Random) -> dict | None:
    """One training row of ``kind`` for ``item``, or None when the kind does not apply to it."""
    q = item.prompt()
    if kind == "direct":
        text = q if rng.random() < 0.8 else f"{q}\n{rng.choice(DIRECT_ASKS)}"
        return row([user(item.images, text), {"role": "assistant", "content": item.answer}], item.images)
    if kind == "think":
        if not item.rationale:
            return None
        text = q if rng.random() < 0.5 else f"{q}\n{rng.choice(THINK_ASKS)}"
        reply = think_reply(item.rationale, item.answer)
        return row([user(item.images, text), {"role": "assistant", "content": reply}], item.images)
    if kind == "describe":
        return row([user(item.images, rng.choice(DESCRIBE_ASKS)), {"role": "assistant", "content": describe(item)}],
                   item.images)  # fmt: skip
    if kind == "exists":
        return exists_row(item, rng)
    if kind == "lookup":
        return lookup_row(item, rng)
    if kind == "context":
        text = FROM_DESCRIPTION.format(description=describe(item), question=q)
        images = item.images if rng.random() < 0.7 else []
        reply = item.answer if rng.random() < 0.5 or not item.rationale else think_reply(item.rationale, item.answer)
        return row([user(images, text), {"role": "assistant", "content": reply}], images)
    if kind == "zoomed":
        return zoomed_row(item, rng)
    if kind == "tool":
        return tool_row(item, rng)
    if kind == "judge":
        return judge_row(item, rng)
    raise ValueError(f"unknown conversation kind {kind!r}")


# ---- descriptions ----


def describe(item: Item) -> str:
    """A faithful description of the item's image(s) from its metadata (what ``Describe the image.`` should say)."""
    from mmcot.evals.puzzles import caption

    meta, family = item.metadata, item.category
    if family == "rotation":
        return f"Two pictures of the same shapes, the second one rotated. The first: {caption(meta)}"
    if "objects" in meta and "canvas" in meta:
        return caption(meta)
    if family == "clock":
        return f"An analog clock showing {meta['hour']}:{meta['minute']:02d}."
    if family == "bar_chart":
        bars = ", ".join(f"{b['color']} {b['value']}" for b in meta["bars"])
        return f"A bar chart with {len(meta['bars'])} bars: {bars}."
    if family == "arithmetic":
        return f"The math problem {' '.join(meta['tokens'])} written on a {meta['background']['name']} background."
    if family == "maze":
        rows = len(meta["grid"])
        return f"A {rows}x{rows} maze with walls, a green dot and a red dot."
    if family == "pattern":
        return (
            f"A puzzle with a missing cell. {item.rationale[0]}" if item.rationale else "A puzzle with a missing cell."
        )
    return item.rationale[0] if item.rationale else "A puzzle image."


# ---- existence questions (region search) ----


def target_phrase(obj: dict, rng: random.Random, small: bool) -> str:
    """ "a small red triangle", "a red object"...: how a region search names what it looks for."""
    size = rng.choice(["small ", "tiny "]) if small else ""
    noun = obj["shape"] if rng.random() < 0.75 else rng.choice(["object", "shape"])
    return f"a {size}{obj['color']} {noun}"


def exists_row(item: Item, rng: random.Random) -> dict | None:
    from mmcot.evals.puzzles.render import COLORS, SHAPES

    meta = item.metadata
    if "objects" not in meta or item.category == "rotation":
        return None
    objects, canvas = meta["objects"], meta["canvas"]
    small = item.category == "small_object"
    image, box = item.images[0], [0, 0, canvas[0], canvas[1]]
    if small:  # a tile as region search cuts it: 0.57, 0.33 or 0.19 of the side, with or without the target
        side = round(canvas[0] * rng.choice([0.571, 0.327, 0.187]))
        target = objects[meta["query"]["target"]] if meta["query"].get("target") is not None else None
        if target is not None and rng.random() < 0.5:
            cx, cy = target["center"]
            x0 = rng.uniform(max(0, target["bbox"][2] - side), min(target["bbox"][0], canvas[0] - side))
            y0 = rng.uniform(max(0, target["bbox"][3] - side), min(target["bbox"][1], canvas[1] - side))
        else:
            x0, y0 = rng.uniform(0, canvas[0] - side), rng.uniform(0, canvas[1] - side)
        box = [round(x0), round(y0), round(x0) + side, round(y0) + side]
        image = image.crop(tuple(box))
    inside = [o for o in objects if o["bbox"][0] >= box[0] and o["bbox"][2] <= box[2]
              and o["bbox"][1] >= box[1] and o["bbox"][3] <= box[3]]  # fmt: skip
    cut = [o for o in objects if o not in inside and _overlap(o["bbox"], box)]
    if small:  # ask about the small shapes: the target, its near misses, or an absent combination
        pool = [o for o in objects if o["size"] < 0.06 * canvas[0]]
    else:
        pool = objects
    if rng.random() < 0.5 and pool:
        obj = rng.choice(pool)
    else:
        obj = {"color": rng.choice(COLORS), "shape": rng.choice(SHAPES)}
    phrase = target_phrase(obj, rng, small)
    any_shape = phrase.endswith((" object", " shape"))

    def hit(o: dict) -> bool:
        same = o["color"] == obj["color"] and (any_shape or o["shape"] == obj["shape"])
        return same and (not small or o["size"] < 0.06 * canvas[0])

    if any(hit(o) for o in cut):
        return None  # half of it in the tile: no clear answer
    answer = "yes" if any(hit(o) for o in inside) else "no"
    text = EXISTS.format(target=phrase)
    return row([user([image], text), {"role": "assistant", "content": answer}], [image])


def lookup_row(item: Item, rng: random.Random) -> dict | None:
    """One scene, then an attribute question about each of its objects in turn, answered in the same conversation:
    the shape drawn in a color that only one object has, the color of a shape only one object has. Every answer is
    a lookup from the named attribute to the other one in the same place of the image."""
    from mmcot.evals.puzzles.attribute import TEMPLATES

    objects = item.metadata.get("objects") or []
    turns = []
    for obj in objects:
        asks = []
        if sum(o["color"] == obj["color"] for o in objects) == 1:
            asks.append((rng.choice(TEMPLATES["shape_of_color"]).format(color=obj["color"]), obj["shape"]))
        if sum(o["shape"] == obj["shape"] for o in objects) == 1:
            asks.append((rng.choice(TEMPLATES["color_of_shape"]).format(shape=obj["shape"]), obj["color"]))
        if asks:
            turns.append(rng.choice(asks))
    if len(turns) < 2:
        return None
    rng.shuffle(turns)
    messages = []
    for k, (question, answer) in enumerate(turns):
        messages.append(user(item.images, question) if k == 0 else {"role": "user", "content": question})
        messages.append({"role": "assistant", "content": answer})
    return row(messages, item.images)


def _overlap(a: list[float], b: list[float]) -> bool:
    return not (a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1])


# ---- small objects: zoomed views and tool traces ----


def _zoom_box(item: Item) -> list[int] | None:
    return item.metadata.get("query", {}).get("zoom_box") if item.category == "small_object" else None


def zoomed_row(item: Item, rng: random.Random) -> dict | None:
    """Region search's answer step: the whole image, the crop holding the target, the note, the question."""
    box = _zoom_box(item)
    if box is None:
        return None
    crop = item.images[0].crop(tuple(box))
    images = [item.images[0], crop] if rng.random() < 0.7 else [crop]
    text = f"{ZOOMED.format(box=box)}\n{item.prompt()}"
    reply = item.answer if rng.random() < 0.4 else think_reply(item.rationale, item.answer)
    return row([user(images, text), {"role": "assistant", "content": reply}], images)


@functools.cache
def tools_system(names: tuple[str, ...], system: str = "") -> str:
    """The system prompt listing tools, exactly as mmcot's chat template renders ``tools=[...]``."""
    from mmcot.models.processor import chat_template
    from mmcot.tools import tool_schemas

    text = _render(chat_template(), [{"role": "user", "content": "x"}], tools=tool_schemas(list(names)))
    body = text[len("<|im_start|>system\n") : text.index("<|im_end|>")]
    return f"{system}\n\n{body}" if system else body


def _render(template: str, messages: list[dict], **kwargs: Any) -> str:
    from transformers.utils.chat_template_utils import render_jinja_template

    rendered, _ = render_jinja_template(conversations=[messages], chat_template=template, **kwargs)
    return rendered[0]


def tool_row(item: Item, rng: random.Random) -> dict | None:
    """A tool-using trace through the real tools: detect a small object and look at the zoomed view it returns
    (small_object; kept only where the detector is right), compute with python (arithmetic, chart sums)."""
    from mmcot.tools import ToolContext, ToolResult, run_tool_call, tool_message
    from mmcot.tools.detect import quarter, with_article

    ctx = ToolContext(images={"image_0": item.images[0]}, image_size=128)
    if item.category == "small_object":
        q = item.metadata["query"]
        what = {"color": f"small {q['shape']}", "shape": f"small {q['color']} shape"}.get(
            q["kind"], f"small {q['color']} {q['shape']}"
        )
        call = {"name": "detect", "arguments": {"target": what}}
        first = f"{THINK}{DETECT_THINK.format(what=what)}{END_THINK}"
        result = run_tool_call(call, ctx)
        if result.error or not _detected(item, result):
            return None
        label, point = result.metadata["label"], result.metadata["point"]
        if q["target"] is None:
            said = f"The detector found no {q['color']} {q['shape']}."
        else:  # its words, read back: what it found and where
            where = quarter(point, item.images[0].size)
            said = f"The detector found {with_article(label)} in the {where} quarter."
        last = think_reply([said, f"So the answer is {item.answer}."], item.answer)
        tools = IMAGE_LOOP_TOOLS
    elif item.category == "arithmetic" or (item.category == "bar_chart" and item.metadata["query"]["kind"] == "sum"):
        expr = _expression(item)
        call = {"name": "python", "arguments": {"code": f"print({expr})"}}
        first = f"{THINK}{item.rationale[0]} I compute it with Python.{END_THINK}"
        last = f"{THINK}Python printed {item.answer}.{END_THINK}{ANSWER}{item.answer}{END_ANSWER}"
        tools = PYTHON_TOOLS
        result = ToolResult(text=item.answer)  # what the sandboxed kernel prints, without starting one per row
    else:
        return None
    tool_msg = tool_message(result, call)
    tool_images = [p.pop("image") for p in tool_msg["content"] if p["type"] == "image"]
    content = first + "\n<tool_call>\n" + json.dumps(call) + "\n</tool_call>"
    messages = [
        {"role": "system", "content": tools_system(tools)},
        user(item.images, item.prompt()),
        {"role": "assistant", "content": content},
        tool_msg,
        {"role": "assistant", "content": last},
    ]
    return row(messages, list(item.images) + tool_images)


def _detected(item: Item, result) -> bool:
    """Whether the detect tool got it right: found the target (its box holds its center, its label is right), or
    found none where there is none."""
    from mmcot.tools.detect import FOUND, quarter

    target = item.metadata["query"]["target"]
    if target is None:
        return result.metadata["score"] < FOUND
    x0, y0, x1, y1 = result.metadata["box"]
    obj = item.metadata["objects"][target]
    cx, cy = obj["center"]
    size = item.images[0].size
    same_quarter = quarter(result.metadata["point"], size) == quarter(obj["center"], size)
    named = result.metadata["label"] == f"{obj['color']} {obj['shape']}"
    return result.metadata["score"] >= FOUND and x0 <= cx < x1 and y0 <= cy < y1 and same_quarter and named


def _expression(item: Item) -> str:
    meta = item.metadata
    if item.category == "arithmetic":
        ops = meta["operators"] + [""]
        return " ".join(f"{n} {op}" for n, op in zip(meta["operands"], ops, strict=True)).strip()
    bars = meta["bars"]
    return f"{bars[meta['query']['a']]['value']} + {bars[meta['query']['b']]['value']}"


# ---- verification ----


def judge_row(item: Item, rng: random.Random) -> dict | None:
    """A worked answer that is right or wrong (its answer swapped for a plausible wrong one) -> yes/no."""
    if not item.rationale:
        return None
    wrong = _wrong_answer(item, rng)
    right = rng.random() < 0.5 or wrong is None
    answer = item.answer if right else wrong
    steps = item.rationale if right else [re.sub(rf"\b{re.escape(item.answer)}\b", answer, s) for s in item.rationale]
    candidate = think_reply(steps, answer)
    text = JUDGE.format(question=item.prompt(), candidate=candidate)
    return row([user(item.images, text), {"role": "assistant", "content": "yes" if right else "no"}], item.images)


def _wrong_answer(item: Item, rng: random.Random) -> str | None:
    from mmcot.evals.puzzles.render import COLORS, SHAPES

    if item.choices:
        return rng.choice([c for c in item.choices if c != item.answer] or [None])
    a = item.answer
    if a.lstrip("-").isdigit():
        return str(max(0, int(a) + rng.choice([-2, -1, 1, 2])))
    for vocab in (COLORS, SHAPES, ["yes", "no"]):
        if a in vocab:
            return rng.choice([v for v in vocab if v != a])
    return None


# ---- the tokenizer's corpus ----


def tokenizer_corpus(samples_per_family: int, seed: int = 0) -> Iterator[str]:
    """Rendered training conversations (every kind, every family) without their image placeholders."""
    from mmcot.evals.puzzles import FAMILIES
    from mmcot.models.processor import chat_template

    template = chat_template()
    for family in FAMILIES:
        rows = Rows(DataMix(families=family, data_seed=seed, family_weights=""), samples_per_family)
        for r in rows:
            text = _render(template, _filled(r))
            yield text.replace("<image>", "")


def _filled(r: dict) -> list[dict]:
    """Messages with the row's images put into their placeholders (what the processor receives)."""
    images = iter(r["images"])
    out = []
    for m in r["messages"]:
        content = m["content"]
        if isinstance(content, list):
            content = [dict(p, image=next(images)) if p["type"] == "image" else p for p in content]
        out.append({**m, "content": content})
    return out
