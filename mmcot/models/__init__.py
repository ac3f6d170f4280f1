"""Models: the LLaVA-style presets and their training stages (``mmcot train``), checkpoints, and the backends.

``PRESETS`` maps a preset name to the dotted path of its :class:`mmcot.models.presets.Preset`; a dotted path
``pkg.mod:obj`` to a user's own Preset works as a name too. ``load_model`` (in ``mmcot.models.load``) turns a model
spec into ``(model, processor)``; ``load_backend`` (in ``mmcot.models.backend``) into a generating backend.
"""

from __future__ import annotations

import importlib

PRESETS: dict[str, str] = {
    "tiny": "mmcot.models.presets:TINY",
    "smol": "mmcot.models.presets:SMOL",
}


def get_preset(name: str):
    """The Preset registered as ``name``, or the object at a dotted path ``pkg.mod:obj``."""
    path = PRESETS.get(name, name)
    if ":" not in path:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)} (or a dotted path pkg.mod:obj)")
    module, _, attr = path.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot load preset {name!r}: {e}") from None
