"""best-of-n: sample N chains of thought and keep the one a verifier scores highest. The verifier is the model's own
judgement by default (asked, per candidate, whether it is correct) or an external scorer by dotted path (rl's
process reward model). Ties between equally scored candidates go to the majority answer among them; ``final=vote``
instead lets every sample vote for its answer with its score (a verifier-weighted majority).

    mmcot solve --image scene.png --question "How many circles are there?" --strategy best-of-n --n 8
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mmcot.agent.graph import Builder, Strategy
from mmcot.agent.nodes import Step
from mmcot.agent.state import State
from mmcot.reasoning import prompts, verify
from mmcot.reasoning.self_consistency import sample


@dataclass
class Config:
    n: int = field(default=8, metadata={"help": "chains of thought sampled"})
    temperature: float = field(default=0.8, metadata={"help": "sampling temperature"})
    top_p: float = field(default=0.95, metadata={"help": "nucleus sampling"})
    think: bool = field(default=True, metadata={"help": "start each sample with <think>"})
    max_tokens: int = field(default=384, metadata={"help": "tokens per sample"})
    seed: int | None = field(default=None, metadata={"help": "sampling seed (None: random)"})
    verifier: str = field(default="self", metadata={"help": "'self' (the model judges) or pkg.mod:obj"})
    judge_samples: int = field(default=1, metadata={"help": "verdicts sampled per candidate by the model judge"})
    final: str = field(default="best", metadata={"help": "'best' (top-scored sample) or 'vote' (score-weighted)"})

    def __post_init__(self) -> None:
        if self.n < 1 or self.judge_samples < 1:
            raise ValueError("n and judge_samples must be at least 1")
        if self.final not in ("best", "vote"):
            raise ValueError(f"final must be 'best' or 'vote', got {self.final!r}")
        verify.load_verifier(self.verifier)  # fail early on a bad dotted path


def judge(state: State, step: Step) -> dict:
    cfg: Config = step.config
    candidates = state["work"]["candidates"]
    scores = verify.score(
        state, step, [x["text"] for x in candidates], [x["node"] for x in candidates], cfg.verifier, cfg.judge_samples
    )
    if cfg.final == "vote":  # every sample votes for its answer with its score (weighted majority)
        best = candidates
        answer, _ = prompts.vote([x["answer"] for x in candidates], state.get("choices"), scores)
    else:
        top = max(scores)
        best = [x for x, s in zip(candidates, scores, strict=True) if s == top]
        answer, _ = prompts.vote([x["answer"] for x in best], state.get("choices"))
    reply = next(x["text"] for x in best if x["answer"] == answer) if answer else best[0]["text"]
    return {"answer": answer, "reply": reply}


def build(g: Builder) -> None:
    g.node("sample", sample)
    g.node("judge", judge)
    g.edge("start", "sample")
    g.edge("sample", "judge")
    g.edge("judge", "finish")


STRATEGY = Strategy("best-of-n", "sample N chains of thought, keep the one a verifier scores highest", Config, build)
