"""region-search: visual search as a tree search whose nodes are image crops. The image is tiled (``grid`` x
``grid`` tiles that overlap, so an object on a border is whole in one of them); every tile is scored for the target,
and the best tile above ``threshold`` is zoomed into and tiled again, best first. A region whose tiles all score
below it is abandoned and the search backtracks to the next best region anywhere in the tree.

Tile scores come from the model's small-object detector when its folder ships one (``mmcot train detector``: a small
CNN that says which small shape is centered in which cell of a crop; the shipped smol has one) and the target names
a puzzle color or shape. Otherwise the model itself is asked an existence question per tile ("Is there a small
red triangle in this image?", one batched call, the yes rate over ``samples`` verdicts). ``scorer`` picks one.

The answer: "is there ...?" and "where is ...?" questions are answered by the search itself (found or not; the
quarter of the image its best region lies in), as V*'s search returns the target's location (``search_answers``).
Any other question goes to the model, with the crop that holds the target (a tile too small to split, see
``max_depth`` and ``min_side``; with the detector, a crop a ``grid``-th of the tile's side centered on the cell it
picked) and a note of where in the image the crop lies and whether the search found the target. Crops are cut from
the original image, so every level sees more of its real pixels.

The target is what the question asks about ("What color is the small triangle?" -> "a small triangle"), or
``--target``.

    mmcot solve --image big-scene.png --question "What color is the small triangle?" --strategy region-search
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mmcot.agent.graph import Builder, Strategy
from mmcot.agent.nodes import Step
from mmcot.agent.state import Context, State
from mmcot.models.backend import user_message
from mmcot.reasoning import prompts
from mmcot.tools.detect import around, quarter, target_words, tiles


@dataclass
class Config:
    grid: int = field(default=3, metadata={"help": "tiles per side at each level"})
    overlap: float = field(default=0.25, metadata={"help": "fraction of a tile shared with its neighbour"})
    max_depth: int = field(default=2, metadata={"help": "zoom levels at most"})
    min_side: int = field(default=32, metadata={"help": "smallest tile side in original pixels"})
    threshold: float = field(default=0.35, metadata={"help": "a tile holds the target when its score reaches this"})
    samples: int = field(default=1, metadata={"help": "existence verdicts per tile (>1: sampled, scores in between)"})
    max_expansions: int = field(default=8, metadata={"help": "regions tiled at most (bounds backtracking)"})
    target: str = field(default="", metadata={"help": "what to look for (default: read from the question)"})
    search_answers: bool = field(
        default=True, metadata={"help": "answer where-is and is-there questions from the search itself"}
    )
    scorer: str = field(
        default="auto", metadata={"help": "tile scores: detector, model (yes/no), auto (detector if any)"}
    )
    context: bool = field(default=True, metadata={"help": "answer with the whole image as well as the crop"})
    think: bool = field(default=True, metadata={"help": "reason in <think> when answering"})
    max_tokens: int = field(default=256, metadata={"help": "tokens for the answer"})

    def __post_init__(self) -> None:
        if self.grid < 2 or not 0 <= self.overlap < 1 or self.max_depth < 1 or self.samples < 1:
            raise ValueError("grid must be >= 2, overlap in [0, 1), max_depth and samples >= 1")
        if self.scorer not in ("auto", "detector", "model"):
            raise ValueError(f"scorer must be auto, detector or model, got {self.scorer!r}")


def search(state: State, step: Step) -> dict:
    """Tile the most promising region, score its tiles in one batched call, queue those that hold the target."""
    cfg: Config = step.config
    work = dict(state.get("work") or {})
    if not step.user_images():
        raise ValueError("region-search needs an image in the question")
    source = step.user_images()[0]
    image = step.image(source)
    target = work.get("target") or cfg.target or prompts.search_target(state["question"])
    queue = list(work.get("queue") or [{"box": [0, 0, image.width, image.height], "depth": 0, "score": 1.0}])
    queue.sort(key=lambda r: (r["score"], r["depth"]))
    region = queue.pop()
    if work.get("last") is not None and region.get("parent") != work["last"]:
        step.node(
            "thought",
            f"nothing more under region {work['last']}; back to box {region['box']}",
            parents=[region["node"]] if region.get("node") is not None else None,
            meta={"backtrack": True},
        )
    boxes = tiles(region["box"], cfg.grid, cfg.overlap)
    crops = [image.crop(tuple(b)) for b in boxes]
    detector, color, shape = _detector(step, cfg, target)
    if detector is not None:
        question = f"detector: {target}"
        scored = detector.score(crops, color, shape)
        points = [
            [b[0] + fx * (b[2] - b[0]), b[1] + fy * (b[3] - b[1])]
            for b, (_, (fx, fy)) in zip(boxes, scored, strict=True)
        ]
        scores = [s for s, _ in scored]
    else:
        question = prompts.EXISTS.format(target=target)
        temperature = 0.0 if cfg.samples == 1 else 0.7
        reqs = [prompts.request([user_message(question, [c])], 4, temperature, n=cfg.samples) for c in crops]
        scores = [prompts.yes_score([c.text for c in completions]) for completions in step.generate(reqs)]
        points = [None] * len(boxes)
    found, best = work.get("found"), work.get("best")
    for b, crop, score, point in zip(boxes, crops, scores, points, strict=True):
        image_id = step.add_image(crop)
        parents = [region["node"]] if region.get("node") is not None else None
        meta = {"box": b, "depth": region["depth"] + 1, "source": source}
        if point is not None:
            meta["point"] = [round(v) for v in point]
        node = step.node(
            "crop", f"{question} -> {score:.2f}", parents=parents, images=[image_id], score=score, meta=meta
        )
        tile = {
            "box": b,
            "depth": region["depth"] + 1,
            "score": score,
            "node": node,
            "image": image_id,
            "parent": region.get("node"),
            "point": meta.get("point"),
        }
        if best is None or (score, tile["depth"]) > (best["score"], best["depth"]):
            best = tile
        if score < cfg.threshold:
            continue
        side = min(b[2] - b[0], b[3] - b[1])
        if tile["depth"] >= cfg.max_depth or side / (cfg.grid - (cfg.grid - 1) * cfg.overlap) < cfg.min_side:
            if found is None or score > found["score"]:
                found = tile
        else:
            queue.append(tile)
    expanded = work.get("expanded", 0) + 1
    return {
        "work": {
            "queue": queue,
            "found": found,
            "best": best,
            "target": target,
            "expanded": expanded,
            "last": region.get("node"),
        }
    }


def _detector(step: Step, cfg: Config, target: str) -> tuple:
    """(detector, color, shape) when tiles are scored by the model's detector, else (None, None, None)."""
    if cfg.scorer == "model":
        return None, None, None
    detector = getattr(step.ctx.backend, "detector", None)
    color, shape = target_words(target)
    if detector is not None and (color or shape):
        return detector, color, shape
    if cfg.scorer == "detector":
        why = (
            "this model has no detector (mmcot train detector --publish NAME)"
            if detector is None
            else "the detector knows only the puzzle colors and shapes"
        )
        raise ValueError(f"scorer=detector: {target!r} cannot be scored: {why}")
    return None, None, None


