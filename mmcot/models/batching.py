"""Continuous batching: ``generate`` and ``stream`` calls from any number of threads share batched forward passes.

One worker thread owns the model. Callers submit requests and wait on their results. The worker collects new
requests (when idle it waits up to ``max_wait_ms`` for more, up to ``max_batch_size`` sequences), prefills them in one
forward pass, repeats each prompt's KV-cache rows for its ``n`` samples, and joins them to the running batch; then
each forward pass decodes one token for every running sequence. A sequence leaves the batch as soon as it finishes
(an end-of-sequence token, a stop string, ``max_tokens``, the context limit, or its caller gave up), and its request
resolves when all ``n`` samples are done, so a short request never waits for a long one. Temperature, top-p, seed,
stop strings and max tokens are per sequence, so requests with any sampling parameters share one batch.

The model side is a ``Runner`` (``mmcot.models.local.LocalBackend``): it prefills prompts, decodes a step, samples
tokens and turns token ids into text. ``Batcher`` holds none of the tensors; it only schedules.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections import deque
from collections.abc import Generator
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from mmcot.models.backend import Completion, Request


class Runner(Protocol):
    eos_ids: set[int]
    context: int | None  # the most tokens (prompt + completion) one sequence may hold; None when unknown

    def prefill(self, prompts: list[Any], repeats: list[int]) -> tuple[Any, Any, list[int]]:
        """Prefill prompts in one pass; rows repeated ``repeats[i]`` times. Returns (batch, logits, prompt tokens)."""

    def decode(self, batch: Any, tokens: list[int]) -> Any:
        """Feed one token per row; returns the next logits."""

    def select(self, batch: Any, rows: list[int]) -> Any: ...

    def merge(self, a: Any, b: Any) -> Any: ...

    def sample(self, logits: Any, seqs: list[Sequence]) -> list[int]: ...

    def detokenize(self, ids: list[int]) -> str: ...

    def generator(self, seed: int) -> Any: ...


@dataclass
class Sequence:
    """One of a request's ``n`` samples while it is generated."""

    job: Job
    generator: Any  # the runner's random generator for this sample (its seed decides the sample)
    ids: list[int] = field(default_factory=list)
    text: str = ""
    sent: int = 0  # characters of text already streamed
    finish: str | None = None

    @property
    def temperature(self) -> float:
        return self.job.request.sampling.temperature

    @property
    def top_p(self) -> float:
        return self.job.request.sampling.top_p


@dataclass
class Job:
    """A submitted request: its prepared prompt, its future and, when streamed, the queue of text deltas."""

    request: Request
    prompt: Any
    future: Future = field(default_factory=Future)
    deltas: queue.SimpleQueue | None = None
    cancelled: bool = False
    prompt_tokens: int = 0
    seqs: list[Sequence] = field(default_factory=list)

    def cancel(self) -> None:
        """Stop generating for this request: a queued job never starts; a running one's sequences leave the batch at
        the next step. Either way its future raises CancelledError."""
        self.cancelled = True
        self.future.cancel()  # succeeds only while queued; the worker resolves a running one


