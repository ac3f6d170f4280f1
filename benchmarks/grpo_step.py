"""GRPO step cost: mmcot's trainer against TRL's plain GRPOTrainer, and where a multi-turn tool step spends its time.

    .venv/bin/python benchmarks/grpo_step.py                     # shipped tiny model, 6 steps per arm
    .venv/bin/python benchmarks/grpo_step.py --model PATH --steps 10 --generations 8 --tokens 128

Three arms on the same model, prompts, batch and seed:
  trl      TRL's GRPOTrainer, single-turn
  mmcot    mmcot.rl.rollout.ToolGRPOTrainer with no tools (single-turn): the overhead of mmcot's subclass
  tools    ToolGRPOTrainer with zoom and crop on small-object puzzles: time split into generation (all turns), tool
           execution, and the rest (rewards, log-probs, backward and optimizer step: "update")
The single-turn arms alternate step blocks (trl, mmcot, trl, mmcot...) so load on a shared machine hits both alike.
Prints per-step medians and the mmcot/trl ratio (goal: <= 1.2).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")


def trainer(kind: str, model_spec: str, items: list, args: argparse.Namespace, out: str):
    from transformers import PrinterCallback
    from trl import GRPOTrainer

    from mmcot.models.load import load_model
    from mmcot.rl.data import to_dataset
    from mmcot.rl.grpo import GRPOJobConfig
    from mmcot.rl.rewards import outcome_reward
    from mmcot.rl.rollout import ToolGRPOTrainer

    model, processor = load_model(model_spec)
    cfg = GRPOJobConfig(
        output_dir=out,
        model=model_spec,
        per_device_train_batch_size=args.generations * args.prompts,
        num_generations=args.generations,
        max_completion_length=args.tokens,
        max_steps=args.steps,
        learning_rate=1e-6,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=0,
        tools=["zoom", "crop"] if kind == "tools" else [],
        max_tool_calling_iterations=2,
        disable_tqdm=True,
    )
    common = dict(model=model, processing_class=processor, reward_funcs=[outcome_reward], args=cfg)
    if kind == "trl":
        t = GRPOTrainer(**common, train_dataset=to_dataset(items))
    else:
        t = ToolGRPOTrainer(**common, train_dataset=to_dataset(items), tool_names=cfg.tools)
    t.remove_callback(PrinterCallback)  # keep the benchmark's output to its summary
    return t


def step_logs(t) -> list[dict]:
    t.train()
    return [h for h in t.state.log_history if "step_time" in h]


def main() -> None:
    import torch

    from mmcot.evals.puzzles import generate

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny", help="model spec (shipped name or folder)")
    p.add_argument("--steps", type=int, default=6, help="training steps per arm (the first is dropped as warm-up)")
    p.add_argument("--rounds", type=int, default=2, help="alternating blocks of the two single-turn arms")
    p.add_argument("--generations", type=int, default=8, help="samples per prompt")
    p.add_argument("--prompts", type=int, default=1, help="prompts per step")
    p.add_argument("--tokens", type=int, default=96, help="max completion tokens")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core machine)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    plain = generate(["count", "spatial"], n=40, seed=0, split="train")
    search = generate(["small_object"], n=40, seed=0, split="train")
    times: dict[str, list[float]] = {"trl": [], "mmcot": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for kind in ("trl", "mmcot") if r % 2 == 0 else ("mmcot", "trl"):
                torch.manual_seed(0)
                logs = step_logs(trainer(kind, args.model, plain, args, f"{tmp}/{kind}{r}"))
                times[kind] += [h["step_time"] for h in logs[1:]]
        torch.manual_seed(0)
        tool_logs = step_logs(trainer("tools", args.model, search, args, f"{tmp}/tools"))[1:]
    trl_s, mm_s = statistics.median(times["trl"]), statistics.median(times["mmcot"])
    print(f"model {args.model}; {args.prompts} prompt(s) x {args.generations} samples, <= {args.tokens} tokens/turn")
    print(f"single-turn step, median of {len(times['trl'])}: TRL GRPOTrainer {trl_s:.3f} s, mmcot {mm_s:.3f} s")
    print(f"ratio mmcot / TRL: {mm_s / trl_s:.2f}  (goal <= 1.20)")
    gen = statistics.median(h["timing/generate_s"] for h in tool_logs)
    tools = statistics.median(h["timing/tools_s"] for h in tool_logs)
    step = statistics.median(h["step_time"] for h in tool_logs)
    calls = statistics.mean(h.get("tools/call_frequency", 0.0) for h in tool_logs)
    rate = statistics.mean(h.get("tools/call_rate", 0.0) for h in tool_logs)
    length = statistics.mean(h["completions/mean_length"] for h in tool_logs)
    print(
        f"multi-turn tool step (zoom, crop; small_object), median of {len(tool_logs)}: {step:.3f} s = generation "
        f"{gen:.3f} s ({gen / step:.0%}) + tools {tools:.3f} s ({tools / step:.0%}) + update {step - gen - tools:.3f} s "
        f"({(step - gen - tools) / step:.0%}); {calls:.2f} calls per rollout, {rate:.0%} of rollouts call a tool, "
        f"{length:.0f} model tokens per rollout"
    )
    print(f"  (single-turn for comparison: {mm_s:.3f} s per step)")


if __name__ == "__main__":
    main()
