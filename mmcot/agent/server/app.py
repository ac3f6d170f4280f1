"""``mmcot serve``: the FastAPI app, its configuration and its routes.

    mmcot serve --model smol                       # http://127.0.0.1:8000, docs at /docs, schema at /openapi.json
    curl -s localhost:8000/v1/models

Routes: ``POST /v1/chat/completions`` (OpenAI-compatible; the agent loop runs here: a strategy is picked by the model
name, ``mmcot-smol:tot``, or the ``strategy`` field), ``GET /v1/models``, ``GET /v1/tools`` (the server-side tools),
``POST /v1/solve`` (image(s) + question -> answer and the full trace; ``stream: true`` sends each step), ``GET
/health``. Every error is an OpenAI-style body with a 4xx status (see ``errors``); the queue, timeouts and
cancellation are in ``engine``; untrusted images in ``media``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import re
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mmcot.agent.server import protocol as p
from mmcot.agent.server.engine import Engine, Ticket, watch_disconnect
from mmcot.agent.server.errors import APIError, error_body, install
from mmcot.agent.server.media import convert_messages, decode_image
from mmcot.agent.server.runner import Sampled, check_strategy, opens_think, run_conversation
from mmcot.agent.server.stream import Splitter, reasoning_of, visible
from mmcot.agent.state import Budget

SSE_EVENT = {  # one server-sent event, as OpenAPI 3.1 describes each event of a text/event-stream
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {"type": "string", "description": "a JSON object, or [DONE] last"},
        "event": {"type": "string"},
    },
}
STOPPED_EARLY = {"max_steps", "max_tokens", "max_seconds", "max_turns", "cancelled"}


@dataclass
class ServeConfig:
    model: str = field(default="smol", metadata={"help": "model spec: tiny, smol, a folder, openai:URL#model"})
    host: str = field(
        default="127.0.0.1", metadata={"help": "address to bind; anything but loopback needs an API key"}
    )
    port: int = field(default=8000, metadata={"help": "port to listen on"})
    api_key: str = field(default="", metadata={"help": "Bearer key clients must send (env MMCOT_API_KEY)"})
    served_model_name: str = field(default="", metadata={"help": "model id in the API (default mmcot-<model>)"})
    strategy: str = field(default="image-loop", metadata={"help": "strategy when the model name gives none"})
    max_concurrency: int = field(default=16, metadata={"help": "agent runs at once (their model calls are batched)"})
    max_queue: int = field(default=64, metadata={"help": "requests waiting beyond those; more get 429"})
    timeout: float = field(
        default=300.0, metadata={"help": "seconds a request's run may take (then the answer so far; 504 at 1.2x)"}
    )
    max_body_mb: float = field(default=32.0, metadata={"help": "largest request body in MiB"})
    max_images: int = field(default=8, metadata={"help": "images per request"})
    max_pixels: int = field(default=16_777_216, metadata={"help": "pixels per image (decoded width x height)"})
    max_tokens: int = field(default=4096, metadata={"help": "largest max_tokens a request may ask for"})
    allow_files: str = field(default="", metadata={"help": "folder whose files file:// image URLs may name (off)"})

    def __post_init__(self) -> None:
        self.api_key = self.api_key or os.environ.get("MMCOT_API_KEY", "")
        if not _loopback(self.host) and not self.api_key:
            raise ValueError(f"binding to {self.host} exposes the server: set --api-key (or MMCOT_API_KEY)")
        if min(self.max_concurrency, self.max_images, self.max_pixels, self.max_tokens) < 1 or self.max_queue < 0:
            raise ValueError("limits must be positive (max_queue may be 0)")
        if self.timeout <= 0 or self.max_body_mb <= 0:
            raise ValueError("timeout and max_body_mb must be positive")
        if self.allow_files and not Path(self.allow_files).is_dir():
            raise ValueError(f"--allow-files {self.allow_files}: not a folder")
        self.served_model_name = self.served_model_name or "mmcot-" + _model_tag(self.model)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _model_tag(spec: str) -> str:
    if spec.startswith("openai:"):
        return spec.partition("#")[2] or "openai"
    return Path(spec.rstrip("/")).name if "/" in spec else spec


class BodyLimit:
    """ASGI middleware: a request body above ``limit`` bytes gets a 413 before it is parsed."""

    def __init__(self, app: Any, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await self._reject(send)
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise APIError(413, self._message())
            return message

        try:
            await self.app(scope, limited, send)
        except APIError:
            await self._reject(send)

    def _message(self) -> str:
        return f"request body is larger than this server's limit of {self.limit / 2**20:g} MiB"

    async def _reject(self, send: Any) -> None:
        body = json.dumps(error_body(413, self._message())).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": p.ErrorResponse} for code in codes}


def create_app(cfg: ServeConfig, backend: Any) -> FastAPI:
    """The app serving ``backend`` (any mmcot Backend) under ``cfg``."""
    from mmcot.reasoning import STRATEGIES
    from mmcot.tools import TOOLS

    if cfg.strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {cfg.strategy!r}; known: {', '.join(STRATEGIES)}")
    engine = Engine(cfg.max_concurrency, cfg.max_queue, cfg.timeout * 1.2)  # the budget stops runs at cfg.timeout
    files_root = Path(cfg.allow_files).resolve() if cfg.allow_files else None
    created = int(time.time())
    model_ids = [cfg.served_model_name] + [f"{cfg.served_model_name}:{s}" for s in STRATEGIES]
    app = FastAPI(
        title="mmcot",
        version="0.1.0",
        summary="Multimodal chain-of-thought reasoning over an OpenAI-compatible API",
        on_shutdown=[engine.shutdown],
    )
    app.state.engine = engine
    install(app)
    app.add_middleware(BodyLimit, limit=int(cfg.max_body_mb * 2**20))
    auth = [401] if cfg.api_key else []
    work = [400, 404, 413, 429, 500, 504, *auth]  # what a route that runs the agent may answer besides 200
    bearer = HTTPBearer(auto_error=False, description="The server's API key")

    async def check_key(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if credentials is None or not secrets.compare_digest(credentials.credentials.encode(), cfg.api_key.encode()):
            raise APIError(401, "missing or wrong API key: send 'Authorization: Bearer <key>'", code="invalid_api_key")

    deps = [Depends(check_key)] if cfg.api_key else []

    def resolve(model: str | None, strategy: str | None, options: dict[str, Any] | None) -> tuple[str, dict]:
        name, _, suffix = (model or cfg.served_model_name).partition(":")
        if name != cfg.served_model_name or (suffix and suffix not in STRATEGIES):
            raise APIError(
                404,
                f"the model {model!r} does not exist; GET /v1/models lists the served ones",
                param="model",
                code="model_not_found",
            )
        chosen = strategy or suffix or cfg.strategy
        if chosen not in STRATEGIES:
            raise APIError(400, f"unknown strategy {chosen!r}; known: {', '.join(STRATEGIES)}", param="strategy")
        for key, value in (options or {}).items():
            # a dotted path (pkg.mod:obj) would make the server import code a client names
            if any(":" in text for text in strings(value)):
                raise APIError(400, f"strategy_options.{key}: dotted paths are not accepted over HTTP", param=key)
            if key == "tools":
                names = [t.strip() for text in strings(value) for t in text.split(",")]
                unknown = [t for t in names if t and t not in TOOLS]
                if unknown:
                    raise APIError(400, f"unknown tool(s) {', '.join(unknown)}; GET /v1/tools lists them", param=key)
        try:
            check_strategy(chosen, options or {})
        except ValueError as e:
            raise APIError(400, str(e), param="strategy_options") from None
        return chosen, dict(options or {})

    def budget_of(b: p.Budget | None, completion_tokens: int | None = None) -> Budget:
        """The run's limits; ``completion_tokens`` (OpenAI's max_completion_tokens) caps its generated tokens in all,
        thoughts included, as OpenAI's reasoning models count them."""
        given = {k: v for k, v in (b.model_dump() if b else {}).items() if v is not None}
        if completion_tokens is not None:
            given["max_tokens"] = min(given.get("max_tokens", completion_tokens), completion_tokens)
        return Budget(**{**given, "max_seconds": min(given.get("max_seconds", cfg.timeout), cfg.timeout)})

    def cap_tokens(value: int | None, param: str) -> None:
        if value is not None and value > cfg.max_tokens:
            raise APIError(400, f"{param}={value} is above this server's limit of {cfg.max_tokens}", param=param)

    def sampling(strategy: str, knobs: dict, temperature: float | None, max_tokens: int | None, **more: Any) -> dict:
        """Sampling overrides: temperature and max_tokens go to the strategy's knobs when it has them."""
        from mmcot.reasoning import get_strategy

        fields = get_strategy(strategy).config.__dataclass_fields__
        overrides = dict(more, max_tokens=cfg.max_tokens)  # every model call is capped at the server's limit
        for key, value in (("temperature", temperature), ("max_tokens", max_tokens)):
            if value is not None and key in fields and key not in knobs:
                knobs[key] = value
            elif value is not None:
                overrides[key] = value
        return overrides

    @app.get("/health", tags=["server"])
    async def health() -> dict[str, str]:
        """200 while the server is up."""
        return {"status": "ok"}

    @app.get(
        "/v1/models", response_model=p.ModelList, dependencies=deps, responses=_errors(413, *auth), tags=["openai"]
    )
    async def models() -> p.ModelList:
        """The served model, alone (the default strategy) and with each strategy as ``model:strategy``."""
        return p.ModelList(data=[p.ModelCard(id=i, created=created) for i in model_ids])

    @app.get("/v1/tools", response_model=p.ToolList, dependencies=deps, responses=_errors(413, *auth), tags=["mmcot"])
    async def tools() -> p.ToolList:
        """The tools the agent can run server-side; name them in a request's ``tools`` to allow them."""
        return p.ToolList(
            data=[p.ToolInfo(function=p.FunctionDefinition(**t.schema()["function"])) for t in TOOLS.values()]
        )

    @app.post(
        "/v1/chat/completions",
        response_model=p.ChatCompletion,
        dependencies=deps,
        tags=["openai"],
        responses={
            200: {
                "content": {"text/event-stream": {"schema": SSE_EVENT}},
                "description": "A chat.completion, or with stream=true server-sent chat.completion.chunk events",
            },
            **_errors(*work),
        },
    )
    async def chat_completions(body: p.ChatCompletionRequest, request: Request) -> Any:
        """Continue the conversation: the agent runs the chosen strategy (model calls and tool calls) and answers."""
        strategy, knobs = resolve(body.model, body.strategy, body.strategy_options)
        asked_tokens = body.max_completion_tokens or body.max_tokens
        cap_tokens(asked_tokens, "max_completion_tokens")
        server_tools, client_tools = None, []
        if body.tools is not None:
            fns = [t.function for t in body.tools]
            server_tools = [f.name for f in fns if f.name in TOOLS]
            client_tools = [f.model_dump() for f in fns if f.name not in TOOLS]
        if body.tool_choice == "none":
            server_tools, client_tools = [], []
        if (server_tools or client_tools) and "tools" not in check_strategy(strategy, {}).__dataclass_fields__:
            raise APIError(400, f"strategy {strategy} calls no tools; use image-loop or react", param="tools")
        stop = [body.stop] if isinstance(body.stop, str) else body.stop
        if stop is not None and (len(stop) > 8 or not all(stop)):
            raise APIError(400, "stop takes at most 8 non-empty strings", param="stop")
        overrides = sampling(
            strategy,
            knobs,
            body.temperature,
            asked_tokens,
            top_p=body.top_p,
            stop=stop,
            seed=body.seed,
        )
        messages = await run_in_threadpool(
            convert_messages,
            body.messages,
            max_images=cfg.max_images,
            max_pixels=cfg.max_pixels,
            files_root=files_root,
        )
        budget = budget_of(body.budget, asked_tokens)
        rid, model_id = f"chatcmpl-{uuid.uuid4().hex}", body.model
        per_call = getattr(check_strategy(strategy, knobs), "max_tokens", None) or overrides["max_tokens"]
        limit = min(per_call, overrides["max_tokens"])  # what one model call may generate: finish_reason "length"

        def job(index: int, emit: Any, cancel: threading.Event) -> tuple[Any, list, str, str]:
            seeded = (
                dict(overrides, seed=overrides["seed"] + index) if overrides.get("seed") is not None else overrides
            )
            events: list[dict] = []

            def record(e: dict) -> None:
                if e.get("type") == "answer":
                    events.append(e)
                if emit is not None:
                    emit(e)

            calls: list = []
            trace = checked(
                run_conversation,
                Sampled(backend, seeded),
                messages,
                strategy,
                knobs,
                server_tools,
                client_tools,
                budget,
                record,
                cancel,
                calls,
                stream=emit is not None,
            )
            reply = events[-1].get("reply", "") if events else trace.answer
            return trace, calls, reply, finish_reason(trace, calls, limit)

        ticket = engine.admit()
        if body.stream:
            starts_thinking = thinking(strategy, knobs) or opens_think(backend)
            return StreamingResponse(
                stream_chat(engine, ticket, job, body.n, rid, model_id, body.stream_options, starts_thinking),
                media_type="text/event-stream",
            )
        cancel = threading.Event()
        watcher = asyncio.create_task(watch_disconnect(request, cancel))
        try:
            results = await asyncio.gather(*(engine.run(partial(job, i, None, cancel), cancel) for i in range(body.n)))
        finally:
            watcher.cancel()
            ticket.release()
        choices, usage = [], [0, 0]
        for i, (trace, calls, reply, finish) in enumerate(results):
            usage[0] += trace.prompt_tokens
            usage[1] += trace.completion_tokens
            content = visible(reply) or trace.answer
            message = p.ResponseMessage(
                content=content or None, reasoning_content=reasoning_of(trace.nodes, reply) or None
            )
            if calls:
                message.tool_calls = [p.ToolCall(**c.to_openai()) for c in calls]
            choices.append(p.Choice(index=i, message=message, finish_reason=finish))
        return p.ChatCompletion(
            id=rid,
            created=int(time.time()),
            model=model_id,
            choices=choices,
            usage=p.Usage(prompt_tokens=usage[0], completion_tokens=usage[1], total_tokens=sum(usage)),
        )

    @app.post(
        "/v1/solve",
        response_model=p.SolveResponse,
        dependencies=deps,
        tags=["mmcot"],
        responses={
            200: {
                "content": {"text/event-stream": {"schema": SSE_EVENT}},
                "description": "The answer and the trace, or with stream=true one server-sent event per step "
                "(controller events) and a last event of type 'result' holding this body",
            },
            **_errors(*work),
        },
    )
    async def solve(body: p.SolveRequest, request: Request) -> Any:
        """Solve a visual question with a strategy and a budget; returns the answer and the whole reasoning trace."""
        from mmcot.agent.graph import event_json
        from mmcot.evals.item import Item

        strategy, knobs = resolve(body.model, body.strategy, body.strategy_options)
        cap_tokens(body.max_tokens, "max_tokens")
        if len(body.images) > cfg.max_images:
            raise APIError(
                400, f"too many images: this server takes at most {cfg.max_images} per request", param="images"
            )
        overrides = sampling(strategy, knobs, body.temperature, body.max_tokens)
        images = await run_in_threadpool(
            lambda: [
                decode_image(u, max_pixels=cfg.max_pixels, files_root=files_root, param=f"images[{i}]")
                for i, u in enumerate(body.images)
            ]
        )
        item = Item(id="api", question=body.question, answer="", images=images, choices=body.choices or None)
        budget = budget_of(body.budget)
        model_id = body.model or cfg.served_model_name

        def job(emit: Any, cancel: threading.Event) -> p.SolveResponse:
            from mmcot.reasoning.solve import solve as run_solve

            trace = checked(
                run_solve,
                item,
                strategy=strategy,
                backend=Sampled(backend, overrides),
                budget=budget,
                emit=emit,
                cancel=cancel,
                **knobs,
            )
            d = trace.to_dict()
            return p.SolveResponse(
                id=f"solve-{uuid.uuid4().hex}",
                created=int(time.time()),
                model=model_id,
                strategy=strategy,
                answer=trace.answer,
                stop_reason=trace.stop_reason,
                trace=p.TraceModel(**d),
                usage=p.Usage(
                    prompt_tokens=trace.prompt_tokens,
                    completion_tokens=trace.completion_tokens,
                    total_tokens=trace.prompt_tokens + trace.completion_tokens,
                ),
            )

        ticket = engine.admit()
        if body.stream:

            async def steps() -> AsyncIterator[str]:
                async for kind, value in run_streaming(engine, ticket, [job]):
                    if kind == "event":
                        yield sse(event_json(value[1]))
                    elif kind == "result":
                        yield sse({"type": "result", **value[1].model_dump()})
                    else:
                        yield sse(value[1])
                yield "data: [DONE]\n\n"

            return StreamingResponse(steps(), media_type="text/event-stream")
        cancel = threading.Event()
        watcher = asyncio.create_task(watch_disconnect(request, cancel))
        try:
            return await engine.run(partial(job, None, cancel), cancel)
        finally:
            watcher.cancel()
            ticket.release()

    def openapi() -> dict[str, Any]:
        """FastAPI's schema without its 422 validation responses: this server answers those with a 400."""
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            for ops in schema["paths"].values():
                for op in ops.values():
                    op["responses"].pop("422", None)
            schemas = schema["components"]["schemas"]
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
            for name in ("ChatCompletionRequest", "SolveRequest"):  # the served ids and strategies, exactly
                props = schemas[name]["properties"]
                for key, values in (("model", model_ids), ("strategy", list(STRATEGIES))):
                    props[key]["enum"] = values + ([None] if "anyOf" in props[key] else [])
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
    return app


