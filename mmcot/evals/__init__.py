"""Evaluation: the Item type and its one scorer, data loaders, solvers (baselines or a model with a strategy), the
harness that runs them (``mmcot eval``) and its reports (``mmcot eval compare``). The puzzles live in ``puzzles/``.

``SOLVERS`` maps a ``--solver`` name to a factory ``pkg.mod:fn`` with ``fn(cfg, items) -> Solver``; ``--solver``
also takes such a dotted path to your own (see ``mmcot.evals.solvers``).
"""

SOLVERS: dict[str, str] = {
    "random": "mmcot.evals.baselines:random_solver",
    "majority": "mmcot.evals.baselines:majority_solver",
}
