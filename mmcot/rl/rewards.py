"""Outcome and shaping rewards for GRPO, in TRL's signature ``(completions, **columns) -> list[float | None]``.

A completion is what TRL hands a reward function: a string, or (for chat prompts) the list of messages the policy
produced, assistant turns interleaved with the tool results of a multi-turn rollout. Dataset columns (``answer``,
``choices``, ``metadata``, ``id``...) arrive as keyword lists, one value per completion. ``None`` means "does not
apply" (TRL leaves it out of the mean). Use them by name in a recipe (``rewards: [outcome, format]``, see
:data:`mmcot.rl.REWARDS`) or pass them to ``GRPOTrainer(reward_funcs=...)`` directly.

The outcome reward is :func:`mmcot.evals.score.score`: training and evaluation share one definition of correct.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mmcot.evals.score import score

Completion = str | list[dict[str, Any]]

_THINK = re.compile(r"<think>(.*?)</think>", re.S)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)
_TOOL_BLOCK = re.compile(r"<tool_call>.*?(?:</tool_call>|$)", re.S)


def content_text(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a content list."""
    if isinstance(content, str):
        return content
    return "".join(p.get("text") or "" for p in content or [] if isinstance(p, dict) and p.get("type") == "text")


def assistant_turns(completion: Completion) -> list[str]:
    """The texts the model wrote, one per assistant turn (a plain string is one turn)."""
    if isinstance(completion, str):
        return [completion]
    return [content_text(m.get("content")) for m in completion if m.get("role") == "assistant"]


def assistant_text(completion: Completion) -> str:
    """All the model's own text in a completion, turns joined by newlines; tool results are left out.

    >>> assistant_text([{"role": "assistant", "content": "a"}, {"role": "tool", "content": "b"},
    ...                 {"role": "assistant", "content": "c"}])
    'a\\nc'
    """
    return "\n".join(assistant_turns(completion))


def tool_messages(completion: Completion) -> list[dict[str, Any]]:
    """The tool-result messages of a multi-turn completion (none for a string)."""
    return [] if isinstance(completion, str) else [m for m in completion if m.get("role") == "tool"]


