"""The training stages end to end, a few steps each on a miniature architecture: tokenizer -> vision (both
objectives) -> align -> sft, resuming from a checkpoint, model cards, publishing, and clear CLI errors."""

import json

import pytest
from typer.testing import CliRunner

from mmcot.cli import app
from mmcot.models.stage import StageError, run_stage

QUIET = ["--report_to", "none", "--dataloader_num_workers", "0", "--warmup_steps", "0", "--logging_steps", "1"]
VISION = ["--image_size", "32", "--patch_size", "8", "--vision_hidden_size", "32", "--vision_layers", "1",
          "--vision_heads", "2"]  # fmt: skip
TEXT = ["--text_hidden_size", "32", "--text_layers", "1", "--text_heads", "2", "--text_intermediate_size", "64"]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("stages")
    tok = run_stage(
        "tokenizer", ["--output_dir", str(root / "tok"), "--samples_per_family", "2", "--vocab_size", "400"]
    )
    vis = run_stage("vision", ["--output_dir", str(root / "vis"), *VISION, *QUIET, "--max_steps", "2",
                               "--per_device_train_batch_size", "4", "--save_steps", "1", "--check_samples", "6"])  # fmt: skip
    align = run_stage("align", ["--output_dir", str(root / "align"), "--vision_path", str(vis), "--tokenizer_path",
                                str(tok), *TEXT, *QUIET, "--max_steps", "2", "--per_device_train_batch_size", "2",
                                "--eval_per_family", "0", "--train_samples", "50"])  # fmt: skip
    return root, tok, vis, align


def sft_args(root, align, steps):
    return ["--output_dir", str(root / "sft"), "--init_path", str(align), *QUIET, "--max_steps", str(steps),
            "--per_device_train_batch_size", "2", "--save_steps", "1", "--eval_per_family", "1",
            "--families", "count,attribute,small_object,arithmetic", "--train_samples", "50"]  # fmt: skip


def test_tokenizer_vision_and_align_write_their_outputs(pipeline):
    root, tok, vis, align = pipeline
    assert (tok / "tokenizer.json").is_file() and (tok / "README.md").is_file()
    check = json.loads((vis / "mmcot_stage.json").read_text())["check"]
    assert set(check) >= {"color_accuracy", "shape_accuracy", "count_accuracy"}
    assert (vis / "heads.pt").is_file() and "tower check" in (vis / "README.md").read_text()
    assert any((root / "vis").glob("checkpoint-*"))
    card = json.loads((align / "mmcot_card.json").read_text())
    assert card["stage"] == "align" and card["peak_memory_mb"] > 0
    assert json.loads((root / "align" / "stage_config.json").read_text())["kinds"] == "describe:1"


