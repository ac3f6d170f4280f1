"""The learned process reward model (PRM), Math-Shepherd style: ``mmcot train prm``.

    mmcot train prm --config recipes/tiny-prm.yaml

1. **Label.** The starting model samples ``samples_per_item`` chains of thought per training puzzle. Each is cut into
   steps (:func:`split_steps`: one per line of the ``<think>`` block, then the answer; with ``think: false``, a
   direct answer is one step, and the PRM is an outcome verifier). From every step prefix the
   model rolls out ``rollouts_per_step`` continuations; the step's label is the fraction that reach the right answer
   (:func:`mmcot.evals.score.score`), the answer step's label is its own correctness. Labels are appended to
   ``output_dir/labels.jsonl`` as they are made, so an interrupted run resumes there.
2. **Train.** The PRM is the starting model with a linear value head on the hidden state of each step's last token;
   only the head and the top ``train_layers`` language-model layers learn (binary cross-entropy against the soft
   labels), with transformers' Trainer (progress bar, checkpoints, resume).
3. **Save.** ``output_dir/final`` holds ``mmcot_prm.json`` (the base model spec) and ``prm.safetensors`` (the trained
   weights only: a few MB on top of the shipped base).

The PRM scores a candidate (a complete or partial ``<think>...`` output) by the minimum of its step scores. It is
the verifier of best-of-N and the value of tree search (``--option verifier=mmcot.rl.prm:Verifier``; the PRM
folder comes from ``$MMCOT_PRM``, default the shipped ``tiny-prm``) and GRPO's ``prm`` reward (``prm_model:``).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainingArguments

from mmcot.models.backend import user_message
from mmcot.rl.jobs import JobArgs, JobError

AGGREGATES = ("min", "last", "mean")


def split_steps(text: str) -> list[str]:
    """Chunks of a model output, one per reasoning step, that concatenate back to the text: each line of the think
    block (its newline leads the next chunk), then everything from ``</think>`` on (the answer) as the last step.

    >>> split_steps("<think>I look for red.\\nOne red circle.\\nThat makes 1.</think><answer>1</answer>")
    ['<think>I look for red.', '\\nOne red circle.', '\\nThat makes 1.', '</think><answer>1</answer>']
    >>> split_steps("<think>partial"), split_steps("<answer>2</answer>")
    (['<think>partial'], ['<answer>2</answer>'])
    """
    head, sep, tail = text.partition("</think>")
    lines = head.split("\n")
    chunks = [lines[0]] + ["\n" + line for line in lines[1:]]
    chunks = [c for c in chunks if c.strip()] or ([head] if head else [])
    if sep:
        chunks.append(sep + tail)
    return chunks


def ranking_loss(logits, labels, groups):
    """Bradley-Terry loss between the final-step logits of samples of the same puzzle (``groups``) whose final labels
    differ: the better-labelled one should score higher. Zero when no puzzle in the batch has such a pair.

    >>> import torch
    >>> labels = torch.tensor([[1.0, -100.0], [0.5, 0.0], [1.0, 1.0]])
    >>> good, bad = torch.tensor([[3.0, 0], [0, -3.0], [0, 0]]), torch.tensor([[-3.0, 0], [0, 3.0], [0, 0]])
    >>> groups = torch.tensor([0, 0, 1])
    >>> bool(ranking_loss(good, labels, groups) < 0.01 < 6 < ranking_loss(bad, labels, groups))
    True
    """
    import torch

    last = (labels >= 0).long().sum(1) - 1  # each row's final step
    rows = torch.arange(labels.shape[0])
    final, target = logits[rows, last], labels[rows, last]
    better = (groups[:, None] == groups[None, :]) & (target[:, None] > target[None, :])
    if not better.any():
        return logits.sum() * 0.0
    margin = final[:, None] - final[None, :]
    return -torch.nn.functional.logsigmoid(margin[better]).mean()


@dataclass
class PRMJobConfig(TrainingArguments, JobArgs):
    """transformers' TrainingArguments plus mmcot's job fields and the labelling settings."""

    samples_per_item: int = field(default=4, metadata={"help": "Chains of thought sampled per training puzzle."})
    rollouts_per_step: int = field(default=4, metadata={"help": "Continuations rolled out from each step prefix."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of samples and rollouts."})
    top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling of samples and rollouts."})
    max_new_tokens: int = field(default=160, metadata={"help": "Tokens per sampled chain of thought."})
    train_layers: int = field(default=2, metadata={"help": "Top language-model layers trained with the head."})
    aggregate: str = field(default="min", metadata={"help": "Step scores to one score: min, last or mean."})
    ranking: float = field(
        default=0.0,
        metadata={"help": "Weight of a within-puzzle ranking loss (right samples over wrong ones of the same puzzle) "
                  "added to the step BCE; a batch then holds per_device_train_batch_size puzzles."},
    )  # fmt: skip

    def __post_init__(self):
        from mmcot.rl.jobs import cpu_defaults

        if self.output_dir is None:
            self.output_dir = "runs/prm"
        self.remove_unused_columns = False
        cpu_defaults(self)
        super().__post_init__()
        self.check_job()
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {self.aggregate!r}")
        if self.samples_per_item < 1 or self.rollouts_per_step < 1 or self.train_layers < 0 or self.ranking < 0:
            raise ValueError("samples_per_item and rollouts_per_step must be >= 1, train_layers and ranking >= 0")


# ---- the model ----


class ProcessRewardModel:
    """A VLM backbone plus a value head; ``score(images, question, candidates)`` gives step scores in [0, 1]."""

    def __init__(self, model: Any, processor: Any, base: str, aggregate: str = "min", train_layers: int = 0):
        import torch

        self.model, self.processor, self.base, self.aggregate = model, processor, base, aggregate
        self.tokenizer = processor.tokenizer
        hidden = model.config.get_text_config().hidden_size
        self.head = torch.nn.Linear(hidden, 1)
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)
        self.trained = {"head." + k for k in self.head.state_dict()}
        layers = model.model.language_model.layers
        for name, param in model.named_parameters():
            top = any(f"language_model.layers.{i}." in name for i in range(len(layers) - train_layers, len(layers)))
            param.requires_grad = train_layers > 0 and (top or "language_model.norm." in name)
            if param.requires_grad:
                self.trained.add("model." + name)
        self.lock = threading.Lock()

    def module(self, ranking: float = 0.0):
        """An ``nn.Module`` holding backbone and head, for the Trainer. Its loss is the BCE of every step's score
        against its label, plus ``ranking`` times a Bradley-Terry loss over the final scores of each puzzle's
        samples (a right one above a wrong one) when the batch says which puzzle each row is (``groups``)."""
        import torch

        prm = self

        class Module(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.model, self.head = prm.model, prm.head

            def forward(self, input_ids, attention_mask, positions, labels=None, pixel_values=None, groups=None):
                logits = prm.logits(input_ids, attention_mask, pixel_values, positions)
                out = {"logits": logits}
                if labels is not None:
                    mask = labels >= 0
                    out["loss"] = torch.nn.functional.binary_cross_entropy_with_logits(logits[mask], labels[mask])
                    if ranking and groups is not None:
                        out["loss"] = out["loss"] + ranking * ranking_loss(logits, labels, groups)
                return out

        return Module()

    def encode(self, images: list, question: str, chunks: list[str]) -> tuple[list[int], list[int]]:
        """Token ids of the prompt (images expanded) and the chunks, and the index of each chunk's last token."""
        prompt = self.processor.apply_chat_template([user_message(question, [None] * len(images))],
                                                    add_generation_prompt=True)  # fmt: skip
        if images:
            ids = list(self.processor(text=[prompt], images=images, return_tensors="pt")["input_ids"][0].tolist())
        else:
            ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        positions = []
        for chunk in chunks:
            ids += self.tokenizer(chunk, add_special_tokens=False)["input_ids"] or [self.tokenizer.pad_token_id]
            positions.append(len(ids) - 1)
        return ids, positions

    def collate(self, rows: list[dict]) -> dict:
        """A padded batch from rows ``{"images", "question", "chunks", "labels"?}``."""
        import torch

        encoded = [self.encode(r["images"], r["question"], r["chunks"]) for r in rows]
        width = max(len(ids) for ids, _ in encoded)
        steps = max(len(pos) for _, pos in encoded)
        input_ids = torch.full((len(rows), width), self.tokenizer.pad_token_id)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        positions = torch.zeros((len(rows), steps), dtype=torch.long)
        labels = torch.full((len(rows), steps), -100.0)
        for b, ((ids, pos), row) in enumerate(zip(encoded, rows, strict=True)):
            input_ids[b, : len(ids)] = torch.tensor(ids)
            attention_mask[b, : len(ids)] = 1
            positions[b, : len(pos)] = torch.tensor(pos)
            if "labels" in row:
                labels[b, : len(pos)] = torch.tensor(row["labels"], dtype=torch.float)
            else:
                labels[b, : len(pos)] = 0.0
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "positions": positions, "labels": labels}
        images = [im for r in rows for im in r["images"]]
        if images:
            batch["pixel_values"] = self.processor.image_processor(images=images, return_tensors="pt")["pixel_values"]
        return batch

    def logits(self, input_ids, attention_mask, pixel_values, positions):
        """The head's logit at each step position: ``[batch, steps]``."""
        import torch

        hidden = self.model.model(
            input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values
        ).last_hidden_state
        picked = hidden[torch.arange(hidden.shape[0]).unsqueeze(1), positions]
        return self.head(picked).squeeze(-1)

    def step_scores(self, images: list, question: str, candidates: list[str]) -> list[list[float]]:
        """Each candidate's step scores (probability that the solution is still on track after the step)."""
        import torch

        if not candidates:
            return []
        rows = [{"images": images, "question": question, "chunks": split_steps(c) or [c or " "]} for c in candidates]
        with self.lock, torch.inference_mode():
            batch = self.collate(rows)
            self.model.eval()
            probs = torch.sigmoid(
                self.logits(batch["input_ids"], batch["attention_mask"], batch.get("pixel_values"), batch["positions"])
            )
        return [probs[b, : len(r["chunks"])].tolist() for b, r in enumerate(rows)]

    def score(self, images: list, question: str, candidates: list[str]) -> list[float]:
        """One score per candidate in [0, 1]: its step scores aggregated (``min`` by default)."""
        out = []
        for steps in self.step_scores(images, question, candidates):
            agg = {"min": min, "last": lambda s: s[-1], "mean": lambda s: sum(s) / len(s)}[self.aggregate]
            out.append(float(agg(steps)))
        return out

    def save(self, folder: str | Path) -> Path:
        """``mmcot_prm.json`` and ``prm.safetensors`` (the trained weights only)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {"head." + k: v for k, v in self.head.state_dict().items()}
        state |= {"model." + k: v for k, v in self.model.state_dict().items() if "model." + k in self.trained}
        save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, folder / "prm.safetensors")
        spec = {"base": self.base, "aggregate": self.aggregate, "trained": sorted(self.trained)}
        (folder / "mmcot_prm.json").write_text(json.dumps(spec, indent=2) + "\n")
        return folder

    def load_weights(self, folder: str | Path) -> None:
        from safetensors.torch import load_file

        state = load_file(Path(folder) / "prm.safetensors")
        self.head.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("head.")})
        self.model.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("model.")}, strict=False)


def load_prm(path: str | Path) -> ProcessRewardModel:
    """A trained PRM from its folder (``mmcot train prm``'s ``final``, or a shipped name). Raises JobError."""
    from mmcot.models.load import CHECKPOINTS

    folder = Path(path)
    if not (folder / "mmcot_prm.json").is_file() and (CHECKPOINTS / str(path) / "mmcot_prm.json").is_file():
        folder = CHECKPOINTS / str(path)
    try:
        spec = json.loads((folder / "mmcot_prm.json").read_text())
    except (OSError, ValueError) as e:
        raise JobError(f"{path} is not a trained PRM folder (mmcot_prm.json missing or unreadable: {e})") from None
    from mmcot.rl.jobs import load_policy

    model, processor = load_policy(spec["base"])
    prm = ProcessRewardModel(model, processor, spec["base"], spec.get("aggregate", "min"))
    try:
        prm.load_weights(folder)
    except Exception as e:  # noqa: BLE001 - safetensors and torch raise many types for a bad file
        raise JobError(f"cannot load the PRM weights in {folder} (trained on another base model?): {e}") from None
    prm.model.eval()
    return prm


class Verifier:
    """The PRM as a verifier for best-of-N and tree search: ``(images, question, candidates) -> scores``. Its folder
    is ``path``, else ``$MMCOT_PRM``, else the shipped ``tiny-prm``."""

    def __init__(self, path: str | None = None):
        path = path or os.environ.get("MMCOT_PRM")
        if not path:
            from mmcot.models.load import CHECKPOINTS

            if not (CHECKPOINTS / "tiny-prm" / "mmcot_prm.json").is_file():
                raise JobError(
                    "no PRM to load: set $MMCOT_PRM to the final/ folder of a `mmcot train prm` run, "
                    "or train one with --publish tiny-prm"
                )
            path = "tiny-prm"
        self.prm = load_prm(path)

    def __call__(self, images: list, question: str, candidates: list[str]) -> list[float]:
        return self.prm.score(images, question, candidates)


class PRMReward:
    """GRPO's ``prm`` reward: the PRM's score of each completion's reasoning (``prm_model`` in the recipe)."""

    __name__ = "prm_reward"

    def __init__(self, prm_model: str = ""):
        if not prm_model:
            raise ValueError("the 'prm' reward needs prm_model: the folder of a PRM trained by mmcot train prm")
        self.prm = load_prm(prm_model)

    def __call__(self, completions: list, prompts: list, **kwargs: Any) -> list[float | None]:
        from mmcot.rl.rewards import assistant_text, content_text

        out: list[float | None] = []
        for completion, prompt in zip(completions, prompts, strict=True):
            user = [m for m in prompt if m.get("role") == "user"][-1]
            parts = user["content"] if isinstance(user["content"], list) else []
            images = [p["image"] for p in parts if p.get("type") == "image" and p.get("image") is not None]
            text = assistant_text(completion)
            text = text if text.startswith("<think>") or "</think>" not in text else "<think>" + text
            out.append(self.prm.score(images, content_text(user["content"]), [text])[0])
        return out


# ---- the job ----


def label(cfg: PRMJobConfig, items: list, model: Any, processor: Any, path: Path) -> list[dict]:
    """Monte-Carlo step labels for ``items`` (see the module doc), appended to ``path``; returns all rows."""
    from mmcot.evals.score import score
    from mmcot.models.backend import Request, Sampling
    from mmcot.models.local import LocalBackend

    done = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    seen = {row["id"] for row in done}
    todo = [item for item in items if item.id not in seen]
    backend = LocalBackend(model, processor, name="prm-labeller")
    opener = "<think>" if cfg.think else ""  # think=false: one step, the direct answer, labelled by its correctness
    sampling = Sampling(max_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p, seed=cfg.seed)
    try:
        from tqdm.auto import tqdm

        for start in tqdm(range(0, len(todo), 8), desc="labelling steps", unit="batch"):
            batch = todo[start : start + 8]
            messages = [_messages(item) for item in batch]
            samples = backend.generate(
                [Request(m, n=cfg.samples_per_item, sampling=sampling, prefix=opener) for m in messages]
            )
            prefixes, owners = [], []
            for k, outs in enumerate(samples):
                for j, out in enumerate(outs):
                    chunks = split_steps(opener + out.text)
                    for i in range(len(chunks) - 1):
                        prefixes.append(
                            Request(
                                messages[k],
                                n=cfg.rollouts_per_step,
                                sampling=sampling,
                                prefix="".join(chunks[: i + 1]),
                            )
                        )
                        owners.append((k, j, i))
            rollouts = backend.generate(prefixes) if prefixes else []
            wins: dict[tuple[int, int, int], float] = {}
            for (k, j, i), req, outs in zip(owners, prefixes, rollouts, strict=True):
                answer, choices = batch[k].answer, batch[k].choices
                wins[(k, j, i)] = sum(score(req.prefix + o.text, answer, choices) for o in outs) / len(outs)
            with path.open("a") as f:
                for k, (item, outs) in enumerate(zip(batch, samples, strict=True)):
                    for j, out in enumerate(outs):
                        chunks = split_steps(opener + out.text)
                        final = score(opener + out.text, item.answer, item.choices)
                        labels = [wins[(k, j, i)] for i in range(len(chunks) - 1)] + [final]
                        row = {"id": item.id, "sample": j, "chunks": chunks, "labels": labels, "correct": final}
                        f.write(json.dumps(row) + "\n")
                        done.append(row)
    finally:
        backend.close()
    return done


def _messages(item: Any) -> list[dict]:
    return [user_message(item.prompt(), item.images)]


def evaluate_prm(prm: ProcessRewardModel, items: list, rows: list[dict]) -> dict[str, float]:
    """How well the PRM's final scores separate right from wrong sampled solutions on ``rows`` (held out): accuracy
    of ``score > 0.5`` against correctness, the mean score of each group, and ``pair_accuracy``: how often a right
    solution outscores a wrong one of the same puzzle (what best-of-N needs; 0.5 is chance)."""
    by_id = {item.id: item for item in items}
    right, wrong, hits = [], [], 0
    scored: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        item = by_id[row["id"]]
        s = prm.score(item.images, item.prompt(), ["".join(row["chunks"])])[0]
        (right if row["correct"] else wrong).append(s)
        hits += (s > 0.5) == bool(row["correct"])
        scored.setdefault(row["id"], []).append((s, row["correct"]))
    pairs = [(a > b) + 0.5 * (a == b) for xs in scored.values() for a, p in xs for b, q in xs if p > q]
    return {
        "accuracy": hits / max(1, len(rows)),
        "mean_score_right": sum(right) / max(1, len(right)),
        "mean_score_wrong": sum(wrong) / max(1, len(wrong)),
        "pair_accuracy": sum(pairs) / len(pairs) if pairs else None,
        "n": len(rows),
    }


def main(cfg: PRMJobConfig) -> Path:
    """Label, train, evaluate on held-out labels, save ``output_dir/final``; returns that folder."""
    from transformers import Trainer

    from mmcot.models.card import write_card
    from mmcot.rl.data import heldout_items, train_items
    from mmcot.rl.jobs import last_checkpoint, load_policy, log_config, metrics_callback, publish

    start = time.time()
    log_config(cfg, "prm")
    out = Path(cfg.output_dir)
    model, processor = load_policy(cfg.model)
    items, heldout = train_items(cfg), heldout_items(cfg)
    rows = label(cfg, items, model, processor, out / "labels.jsonl")
    held_rows = label(cfg, heldout, model, processor, out / "heldout_labels.jsonl")
    if not rows:
        raise JobError("no step labels were produced")
    by_id = {item.id: item for item in items}
    data = [
        {
            "images": by_id[r["id"]].images,
            "question": by_id[r["id"]].prompt(),
            "chunks": r["chunks"],
            "labels": r["labels"],
            "id": r["id"],
        }
        for r in rows
        if r["id"] in by_id
    ]
    prm = ProcessRewardModel(model, processor, cfg.model, cfg.aggregate, cfg.train_layers)

    class PRMTrainer(Trainer):
        def _save(self, output_dir=None, state_dict=None):
            prm.save(output_dir or self.args.output_dir)

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            prm.load_weights(resume_from_checkpoint)

    collate = prm.collate
    if cfg.ranking:  # one dataset row per puzzle: its distinct samples, so a batch can compare them
        puzzles: dict[str, dict] = {}
        for row in data:
            puzzles.setdefault(row["id"], {})["".join(row["chunks"])] = row
        data = [list(samples.values()) for samples in puzzles.values()]

        def collate(groups: list[list[dict]]) -> dict:
            import torch

            batch = prm.collate([row for group in groups for row in group])
            batch["groups"] = torch.tensor([k for k, group in enumerate(groups) for _ in group])
            return batch

    trainer = PRMTrainer(
        model=prm.module(cfg.ranking),
        args=cfg,
        train_dataset=_ListDataset(data),
        data_collator=collate,
        callbacks=[metrics_callback(out / "metrics.jsonl")],
    )
    trainer.train(resume_from_checkpoint=last_checkpoint(cfg))
    final = prm.save(out / "final")
    held = evaluate_prm(prm, heldout, held_rows)
    print(f"PRM on held-out samples: {json.dumps(held)}")
    labels = [v for r in rows for v in r["labels"]]
    facts = {
        "base": cfg.model,
        "labels": f"{len(rows)} sampled solutions of {len(items)} puzzles, {len(labels)} step labels "
        f"(mean {sum(labels) / len(labels):.2f}), {cfg.rollouts_per_step} rollouts per step",
        "solutions right": f"{sum(r['correct'] for r in rows) / len(rows):.2f}",
        "trained": f"value head + top {cfg.train_layers} language-model layers, {trainer.state.global_step} steps",
    }
    config = {k: v for k, v in asdict(cfg).items() if not k.startswith("_")}
    write_card(final, f"mmcot PRM on {cfg.model}", "prm", config, facts, time.time() - start, {"heldout": held})
    if cfg.publish:
        publish(final, cfg.publish)
    return final


class _ListDataset:
    def __init__(self, rows: list[dict]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]
