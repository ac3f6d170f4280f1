"""Fixtures for the controller tests: the scripted fake backend (control flow only) and a small test image."""

import importlib.util
from pathlib import Path

import pytest
from PIL import Image

_spec = importlib.util.spec_from_file_location("mmcot_tests_scripted", Path(__file__).with_name("scripted.py"))
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
