"""The harness end to end: results appended per item, resume after a crash, failures recorded and retried, traces
saved as files, items run concurrently, and the ``mmcot eval`` command with its error messages."""

import json
import textwrap
import threading

import pytest
from PIL import Image
from typer.testing import CliRunner

from mmcot.cli import app
from mmcot.evals.harness import EvalConfig, RunError, read_results, run


def write_items(tmp_path, n=6, bad_line=True):
    (tmp_path / "data").mkdir(exist_ok=True)
    Image.new("RGB", (16, 16), "red").save(tmp_path / "data" / "red.png")
    lines = []
    for k in range(n):
        if k % 2:
            row = {"id": f"q{k}", "image": "red.png", "question": "What color?", "answer": "red", "category": "color"}
        else:
            row = {"id": f"q{k}", "image": "red.png", "question": "Which?", "answer": "B", "choices": ["x", "y"]}
            row["category"] = "pick"
        lines.append(json.dumps(row))
    if bad_line:
        lines.insert(2, '{"id": "broken", ')
    path = tmp_path / "data" / "items.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def user_solvers(tmp_path, monkeypatch, name, source):
    """A module of user code, importable as ``name`` (what --solver pkg.mod:fn loads)."""
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))


def test_run_writes_results_summary_and_report(tmp_path):
    path = write_items(tmp_path)
    summary = run(EvalConfig(out=str(tmp_path / "run"), data=str(path)), show_progress=False)
    out = tmp_path / "run"
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == [f"q{k}" for k in range(6)]
    for key in ("id", "category", "question", "answer", "prediction", "correct", "tokens", "model_calls"):
        assert all(key in r for r in rows), key
    assert all((out / r["images"][0]).is_file() for r in rows)
    assert summary["n"] == 6 and set(summary["by_category"]) == {"color", "pick"}
    assert summary["by_category"]["pick"]["n"] == 3 and 0 <= summary["accuracy"] <= 1
    assert summary["by_category"]["pick"]["expected_accuracy"] == 0.5
    assert summary["by_category"]["color"]["expected_accuracy"] == 1.0  # one answer in the category's set
    assert len(summary["skipped"]) == 1 and summary["skipped"][0].startswith(f"{path}:3: malformed JSON")
    assert summary["config"]["solver"] == "random" and summary["solver"]["name"] == "random"
    assert json.loads((out / "summary.json").read_text()) == summary
    for name in ("report.md", "report.html", "accuracy.png", "config.json"):
        assert (out / name).is_file(), name


def test_resume_skips_done_items_and_repairs_a_cut_line(tmp_path):
    path = write_items(tmp_path, bad_line=False)
    out = tmp_path / "run"
    run(EvalConfig(out=str(out), data=str(path), limit=3), show_progress=False)
    first = (out / "results.jsonl").read_text()
    assert len(first.splitlines()) == 3
    with (out / "results.jsonl").open("a") as f:
        f.write('{"id": "q4", "prediction": "cut sh')  # a crash in the middle of a line
    summary = run(EvalConfig(out=str(out), data=str(path)), show_progress=False)
    text = (out / "results.jsonl").read_text()
    assert text.startswith(first)  # nothing done is redone
    lines = text.splitlines()
    assert len(lines) == 6 and len({json.loads(line)["id"] for line in lines}) == 6
    assert summary["n"] == 6


def test_failures_are_recorded_and_retried(tmp_path, monkeypatch):
    flag = tmp_path / "fixed"
    user_solvers(
        tmp_path,
        monkeypatch,
        "flaky_solvers",
        f"""
        import os
        from mmcot.evals.solvers import Outcome

        class Flaky:
            name = "flaky"
            info = {{"uses": "the answer itself, but fails on q2 until fixed"}}

            def __call__(self, items):
                if items[0].id == "q2" and not os.path.exists({str(flag)!r}):
                    raise RuntimeError("backend went away")
                return [Outcome(items[0].answer, model_calls=1, prompt_tokens=10, completion_tokens=2)]

        def flaky(cfg, items):
            return Flaky()
        """,
    )
    path = write_items(tmp_path, bad_line=False)
    cfg = dict(out=str(tmp_path / "run"), data=str(path), solver="flaky_solvers:flaky")
    summary = run(EvalConfig(**cfg), show_progress=False)
    assert summary["errors"] == 1 and summary["n"] == 6 and summary["correct"] == 5
    assert read_results(tmp_path / "run")["q2"]["error"] == "RuntimeError: backend went away"
    assert summary["means"]["tokens"] == pytest.approx(12 * 5 / 6)
    flag.touch()
    summary = run(EvalConfig(**cfg), show_progress=False)
    assert summary["errors"] == 0 and summary["accuracy"] == 1.0
    assert "error" not in read_results(tmp_path / "run")["q2"]


