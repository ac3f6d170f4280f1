"""``load_model(spec) -> (model, processor)``: every way mmcot names a vision-language model, in one place.

A spec is one of:
- a shipped checkpoint name: ``tiny``, ``smol`` or any folder name under ``mmcot/models/checkpoints/``
  (RL variants such as ``tiny-grpo`` land there too);
- a name plus ``-think`` (``smol-think``): the same weights with a chat template whose generation prompt opens
  ``<think>``, so the model reasons before it answers;
- a folder holding any transformers VLM (``AutoModelForImageTextToText`` + ``AutoProcessor``: a LLaVA, Qwen2.5-VL,
  Idefics3... folder a user downloaded, or a stage output from ``mmcot train``);
- a smol-style adapter folder (``mmcot_base.json`` + vision tower/projector weights + a PEFT LoRA adapter), whose
  base language model comes from an installed package.

Errors (unknown name, corrupt folder, missing package) raise :class:`ModelError` with what to do.

    >>> from mmcot.models.load import load_model
    >>> model, processor = load_model("tiny")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from mmcot.models.presets import ModelError, smol_base

CHECKPOINTS = Path(__file__).with_name("checkpoints")
BASES = {"smollm2-135m-instruct": smol_base}  # base language models an adapter folder may name


def shipped() -> list[str]:
    """Names of the checkpoints shipped in ``mmcot/models/checkpoints``."""
    if not CHECKPOINTS.is_dir():
        return []
    return sorted(p.name for p in CHECKPOINTS.iterdir() if (p / "config.json").is_file())


def resolve(spec: str) -> tuple[Path, bool]:
    """The folder a spec names and whether it asks for thinking (``-think``)."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return path, False
    if (CHECKPOINTS / spec / "config.json").is_file():
        return CHECKPOINTS / spec, False
    if spec.endswith("-think") and (CHECKPOINTS / spec[: -len("-think")] / "config.json").is_file():
        return CHECKPOINTS / spec[: -len("-think")], True
    if "/" in spec or spec.startswith("."):
        raise ModelError(f"model folder {spec!r} does not exist")
    names = ", ".join(shipped()) or "none yet"
    raise ModelError(
        f"unknown model {spec!r}: give a shipped name ({names}, each also as NAME-think), "
        "a folder holding a transformers VLM, or openai:URL#model"
    )


def adapter_folder(spec: str) -> Path | None:
    """The folder of a spec when it is a smol-style folder with a LoRA adapter (which LoRA training on top of it
    extends, see :func:`mmcot.models.checkpoint.stack_adapters`), else None."""
    try:
        folder, _ = resolve(spec)
    except ModelError:
        return None
    return folder if (folder / "mmcot_base.json").is_file() and (folder / "adapter_config.json").is_file() else None


def load_model(spec: str, dtype: str = "float32", device: str = "cpu"):
    """``(model, processor)`` for a spec (see the module doc), in eval mode, on ``device``."""
    folder, think = resolve(spec)
    if not (folder / "config.json").is_file():
        raise ModelError(f"{folder} holds no config.json: not a model folder (or an incomplete download)")
    if (folder / "mmcot_base.json").is_file():
        model, processor = _load_adapter_folder(folder, dtype)
    else:
        model, processor = _load_transformers_folder(folder, dtype)
    if think:
        from mmcot.models.processor import thinking

        if not (folder / "chat_template.jinja").is_file() or "think_default" not in processor.chat_template:
            raise ModelError(f"{spec!r}: -think needs a model with mmcot's chat template; {folder} has another one")
        processor.chat_template = thinking(processor.chat_template)
    return model.to(device).eval(), processor


def _load_transformers_folder(folder: Path, dtype: str):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(folder)
    except Exception as e:  # noqa: BLE001 - transformers raises many types for a broken folder
        raise ModelError(f"cannot load the processor in {folder}: {type(e).__name__}: {e}") from None
    if not hasattr(processor, "image_processor"):
        raise ModelError(f"{folder} holds a text-only model; mmcot needs a vision-language model")
    try:
        model = AutoModelForImageTextToText.from_pretrained(folder, dtype=dtype)
    except ImportError as e:
        raise ModelError(f"loading {folder} needs a missing package: {e}") from None
    except Exception as e:  # noqa: BLE001
        raise ModelError(
            f"cannot load the model in {folder} (corrupt or incomplete?): {type(e).__name__}: {e}"
        ) from None
    return model, processor


def _load_adapter_folder(folder: Path, dtype: str):
    """A smol-style folder: base LM from its package, then the folder's tower/projector weights and LoRA adapter."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoProcessor, LlavaConfig, LlavaForConditionalGeneration

    try:
        base_name = json.loads((folder / "mmcot_base.json").read_text())["base"]
        config = LlavaConfig.from_pretrained(folder)
        processor = AutoProcessor.from_pretrained(folder)
        weights = load_file(folder / "model.safetensors")
    except Exception as e:  # noqa: BLE001
        raise ModelError(
            f"cannot read the adapter checkpoint in {folder} (corrupt?): {type(e).__name__}: {e}"
        ) from None
    if base_name not in BASES:
        raise ModelError(f"{folder} needs base model {base_name!r}; known bases: {', '.join(BASES)}")
    lm, _ = BASES[base_name]()
    model = LlavaForConditionalGeneration(config)
    model.model.language_model.load_state_dict(lm.model.state_dict())
    model.lm_head.weight = model.model.language_model.embed_tokens.weight
    missing = set(weights) - set(model.state_dict())
    if missing:
        raise ModelError(f"{folder}/model.safetensors has weights this architecture lacks: {sorted(missing)[:3]}")
    model.load_state_dict({k: v.float() for k, v in weights.items()}, strict=False)
    if (folder / "adapter_config.json").is_file():
        from peft import PeftModel

        try:
            with warnings.catch_warnings():  # peft reads transformers' deprecated checkpointing alias; not ours to fix
                warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning)
                model = PeftModel.from_pretrained(model, folder).merge_and_unload()
        except Exception as e:  # noqa: BLE001
            raise ModelError(f"cannot apply the LoRA adapter in {folder}: {type(e).__name__}: {e}") from None
    model.generation_config.eos_token_id = processor.tokenizer.eos_token_id
    model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    return model.to(getattr(torch, dtype)), processor
