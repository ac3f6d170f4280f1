"""Scoring candidates for best-of-N, tree of thoughts and graph of thoughts: the model judges them itself, or an
external verifier does (rl's process reward model once trained: ``--verifier mmcot.rl.prm:Verifier``).

A verifier is anything with the signature ``(images, question, candidates) -> list[float]``: the conversation's
images (PIL), the question text, and complete or partial model outputs (``<think>...``); scores are in [0, 1], higher
is better. A dotted path ``pkg.mod:obj`` names one; a class is instantiated once with no arguments.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from mmcot.agent.nodes import Step
from mmcot.agent.state import State
from mmcot.reasoning import prompts

Verifier = Callable[[list, str, list[str]], list[float]]
_loaded: dict[str, Verifier] = {}


def load_verifier(spec: str) -> Verifier | None:
    """None for "self" (the model judges); else the callable a dotted path names. Raises ValueError if it can't."""
    if spec in ("", "self"):
        return None
    if spec not in _loaded:
        module, _, attr = spec.partition(":")
        try:
            obj = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError, ValueError) as e:
            raise ValueError(f"cannot load verifier {spec!r} (expected 'self' or pkg.mod:obj): {e}") from None
        try:
            _loaded[spec] = obj() if isinstance(obj, type) else obj
        except Exception as e:  # noqa: BLE001 - a verifier that cannot start (no trained folder, a bad file)
            raise ValueError(f"verifier {spec!r} could not start: {e}") from None
    return _loaded[spec]


def score(state: State, step: Step, candidates: list[str], parents: list[int], spec: str, samples: int) -> list[float]:
    """Score ``candidates`` (texts) and add one score node under each parent. The model judge asks, per candidate,
    whether it is correct (one batched call; ``samples`` > 1 samples that many verdicts and takes the yes rate)."""
    verifier = load_verifier(spec)
    if verifier is not None:
        images = [step.image(i) for i in step.user_images()]
        scores = [float(s) for s in verifier(images, state["question"], candidates)]
        if len(scores) != len(candidates):
            raise ValueError(f"verifier {spec} returned {len(scores)} scores for {len(candidates)} candidates")
        how = spec
    elif candidates:
        messages = step.render(state["messages"])
        temperature = 0.0 if samples == 1 else 0.7
        reqs = [
            prompts.request(prompts.judge_messages(messages, state["question"], c), 4, temperature, n=samples)
            for c in candidates
        ]
        scores = [prompts.yes_score([c.text for c in cs]) for cs in step.generate(reqs)]
        how = "self"
    else:
        scores = []
    for s, parent in zip(scores, parents, strict=True):
        step.node("score", f"{s:.2f}", parents=[parent], score=s, meta={"by": how})
    return scores
