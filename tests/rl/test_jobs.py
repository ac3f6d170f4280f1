"""`mmcot train grpo` end to end through the CLI, on the shipped recipe with a tiny random model: it trains, logs
metrics and held-out accuracy, writes a loadable model with a card, resumes, and turns bad input into clear errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]


def small(model, out, *extra):
    """The shipped tiny-grpo recipe, shrunk to seconds."""
    return [
        "--config", str(REPO / "recipes/tiny-grpo.yaml"), "--model", str(model), "--output_dir", str(out),
        "--families", "count", "--n_per_family", "4", "--heldout_families", "count", "--heldout_n", "2",
        "--heldout_every", "0", "--num_generations", "2", "--per_device_train_batch_size", "2",
        "--max_completion_length", "12", "--save_steps", "1", "--logging_steps", "1", "--report_to", "none",
        "--warmup_steps", "0", *extra,
    ]  # fmt: skip


def run(*args):
    from mmcot.cli import app

    result = CliRunner().invoke(app, ["train", "grpo", *args])
    return result.exit_code, result.output


def test_grpo_cli_trains_logs_saves_and_resumes(tiny_folder, tmp_path):
    from mmcot.models.load import load_model

    out = tmp_path / "run"
    code, output = run(*small(tiny_folder, out, "--max_steps", "2"))
    assert code == 0, output
    assert (out / "job_config.json").is_file() and json.loads((out / "job_config.json").read_text())["max_steps"] == 2
    logs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    step_logs = [entry for entry in logs if "loss" in entry]
    assert {"rewards/outcome_reward/mean", "rewards/format_reward/mean", "completions/mean_length"} <= set(
        step_logs[0]
    )
    heldout = [json.loads(line) for line in (out / "heldout.jsonl").read_text().splitlines()]
    assert [h["step"] for h in heldout] == [0, 2] and heldout[0]["strategy"] == "cot"
    model, processor = load_model(str(out / "final"))  # a folder load_model and mmcot eval take
    card = json.loads((out / "final" / "mmcot_card.json").read_text())
    assert card["stage"] == "grpo" and card["evals"]["heldout"][-1]["step"] == 2

    code, output = run(*small(tiny_folder, out, "--max_steps", "3"))  # the same run, longer: resumes
    assert code == 0, output
    assert "resuming from" in output and "checkpoint-2" in output
    state = json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    heldout = [json.loads(line) for line in (out / "heldout.jsonl").read_text().splitlines()]
    assert [h["step"] for h in heldout] == [0, 2, 3]  # the resumed run keeps what it measured before


def test_lora_run_on_an_adapter_folder_saves_in_its_small_format(tiny_folder, tmp_path, packaged_base):
    """LoRA RL from a smol-style folder (tower + projector + adapter on a packaged base; the tiny LM stands in for
    SmolLM2) saves the same small format, both adapters folded into one, not a merged copy of the base."""
    from peft import LoraConfig, get_peft_model

    from mmcot.models.checkpoint import save_checkpoint
    from mmcot.models.load import load_model

    model, processor = load_model(str(tiny_folder))
    packaged_base(model, processor.tokenizer)
    lora = LoraConfig(
        r=4, target_modules=r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
    )
    save_checkpoint(get_peft_model(model, lora), processor, tmp_path / "start", base="test-base")
    out = tmp_path / "run"
    code, output = run(*small(tmp_path / "start", out, "--max_steps", "1", "--lora_r", "2"))
    assert code == 0, output
    final = out / "final"
    assert json.loads((final / "mmcot_base.json").read_text()) == {"base": "test-base"}
    assert json.loads((final / "adapter_config.json").read_text())["r"] == 6
    load_model(str(final))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--rewards", "outcome", "nope", "--reward_weights", "1", "1"], "unknown reward 'nope'"),
        (["--tools", "teleport"], "unknown tool 'teleport'"),
        (["--reward_weights", "1.0"], "reward_weights has 1 values for 2 rewards"),
        (["--model", "no-such-model"], "unknown model 'no-such-model'"),
        (["--data", "/nonexistent/items.jsonl"], "no such file"),
        (["--heldout_split", "train"], "held-out items must not come from the training split"),
    ],
)
def test_bad_input_is_a_clear_error(tiny_folder, tmp_path, extra, message):
    code, output = run(*small(tiny_folder, tmp_path / "run", "--max_steps", "1"), *extra)
    assert code != 0
    assert message in output, output
    assert "Traceback" not in output


def test_bad_recipe_is_a_clear_error(tmp_path):
    code, output = run("--config", str(tmp_path / "missing.yaml"))
    assert code == 1 and "does not exist" in output
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: tiny\nnot_a_field: 3\n")
    code, output = run("--config", str(bad))
    assert code == 1 and "not_a_field" in output and "Traceback" not in output


@pytest.mark.slow
def test_resume_after_kill_9_loses_at_most_one_save_interval(tiny_folder, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "mmcot.cli", "train", "grpo", *small(tiny_folder, out, "--max_steps", "6")]
    cmd[cmd.index("--save_steps") + 1] = "2"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 600
    while not (out / "checkpoint-2" / "trainer_state.json").is_file():
        assert proc.poll() is None and time.time() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = sorted(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*") if (p / "trainer_state.json").is_file())
    resumed = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming from {out / f'checkpoint-{done[-1]}'}" in resumed.stdout
    assert json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())["global_step"] == 6
