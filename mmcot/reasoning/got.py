"""got: graph of thoughts (Besta et al., 2024) as a fixed graph of operations: generate ``k`` chains of thought,
score them, aggregate the best ``keep`` into one new thought (the model reads them and writes a combined answer),
refine the best thought ``rounds`` times (the model checks it against the image), scoring every new thought, and
answer with the best-scored thought overall. Scores come from the model's own judgement or a verifier by dotted path.

    mmcot solve --image scene.png --question "How many circles are there?" --strategy got --k 4 --rounds 1
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mmcot.agent.graph import Builder, Strategy
from mmcot.agent.nodes import Step
from mmcot.agent.state import Context, State
from mmcot.reasoning import prompts, verify


@dataclass
class Config:
    k: int = field(default=4, metadata={"help": "chains of thought generated first"})
    keep: int = field(default=2, metadata={"help": "best thoughts aggregated into one (1: no aggregation)"})
    rounds: int = field(default=1, metadata={"help": "refinement rounds of the best thought"})
    verifier: str = field(default="self", metadata={"help": "'self' (the model judges) or pkg.mod:obj"})
    judge_samples: int = field(default=1, metadata={"help": "verdicts sampled per thought by the model judge"})
    temperature: float = field(default=0.8, metadata={"help": "sampling temperature of generated thoughts"})
    think: bool = field(default=True, metadata={"help": "start each thought with <think>"})
    max_tokens: int = field(default=384, metadata={"help": "tokens per thought"})

    def __post_init__(self) -> None:
        if min(self.k, self.keep, self.judge_samples) < 1 or self.rounds < 0:
            raise ValueError("k, keep and judge_samples must be at least 1, rounds at least 0")
        verify.load_verifier(self.verifier)


def _thought(step: Step, req, parents: list[int] | None, op: str) -> list[dict]:
    out = []
    for c in step.generate([req])[0]:
        text = req.prefix + c.text
        node = step.node("thought", text, parents=parents, tokens=c.completion_tokens, meta={"op": op})
        out.append({"text": text, "answer": prompts.answer_of(text), "node": node, "score": None})
    return out


def generate(state: State, step: Step) -> dict:
    cfg: Config = step.config
    req = prompts.request(
        step.render(state["messages"]),
        cfg.max_tokens,
        cfg.temperature,
        n=cfg.k,
        prefix=prompts.think_prefix(cfg.think),
    )
    return {"work": {"thoughts": _thought(step, req, None, "generate"), "op": "generate", "round": 0}}


def score(state: State, step: Step) -> dict:
    """Score the thoughts not scored yet; the best one so far gives the answer."""
    cfg: Config = step.config
    thoughts = [dict(t) for t in state["work"]["thoughts"]]
    new = [t for t in thoughts if t["score"] is None]
    scores = verify.score(
        state, step, [t["text"] for t in new], [t["node"] for t in new], cfg.verifier, cfg.judge_samples
    )
    for t, s in zip(new, scores, strict=True):
        t["score"] = s
    top = max(t["score"] for t in thoughts)
    best = [t for t in thoughts if t["score"] == top]
    answer, _ = prompts.vote([t["answer"] for t in best], state.get("choices"))
    reply = next((t["text"] for t in best if t["answer"] == answer), best[0]["text"])
    return {"work": {"thoughts": thoughts}, "answer": answer, "reply": reply}


def aggregate(state: State, step: Step) -> dict:
    cfg: Config = step.config
    work = state["work"]
    best = sorted(work["thoughts"], key=lambda t: -t["score"])[: cfg.keep]
    messages = prompts.aggregate_messages(step.render(state["messages"]), state["question"], [t["text"] for t in best])
    req = prompts.request(messages, cfg.max_tokens, prefix=prompts.think_prefix(cfg.think))
    new = _thought(step, req, [t["node"] for t in best], "aggregate")
    return {"work": {"thoughts": work["thoughts"] + new, "op": "aggregate"}}


def refine(state: State, step: Step) -> dict:
    cfg: Config = step.config
    work = state["work"]
    best = max(work["thoughts"], key=lambda t: t["score"])
    messages = prompts.refine_messages(step.render(state["messages"]), state["question"], best["text"])
    req = prompts.request(messages, cfg.max_tokens, prefix=prompts.think_prefix(cfg.think))
    new = _thought(step, req, [best["node"]], "refine")
    return {"work": {"thoughts": work["thoughts"] + new, "op": "refine", "round": work["round"] + 1}}


def after_score(state: State, ctx: Context) -> str:
    cfg: Config = ctx.config
    work = state["work"]
    if work["op"] == "generate" and cfg.keep > 1 and len(work["thoughts"]) > 1:
        return "aggregate"
    return "refine" if work["round"] < cfg.rounds else "finish"


def build(g: Builder) -> None:
    for name, fn in (("generate", generate), ("score", score), ("aggregate", aggregate), ("refine", refine)):
        g.node(name, fn)
    g.edge("start", "generate")
    for name in ("generate", "aggregate", "refine"):
        g.edge(name, "score")
    g.edge("score", after_score)


STRATEGY = Strategy(
    "got", "graph of thoughts: generate, score, aggregate the best, refine, keep the best", Config, build
)
