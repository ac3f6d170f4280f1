"""self-consistency: sample N chains of thought and take the majority answer (Wang et al., 2022). The N samples are
one request with ``n=N``: the image is encoded and the prompt prefilled once, then the samples decode in one batch.
Answers are grouped the way the scorer compares them (``mmcot.evals.score.normalize``, choice letters).

    mmcot solve --image scene.png --question "How many circles are there?" --strategy self-consistency --n 8
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mmcot.agent.graph import Builder, Strategy
from mmcot.agent.nodes import Step
from mmcot.agent.state import State
from mmcot.reasoning import prompts


@dataclass
class Config:
    n: int = field(default=8, metadata={"help": "chains of thought sampled"})
    temperature: float = field(default=0.8, metadata={"help": "sampling temperature"})
    top_p: float = field(default=0.95, metadata={"help": "nucleus sampling"})
    think: bool = field(default=True, metadata={"help": "start each sample with <think>"})
    max_tokens: int = field(default=384, metadata={"help": "tokens per sample"})
    seed: int | None = field(default=None, metadata={"help": "sampling seed (None: random)"})

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be at least 1, got {self.n}")


def sample(state: State, step: Step) -> dict:
    """N samples in one request; their texts, answers and trace nodes go to ``work["candidates"]``."""
    cfg = step.config
    req = prompts.request(
        step.render(state["messages"]), cfg.max_tokens, cfg.temperature, n=cfg.n,
        prefix=prompts.think_prefix(cfg.think), top_p=cfg.top_p, seed=cfg.seed,
    )  # fmt: skip
    candidates = []
    for c in step.generate([req])[0]:
        text = req.prefix + c.text
        node = step.node("thought", text, tokens=c.completion_tokens)
        candidates.append({"text": text, "answer": prompts.answer_of(text), "node": node})
    answer, _ = prompts.vote([x["answer"] for x in candidates], state.get("choices"))
    reply = next((x["text"] for x in candidates if x["answer"] == answer), "")
    return {"work": {"candidates": candidates}, "answer": answer, "reply": reply}


def vote(state: State, step: Step) -> dict:
    candidates = state["work"]["candidates"]
    answer, tally = prompts.vote([x["answer"] for x in candidates], state.get("choices"))
    total = sum(tally.values()) or 1
    text = ", ".join(f"{k}: {v:g}" for k, v in sorted(tally.items(), key=lambda kv: -kv[1]))
    key = prompts.vote_key(answer, state.get("choices"))
    step.node(
        "score",
        f"vote {text} -> {answer!r}",
        parents=[x["node"] for x in candidates],
        score=tally.get(key, 0) / total,
        meta={"tally": tally},
    )
    return {}


def build(g: Builder) -> None:
    g.node("sample", sample)
    g.node("vote", vote)
    g.edge("start", "sample")
    g.edge("sample", "vote")
    g.edge("vote", "finish")


STRATEGY = Strategy("self-consistency", "sample N chains of thought, answer by majority vote", Config, build)