def test_a_folder_holding_another_run_is_refused(tmp_path):
    path = write_items(tmp_path, bad_line=False)
    run(EvalConfig(out=str(tmp_path / "run"), data=str(path)), show_progress=False)
    with pytest.raises(RunError, match="another configuration.*solver: 'random' -> 'majority'"):
        run(EvalConfig(out=str(tmp_path / "run"), data=str(path), solver="majority"), show_progress=False)
    run(EvalConfig(out=str(tmp_path / "run"), data=str(path), batch_size=2, limit=2), show_progress=False)


def test_traces_are_saved_with_image_files(tmp_path, monkeypatch):
    user_solvers(
        tmp_path,
        monkeypatch,
        "zoomer_solvers",
        """
        from PIL import Image
        from mmcot.evals.solvers import from_trace
        from mmcot.reasoning.trace import Trace

        class Zoomer:
            name = "zoomer"
            info = {}

            def __call__(self, items):
                trace = Trace(strategy="zoom", question=items[0].question, answer="red", stop_reason="answer")
                first = trace.add_image(items[0].image)
                crop = trace.add_image(Image.new("RGB", (8, 8), "blue"))
                trace.add("thought", "Let me zoom in.", images=[first])
                trace.add("tool_call", tool_call={"name": "crop", "arguments": {"box": [0, 0, 8, 8]}}, parents=[0])
                trace.add("tool_result", "cropped", parents=[1], images=[crop])
                trace.model_calls, trace.tool_calls = 2, 1
                return [from_trace(trace)]

        def zoomer(cfg, items):
            return Zoomer()
        """,
    )
    path = write_items(tmp_path, n=2, bad_line=False)
    out = tmp_path / "run"
    summary = run(EvalConfig(out=str(out), data=str(path), solver="zoomer_solvers:zoomer"), show_progress=False)
    assert summary["means"]["tool_calls"] == 1 and summary["means"]["model_calls"] == 2
    results = (out / "results.jsonl").read_text()
    assert "data:image" not in results
    trace = read_results(out)["q1"]["trace"]
    assert [n["kind"] for n in trace["nodes"]] == ["thought", "tool_call", "tool_result"]
    crop = Image.open(out / trace["images"]["image_1"])
    assert crop.size == (8, 8) and crop.getpixel((0, 0)) == (0, 0, 255)
    page = (out / "report.html").read_text()
    assert "Let me zoom in." in page and "&quot;crop&quot;" in page and "stopped by answer" in page


def test_items_run_concurrently(tmp_path, monkeypatch):
    user_solvers(
        tmp_path,
        monkeypatch,
        "together_solvers",
        """
        import threading
        from mmcot.evals.solvers import Outcome

        class Together:
            name = "together"
            info = {}

            def __init__(self, n):
                self.barrier = threading.Barrier(n, timeout=10)

            def __call__(self, items):
                self.barrier.wait()  # breaks (an error row) unless n items are in flight at once
                return [Outcome(items[0].answer)]

        def together(cfg, items):
            return Together(cfg.batch_size)
        """,
    )
    path = write_items(tmp_path, n=8, bad_line=False)
    summary = run(
        EvalConfig(out=str(tmp_path / "run"), data=str(path), solver="together_solvers:together", batch_size=4),
        show_progress=False,
    )
    assert summary["errors"] == 0 and summary["accuracy"] == 1.0
    assert threading.active_count() < 20


