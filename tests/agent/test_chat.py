"""``mmcot chat``: image paths in messages, the half-block preview, sessions in SQLite, slash commands, Ctrl-C and
resuming (control flow with the scripted backend), and whole turns on the shipped tiny model, in process and through
the ``mmcot chat`` command (plain output, ``-p``, ``--list``, ``--resume``)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from mmcot.agent.chat import Chat, ChatConfig, ChatError, open_chat, split_images
from mmcot.agent.chat_store import SessionStore, Turn
from mmcot.agent.chat_view import PlainView, half_blocks

MMCOT = [sys.executable, "-m", "mmcot.cli"]


ZOOM_CALL = '<tool_call>{"name": "zoom", "arguments": {"image": "image_0", "box": [0, 0, 48, 48]}}</tool_call>'


def scene() -> Image.Image:
    img = Image.new("RGB", (96, 64), "white")
    draw = ImageDraw.Draw(img)
    draw.ellipse((8, 8, 40, 40), fill="red")
    draw.rectangle((56, 24, 88, 56), fill="blue")
    return img


@pytest.fixture
def picture(tmp_path) -> Path:
    path = tmp_path / "my scene.png"
    scene().save(path)
    return path


def make_chat(home: Path, backend, strategy: str = "cot", spec: str = "scripted") -> tuple[Chat, io.StringIO]:
    from mmcot.reasoning.solve import _backends

    _backends[spec] = backend  # get_backend(spec) returns it, as if loaded
    out = io.StringIO()
    store = SessionStore(home)
    session = store.create({"model": spec, "strategy": strategy, "options": {}, "tools": None, "max_seconds": 60})
    session.settings["thread"] = session.id
    chat = Chat(store, session, PlainView(out, session.folder))
    chat.backend = backend
    return chat, out


# ---- pieces ----


def test_image_paths_in_a_message(picture, tmp_path):
    text, images = split_images(f"what is in '{picture}' please")
    assert (text, images) == ("what is in please", [picture])
    escaped = str(picture).replace(" ", "\\ ")
    assert split_images(f"{escaped} and this?") == ("and this?", [picture])
    assert split_images("compare missing.png with nothing") == ("compare missing.png with nothing", [])
    (tmp_path / "notes.txt").write_text("x")
    assert split_images(f"read {tmp_path / 'notes.txt'}")[1] == []


def test_half_block_preview_shape_and_colors():
    img = Image.new("RGB", (40, 40), "red")
    img.paste((0, 0, 255), (0, 20, 40, 40))
    text = half_blocks(img, width=10)
    lines = text.plain.splitlines()
    assert lines == ["▀" * 10] * 5  # 10x10 pixels, two per character cell
    styles = {str(span.style) for span in text.spans}
    assert any("#ff0000" in s for s in styles) and any("#0000ff" in s for s in styles)


def test_sessions_persist_and_resolve_by_prefix(tmp_path):
    store = SessionStore(tmp_path)
    a = store.create({"model": "m"})
    store.append(a, Turn("user", "How many circles?", images=["image_0.png"]))
    store.append(a, Turn("assistant", "3", trace={"strategy": "cot"}))
    again = SessionStore(tmp_path).load(a.id[:-2])
    assert again.id == a.id and again.title == "How many circles?"
    assert [(t.role, t.text, t.images) for t in again.turns] == [
        ("user", "How many circles?", ["image_0.png"]),
        ("assistant", "3", []),
    ]
    assert again.turns[1].trace == {"strategy": "cot"}
    assert [s["turns"] for s in store.list()] == [2]
    with pytest.raises(KeyError, match="no chat session"):
        store.resolve("nope")


# ---- control flow (scripted backend) ----


def test_turns_commands_and_thread_history(tmp_path, make_backend, picture):
    seen = []

    def respond(request):
        seen.append(request.messages)
        return "counting</think><answer>2</answer>"

    chat, out = make_chat(tmp_path, make_backend(respond))
    assert chat.handle(f"how many shapes in '{picture}'?")
    assert out.getvalue().splitlines()[-1] == "2"
    assert chat.handle("and now?")  # the second turn sees the first one
    texts = str(seen[-1])
    assert "how many shapes in" in texts and "and now?" in texts
    chat.handle("/strategy direct")
    assert chat.settings["strategy"] == "direct"
    chat.handle("/strategy tot breadth=2")
    assert chat.settings["options"] == {"breadth": 2}
    chat.handle("/strategy nope")
    assert "unknown strategy" in out.getvalue()
    chat.handle("/strategy image-loop")
    chat.handle("/tools zoom,crop")
    assert chat.settings["tools"] == "zoom,crop"
    chat.handle("/tools bogus")
    assert "unknown tool" in out.getvalue()
    chat.handle("/trace")
    assert "answer: 2" in out.getvalue()
    chat.handle(f"/save {tmp_path / 't.md'}")
    saved = (tmp_path / "t.md").read_text()
    assert "how many shapes in" in saved and "turn0-0-my scene.png" in saved
    chat.handle("/nope")
    assert "unknown command /nope" in out.getvalue()
    assert chat.handle("/quit") is False
    again = SessionStore(tmp_path).load(chat.session.id)
    assert [t.role for t in again.turns] == ["user", "assistant"] * 2
    assert again.settings["strategy"] == "image-loop" and again.settings["tools"] == "zoom,crop"
    assert (again.folder / "turn0-0-my scene.png").is_file()  # the user's image, copied into the session folder


def test_tool_calls_and_their_images_are_shown_and_saved(tmp_path, make_backend, picture):
    def respond(request):
        if request.messages[-1]["role"] == "tool":
            return "I see it.</think><answer>red</answer>"
        return "Zooming.</think>" + ZOOM_CALL

    chat, out = make_chat(tmp_path, make_backend(respond), strategy="image-loop")
    chat.handle(f"'{picture}' what color is the circle?")
    lines = out.getvalue().splitlines()
    assert any(line.startswith("tool call: zoom(") for line in lines)
    (image_line,) = [line for line in lines if line.startswith("image image_1:")]
    assert Path(image_line.split(": ", 1)[1]).is_file()
    assert lines[-1] == "red"


def test_ctrl_c_cancels_the_answer_not_the_session(tmp_path, make_backend):
    backend = make_backend(lambda r: " ".join(["word"] * 500), delay=0.01)
    chat, out = make_chat(tmp_path, backend)

    class Interrupting(PlainView):
        def event(self, e):
            if e.get("type") == "token":
                raise KeyboardInterrupt  # what Ctrl-C raises in the main thread
            super().event(e)

    chat.view = Interrupting(out, chat.session.folder)
    chat.handle("tell me a long story")
    assert "[cancelled]" in out.getvalue()
    assert chat.session.turns[-1].status == "cancelled"
    trace = chat.session.turns[-1].trace
    assert trace["stop_reason"] == "cancelled" and trace["completion_tokens"] < 100
    chat.view = PlainView(out, chat.session.folder)
    backend.respond = lambda r: "fine</think><answer>ok</answer>"
    assert chat.handle("still there?") and out.getvalue().splitlines()[-1] == "ok"


def test_resume_continues_the_conversation(tmp_path, make_backend):
    seen = []
    backend = make_backend(lambda r: seen.append(r.messages) or "x</think><answer>blue</answer>")
    chat, _ = make_chat(tmp_path, backend)
    chat.handle("what color is the sky?")
    chat.close()
    resumed = open_chat(ChatConfig(home=str(tmp_path), resume=chat.session.id[:12], plain=True))
    assert resumed.session.id == chat.session.id and len(resumed.session.turns) == 2
    resumed.view = PlainView(io.StringIO(), resumed.session.folder)
    resumed.handle("and at night?")
    assert "what color is the sky?" in str(seen[-1])
    with pytest.raises(ChatError, match="no chat session"):
        open_chat(ChatConfig(home=str(tmp_path), resume="nope", plain=True))


def test_the_default_model_is_smol_and_falls_back_to_tiny_with_a_note(tmp_path, make_backend, monkeypatch, capsys):
    import mmcot.models.load as load
    from mmcot.agent.chat import default_model
    from mmcot.reasoning.solve import _backends

    monkeypatch.setattr(load, "shipped", lambda: ["smol", "tiny"])
    assert default_model() == ("smol", "")
    monkeypatch.setattr(load, "shipped", lambda: ["tiny"])
    monkeypatch.setitem(_backends, "tiny", make_backend(lambda r: "<answer>ok</answer>"))
    chat = open_chat(ChatConfig(home=str(tmp_path), plain=True))
    assert chat.settings["model"] == "tiny"
    assert "model smol (the chat model) is not installed" in capsys.readouterr().err


# ---- the shipped tiny model ----


@pytest.fixture(scope="module")
def tiny():
    from mmcot.reasoning.solve import get_backend

    return get_backend("tiny")


def test_a_turn_on_the_real_model(tmp_path, tiny, picture):
    chat, out = make_chat(tmp_path, tiny, strategy="region-search", spec="tiny")
    chat.settings["options"] = {"grid": 2, "max_depth": 1, "max_tokens": 8}
    chat.handle(f"what color is the small circle? '{picture}'")
    lines = out.getvalue().splitlines()
    crops = [line for line in lines if line.startswith("crop:")]
    assert len(crops) == 4 and all(Path(line.rsplit(": ", 1)[1]).is_file() for line in crops)
    turn = chat.session.turns[-1]  # the detector scores the tiles; the model answers from the zoomed crop
    assert turn.role == "assistant" and turn.trace["model_calls"] >= 1


# ---- the command ----


def run(args: list[str], home: Path, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        MMCOT + args + ["--home", str(home)], input=stdin, capture_output=True, text=True, timeout=600, env=env
    )


def test_the_default_chat_model_answers_in_words(tmp_path, picture):
    """The chat's default model (the shipped smol, never taught to think) answers a plain question and a question
    about an image through ``mmcot chat -p``: a reply in words, not "(no answer)"."""
    home = tmp_path / "home"
    r = run(["chat", "-p", "Give me two tips for staying focused."], home)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.split()) >= 5 and "(no answer)" not in r.stdout, r.stdout
    r = run(["chat", "-p", "What color is the circle?", "--image", str(picture)], home)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() and "(no answer)" not in r.stdout, r.stdout


@pytest.mark.slow
def test_the_command_answers_once_lists_and_resumes(tmp_path, picture):
    home = tmp_path / "home"
    tiny_cot = "--model tiny --strategy cot --option max_tokens=8".split()
    r = run(["chat", "-p", "What is in the image?", "--image", str(picture), *tiny_cot], home)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.strip().splitlines()) == 1  # the answer alone: scriptable
    r = run(["chat", "--list"], home)
    assert r.returncode == 0 and " 2 turns " in r.stdout and "What is in the image?" in r.stdout
    session = r.stdout.split()[0]
    r = run(["chat", "--resume", session], home, stdin="/strategy direct\nAnd now?\n/trace\n/quit\n")
    assert r.returncode == 0, r.stderr
    assert "you: What is in the image? [turn0-0-my scene.png]" in r.stdout  # the transcript so far
    assert "strategy direct" in r.stdout and "answer:" in r.stdout
    r = run(["chat", "--resume", "nope"], home)
    assert r.returncode == 1 and "no chat session 'nope'" in r.stderr and "Traceback" not in r.stderr
    r = run(["chat", "-p", "hi", "--image", str(tmp_path / "missing.png"), "--model", "tiny"], home)
    assert r.returncode == 1 and "cannot read image file" in r.stderr


@pytest.mark.slow
def test_an_answer_cut_short_by_a_dead_process_continues_on_resume(tmp_path, picture):
    import sqlite3
    import time

    home = tmp_path / "home"
    args = ["chat", "-p", "How many shapes are there?", "--image", str(picture), "--home", str(home)]
    args += "--model tiny --strategy tot --option depth=3".split()
    proc = subprocess.Popen(MMCOT + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600

    def checkpointed() -> bool:  # the controller has saved the turn's first step
        try:
            with sqlite3.connect(home / "threads.sqlite") as db:
                return db.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0] >= 2
        except sqlite3.Error:
            return False

    while not checkpointed():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    (session,) = SessionStore(home).list()
    assert session["turns"] == 1  # the question, no answer
    r = run(["chat", "--resume", session["id"]], home, stdin="/quit\n")
    assert r.returncode == 0, r.stderr
    assert "continuing the answer that was cut short" in r.stdout
    turns = SessionStore(home).load(session["id"]).turns
    assert [t.role for t in turns] == ["user", "assistant"] and turns[1].status == "ok"
    assert turns[1].trace["strategy"] == "tot" and turns[1].trace["stop_reason"]