def test_sft_resumes_from_its_last_checkpoint_and_publishes(pipeline, monkeypatch, tmp_path, capsys):
    from mmcot.models import load

    root, tok, vis, align = pipeline
    run_stage("sft", sft_args(root, align, 2))
    assert (root / "sft" / "checkpoint-2").is_dir()
    monkeypatch.setattr(load, "CHECKPOINTS", tmp_path)
    out = run_stage("sft", [*sft_args(root, align, 3), "--publish", "mini"])  # a rerun goes on from step 2
    assert "resuming from" in capsys.readouterr().out
    state = json.loads((root / "sft" / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    card = json.loads((out / "mmcot_card.json").read_text())
    assert set(card["evals"]["direct, test split"]["by_category"]) == {
        "count",
        "attribute",
        "small_object",
        "arithmetic",
    }
    assert "| count |" in (out / "README.md").read_text()
    model, processor = load.load_model("mini")  # published under its name
    assert model.config.model_type == "llava"


def test_contrastive_objective_trains(pipeline):
    root, tok, _, _ = pipeline
    out = run_stage("vision", ["--output_dir", str(root / "clip"), *VISION, *QUIET, "--max_steps", "1",
                               "--per_device_train_batch_size", "4", "--objective", "contrastive",
                               "--tokenizer_path", str(tok)])  # fmt: skip
    assert (out / "model.safetensors").is_file()


def test_cli_errors_are_clear(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["train", "tokenizer", "--preset", "smol", "--output_dir", str(tmp_path)])
    assert result.exit_code == 1 and "uses its base model's tokenizer" in result.output
    result = runner.invoke(app, ["train", "sft", "--init_path", str(tmp_path / "none"), "--output_dir", str(tmp_path)])
    assert result.exit_code == 1 and "run `mmcot train align` first" in result.output
    result = runner.invoke(app, ["train", "vision", "--objective", "magic"])
    assert result.exit_code == 1 and "heads, contrastive or both" in result.output
    result = runner.invoke(app, ["train", "align", "--config", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 1 and "does not exist" in result.output
    (tmp_path / "broken.yaml").write_text("max_steps: [1,\n")
    for command in ("sft", "grpo"):
        result = runner.invoke(app, ["train", command, "--config", str(tmp_path / "broken.yaml")])
        assert result.exit_code == 1 and "the recipe (--config) is not valid YAML" in result.output, result.output
    result = runner.invoke(app, ["train", "detector", "--publish", "nosuch", "--output_dir", str(tmp_path)])
    assert result.exit_code == 1 and "holds no checkpoint to add the detector to" in result.output


def test_resume_restores_the_checkpoint_weights(pipeline, tmp_path):
    """Trainer checkpoints of a LLaVA hold renamed keys; resuming must still restore every weight."""
    import torch

    from mmcot.models.load import load_model
    from mmcot.models.sft import load_checkpoint_weights

    _, _, _, align = pipeline
    trained, _ = load_model(str(align))
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.5)
    trained.save_pretrained(tmp_path / "checkpoint-1")
    fresh, _ = load_model(str(align))
    load_checkpoint_weights(fresh, tmp_path / "checkpoint-1")
    for (name, a), b in zip(trained.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_lora_run_resumes_with_its_projector(pipeline, capsys):
    """PEFT checkpoints hold the adapter only; the trained projector is saved beside it and restored on resume."""
    from safetensors.torch import load_file

    from mmcot.models.sft import TRAINED_BESIDE_ADAPTER

    root, _, _, align = pipeline
    args = [*sft_args(root, align, 1), "--output_dir", str(root / "lora"), "--lora_r", "4", "--eval_per_family", "0"]
    run_stage("sft", args)
    saved = load_file(root / "lora" / "checkpoint-1" / TRAINED_BESIDE_ADAPTER)
    assert saved and all("multi_modal_projector" in k for k in saved)
    run_stage("sft", [*args, "--max_steps", "2"])  # the last --max_steps wins: a rerun goes on from checkpoint-1
    assert "resuming from" in capsys.readouterr().out
    assert (root / "lora" / "checkpoint-2" / "adapter_model.safetensors").is_file()


def test_sft_can_keep_the_projector_as_align_left_it(pipeline):
    """--freeze_projector: stage 2 trains the language side only (smol keeps its word start so, README, Models)."""
    import torch

    from mmcot.models.load import load_model
    from mmcot.models.sft import TRAINED_BESIDE_ADAPTER

    root, _, _, align = pipeline
    out = run_stage("sft", [*sft_args(root, align, 1), "--output_dir", str(root / "frozen"), "--lora_r", "4",
                            "--eval_per_family", "0", "--freeze_projector", "true", "--save_dtype", "float32"])  # fmt: skip
    assert (root / "frozen" / "checkpoint-1").is_dir()
    assert not list(
        (root / "frozen").glob(f"checkpoint-*/{TRAINED_BESIDE_ADAPTER}")
    )  # nothing but the adapter trained
    before, after = (load_model(str(p))[0].model for p in (align, out))
    for a, b in zip(before.multi_modal_projector.parameters(), after.multi_modal_projector.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not all(torch.equal(a, b) for a, b in zip(before.language_model.parameters(),
                                                     after.language_model.parameters(), strict=True))  # fmt: skip


def test_align_starts_image_tokens_as_the_words_of_what_each_patch_shows(pipeline, tmp_path):
    """max_steps 0: the closed-form start alone. On validation puzzles, an object patch's image token is nearest
    (among the seven color words' embeddings) to its own color's word far above chance (1 in 7). With the background
    word, empty patches all say one word ("background") rather than small noise that the language model's RMSNorm
    would make loud. With the position words, a token's coordinate from "left" to "right" (from "above" to "below")
    follows its patch's column (row)."""
    import torch

    from mmcot.evals.puzzles import generate
    from mmcot.models.load import load_model
    from mmcot.models.sft import init_projector, word_embedding
    from mmcot.models.targets import COLORS, targets

    root, tok, vis, _ = pipeline
    out = run_stage("align", ["--output_dir", str(tmp_path / "a0"), "--vision_path", str(vis), "--tokenizer_path",
                              str(tok), *TEXT, *QUIET, "--max_steps", "0", "--eval_per_family", "0"])  # fmt: skip
    assert not any((tmp_path / "a0").glob("checkpoint-*"))
    model, processor = load_model(str(out))
    heads = torch.load(vis / "heads.pt")  # the tower's color and shape heads are the projector's first hidden units
    assert torch.equal(model.model.multi_modal_projector.linear_1.weight[:8], heads["color.weight"].to(model.dtype))
    embed = model.get_input_embeddings().weight
    words = torch.stack([word_embedding(processor.tokenizer, embed, c) for c in COLORS])
    items = generate("attribute,count,spatial", n=8, split="val")
    pixels = processor.image_processor([it.images[0] for it in items], return_tensors="pt")["pixel_values"]

    def image_tokens():
        with torch.no_grad():
            got = model.model.get_image_features(pixel_values=pixels)
        return torch.stack(list(getattr(got, "pooler_output", got))).flatten(0, 1)

    tokens = image_tokens()
    size, patch = model.config.vision_config.image_size, model.config.vision_config.patch_size
    colors = torch.tensor([c for it in items for c in targets(it, 0, size, size // patch)["color"]])
    objects = colors > 0
    accuracy = float(((tokens[objects] @ words.T).argmax(-1) == colors[objects] - 1).float().mean())
    assert int(objects.sum()) > 20 and accuracy > 0.25, accuracy  # this 2-step 32 px tower reads color at ~0.3

    init_projector(model, processor, fresh=True, heads=heads, background=True)  # align --background_word true
    # one word on every empty patch, not small noise that RMSNorm would amplify
    empty = torch.nn.functional.normalize(image_tokens()[colors == 0].float(), dim=-1)
    word = torch.nn.functional.normalize(
        word_embedding(processor.tokenizer, embed.detach(), "background").float(), dim=0
    )
    assert len(empty) > 20 and float((empty @ empty.T).mean()) > 0.85  # ~0.95 (without the word: ~0.7)
    assert float((empty @ word).mean()) > 0.8  # ~0.95 (without: ~0.36)

    init_projector(model, processor, fresh=True, heads=heads, background=True, position=True)  # --position_words
    # every patch's token now says where it is: its column along "left" -> "right", its row along "above" -> "below"
    tokens, known = image_tokens().float(), colors >= 0
    grid = size // patch
    cells = torch.arange(grid * grid).repeat(len(items))
    for first, second, cell in (("left", "right", cells % grid), ("above", "below", cells // grid)):
        axis = word_embedding(processor.tokenizer, embed, second) - word_embedding(processor.tokenizer, embed, first)
        along = tokens[known] @ axis.detach().float()
        r = float(torch.corrcoef(torch.stack([along, cell[known].float()]))[0, 1])
        assert r > 0.2, (second, r)  # 0.35 and 0.30 here (without: -0.14, 0.05); 0.90 and 0.88 on the shipped tower


def test_align_and_reinit_start_the_projector_at_the_text_embeddings_scale(pipeline, tmp_path):
    """The shipped models' image tokens are 100x the size of their text tokens: align now starts the projector from
    standardized tower features, sized like the text embeddings, and `sft --reinit_projector` restarts it so, with
    the tower's heads from --vision_path as its first hidden units (as align does)."""
    import torch
    from safetensors.torch import load_file

    from mmcot.evals.puzzles import generate
    from mmcot.models.load import load_model

    root, _, vis, align = pipeline
    with torch.no_grad():  # blow the projector up as the shipped one is, then restart it
        folder = tmp_path / "big"
        big, processor = load_model(str(align))
        big.model.multi_modal_projector.linear_2.weight *= 100
        big.save_pretrained(folder)
        processor.save_pretrained(folder)
    out = run_stage("sft", [*sft_args(root, folder, 1), "--output_dir", str(tmp_path / "re"), "--eval_per_family",
                            "0", "--reinit_projector", "true", "--vision_path", str(vis), "--freeze_projector",
                            "true"])  # fmt: skip
    images = [it.images[0] for it in generate("count,attribute", n=4, split="val")]
    ratios = []
    for path in (align, folder, out):
        model, processor = load_model(str(path))
        pixels = processor.image_processor(images, return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            got = model.model.get_image_features(pixel_values=pixels)
            feats = torch.cat(list(getattr(got, "pooler_output", got)))
            text = model.get_input_embeddings().weight
            ratios.append(float(feats.pow(2).mean().sqrt() / text.pow(2).mean().sqrt()))
        assert feats.std(0).mean() > 0.1 * feats.pow(2).mean().sqrt()  # image tokens still differ from one another
    assert 0.5 < ratios[0] < 2 and ratios[1] > 20 and 0.5 < ratios[2] < 2, ratios
    saved = load_file(out / "model.safetensors")["multi_modal_projector.linear_1.weight"]
    heads = torch.load(vis / "heads.pt")["color.weight"]
    assert torch.allclose(saved[: len(heads)].float(), heads, atol=1e-2)


def test_sft_continues_a_trained_adapter_folder(pipeline, packaged_base, monkeypatch):
    """``--init_path`` may be a trained smol-style folder: stage 2 trains a new LoRA on top and saves both as one
    adapter (rank 2 + 2), still in the small format. A preset with a packaged base stands in for smol."""
    from dataclasses import replace

    from mmcot.models import presets
    from mmcot.models.load import load_model

    root, _, _, align = pipeline
    model, processor = load_model(str(align))
    packaged_base(model, processor.tokenizer)
    monkeypatch.setattr(presets, "ON_BASE", replace(presets.TINY, lora=True, base="test-base"), raising=False)
    args = ["--preset", "mmcot.models.presets:ON_BASE", "--lora_r", "2", "--eval_per_family", "0"]
    first = run_stage("sft", [*sft_args(root, align, 1), *args, "--output_dir", str(root / "first")])
    second = run_stage("sft", [*sft_args(root, first, 1), *args, "--output_dir", str(root / "second")])
    assert json.loads((second / "mmcot_base.json").read_text()) == {"base": "test-base"}
    assert json.loads((second / "adapter_config.json").read_text())["r"] == 4
    load_model(str(second))


def test_detector_trains_resumes_and_publishes_into_a_model_folder(tiny_folder, monkeypatch, tmp_path, capsys):
    """`mmcot train detector`: a rerun resumes, --publish adds the detector to a checkpoint folder, and a backend over
    that folder scores crops with it; a corrupt detector file is a clear error."""
    import shutil

    from PIL import Image

    from mmcot.models import load
    from mmcot.models.local import LocalBackend

    shutil.copytree(tiny_folder, tmp_path / "checkpoints" / "mini")
    monkeypatch.setattr(load, "CHECKPOINTS", tmp_path / "checkpoints")
    args = ["--output_dir", str(tmp_path / "det"), *QUIET, "--train_puzzles", "3", "--crops_per_puzzle", "2",
            "--per_device_train_batch_size", "4", "--save_steps", "1", "--check_puzzles", "6", "--width", "8"]  # fmt: skip
    run_stage("detector", [*args, "--max_steps", "1"])
    out = run_stage("detector", [*args, "--max_steps", "2", "--publish", "mini"])
    assert "resuming from" in capsys.readouterr().out
    assert {"detector.safetensors", "detector.json", "README.md"} <= {p.name for p in out.iterdir()}
    card = json.loads((out / "mmcot_card.json").read_text())
    assert 0 <= card["evals"]["check"]["top_tile"] <= 1 and card["evals"]["check"]["grid"] == 3
    backend = LocalBackend.from_spec("mini")
    scored = backend.detector.score([Image.new("RGB", (40, 30), "white")] * 2, "red", None)
    assert len(scored) == 2 and all(0 <= s <= 1 and 0 < x < 1 and 0 < y < 1 for s, (x, y) in scored)
    backend.close()
    (tmp_path / "checkpoints" / "mini" / "detector.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="cannot read the detector"):
        _ = LocalBackend.from_spec("mini").detector


@pytest.mark.parametrize("command", ["tokenizer", "vision", "align", "sft", "detector", "grpo", "dpo", "prm"])
def test_every_training_command_lists_its_fields(command):
    result = CliRunner().invoke(app, ["train", command, "--help"])
    assert result.exit_code == 0, result.output
    assert f"usage: mmcot train {command}" in result.output and "--output_dir" in result.output


def test_grounding_loss_teaches_the_answer_to_look_at_its_objects(pipeline):
    """--grounding_weight: on direct answers to attribute, spatial and count questions, the position that predicts the
    answer learns to attend to the objects the answer is read from (README, Models)."""
    import torch

    from mmcot.models.data import DataMix, Rows
    from mmcot.models.load import load_model
    from mmcot.models.sft import Collator, language_layers

    root, _, _, align = pipeline
    rows = Rows(DataMix(families="attribute,spatial,count", kinds="direct:1", family_weights="", data_seed=3), 16)
    batch = [rows[i] for i in range(16)]

    def best_mass(folder):
        model, processor = load_model(str(folder))
        model.set_attn_implementation("eager")
        inputs = Collator(processor, grounding_query="answer")(batch)
        query, keys = inputs.pop("ground_query"), inputs.pop("ground_keys")
        seen = {}
        language_layers(model)[0].self_attn.register_forward_hook(lambda _m, _a, out: seen.update(w=out[1]))
        with torch.no_grad():
            model(**inputs)
        grounded = (query >= 0).nonzero().flatten()
        assert len(grounded) >= 12  # all but counts of zero
        for b in grounded:
            assert inputs["labels"][b, query[b]] == -100 and inputs["labels"][b, query[b] + 1] != -100
            assert keys[b].any() and (inputs["input_ids"][b][keys[b]] == processor.image_token_id).all()
        attention = seen["w"][grounded, :, query[grounded]]
        return (attention * keys[grounded, None]).sum(-1).max(-1).values.mean().item()

    _, processor = load_model(str(align))
    inputs = Collator(processor, grounding_query="word")(batch)  # the question's word that names the object
    for b in (inputs["ground_query"] >= 0).nonzero().flatten():
        word = processor.tokenizer(" " + batch[b]["ground"]["word"], add_special_tokens=False)["input_ids"][-1]
        assert inputs["input_ids"][b, inputs["ground_query"][b]] == word
    assert (inputs["ground_query"] >= 0).sum() == sum(bool(r["ground"] and r["ground"]["word"]) for r in batch) > 0
    routed = Collator(processor, grounding_query="route")(batch)  # the answer's position, toward that word
    for b in (routed["ground_query"] >= 0).nonzero().flatten():
        assert routed["labels"][b, routed["ground_query"][b] + 1] != -100
        assert routed["ground_keys"][b].nonzero().flatten().tolist() == [inputs["ground_query"][b]]
    counted = Collator(processor, grounding_query="count")(batch)  # the first token and each counted object's center
    for b, r in enumerate(batch):
        if r["ground"] is None or r["ground"]["item"].category != "count":
            assert counted["ground_query"][b] == -1
            continue
        keys = counted["ground_keys"][b].nonzero().flatten()
        assert counted["labels"][b, counted["ground_query"][b] + 1] != -100
        n = int(r["ground"]["item"].answer)  # one patch per object (two may share one at this resolution)
        assert keys[0] == 0 and min(n, 1) <= len(keys) - 1 <= n
        assert (counted["input_ids"][b][keys[1:]] == processor.image_token_id).all()
    before = best_mass(align)
    out = run_stage("sft", [*sft_args(root, align, 60), "--output_dir", str(root / "ground"), "--families",
                            "attribute,spatial,count", "--kinds", "direct:1", "--grounding_weight", "5",
                            "--grounding_layers", "0", "--learning_rate", "1e-2", "--eval_per_family", "0",
                            "--save_steps", "100"])  # fmt: skip
    log = json.loads((root / "ground" / "checkpoint-60" / "trainer_state.json").read_text())["log_history"]
    assert any("grounding_loss" in entry for entry in log)
    assert "eager" not in (out / "config.json").read_text()  # the saved model keeps the default attention
    assert best_mass(out) > before + 0.1
    run_stage("sft", [*sft_args(root, align, 4), "--output_dir", str(root / "count"), "--families", "count", "--kinds",
                      "direct:1", "--grounding_weight", "1", "--grounding_query", "count", "--grounding_layers", "0",
                      "--eval_per_family", "0", "--logging_steps", "1", "--save_steps", "100"])  # fmt: skip
    log = json.loads((root / "count" / "checkpoint-4" / "trainer_state.json").read_text())["log_history"]
    spread = [entry["grounding_loss"] for entry in log if "grounding_loss" in entry]
    assert spread and all(loss >= 0 for loss in spread)  # a KL divergence from the even spread
    with pytest.raises(StageError, match="has layers 0-0"):  # the miniature has one layer
        run_stage("sft", [*sft_args(root, align, 1), "--output_dir", str(root / "bad"), "--grounding_weight", "1"])
