"""Saving a trained model as a checkpoint folder that :func:`mmcot.models.load.load_model` reads back.

- A whole model (tiny): a plain ``save_pretrained`` folder (weights stored compactly, e.g. float16) plus the
  processor; ``AutoModelForImageTextToText`` and ``AutoProcessor`` load it, and so does vLLM.
- A model on a packaged base (smol): ``config.json``, the processor, ``mmcot_base.json`` naming the base language
  model, ``model.safetensors`` with only the weights trained here (vision tower, projector), and the PEFT LoRA adapter
  (``adapter_config.json``, ``adapter_model.safetensors``) when stage 2 trained one. A LoRA trained on top of such
  a model (RL on smol) is folded into the folder's own adapter by :func:`stack_adapters`, so the result keeps this
  small format.
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


def stack_adapters(first: Path, out: Path, dtype: str = "float16") -> None:
    """Fold ``first``'s LoRA adapter into the one saved in ``out``, which was trained on top of ``first`` merged.

    Two LoRAs on the same layers add up: ``s1 B1 A1 + s2 B2 A2 = [s1 B1 | s2 B2] [A1; A2]``, one adapter of rank
    ``r1 + r2`` with scale 1, so the result loads exactly as the two applied one after the other.
    """
    import torch
    from safetensors.torch import load_file, save_file

    configs = [json.loads((f / "adapter_config.json").read_text()) for f in (first, out)]
    scales = [c["lora_alpha"] / c["r"] for c in configs]
    weights = [load_file(f / "adapter_model.safetensors") for f in (first, out)]
    if set(weights[0]) != set(weights[1]):
        raise ValueError(f"the adapters in {first} and {out} cover different layers; cannot stack them")
    stacked = {}
    for key, a in weights[0].items():
        b = weights[1][key]
        if ".lora_A." in key:
            stacked[key] = torch.cat([a.float(), b.float()], 0)
        else:  # lora_B: (out, r), scales folded in
            stacked[key] = torch.cat([a.float() * scales[0], b.float() * scales[1]], 1)
    cast = getattr(torch, dtype)
    save_file({k: v.to(cast).contiguous() for k, v in stacked.items()}, out / "adapter_model.safetensors")
    rank = configs[0]["r"] + configs[1]["r"]
    config = {**configs[0], "r": rank, "lora_alpha": rank, "rank_pattern": {}, "alpha_pattern": {}}
    (out / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