class Batcher:
    """Schedules jobs from any thread onto one worker thread that runs the ``Runner`` in batches."""

    def __init__(self, runner: Runner, max_batch_size: int = 32, max_wait_ms: float = 5.0):
        self.runner = runner
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._waiting: deque[Job] = deque()
        self._thread = threading.Thread(target=self._work, name="mmcot-batcher", daemon=True)
        self._thread.start()

    def submit(self, request: Request, prompt: Any, stream: bool = False) -> Job:
        job = Job(request, prompt, deltas=queue.SimpleQueue() if stream else None)
        self._queue.put(job)
        return job

    def generate(self, requests: list[Request], prompts: list[Any]) -> list[list[Completion]]:
        jobs = [self.submit(r, p) for r, p in zip(requests, prompts, strict=True)]
        try:
            return [job.future.result() for job in jobs]
        finally:  # the caller gave up (an error, Ctrl-C): stop the work nobody will read
            for job in jobs:
                job.cancel()

    def stream(self, request: Request, prompt: Any) -> Generator[str, None, Completion]:
        """Yield the text deltas of one sample, then return its Completion (wrap it in ``backend.Stream``)."""
        job = self.submit(request, prompt, stream=True)
        try:
            while (delta := job.deltas.get()) is not None:
                if isinstance(delta, BaseException):
                    raise delta
                yield delta
            return job.future.result()[0]
        finally:  # also runs when the consumer stops early: the sequence leaves the batch
            job.cancel()

    def close(self) -> None:
        """Stop the worker after the running batch; later submissions are never served."""
        self._queue.put(None)
        self._thread.join()

    # ---- the worker ----

    def _work(self) -> None:
        batch, seqs = None, []
        while (jobs := self._admit(len(seqs))) is not None:
            try:
                if jobs:
                    new_batch, new_seqs = self._prefill(jobs)
                    if new_seqs:
                        batch = new_batch if batch is None else self.runner.merge(batch, new_batch)
                        seqs = seqs + new_seqs
                if seqs:
                    logits = self.runner.decode(batch, [s.ids[-1] for s in seqs])
                    batch, seqs = self._advance(batch, seqs, logits)
            except Exception as e:  # noqa: BLE001 - the worker must survive; the callers get the error
                for job in jobs + [s.job for s in seqs]:
                    self._fail(job, e)
                batch, seqs = None, []

    def _admit(self, running: int) -> list[Job] | None:
        """Jobs to start now: all waiting ones that fit; when nothing runs, block for one and collect briefly."""
        jobs, rows = [], running
        deadline = None
        while True:
            if not self._waiting:
                try:
                    if running == 0 and not jobs:
                        job = self._queue.get()
                        deadline = time.monotonic() + self.max_wait
                    elif deadline is not None:
                        job = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                    else:
                        job = self._queue.get_nowait()
                except queue.Empty:
                    return jobs
                if job is None:
                    return None
                self._waiting.append(job)
            job = self._waiting[0]
            if not job.cancelled and rows and rows + job.request.n > self.max_batch_size:
                return jobs
            self._waiting.popleft()
            if job.cancelled or not job.future.set_running_or_notify_cancel():  # from here on cancel() cannot race
                continue
            jobs.append(job)
            rows += job.request.n

    def _prefill(self, jobs: list[Job]) -> tuple[Any, list[Sequence]]:
        """Prefill the jobs, sample each sequence's first token, and return the batch of those still running."""
        batch, seqs = None, []
        for part_jobs, part_batch, logits, prompt_tokens in self._prefill_parts(jobs):
            part_seqs = []
            for job, count in zip(part_jobs, prompt_tokens, strict=True):
                job.prompt_tokens = count
                seed = job.request.sampling.seed
                base = random.getrandbits(62) if seed is None else seed
                job.seqs = [
                    Sequence(job, self.runner.generator((base * 1_000_003 + i) % 2**63)) for i in range(job.request.n)
                ]
                part_seqs += job.seqs
            part_batch, part_seqs = self._advance(part_batch, part_seqs, logits)
            if part_seqs:
                batch = part_batch if batch is None else self.runner.merge(batch, part_batch)
                seqs += part_seqs
        return batch, seqs

    def _prefill_parts(self, jobs: list[Job]) -> list[tuple]:
        """One prefill of all jobs; when it fails, one per job, so the error goes to the job that caused it."""
        try:
            return [(jobs, *self.runner.prefill([j.prompt for j in jobs], [j.request.n for j in jobs]))]
        except Exception as e:  # noqa: BLE001
            if len(jobs) > 1:
                return [part for job in jobs for part in self._prefill_parts([job])]
            self._fail(jobs[0], e)
            return []

    def _advance(self, batch: Any, seqs: list[Sequence], logits: Any) -> tuple[Any, list[Sequence]]:
        """Append one sampled token to each sequence, finish those that are done, and drop them from the batch."""
        for seq, token in zip(seqs, self.runner.sample(logits, seqs), strict=True):
            self._append(seq, token)
        keep = []
        for i, seq in enumerate(seqs):
            if seq.job.cancelled:
                self._fail(seq.job, CancelledError())
            elif seq.finish is None:
                keep.append(i)
        if len(keep) < len(seqs):
            batch = self.runner.select(batch, keep) if keep else None
            seqs = [seqs[i] for i in keep]
        return batch, seqs

    def _append(self, seq: Sequence, token: int) -> None:
        job, sampling = seq.job, seq.job.request.sampling
        seq.ids.append(token)
        text = None
        if token in self.runner.eos_ids:
            seq.finish = "stop"
        elif (text := self._stop_cut(seq, sampling.stop)) is not None:
            seq.finish = "stop"
        elif len(seq.ids) >= sampling.max_tokens or (
            self.runner.context and job.prompt_tokens + len(seq.ids) >= self.runner.context
        ):
            seq.finish = "length"
        if seq.finish or job.deltas is not None:
            seq.text = self._text(seq) if text is None else text
        if job.deltas is not None:
            self._stream(seq)
        if all(s.finish for s in job.seqs) and not job.future.done():
            job.future.set_result([Completion(s.text, job.prompt_tokens, len(s.ids), s.finish) for s in job.seqs])
            if job.deltas is not None:
                job.deltas.put(None)

    def _text(self, seq: Sequence) -> str:
        """The generated text so far, without an end-of-sequence token."""
        ids = seq.ids[:-1] if seq.ids[-1] in self.runner.eos_ids else seq.ids
        return self.runner.detokenize(ids)

    def _stop_cut(self, seq: Sequence, stop: list[str]) -> str | None:
        """The text cut before the first stop string (the OpenAI API leaves it out), or None when none appeared.
        Each step decodes only the last few tokens: enough bytes to hold the longest stop string."""
        if not stop:
            return None
        window = self.runner.detokenize(seq.ids[-(4 * max(map(len, stop)) + 2) :])
        if not any(s in window for s in stop):
            return None
        text = self._text(seq)
        hits = [i for i in (text.find(s) for s in stop) if i >= 0]
        return text[: min(hits)] if hits else None

    def _stream(self, seq: Sequence) -> None:
        """Send the new text that can no longer change: not a trailing partial character, nor what may be the start
        of a stop string."""
        text, hold = seq.text, 0
        if not seq.finish:
            hold = len(text) - len(text.rstrip("\ufffd"))
            for s in seq.job.request.sampling.stop:
                hold = max([hold] + [k for k in range(1, len(s)) if text.endswith(s[:k])])
        if len(text) - hold > seq.sent:
            seq.job.deltas.put(text[seq.sent : len(text) - hold])
            seq.sent = len(text) - hold

    def _fail(self, job: Job, error: Exception) -> None:
        if not job.future.done():
            job.future.set_exception(error)
        if job.deltas is not None:
            job.deltas.put(error)
