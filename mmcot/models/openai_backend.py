"""OpenAIBackend: any OpenAI-compatible chat-completions server (vLLM, mmcot's own ``mmcot serve``, OpenAI) behind the
Backend interface, through the official ``openai`` client.

    backend = load_backend("openai:http://localhost:8000/v1#llava-hf/llava-1.5-7b-hf")
    [samples] = backend.generate([Request(messages, n=4, sampling=Sampling(temperature=0.7, max_tokens=128))])

Images in messages (PIL images, paths or bytes under ``{"type": "image", "image": ...}``) are sent as PNG data URLs.
``n``, ``temperature``, ``top_p``, ``max_tokens``, ``stop`` and ``seed`` map to the API's fields. A request's
``prefix`` is sent as a final assistant message with vLLM's ``continue_final_message`` (servers without that
extension reject or ignore it). The requests of one ``generate`` call are sent concurrently, so a batching server
(vLLM, ``mmcot serve``) runs them together. The API key comes from ``api_key=`` or ``$OPENAI_API_KEY``.
"""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from mmcot.models.backend import Completion, Message, Request, RequestError, Stream, part_image


class BackendUnavailable(RuntimeError):
    """The server could not be reached or failed; the message names it and what to check."""


class OpenAIBackend:
    """``base_url`` ends in ``/v1``; ``model`` is the served model's id; ``max_concurrency`` bounds the requests of
    one ``generate`` call in flight at once."""

    def __init__(
        self, base_url: str, model: str, api_key: str | None = None, timeout: float = 600.0, max_concurrency: int = 16
    ):
        import openai

        self.base_url, self.model, self.name = base_url, model, f"openai:{base_url}#{model}"
        self.client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY",
            timeout=timeout,
            max_retries=1,
        )
        self.max_concurrency = max_concurrency

    def generate(self, requests: list[Request]) -> list[list[Completion]]:
        bodies = [self._body(r) for r in requests]  # bad input fails here, before any call
        if len(bodies) == 1:
            return [self._call(bodies[0])]
        with ThreadPoolExecutor(min(len(bodies), self.max_concurrency)) as pool:
            return list(pool.map(self._call, bodies))

    def stream(self, request: Request) -> Stream:
        if request.n != 1:
            raise RequestError(f"streaming takes one sample (n=1), got n={request.n}")
        return Stream(self._stream(self._body(request)))

    def close(self) -> None:
        self.client.close()

    def _call(self, body: dict) -> list[Completion]:
        with _errors(self.base_url):
            response = self.client.chat.completions.create(**body)
        usage = response.usage
        prompt, total = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
        choices = sorted(response.choices, key=lambda c: c.index)
        if not choices:
            raise BackendUnavailable(f"{self.base_url} answered without choices")
        # the API counts the completion tokens of all choices together: give each its share (the sum stays exact)
        shares = [total // len(choices) + (i < total % len(choices)) for i in range(len(choices))]
        return [
            Completion(c.message.content or "", prompt, share, _finish(c.finish_reason))
            for c, share in zip(choices, shares, strict=True)
        ]

    def _stream(self, body: dict) -> Generator[str, None, Completion]:
        parts, finish, usage = [], "stop", None
        with _errors(self.base_url):
            chunks = self.client.chat.completions.create(**body, stream=True, stream_options={"include_usage": True})
            try:
                for chunk in chunks:
                    usage = chunk.usage or usage
                    for choice in chunk.choices:
                        if choice.delta.content:
                            parts.append(choice.delta.content)
                            yield choice.delta.content
                        if choice.finish_reason:
                            finish = _finish(choice.finish_reason)
            finally:  # leaving early closes the HTTP response, which stops the server's work
                chunks.close()
        prompt, completion = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, len(parts))
        return Completion("".join(parts), prompt, completion, finish)

    def _body(self, request: Request) -> dict[str, Any]:
        s = request.sampling
        messages = [_message(m, i) for i, m in enumerate(request.messages)]
        if request.tools:
            messages = _with_tools(messages, request.tools)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "n": request.n,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_tokens,
        }
        if s.stop:
            body["stop"] = s.stop
        if s.seed is not None:
            body["seed"] = s.seed
        if request.prefix:
            messages.append({"role": "assistant", "content": request.prefix})
            body["extra_body"] = {"continue_final_message": True, "add_generation_prompt": False}
        return body


@contextmanager
def _errors(url: str) -> Iterator[None]:
    """openai's exceptions -> RequestError (the server refused this request) or BackendUnavailable (anything else)."""
    import openai

    try:
        yield
    except openai.APIStatusError as e:
        body = e.body.get("error", e.body) if isinstance(e.body, dict) else e.body
        detail = body.get("message", body) if isinstance(body, dict) else body or e.message
        if e.status_code in (400, 413, 422):
            raise RequestError(f"{url} refused the request ({e.status_code}): {detail}") from None
        hint = {401: " (check the API key: api_key= or $OPENAI_API_KEY)", 404: " (check the URL and the model name)"}
        raise BackendUnavailable(f"{url} answered {e.status_code}: {detail}{hint.get(e.status_code, '')}") from None
    except openai.APIConnectionError as e:
        raise BackendUnavailable(f"cannot reach the model server at {url} ({e}); is it running?") from None


def _finish(reason: str | None) -> str:
    return "length" if reason == "length" else "stop"


def _with_tools(messages: list[Message], tools: list[dict[str, Any]]) -> list[Message]:
    """The tool list as a Hermes tools block in the system message (after its text, if any), the way Qwen's and
    Hermes's chat templates render ``tools=[...]``: servers differ in whether they take ``tools`` at all."""
    first = messages[0] if messages and messages[0]["role"] == "system" else None
    text = first and first.get("content") or ""
    if isinstance(text, list):
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    head = f"{text}\n\n" if text else ""
    listing = "\n".join(json.dumps(t.get("function", t)) for t in tools)
    block = (
        f"{head}# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n"
        f"<tools>\n{listing}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within "
        "<tool_call></tool_call> XML tags:\n<tool_call>\n"
        '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
    )
    rest = messages[1:] if first else messages
    return [{"role": "system", "content": block}, *rest]


def _message(message: Message, i: int) -> Message:
    """A message with its image parts as PNG data URLs (the OpenAI wire format); other fields pass through."""
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise RequestError(f"message {i} must be a dict with a 'role', got {message!r:.100}")
    content = message.get("content")
    if not isinstance(content, list):
        return message
    parts = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == "image":
            buffer = io.BytesIO()
            part_image(part.get("image"), f"message {i}").save(buffer, format="PNG")
            url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
            parts.append({"type": "image_url", "image_url": {"url": url}})
        else:
            parts.append(part)
    return {**message, "content": parts}