def as_dict(value: Any) -> dict[str, Any]:
    """A metadata column value as a dict: datasets keep it as a JSON string so rows of any shape fit one column."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value:
        try:
            loaded = json.loads(value)
        except json.JSONDecodeError:
            return {}
        return loaded if isinstance(loaded, dict) else {}
    return {}


def _column(kwargs: dict[str, Any], name: str, n: int) -> list[Any]:
    value = kwargs.get(name)
    return list(value) if isinstance(value, (list, tuple)) else [value] * n


def outcome_reward(completions: list[Completion], answer: list[str], **kwargs: Any) -> list[float | None]:
    """1.0 when the final answer is correct by :func:`mmcot.evals.score.score`, else 0.0.

    >>> outcome_reward(["<think>2 and 1</think><answer>three</answer>", "<answer>4</answer>"], answer=["3", "3"])
    [1.0, 0.0]
    >>> outcome_reward(["<answer>B</answer>"], answer=["square"], choices=[["circle", "square"]])
    [1.0]
    """
    choices = _column(kwargs, "choices", len(completions))
    return [score(assistant_text(c), a, ch or None) for c, a, ch in zip(completions, answer, choices, strict=True)]


def _well_formed_final(text: str) -> bool:
    """``<think>...</think>`` (optional when the prompt opened it) then one ``<answer>...</answer>`` that ends it."""
    text = text.strip()
    if "</think>" in text and not text.startswith("<think>"):
        text = "<think>" + text  # the generation prompt may have opened the think block
    think = _THINK.match(text)
    rest = text[think.end() :].strip() if think else text
    answers = _ANSWER.findall(rest)
    return (
        len(answers) == 1 and rest.startswith("<answer>") and rest.endswith("</answer>") and bool(answers[0].strip())
    )


def format_reward(completions: list[Completion], **kwargs: Any) -> list[float | None]:
    """Structure, in [0, 1]: half for a final turn of ``<think>...</think><answer>...</answer>``, half for tool calls
    that parse with the tool layer's :func:`~mmcot.tools.parse_tool_calls` and name a known tool (full when there
    are none). Text after a tool call in the same turn, or a tool call in the final turn, counts as malformed.

    >>> format_reward(["<think>two circles</think><answer>2</answer>", "2", "<answer>2</answer> and more"])
    [1.0, 0.5, 0.5]
    >>> format_reward([[{"role": "assistant", "content": '<tool_call>{"name": "crop", "arguments": '
    ...                  '{"image": "image_0", "box": [0, 0, 9, 9]}}</tool_call>'},
    ...                 {"role": "tool", "content": "image_1"},
    ...                 {"role": "assistant", "content": "<think>red</think><answer>red</answer>"}]])
    [1.0]
    >>> format_reward(['<think>x</think><tool_call>{"name": "crop", "arguments": </tool_call>'])
    [0.0]
    """
    rewards = []
    for completion in completions:
        turns = assistant_turns(completion)
        final = turns[-1] if turns else ""
        structure = 0.5 if "<tool_call>" not in final and _well_formed_final(final) else 0.0
        calls_ok = all(_tool_turn_ok(t) for t in turns[:-1]) and ("<tool_call>" not in final or _tool_turn_ok(final))
        rewards.append(structure + (0.5 if calls_ok else 0.0))
    return rewards


def _tool_turn_ok(turn: str) -> bool:
    """A turn that calls tools: every call parses and names a registered tool, nothing follows the last call."""
    from mmcot.tools import TOOLS, parse_tool_calls

    calls, errors = parse_tool_calls(turn)
    if errors or not calls:
        return False
    if any(call.name not in TOOLS for call in calls):
        return False
    last = list(_TOOL_BLOCK.finditer(turn))[-1]
    return not turn[last.end() :].strip()


def length_penalty(completions: list[Completion], answer: list[str], **kwargs: Any) -> list[float | None]:
    """Kimi k1.5's length reward, relative to the other samples of the same prompt (grouped by the ``id`` column,
    else by the prompt): ``lam = 0.5 - (len - min_len) / (max_len - min_len)``; a correct answer gets ``lam``, a
    wrong one ``min(0, lam)``. Length is the model's own text in characters (tool results do not count); a group
    whose lengths are all equal gets 0.

    >>> length_penalty(["<answer>3</answer>", "<think>1, 2, 3</think><answer>3</answer>", "<answer>4</answer>"],
    ...                answer=["3"] * 3, id=["a"] * 3)
    [0.5, -0.5, 0.0]
    """
    n = len(completions)
    groups = _column(kwargs, "id", n)
    if all(g is None for g in groups):
        groups = [json.dumps(p, default=str) for p in _column(kwargs, "prompts", n)]
    correct = outcome_reward(completions, answer, **kwargs)
    lengths = [len(assistant_text(c)) for c in completions]
    rewards: list[float | None] = []
    for i in range(n):
        peers = [lengths[j] for j in range(n) if groups[j] == groups[i]]
        lo, hi = min(peers), max(peers)
        lam = 0.0 if hi == lo else 0.5 - (lengths[i] - lo) / (hi - lo)
        rewards.append(lam if correct[i] else min(0.0, lam))
    return rewards


def tool_bonus(completions: list[Completion], answer: list[str], **kwargs: Any) -> list[float | None]:
    """1.0 for a completion that called a tool successfully *and* answered correctly, else 0.0. Paying for tool use
    alone makes it explode, and paying nothing lets it collapse (DeepEyes): the bonus goes only to tool use that
    ended in a right answer.

    >>> calls = [{"role": "assistant", "content": '<tool_call>{"name": "zoom", "arguments": {}}</tool_call>'},
    ...          {"role": "tool", "content": "image_1"}, {"role": "assistant", "content": "<answer>red</answer>"}]
    >>> tool_bonus([calls, calls, "<answer>red</answer>"], answer=["red", "blue", "red"])
    [1.0, 0.0, 0.0]
    """
    correct = outcome_reward(completions, answer, **kwargs)
    return [
        float(ok == 1.0 and any(not _is_error(m) for m in tool_messages(c)))
        for c, ok in zip(completions, correct, strict=True)
    ]


def _is_error(message: dict[str, Any]) -> bool:
    return bool(message.get("error")) or content_text(message.get("content")).lstrip().lower().startswith("error")
