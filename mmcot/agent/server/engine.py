"""The server's work runner: a bounded queue in front of a thread pool, per-request timeouts and cancellation.

Each request (each of its ``n`` choices) runs the agent in its own worker thread; the backend's batching layer merges
the model calls of concurrent threads into batched forward passes, so clients are served together. Requests beyond
``max_concurrency`` running plus ``max_queue`` waiting get a 429 with ``Retry-After``. A job's ``cancel`` event is
set when its client disconnects or its time runs out; the controller watches it (``Context.cancel``) and stops at
the next step, or the next token of a streamed step, so the work stops.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.requests import Request

from mmcot.agent.server.errors import APIError

T = TypeVar("T")


class Cancelled(APIError):
    """The client went away before its job started (499, nginx's "client closed request": nobody reads it)."""

    def __init__(self) -> None:
        super().__init__(499, "the client closed the request", code="cancelled")


class Ticket:
    done = False

    def release(self) -> None:
        self.done = True


class Engine:
    def __init__(self, max_concurrency: int, max_queue: int, timeout: float):
        self.pool = ThreadPoolExecutor(max_concurrency, thread_name_prefix="mmcot-serve")
        self.max_concurrency, self.limit, self.timeout = max_concurrency, max_concurrency + max_queue, timeout
        self.tickets: weakref.WeakSet[Ticket] = weakref.WeakSet()  # admitted requests, running or waiting
        self.mean_seconds = 1.0  # moving average of a job's duration, for Retry-After

    @property
    def active(self) -> int:
        return sum(1 for t in list(self.tickets) if not t.done)

    def admit(self) -> Ticket:
        """A place in the queue, or a 429. Release the ticket when the request ends (a ticket that is garbage
        collected unreleased, e.g. a stream that never started, frees its place too)."""
        active = self.active
        if active >= self.limit:
            wait = math.ceil(self.mean_seconds * (active - self.max_concurrency + 1) / self.max_concurrency)
            raise APIError(
                429,
                f"the server is busy ({active} requests in progress or queued); retry later",
                code="queue_full",
                headers={"Retry-After": str(max(1, wait))},
            )
        ticket = Ticket()
        self.tickets.add(ticket)
        return ticket

    async def run(self, fn: Callable[[], T], cancel: threading.Event) -> T:
        """Run ``fn`` in the pool; on timeout set ``cancel`` and answer 504, on task cancellation set ``cancel``."""

        def timed() -> T:
            if cancel.is_set():
                raise Cancelled()
            start = time.perf_counter()
            try:
                return fn()
            finally:
                self.mean_seconds = 0.8 * self.mean_seconds + 0.2 * (time.perf_counter() - start)

        future = asyncio.get_running_loop().run_in_executor(self.pool, timed)
        try:
            return await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            cancel.set()
            raise APIError(
                504, f"the request took longer than the server's timeout of {self.timeout:g}s", code="timeout"
            ) from None
        except asyncio.CancelledError:
            cancel.set()
            raise

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


async def watch_disconnect(request: Request, cancel: threading.Event) -> None:
    """Set ``cancel`` when the client disconnects (run as a task beside a non-streaming request's work)."""
    while not cancel.is_set():
        message: dict[str, Any] = await request.receive()
        if message["type"] == "http.disconnect":
            cancel.set()
