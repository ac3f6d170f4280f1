"""staged: a fixed procedure inside the reasoning, identify -> locate -> relate -> answer (defined procedure staging
in the MCoT taxonomy). Each stage opens with a cue the controller writes into the model's ``<think>`` block and is
one model step (one line); the answer follows the last stage. The stages share the conversation's prefill.

    mmcot solve --image scene.png --question "Is the red circle left of the square?" --strategy staged
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mmcot.agent.graph import Builder, Strategy
from mmcot.agent.nodes import Step
from mmcot.agent.state import Context, State
from mmcot.reasoning import prompts


@dataclass
class Config:
    stages: str = field(default="identify,locate,relate", metadata={"help": "comma-separated stages, in order"})
    stage_tokens: int = field(default=96, metadata={"help": "tokens per stage"})
    max_tokens: int = field(default=32, metadata={"help": "tokens for the answer"})

    def __post_init__(self) -> None:
        unknown = [s for s in self.names if s not in prompts.STAGES]
        if unknown or not self.names:
            raise ValueError(f"unknown stage(s) {unknown or self.stages!r}; stages are {', '.join(prompts.STAGES)}")

    @property
    def names(self) -> list[str]:
        return [s.strip() for s in self.stages.split(",") if s.strip()]


def stage(state: State, step: Step) -> dict:
    cfg: Config = step.config
    work = state.get("work") or {}
    k = work.get("stage", 0)
    name = cfg.names[k]
    cue = prompts.STAGES[name]
    done = work.get("text", "")
    req = prompts.request(
        step.render(state["messages"]),
        cfg.stage_tokens,
        prefix=prompts.THINK + done + cue + " ",
        stop=["\n", prompts.END_THINK],
    )
    (c,) = step.generate([req], stream=True)[0]
    line = f"{cue} {c.text.strip()}"
    parent = work.get("node")
    node = step.node(
        "thought",
        line,
        parents=[parent] if parent is not None else None,
        tokens=c.completion_tokens,
        meta={"stage": name},
    )
    return {"work": {"stage": k + 1, "text": done + line + "\n", "node": node}}


def answer(state: State, step: Step) -> dict:
    cfg: Config = step.config
    work = state["work"]
    prefix = prompts.THINK + work["text"] + prompts.END_THINK + prompts.ANSWER
    req = prompts.request(step.render(state["messages"]), cfg.max_tokens, prefix=prefix, stop=["</answer>"])
    (c,) = step.generate([req], stream=True)[0]
    reply = prefix + c.text.strip() + "</answer>"
    step.node(
        "thought",
        prompts.ANSWER + c.text.strip() + "</answer>",
        parents=[work["node"]],
        tokens=c.completion_tokens,
        meta={"stage": "answer"},
    )
    return {"answer": prompts.answer_of(reply), "reply": reply}


def next_stage(state: State, ctx: Context) -> str:
    return "stage" if state["work"]["stage"] < len(ctx.config.names) else "answer"


def build(g: Builder) -> None:
    g.node("stage", stage)
    g.node("answer", answer)
    g.edge("start", "stage")
    g.edge("stage", next_stage)
    g.edge("answer", "finish")


STRATEGY = Strategy(
    "staged", "a fixed procedure in the reasoning: identify, locate, relate, then answer", Config, build
)
