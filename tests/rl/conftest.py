"""Fixtures for the RL tests: a randomly initialized tiny LLaVA with mmcot's tokenizer, processor and chat template,
saved as a folder that ``load_model`` (and so every RL job) takes, plus a few puzzle items."""

import pytest
import torch

# One thread: on a shared, busy CPU two OpenMP threads run small matmuls about 15x slower than one (measured here).
torch.set_num_threads(1)

SENTENCES = [
    "how many red circles are there? <think>I look for red circles. One red circle at the top left.</think>",
    "<answer>3</answer> what color is the small triangle? the blue square is left of the green triangle.",
    '<tool_call>{"name": "zoom", "arguments": {"image": "image_0", "box": [0, 0, 32, 32]}}</tool_call>',
    "<tool_response>image_1 (32x32): zoom of image_0 box [0, 0, 32, 32], 1x</tool_response> error: tool call",
]


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    from mmcot.agent.nodes import tools_system
    from mmcot.models.presets import TextArch, VisionArch, build_tiny
    from mmcot.models.tokenizer import train_tokenizer
    from mmcot.tools import resolve_tools

    torch.manual_seed(0)
    corpus = SENTENCES + [tools_system(resolve_tools(["zoom", "crop"]))]  # tool prompts stay short in tokens
    tokenizer = train_tokenizer(corpus, vocab_size=1000, min_frequency=1)
    model, processor = build_tiny(
        tokenizer,
        VisionArch(image_size=32, patch_size=8, vision_hidden_size=32, vision_layers=1, vision_heads=2),
        TextArch(
            text_hidden_size=64, text_layers=2, text_heads=4, text_intermediate_size=128, max_position_embeddings=2048
        ),
    )
    folder = tmp_path_factory.mktemp("tiny-vlm")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def items():
    from mmcot.evals.puzzles import generate

    return generate(["count", "small_object"], n=4, seed=0, split="train")


@pytest.fixture(scope="session")
def teach():
    """``teach(folder, conversations, out) -> (out, final loss)``, see :func:`_teach`."""
    return _teach


def _teach(folder, conversations, out, steps=150, lr=3e-3):
    """Overfit the model in ``folder`` on ``conversations`` (full-sequence loss) and save it to ``out``: a real
    model that really emits what the test needs (a tool call, a right answer), in a second or two."""
    from mmcot.models.load import load_model

    torch.manual_seed(0)
    model, processor = load_model(str(folder))
    texts, images = [], []
    for conv in conversations:
        texts.append(processor.apply_chat_template(conv, tokenize=False))
        images += [
            p["image"] for m in conv if isinstance(m["content"], list) for p in m["content"] if p["type"] == "image"
        ]
    batch = processor(text=texts, images=images or None, padding=True, return_tensors="pt")
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = model(**batch, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out, loss.item()
