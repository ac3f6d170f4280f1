"""Control flow of the controller with a scripted model: budgets, routing, tool errors, malformed output, events,
cancellation, failures, and SQLite-checkpointed conversations (including a turn resumed after its process died)."""

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from mmcot.agent.graph import event_json
from mmcot.reasoning.solve import history, solve
from mmcot.reasoning.trace import Trace
from mmcot.tools.base import FunctionTool, ToolContext, ToolResult

SCRIPTED = Path(__file__).with_name("scripted.py")


def note(ctx: ToolContext, text: str) -> ToolResult:
    """Write a note.

    Args:
        text: what to write
    """
    return ToolResult(text=f"noted {text}")


def boom(ctx: ToolContext) -> ToolResult:
    """Always fails."""
    raise RuntimeError("the tool broke")


def flip(ctx: ToolContext, image: str) -> ToolResult:
    """Mirror an image.

    Args:
        image: image id
    """
    return ToolResult(images=[ctx.images[image].transpose(Image.Transpose.FLIP_LEFT_RIGHT)], captions=["mirrored"])


TOOLS = {t.name: t for t in (FunctionTool(note), FunctionTool(boom), FunctionTool(flip))}
CALL = '<tool_call>{"name": "note", "arguments": {"text": "hi"}}</tool_call>'


def test_token_budget_stops_with_best_answer(make_backend, image):
    backend = make_backend(lambda r: " ".join(["word"] * 50) + " <answer>7</answer>")
    trace = solve(image, "q?", strategy="cot", backend=backend, budget={"max_tokens": 10})
    assert trace.stop_reason == "max_tokens"
    assert trace.completion_tokens <= 10
    assert backend.calls[0][0].sampling.max_tokens == 10  # capped to what the budget allows


def test_step_budget_ends_a_tool_loop(make_backend, image):
    backend = make_backend(lambda r: CALL)
    trace = solve(image, "q?", strategy="image-loop", backend=backend, tools=TOOLS, max_turns=1000,
                  budget={"max_steps": 5})  # fmt: skip
    assert trace.stop_reason == "max_steps"
    assert [n.kind for n in trace.nodes][:4] == ["thought", "tool_call", "tool_result", "thought"]
    assert trace.tool_calls == 2


def test_time_budget(make_backend, image):
    backend = make_backend(lambda r: CALL, delay=0.05)
    trace = solve(image, "q?", strategy="image-loop", backend=backend, tools=TOOLS, max_turns=1000,
                  budget={"max_seconds": 0.3})  # fmt: skip
    assert trace.stop_reason == "max_seconds"
    assert 0.3 <= trace.seconds < 2


def test_max_turns_keeps_the_last_words(make_backend, image):
    backend = make_backend(lambda r: "I think 5 " + CALL)
    trace = solve(image, "q?", strategy="image-loop", backend=backend, tools=TOOLS, max_turns=2, think=False)
    assert trace.stop_reason == "max_turns"
    assert trace.answer == "I think 5"  # the tool call is not an answer


def test_cancel_stops_at_the_next_step(make_backend, image):
    cancel = threading.Event()
    backend = make_backend(lambda r: CALL)

    def emit(event):
        if event["type"] == "tool_result":
            cancel.set()

    trace = solve(image, "q?", strategy="image-loop", backend=backend, tools=TOOLS, max_turns=100, emit=emit,
                  cancel=cancel)  # fmt: skip
    assert trace.stop_reason == "cancelled"
    assert trace.tool_calls == 1


def test_backend_failure_keeps_the_trace(make_backend, image, last_text):
    def respond(request):
        if "Describe" in last_text(request):
            return "a red dot"
        raise RuntimeError("out of memory")

    trace = solve(image, "q?", strategy="describe", backend=make_backend(respond))
    assert trace.stop_reason.startswith("error: reason: RuntimeError: out of memory")
    assert [n.text for n in trace.nodes] == ["a red dot"]


def test_a_failure_on_an_unguarded_edge_still_says_why(make_backend, image):
    """direct's edges (start -> ask -> finish) are plain LangGraph edges; finish itself reports the failed node."""

    def respond(request):
        raise RuntimeError("out of memory")

    trace = solve(image, "q?", strategy="direct", backend=make_backend(respond))
    assert trace.stop_reason == "error: ask: RuntimeError: out of memory" and trace.answer == ""


