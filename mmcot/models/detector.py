"""A small-object detector for region search: for every cell of an 8 x 8 grid over an image, which small object
(one of 7 colors x 3 shapes) has its center there, or none. Region search scores its tiles with it, as V*'s search
uses a localization model rather than asking the chat model yes or no (README, Reasoning strategies: smol's own
yes/no verdicts on tiles are at chance).

    mmcot train detector --config recipes/smol-detector.yaml [--publish smol]

It is a small CNN on the pixels (four stride-2 blocks, 0.59 M parameters) at the models' native 128 px, trained
here from scratch. A head on the VLM's own frozen tower was tried first and read the small shapes' colors but not
their shapes (README, Models): the tower was trained on filled shapes, these are thin outlines.
Training rows are crops of small_object training puzzles at the scales a search cuts (the whole image down to a
sixth of its side), most of them around one of the small shapes; labels come from the puzzle metadata.
``--publish NAME`` adds ``detector.safetensors`` and ``detector.json`` to a shipped checkpoint folder; a backend
over that folder then has ``backend.detector``.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainingArguments

from mmcot.evals.puzzles.render import COLORS, SHAPES
from mmcot.models.stage import StageArgs, StageError, last_checkpoint, log_config

SIZE, GRID = 128, 8  # input side in pixels (the models' native resolution), output cells per side
CLASSES = ["none"] + [f"{c} {s}" for c in COLORS for s in SHAPES]
FILES = ("detector.safetensors", "detector.json")


@dataclass
class DetectorConfig(StageArgs, TrainingArguments):
    output_dir: str = field(default="runs/detector", metadata={"help": "Checkpoints, logs and final/."})
    train_puzzles: int = field(default=2000, metadata={"help": "small_object training puzzles."})
    crops_per_puzzle: int = field(default=6, metadata={"help": "Crops cut from each puzzle."})
    check_puzzles: int = field(default=120, metadata={"help": "Validation puzzles for the check."})
    width: int = field(default=32, metadata={"help": "Channels of the first block (doubling, at most 128)."})
    publish: str = field(default="", metadata={"help": "Add the detector to this shipped checkpoint (e.g. smol)."})
    learning_rate: float = field(default=2e-3, metadata={"help": "AdamW learning rate."})
    per_device_train_batch_size: int = field(default=64, metadata={"help": "Crops per step."})
    num_train_epochs: float = field(default=6, metadata={"help": "Passes over the training crops."})
    warmup_steps: int = field(default=50, metadata={"help": "Linear warm-up steps."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Learning-rate schedule."})
    logging_steps: int = field(default=25, metadata={"help": "Log every N steps (TensorBoard, console)."})
    save_steps: int = field(default=200, metadata={"help": "Checkpoint every N steps."})
    save_total_limit: int = field(default=2, metadata={"help": "Checkpoints kept."})
    report_to: str = field(default="tensorboard", metadata={"help": "Where to log: tensorboard or none."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep the label column."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})

    def __post_init__(self):
        from mmcot.models.stage import cpu_defaults

        cpu_defaults(self)
        if self.publish and ("/" in self.publish or self.publish.startswith(".")):
            raise ValueError(f"--publish takes a checkpoint name such as smol, not a path ({self.publish!r})")
        TrainingArguments.__post_init__(self)


def crop_boxes(item, rng: random.Random, k: int) -> list[list[int]]:
    """``k`` square crops of a puzzle image at search scales; 60% centered near one of its small (hollow) shapes."""
    w, h = item.images[0].size
    small = [o for o in item.metadata["objects"] if o.get("hollow")]
    boxes = []
    for _ in range(k):
        side = min(w, h) / math.exp(rng.uniform(0, math.log(6))) if rng.random() < 0.9 else min(w, h)
        if small and rng.random() < 0.6:
            cx, cy = rng.choice(small)["center"]
            x0, y0 = cx - rng.uniform(0.1, 0.9) * side, cy - rng.uniform(0.1, 0.9) * side
        else:
            x0, y0 = rng.uniform(0, w - side), rng.uniform(0, h - side)
        x0, y0 = min(max(0, x0), w - side), min(max(0, y0), h - side)
        boxes.append([round(x0), round(y0), round(x0 + side), round(y0 + side)])
    return boxes


def labels(meta: dict, box: list[int], grid: int) -> list[int]:
    """Per cell of ``box`` cut into ``grid`` x ``grid``: the class of the small shape centered there, else 0."""
    out = [0] * (grid * grid)
    x0, y0, x1, y1 = box
    for o in meta["objects"]:
        cx, cy = o["center"]
        if o.get("hollow") and x0 <= cx < x1 and y0 <= cy < y1:
            col, row = int((cx - x0) / (x1 - x0) * grid), int((cy - y0) / (y1 - y0) * grid)
            out[row * grid + col] = 1 + COLORS.index(o["color"]) * len(SHAPES) + SHAPES.index(o["shape"])
    return out


class DetectorRows:
    """Crops of generated small_object puzzles with per-cell labels, cut and preprocessed once (float16 in memory)."""

    def __init__(self, puzzles: int, per_puzzle: int, seed: int = 0, split: str = "train"):
        import torch

        from mmcot.evals.puzzles import puzzle

        processor, pixels, cells = image_processor(), [], []
        for j in range(puzzles):
            item = puzzle("small_object", j, seed, split)
            boxes = crop_boxes(item, random.Random(f"detector/{seed}/{split}/{j}"), per_puzzle)
            crops = [item.images[0].crop(tuple(b)) for b in boxes]
            pixels.append(processor(crops, return_tensors="pt")["pixel_values"].half())
            cells += [labels(item.metadata, b, GRID) for b in boxes]
        self.pixels, self.labels = torch.cat(pixels), torch.tensor(cells)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"pixel_values": self.pixels[i].float(), "labels": self.labels[i]}


def image_processor():
    from mmcot.models.processor import build_image_processor

    return build_image_processor(SIZE)


def build_net(width: int):
    """Four stride-2 blocks (128 px -> an 8 x 8 grid), then a 1x1 convolution to the classes."""
    from torch import nn

    def block(i: int, o: int):
        return nn.Sequential(
            nn.Conv2d(i, o, 3, stride=2, padding=1), nn.BatchNorm2d(o), nn.GELU(),
            nn.Conv2d(o, o, 3, padding=1), nn.BatchNorm2d(o), nn.GELU(),
        )  # fmt: skip

    chans = [3] + [min(128, width * 2**k) for k in range(4)]
    return nn.Sequential(*(block(a, b) for a, b in itertools.pairwise(chans)), nn.Conv2d(chans[-1], len(CLASSES), 1))


class Detector:
    """Scores crops for a small target: the largest probability, over grid cells, that a shape matching ``color``
    and/or ``shape`` (None: any) is centered there."""

    def __init__(self, net):
        self.net, self.image_processor = net.eval(), image_processor()

    @classmethod
    def load(cls, folder: str | Path) -> Detector | None:
        """The detector saved in a model folder, or None when it has none. Raises ValueError if it is unreadable."""
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / FILES[0]).is_file():
            return None
        try:
            meta = json.loads((folder / FILES[1]).read_text())
            net = build_net(meta["width"])
            net.load_state_dict({k: v.float() for k, v in load_file(folder / FILES[0]).items()})
        except Exception as e:  # noqa: BLE001 - a corrupt file of any kind
            raise ValueError(f"cannot read the detector in {folder} (corrupt?): {type(e).__name__}: {e}") from None
        return cls(net)

    def score(self, crops: list, color: str | None, shape: str | None) -> list[tuple[float, tuple[float, float]]]:
        """Per crop: (score in [0, 1], where the best cell's center lies as fractions of the crop's width and
        height)."""
        import torch

        want = matching(color, shape)
        px = self.image_processor(crops, return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            p = self.net(px).softmax(1).flatten(2)[:, want].sum(1)  # (crops, cells)
        best, where = p.max(-1)
        g = math.isqrt(p.shape[1])
        return [
            (s, ((w % g + 0.5) / g, (w // g + 0.5) / g)) for s, w in zip(best.tolist(), where.tolist(), strict=True)
        ]

    def label(self, crop, at: tuple[float, float], color: str | None, shape: str | None) -> str:
        """The likeliest class matching ``color``/``shape`` (e.g. "green square") in the cell of ``crop`` that holds
        ``at`` (fractions of its width and height)."""
        import torch

        with torch.no_grad():
            p = self.net(self.image_processor([crop], return_tensors="pt")["pixel_values"])[0].flatten(1)
        g = math.isqrt(p.shape[1])
        cell = min(g - 1, int(at[1] * g)) * g + min(g - 1, int(at[0] * g))
        return CLASSES[max(matching(color, shape), key=lambda i: p[i, cell].item())]


def matching(color: str | None, shape: str | None) -> list[int]:
    """The detector's classes that have ``color`` and ``shape`` (None: any)."""
    return [
        i
        for i, name in enumerate(CLASSES[1:], 1)
        if (color is None or name.split()[0] == color) and (shape is None or name.split()[1] == shape)
    ]