def test_cli_end_to_end(tmp_path):
    runner = CliRunner()
    path = write_items(tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    result = runner.invoke(app, ["eval", "--data", str(path), "--solver", "random", "--out", str(a)])
    assert result.exit_code == 0, result.output
    assert "| all | 6 |" in result.stdout and "Chance check" in result.stdout
    assert f"skipped: {path}:3: malformed JSON" in result.stderr
    result = runner.invoke(app, ["eval", "--data", str(path), "--solver", "majority", "--out", str(b)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["eval", "compare", str(a), str(b), "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    assert "| category | a | b |" in result.stdout
    assert (tmp_path / "cmp" / "compare.html").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["eval", "--data", "missing.jsonl", "--out", "r"], "no such file"),
        (["eval", "--data", "x.jsonl"], "--out DIR is required"),
        (["eval", "--suite", "--easy-vqa", "--out", "r"], "choose one source"),
        (["eval", "--model", "tiny", "--solver", "random", "--out", "r"], "either --solver or --model"),
        (["eval", "--strategy", "cot", "--out", "r"], "--strategy needs --model"),
        (["eval", "--solver", "nope", "--family", "count", "--n", "1", "--out", "r"], "unknown solver 'nope'"),
        (["eval", "--solver", "no_such_mod:fn", "--family", "count", "--n", "1", "--out", "r"], "cannot load solver"),
        (["eval", "--family", "no-such-family", "--out", "r"], "unknown puzzle family"),
        (["eval", "--option", "novalue", "--out", "r"], "expected KEY=VALUE"),
        (["eval", "compare", "r"], "at least two run folders"),
        (["eval", "compare", "r", "s"], "no summary.json"),
    ],
)
def test_cli_bad_input_is_a_clear_error(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert message in result.stderr and "Traceback" not in result.output


def test_model_and_strategy_through_the_solver_seam(tmp_path, monkeypatch):
    """A scripted Backend (control flow only) under the real solve() and the real cot strategy."""
    user_solvers(
        tmp_path,
        monkeypatch,
        "scripted_solvers",
        """
        from mmcot.evals.solvers import ModelSolver
        from mmcot.models.backend import Completion

        def text_of(request):
            contents = [m["content"] for m in request.messages]
            return " ".join(c if isinstance(c, str) else " ".join(p.get("text", "") for p in c) for c in contents)

        class Scripted:
            name = "scripted"

            def generate(self, requests):
                replies = []
                for r in requests:
                    text = "it is red</think><answer>red</answer>" if "color" in text_of(r) else "hmm</think><answer>7"
                    replies.append([Completion(text, prompt_tokens=50, completion_tokens=9)] * r.n)
                return replies

            def stream(self, request):
                yield self.generate([request])[0][0].text

        def cot(cfg, items):
            return ModelSolver(Scripted(), "cot", {"max_tokens": 64})
        """,
    )
    path = write_items(tmp_path, bad_line=False)
    out = tmp_path / "run"
    summary = run(EvalConfig(out=str(out), data=str(path), solver="scripted_solvers:cot"), show_progress=False)
    assert summary["by_category"]["color"]["accuracy"] == 1.0 and summary["by_category"]["pick"]["accuracy"] == 0.0
    assert summary["means"]["model_calls"] == 1 and summary["means"]["tokens"] == 59
    row = read_results(out)["q1"]
    assert row["prediction"] == "red" and row["trace"]["strategy"] == "cot"
    assert row["trace"]["nodes"][0]["text"] == "<think>it is red</think><answer>red</answer>"
    assert summary["solver"] == {
        "name": "cot@scripted",
        "strategy": "cot",
        "model": "scripted",
        "options": {"max_tokens": 64},
    }


def test_model_options_are_checked_before_any_item_runs(tmp_path):
    path = write_items(tmp_path, bad_line=False)
    from mmcot.evals.solvers import checked_options

    assert checked_options("cot", {"shots": 1, "budget": {"max_steps": 2}}) == {"shots": 1, "budget": {"max_steps": 2}}
    with pytest.raises(ValueError, match="unknown knob 'breadth' for strategy cot"):
        checked_options("cot", {"breadth": 4})
    with pytest.raises(ValueError, match="unknown strategy 'nope'"):
        checked_options("nope", {})
    with pytest.raises(ValueError, match="cannot set backend"):
        checked_options("cot", {"backend": "x"})
    result = CliRunner().invoke(
        app, ["eval", "--data", str(path), "--model", "no-such-model", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 1 and "cannot load model 'no-such-model'" in result.stderr


@pytest.mark.slow
def test_real_tiny_model_end_to_end(tmp_path):
    """``mmcot eval --model FOLDER --strategy direct``: a tiny random-weight LLaVA saved as a folder, the real local
    backend, the real strategy and controller. Predictions are noise; the plumbing is what is checked."""
    import torch

    from mmcot.models.presets import TextArch, VisionArch, build_tiny
    from mmcot.models.tokenizer import train_tokenizer

    torch.manual_seed(0)
    tokenizer = train_tokenizer(
        ["what color is the circle? <answer>red</answer> how many? 3"] * 20, vocab_size=300, min_frequency=1
    )
    model, processor = build_tiny(
        tokenizer,
        VisionArch(image_size=32, patch_size=8, vision_hidden_size=32, vision_layers=1, vision_heads=2),
        TextArch(
            text_hidden_size=64, text_layers=2, text_heads=4, text_intermediate_size=128, max_position_embeddings=768
        ),
    )
    model.save_pretrained(tmp_path / "tiny")
    processor.save_pretrained(tmp_path / "tiny")
    path = write_items(tmp_path, n=4, bad_line=False)
    out = tmp_path / "run"
    args = ["eval", "--data", str(path), "--model", str(tmp_path / "tiny"), "--strategy", "direct", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--option", "max_tokens=8", "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == 4 and summary["errors"] == 0
    assert summary["means"]["model_calls"] == 1 and 0 < summary["means"]["completion_tokens"] <= 8
    assert summary["means"]["prompt_tokens"] > 0
    assert all(r["trace"]["strategy"] == "direct" for r in read_results(out).values())


def test_broken_user_solvers_are_reported_not_raised(tmp_path, monkeypatch):
    user_solvers(
        tmp_path,
        monkeypatch,
        "broken_solvers",
        """
        def unbuildable(cfg, items):
            raise KeyError("weights")

        def wrong_output(cfg, items):
            class Solver:
                name, info = "wrong", {}

                def __call__(self, items):
                    return [None]

            return Solver()
        """,
    )
    path = write_items(tmp_path, n=2, bad_line=False)
    with pytest.raises(ValueError, match="solver 'broken_solvers:unbuildable' could not be built: KeyError"):
        run(EvalConfig(out=str(tmp_path / "a"), data=str(path), solver="broken_solvers:unbuildable"), False)
    summary = run(EvalConfig(out=str(tmp_path / "b"), data=str(path), solver="broken_solvers:wrong_output"), False)
    assert summary["errors"] == 2
    assert read_results(tmp_path / "b")["q0"]["error"].startswith("TypeError: the solver returned None")


def test_blind_control_gives_each_item_another_items_images(tmp_path, monkeypatch):
    user_solvers(
        tmp_path,
        monkeypatch,
        "looker_solvers",
        """
        from mmcot.evals.solvers import Outcome

        NAMES = {(255, 0, 0): "red", (0, 128, 0): "green", (0, 0, 255): "blue"}

        class Looker:  # answers with the color it sees
            name = "looker"
            info = {}

            def __call__(self, items):
                return [Outcome(prediction=NAMES[it.image.getpixel((0, 0))]) for it in items]

        def looker(cfg, items):
            return Looker()
        """,
    )
    (tmp_path / "data").mkdir()
    lines = []
    for color in ("red", "green", "blue"):
        Image.new("RGB", (8, 8), color).save(tmp_path / "data" / f"{color}.png")
        lines.append(json.dumps({"id": color, "image": f"{color}.png", "question": "What color?", "answer": color,
                                 "category": "color"}))  # fmt: skip
    (tmp_path / "data" / "items.jsonl").write_text("\n".join(lines) + "\n")
    data = str(tmp_path / "data" / "items.jsonl")
    seeing = run(EvalConfig(out=str(tmp_path / "a"), data=data, solver="looker_solvers:looker"), show_progress=False)
    blind = run(EvalConfig(out=str(tmp_path / "b"), data=data, solver="looker_solvers:looker", blind=True), False)
    assert (seeing["accuracy"], blind["accuracy"]) == (1.0, 0.0)
    assert blind["config"]["blind"] is True
