"""cot: prompted chain of thought. The model reasons in ``<think>...</think>`` and then answers in
``<answer>...</answer>``; zero-shot by default, few-shot with ``--shots K`` (worked puzzle examples of the item's
family, rationale included, shown as earlier turns). A one-node trace.

    mmcot solve --image scene.png --question "How many circles are there?" --strategy cot --shots 2
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mmcot.agent.graph import Builder, Strategy
from mmcot.agent.nodes import Step, answer_now
from mmcot.agent.state import State
from mmcot.reasoning import prompts


@dataclass
class Config:
    shots: int = field(default=0, metadata={"help": "worked examples shown first (0: zero-shot)"})
    think: bool = field(default=True, metadata={"help": "start the reply with <think> (off: let the model choose)"})
    max_tokens: int = field(default=384, metadata={"help": "tokens for the reasoning and the answer"})
    temperature: float = field(default=0.0, metadata={"help": "sampling temperature (0: greedy)"})

    def __post_init__(self) -> None:
        if not 0 <= self.shots <= 8:
            raise ValueError(f"shots must be 0..8, got {self.shots}")


def think(state: State, step: Step) -> dict:
    cfg: Config = step.config
    messages = step.render(state["messages"])
    if cfg.shots:
        messages = prompts.few_shot(state.get("category", ""), cfg.shots) + messages
    req = prompts.request(messages, cfg.max_tokens, cfg.temperature, prefix=prompts.think_prefix(cfg.think))
    (c,) = step.generate([req], stream=True)[0]
    text, tokens, short, meta = answer_now(step, req, req.prefix + c.text, c.completion_tokens)
    step.node("thought", text, tokens=tokens, meta=meta)
    return {"answer": prompts.answer_of(text), "reply": text} | ({"stop_reason": short} if short else {})


def build(g: Builder) -> None:
    g.node("think", think)
    g.edge("start", "think")
    g.edge("think", "finish")


STRATEGY = Strategy("cot", "chain of thought: reason in <think>, then answer (zero- or few-shot)", Config, build)
