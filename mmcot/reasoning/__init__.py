"""Reasoning strategies, registered by name. Each is one file with a config dataclass of its knobs and a graph
that the controller (``mmcot.agent``) runs; all return the same ``Trace``.

    from mmcot.reasoning import STRATEGIES, get_strategy
    mmcot strategies                      # names, descriptions and knobs

A dotted path ``pkg.mod:STRATEGY`` (an ``mmcot.agent.graph.Strategy``) works wherever a name does.
"""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing
from typing import Any

from mmcot.agent.graph import Strategy
from mmcot.reasoning import (
    best_of_n,
    cot,
    describe,
    direct,
    got,
    image_loop,
    react,
    region_search,
    self_consistency,
    staged,
    tot,
)

STRATEGIES: dict[str, Strategy] = {
    m.STRATEGY.name: m.STRATEGY
    for m in (
        direct, cot, describe, staged, self_consistency, best_of_n, tot, got, image_loop, region_search, react,
    )
}  # fmt: skip


def get_strategy(name: str) -> Strategy:
    """A registered strategy, or one named by a dotted path ``pkg.mod:obj``. Raises ValueError naming the problem."""
    if name in STRATEGIES:
        return STRATEGIES[name]
    if ":" not in name:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)} (or a dotted path pkg.mod:obj)")
    module, _, attr = name.partition(":")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as e:
        raise ValueError(f"cannot load strategy {name!r}: {e}") from None
    if not isinstance(obj, Strategy):
        raise ValueError(f"{name!r} is a {type(obj).__name__}, not an mmcot.agent.graph.Strategy")
    return obj


def knobs(strategy: Strategy) -> list[tuple[str, Any, str]]:
    """(name, default, help) of each knob."""
    return [(f.name, f.default, f.metadata.get("help", "")) for f in dataclasses.fields(strategy.config)]


def make_config(strategy: Strategy, values: dict[str, Any]) -> Any:
    """The strategy's config from knob values (strings from the command line are converted to the field's type).
    Raises ValueError for an unknown knob or a bad value."""
    fields = {f.name: f for f in dataclasses.fields(strategy.config)}
    kwargs = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in fields:
            known = ", ".join(fields) or "none"
            raise ValueError(f"unknown knob {key!r} for strategy {strategy.name}; its knobs: {known}")
        kwargs[name] = _convert(value, typing.get_type_hints(strategy.config)[name], key)
    try:
        return strategy.config(**kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"bad knobs for strategy {strategy.name}: {e}") from None


def _convert(value: Any, hint: Any, key: str) -> Any:
    if not isinstance(value, str):
        return value
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value.lower() in ("none", "null", ""):
            return None
        hint = args[0]
    try:
        if hint is bool:
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        return hint(value)
    except ValueError:
        raise ValueError(f"knob {key!r} expects {getattr(hint, '__name__', hint)}, got {value!r}") from None


def parse_knobs(args: list[str]) -> dict[str, str]:
    """``["--breadth", "4", "--value=rollout", "--think", "false"]`` -> ``{"breadth": "4", ...}``; a flag alone
    means true. Raises ValueError for anything that is not ``--name [value]``."""
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise ValueError(f"unexpected argument {arg!r}; strategy knobs look like --name value")
        name, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                value, i = args[i + 1], i + 1
            else:
                value = "true"
        out[name] = value
        i += 1
    return out
