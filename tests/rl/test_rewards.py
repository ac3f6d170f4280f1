"""Rewards: their doctests, the registry, and the rewards on real puzzle items and real tool results."""

import doctest
import json

import pytest


@pytest.mark.parametrize("module", ["mmcot.rl.rewards", "mmcot.rl.process", "mmcot.rl.dpo", "mmcot.rl.prm"])
def test_doctests(module):
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


def test_registry_names_and_dotted_paths():
    from mmcot.rl import REWARDS, resolve_reward

    for name in REWARDS:
        if name != "prm":  # needs a trained PRM folder; tested in test_prm
            assert callable(resolve_reward(name))
    assert resolve_reward("mmcot.rl.rewards:outcome_reward")(["<answer>2</answer>"], answer=["two"]) == [1.0]
    with pytest.raises(ValueError, match="unknown reward 'nope'"):
        resolve_reward("nope")
    with pytest.raises(ValueError, match="cannot load reward"):
        resolve_reward("mmcot.rl.rewards:missing")


def test_outcome_is_the_eval_scorer(items):
    """Training and evaluation share one definition of correct: the reward is score() on every item."""
    from mmcot.evals.score import score
    from mmcot.rl.rewards import outcome_reward

    for item in items:
        for text in (f"<think>x</think><answer>{item.answer}</answer>", "<answer>nonsense</answer>", item.answer):
            [r] = outcome_reward([text], answer=[item.answer], choices=[item.choices or []])
            assert r == score(text, item.answer, item.choices)


def test_format_rewards_tool_calls_that_parse():
    from mmcot.rl.rewards import format_reward

    good = '<tool_call>\n{"name": "zoom", "arguments": {"box": [0, 0, 10, 10]}}\n</tool_call>'
    bad_args = '<tool_call>\n{"name": "zoom", "arguments": {"box": "left"}}\n</tool_call>'
    final = {"role": "assistant", "content": "seen</think><answer>red</answer>"}  # prompt opened <think>
    tool = {"role": "tool", "content": "image_1"}
    assert format_reward([[{"role": "assistant", "content": good}, tool, final]]) == [1.0]
    assert format_reward([[{"role": "assistant", "content": bad_args}, tool, final]]) == [0.5]
    assert format_reward([[{"role": "assistant", "content": good + " chatter"}, tool, final]]) == [0.5]
    assert format_reward(["<think>a</think><answer></answer>"]) == [0.5]  # an empty answer is not an answer


def test_step_checks_on_a_count_puzzle(items):
    """The puzzle's own rationale passes every check; the same steps with a wrong count do not."""
    from mmcot.rl.process import step_check_reward

    item = next(i for i in items if i.category == "count")
    meta = json.dumps(item.metadata)
    right = "<think>" + "\n".join(item.rationale) + f"</think><answer>{item.answer}</answer>"
    wrong_total = right.replace(f"That makes {item.answer}.", f"That makes {int(item.answer) + 1}.")
    [r_right, r_wrong] = step_check_reward([right, wrong_total], [meta, meta])
    assert r_right == 1.0
    assert r_wrong < 1.0


def test_crop_iou_from_real_zoom_results(items):
    """Zoom into the small-object puzzle's target region with the real tool: the reward reads the tool result."""
    from mmcot.rl.process import crop_iou_reward
    from mmcot.tools import ToolContext, parse_tool_calls, run_tool_call, tool_message

    item = next(i for i in items if i.category == "small_object" and i.metadata["query"].get("target") is not None)
    box = item.metadata["query"]["zoom_box"]
    ctx = ToolContext(images={"image_0": item.images[0]})
    completions = []
    for b in (box, [0, 0, 20, 20]):
        text = f'<tool_call>{{"name": "zoom", "arguments": {{"image": "image_0", "box": {b}}}}}</tool_call>'
        calls, errors = parse_tool_calls(text)
        assert not errors
        message = tool_message(run_tool_call(calls[0], ctx), calls[0])
        completions.append([{"role": "assistant", "content": text}, message, {"role": "assistant", "content": "x"}])
    meta = json.dumps(item.metadata)
    on_target, off_target = crop_iou_reward(completions, [meta, meta])
    assert on_target == pytest.approx(1.0)
    assert off_target == 0.0


def test_tool_bonus_only_with_a_right_answer():
    from mmcot.rl.rewards import tool_bonus

    call = {"role": "assistant", "content": '<tool_call>{"name": "zoom", "arguments": {}}</tool_call>'}
    ok = {"role": "tool", "content": [{"type": "text", "text": "image_1 (9x9): zoom"}], "error": None}
    failed = {"role": "tool", "content": [{"type": "text", "text": "error: no box"}], "error": "no box"}
    answer = {"role": "assistant", "content": "<answer>red</answer>"}
    assert tool_bonus(
        [[call, ok, answer], [call, failed, answer], [call, ok, answer]], answer=["red", "red", "blue"]
    ) == [
        1.0,
        0.0,
        0.0,
    ]


def test_length_penalty_is_relative_to_the_group():
    from mmcot.rl.rewards import length_penalty

    short, long = "<answer>3</answer>", "<think>" + "counting " * 20 + "</think><answer>3</answer>"
    rewards = length_penalty([short, long, short, long], answer=["3"] * 4, id=["a", "a", "b", "b"])
    assert rewards == [0.5, -0.5, 0.5, -0.5]
    assert length_penalty([short, short], answer=["3", "3"], id=["a", "a"]) == [0.0, 0.0]