@pytest.mark.parametrize(
    "reply, answer, reason",
    [
        ("<think>it is four</think><answer>4</answer>", "4", "answer"),
        ("no tags at all\nlast line 9", "last line 9", "answer"),
        ("<think>never closes", "", "no_answer"),
        ("", "", "no_answer"),
        ("<answer>unclosed 3", "unclosed 3", "answer"),
    ],
)
def test_malformed_model_output(make_backend, image, reply, answer, reason):
    trace = solve(image, "q?", strategy="cot", think=False, backend=make_backend(lambda r: reply))
    assert (trace.answer, trace.stop_reason) == (answer, reason)


def test_tool_errors_go_back_to_the_model(make_backend, image, last_text):
    replies = iter(
        [
            "<tool_call>{not json}</tool_call>",
            '<tool_call>{"name": "nope", "arguments": {}}</tool_call>',
            '<tool_call>{"name": "note", "arguments": {"txt": 1}}</tool_call>',
            '<tool_call>{"name": "boom", "arguments": {}}</tool_call>',
            "<answer>done</answer>",
        ]
    )
    backend = make_backend(lambda r: next(replies))
    trace = solve(image, "q?", strategy="image-loop", backend=backend, tools=TOOLS, think=False)
    assert (trace.answer, trace.stop_reason) == ("done", "answer")
    errors = [n.meta["error"] for n in trace.nodes if n.kind == "tool_result"]
    assert len(errors) == 4
    assert "not valid JSON" in errors[0] and "unknown tool 'nope'" in errors[1]
    assert "unknown argument 'txt'" in errors[2] and "the tool broke" in errors[3]
    seen = [m for m in backend.calls[-1][0].messages if m["role"] == "tool"]
    assert len(seen) == 4 and all("error" in last_text(type("R", (), {"messages": [m]})) for m in seen)


def test_tool_images_reach_the_model_and_the_trace(make_backend, image):
    replies = iter(
        ['<tool_call>{"name": "flip", "arguments": {"image": "image_0"}}</tool_call>', "<answer>ok</answer>"]
    )
    backend = make_backend(lambda r: next(replies))
    events = []
    trace = solve(image, "q?", strategy="image-loop", backend=backend, tools=TOOLS, emit=events.append, think=False)
    assert trace.answer == "ok" and set(trace.images) == {"image_0", "image_1"}
    assert trace.images["image_1"].getpixel((13, 40)) == (255, 0, 0)  # mirrored
    tool_msg = [m for m in backend.calls[-1][0].messages if m["role"] == "tool"][0]
    assert any(p["type"] == "image" and p["image"].size == (64, 48) for p in tool_msg["content"])
    result = next(e for e in events if e["type"] == "tool_result")
    assert list(result["images"]) == ["image_1"]
    assert event_json(result)["images"]["image_1"].startswith("data:image/png;base64,")
    assert [n.images for n in trace.nodes if n.kind == "tool_result"] == [["image_1"]]


def test_events_stream_in_order(make_backend, image):
    events = []
    trace = solve(image, "q?", strategy="cot", backend=make_backend(lambda r: "a b c</think><answer>c</answer>"),
                  emit=events.append)  # fmt: skip
    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["token"] * 3 and kinds[-3:] == ["thought", "answer", "stop"]
    assert "".join(e["text"] for e in events if e["type"] == "token") == "a b c</think><answer>c</answer>"
    assert events[-1] == {"type": "stop", "reason": "answer", "usage": events[-1]["usage"]}
    assert events[-1]["usage"]["model_calls"] == 1 and trace.answer == "c"


def test_a_turn_without_a_listener_runs_in_the_callers_thread_with_the_same_trace(make_backend, image):
    """Without ``emit`` the graph streams only its state, so nodes run inline (no worker-thread handoff per step)."""
    threads = []

    def reply(request):
        threads.append(threading.get_ident())
        return '<tool_call>{"name": "note", "arguments": {"text": "hi"}}</tool_call>' if len(threads) == 1 else "ok"

    quiet = solve(image, "q?", strategy="image-loop", backend=make_backend(reply), tools=TOOLS, think=False)
    assert set(threads) == {threading.get_ident()}
    threads.clear()
    events = []
    loud = solve(image, "q?", strategy="image-loop", backend=make_backend(reply), tools=TOOLS, think=False,
                 emit=events.append, stream_tokens=False)  # fmt: skip
    assert [e["type"] for e in events][-2:] == ["answer", "stop"]
    strip = lambda t: [(n.kind, n.text) for n in t.nodes]  # noqa: E731
    assert (quiet.answer, quiet.stop_reason, strip(quiet)) == (loud.answer, loud.stop_reason, strip(loud))
    assert quiet.answer == "ok" and quiet.tool_calls == 1


