"""mmcot's chat template and processor: image parts anywhere, tool calls and results in the Hermes/Qwen convention,
generation markers (assistant-only loss), the thinking switch, and image-token bookkeeping with 1, 2 and 5 images in
user and tool messages."""

import json

import pytest
import torch
from PIL import Image

from mmcot.models.presets import TextArch, VisionArch, build_tiny
from mmcot.models.tokenizer import train_tokenizer

CALL = {"name": "zoom", "arguments": {"image": "image_0", "box": [0, 0, 10, 10]}}


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    texts = ["<|im_start|>user\nhow many red circles?<|im_end|>\n<think>zoom</think><answer>3</answer>"] * 20
    tokenizer = train_tokenizer(texts + [json.dumps(CALL)] * 10, vocab_size=300, min_frequency=1)
    return build_tiny(
        tokenizer,
        VisionArch(image_size=32, patch_size=8, vision_hidden_size=32, vision_layers=1, vision_heads=2),
        TextArch(text_hidden_size=32, text_layers=1, text_heads=2, text_intermediate_size=64),
    )


def img(color: str, size=(40, 30)) -> Image.Image:
    return Image.new("RGB", size, color)


def conversation(user_images: int, tool_images: int) -> list[dict]:
    user = [{"type": "image", "image": img("red")} for _ in range(user_images)]
    tool = [{"type": "image", "image": img("blue", (64, 64))} for _ in range(tool_images)]
    return [
        {"role": "user", "content": [*user, {"type": "text", "text": "how many?"}]},
        {
            "role": "assistant",
            "content": "<think>zoom</think>",
            "tool_calls": [{"type": "function", "function": CALL}],
        },
        {"role": "tool", "content": [{"type": "text", "text": "image_1: zoom of image_0"}, *tool]},
        {"role": "assistant", "content": "<answer>3</answer>"},
    ]


def test_renders_tool_calls_and_results_the_hermes_way(tiny):
    _, processor = tiny
    text = processor.apply_chat_template(conversation(1, 1), tokenize=False)
    assert text == (
        "<|im_start|>user\n<image>how many?<|im_end|>\n"
        "<|im_start|>assistant\n<think>zoom</think>\n<tool_call>\n" + json.dumps(CALL) + "\n</tool_call><|im_end|>\n"
        "<|im_start|>user\n<tool_response>\nimage_1: zoom of image_0<image>\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n<answer>3</answer><|im_end|>\n"
    )


def test_consecutive_tool_results_share_one_user_turn(tiny):
    _, processor = tiny
    messages = [{"role": "user", "content": "go"}, {"role": "tool", "content": "a"}, {"role": "tool", "content": "b"}]
    text = processor.apply_chat_template(messages, tokenize=False)
    assert text.endswith(
        "<|im_start|>user\n<tool_response>\na\n</tool_response>\n<tool_response>\nb\n</tool_response><|im_end|>\n"
    )


def test_tools_and_system_prompt_and_thinking_switch(tiny):
    _, processor = tiny
    tools = [{"type": "function", "function": {"name": "zoom", "parameters": {}}}]
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    text = processor.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\nBe brief.\n\n# Tools\n\n")
    assert "Tools:\n- zoom(): <|im_end|>" in text  # one line per tool: name, argument names, description
    assert text.endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    thinking = processor.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, enable_thinking=True
    )
    assert thinking.endswith("<|im_start|>assistant\n<think>")


def test_text_first_switch_puts_a_user_turns_text_before_its_images_only(tiny):
    from mmcot.models.processor import chat_template

    _, processor = tiny
    messages = [*conversation(2, 1), {"role": "user", "content": "and now?"}]
    text = processor.apply_chat_template(messages, tokenize=False, chat_template=chat_template(text_first=True))
    plain = processor.apply_chat_template(messages, tokenize=False)
    assert text.startswith("<|im_start|>user\nhow many?<image><image><|im_end|>\n")
    assert text.replace("how many?<image><image>", "<image><image>how many?") == plain  # tool turns keep their order
    out = processor.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_tensors="pt", chat_template=chat_template(text_first=True)
    )
    assert out["pixel_values"].shape[0] == 3  # the images still pair with their <image> tokens in order


def test_assistant_mask_covers_exactly_the_assistant_turns(tiny):
    _, processor = tiny
    out = processor.apply_chat_template(
        conversation(2, 1), tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = out["input_ids"][0], out["assistant_masks"][0]
    said = processor.tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if m])
    assert (
        said
        == "<think>zoom</think>\n<tool_call>\n"
        + json.dumps(CALL)
        + "\n</tool_call><|im_end|><answer>3</answer><|im_end|>"
    )


@pytest.mark.parametrize(
    ("user_images", "tool_images"), [(1, 0), (2, 0), (5, 0), (0, 1), (1, 1), (0, 2), (1, 4), (0, 5)]
)
def test_image_tokens_match_image_features(tiny, user_images, tool_images):
    model, processor = tiny
    out = processor.apply_chat_template(
        conversation(user_images, tool_images), tokenize=True, return_dict=True, return_tensors="pt"
    )
    n = user_images + tool_images
    assert out["pixel_values"].shape == (n, 3, 32, 32)
    assert int((out["input_ids"] == model.config.image_token_id).sum()) == n * 16  # (32 / 8)^2 patches, CLS dropped
    logits = model(**out).logits
    assert logits.shape[:2] == out["input_ids"].shape


def test_batch_with_different_image_counts(tiny):
    model, processor = tiny
    convs = [conversation(1, 0), conversation(2, 3), conversation(0, 1)]
    out = processor.apply_chat_template(
        convs, tokenize=True, return_dict=True, return_tensors="pt", processor_kwargs={"padding": True}
    )
    assert out["pixel_values"].shape[0] == 7
    assert model(**out).logits.shape[0] == 3
