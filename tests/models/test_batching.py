"""The Batcher's scheduling with a scripted model (control flow only; test_local.py runs the real model): admission
and batch limits, stop strings across tokens while streaming, early finishes, cancellation, errors kept to their job."""

import random
import threading
from concurrent.futures import CancelledError

import pytest

from mmcot.models.backend import Request, RequestError, Sampling, Stream
from mmcot.models.batching import Batcher

EOS = 0


class ScriptRunner:
    """A 'model' whose prompt is the list of token ids it will generate, then an end-of-sequence token. A batch is
    just its number of rows. Records every forward pass as (kind, rows)."""

    eos_ids = {EOS}
    context = None

    def __init__(self):
        self.vocab = {EOS: ""}
        self.calls = []
        self.fail_next_decode = False
        self.gate = threading.Event()
        self.gate.set()

    def script(self, *pieces: str) -> tuple[int, ...]:
        ids = []
        for piece in pieces:
            ids.append(next((i for i, p in self.vocab.items() if p == piece), len(self.vocab)))
            self.vocab[ids[-1]] = piece
        return tuple(ids)

    def prefill(self, prompts, repeats):
        self.calls.append(("prefill", sum(repeats)))
        if any(self.vocab[i] == "boom" for p in prompts for i in p):
            raise RequestError("this prompt explodes")
        return sum(repeats), None, [len(p) for p in prompts]

    def decode(self, batch, tokens):
        self.gate.wait()
        assert len(tokens) == batch
        self.calls.append(("decode", batch))
        if self.fail_next_decode:
            self.fail_next_decode = False
            raise RuntimeError("the device fell over")

    def select(self, batch, keep):
        return len(keep)

    def merge(self, a, b):
        return a + b

    def sample(self, logits, seqs):
        return [s.job.prompt[len(s.ids)] if len(s.ids) < len(s.job.prompt) else EOS for s in seqs]

    def detokenize(self, ids):
        return "".join(self.vocab[i] for i in ids)

    def generator(self, seed):
        return random.Random(seed)


@pytest.fixture
def runner():
    return ScriptRunner()


@pytest.fixture
def batcher(runner):
    b = Batcher(runner, max_batch_size=4, max_wait_ms=50)
    yield b
    runner.gate.set()
    b.close()


def request(n=1, **sampling):
    return Request([{"role": "user", "content": "hi"}], n=n, sampling=Sampling(**sampling))


def test_stop_string_across_tokens_is_never_streamed(runner, batcher):
    prompt = runner.script("ab", "c<", "/a", "ns>", "zz")
    stream = Stream(batcher.stream(request(stop=["</ans>"]), prompt))
    deltas = list(stream)
    assert deltas == ["ab", "c"]
    assert (stream.completion.text, stream.completion.completion_tokens, stream.completion.finish_reason) == (
        "abc",
        4,
        "stop",
    )


def test_a_held_back_stop_prefix_is_released_when_it_is_not_one(runner, batcher):
    stream = Stream(batcher.stream(request(stop=["<z"]), runner.script("x<", "y", "<")))
    assert list(stream) == ["x", "<y", "<"]  # the last "<" is sent when the sequence ends
    assert stream.completion.text == "x<y<"


def test_finish_reasons_and_token_counts(runner, batcher):
    prompt = runner.script("a", "b", "c")
    [[short], [done]] = batcher.generate([request(max_tokens=2), request(max_tokens=10)], [prompt, prompt])
    assert (short.text, short.completion_tokens, short.finish_reason, short.prompt_tokens) == ("ab", 2, "length", 3)
    assert (done.text, done.completion_tokens, done.finish_reason) == ("abc", 4, "stop")  # eos counted, not shown


def test_batches_hold_at_most_max_batch_size_rows(runner, batcher):
    prompt = runner.script("a", "b", "c", "d")
    out = batcher.generate([request(n=2), request(n=2), request(n=2)], [prompt] * 3)
    assert [len(c) for c in out] == [2, 2, 2]
    assert max(rows for kind, rows in runner.calls if kind == "decode") <= 4
    assert [rows for kind, rows in runner.calls if kind == "prefill"] == [4, 2]  # the third waited for room
    [wide] = batcher.generate([request(n=6)], [prompt])  # wider than the limit: runs alone
    assert len(wide) == 6


def test_a_short_request_returns_while_a_long_one_runs(runner, batcher):
    long = batcher.submit(request(max_tokens=10_000), runner.script(*["x"] * 10_000))
    short = batcher.submit(request(), runner.script("a", "b"))
    assert short.future.result(timeout=10)[0].text == "ab"
    assert not long.future.done()
    long.cancel()


def test_a_cancelled_job_leaves_the_batch(runner, batcher):
    runner.gate.clear()
    long = batcher.submit(request(max_tokens=10_000), runner.script(*["x"] * 10_000))
    queued = batcher.submit(request(), runner.script("q"))
    queued.cancel()
    long.cancel()
    runner.gate.set()
    [[after]] = batcher.generate([request()], [runner.script("ok")])
    assert after.text == "ok"
    for job in (long, queued):
        with pytest.raises(CancelledError):
            job.future.result(timeout=10)
    assert len(runner.calls) < 20


def test_a_failing_prompt_fails_only_its_own_job(runner, batcher):
    runner.gate.clear()
    jobs = [batcher.submit(request(), runner.script(*pieces)) for pieces in (["a"], ["boom"], ["b", "c"])]
    runner.gate.set()
    assert jobs[0].future.result(timeout=10)[0].text == "a"
    with pytest.raises(RequestError, match="explodes"):
        jobs[1].future.result(timeout=10)
    assert jobs[2].future.result(timeout=10)[0].text == "bc"


def test_a_failing_forward_pass_fails_the_running_jobs_and_the_worker_lives_on(runner, batcher):
    runner.fail_next_decode = True
    with pytest.raises(RuntimeError, match="fell over"):
        batcher.generate([request()], [runner.script("a", "b")])
    stream = batcher.stream(request(), runner.script("a", "b"))
    assert "".join(stream) == "ab"
