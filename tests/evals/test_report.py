"""Reports: Wilson intervals, the Markdown table, the chart, the self-contained HTML page and run comparison."""

import base64
import doctest
import io
import json
import re

import pytest
from PIL import Image

from mmcot.evals import report
from mmcot.evals.harness import RunError, result_row, summarize
from mmcot.evals.item import Item
from mmcot.evals.report import compare, load_run, markdown, wilson, write_report
from mmcot.evals.solvers import Outcome, from_trace
from mmcot.reasoning.trace import Trace


@pytest.mark.parametrize(
    "k, n, lo, hi",
    [(20, 100, 0.1333, 0.2888), (0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (1, 2, 0.0945, 0.9055), (0, 0, 0.0, 1.0)],
)
def test_wilson(k, n, lo, hi):
    assert doctest.testmod(report).failed == 0
    got = wilson(k, n)
    assert got[0] == pytest.approx(lo, abs=1e-4) and got[1] == pytest.approx(hi, abs=1e-4)


def make_run(path, predictions, solver="random", trace=False):
    """A run folder as the harness writes it, for items q0..q3 (answers red, red, 3, B of x/y)."""
    path.mkdir(parents=True)
    items = [
        Item("q0", "What color?", "red", [Image.new("RGB", (1024, 512), "red")], category="color"),
        Item("q1", "What color?", "red", [Image.new("RGB", (8, 8), "red")], category="color"),
        Item("q2", "How many?", "3", [Image.new("RGB", (8, 8), "blue")], category="count"),
        Item("q3", "Which <one>?", "B", [], choices=["x", "y"], category=""),
    ]
    rows = []
    for item, prediction in zip(items, predictions, strict=True):
        outcome = Outcome(prediction, prompt_tokens=100, completion_tokens=20, model_calls=1, seconds=0.5)
        if trace:
            t = Trace(strategy="cot", answer=prediction, stop_reason="answer", model_calls=1)
            t.add("thought", f"thinking about {item.id}", images=[t.add_image(Image.new("RGB", (4, 4), "green"))])
            outcome = from_trace(t, 0.5)
        rows.append(result_row(item, outcome, "", path, expected=lambda it: 0.5))
    summary = summarize(rows, ["data.jsonl:9: malformed JSON"])
    summary.update(solver={"name": solver, "uses": "a coin"}, config={"data": "suite", "split": "test"})
    (path / "summary.json").write_text(json.dumps(summary))
    (path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return summary, rows


def test_markdown_table(tmp_path):
    summary, _ = make_run(tmp_path / "run", ["red", "blue", "three", "B. y"])
    md = markdown(summary)
    assert md.startswith("## random on suite (test split)")
    assert (
        "| category | n | accuracy | 95% CI | chance | tokens/item | model calls/item | tool calls/item | s/item |"
        in md
    )
    assert "| color | 2 | 50.0% | 9.5–90.5 | 50.0% | 120 | 1.00 | 0.00 | 0.500 |" in md
    assert "| (none) | 1 | 100.0% |" in md and "| all | 4 | 75.0% | 30.1–95.4 | 50.0% |" in md
    assert "Chance check: the expected accuracy 50.0% is inside" in md
    assert "1 input rows were skipped" in md


def test_html_page_is_self_contained_with_traces(tmp_path):
    summary, rows = make_run(tmp_path / "run", ["red", "blue", "three", "B. y"], trace=True)
    paths = write_report(tmp_path / "run")
    assert [p.name for p in paths] == ["report.md", "accuracy.png", "report.html"]
    assert Image.open(tmp_path / "run" / "accuracy.png").format == "PNG"
    page = (tmp_path / "run" / "report.html").read_text()
    sources = re.findall(r"src='([^']*)'", page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    # 1 chart + 3 item images + 4 trace images
    assert len(sources) == 8
    assert "thinking about q2" in page and "Which &lt;one&gt;?" in page and "<li>y</li>" in page
    assert page.count("class='item ok'") == 3 and page.count("class='item bad'") == 1
    assert "data.jsonl:9: malformed JSON" in page


def test_html_shrinks_large_images(tmp_path):
    make_run(tmp_path / "run", ["red", "red", "3", "B"])
    write_report(tmp_path / "run")
    page = (tmp_path / "run" / "report.html").read_text()
    first_item_image = re.findall(r"src='data:image/png;base64,([^']*)' alt='q0.png'", page)[0]
    assert Image.open(io.BytesIO(base64.b64decode(first_item_image))).size == (512, 256)


def test_compare(tmp_path):
    make_run(tmp_path / "a", ["red", "blue", "three", "B. y"])
    make_run(tmp_path / "b", ["red", "red", "4", "A"], solver="majority")
    md = compare([tmp_path / "a", tmp_path / "b"], tmp_path / "cmp")
    assert "| category | a | b |" in md
    assert "| color | 50.0% [9.5–90.5] n=2 | 100.0% [34.2–100.0] n=2 |" in md
    assert "| all | 75.0% [30.1–95.4] n=4 | 50.0% [15.0–85.0] n=4 |" in md
    assert "| a | random | suite (test split) | 4 | 120 | 1.00 | 0.00 | 0.500 |" in md
    page = (tmp_path / "cmp" / "compare.html").read_text()
    assert "disagree on: 3 of 4 in common" in page
    assert (tmp_path / "cmp" / "compare.md").read_text() == md
    assert Image.open(tmp_path / "cmp" / "compare.png").format == "PNG"
    assert "| b | a | 4 | 1 | 2 | 1 |" in md  # paired: q1 right only in b; q2, q3 only in a; exact McNemar p = 1


def test_compare_pairs_only_the_same_puzzles(tmp_path):
    make_run(tmp_path / "a", ["red", "blue", "three", "B. y"])
    make_run(tmp_path / "b", ["red", "red", "4", "A"], solver="majority")
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    summary.setdefault("config", {})["seed"] = 1  # --seed 1: other puzzles under the same ids
    (tmp_path / "b" / "summary.json").write_text(json.dumps(summary))
    assert "| b | a | 0 (other puzzles) | – | – | – |" in compare([tmp_path / "a", tmp_path / "b"])
    assert report.mcnemar(49, 11) < 1e-6 and report.mcnemar(0, 0) == 1.0


def test_load_run_errors(tmp_path):
    with pytest.raises(RunError, match="no summary.json"):
        load_run(tmp_path)
    (tmp_path / "summary.json").write_text("{")
    with pytest.raises(RunError, match="not valid JSON"):
        load_run(tmp_path)
    with pytest.raises(RunError, match="at least two"):
        compare([tmp_path])
