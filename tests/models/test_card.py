"""Model cards: facts and eval runs recorded beside the weights, rendered as README.md."""

import json

from mmcot.models.card import add_eval_run, write_card


def _run(folder, blind):
    folder.mkdir()
    summary = {"accuracy": 0.5, "n": 2, "by_category": {"count": {"accuracy": 0.5, "n": 2}},
               "solver": {"name": "direct@smol"}, "config": {"data": "suite", "split": "test", "n": 2, "blind": blind}}  # fmt: skip
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_a_blind_run_is_recorded_beside_the_seeing_one(tmp_path):
    card = tmp_path / "model"
    write_card(card, "mmcot test", "sft", {"max_steps": 1}, {"steps": "1 x 2 conversations"}, 1.0)
    add_eval_run(card, _run(tmp_path / "seeing", False), "mmcot eval --model smol")
    readme = add_eval_run(card, _run(tmp_path / "blind", True), "mmcot eval --model smol --blind").read_text()
    assert len(json.loads((card / "mmcot_card.json").read_text())["evals"]) == 2
    assert "blind: each image swapped" in readme and "**steps**: 1 x 2 conversations" in readme
    assert "mmcot eval --model smol --blind" in readme
