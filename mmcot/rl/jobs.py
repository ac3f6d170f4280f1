"""What the RL jobs (``mmcot train grpo|dpo|prm``) share: config parsing, the policy model, resuming, metrics, the
held-out evaluation and the final checkpoint with its model card.

A job config is a dataclass extending TRL's own (``GRPOConfig``, ``DPOConfig``, transformers' ``TrainingArguments``)
with :class:`JobArgs`. It is read the way TRL's scripts read theirs (``TrlParser``): a YAML recipe given as
``--config recipe.yaml``, then ``--field value`` overrides from the command line. The whole config is printed and
saved as ``job_config.json`` at the start of a run. Checkpoints go to ``output_dir/checkpoint-N`` every
``save_steps``; running the same command again resumes from the last one (a ``kill -9`` loses at most one save
interval). The trained model is written to ``output_dir/final`` (a folder ``load_model`` and ``mmcot eval --model``
read), with a model card, and optionally published as a shipped checkpoint (``--publish tiny-grpo``).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mmcot.models.stage import parse  # one recipe parser (YAML + --field overrides) for stages and jobs
from mmcot.rl.data import DataArgs


class JobError(RuntimeError):
    """A job that cannot start or go on (bad config, unknown model or reward); the message says what to fix."""


@dataclass
class JobArgs(DataArgs):
    """Fields every RL job adds to its TRL config."""

    model: str = field(default="tiny", metadata={"help": "Starting model: tiny, smol, a shipped name or a folder."})
    think: bool = field(default=True, metadata={"help": "Open the reply with <think> (the thinking variant)."})
    lora_r: int = field(default=0, metadata={"help": "LoRA rank on the language model (0: train all weights)."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    heldout_every: int = field(
        default=0, metadata={"help": "Evaluate held-out accuracy every N steps (0: only before and after training)."}
    )
    heldout_strategy: str = field(
        default="", metadata={"help": "Strategy of the held-out evaluation (default: cot, direct, or image-loop)."}
    )
    heldout_batch_size: int = field(default=8, metadata={"help": "Held-out items solved concurrently."})
    publish: str = field(
        default="",
        metadata={"help": "Also save the final model as shipped checkpoint NAME (mmcot/models/checkpoints)."},
    )
    resume: bool = field(default=True, metadata={"help": "Resume from the last checkpoint in output_dir if any."})

    def check_job(self) -> None:
        if self.lora_r < 0 or self.heldout_every < 0:
            raise ValueError("lora_r and heldout_every must be >= 0")
        if self.publish and ("/" in self.publish or self.publish in ("tiny", "smol")):
            raise ValueError(f"--publish {self.publish!r}: give a new checkpoint name such as tiny-grpo")


def cpu_defaults(cfg: Any) -> None:
    """On a machine without CUDA, the settings TRL needs to run at full speed on a CPU (NOTES-stack: bf16 autocast
    and activation checkpointing make it 4-5x slower there); explicit settings in a recipe win."""
    import torch

    if torch.cuda.is_available():
        return
    cfg.use_cpu = True
    cfg.bf16 = False
    cfg.gradient_checkpointing = False


def log_config(cfg: Any, job: str) -> None:
    """Print the whole config and save it as ``output_dir/job_config.json``."""
    data = {k: v for k, v in asdict(cfg).items() if not k.startswith("_")}
    text = json.dumps(data, indent=2, default=str)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "job_config.json").write_text(text + "\n")
    print(f"mmcot train {job}: config\n{text}")


def load_policy(spec: str):
    """``(model, processor)`` of a model spec, in training dtype (float32); raises JobError."""
    from mmcot.models.load import load_model
    from mmcot.models.presets import ModelError

    try:
        return load_model(spec)
    except ModelError as e:
        raise JobError(str(e)) from None


def lora_config(cfg: JobArgs):
    """A PEFT LoRA config over the language model's linear layers, or None for full fine-tuning."""
    if not cfg.lora_r:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        target_modules=r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)",
        task_type="CAUSAL_LM",
    )


def last_checkpoint(cfg: Any) -> str | None:
    """The checkpoint to resume from (None: start fresh)."""
    from transformers.trainer_utils import get_last_checkpoint

    out = Path(cfg.output_dir)
    if not cfg.resume or not out.is_dir():
        return None
    path = get_last_checkpoint(str(out))
    if path:
        print(f"resuming from {path}")
    return path


