"""Fixtures for the models tests: a tiny LLaVA built from config with mmcot's own tokenizer, processor and chat
template (random weights), saved as a folder that ``load_model`` and ``load_backend`` take."""

import pytest

SENTENCES = [
    "what color is the circle? the red circle is left of the blue square.",
    "how many shapes are there? answer: 3. <think>count them</think><answer>3</answer>",
    'zoom in <tool_call>{"name": "crop", "arguments": {"image": "image_0"}}</tool_call> done',
]


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    import torch

    from mmcot.models.presets import TextArch, VisionArch, build_tiny
    from mmcot.models.tokenizer import train_tokenizer

    torch.manual_seed(0)
    tokenizer = train_tokenizer(SENTENCES * 20, vocab_size=320, min_frequency=1)
    model, processor = build_tiny(
        tokenizer,
        VisionArch(image_size=32, patch_size=8, vision_hidden_size=32, vision_layers=1, vision_heads=2),
        TextArch(
            text_hidden_size=64, text_layers=2, text_heads=4, text_intermediate_size=128, max_position_embeddings=768
        ),
    )
    folder = tmp_path_factory.mktemp("tiny-vlm")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_backend(tiny_folder):
    from mmcot.models.local import LocalBackend

    backend = LocalBackend.from_spec(str(tiny_folder))
    yield backend
    backend.close()