def strings(value: Any) -> list[str]:
    """Every string inside a JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.keys()) + list(value.values())
    return [s for v in value for s in strings(v)] if isinstance(value, list) else []


def checked(run: Any, *args: Any, **kwargs: Any) -> Any:
    """Run the agent; what the request got wrong (a ValueError, or a model call the backend refused) is a 400, and
    a step that failed otherwise a 500, both with the reason."""
    try:
        trace = run(*args, **kwargs)
    except ValueError as e:
        raise APIError(400, str(e)) from None
    if trace.stop_reason.startswith("error:"):  # "error: <node>: <exception type>: <message>"
        bad_request = re.match(r"error: [\w-]+: (RequestError|ValueError|ImageError):", trace.stop_reason)
        raise APIError(400 if bad_request else 500, f"the agent stopped: {trace.stop_reason.removeprefix('error: ')}")
    return trace


def thinking(strategy: str, knobs: dict[str, Any]) -> bool:
    """Whether the strategy's streamed steps start inside ``<think>`` (no opening tag is streamed then)."""
    return bool(getattr(check_strategy(strategy, knobs), "think", False))


def finish_reason(trace: Any, calls: list, limit: int | None) -> str:
    """OpenAI's finish reason: tool_calls for client tools, length when a budget or the last call's max tokens
    cut the answer short, else stop."""
    if calls:
        return "tool_calls"
    last = next((n for n in reversed(trace.nodes) if n.kind == "thought"), None)
    cut = limit is not None and last is not None and last.tokens >= limit
    return "length" if trace.stop_reason in STOPPED_EARLY or cut else "stop"