def test_trace_round_trips_through_json(make_backend, image, tmp_path):
    trace = solve(
        image, "q?", strategy="self-consistency", n=3, backend=make_backend(lambda r: "two</think><answer>2</answer>")
    )
    again = Trace.from_dict(json.loads(trace.to_json(image_dir=tmp_path)), image_dir=tmp_path)
    assert again.answer == "2" and [n.parents for n in again.nodes][-1] == [0, 1, 2]
    assert again.images["image_0"].tobytes() == image.tobytes()


def test_a_thread_remembers_earlier_turns(make_backend, image, tmp_path):
    db = tmp_path / "threads.sqlite"
    backend = make_backend(lambda r: f"</think><answer>{len(r.messages)}</answer>")
    first = solve(image, "first?", strategy="direct", backend=backend, thread="t1", checkpoint=db)
    second = solve(image, "second?", strategy="cot", backend=backend, thread="t1", checkpoint=db)
    assert (first.answer, second.answer) == ("1", "3")  # user, assistant, user
    assert [n.id for n in second.nodes] == [0]  # each turn has its own trace
    messages = history("t1", db)
    assert [m["role"] for m in messages] == ["user", "assistant"] * 2
    assert messages[2]["content"][0] == {"type": "image", "image": "image_1"}  # ids continue across turns
    other = solve(image, "alone?", strategy="direct", backend=backend, thread="t2", checkpoint=db)
    assert other.answer == "1"


def test_resume_without_an_unfinished_turn_says_so(make_backend, tmp_path):
    with pytest.raises(ValueError, match="no unfinished turn"):
        solve(thread="fresh", checkpoint=tmp_path / "db.sqlite", backend=make_backend(lambda r: ""))


CHILD = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("scripted", {scripted!r})
scripted = importlib.util.module_from_spec(spec); spec.loader.exec_module(scripted)
from PIL import Image
from mmcot.reasoning.solve import solve
sys.path.insert(0, {here!r})
from test_graph import TOOLS
backend = scripted.ScriptedBackend(lambda r: '<tool_call>{{"name": "note", "arguments": {{"text": "x"}}}}</tool_call>', 0.05)
solve(Image.new("RGB", (32, 32)), "loop?", strategy="image-loop", backend=backend, tools=TOOLS, max_turns=1000,
      thread="dies", checkpoint={db!r})
