"""direct: answer at once, without reasoning. The baseline the other strategies are measured against.

mmcot solve --image scene.png --question "How many circles are there?" --strategy direct
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mmcot.agent.graph import Builder, Strategy
from mmcot.agent.nodes import Step
from mmcot.agent.state import State
from mmcot.reasoning import prompts


@dataclass
class Config:
    max_tokens: int = field(default=32, metadata={"help": "tokens for the answer"})


def ask(state: State, step: Step) -> dict:
    cfg: Config = step.config
    messages = prompts.direct_messages(step.render(state["messages"]))
    (c,) = step.generate([prompts.request(messages, cfg.max_tokens)], stream=True)[0]
    step.node("thought", c.text, tokens=c.completion_tokens)
    return {"answer": prompts.answer_of(c.text), "reply": c.text}


def build(g: Builder) -> None:
    g.node("ask", ask)
    g.edge("start", "ask")
    g.edge("ask", "finish")


STRATEGY = Strategy("direct", "answer at once, without reasoning (one short model call)", Config, build)