def next_region(state: State, ctx: Context) -> str:
    work = state["work"]
    if work.get("found") is None and work["queue"] and work["expanded"] < ctx.config.max_expansions:
        return "search"
    return "answer"


def answer(state: State, step: Step) -> dict:
    """Answer the question looking at the crop that holds the target (the best one seen if none clearly does)."""
    cfg: Config = step.config
    work = state.get("work") or {}
    region = work.get("found") or work.get("best")
    messages = step.render(state["messages"])
    parents, found = None, work.get("found") is not None
    asks = prompts.asks_where_or_whether(state["question"]) if cfg.search_answers else ""
    if asks == "whether" or (asks == "where" and region is not None):
        return _answer_from_search(state, step, region, found, asks)
    if region is not None:
        box, image = region["box"], step.image(step.user_images()[0])
        if region.get("point"):  # the detector's cell: zoom once more, onto it
            box = around(region["point"], max(cfg.min_side, (box[2] - box[0]) // cfg.grid), image.size)
            crop = image.crop(tuple(box))
        else:
            crop = step.image(region["image"])
        width, height = image.size
        center = [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]
        said = (prompts.FOUND if found else prompts.NOT_FOUND).format(target=work["target"])
        where = prompts.QUARTER.format(where=quarter(center, [width, height]))
        note = f"{prompts.ZOOMED.format(box=box)} {where} {said}"
        last = messages[-1]
        kept = [p["image"] for p in last["content"] if p.get("type") == "image"] if cfg.context else []
        messages = messages[:-1] + [user_message(f"{note}\n{state['question']}", [*kept, crop])]
        parents = [region["node"]]
    req = prompts.request(messages, cfg.max_tokens, prefix=prompts.think_prefix(cfg.think))
    (c,) = step.generate([req], stream=True)[0]
    reply = req.prefix + c.text
    step.node("thought", reply, parents=parents, tokens=c.completion_tokens, meta={"found": found})
    return {"answer": prompts.answer_of(reply), "reply": reply}


def _answer_from_search(state: State, step: Step, region: dict | None, found: bool, asks: str) -> dict:
    """Is it there: whether the search found it. Where is it: the quarter of the region the search ended on."""
    target = state["work"]["target"]
    if asks == "whether":
        answer = "yes" if found else "no"
        reply = f"The search {'found' if found else 'did not find'} {target}. The answer is {answer}."
    else:
        box = region["box"]
        point = region.get("point") or [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]
        answer = quarter(point, step.image(step.user_images()[0]).size)
        how = "found" if found else "came closest to finding"
        reply = f"The search {how} {target} in the {answer} quarter of the image. The answer is {answer}."
    parents = [region["node"]] if region is not None else None
    step.node("thought", reply, parents=parents, meta={"found": found, "by": "search"})
    return {"answer": answer, "reply": reply}


def build(g: Builder) -> None:
    g.node("search", search)
    g.node("answer", answer)
    g.edge("start", "search")
    g.edge("search", next_region)
    g.edge("answer", "finish")


STRATEGY = Strategy(
    "region-search",
    "visual search: tile the image, score tiles for the target, zoom into the best, backtrack",
    Config,
    build,
)
