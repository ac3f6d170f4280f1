"""`mmcot train dpo` and `mmcot train prm` end to end on an items.jsonl, with a tiny model taught to answer the
question right half the time (so its own samples make preference pairs and mixed step labels); the PRM as the
best-of-N verifier and as a GRPO reward; and a check that the PRM's value head really learns step labels."""

import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from mmcot.models.backend import user_message

QUESTION = "How many red squares are there?"


@pytest.fixture(scope="module")
def coin(tiny_folder, tmp_path_factory, teach):
    """A model that answers QUESTION with 2 (right) or 3 (wrong), about evenly, with a two-step rationale, and an
    items.jsonl of that question."""
    from mmcot.evals.item import Item, save_items

    image = Image.new("RGB", (32, 32), "white")
    replies = [
        "<think>I look for red squares.\nThat makes 2.</think><answer>2</answer>",
        "<think>I look for red squares.\nThat makes 3.</think><answer>3</answer>",
    ]
    convs = [
        [
            user_message(QUESTION, [image]),
            {"role": "assistant", "content": reply},
        ]
        for reply in replies
    ]
    folder, _ = teach(tiny_folder, convs, tmp_path_factory.mktemp("coin"), steps=120)
    data = tmp_path_factory.mktemp("coin-data")
    items = [Item(id=f"q{i}", question=QUESTION, answer="2", images=[image], category="count") for i in range(4)]
    save_items(items, data / "train")
    save_items([Item(id="h0", question=QUESTION, answer="2", images=[image], category="count")], data / "heldout")
    return folder, data


def common(folder, data, out):
    return [
        "--model", str(folder), "--output_dir", str(out), "--data", str(data / "train" / "items.jsonl"),
        "--heldout_data", str(data / "heldout" / "items.jsonl"), "--max_new_tokens", "40", "--report_to", "none",
        "--logging_steps", "1", "--save_steps", "1", "--per_device_train_batch_size", "4",
    ]  # fmt: skip


def run(job, *args):
    from mmcot.cli import app

    result = CliRunner().invoke(app, ["train", job, *args])
    return result.exit_code, result.output


def test_dpo_from_self_sampled_pairs(coin, tmp_path):
    from mmcot.models.load import load_model

    folder, data = coin
    code, output = run("dpo", *common(folder, data, tmp_path), "--samples_per_item", "6", "--max_steps", "2")
    assert code == 0, output
    pairs = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    assert pairs and all(p["chosen"]["correct"] == 1.0 and p["rejected"]["correct"] == 0.0 for p in pairs)
    assert all("<answer>2</answer>" in p["chosen"]["text"] for p in pairs)
    load_model(str(tmp_path / "final"))
    card = json.loads((tmp_path / "final" / "mmcot_card.json").read_text())
    assert card["stage"] == "dpo" and "right-over-wrong" in card["facts"]["pairs"]


def test_prm_labels_trains_and_verifies(coin, tmp_path, monkeypatch):
    from mmcot.rl.prm import PRMReward, Verifier, split_steps

    folder, data = coin
    code, output = run("prm", *common(folder, data, tmp_path), "--samples_per_item", "3", "--rollouts_per_step", "3",
                       "--max_steps", "2")  # fmt: skip
    assert code == 0, output
    rows = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert len(rows) == 4 * 3
    for row in rows:
        assert split_steps("".join(row["chunks"])) == row["chunks"]
        assert len(row["labels"]) == len(row["chunks"]) and all(0 <= v <= 1 for v in row["labels"])
        assert row["labels"][-1] == row["correct"]
    assert {r["correct"] for r in rows} == {0.0, 1.0}  # the coin model is right and wrong

    n_labels = len(rows)
    code, output = run("prm", *common(folder, data, tmp_path), "--samples_per_item", "3", "--max_steps", "3")
    assert code == 0, output  # resumed: labels reused, training continued
    assert len((tmp_path / "labels.jsonl").read_text().splitlines()) == n_labels
    assert "resuming from" in output

    monkeypatch.setenv("MMCOT_PRM", str(tmp_path / "final"))
    image = Image.new("RGB", (32, 32), "white")
    scores = Verifier()([image], QUESTION, ["<think>I look for red squares.\nThat makes 2.</think><answer>2</answer>",
                                            "<think>I look"])  # fmt: skip
    assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores)
    reward = PRMReward(prm_model=str(tmp_path / "final"))
    prompt = [user_message(QUESTION, [image])]
    [r] = reward([[{"role": "assistant", "content": "That makes 2.</think><answer>2</answer>"}]], prompts=[prompt])
    assert 0.0 <= r <= 1.0


def test_prm_head_learns_step_labels(tiny_folder):
    """On steps whose label is written in them ("sure" right, "oops" wrong), the trained PRM ranks accordingly."""
    import torch

    from mmcot.models.load import load_model
    from mmcot.rl.prm import ProcessRewardModel

    torch.manual_seed(0)
    model, processor = load_model(str(tiny_folder))
    prm = ProcessRewardModel(model, processor, str(tiny_folder), "min", train_layers=1)
    image = Image.new("RGB", (32, 32), "white")
    rows = [
        {"images": [image], "question": QUESTION, "chunks": ["<think>sure", "\nsure", "</think><answer>2</answer>"], "labels": [1.0, 1.0, 1.0]},
        {"images": [image], "question": QUESTION, "chunks": ["<think>sure", "\noops", "</think><answer>3</answer>"], "labels": [1.0, 0.0, 0.0]},
        {"images": [image], "question": QUESTION, "chunks": ["<think>oops", "\noops", "</think><answer>3</answer>"], "labels": [0.0, 0.0, 0.0]},
    ]  # fmt: skip
    module = prm.module()
    opt = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=3e-3)
    batch = prm.collate(rows)
    for _ in range(60):
        loss = module(**batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    good, mixed, bad = prm.score([image], QUESTION, ["".join(r["chunks"]) for r in rows])
    assert good > 0.8 and mixed < 0.2 and bad < 0.2
    steps = prm.step_scores([image], QUESTION, ["".join(rows[1]["chunks"])])[0]
    assert steps[0] > 0.8 and steps[1] < 0.2  # the score drops at the wrong step


def test_prm_without_thinking_and_with_the_ranking_loss(coin, tmp_path):
    folder, data = coin
    code, output = run("prm", *common(folder, data, tmp_path), "--think", "false", "--samples_per_item", "3",
                       "--rollouts_per_step", "2", "--max_steps", "1", "--ranking", "1.0")  # fmt: skip
    assert code == 0, output
    assert '"pair_accuracy"' in output
    rows = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert len(rows) == 4 * 3
    for row in rows:  # the sampled text as it came, no <think> put in front of it
        assert not row["chunks"][0].startswith("<think><think>")
        assert row["labels"][-1] == row["correct"] and len(row["labels"]) == len(row["chunks"])
