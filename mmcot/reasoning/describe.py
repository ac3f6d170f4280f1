"""describe: perception first, then reasoning. The model describes the image, then reasons over its own
description to answer (asynchronous modality modeling in the MCoT taxonomy). With ``--keep-image false`` the
second step sees only the description, which shows how much the answer rests on what was perceived.

    mmcot solve --image scene.png --question "Which shape is leftmost?" --strategy describe
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mmcot.agent.graph import Builder, Strategy
from mmcot.agent.nodes import Step
from mmcot.agent.state import State
from mmcot.reasoning import prompts


@dataclass
class Config:
    keep_image: bool = field(default=True, metadata={"help": "show the image again in the reasoning step"})
    think: bool = field(default=True, metadata={"help": "reason in <think> before answering"})
    describe_tokens: int = field(default=192, metadata={"help": "tokens for the description"})
    max_tokens: int = field(default=384, metadata={"help": "tokens for the reasoning and the answer"})


def describe(state: State, step: Step) -> dict:
    cfg: Config = step.config
    messages = prompts.with_question(step.render(state["messages"]), prompts.DESCRIBE)
    (c,) = step.generate([prompts.request(messages, cfg.describe_tokens)], stream=True)[0]
    node = step.node("thought", c.text, tokens=c.completion_tokens, meta={"role": "description"})
    return {"work": {"description": c.text.strip(), "node": node}}


def reason(state: State, step: Step) -> dict:
    cfg: Config = step.config
    work = state["work"]
    text = prompts.FROM_DESCRIPTION.format(description=work["description"], question=state["question"])
    messages = prompts.with_question(step.render(state["messages"]), text)
    if not cfg.keep_image:
        messages = prompts.without_images(messages)
    req = prompts.request(messages, cfg.max_tokens, prefix=prompts.think_prefix(cfg.think))
    (c,) = step.generate([req], stream=True)[0]
    reply = req.prefix + c.text
    step.node("thought", reply, parents=[work["node"]], tokens=c.completion_tokens)
    return {"answer": prompts.answer_of(reply), "reply": reply}


def build(g: Builder) -> None:
    g.node("describe", describe)
    g.node("reason", reason)
    g.edge("start", "describe")
    g.edge("describe", "reason")
    g.edge("reason", "finish")


STRATEGY = Strategy("describe", "describe the image first, then reason over the description", Config, build)
