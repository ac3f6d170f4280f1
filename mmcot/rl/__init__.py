"""RL fine-tuning on TRL: rewards, GRPO with multi-turn tool rollouts, DPO from self-sampled pairs, and a process
reward model (``mmcot train grpo|dpo|prm --config recipes/NAME.yaml``).

:data:`REWARDS` maps a reward name to a function in TRL's signature ``(completions, **columns) -> list[float |
None]`` (or to a class that builds one from the job's options, e.g. the learned PRM). A dotted path
``pkg.mod:fn`` to a user's function works as a name too::

    rewards: [outcome, format, my_pkg.rewards:brevity]   # in a recipe
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

REWARDS: dict[str, str] = {
    "outcome": "mmcot.rl.rewards:outcome_reward",
    "format": "mmcot.rl.rewards:format_reward",
    "length": "mmcot.rl.rewards:length_penalty",
    "tool_bonus": "mmcot.rl.rewards:tool_bonus",
    "steps": "mmcot.rl.process:step_check_reward",
    "crop_iou": "mmcot.rl.process:crop_iou_reward",
    "prm": "mmcot.rl.prm:PRMReward",
}


def resolve_reward(name: str, **options: Any) -> Callable[..., list[float | None]]:
    """The reward function ``name`` (a registered name or ``pkg.mod:fn``). A class is instantiated with the
    ``options`` its constructor takes (e.g. ``prm_model``). Raises ValueError naming what is wrong."""
    path = REWARDS.get(name, name)
    module_name, sep, attr = path.partition(":")
    if not sep:
        raise ValueError(f"unknown reward {name!r}; known: {', '.join(REWARDS)} (or a dotted path pkg.mod:fn)")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot load reward {name!r}: {e}") from None
    if isinstance(obj, type):
        params = inspect.signature(obj).parameters
        obj = obj(**{k: v for k, v in options.items() if k in params})
    if not callable(obj):
        raise ValueError(f"reward {name!r} is not callable")
    return obj