def metrics_callback(path: Path):
    """A callback appending every log (losses, rewards, tool rates, lengths...) to ``path`` as JSON lines."""
    from transformers import TrainerCallback

    class MetricsFile(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            with path.open("a") as f:
                f.write(json.dumps({"step": state.global_step, **(logs or {})}) + "\n")

    return MetricsFile()


def default_strategy(cfg: JobArgs, tools: list[str]) -> tuple[str, dict[str, Any]]:
    """The held-out strategy matching how the job prompts the model."""
    if cfg.heldout_strategy:
        return cfg.heldout_strategy, {}
    if tools:
        rounds = getattr(cfg, "max_tool_calling_iterations", None) or 5
        return "image-loop", {"tools": list(tools), "think": cfg.think, "max_turns": rounds + 1}
    return ("cot", {}) if cfg.think else ("direct", {})


def evaluate(model: Any, processor: Any, items: list, strategy: str, options: dict, batch_size: int) -> dict[str, Any]:
    """Held-out accuracy of an in-memory model, through the same strategy code and scorer as ``mmcot eval``."""
    from mmcot.evals.harness import solve_all
    from mmcot.evals.score import score
    from mmcot.evals.solvers import ModelSolver
    from mmcot.models.local import LocalBackend

    was_training = model.training
    backend = LocalBackend(model, processor, name="policy")
    try:
        solver = ModelSolver(backend, strategy, options)
        by_category: dict[str, list[float]] = {}
        tool_calls, errors = 0, 0
        for item, outcome, error in solve_all(solver, items, batch_size):
            errors += bool(error)
            ok = score(outcome.prediction, item.answer, item.choices) if outcome else 0.0
            tool_calls += bool(outcome and outcome.tool_calls)
            by_category.setdefault(item.category or "(none)", []).append(ok)
    finally:
        backend.close()
        model.train(was_training)
    flat = [v for vs in by_category.values() for v in vs]
    return {
        "accuracy": sum(flat) / len(flat),
        "n": len(flat),
        "tool_call_rate": tool_calls / len(flat),
        "errors": errors,
        "by_category": {k: sum(v) / len(v) for k, v in sorted(by_category.items())},
    }


def heldout_callback(cfg: JobArgs, items: list, processor: Any, tools: list[str], path: Path):
    """A callback evaluating held-out accuracy before training, every ``heldout_every`` steps and at the end; each
    result is printed and appended to ``path`` (and kept in ``.history`` for the model card)."""
    from transformers import TrainerCallback

    strategy, options = default_strategy(cfg, tools)

    class HeldOut(TrainerCallback):
        def __init__(self) -> None:
            self.history: list[dict[str, Any]] = []

        def run(self, model: Any, step: int) -> None:
            if any(h["step"] == step for h in self.history):
                return
            start = time.perf_counter()
            result = evaluate(model, processor, items, strategy, options, cfg.heldout_batch_size)
            result.update(step=step, strategy=strategy, seconds=round(time.perf_counter() - start, 1))
            self.history.append(result)
            with path.open("a") as f:
                f.write(json.dumps(result) + "\n")
            print(
                f"held-out accuracy at step {step}: {result['accuracy']:.3f} ({result['n']} items, {strategy}; "
                f"tool-call rate {result['tool_call_rate']:.2f})"
            )

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            if not state.is_world_process_zero:  # several GPUs: rank 0 evaluates
                self.run = lambda model, step: None
            if path.is_file():  # a resumed run keeps what it measured before
                self.history = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            self.run(model, state.global_step)

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if cfg.heldout_every and state.global_step % cfg.heldout_every == 0:
                self.run(model, state.global_step)

        def on_train_end(self, args, state, control, model=None, **kwargs):
            self.run(model, state.global_step)

    return HeldOut()


def finish(
    trainer: Any, cfg: JobArgs, processor: Any, job: str, facts: dict[str, Any], wall_s: float, evals: dict
) -> Path:
    """Save the trained model to ``output_dir/final`` with a model card (and publish it if asked); returns it."""
    from mmcot.models.card import write_card
    from mmcot.models.checkpoint import save_checkpoint, stack_adapters
    from mmcot.models.load import adapter_folder

    final = Path(cfg.output_dir) / "final"
    if not trainer.accelerator.is_main_process:
        return final
    model = trainer.accelerator.unwrap_model(trainer.model)
    start = adapter_folder(cfg.model)
    if start and hasattr(model, "peft_config"):  # LoRA on smol: keep its small format, both adapters in one
        base = json.loads((start / "mmcot_base.json").read_text())["base"]
        save_checkpoint(model, processor, final, base=base)
        stack_adapters(start, final)
    else:
        if hasattr(model, "merge_and_unload"):
            model = model.merge_and_unload()
        save_checkpoint(model, processor, final)
    config = {k: v for k, v in asdict(cfg).items() if not k.startswith("_")}
    write_card(final, f"mmcot {job}: {cfg.model} → {cfg.publish or final}", job, config, facts, wall_s, evals)
    if cfg.publish:
        publish(final, cfg.publish)
    return final


PUBLISH_LIMIT_MB = 20  # shipped checkpoints stay small: the repository holds about 40 MB of them in all


def publish(folder: Path, name: str) -> Path:
    """Copy a trained folder to the shipped checkpoints as ``name`` (``load_model(name)`` then finds it)."""
    import shutil

    from mmcot.models.load import CHECKPOINTS

    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20
    if size > PUBLISH_LIMIT_MB:
        raise JobError(f"{folder} is {size:.0f} MB, over the {PUBLISH_LIMIT_MB} MB a shipped checkpoint may take")
    target = CHECKPOINTS / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(folder, target)
    print(f"published as shipped checkpoint {name!r} ({target}, {size:.1f} MB)")
    return target


JOBS = {
    "grpo": ("mmcot.rl.grpo", "GRPOJobConfig"),
    "dpo": ("mmcot.rl.dpo", "DPOJobConfig"),
    "prm": ("mmcot.rl.prm", "PRMJobConfig"),
}


def run_job(job: str, argv: list[str]) -> Path:
    """``mmcot train JOB ARGS...``: parse the config, run the job's ``main``; returns the trained model's folder."""
    import importlib

    module_name, config_name = JOBS[job]
    module = importlib.import_module(module_name)
    cfg = parse(getattr(module, config_name), argv, prog=f"mmcot train {job}")
    return module.main(cfg)
