"""OpenAIBackend against a real HTTP server on a loopback port: a minimal FastAPI app speaking the OpenAI
chat-completions wire format (JSON and SSE streaming, data-URL images, vLLM's continue_final_message) over the tiny
LocalBackend, so every answer can be checked against the local backend's own."""

import base64
import json
import socket
import threading
import time

import pytest
from PIL import Image

from mmcot.models.backend import Request, RequestError, Sampling, load_backend
from mmcot.models.openai_backend import BackendUnavailable, OpenAIBackend


def openai_app(backend):
    from fastapi import FastAPI
    from fastapi import Request as HTTPRequest
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse, StreamingResponse

    app = FastAPI()

    def to_request(body: dict) -> Request:
        messages = []
        for m in body["messages"]:
            content = m.get("content")
            if isinstance(content, list):
                content = [
                    {"type": "image", "image": base64.b64decode(p["image_url"]["url"].partition(",")[2])}
                    if p["type"] == "image_url"
                    else p
                    for p in content
                ]
            messages.append({**m, "content": content})
        prefix = ""
        if body.get("continue_final_message"):
            prefix = messages.pop()["content"]
        sampling = Sampling(
            max_tokens=body.get("max_tokens", 16),
            temperature=body.get("temperature", 1.0),
            top_p=body.get("top_p", 1.0),
            stop=body.get("stop") or [],
            seed=body.get("seed"),
        )
        return Request(messages, n=body.get("n", 1), sampling=sampling, prefix=prefix)

    @app.post("/v1/chat/completions")
    async def chat(http: HTTPRequest):
        body = await http.json()
        try:
            request = to_request(body)
            if body.get("stream"):
                stream = backend.stream(request)
            else:
                [completions] = await run_in_threadpool(backend.generate, [request])
        except RequestError as e:
            return JSONResponse({"error": {"message": str(e), "type": "invalid_request_error"}}, status_code=400)
        head = {"id": "cmpl-1", "created": int(time.time()), "model": body["model"]}
        if body.get("stream"):

            def events():
                chunk = {**head, "object": "chat.completion.chunk"}
                for delta in stream:
                    yield f"data: {json.dumps({**chunk, 'choices': [{'index': 0, 'delta': {'content': delta}}]})}\n\n"
                c = stream.completion
                end = {"index": 0, "delta": {}, "finish_reason": c.finish_reason}
                yield f"data: {json.dumps({**chunk, 'choices': [end]})}\n\n"
                usage = {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens}
                yield f"data: {json.dumps({**chunk, 'choices': [], 'usage': {**usage, 'total_tokens': 0}})}\n\n"
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        choices = [
            {"index": i, "message": {"role": "assistant", "content": c.text}, "finish_reason": c.finish_reason}
            for i, c in enumerate(completions)
        ]
        total = sum(c.completion_tokens for c in completions)
        usage = {"prompt_tokens": completions[0].prompt_tokens, "completion_tokens": total, "total_tokens": 0}
        return {**head, "object": "chat.completion", "choices": choices, "usage": usage}

    return app


@pytest.fixture(scope="module")
def server_url(tiny_backend):
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(openai_app(tiny_backend), host="127.0.0.1", port=0, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join()


def messages(images: int = 2) -> list[dict]:
    parts = [
        {"type": "image", "image": Image.new("RGB", (40, 30 + 9 * i), ["red", "blue"][i % 2])} for i in range(images)
    ]
    return [
        {"role": "user", "content": [*parts, {"type": "text", "text": "how many shapes?"}]},
        {"role": "assistant", "content": '<tool_call>{"name": "crop", "arguments": {}}</tool_call>'},
        {"role": "tool", "content": [{"type": "image", "image": Image.new("RGB", (20, 20), "green")}]},
    ]


def test_load_backend_picks_the_openai_backend(server_url):
    backend = load_backend(f"openai:{server_url}#tiny")
    assert isinstance(backend, OpenAIBackend)
    assert (backend.model, backend.name) == ("tiny", f"openai:{server_url}#tiny")


def test_generate_over_http_matches_the_local_backend(server_url, tiny_backend):
    remote = OpenAIBackend(server_url, "tiny")
    requests = [
        Request(messages(2), sampling=Sampling(max_tokens=12)),
        Request(messages(1), n=3, sampling=Sampling(temperature=0.8, top_p=0.9, max_tokens=9, seed=5)),
        Request(messages(0), prefix="<think>", sampling=Sampling(max_tokens=7)),
    ]
    over_http = remote.generate(requests)
    local = tiny_backend.generate(requests)
    assert [[c.text for c in cs] for cs in over_http] == [[c.text for c in cs] for cs in local]
    assert [c.finish_reason for cs in over_http for c in cs] == [c.finish_reason for cs in local for c in cs]
    for got, want in zip(over_http, local, strict=True):
        assert {c.prompt_tokens for c in got} == {want[0].prompt_tokens}
        assert sum(c.completion_tokens for c in got) == sum(c.completion_tokens for c in want)


def test_stop_strings_over_http(server_url, tiny_backend):
    [[full]] = tiny_backend.generate([Request(messages(1), sampling=Sampling(max_tokens=30))])
    stop = full.text[12:15]
    [[c]] = OpenAIBackend(server_url, "tiny").generate(
        [Request(messages(1), sampling=Sampling(max_tokens=30, stop=[stop]))]
    )
    assert (c.text, c.finish_reason) == (full.text[: full.text.index(stop)], "stop")


def test_stream_over_http(server_url, tiny_backend):
    request = Request(messages(2), sampling=Sampling(max_tokens=20))
    [[want]] = tiny_backend.generate([request])
    stream = OpenAIBackend(server_url, "tiny").stream(request)
    deltas = list(stream)
    assert "".join(deltas) == want.text and len(deltas) > 1
    assert stream.completion == want


def test_a_refused_request_is_a_request_error(server_url):
    overlong = Request([{"role": "user", "content": "how many shapes? " * 1200}])
    with pytest.raises(RequestError, match=r"refused the request \(400\).*holds at most 2048"):
        OpenAIBackend(server_url, "tiny").generate([overlong])


def test_an_unreachable_server_says_so():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    backend = OpenAIBackend(f"http://127.0.0.1:{port}/v1", "tiny", timeout=5)
    with pytest.raises(BackendUnavailable, match="cannot reach the model server"):
        backend.generate([Request(messages(0))])


def test_mmcot_generate_over_http(server_url, tiny_backend):
    from typer.testing import CliRunner

    from mmcot.cli import app

    hi = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    [[want]] = tiny_backend.generate([Request(hi, sampling=Sampling(max_tokens=8))])
    for stream in ([], ["--stream"]):
        args = ["generate", "hi", "--model", f"openai:{server_url}#tiny", "--max-tokens", "8", *stream]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert result.stdout == want.text + "\n"
