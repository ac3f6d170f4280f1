"""region-search: visual search as a tree search whose nodes are image crops. The image is tiled (``grid`` x
``grid`` tiles that overlap, so an object on a border is whole in one of them); the model scores every tile for the
target with an existence question ("Is there a small red triangle in this image?", one batched call, the yes rate
over ``samples`` verdicts); the best tile above ``threshold`` is zoomed into and tiled again, best first. A region
whose tiles all say no is abandoned and the search backtracks to the next best region anywhere in the tree. When a
tile too small to split (``max_depth``, ``min_side``) holds the target, the model answers the question looking at
that crop. Crops are cut from the original image, so every level sees more of its real pixels.

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


@dataclass
class Config:
    grid: int = field(default=2, metadata={"help": "tiles per side at each level"})
    overlap: float = field(default=0.25, metadata={"help": "fraction of a tile shared with its neighbour"})
    max_depth: int = field(default=3, metadata={"help": "zoom levels at most"})
    min_side: int = field(default=32, metadata={"help": "smallest tile side in original pixels"})
    threshold: float = field(default=0.5, metadata={"help": "a tile holds the target when its score reaches this"})
    samples: int = field(default=1, metadata={"help": "existence verdicts per tile (>1: sampled, scores in between)"})
    max_expansions: int = field(default=8, metadata={"help": "regions tiled at most (bounds backtracking)"})
    target: str = field(default="", metadata={"help": "what to look for (default: read from the question)"})
    context: bool = field(default=True, metadata={"help": "answer with the whole image as well as the crop"})
    think: bool = field(default=True, metadata={"help": "reason in <think> when answering"})
    max_tokens: int = field(default=256, metadata={"help": "tokens for the answer"})

    def __post_init__(self) -> None:
        if self.grid < 2 or not 0 <= self.overlap < 1 or self.max_depth < 1 or self.samples < 1:
            raise ValueError("grid must be >= 2, overlap in [0, 1), max_depth and samples >= 1")


def tiles(box: list[float], grid: int, overlap: float) -> list[list[int]]:
    """``grid`` x ``grid`` overlapping tiles covering ``box`` (x0, y0, x1, y1), row by row.

    >>> tiles([0, 0, 100, 100], 2, 0.0)
    [[0, 0, 50, 50], [50, 0, 100, 50], [0, 50, 50, 100], [50, 50, 100, 100]]
    """
    x0, y0, x1, y1 = box
    w, h = (x1 - x0) / (grid - (grid - 1) * overlap), (y1 - y0) / (grid - (grid - 1) * overlap)
    sx, sy = w * (1 - overlap), h * (1 - overlap)
    return [
        [round(x0 + i * sx), round(y0 + j * sy), round(x0 + i * sx + w), round(y0 + j * sy + h)]
        for j in range(grid)
        for i in range(grid)
    ]


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
    question = prompts.EXISTS.format(target=target)
    temperature = 0.0 if cfg.samples == 1 else 0.7
    reqs = [
        prompts.request(
            [user_message(question, [c])],
            4,
            temperature,
            n=cfg.samples,
        )
        for c in crops
    ]
    found, best = work.get("found"), work.get("best")
    for b, crop, completions in zip(boxes, crops, step.generate(reqs), strict=True):
        score = prompts.yes_score([c.text for c in completions])
        image_id = step.add_image(crop)
        parents = [region["node"]] if region.get("node") is not None else None
        node = step.node(
            "crop",
            f"{question} -> {score:.2f}",
            parents=parents,
            images=[image_id],
            score=score,
            meta={"box": b, "depth": region["depth"] + 1, "source": source},
        )
        tile = {
            "box": b,
            "depth": region["depth"] + 1,
            "score": score,
            "node": node,
            "image": image_id,
            "parent": region.get("node"),
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
    parents = None
    if region is not None:
        crop = step.image(region["image"])
        note = prompts.ZOOMED.format(box=region["box"])
        last = messages[-1]
        kept = [p["image"] for p in last["content"] if p.get("type") == "image"] if cfg.context else []
        messages = messages[:-1] + [user_message(f"{note}\n{state['question']}", [*kept, crop])]
        parents = [region["node"]]
    req = prompts.request(messages, cfg.max_tokens, prefix=prompts.think_prefix(cfg.think))
    (c,) = step.generate([req], stream=True)[0]
    reply = req.prefix + c.text
    step.node("thought", reply, parents=parents, tokens=c.completion_tokens)
    return {"answer": prompts.answer_of(reply), "reply": reply}


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
