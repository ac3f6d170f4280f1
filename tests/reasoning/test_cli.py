"""``mmcot strategies`` and ``mmcot solve`` end to end: real model folder, real images, clear errors."""

import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from mmcot.cli import app
from mmcot.reasoning import STRATEGIES

runner = CliRunner()


@pytest.fixture
def image_file(tmp_path):
    path = tmp_path / "scene.png"
    Image.new("RGB", (64, 64), "white").save(path)
    return path


def test_strategies_lists_names_descriptions_and_knobs():
    result = runner.invoke(app, ["strategies"])
    assert result.exit_code == 0
    for name, strategy in STRATEGIES.items():
        assert f"{name:<17} {strategy.description}" in result.output
    assert "--breadth 4" in result.output and "--value self" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--strategy", "nope"], "unknown strategy 'nope'"),
        (["--strategy", "tot", "--breath", "4"], "unknown knob 'breath' for strategy tot"),
        (["--strategy", "tot", "--breadth", "four"], "knob 'breadth' expects int, got 'four'"),
        (["--strategy", "tot", "--breadth", "0"], "breadth, beam, depth and judge_samples must be at least 1"),
        (["--strategy", "best-of-n", "--verifier", "nowhere:thing"], "cannot load verifier 'nowhere:thing'"),
        (["--strategy", "best-of-n", "--verifier", "mmcot.rl.prm:Verifier"], "set $MMCOT_PRM to the final/ folder"),
        (["--image", "missing.png"], "cannot read image file"),
        (["--strategy", "cot", "--tools", "zoom"], "strategy cot does not call tools"),
        (["--strategy", "image-loop", "--tools", "hammer"], "unknown tool 'hammer'"),
        (["--choice", "only"], "at least two --choice"),
        (["--resume"], "--resume needs --thread"),
    ],
)
def test_bad_input_gets_a_clear_error(args, message, image_file, tiny, monkeypatch):
    monkeypatch.delenv("MMCOT_PRM", raising=False)
    if "--resume" in args:
        base = ["solve", "--model", "tiny"]
    else:
        base = ["solve", "--question", "How many?", "--model", "tiny"]
        base += [] if "--image" in args else ["--image", str(image_file)]
    result = runner.invoke(app, base + args)
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output


def test_not_an_image_is_refused(tmp_path, tiny):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a picture")
    result = runner.invoke(app, ["solve", "-q", "q?", "--image", str(bad), "--model", "tiny"])
    assert result.exit_code == 1 and "not a readable image" in result.output


def test_unknown_model_is_a_clear_error(image_file):
    result = runner.invoke(app, ["solve", "-q", "q?", "--image", str(image_file), "--model", "no-such-model"])
    assert result.exit_code == 1 and "unknown model 'no-such-model'" in result.output


def test_solve_prints_the_trace_and_the_answer(image_file, tiny, tmp_path):
    out = tmp_path / "run"
    args = ["solve", "-q", "How many?", "--image", str(image_file), "--model", "tiny", "--strategy",
            "self-consistency", "--n", "2", "--max-tokens", "5", "--out", str(out)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "[0] thought:" in result.output and "[2] score <- 0,1: vote" in result.output
    assert "answer:" in result.output and "stop: " in result.output
    saved = json.loads((out / "trace.json").read_text())  # the n samples are one call (two if asked again, nodes.py)
    assert saved["model_calls"] in (1, 2) and f"| {saved['model_calls']} model call" in result.output
    assert saved["strategy"] == "self-consistency" and (out / "images" / "image_0.png").is_file()


def test_solve_json(image_file, tiny):
    args = ["solve", "-q", "q?", "--image", str(image_file), "--model", "tiny", "--strategy", "direct",
            "--max-tokens", "3", "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    trace = json.loads(result.output)
    assert trace["strategy"] == "direct" and trace["model_calls"] == 1
    assert trace["images"]["image_0"].startswith("data:image/png;base64,")


def test_solve_budget_options(image_file, tiny):
    args = ["solve", "-q", "q?", "--image", str(image_file), "--model", "tiny", "--strategy", "cot",
            "--budget-tokens", "1", "--json"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    trace = json.loads(result.output)
    assert trace["stop_reason"] == "max_tokens" and trace["completion_tokens"] <= 1


def test_the_default_model_is_smol_when_shipped_else_tiny(monkeypatch):
    import mmcot.models.load as load
    from mmcot.reasoning.solve import default_model

    monkeypatch.setattr(load, "shipped", lambda: ["tiny"])
    assert default_model() == "tiny"
    monkeypatch.setattr(load, "shipped", lambda: ["smol", "tiny"])
    assert default_model() == "smol"
