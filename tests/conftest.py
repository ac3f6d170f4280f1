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