def asked(query: dict) -> tuple[str | None, str | None]:
    """The color and shape a small_object question names (its query metadata); the one it asks about is None."""
    return (None if query["kind"] == "color" else query["color"]), (
        None if query["kind"] == "shape" else query["shape"]
    )


def check(detector: Detector, n: int, grid: int = 3, seed: int = 0) -> dict:
    """On validation puzzles that hold a target: how often the top-scored of ``grid`` x ``grid`` search tiles
    (25% overlap) contains it, and the same for a random tile."""
    from mmcot.evals.puzzles import generate
    from mmcot.tools.detect import tiles

    items = [
        it
        for it in generate("small_object", n=n, seed=seed, split="val")
        if it.metadata["query"]["target"] is not None
    ]
    hits = chance = 0.0
    for it in items:
        q = it.metadata["query"]
        x0, y0, x1, y1 = it.metadata["objects"][q["target"]]["bbox"]
        w, h = it.images[0].size
        boxes = tiles([0, 0, w, h], grid, 0.25)
        inside = [b[0] <= x0 and b[1] <= y0 and x1 <= b[2] and y1 <= b[3] for b in boxes]
        scores = [s for s, _ in detector.score([it.images[0].crop(tuple(b)) for b in boxes], *asked(q))]
        hits += inside[max(range(len(boxes)), key=scores.__getitem__)]
        chance += sum(inside) / len(inside)
    return {"puzzles": len(items), "top_tile": round(hits / max(1, len(items)), 3),
            "random_tile": round(chance / max(1, len(items)), 3), "grid": grid}  # fmt: skip