"""


def test_a_turn_resumes_after_its_process_dies(make_backend, tmp_path):
    db = tmp_path / "threads.sqlite"
    code = CHILD.format(scripted=str(SCRIPTED), here=str(Path(__file__).parent), db=str(db))
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env={**os.environ})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and child.poll() is None:  # wait for a few checkpointed steps
            if db.exists():
                try:
                    with sqlite3.connect(db) as con:
                        if con.execute("select count(*) from checkpoints").fetchone()[0] >= 6:
                            break
                except sqlite3.OperationalError:
                    pass  # the tables do not exist yet
            time.sleep(0.02)
        assert child.poll() is None, "the child finished or failed before it could be killed"
        child.kill()
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
    replies = iter(["<answer>resumed</answer>"] * 10)
    trace = solve(
        thread="dies", checkpoint=db, backend=make_backend(lambda r: "</think>" + next(replies)), tools=TOOLS
    )
    assert (trace.answer, trace.stop_reason, trace.strategy) == ("resumed", "answer", "image-loop")
    assert trace.tool_calls >= 1  # the steps before the kill are in the trace
    assert [n.kind for n in trace.nodes][:3] == ["thought", "tool_call", "tool_result"]


def test_cancel_mid_stream_stops_the_generation(make_backend, image):
    cancel = threading.Event()
    backend = make_backend(lambda r: " ".join(["word"] * 200), delay=0.001)
    tokens = []

    def emit(event):
        if event["type"] == "token":
            tokens.append(event["text"])
            if len(tokens) == 5:
                cancel.set()

    trace = solve(image, "q?", strategy="cot", backend=backend, emit=emit, cancel=cancel)
    assert trace.stop_reason == "cancelled"
    said = trace.nodes[0].text.removeprefix("<think>").split(" ")
    assert 5 <= len(said) < 100 and said == ["word"] * len(said)  # stopped early, what was said is kept


def test_a_streamed_checkpointed_conversation_on_the_shipped_model(image, tmp_path):
    """The controller end to end with the shipped tiny model: token streaming, events, budgets and a SQLite thread."""
    from mmcot.reasoning.solve import get_backend

    tiny, db, events = get_backend("tiny"), tmp_path / "threads.sqlite", []
    first = solve(image, "What color is the dot?", strategy="cot", backend=tiny, emit=events.append, max_tokens=6,
                  thread="real", checkpoint=db)  # fmt: skip
    kinds = [e["type"] for e in events]
    assert kinds[0] == "token" and kinds[-2:] == ["answer", "stop"] and "thought" in kinds
    streamed = "".join(e["text"] for e in events if e["type"] == "token")
    # what streamed is the thought; a model that ends its turn inside it has it read as its reply (nodes.generate)
    assert first.nodes[0].text in ("<think>" + streamed, "<think></think>" + streamed)
    assert streamed and 1 <= first.completion_tokens <= 6
    assert events[-1]["reason"] == first.stop_reason and first.stop_reason in ("answer", "no_answer", "max_tokens")
    second = solve(image, "And now?", strategy="direct", backend=tiny, budget={"max_tokens": 2}, thread="real",
                   checkpoint=db)  # fmt: skip
    assert second.completion_tokens <= 2 and second.stop_reason in ("answer", "no_answer", "max_tokens")
    assert [m["role"] for m in history("real", db)] == ["user", "assistant"] * 2


def test_a_node_whose_next_step_is_finish_ends_the_turn_itself(make_backend, image):
    from mmcot.agent.graph import compiled
    from mmcot.reasoning import get_strategy

    edges = {(e.source, e.target) for e in compiled(get_strategy("direct")).get_graph().edges}
    assert ("ask", "__end__") in edges and ("ask", "finish") not in edges  # one LangGraph step fewer per turn
    events = []
    trace = solve(image, "q?", strategy="direct", backend=make_backend(lambda r: "7"), emit=events.append)
    assert [e["type"] for e in events][-2:] == ["answer", "stop"] and events[-1]["usage"]["model_calls"] == 1
    assert (trace.answer, trace.stop_reason) == ("7", "answer")


def test_parallel_branches_straight_into_finish_are_refused_clearly(make_backend, image, monkeypatch):
    from dataclasses import make_dataclass

    from mmcot.agent.graph import Builder, Strategy
    from mmcot.reasoning import STRATEGIES

    def build(g):
        g.node("split", lambda state, step: {})
        g.node("branch", lambda state, step: {"answer": "x"})
        g.edge("start", "split")
        g.edge("split", lambda state, ctx: [Builder.send("branch", state, {"k": k}) for k in range(2)])
        g.edge("branch", "finish")

    monkeypatch.setitem(
        STRATEGIES, "fan-out", Strategy("fan-out", "two branches", make_dataclass("Config", []), build)
    )
    with pytest.raises(ValueError, match="'branch' is a parallel branch with a fixed edge to finish; join the"):
        solve(image, "q?", strategy="fan-out", backend=make_backend(lambda r: "x"))


def test_a_cancel_that_reaches_parallel_branches_ends_the_turn_once(make_backend, image):
    """Cancelled while ToT scores its states (the chat's Ctrl-C), both next-level branches stop with "cancelled" in
    one LangGraph step. The turn ends with one stop reason; LangGraph refused the second write before, and the
    crash left the chat session unable to answer again."""
    cancel, thoughts = threading.Event(), []

    def respond(request):
        if request.sampling.stop == ["\n"]:
            return [f"step {len(thoughts)} {i}" for i in range(request.n)]
        return "yes"

    def emit(event):
        if event["type"] == "thought":
            thoughts.append(event)
        if event["type"] == "score":
            cancel.set()

    backend = make_backend(respond, delay=0.05)
    trace = solve(image, "q?", strategy="tot", breadth=2, beam=2, depth=4, backend=backend, cancel=cancel, emit=emit)
    assert trace.stop_reason == "cancelled" and len(thoughts) == 2