def sse(data: Any) -> str:
    return f"data: {json.dumps(data)}\n\n"


async def run_streaming(engine: Engine, ticket: Ticket, jobs: list) -> AsyncIterator[tuple[str, tuple[int, Any]]]:
    """Run ``job(emit, cancel)`` for each job and yield ``("event", (i, event))`` as they come, then ``("result",
    (i, value))`` or ``("error", (i, error body))`` for each. Cancels the jobs if the consumer goes away."""
    loop = asyncio.get_running_loop()
    events: asyncio.Queue = asyncio.Queue()
    cancel = threading.Event()
    tasks = []
    for i, job in enumerate(jobs):
        emit = partial(lambda i, e: loop.call_soon_threadsafe(events.put_nowait, ("event", i, e)), i)
        task = asyncio.ensure_future(engine.run(partial(job, emit, cancel), cancel))
        task.add_done_callback(partial(lambda i, t: events.put_nowait(("done", i, t)), i))
        tasks.append(task)
    try:
        left = len(jobs)
        while left:
            kind, i, value = await events.get()
            if kind == "event":
                yield "event", (i, value)
                continue
            left -= 1
            if value.cancelled():
                yield "error", (i, error_body(400, "the request was cancelled"))
            elif isinstance(value.exception(), APIError):
                e = value.exception()
                yield "error", (i, error_body(e.status, e.message, e.param, e.code))
            elif value.exception() is not None:
                e = value.exception()
                yield "error", (i, error_body(500, f"internal error: {type(e).__name__}: {e}"))
            else:
                yield "result", (i, value.result())
    finally:
        cancel.set()
        for task in tasks:
            task.cancel()
        ticket.release()


