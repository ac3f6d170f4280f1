"""Fixtures for the strategy tests: the scripted fake backend (control flow only), a small test image, and the
shipped tiny model (``mmcot/models/checkpoints/tiny``, loaded once per session) for the end-to-end tests."""

import importlib.util
from pathlib import Path

import pytest
from PIL import Image

_spec = importlib.util.spec_from_file_location(
    "mmcot_tests_scripted", Path(__file__).parents[1] / "agent" / "scripted.py"
)
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


@pytest.fixture(scope="session")
def tiny():
    """The shipped tiny model through the real LocalBackend (the one ``mmcot solve --model tiny`` uses)."""
    from mmcot.reasoning.solve import get_backend

    return get_backend("tiny")
