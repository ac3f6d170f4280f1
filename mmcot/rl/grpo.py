"""GRPO fine-tuning of a thinking variant, with outcome, shaping and process rewards and (optionally) multi-turn
image-tool rollouts: ``mmcot train grpo``.

    mmcot train grpo --config recipes/tiny-grpo.yaml                       # the shipped recipe
    mmcot train grpo --config recipes/tiny-grpo-tools.yaml --max_steps 20  # any field can be overridden

The config is TRL's ``GRPOConfig`` (every TRL option works: ``loss_type``, ``beta``, ``num_generations``,
``use_vllm``/``vllm_mode`` on a GPU...) plus :class:`~mmcot.rl.jobs.JobArgs` (model, data, held-out evaluation)
and the fields below. Training runs :class:`~mmcot.rl.rollout.ToolGRPOTrainer`; with ``tools`` empty it is TRL's
single-turn GRPO. Metrics go to ``output_dir/metrics.jsonl`` (and TensorBoard with ``report_to: [tensorboard]``):
each reward's mean, ``tools/call_frequency`` (calls per rollout), ``tools/call_rate`` (rollouts that called a
tool), ``completions/mean_length`` (model tokens only), timings; held-out accuracy goes to ``heldout.jsonl``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from trl import GRPOConfig

from mmcot.rl.jobs import JobArgs, JobError


@dataclass
class GRPOJobConfig(GRPOConfig, JobArgs):
    """TRL's GRPOConfig plus mmcot's job fields."""

    rewards: list[str] = field(
        default_factory=lambda: ["outcome", "format"],
        metadata={"help": "Reward names (mmcot.rl.REWARDS) or pkg.mod:fn paths; weights in reward_weights."},
    )
    tools: list[str] = field(
        default_factory=list, metadata={"help": "Tools the policy may call mid-completion (empty: single-turn)."}
    )
    max_tool_calling_iterations: int | None = field(
        default=3, metadata={"help": "Most tool rounds per rollout (K); each round is one more generation turn."}
    )
    prm_model: str = field(default="", metadata={"help": "Folder of a trained PRM, for the 'prm' reward."})

    def __post_init__(self):
        from mmcot.rl.jobs import cpu_defaults

        if self.output_dir is None:
            self.output_dir = "runs/grpo"
        cpu_defaults(self)
        if self.think:
            self.chat_template_kwargs = {**(self.chat_template_kwargs or {}), "enable_thinking": True}
        super().__post_init__()
        self.check_job()
        if self.reward_weights is not None and len(self.reward_weights) != len(self.rewards):
            raise ValueError(f"reward_weights has {len(self.reward_weights)} values for {len(self.rewards)} rewards")


def reward_functions(cfg: GRPOJobConfig) -> list:
    """The config's reward functions; raises JobError naming an unknown reward or tool before any model loads."""
    from mmcot.rl import resolve_reward
    from mmcot.tools import resolve_tools

    try:
        resolve_tools(cfg.tools)
    except KeyError as e:
        raise JobError(e.args[0]) from None
    try:
        return [resolve_reward(name, prm_model=cfg.prm_model) for name in cfg.rewards]
    except ValueError as e:
        raise JobError(str(e)) from None


def build_trainer(cfg: GRPOJobConfig, model, processor, items: list, callbacks: list | None = None, rewards=None):
    """The trainer a config describes, over an already loaded model and items (what tests and benchmarks reuse)."""
    from mmcot.rl.data import to_dataset
    from mmcot.rl.jobs import lora_config
    from mmcot.rl.rollout import ToolGRPOTrainer

    return ToolGRPOTrainer(
        model=model,
        processing_class=processor,
        reward_funcs=rewards or reward_functions(cfg),
        args=cfg,
        train_dataset=to_dataset(items),
        peft_config=lora_config(cfg),
        callbacks=callbacks,
        tool_names=cfg.tools,
    )


def main(cfg: GRPOJobConfig) -> Path:
    """Train, evaluate on held-out items, save ``output_dir/final``; returns that folder."""
    from mmcot.rl.data import heldout_items, train_items
    from mmcot.rl.jobs import finish, heldout_callback, last_checkpoint, load_policy, log_config, metrics_callback

    start = time.time()
    log_config(cfg, "grpo")
    rewards = reward_functions(cfg)
    items, heldout = train_items(cfg), heldout_items(cfg)
    model, processor = load_policy(cfg.model)
    out = Path(cfg.output_dir)
    heldout_cb = heldout_callback(cfg, heldout, processor, cfg.tools, out / "heldout.jsonl")
    callbacks = [metrics_callback(out / "metrics.jsonl"), heldout_cb]
    trainer = build_trainer(cfg, model, processor, items, callbacks, rewards)
    trainer.train(resume_from_checkpoint=last_checkpoint(cfg))
    facts = {
        "start": cfg.model,
        "data": f"{len(items)} training items ({cfg.data}: {cfg.families}), {len(heldout)} held-out ({cfg.heldout_split})",
        "rewards": ", ".join(
            f"{r} x{w}" for r, w in zip(cfg.rewards, cfg.reward_weights or [1.0] * len(cfg.rewards), strict=True)
        ),
        "tools": ", ".join(cfg.tools) or "none (single-turn)",
        "steps": f"{trainer.state.global_step} ({cfg.num_generations} samples per prompt, lr {cfg.learning_rate})",
    }
    return finish(trainer, cfg, processor, "grpo", facts, time.time() - start, {"heldout": heldout_cb.history})