async def stream_chat(
    engine: Engine,
    ticket: Ticket,
    job: Any,
    n: int,
    rid: str,
    model: str,
    options: p.StreamOptions | None,
    starts_thinking: bool,
) -> AsyncIterator[str]:
    """The chat.completion.chunk stream of ``n`` choices, ``data: [DONE]`` last."""
    created = int(time.time())

    def chunk(index: int, finish: str | None = None, usage: p.Usage | None = None, **delta: Any) -> str:
        choices = [] if usage else [p.ChunkChoice(index=index, delta=p.Delta(**delta), finish_reason=finish)]
        data = p.ChatCompletionChunk(id=rid, created=created, model=model, choices=choices, usage=usage)
        return f"data: {data.model_dump_json(exclude_none=True)}\n\n"

    splitters = [Splitter(starts_thinking) for _ in range(n)]
    for i in range(n):
        yield chunk(i, role="assistant", content="")
    usage = [0, 0]
    jobs = [lambda emit, cancel, i=i: job(i, emit, cancel) for i in range(n)]
    async for kind, (i, value) in run_streaming(engine, ticket, jobs):
        if kind == "event":
            for field_name, text in splitters[i].event(value):
                yield chunk(i, **{field_name: text})
        elif kind == "error":
            yield sse(value)
        else:
            trace, calls, reply, finish = value
            usage[0] += trace.prompt_tokens
            usage[1] += trace.completion_tokens
            for field_name, text in splitters[i].final(reply, trace.answer):
                yield chunk(i, **{field_name: text})
            if calls:
                yield chunk(i, tool_calls=[{"index": k, **c.to_openai()} for k, c in enumerate(calls)])
            yield chunk(i, finish=finish)
    if options is not None and options.include_usage:
        yield chunk(0, usage=p.Usage(prompt_tokens=usage[0], completion_tokens=usage[1], total_tokens=sum(usage)))
    yield "data: [DONE]\n\n"


def serve(cfg: ServeConfig) -> None:
    """Load the model and serve until interrupted. Raises OSError first when the address cannot be listened on."""
    import socket

    import uvicorn

    from mmcot.reasoning.solve import get_backend

    family = socket.getaddrinfo(cfg.host, cfg.port, type=socket.SOCK_STREAM)[0][0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:  # before the model load, not after it
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((cfg.host, cfg.port))
        except OSError as e:
            raise OSError(f"cannot listen on {cfg.host}:{cfg.port}: {e.strerror}; choose another --port") from None
    backend = get_backend(cfg.model)
    app = create_app(cfg, backend)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="info", timeout_graceful_shutdown=5)
