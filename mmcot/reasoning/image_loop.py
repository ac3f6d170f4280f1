"""image-loop: images inside the chain of thought. The model reasons and, mid-reasoning, calls image tools (zoom,
crop, ...); each result (a new image with its id) goes back into the conversation, the model looks at it and goes
on, until it answers or ``max_turns`` is reached. The loop is the controller's model step and tool step.

    mmcot solve --image scene.png --question "What color is the small triangle?" --strategy image-loop
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mmcot.agent.graph import Builder, Strategy
from mmcot.agent.nodes import after_model, model_step, tool_step


@dataclass
class Config:
    tools: str = field(default="zoom,crop", metadata={"help": "comma-separated tools the model may call"})
    max_turns: int = field(default=6, metadata={"help": "model turns at most (tool calls stop after this)"})
    think: bool = field(default=True, metadata={"help": "start each turn with <think>"})
    max_tokens: int = field(default=256, metadata={"help": "tokens per model turn"})
    temperature: float = field(default=0.0, metadata={"help": "sampling temperature (0: greedy)"})
    system: str = field(default="", metadata={"help": "system prompt placed before the tool list"})

    def __post_init__(self) -> None:
        if self.max_turns < 1:
            raise ValueError(f"max_turns must be at least 1, got {self.max_turns}")


def build(g: Builder) -> None:
    g.node("model", model_step)
    g.node("tools", tool_step)
    g.edge("start", "model")
    g.edge("model", after_model)
    g.edge("tools", "model")


STRATEGY = Strategy("image-loop", "call image tools mid-reasoning and look at their results", Config, build)
