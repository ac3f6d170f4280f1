"""react: ReAct (Yao et al., 2023), reasoning interleaved with actions. The model thinks, calls Python (a sandboxed
Jupyter kernel that keeps its state across calls) or search, reads the observation and goes on until it answers.
Same loop as image-loop with other tools: the thought is the ``<think>`` block, the action a ``<tool_call>``, the
observation the tool's message (the format the model was fine-tuned on, so no extra instructions are needed).

    mmcot solve --image chart.png --question "What is the sum of the bar heights?" --strategy react
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mmcot.agent.graph import Strategy
from mmcot.reasoning import image_loop


@dataclass
class Config(image_loop.Config):
    tools: str = field(default="python,search", metadata={"help": "comma-separated tools the model may call"})
    max_turns: int = field(default=8, metadata={"help": "model turns at most (tool calls stop after this)"})


STRATEGY = Strategy("react", "ReAct: think, call python or search, observe, repeat, answer", Config, image_loop.build)
