"""``mmcot generate`` end to end on the tiny model folder: images, n samples, JSON output, streaming, clear errors."""

import json

from PIL import Image
from typer.testing import CliRunner

from mmcot.cli import app


def run(*args):
    return CliRunner().invoke(app, ["generate", *map(str, args)])


def test_generate_samples_as_json(tiny_folder, tmp_path):
    picture = tmp_path / "scene.png"
    Image.new("RGB", (64, 48), "red").save(picture)
    result = run("How many shapes?", "--image", picture, "--image", picture, "--model", tiny_folder, "-n", 3,
                 "--temperature", 0.9, "--seed", 1, "--max-tokens", 5, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    samples = json.loads(result.stdout)
    assert len(samples) == 3
    assert all(s["completion_tokens"] <= 5 and s["prompt_tokens"] > 32 for s in samples)


def test_stream_prints_the_greedy_text(tiny_folder):
    plain = run("hello", "--model", tiny_folder, "--max-tokens", 8)
    streamed = run("hello", "--model", tiny_folder, "--max-tokens", 8, "--stream")
    assert plain.exit_code == streamed.exit_code == 0
    assert plain.stdout == streamed.stdout and len(plain.stdout) > 1


def test_bad_input_is_a_one_line_error(tiny_folder, tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    for args, message in [
        (["--image", junk], "not a readable image"),
        (["--image", tmp_path / "missing.png"], "cannot read image file"),
        (["--top-p", 0], "top_p must be in"),
        (["-n", 2, "--stream"], "--stream prints one sample"),
    ]:
        result = run("hi", "--model", tiny_folder, *args)
        assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    result = run("hi", "--model", broken)
    assert result.exit_code == 1 and "error:" in result.output and "Traceback" not in result.output
