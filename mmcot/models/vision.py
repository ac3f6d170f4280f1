"""Vision pretraining: teach the CLIP tower what the questions need before any language model sees it.

    mmcot train vision --preset tiny --config recipes/tiny-vision.yaml [--max_steps 1500 ...]

Two objectives, selectable and combinable (``--objective heads|contrastive|both``):

- ``heads``: supervised linear heads on the last layer's patch tokens (the very features LLaVA's projector reads),
  with targets from the puzzle metadata (``targets.py``): per-patch color, what covers the patch, object centers
  with their offset and size, and clock hand angles from the pooled tokens.
- ``contrastive``: the seed's CLIP loss, a symmetric InfoNCE between pooled image features and a small text encoder
  over the image's description, with a learnable temperature.

The tower is then checked on its own on validation puzzles (``check_tower``: per-patch color and shape accuracy,
center detection, and the count a reader of the center patches would give on count puzzles) and saved as a
``CLIPVisionModel`` folder (plus the heads) with a model card. ``benchmarks/vision_objectives.py`` runs both
objectives side by side for the same time and compares them with the same probe.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainingArguments

from mmcot.models.presets import VisionArch
from mmcot.models.stage import StageArgs, StageError

VISION_FAMILY_WEIGHTS = (
    "count:3,attribute:2,spatial:2,odd_one_out:1,small_object:1,rotation:1,pattern:1,bar_chart:1.5,clock:1.5"
)
CAPTION_TOKENS = 96


@dataclass
class VisionConfig(StageArgs, VisionArch, TrainingArguments):
    output_dir: str = field(default="", metadata={"help": "Where checkpoints and the tower go (runs/PRESET/vision)."})
    objective: str = field(default="heads", metadata={"help": "heads, contrastive or both."})
    families: str = field(
        default=VISION_FAMILY_WEIGHTS,
        metadata={"help": "Puzzle families and their weights, 'family:weight,...' (families without geometry add "
                  "nothing to the heads objective)."},
    )  # fmt: skip
    train_samples: int = field(default=200_000, metadata={"help": "Length of the (generated) training set."})
    check_samples: int = field(default=300, metadata={"help": "Validation puzzles for the tower check."})
    tokenizer_path: str = field(
        default="runs/tiny/tokenizer", metadata={"help": "Tokenizer of the contrastive objective's text encoder."}
    )
    data_seed_offset: int = field(default=0, metadata={"help": "Seed of the generated puzzles."})
    learning_rate: float = field(default=1e-3, metadata={"help": "AdamW learning rate."})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Images per step."})
    max_steps: int = field(default=1500, metadata={"help": "Training steps."})
    warmup_steps: int = field(default=50, metadata={"help": "Linear warm-up steps."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Learning-rate schedule."})
    logging_steps: int = field(default=25, metadata={"help": "Log every N steps (TensorBoard, console)."})
    save_steps: int = field(default=250, metadata={"help": "Checkpoint every N steps."})
    save_total_limit: int = field(default=2, metadata={"help": "Checkpoints kept."})
    report_to: str = field(default="tensorboard", metadata={"help": "Where to log: tensorboard or none."})
    dataloader_num_workers: int = field(default=1, metadata={"help": "Processes generating puzzles."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep every target column."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})

    def __post_init__(self):
        from mmcot.models.stage import cpu_defaults

        cpu_defaults(self)
        VisionArch.__post_init__(self)
        if self.objective not in ("heads", "contrastive", "both"):
            raise ValueError(f"objective must be heads, contrastive or both, got {self.objective!r}")
        self.output_dir = self.output_dir or f"runs/{self.preset}/vision"
        TrainingArguments.__post_init__(self)


class VisionRows:
    """Generated puzzle images with their dense targets (and tokenized descriptions for the contrastive loss)."""

    def __init__(self, families: str, size: int, image_size: int, patch_size: int, seed: int = 0,
                 split: str = "train", tokenizer=None):  # fmt: skip
        from mmcot.models.data import parse_weights
        from mmcot.models.processor import build_image_processor

        weights = parse_weights(families)
        self.families, self.weights = list(weights), list(weights.values())
        self.size, self.seed, self.split = size, seed, split
        self.image_size, self.grid = image_size, image_size // patch_size
        self.processor = build_image_processor(image_size)
        self.tokenizer = tokenizer

    def __len__(self) -> int:
        return self.size

    def item(self, i: int):
        from mmcot.evals.puzzles import puzzle

        rng = random.Random(f"vision/{self.seed}/{self.split}/{i}")
        return puzzle(rng.choices(self.families, self.weights)[0], i, self.seed, self.split), rng

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch

        from mmcot.models.data import describe
        from mmcot.models.targets import targets

        item, rng = self.item(i)
        k = rng.randrange(len(item.images))
        pixels = self.processor(item.images[k], return_tensors="pt")["pixel_values"][0]
        row = {"pixel_values": pixels}
        dense = targets(item, k, self.image_size, self.grid)
        row.update({name: torch.from_numpy(v) for name, v in dense.items() if name != "thing"})  # no head for it
        if self.tokenizer is not None:
            ids = self.tokenizer(describe(item), truncation=True, max_length=CAPTION_TOKENS)["input_ids"]
            pad = CAPTION_TOKENS - len(ids)
            row["caption_ids"] = torch.tensor(ids + [self.tokenizer.pad_token_id] * pad)
            row["caption_mask"] = torch.tensor([1] * len(ids) + [0] * pad)
        return row


def build_pretrainer(tower, objective: str, vocab_size: int = 0):
    """The tower plus its training heads, as one module whose forward returns ``{"loss": ...}``."""
    import torch
    from torch import nn

    from mmcot.models.targets import COLORS, SHAPES

    class VisionPretrainer(nn.Module):
        def __init__(self):
            super().__init__()
            d = tower.config.hidden_size
            self.tower, self.objective = tower, objective
            self.color, self.shape = nn.Linear(d, len(COLORS) + 1), nn.Linear(d, len(SHAPES))
            self.center, self.offset, self.size = nn.Linear(d, 2), nn.Linear(d, 2), nn.Linear(d, 1)
            self.clock = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, 4))
            self.grid = int(tower.config.image_size // tower.config.patch_size)
            self.position = nn.Linear(d, 2 * self.grid)  # each patch keeps its row and column linearly readable
            if objective != "heads":
                layer = nn.TransformerEncoderLayer(d, 4, 4 * d, batch_first=True, norm_first=True)
                self.text_embed = nn.Embedding(vocab_size, d)
                self.text_pos = nn.Parameter(torch.zeros(CAPTION_TOKENS, d))
                self.text_encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
                self.image_proj, self.text_proj = nn.Linear(d, d, bias=False), nn.Linear(d, d, bias=False)
                self.logit_scale = nn.Parameter(torch.tensor(2.659))  # log(1/0.07), as CLIP starts

        def patches(self, pixel_values):
            return self.tower(pixel_values=pixel_values).last_hidden_state[:, 1:]

        def forward(self, pixel_values, color, shape, center, offset, size, mask, clock, clock_mask,
                    caption_ids=None, caption_mask=None):  # fmt: skip
            f = nn.functional
            x = self.patches(pixel_values)
            losses = {}
            if self.objective != "contrastive":
                losses["color"] = f.cross_entropy(self.color(x).flatten(0, 1), color.flatten(), ignore_index=-100)
                losses["shape"] = f.cross_entropy(self.shape(x).flatten(0, 1), shape.flatten(), ignore_index=-100)
                losses["center"] = f.cross_entropy(
                    self.center(x).flatten(0, 1), center.flatten(), ignore_index=-100,
                    weight=torch.tensor([1.0, 2.0]),  # centers are rare: 1 patch in 10-60
                )  # fmt: skip
                m = mask.unsqueeze(-1)
                denom = mask.sum().clamp(min=1)
                losses["offset"] = 5 * ((self.offset(x).sigmoid() - offset) ** 2 * m).sum() / denom
                losses["size"] = 20 * ((self.size(x).squeeze(-1).sigmoid() - size) ** 2 * mask).sum() / denom
                g = self.grid
                rows = torch.arange(g * g) // g
                pos = self.position(x).view(-1, g * g, 2, g)
                losses["position"] = 0.5 * (
                    f.cross_entropy(pos[:, :, 0].flatten(0, 1), rows.repeat(len(x)))
                    + f.cross_entropy(pos[:, :, 1].flatten(0, 1), (torch.arange(g * g) % g).repeat(len(x)))
                )
                cm = clock_mask.squeeze(-1)
                losses["clock"] = ((self.clock(x.mean(1)) - clock) ** 2).sum(-1).mul(cm).sum() / cm.sum().clamp(min=1)
            if self.objective != "heads":
                img = f.normalize(self.image_proj(x.mean(1)), dim=-1)
                t = self.text_embed(caption_ids) + self.text_pos[: caption_ids.shape[1]]
                t = self.text_encoder(t, src_key_padding_mask=caption_mask == 0)
                t = (t * caption_mask.unsqueeze(-1)).sum(1) / caption_mask.sum(1, keepdim=True)
                txt = f.normalize(self.text_proj(t), dim=-1)
                logits = self.logit_scale.exp().clamp(max=100) * img @ txt.T
                labels = torch.arange(len(img))
                losses["clip"] = (f.cross_entropy(logits, labels) + f.cross_entropy(logits.T, labels)) / 2
            return {"loss": sum(losses.values()), **{f"loss_{k}": v.detach() for k, v in losses.items()}}

    return VisionPretrainer()


def new_tower(arch: VisionArch):
    from transformers import CLIPVisionModel

    from mmcot.models.presets import vision_config

    return CLIPVisionModel(vision_config(arch))


@dataclass
class TowerCheck:
    """How well the tower alone encodes what the questions need (validation puzzles, linear heads)."""

    color_accuracy: float  # on patches covered by something
    shape_accuracy: float
    center_recall: float  # object centers found
    center_precision: float
    count_accuracy: float  # count puzzles answered by counting predicted center patches that match the query
    clock_error_deg: float  # mean absolute minute-hand angle error on clocks
    n_images: int


def check_tower(module, rows: VisionRows, batch_size: int = 32) -> TowerCheck:
    """Run ``module`` (a VisionPretrainer with trained heads) over ``rows``; see :class:`TowerCheck`."""
    import math

    import torch

    from mmcot.models.targets import COLORS, SHAPES

    module.eval()
    hits = {"color": [0, 0], "shape": [0, 0], "recall": [0, 0], "precision": [0, 0], "count": [0, 0]}
    clock_err = []
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            idx = list(range(start, min(len(rows), start + batch_size)))
            batch = [rows[i] for i in idx]
            pixels = torch.stack([b["pixel_values"] for b in batch])
            x = module.patches(pixels)
            color, shape = module.color(x).argmax(-1), module.shape(x).argmax(-1)
            center = module.center(x).argmax(-1)
            clock = module.clock(x.mean(1))
            for j, (i, b) in enumerate(zip(idx, batch, strict=True)):
                covered = b["color"] >= 0
                obj = covered & (b["shape"] > 0)
                hits["color"][0] += int((color[j][obj] == b["color"][obj]).sum())
                hits["color"][1] += int(obj.sum())
                hits["shape"][0] += int((shape[j][obj] == b["shape"][obj]).sum())
                hits["shape"][1] += int(obj.sum())
                gt_c = (b["center"] == 1) & covered
                hits["recall"][0] += int((center[j][gt_c] == 1).sum())
                hits["recall"][1] += int(gt_c.sum())
                hits["precision"][0] += int(((center[j] == 1) & gt_c).sum())
                hits["precision"][1] += int(((center[j] == 1) & covered).sum())
                item, _ = rows.item(i)
                if item.category == "count":
                    q = item.metadata["query"]
                    want_c = COLORS.index(q["color"]) + 1 if q.get("color") else None
                    want_s = SHAPES.index(q["shape"]) if q.get("shape") else None
                    found = (center[j] == 1) & (shape[j] > 0)
                    if want_c is not None:
                        found &= color[j] == want_c
                    if want_s is not None:
                        found &= shape[j] == want_s
                    hits["count"][0] += int(int(found.sum()) == int(item.answer))
                    hits["count"][1] += 1
                if float(b["clock_mask"][0]):
                    pred = math.degrees(math.atan2(float(clock[j][2]), float(clock[j][3])))
                    true = math.degrees(math.atan2(float(b["clock"][2]), float(b["clock"][3])))
                    clock_err.append(abs((pred - true + 180) % 360 - 180))
    module.train()

    def ratio(k: str) -> float:
        return round(hits[k][0] / max(1, hits[k][1]), 4)

    return TowerCheck(
        color_accuracy=ratio("color"),
        shape_accuracy=ratio("shape"),
        center_recall=ratio("recall"),
        center_precision=ratio("precision"),
        count_accuracy=ratio("count"),
        clock_error_deg=round(sum(clock_err) / max(1, len(clock_err)), 1),
        n_images=len(rows),
    )


def main(cfg: VisionConfig) -> Path:
    """Train the tower (resuming if a checkpoint exists), check it alone, save it with its heads and model card."""
    import torch
    from transformers import AutoTokenizer, Trainer

    from mmcot.models.card import write_card
    from mmcot.models.stage import last_checkpoint, load_preset, log_config

    load_preset(cfg.preset)  # validates the name; both presets share this tower
    config = log_config(cfg, "vision")
    start = time.time()
    torch.manual_seed(cfg.seed)
    tokenizer = None
    if cfg.objective != "heads":
        if not Path(cfg.tokenizer_path).is_dir():
            raise StageError(f"the contrastive objective needs a tokenizer: {cfg.tokenizer_path} does not exist")
        tokenizer = AutoTokenizer.from_pretrained(cfg.tokenizer_path)
    module = build_pretrainer(new_tower(cfg), cfg.objective, len(tokenizer) if tokenizer else 0)
    rows = VisionRows(cfg.families, cfg.train_samples, cfg.image_size, cfg.patch_size, cfg.data_seed_offset,
                      tokenizer=tokenizer)  # fmt: skip
    trainer = Trainer(model=module, args=cfg, train_dataset=rows)
    trainer.train(resume_from_checkpoint=last_checkpoint(cfg))
    check_rows = VisionRows(cfg.families, cfg.check_samples, cfg.image_size, cfg.patch_size, cfg.data_seed_offset,
                            split="val")  # fmt: skip
    check = check_tower(module, check_rows) if cfg.objective != "contrastive" else None
    out = Path(cfg.output_dir) / "final"
    module.tower.save_pretrained(out)
    heads = {k: v for k, v in module.state_dict().items() if not k.startswith("tower.")}
    torch.save(heads, out / "heads.pt")
    (out / "mmcot_stage.json").write_text(json.dumps({"stage": "vision", "check": check and asdict(check)}) + "\n")
    facts = {
        "data": f"generated puzzles (train split), families {cfg.families}",
        "objective": cfg.objective,
        "steps": f"{trainer.state.global_step} x {cfg.per_device_train_batch_size} images",
        "seed": cfg.seed,
        "architecture": f"CLIP ViT {cfg.image_size}px, patch {cfg.patch_size}, {cfg.vision_layers} x "
        f"{cfg.vision_hidden_size}, {sum(p.numel() for p in module.tower.parameters()) / 1e6:.2f} M parameters",
    }
    if check:
        facts["tower check (val puzzles)"] = ", ".join(f"{k} {v}" for k, v in asdict(check).items())
    write_card(out, "mmcot vision tower", "vision", config, facts, time.time() - start)
    print(f"tower check: {check}", flush=True)
    return out
