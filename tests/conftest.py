"""Shared test set-up: offline Hugging Face, a guard that fails any test opening a non-loopback connection, and the
fixtures several areas use: the scripted fake backend (``tests/agent/scripted.py``, control flow only) and a small
image."""

import importlib.util
import ipaddress
import os
import socket
from pathlib import Path

import pytest
from PIL import Image

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_local(address) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a hostname other than localhost would need DNS: not local


class NetworkAccessError(RuntimeError):
    pass


def _guarded(real):
    def connect(self, address):
        if not _is_local(address):
            raise NetworkAccessError(f"test tried to open a network connection to {address!r}")
        return real(self, address)

    return connect


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _guarded(_real_connect))
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded(_real_connect_ex))
    yield


_spec = importlib.util.spec_from_file_location("mmcot_tests_scripted", Path(__file__).parent / "agent" / "scripted.py")
scripted = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scripted)


@pytest.fixture
def make_backend():
    """``make_backend(respond, delay=0)``: a ScriptedBackend whose replies come from ``respond(request)``."""
    return scripted.ScriptedBackend


@pytest.fixture
def last_text():
    return scripted.last_text


@pytest.fixture
def image():
    img = Image.new("RGB", (64, 48), "white")
    img.putpixel((50, 40), (255, 0, 0))
    return img


SENTENCES = [
    "how many red circles are there? <think>I look for red circles. One red circle at the top left.</think>",
    "<answer>3</answer> what color is the small triangle? the blue square is left of the green triangle.",
    '<tool_call>{"name": "zoom", "arguments": {"image": "image_0", "box": [0, 0, 32, 32]}}</tool_call>',
    "<tool_response>image_1 (32x32): zoom of image_0 box [0, 0, 32, 32], 1x</tool_response> error: tool call",
]


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    """A randomly initialized tiny LLaVA with mmcot's tokenizer, processor and chat template, saved as a folder that
    ``load_model``, ``load_backend`` and every training job take."""
    import torch

    from mmcot.models.data import tools_system
    from mmcot.models.presets import TextArch, VisionArch, build_tiny
    from mmcot.models.tokenizer import train_tokenizer

    torch.manual_seed(0)
    corpus = SENTENCES + [tools_system(("zoom", "crop"))]  # tool prompts stay short in tokens
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


@pytest.fixture
def packaged_base(monkeypatch):
    """``register(model, tokenizer) -> "test-base"``: a packaged base language model (as SmolLM2 is for smol) holding a
    copy of ``model``'s language model, so smol-style adapter folders are tested without SmolLM2."""
    import copy

    import torch

    from mmcot.models import load

    def register(model, tokenizer) -> str:
        lm, head = copy.deepcopy(model.model.language_model), copy.deepcopy(model.lm_head)

        class Base(torch.nn.Module):  # what smol_base returns: (a causal LM with .model, tokenizer)
            def __init__(self):
                super().__init__()
                self.model, self.lm_head = lm, head

        monkeypatch.setitem(load.BASES, "test-base", lambda: (Base(), tokenizer))
        return "test-base"

    return register
