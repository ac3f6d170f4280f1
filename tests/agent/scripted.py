"""A scripted fake Backend for control-flow tests of the controller and the strategies (never a stand-in for the
real model in end-to-end tests). ``respond(request) -> str | list[str]`` decides the reply; words count as tokens;
stop strings and max_tokens apply as a real backend applies them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from mmcot.models.backend import Completion, Request, Stream


class ScriptedBackend:
    name = "scripted"

    def __init__(self, respond: Callable[[Request], str | list[str]], delay: float = 0.0):
        self.respond, self.delay = respond, delay
        self.calls: list[list[Request]] = []  # one entry per generate/stream call
        self.lock = threading.Lock()

    def _complete(self, request: Request, text: str) -> Completion:
        cut = [text.find(s) for s in request.sampling.stop if s in text]
        finish = "stop"
        if cut:
            text = text[: min(cut)]
        words = text.split(" ")
        if len(words) > request.sampling.max_tokens:
            text, finish = " ".join(words[: request.sampling.max_tokens]), "length"
        return Completion(text, prompt_tokens=10, completion_tokens=len(text.split()), finish_reason=finish)

    def _texts(self, request: Request) -> list[str]:
        out = self.respond(request)
        out = [out] * request.n if isinstance(out, str) else list(out)
        assert len(out) == request.n, f"script gave {len(out)} replies for n={request.n}"
        return out

    def generate(self, requests: list[Request]) -> list[list[Completion]]:
        with self.lock:
            self.calls.append(list(requests))
        time.sleep(self.delay)
        return [[self._complete(r, t) for t in self._texts(r)] for r in requests]

    def stream(self, request: Request) -> Stream:
        with self.lock:
            self.calls.append([request])
        completion = self._complete(request, self._texts(request)[0])

        def deltas():
            for i, word in enumerate(completion.text.split(" ")):
                time.sleep(self.delay)
                yield word if i == 0 else " " + word
            return completion

        return Stream(deltas())


def last_text(request: Request) -> str:
    """The text of the request's last message (what the strategy just asked)."""
    content = request.messages[-1]["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content if p["type"] == "text")
