"""The ``python`` tool: run code in the conversation's own sandboxed Jupyter kernel, state kept between calls.

The first call of a conversation takes a warm kernel from the pool (kernels.py) and keeps it in
``ctx.state["python"]``; ``ctx.close()`` kills it. Before each call the conversation's new images are sent to the
kernel as PIL images named by id (``image_0``...; also in the dict ``images``), with numpy as ``np``. The output
comes back as text (stdout, stderr, the last expression, the traceback) and any figure or displayed image comes
back as a new image in the conversation. A kernel that dies or hangs is replaced, and the model is told that its
variables are gone.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mmcot.tools.base import Tool, ToolContext, ToolResult
from mmcot.tools.images import ImageError, open_image

if TYPE_CHECKING:  # the kernel machinery loads on first use
    from mmcot.tools.kernels import Execution, Kernel, KernelConfig

PRELUDE = """
import base64 as _b64, io as _io
import numpy as np
from PIL import Image
images = {}
def _mmcot_put(name, data):
    img = Image.open(_io.BytesIO(_b64.b64decode(data)))
    img.load()
    images[name] = img
    globals()[name] = img
"""


@dataclass
class Session:
    """One conversation's kernel and which images it already holds (by id and object: a context rebuilt with the
    same ids but other images sends them again)."""

    kernel: Kernel
    sent: dict[str, int] = field(default_factory=dict)

    def close(self) -> None:
        self.kernel.close()


class PythonTool(Tool):
    name = "python"
    description = (
        "Run Python code in a Jupyter kernel that keeps variables between calls (sandboxed: no network, no files "
        "outside /tmp, limited time and memory). The conversation's images are PIL images named by id (image_0, "
        "image_1, ...; also in the dict `images`); numpy is `np`. Printed output and the last expression come back "
        "as text; a matplotlib figure or a displayed PIL image comes back as a new image."
    )
    parameters = {
        "type": "object",
        "properties": {"code": {"type": "string", "description": "Python code to run, as in a notebook cell."}},
        "required": ["code"],
        "additionalProperties": False,
    }

    def __init__(self, config: KernelConfig | None = None) -> None:
        self._config = config

    @property
    def config(self) -> KernelConfig:
        """The kernels' config; without one, the defaults as of first use (so ``MMCOT_SANDBOX`` set late counts)."""
        from mmcot.tools.kernels import KernelConfig

        if self._config is None or self._config.prelude != PRELUDE:
            self._config = replace(self._config or KernelConfig(), prelude=PRELUDE)
        return self._config

    def setup(self, ctx: ToolContext) -> Session:
        """The conversation's session, taking a kernel from the warm pool on first use."""
        from mmcot.tools.kernels import get_pool

        session = ctx.state.get(self.name)
        if session is None or not session.kernel.alive():
            if session is not None:
                session.close()
            session = ctx.state[self.name] = Session(get_pool(self.config).take())
        return session

    def close(self, ctx: ToolContext) -> None:
        session = ctx.state.pop(self.name, None)
        if session is not None:
            session.close()

    def call(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
        from mmcot.tools.sandbox import SandboxUnavailable

        try:
            session = self.setup(ctx)
        except SandboxUnavailable as e:
            return ToolResult(error=f"the python tool is unavailable: {e}")
        notes = self._send_images(session, ctx)
        run = session.kernel.execute(arguments["code"])
        if run.status in ("died", "killed"):
            self.close(ctx)
            try:
                self.setup(ctx)
                run.error = f"{run.error}; the kernel was restarted and variables from earlier calls are gone"
            except (SandboxUnavailable, RuntimeError) as e:
                run.error = f"{run.error}; the kernel could not be restarted: {e}"
        return self._result(run, notes)

    def _send_images(self, session: Session, ctx: ToolContext) -> list[str]:
        notes = []
        for image_id, img in ctx.images.items():
            if session.sent.get(image_id) == id(img):
                continue
            buf = io.BytesIO()
            img.save(buf, format="PNG", compress_level=1)
            data = base64.b64encode(buf.getvalue()).decode()
            sent = session.kernel.execute(f"_mmcot_put({image_id!r}, {data!r})", silent=True)
            if sent.status == "ok":
                session.sent[image_id] = id(img)
            else:
                notes.append(f"{image_id} could not be loaded into the kernel ({sent.error or sent.status})")
        return notes

    def _result(self, run: Execution, notes: list[str]) -> ToolResult:
        images, captions = [], []
        for n, png in enumerate(run.images, 1):
            try:
                images.append(open_image(png))
                captions.append(f"python output image {n}")
            except ImageError as e:
                notes.append(f"output image {n} was refused: {e}")
        text = run.text.rstrip()
        notes += run.notes
        if notes:
            text = (text + "\n" if text else "") + "\n".join(f"[{note}]" for note in notes)
        if not text and not images and run.error is None:
            text = "(no output)"
        meta = {"status": run.status}
        return ToolResult(text=text, images=images, captions=captions, error=run.error, metadata=meta)
