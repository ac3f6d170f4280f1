"""react: ReAct (Yao et al., 2023), reasoning interleaved with actions. The model thinks, calls Python (a sandboxed
Jupyter kernel that keeps its state across calls) or search, reads the observation and goes on until it answers.
Same loop as image-loop with other tools: the thought is the ``<think>`` block, the action a ``<tool_call>``, the
observation the tool's message (the format the model was fine-tuned on, so no extra instructions are needed).

    mmcot solve --image chart.png --question "What is the sum of the bar heights?" --strategy react
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mmcot.agent.graph import Builder, Strategy
from mmcot.agent.nodes import after_model, model_step, tool_step


@dataclass
class Config:
    tools: str = field(default="python,search", metadata={"help": "comma-separated tools the model may call"})
    max_turns: int = field(default=8, metadata={"help": "model turns at most (tool calls stop after this)"})
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


STRATEGY = Strategy("react", "ReAct: think, call python or search, observe, repeat, answer", Config, build)
