"""Every strategy end to end with the shipped tiny model (``mmcot/models/checkpoints/tiny``) and the real tools:
transformers batching, shared prefills, forced prefixes, stop strings, images and tool calls all for real. Knobs are
cut down so the default suite stays fast; nothing here asserts accuracy (the eval runs in the README measure that).
The slow tests run each strategy with its default knobs on a puzzle of the family it is for."""

import json
from dataclasses import replace

import pytest
from PIL import Image, ImageDraw

from mmcot.evals.puzzles import generate
from mmcot.reasoning import STRATEGIES
from mmcot.reasoning.solve import solve

SMALL = {
    "cot": {"max_tokens": 8},
    "direct": {"max_tokens": 4},
    "describe": {"describe_tokens": 6, "max_tokens": 6},
    "staged": {"stage_tokens": 4, "max_tokens": 4},
    "self-consistency": {"n": 3, "max_tokens": 6, "seed": 0},
    "best-of-n": {"n": 3, "max_tokens": 6, "seed": 0},
    "tot": {"breadth": 2, "beam": 2, "depth": 2, "step_tokens": 4, "max_tokens": 6},
    "got": {"k": 2, "rounds": 1, "max_tokens": 6},
    "image-loop": {"max_tokens": 8, "max_turns": 2},
    "region-search": {"max_depth": 2, "max_tokens": 6, "max_expansions": 2},
    "react": {"max_tokens": 8, "max_turns": 2, "tools": "search"},
}
FAMILY = {
    "direct": "count", "cot": "count", "describe": "attribute", "staged": "spatial", "self-consistency": "count",
    "best-of-n": "count", "tot": "count", "got": "attribute", "image-loop": "small_object",
    "region-search": "small_object", "react": "arithmetic",
}  # fmt: skip
DEFAULT = {"self-consistency": {"n": 4, "seed": 0}, "best-of-n": {"n": 4, "seed": 0}, "react": {"tools": "python"}}
ENDS = {"answer", "no_answer", "max_turns"}


@pytest.fixture
def scene():
    img = Image.new("RGB", (96, 96), "white")
    ImageDraw.Draw(img).ellipse([60, 10, 70, 20], fill="red")
    return img


def well_formed(trace, size=None):
    assert trace.stop_reason in ENDS, trace.stop_reason
    searched = any(n.kind == "crop" for n in trace.nodes)  # region search answers where/whether questions itself
    assert searched or (trace.model_calls >= 1 and trace.completion_tokens >= 1 and trace.prompt_tokens > 0)
    assert trace.nodes and all(p < n.id for n in trace.nodes for p in n.parents)
    assert all(i in trace.images for n in trace.nodes for i in n.images)
    if size:
        assert trace.images["image_0"].size == size


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_strategy_runs_on_the_shipped_model(name, tiny, scene):
    assert set(SMALL) == set(STRATEGIES) == set(FAMILY)
    trace = solve(scene, "What color is the small circle?", strategy=name, backend=tiny, **SMALL[name])
    well_formed(trace, (96, 96))
    if name == "region-search":
        crops = [n for n in trace.nodes if n.kind == "crop"]
        assert trace.model_calls >= 1  # a color question: the model answers on the zoomed crop
        assert len(crops) >= 4 and all(trace.images[n.images[0]].size[0] < 96 for n in crops)


def test_a_seeded_tree_of_thoughts_samples_the_same_thoughts_twice(tiny, scene):
    """One level: one request. (Deeper, parallel states share batches by timing, and padding can move a logit.)"""

    def thoughts():
        knobs = SMALL["tot"] | {"breadth": 4, "depth": 1, "step_tokens": 6, "seed": 3}
        trace = solve(scene, "How many shapes are there?", strategy="tot", backend=tiny, **knobs)
        return [n.text for n in trace.nodes if n.kind == "thought"]

    assert thoughts() == thoughts()


class FirstTurn:
    """The shipped model, except that the text of its first model turn is replaced by ``text`` (the tiny model is too
    weak to write a valid tool call on its own). The tool then runs for real and the real model reads its result."""

    def __init__(self, model, text: str):
        self.model, self.text, self.requests = model, text, []
        self.name, self.processor = model.name, model.processor

    def generate(self, requests):
        self.requests.append(requests)
        out = self.model.generate(requests)
        if len(self.requests) == 1:
            out = [[replace(c, text=self.text) for c in cs] for cs in out]
        return out


def test_image_loop_zooms_with_the_real_tool_and_the_model_looks(tiny, scene):
    call = {"name": "zoom", "arguments": {"image": "image_0", "box": [0.5, 0, 1, 0.5], "normalized": True}}
    backend = FirstTurn(tiny, f"I zoom in.</think>\n<tool_call>\n{json.dumps(call)}\n</tool_call>")
    trace = solve(scene, "What color is the small circle?", strategy="image-loop", backend=backend, max_tokens=8)
    (result,) = [n for n in trace.nodes if n.kind == "tool_result"]
    assert {k: result.tool_call[k] for k in call} == call and not result.meta.get("error") and result.images
    assert trace.images[result.images[0]].size[0] > 48  # the quarter was enlarged to the model's input size
    tool_turn = backend.requests[1][0].messages[-1]  # the model's next turn saw the zoomed image
    assert tool_turn["role"] == "tool" and any(p["type"] == "image" for p in tool_turn["content"])
    well_formed(trace)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_strategy_with_its_defaults_on_its_family(name, tiny):
    (item,) = generate(FAMILY[name], n=1, seed=0, split="test")
    trace = solve(item, strategy=name, backend=tiny, **DEFAULT.get(name, {}))
    well_formed(trace)


@pytest.mark.slow
def test_react_runs_python_in_the_sandboxed_kernel(tiny):
    (item,) = generate("arithmetic", n=1, seed=1, split="test")
    call = {"name": "python", "arguments": {"code": "print(6 * 7)"}}
    backend = FirstTurn(tiny, f"I compute it with Python.</think>\n<tool_call>\n{json.dumps(call)}\n</tool_call>")
    trace = solve(item, strategy="react", backend=backend, tools="python", max_turns=3, max_tokens=8)
    (result,) = [n for n in trace.nodes if n.kind == "tool_result"]
    assert {k: result.tool_call[k] for k in call} == call and not result.meta.get("error") and "42" in result.text
    assert "42" in str(backend.requests[1][0].messages[-1]["content"])
    well_formed(trace)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["smol", "tiny"])
def test_region_search_on_a_shipped_model_scores_tiles_with_its_detector(model):
    """Both shipped models carry the small-object detector (detector.safetensors): region search scores its tiles
    with it, zooms onto the patch it picks and asks the model only for the answer."""
    from mmcot.models.backend import load_backend

    backend = load_backend(model)
    items = [
        it for it in generate("small_object", n=12, seed=0, split="test") if it.metadata["query"]["kind"] == "shape"
    ]
    trace = solve(items[0], strategy="region-search", backend=backend, think=False, max_tokens=8)
    well_formed(trace)
    crops = [n for n in trace.nodes if n.kind == "crop"]
    assert crops and all(n.text.startswith("detector: ") and "point" in n.meta for n in crops)
    assert trace.model_calls == 1  # the tiles cost no model calls
    backend.close()
