"""Fixtures for the tool tests: a sample image, a context, and one Python tool (with its warm pool) per session."""

from dataclasses import replace

import pytest
from PIL import Image, ImageDraw

from mmcot.tools import ToolContext
from mmcot.tools.kernels import KernelConfig
from mmcot.tools.python_tool import PythonTool
from mmcot.tools.sandbox import SandboxConfig

# The real sandbox with small limits. KERNELS serves the feature tests (a generous timeout: the CPU may be shared);
# ATTACKS, with a short timeout, serves the timeout tests and the attack suite.
LIMITS = SandboxConfig(enabled=True, memory_mb=1024, cpu_seconds=60, scratch_mb=64, max_file_mb=16)
KERNELS = KernelConfig(sandbox=LIMITS, timeout_s=30.0, max_output_chars=2000, max_message_mb=8, pool_size=1)
ATTACKS = replace(KERNELS, timeout_s=4.0, interrupt_grace_s=3.0)


def scene() -> Image.Image:
    """200x100, white, a red square at (20, 20)-(60, 60) and a blue circle around (150, 50)."""
    img = Image.new("RGB", (200, 100), "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle((20, 20, 59, 59), fill=(220, 30, 30))
    draw.ellipse((130, 30, 170, 70), fill=(30, 60, 220))
    return img


@pytest.fixture
def ctx():
    context = ToolContext(images={"image_0": scene()})
    yield context
    context.close()


@pytest.fixture(scope="module")
def kernel_state():
    """Per-conversation tool state shared by a module's tests, so they reuse one kernel instead of starting many."""
    state = {}
    yield state
    ToolContext(state=state).close()


@pytest.fixture
def pyctx(kernel_state):
    """A fresh conversation (its own image_0) on the module's kernel."""
    return ToolContext(images={"image_0": scene()}, state=kernel_state)


@pytest.fixture(scope="session")
def python_tool():
    return PythonTool(KERNELS)


@pytest.fixture(scope="session")
def attack_tool():
    return PythonTool(ATTACKS)
