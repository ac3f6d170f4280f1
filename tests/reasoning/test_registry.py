"""The strategy registry, knobs from the command line, dotted paths, and the prompt helpers' doctests."""

import doctest

import pytest

from mmcot.reasoning import STRATEGIES, get_strategy, make_config, parse_knobs, prompts, region_search

NAMES = ["direct", "cot", "describe", "staged", "self-consistency", "best-of-n", "tot", "got", "image-loop",
         "region-search", "react"]  # fmt: skip


def test_the_registry_has_every_strategy_by_its_name():
    assert list(STRATEGIES) == NAMES
    for s in STRATEGIES.values():
        make_config(s, {})  # defaults are valid
        assert s.description


def test_knobs_from_the_command_line():
    knobs = parse_knobs(["--breadth", "3", "--value=rollout", "--prune", "-0.5", "--final", "vote"])
    cfg = make_config(get_strategy("tot"), knobs)
    assert (cfg.breadth, cfg.value, cfg.prune, cfg.final) == (3, "rollout", -0.5, "vote")
    cfg = make_config(get_strategy("self-consistency"), parse_knobs(["--think", "false", "--seed", "none"]))
    assert cfg.think is False and cfg.seed is None
    assert make_config(get_strategy("cot"), parse_knobs(["--think"])).think is True  # a bare flag is true
    assert make_config(get_strategy("describe"), {"keep-image": "no"}).keep_image is False


@pytest.mark.parametrize(
    "args, message",
    [(["breadth"], "unexpected argument 'breadth'"), (["--"], "unexpected argument '--'")],
)
def test_bad_knob_syntax(args, message):
    with pytest.raises(ValueError, match=message):
        parse_knobs(args)


def test_bad_knob_values():
    with pytest.raises(ValueError, match="knob 'think' expects bool"):
        make_config(get_strategy("cot"), {"think": "maybe"})
    with pytest.raises(ValueError, match="unknown stage"):
        make_config(get_strategy("staged"), {"stages": "identify,dream"})
    with pytest.raises(ValueError, match="final must be 'best' or 'vote'"):
        make_config(get_strategy("tot"), {"final": "mean"})


def test_a_strategy_by_dotted_path():
    assert get_strategy("mmcot.reasoning.cot:STRATEGY") is STRATEGIES["cot"]
    with pytest.raises(ValueError, match="not an mmcot.agent.graph.Strategy"):
        get_strategy("mmcot.reasoning.cot:Config")
    with pytest.raises(ValueError, match="cannot load strategy"):
        get_strategy("mmcot.reasoning.nothing:STRATEGY")


@pytest.mark.parametrize("module", [prompts, region_search])
def test_doctests(module):
    assert doctest.testmod(module).failed == 0


def test_votes_group_answers_as_the_scorer_does():
    assert prompts.vote(["two", "2", "3"], None) == ("two", {"2": 2.0, "3": 1.0})
    assert prompts.vote(["A", "circle", "square"], ["circle", "square"])[0] == "A"
    assert prompts.vote(["", ""], None) == ("", {})
    assert prompts.vote(["4", "5"], None, weights=[0.2, 0.9])[0] == "5"
