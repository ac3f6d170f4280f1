"""The solver seam: what ``mmcot eval`` runs. A solver maps a batch of Items to one :class:`Outcome` each.

Baselines (``mmcot.evals.baselines``) are solvers, and so is :class:`ModelSolver`, which runs a reasoning strategy
over a model backend. ``--solver`` takes a name from :data:`mmcot.evals.SOLVERS` or a dotted path ``pkg.mod:fn``
to a factory ``fn(cfg: EvalConfig, items: list[Item]) -> Solver`` of your own. The harness calls a solver with one
item at a time from ``--batch-size`` threads (so each finished item is written at once and a slow one holds up no
other): a solver must be thread-safe. Raising marks that item failed; the run goes on::

    class Echo:
        name = "echo"
        info = {"uses": "nothing; answers each question with itself"}

        def __call__(self, items):
            return [Outcome(prediction=item.question) for item in items]

    def echo(cfg, items):
        return Echo()      # mmcot eval --suite --solver my_pkg.solvers:echo --out runs/echo
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from mmcot.evals.item import Item

if TYPE_CHECKING:
    from mmcot.evals.harness import EvalConfig
    from mmcot.models.backend import Backend
    from mmcot.reasoning.trace import Trace


@dataclass
class Outcome:
    """What a solver says about one item. ``seconds`` 0 means "let the harness time it"."""

    prediction: str
    trace: Trace | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_calls: int = 0
    tool_calls: int = 0
    seconds: float = 0.0


class Solver(Protocol):
    name: str
    info: dict[str, Any]  # what the solver uses, for summary.json and the report

    def __call__(self, items: list[Item]) -> list[Outcome]: ...


@dataclass
class ModelSolver:
    """A reasoning strategy over a model backend: ``mmcot.reasoning.solve.solve(item, strategy, backend, ...)``
    per item, its Trace turned into an Outcome. The harness calls it from ``batch_size`` threads at once, and the
    local backend merges their concurrent generate calls into batches."""

    backend: Backend
    strategy: str
    options: dict[str, Any] = field(default_factory=dict)  # passed to solve() as keyword arguments

    @property
    def name(self) -> str:
        return f"{self.strategy}@{getattr(self.backend, 'name', type(self.backend).__name__)}"

    @property
    def info(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "model": getattr(self.backend, "name", ""), "options": self.options}

    def __call__(self, items: list[Item]) -> list[Outcome]:
        from mmcot.reasoning.solve import solve

        outcomes = []
        for item in items:
            start = time.perf_counter()
            trace = solve(item, strategy=self.strategy, backend=self.backend, **self.options)
            outcomes.append(from_trace(trace, time.perf_counter() - start))
        return outcomes

    def close(self) -> None:
        """Release the backend (the local backend's batching thread)."""
        getattr(self.backend, "close", lambda: None)()


def from_trace(trace: Trace, seconds: float = 0.0) -> Outcome:
    """An Outcome carrying ``trace`` and its counters; ``seconds`` is used when the trace did not time itself."""
    return Outcome(
        prediction=trace.answer,
        trace=trace,
        prompt_tokens=trace.prompt_tokens,
        completion_tokens=trace.completion_tokens,
        model_calls=trace.model_calls,
        tool_calls=trace.tool_calls,
        seconds=trace.seconds or seconds,
    )


def build_solver(cfg: EvalConfig, items: list[Item]) -> Solver:
    """The solver ``cfg`` asks for: ``--model`` with ``--strategy``, else ``--solver`` (a registered name or a
    dotted path to a factory). Raises ValueError naming what is wrong."""
    if cfg.model:
        return ModelSolver(_backend(cfg.model), cfg.strategy, checked_options(cfg.strategy, cfg.strategy_options))
    from mmcot.evals import SOLVERS

    path = SOLVERS.get(cfg.solver, cfg.solver)
    module_name, sep, attr = path.partition(":")
    if not sep:
        raise ValueError(f"unknown solver {cfg.solver!r}; known: {', '.join(SOLVERS)} (or a dotted path pkg.mod:fn)")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot load solver {cfg.solver!r}: {e}") from None
    try:
        return factory(cfg, items)
    except Exception as e:  # noqa: BLE001 - user code: say which solver failed, and how
        raise ValueError(f"solver {cfg.solver!r} could not be built: {type(e).__name__}: {e}") from None


def checked_options(strategy: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` for ``solve()`` after checking, before any item runs, that the strategy exists and takes them
    (its knobs, or solve's own arguments such as ``budget``). Raises ValueError naming the problem."""
    import inspect

    from mmcot.reasoning import get_strategy, make_config
    from mmcot.reasoning.solve import solve

    taken = {"problem", "question", "strategy", "model", "backend"} & set(options)
    if taken:
        raise ValueError(f"--option cannot set {', '.join(sorted(taken))}: eval sets them (use --model, --strategy)")
    own = set(inspect.signature(solve).parameters)
    make_config(get_strategy(strategy), {k: v for k, v in options.items() if k not in own})
    return dict(options)


def _backend(spec: str) -> Backend:
    from mmcot.models.backend import load_backend

    try:
        return load_backend(spec)
    except (RuntimeError, ValueError, OSError, ImportError) as e:
        raise ValueError(f"cannot load model {spec!r}: {e}") from None
