"""Saving a trained model as a checkpoint folder that :func:`mmcot.models.load.load_model` reads back.

- A whole model (tiny): a plain ``save_pretrained`` folder (weights stored compactly, e.g. float16) plus the
  processor; ``AutoModelForImageTextToText`` and ``AutoProcessor`` load it, and so does vLLM.
- A model on a packaged base (smol): ``config.json``, the processor, ``mmcot_base.json`` naming the base language
  model, ``model.safetensors`` with only the weights trained here (vision tower, projector), and the PEFT LoRA adapter
  (``adapter_config.json``, ``adapter_model.safetensors``) when stage 2 trained one.
"""

from __future__ import annotations

import json
from pathlib import Path


def save_checkpoint(model, processor, out: str | Path, dtype: str = "float16", base: str | None = None) -> Path:
    """Write ``model`` (a LLaVA, or a PeftModel around one) and ``processor`` to ``out``; returns ``out``."""
    import torch
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cast = getattr(torch, dtype)
    processor.save_pretrained(out)
    if base is None:
        state = {k: v.detach().to(cast) if v.is_floating_point() else v for k, v in model.state_dict().items()}
        model.save_pretrained(out, state_dict=state)
        return out
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner.config.architectures = [type(inner).__name__]  # what vLLM and the Auto classes dispatch on
    inner.config.save_pretrained(out)
    inner.generation_config.save_pretrained(out)
    own = {
        k: v.detach().to(cast).contiguous()
        for k, v in inner.state_dict().items()
        if (".vision_tower." in f".{k}" or ".multi_modal_projector." in f".{k}") and "lora_" not in k
    }
    own = {k.replace(".base_layer", ""): v for k, v in own.items()}
    save_file(own, out / "model.safetensors", metadata={"format": "pt"})
    (out / "mmcot_base.json").write_text(json.dumps({"base": base}) + "\n")
    if hasattr(model, "peft_config"):
        model.save_pretrained(out)  # adapter_config.json + adapter_model.safetensors (LoRA weights only)
        _cast_adapter(out / "adapter_model.safetensors", cast)
    return out


def _cast_adapter(path: Path, cast) -> None:
    from safetensors.torch import load_file, save_file

    save_file({k: v.to(cast) for k, v in load_file(path).items()}, path, metadata={"format": "pt"})