def main(cfg: DetectorConfig) -> Path:
    """Train the detector (resuming if a checkpoint exists), check it, save it with a model card."""
    import shutil

    import torch
    from safetensors.torch import save_file
    from torch import nn
    from transformers import Trainer

    from mmcot.models.card import add_eval, write_card
    from mmcot.models.load import CHECKPOINTS

    target = CHECKPOINTS / cfg.publish
    if cfg.publish and not (target / "config.json").is_file():
        raise StageError(f"--publish {cfg.publish}: {target} holds no checkpoint to add the detector to")
    config = log_config(cfg, "detector")
    start = time.time()
    torch.manual_seed(cfg.seed)
    net = build_net(cfg.width)
    weight = torch.ones(len(CLASSES))
    weight[0] = 0.2  # most cells hold nothing

    class Module(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, pixel_values, labels):
            logits = self.net(pixel_values).flatten(2).transpose(1, 2)
            return {"loss": nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), weight=weight)}

    rows = DetectorRows(cfg.train_puzzles, cfg.crops_per_puzzle, cfg.data_seed or 0)
    trainer = Trainer(model=Module(), args=cfg, train_dataset=rows)
    trainer.train(resume_from_checkpoint=last_checkpoint(cfg))
    detector = Detector(net)
    result = check(detector, cfg.check_puzzles)
    print(f"detector check (val): {result}", flush=True)
    out = Path(cfg.output_dir) / "final"
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.half().contiguous() for k, v in net.state_dict().items()}, out / FILES[0])
    meta = {"width": cfg.width, "size": SIZE, "grid": GRID, "classes": CLASSES}
    (out / FILES[1]).write_text(json.dumps(meta, indent=1) + "\n")
    facts = {
        "what": "a small-object detector for region search (mmcot/models/detector.py)",
        "data": f"{len(rows)} crops of {cfg.train_puzzles} small_object training puzzles (search scales)",
        "steps": f"{trainer.state.global_step} x {cfg.per_device_train_batch_size} crops",
        "seed": cfg.seed,
        "architecture": f"CNN, 4 stride-2 blocks from {cfg.width} channels, {SIZE} px -> {GRID}x{GRID} cells x "
        f"{len(CLASSES)} classes ({sum(p.numel() for p in net.parameters()) / 1e6:.2f} M parameters, float16)",
        "check (val puzzles)": f"the top-scored of {result['grid']}x{result['grid']} tiles holds the target in "
        f"{result['top_tile']:.0%} of {result['puzzles']} puzzles (a random tile: {result['random_tile']:.0%})",
    }
    write_card(out, "mmcot small-object detector", "detector", config, facts, time.time() - start, {"check": result})
    if cfg.publish:
        for name in FILES:
            shutil.copy(out / name, target / name)
        if (target / "mmcot_card.json").is_file():
            add_eval(target, "small-object detector (detector.safetensors): top tile, val", result)
        print(f"published into {target}", flush=True)
    return out
