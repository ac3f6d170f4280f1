"""``mmcot serve`` over a real socket: the official ``openai`` client and raw HTTP against the shipped tiny model, bad
input answered with 4xx OpenAI-style errors while the server keeps serving, and (with the scripted backend, for
control flow only) client-side tool calls, server-side tools, the 429 queue, timeouts and client disconnects."""

from __future__ import annotations

import base64
import io
import json
import socket
import struct
import threading
import time
import zlib

import httpx
import pytest
from PIL import Image

from mmcot.agent.server.app import ServeConfig, create_app

ZOOM_CALL = '<tool_call>{"name": "zoom", "arguments": {"image": "image_0", "box": [0, 0, 48, 48]}}</tool_call>'


def data_url(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def scene() -> Image.Image:
    from PIL import ImageDraw

    img = Image.new("RGB", (96, 96), "white")
    draw = ImageDraw.Draw(img)
    draw.ellipse((10, 10, 40, 40), fill="red")
    draw.rectangle((55, 55, 85, 85), fill="blue")
    return img


def bomb_png(side: int = 100_000) -> bytes:
    """A tiny PNG whose header claims side x side pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


class Server:
    """A uvicorn server on a free loopback port, in a thread."""

    def __init__(self, cfg: ServeConfig, backend) -> None:
        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            cfg.port = s.getsockname()[1]
        self.app = create_app(cfg, backend)
        self.url = f"http://127.0.0.1:{cfg.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=cfg.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)

    @property
    def active(self) -> int:
        return self.app.state.engine.active

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def tiny():
    from mmcot.reasoning.solve import get_backend

    return get_backend("tiny")


@pytest.fixture(scope="module")
def server(tiny, tmp_path_factory):
    files = tmp_path_factory.mktemp("allowed")
    scene().save(files / "scene.png")
    srv = Server(ServeConfig(model="tiny", strategy="cot", max_tokens=12, max_images=3, allow_files=str(files)), tiny)
    srv.files = files
    yield srv
    srv.close()


@pytest.fixture
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=60)


def image_message(text: str, *images: Image.Image) -> dict:
    parts = [{"type": "image_url", "image_url": {"url": data_url(i)}} for i in images]
    return {"role": "user", "content": [*parts, {"type": "text", "text": text}]}


# ---- the official openai client against the real tiny model ----


def test_models_are_listed(client):
    ids = [m.id for m in client.models.list()]
    assert ids[0] == "mmcot-tiny"
    assert {"mmcot-tiny:cot", "mmcot-tiny:tot", "mmcot-tiny:region-search"} <= set(ids)


def test_chat_completion_with_an_image(client):
    r = client.chat.completions.create(
        model="mmcot-tiny:cot", messages=[image_message("What color is the circle?", scene())], max_tokens=8
    )
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    assert r.model == "mmcot-tiny:cot"
    (choice,) = r.choices
    assert choice.message.role == "assistant"
    assert choice.finish_reason in ("stop", "length")
    assert 0 < r.usage.completion_tokens <= 8 and r.usage.prompt_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_streaming_with_images_and_usage(client):
    stream = client.chat.completions.create(
        model="mmcot-tiny",
        messages=[image_message("Compare these two pictures.", scene(), Image.new("RGB", (40, 30), "green"))],
        stream=True,
        stream_options={"include_usage": True},
        max_completion_tokens=6,
        extra_body={"strategy": "direct"},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes in (["stop"], ["length"])
    assert chunks[-1].choices == [] and 0 < chunks[-1].usage.completion_tokens <= 6


def test_n_choices_and_sampling_parameters(client):
    r = client.chat.completions.create(
        model="mmcot-tiny:direct",
        messages=[{"role": "system", "content": "Be brief."}, image_message("Describe it.", scene())],
        n=3,
        temperature=0.9,
        top_p=0.8,
        seed=7,
        stop=["\n\n"],
        max_tokens=5,
    )
    assert [c.index for c in r.choices] == [0, 1, 2]
    assert r.usage.completion_tokens <= 15


def test_multi_turn_conversation(client):
    messages = [
        image_message("What is in the image?", scene()),
        {"role": "assistant", "content": "A red circle and a blue square."},
        {"role": "user", "content": "Which one is on the left?"},
    ]
    r = client.chat.completions.create(model="mmcot-tiny:cot", messages=messages, max_tokens=6)
    assert r.choices[0].finish_reason in ("stop", "length")


def test_errors_come_back_as_openai_errors(client):
    import openai

    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert e.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError, match="above this server's limit"):
        client.chat.completions.create(model="mmcot-tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=99)


# ---- /v1/solve ----


def test_solve_returns_answer_and_trace_with_intermediate_images(server):
    body = {
        "images": [data_url(scene())],
        "question": "What color is the small circle?",
        "strategy": "region-search",
        "strategy_options": {"grid": 2, "max_depth": 1},
        "budget": {"max_steps": 20},
    }
    r = httpx.post(server.url + "/v1/solve", json=body, timeout=120)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["object"] == "mmcot.solve" and out["strategy"] == "region-search"
    trace = out["trace"]
    assert trace["stop_reason"] and out["stop_reason"] == trace["stop_reason"]
    crops = [n for n in trace["nodes"] if n["kind"] == "crop"]
    assert len(crops) == 4  # one level of a 2x2 grid
    assert all(n["images"][0] in trace["images"] for n in crops)
    assert all(url.startswith("data:image/png;base64,") for url in trace["images"].values())
    assert out["usage"]["completion_tokens"] == trace["completion_tokens"]


def test_solve_streams_each_step_then_the_result(server):
    bare = data_url(scene()).partition(",")[2]  # bare base64 works too
    body = {"images": [bare], "question": "How many shapes?", "strategy": "cot", "stream": True, "max_tokens": 8}
    events = []
    with httpx.stream("POST", server.url + "/v1/solve", json=body, timeout=120) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(line[6:])
    assert events[-1] == "[DONE]"
    kinds = [json.loads(e)["type"] for e in events[:-1]]
    assert "token" in kinds and "thought" in kinds and kinds[-3:] == ["answer", "stop", "result"]
    assert json.loads(events[-2])["trace"]["nodes"][0]["kind"] == "thought"


# ---- bad input: 4xx with an OpenAI error body, and the server keeps serving ----


def chat_body(content, model="mmcot-tiny") -> dict:
    return {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 4}


def image_part(url: str) -> dict:
    return {"type": "image_url", "image_url": {"url": url}}


BAD = {
    "malformed JSON": (b'{"model": "mmcot-tiny", "messages": [', 400, None),
    "not an object": (b"[1, 2]", 400, None),
    "no messages": ({"model": "mmcot-tiny"}, 400, "messages"),
    "unknown model": (chat_body("hi", model="nope"), 404, "model"),
    "unknown strategy": ({**chat_body("hi"), "strategy": "nope"}, 400, "strategy"),
    "dotted-path knob": (
        {**chat_body("hi"), "strategy": "tot", "strategy_options": {"value": "os:system"}},
        400,
        None,
    ),
    "dotted path in a list": ({**chat_body("hi"), "strategy_options": {"tools": ["os:system"]}}, 400, None),
    "bad knob": ({**chat_body("hi"), "strategy_options": {"shots": 99}}, 400, None),
    "bad base64": (chat_body([image_part("data:image/png;base64,@@not base64@@")]), 400, None),
    "not an image": (
        chat_body([image_part("data:image/png;base64," + base64.b64encode(b"hello").decode())]),
        400,
        None,
    ),
    "decompression bomb": (
        chat_body([image_part("data:image/png;base64," + base64.b64encode(bomb_png()).decode())]),
        400,
        None,
    ),
    "too many images": (chat_body([image_part(data_url(scene()))] * 4), 400, None),
    "remote URL": (chat_body([image_part("https://example.com/a.png")]), 400, None),
    "file outside the allowed folder": (chat_body([image_part("file:///etc/passwd")]), 400, None),
    "n too large": ({**chat_body("hi"), "n": 1000}, 400, "n"),
    "negative temperature": ({**chat_body("hi"), "temperature": -1}, 400, "temperature"),
    "assistant last": ({"model": "mmcot-tiny", "messages": [{"role": "assistant", "content": "x"}]}, 400, "messages"),
    "tools on a strategy without tools": (
        {**chat_body("hi"), "tools": [{"type": "function", "function": {"name": "zoom"}}]},
        400,
        "tools",
    ),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_gets_a_4xx_and_the_server_keeps_serving(server, name):
    body, status, param = BAD[name]
    kwargs = (
        {"content": body, "headers": {"content-type": "application/json"}}
        if isinstance(body, bytes)
        else {"json": body}
    )
    r = httpx.post(server.url + "/v1/chat/completions", timeout=60, **kwargs)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if param:
        assert error["param"] == param
    assert httpx.get(server.url + "/health").json() == {"status": "ok"}
    assert server.active == 0


def test_body_size_limit(server):
    r = httpx.post(server.url + "/v1/solve", content=b"x" * (33 * 2**20), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than" in r.json()["error"]["message"]


def test_file_urls_inside_the_allowed_folder_are_read(client, server):
    url = (server.files / "scene.png").as_uri()
    r = client.chat.completions.create(
        model="mmcot-tiny:direct",
        messages=[{"role": "user", "content": [image_part(url), {"type": "text", "text": "What is it?"}]}],
        max_tokens=3,
    )
    assert r.choices[0].finish_reason in ("stop", "length")


def test_openapi_documents_every_route_and_status(server):
    spec = httpx.get(server.url + "/openapi.json").json()
    chat = spec["paths"]["/v1/chat/completions"]["post"]
    assert set(chat["responses"]) == {"200", "400", "404", "413", "429", "500", "504"}
    assert "text/event-stream" in chat["responses"]["200"]["content"]
    assert spec["components"]["schemas"]["ChatCompletionRequest"]["properties"]["model"]["enum"][0] == "mmcot-tiny"
    assert {"/v1/models", "/v1/solve", "/v1/tools", "/health"} <= set(spec["paths"])
    fields = list(spec["components"]["schemas"]["ChatCompletion"]["properties"])
    assert fields == ["id", "object", "created", "model", "choices", "usage"]  # OpenAI's order


# ---- security ----


def test_binding_beyond_loopback_needs_a_key():
    with pytest.raises(ValueError, match="api-key"):
        ServeConfig(host="0.0.0.0")
    assert ServeConfig(host="0.0.0.0", api_key="k").api_key == "k"


def test_api_key_is_required_when_set(make_backend):
    srv = Server(ServeConfig(model="scripted", api_key="sesame", strategy="direct"), make_backend(lambda r: "ok"))
    try:
        r = httpx.get(srv.url + "/v1/models")
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert httpx.get(srv.url + "/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        r = httpx.get(srv.url + "/v1/models", headers={"Authorization": "Bearer sesame"})
        assert r.status_code == 200 and r.json()["data"][0]["id"] == "mmcot-scripted"
        assert "401" in httpx.get(srv.url + "/openapi.json").json()["paths"]["/v1/models"]["get"]["responses"]
    finally:
        srv.close()


# ---- control flow with the scripted backend: tools, the queue, timeouts, disconnects ----


def test_client_side_tool_calls_go_back_to_the_client(make_backend):
    from openai import OpenAI

    def respond(request):
        if request.messages[-1]["role"] == "tool":
            return "The tool says sunny.</think><answer>It is sunny in Paris.</answer>"
        return 'Let me check.</think> <tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'

    backend = make_backend(respond)
    srv = Server(ServeConfig(model="scripted", strategy="image-loop"), backend)
    try:
        client = OpenAI(base_url=srv.url + "/v1", api_key="x", max_retries=0)
        tools = [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather of a city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            }
        ]
        messages = [{"role": "user", "content": "Weather in Paris?"}]
        r = client.chat.completions.create(model="mmcot-scripted", messages=messages, tools=tools)
        (choice,) = r.choices
        assert choice.finish_reason == "tool_calls"
        (call,) = choice.message.tool_calls
        assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
        assert backend.calls[0][0].tools == tools  # the backend lists them for the model
        messages += [
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny, 24 C"},
        ]
        r = client.chat.completions.create(model="mmcot-scripted", messages=messages, tools=tools)
        assert r.choices[0].finish_reason == "stop" and r.choices[0].message.content == "It is sunny in Paris."
        sent = backend.calls[-1][0].messages
        assert sent[-1]["role"] == "tool" and "sunny, 24 C" in json.dumps(sent[-1], default=str)
        assert "<tool_call>" in json.dumps(sent[-2], default=str)
    finally:
        srv.close()


def test_server_side_tools_run_in_the_agent_loop(make_backend):
    from openai import OpenAI

    def respond(request):
        if request.messages[-1]["role"] == "tool":
            return "It is red.</think><answer>red</answer>"
        return "I should zoom in.</think>" + ZOOM_CALL

    srv = Server(ServeConfig(model="scripted", strategy="image-loop"), make_backend(respond))
    try:
        client = OpenAI(base_url=srv.url + "/v1", api_key="x", max_retries=0)
        tools = [{"type": "function", "function": {"name": "zoom"}}]
        r = client.chat.completions.create(
            model="mmcot-scripted", messages=[image_message("Color?", scene())], tools=tools
        )
        message = r.choices[0].message
        assert message.content == "red" and r.choices[0].finish_reason == "stop"
        assert "→ zoom" in message.reasoning_content and "image_1" in message.reasoning_content
        chunks = list(
            client.chat.completions.create(
                model="mmcot-scripted", messages=[image_message("Color?", scene())], tools=tools, stream=True
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices)
        assert text == "red" and "→ zoom" in reasoning
    finally:
        srv.close()


def test_full_queue_answers_429_with_retry_after(make_backend):
    gate = threading.Event()

    def respond(request):
        gate.wait(20)
        return "<answer>ok</answer>"

    srv = Server(
        ServeConfig(model="scripted", strategy="direct", max_concurrency=1, max_queue=1), make_backend(respond)
    )
    try:
        results = []
        body = chat_body("hi", model="mmcot-scripted")
        threads = [
            threading.Thread(
                target=lambda: results.append(httpx.post(srv.url + "/v1/chat/completions", json=body, timeout=30))
            )
            for _ in range(2)
        ]
        for t in threads:
            t.start()
        wait_for(lambda: srv.active == 2)
        r = httpx.post(srv.url + "/v1/chat/completions", json=body)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert r.json()["error"]["type"] == "rate_limit_error"
        gate.set()
        for t in threads:
            t.join()
        assert [x.status_code for x in results] == [200, 200]
        assert httpx.post(srv.url + "/v1/chat/completions", json=body).status_code == 200
    finally:
        gate.set()
        srv.close()


def test_timeout_answers_504_and_frees_the_slot(make_backend):
    gate = threading.Event()
    srv = Server(
        ServeConfig(model="scripted", strategy="direct", timeout=0.5), make_backend(lambda r: gate.wait(10) and "late")
    )
    try:
        r = httpx.post(srv.url + "/v1/chat/completions", json=chat_body("hi", model="mmcot-scripted"), timeout=30)
        assert r.status_code == 504 and r.json()["error"]["code"] == "timeout"
        assert srv.active == 0
    finally:
        gate.set()
        srv.close()


def test_work_stops_when_the_client_disconnects(make_backend):
    words = 2000
    backend = make_backend(lambda r: " ".join(["word"] * words), delay=0.005)
    srv = Server(ServeConfig(model="scripted", strategy="cot", max_tokens=words), backend)
    produced = []
    real_stream = backend.stream

    def counting_stream(request):
        stream = real_stream(request)
        inner = stream._deltas

        def deltas():
            for d in inner:
                produced.append(d)
                yield d

        stream._deltas = deltas()
        return stream

    backend.stream = counting_stream
    try:
        body = {**chat_body("Tell me a long story.", model="mmcot-scripted"), "stream": True, "max_tokens": words}
        with httpx.stream("POST", srv.url + "/v1/chat/completions", json=body, timeout=30) as r:
            for line in r.iter_lines():
                if "reasoning_content" in line:
                    break  # read one token, then hang up
        wait_for(lambda: srv.active == 0)
        time.sleep(0.3)  # the worker stops at its next token
        n = len(produced)
        time.sleep(0.3)
        assert len(produced) == n < 100  # generation stopped, far before its 2000 words
    finally:
        srv.close()


# ---- a schema-driven fuzz (schemathesis) over a real socket: no 5xx, responses as documented ----


@pytest.mark.slow
def test_fuzz_the_api(tiny, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    srv = Server(ServeConfig(model="tiny", strategy="direct", max_tokens=4, max_images=3, timeout=120), tiny)
    checks = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
    try:
        r = subprocess.run(
            [
                str(Path(sys.executable).with_name("schemathesis")),
                "run",
                srv.url + "/openapi.json",
                "--checks",
                checks,
                "--max-examples",
                "40",
                "--workers",
                "1",
                "--seed",
                "1",
                "--no-color",
                "--request-timeout",
                "180",
                "--generation-database",
                "none",
                "--report",
                "junit",
                "--report-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=3000,
            cwd=tmp_path,  # schemathesis keeps a .schemathesis/ cache in its working directory
        )
    finally:
        srv.close()
    assert r.returncode == 0, r.stdout[-6000:]
    assert "No issues found" in r.stdout or "passed" in r.stdout


def test_max_completion_tokens_caps_the_whole_run_thoughts_included(make_backend):
    backend = make_backend(lambda r: "one more step to think about")  # ToT: many calls, each a few tokens
    srv = Server(ServeConfig(model="scripted", strategy="tot"), backend)
    try:
        body = {**chat_body("hi", model="mmcot-scripted"), "max_completion_tokens": 40}
        del body["max_tokens"]
        out = httpx.post(srv.url + "/v1/chat/completions", json=body, timeout=60).json()
        assert len(backend.calls) >= 2 and 0 < out["usage"]["completion_tokens"] <= 40
        assert out["choices"][0]["finish_reason"] == "length"
    finally:
        srv.close()


def test_a_non_streaming_request_stops_at_the_next_step_when_the_client_goes(make_backend):
    backend = make_backend(lambda r: "one more step to think about", delay=0.1)
    srv = Server(ServeConfig(model="scripted", strategy="tot"), backend)
    try:
        body = {**chat_body("hi", model="mmcot-scripted"), "strategy_options": {"breadth": 2, "depth": 6}}
        del body["max_tokens"]  # (it caps the whole run's tokens, which would end this one early)
        assert httpx.post(srv.url + "/v1/chat/completions", json=body, timeout=60).status_code == 200
        whole = len(backend.calls)
        backend.calls.clear()
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(srv.url + "/v1/chat/completions", json=body, timeout=0.3)
        wait_for(lambda: srv.active == 0)
        time.sleep(0.3)
        n = len(backend.calls)
        time.sleep(0.5)
        assert len(backend.calls) == n < whole / 2  # the run stopped soon after the client left
    finally:
        srv.close()


def test_a_port_in_use_is_a_clear_error_before_the_model_loads():
    import socket

    from typer.testing import CliRunner

    from mmcot.cli import app

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "--model", "no-such-model", "--port", str(port)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use; choose another --port" in result.output
