"""mmcot: multimodal chain-of-thought reasoning with a locally trained LLaVA-style model, tools and RL.

Heavy modules load lazily, so ``import mmcot`` and ``mmcot --help`` are instant.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "solve":
        from mmcot.reasoning.solve import solve

        return solve
    raise AttributeError(f"module 'mmcot' has no attribute {name!r}")
