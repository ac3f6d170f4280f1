"""What the training stages (``mmcot train tokenizer|vision|align|sft|detector``) share: config parsing, CPU settings,
resuming, and the end-of-run summary.

A stage config is a dataclass extending transformers' ``TrainingArguments`` (vision) or TRL's ``SFTConfig``
(align, sft) with mmcot's fields. It is read the way TRL's scripts read theirs (``TrlParser``): a YAML recipe given as
``--config recipes/NAME.yaml``, then ``--field value`` overrides. ``--preset tiny|smol`` picks the model recipe. The
whole config is printed and saved as ``stage_config.json``; checkpoints go to ``output_dir/checkpoint-N`` every
``save_steps`` and running the same command again resumes from the last one. TensorBoard logs go to
``output_dir/runs``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


class StageError(RuntimeError):
    """A stage that cannot start (bad config, missing input); the message says what to fix."""


@dataclass
class StageArgs:
    """Fields every model-training stage adds to its trainer config."""

    preset: str = field(default="tiny", metadata={"help": "Model preset: tiny or smol (or a dotted path)."})
    resume: bool = field(default=True, metadata={"help": "Resume from the last checkpoint in output_dir if any."})


STAGES = {
    "tokenizer": ("mmcot.models.tokenizer", "TokenizerConfig"),
    "vision": ("mmcot.models.vision", "VisionConfig"),
    "align": ("mmcot.models.sft", "AlignConfig"),
    "sft": ("mmcot.models.sft", "SftConfig"),
    "detector": ("mmcot.models.detector", "DetectorConfig"),
}


def parse(cls: type, argv: list[str], prog: str) -> Any:
    """A ``cls`` config from ``--config recipe.yaml`` and ``--field value`` overrides. Raises StageError."""
    from trl import TrlParser

    if "--config" in argv:
        i = argv.index("--config")
        if i + 1 >= len(argv):
            raise StageError("--config needs a path to a YAML recipe")
        if not Path(argv[i + 1]).is_file():
            raise StageError(f"recipe {argv[i + 1]!r} does not exist")
    import yaml

    try:
        (cfg,) = TrlParser(cls, prog=prog).parse_args_and_config(argv)
    except yaml.YAMLError as e:
        raise StageError(f"the recipe (--config) is not valid YAML: {e}") from None
    except (ValueError, TypeError, OSError) as e:
        raise StageError(str(e)) from None
    return cfg


def cpu_defaults(cfg: Any) -> None:
    """Called before the trainer config's own ``__post_init__``. Without CUDA: the settings that make trainers run at full speed on a CPU (no bf16 autocast, no activation
    checkpointing; NOTES-stack measured them 4-5x slower here)."""
    import torch

    if torch.cuda.is_available():
        return
    cfg.use_cpu, cfg.bf16, cfg.fp16 = True, False, False
    cfg.activation_checkpointing = cfg.gradient_checkpointing = False


def log_config(cfg: Any, stage: str) -> dict:
    """Print the whole config and save it as ``output_dir/stage_config.json``; returns it as a dict."""
    data = {k: v for k, v in asdict(cfg).items() if not k.startswith("_")}
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"stage": stage, **data}, indent=2, default=str)
    (out / "stage_config.json").write_text(text + "\n")
    print(f"mmcot train {stage}: config\n{text}", flush=True)
    return data


def last_checkpoint(cfg: Any) -> str | None:
    """The checkpoint to resume from, or None (fresh start, or ``--resume false``)."""
    from transformers.trainer_utils import get_last_checkpoint

    out = Path(cfg.output_dir)
    if not cfg.resume or not out.is_dir():
        return None
    found = get_last_checkpoint(str(out))
    if found:
        print(f"resuming from {found}", flush=True)
    return found


def load_preset(name: str):
    from mmcot.models import get_preset

    try:
        return get_preset(name)
    except ValueError as e:
        raise StageError(str(e)) from None


def run_stage(stage: str, argv: list[str]) -> Path:
    """``mmcot train STAGE ARGS...``: parse the config, run the stage's ``main``; returns its output folder."""
    import importlib

    module_name, config_name = STAGES[stage]
    module = importlib.import_module(module_name)
    cfg = parse(getattr(module, config_name), argv, prog=f"mmcot train {stage}")
    return module.main(cfg)
