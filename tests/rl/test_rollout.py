"""Multi-turn tool rollouts in GRPO, end to end: a real tiny model (taught to call zoom) calls the real zoom tool
mid-completion, sees the zoomed image, goes on; tool-result tokens are masked out of the loss and a step trains."""

import math

import pytest
from PIL import Image

CALL = '<tool_call>\n{"name": "zoom", "arguments": {"box": [0, 0, 16, 16]}}\n</tool_call>'


def _system(*names):
    """The tools block the chat template renders for ``tools=[...]``, as the agent loop sends it."""
    from mmcot.models.data import tools_system

    return {"role": "system", "content": tools_system(names)}


def _image(color="red"):
    img = Image.new("RGB", (32, 32), "white")
    img.paste(Image.new("RGB", (8, 8), color), (4, 4))
    return img


@pytest.fixture(scope="module")
def zoomer(tiny_folder, tmp_path_factory, teach):
    """The tiny model, taught to open with a zoom call (with trailing chatter after the call, which the rollout
    must cut) for a question about the small square."""
    conv = [
        _system("zoom"),
        {"role": "user", "content": [{"type": "image", "image": _image()}, {"type": "text", "text": "What color?"}]},
        {"role": "assistant", "content": f"<think>zoom</think>{CALL} I see red"},
    ]
    folder, loss = teach(tiny_folder, [conv], tmp_path_factory.mktemp("zoomer"))
    assert loss < 0.5
    return folder


def _config(tmp_path, **kw):
    from mmcot.rl.grpo import GRPOJobConfig

    args = dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=160,
        max_steps=1,
        top_k=1,  # argmax sampling: the taught model's rollout is deterministic (the control flow is under test)
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        tools=["zoom"],
        max_tool_calling_iterations=2,
    )
    return GRPOJobConfig(**(args | kw))


def test_tool_rollout_trains_with_tool_results_masked(zoomer, tmp_path):
    from mmcot.evals.item import Item
    from mmcot.models.load import load_model
    from mmcot.rl.data import to_dataset
    from mmcot.rl.rollout import ToolGRPOTrainer

    seen, outputs = [], []

    def record(completions, **kwargs):
        seen.extend(completions)
        return [1.0 if any(m["role"] == "tool" for m in c) else 0.0 for c in completions]

    class Capture(ToolGRPOTrainer):
        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            outputs.append(out)
            return out

    model, processor = load_model(str(zoomer))
    items = [Item(id=f"q{i}", question="What color?", answer="red", images=[_image()]) for i in range(2)]
    cfg = _config(tmp_path)
    trainer = Capture(
        model=model,
        processing_class=processor,
        reward_funcs=[record],
        args=cfg,
        train_dataset=to_dataset(items),
        tool_names=cfg.tools,
    )
    trainer.train()

    with_tools = [c for c in seen if any(m["role"] == "tool" for m in c)]
    assert len(with_tools) >= 2, [c[0]["content"] for c in seen]
    c = with_tools[0]
    assert c[0]["role"] == "assistant" and c[0]["content"].rstrip().endswith("</tool_call>")  # chatter cut
    tool = c[1]
    assert tool["name"] == "zoom" and tool["error"] is None
    assert tool["content"][0]["text"].startswith("image_1 (")  # the new image's id, as the agent loop words it
    assert isinstance(tool["content"][1]["image"], Image.Image)
    assert c[2]["role"] == "assistant"  # generation went on after the result

    out = outputs[0]
    mask, completion = out["tool_mask"], out["completion_mask"]
    image_token = processor.tokenizer.convert_tokens_to_ids("<image>")
    ids = out["completion_ids"]
    tool_rows = [r for r in range(ids.shape[0]) if (mask[r] * completion[r] == 0).any() and completion[r].sum() > 0]
    assert tool_rows
    for r in tool_rows:
        masked = ids[r][(mask[r] == 0) & (completion[r] == 1)]
        assert (masked == image_token).sum() == 16  # the zoomed image's tokens sit in the masked tool turn
        assert (ids[r][(mask[r] == 1) & (completion[r] == 1)] != image_token).all()
    assert out["num_images"] and max(out["num_images"]) == 2  # prompt image + tool image reach the loss forward

    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert math.isfinite(logs[0]["loss"])
    assert logs[0]["tools/call_frequency"] > 0 and logs[0]["tools/call_rate"] > 0
    assert logs[0]["tools/failure_frequency"] == 0


def test_malformed_call_becomes_an_error_message(tiny_folder, tmp_path_factory, tmp_path, teach):
    """A call to an unknown tool comes back to the policy as an error result (never an exception), and counts as a
    tool failure."""
    from mmcot.evals.item import Item
    from mmcot.models.load import load_model
    from mmcot.rl.grpo import build_trainer

    bad = '<think>x</think><tool_call>\n{"name": "teleport", "arguments": {}}\n</tool_call>'
    conv = [
        _system("zoom"),
        {"role": "user", "content": [{"type": "image", "image": _image()}, {"type": "text", "text": "Where?"}]},
        {"role": "assistant", "content": bad},
    ]
    folder, _ = teach(tiny_folder, [conv], tmp_path_factory.mktemp("bad"))
    model, processor = load_model(str(folder))
    items = [Item(id="q", question="Where?", answer="here", images=[_image()])]
    cfg = _config(
        tmp_path,
        per_device_train_batch_size=2,
        num_generations=2,
        rewards=["outcome", "format"],
        max_completion_length=96,
    )
    trainer = build_trainer(cfg, model, processor, items)
    trainer.train()
    log = next(h for h in trainer.state.log_history if "loss" in h)
    assert log["tools/call_frequency"] > 0 and log["tools/failure_frequency"] > 0


def test_heldout_eval_runs_the_agent_loop_on_the_same_prompt(zoomer):
    """The held-out evaluation runs the image-loop strategy (the controller), which renders the prompt the rollout
    trained on: the model taught under the rollout's prompt calls zoom there too."""
    from mmcot.evals.item import Item
    from mmcot.models.load import load_model
    from mmcot.rl.jobs import evaluate

    model, processor = load_model(str(zoomer))
    items = [Item(id=f"h{i}", question="What color?", answer="red", images=[_image()], category="t") for i in range(2)]
    result = evaluate(model, processor, items, "image-loop", {"tools": ["zoom"], "think": True, "max_turns": 2}, 2)
    assert result["n"] == 2 and result["errors"] == 0
    assert result["tool_call_rate"] == 1.0
