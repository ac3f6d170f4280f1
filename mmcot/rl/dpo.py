"""DPO from the model's own sampled traces: ``mmcot train dpo``.

    mmcot train dpo --config recipes/tiny-dpo.yaml

1. **Sample.** The starting model answers each training puzzle ``samples_per_item`` times (the thinking prompt,
   temperature ``sample_temperature``, nucleus ``sample_top_p``). Every sample is scored for its outcome
   (:func:`mmcot.evals.score.score`) and its process (:func:`mmcot.rl.process.step_check_reward`, the rule-based
   step checks, when the puzzle has scene metadata). Samples are appended to ``output_dir/samples.jsonl`` as they
   are made (a rerun resumes there).
2. **Pair.** Per puzzle, up to ``max_pairs_per_item`` pairs: a right answer over a wrong one (the right one with the
   best process score, the wrong one with the worst); when all answers agree in correctness, the sample with the
   higher process score over the lower one if they differ by at least ``process_margin``. Pairs, with their reason,
   go to ``output_dir/pairs.jsonl``.
3. **Train** with TRL's ``DPOTrainer`` (images included) from the same starting model, which is also the reference.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trl import DPOConfig

from mmcot.models.backend import user_message
from mmcot.rl.jobs import JobArgs, JobError


@dataclass
class DPOJobConfig(DPOConfig, JobArgs):
    """TRL's DPOConfig plus mmcot's job fields and the pair-building settings."""

    samples_per_item: int = field(default=6, metadata={"help": "Answers sampled per training puzzle."})
    sample_temperature: float = field(default=1.0, metadata={"help": "Temperature of the sampled answers."})
    sample_top_p: float = field(
        default=0.95, metadata={"help": "Nucleus sampling of the answers (1.0: the whole distribution's tail)."}
    )
    max_new_tokens: int = field(default=192, metadata={"help": "Tokens per sampled answer."})
    max_pairs_per_item: int = field(default=2, metadata={"help": "Preference pairs kept per puzzle."})
    process_margin: float = field(
        default=0.25, metadata={"help": "Least process-score gap for a pair between equally correct answers."}
    )

    def __post_init__(self):
        from mmcot.rl.jobs import cpu_defaults

        if self.output_dir is None:
            self.output_dir = "runs/dpo"
        cpu_defaults(self)
        super().__post_init__()
        self.check_job()
        if self.samples_per_item < 2:
            raise ValueError("samples_per_item must be at least 2 to make pairs")


def sample(cfg: DPOJobConfig, items: list, model: Any, processor: Any, path: Path) -> dict[str, list[dict]]:
    """Sampled, scored answers per item id (resuming ``path``)."""
    from tqdm.auto import tqdm

    from mmcot.evals.score import score
    from mmcot.models.backend import Request, Sampling
    from mmcot.models.local import LocalBackend
    from mmcot.rl.process import step_check_reward

    done: dict[str, list[dict]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                done.setdefault(row["id"], []).append(row)
    todo = [item for item in items if item.id not in done]
    prefix = "<think>" if cfg.think else ""
    sampling = Sampling(
        max_tokens=cfg.max_new_tokens, temperature=cfg.sample_temperature, top_p=cfg.sample_top_p, seed=cfg.seed
    )
    backend = LocalBackend(model, processor, name="dpo-sampler")
    try:
        for start in tqdm(range(0, len(todo), 8), desc="sampling answers", unit="batch"):
            batch = todo[start : start + 8]
            requests = [
                Request(_messages(item), n=cfg.samples_per_item, sampling=sampling, prefix=prefix) for item in batch
            ]
            with path.open("a") as f:
                for item, outs in zip(batch, backend.generate(requests), strict=True):
                    texts = [prefix + o.text for o in outs]
                    process = step_check_reward(texts, [json.dumps(item.metadata or {})] * len(texts))
                    for text, p in zip(texts, process, strict=True):
                        row = {
                            "id": item.id,
                            "text": text,
                            "correct": score(text, item.answer, item.choices),
                            "process": p,
                        }
                        f.write(json.dumps(row) + "\n")
                        done.setdefault(item.id, []).append(row)
    finally:
        backend.close()
    return done


def make_pairs(samples: list[dict], max_pairs: int, margin: float) -> list[tuple[dict, dict, str]]:
    """``(chosen, rejected, reason)`` pairs from one item's scored samples (see the module doc).

    >>> s = [{"text": "a", "correct": 1.0, "process": 1.0}, {"text": "b", "correct": 0.0, "process": 0.5},
    ...      {"text": "c", "correct": 1.0, "process": 0.5}, {"text": "d", "correct": 0.0, "process": 0.0}]
    >>> [(c["text"], r["text"], why) for c, r, why in make_pairs(s, 2, 0.25)]
    [('a', 'd', 'outcome'), ('c', 'b', 'outcome')]
    >>> [(c["text"], r["text"], why) for c, r, why in make_pairs(s[:1] + s[2:3], 2, 0.25)]
    [('a', 'c', 'process')]
    """
    unique = list({s["text"]: s for s in samples}.values())
    key = lambda s: s["process"] if s["process"] is not None else 0.5  # noqa: E731
    right = sorted((s for s in unique if s["correct"]), key=key, reverse=True)
    wrong = sorted((s for s in unique if not s["correct"]), key=key)
    pairs = [(c, r, "outcome") for c, r in zip(right, wrong, strict=False)][:max_pairs]
    if not pairs:
        same = sorted(unique, key=key, reverse=True)
        while len(same) >= 2 and len(pairs) < max_pairs:
            hi, lo = same.pop(0), same.pop(-1)
            if hi["process"] is None or lo["process"] is None or hi["process"] - lo["process"] < margin:
                break
            pairs.append((hi, lo, "process"))
    return pairs


def _messages(item: Any) -> list[dict]:
    return [user_message(item.prompt(), item.images)]


def main(cfg: DPOJobConfig) -> Path:
    """Sample, pair, train, evaluate on held-out items, save ``output_dir/final``; returns that folder."""
    from datasets import Dataset
    from trl import DPOTrainer

    from mmcot.rl.data import heldout_items, prompt_messages, train_items
    from mmcot.rl.jobs import (
        finish,
        heldout_callback,
        last_checkpoint,
        load_policy,
        log_config,
        lora_config,
        metrics_callback,
    )

    start = time.time()
    log_config(cfg, "dpo")
    out = Path(cfg.output_dir)
    model, processor = load_policy(cfg.model)
    items, heldout = train_items(cfg), heldout_items(cfg)
    samples = sample(cfg, items, model, processor, out / "samples.jsonl")
    rows, reasons = [], {"outcome": 0, "process": 0}
    with (out / "pairs.jsonl").open("w") as f:
        for item in items:
            for chosen, rejected, why in make_pairs(
                samples.get(item.id, []), cfg.max_pairs_per_item, cfg.process_margin
            ):
                reasons[why] += 1
                f.write(json.dumps({"id": item.id, "chosen": chosen, "rejected": rejected, "reason": why}) + "\n")
                rows.append(
                    {
                        "prompt": prompt_messages(item),
                        "chosen": [{"role": "assistant", "content": chosen["text"]}],
                        "rejected": [{"role": "assistant", "content": rejected["text"]}],
                        "images": list(item.images),
                    }
                )
    if not rows:
        raise JobError(
            f"no preference pairs: the {cfg.samples_per_item} samples of every puzzle agree in correctness and process "
            "score; sample more (--samples_per_item), hotter (--sample_temperature) or on harder puzzles"
        )
    print(f"{len(rows)} preference pairs ({reasons['outcome']} by outcome, {reasons['process']} by process score)")
    heldout_cb = heldout_callback(cfg, heldout, processor, [], out / "heldout.jsonl")
    trainer = DPOTrainer(
        model=model,
        args=cfg,
        train_dataset=Dataset.from_list(rows),
        processing_class=processor,
        peft_config=lora_config(cfg),
        callbacks=[metrics_callback(out / "metrics.jsonl"), heldout_cb],
    )
    trainer.train(resume_from_checkpoint=last_checkpoint(cfg))
    right = [s["correct"] for ss in samples.values() for s in ss]
    facts = {
        "start": cfg.model,
        "samples": f"{len(right)} answers to {len(items)} puzzles, {sum(right) / len(right):.2f} right",
        "pairs": f"{len(rows)} ({reasons['outcome']} right-over-wrong, {reasons['process']} by process score)",
        "steps": f"{trainer.state.global_step} (beta {cfg.beta}, lr {cfg.learning_rate})",
    }
    return finish(trainer, cfg, processor, "dpo", facts, time.time() - start, {"heldout": heldout_cb.history})
