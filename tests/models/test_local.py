"""LocalBackend over a real tiny LLaVA (random weights, mmcot's processor and chat template): batched greedy decoding
matches transformers' own ``generate``, n samples share one prefill, stop strings, prefix, streaming, bad input."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from PIL import Image

from mmcot.models.backend import Request, RequestError, Sampling

COLORS = ["red", "blue", "green", "yellow", "purple"]


def image(i: int) -> Image.Image:
    return Image.new("RGB", (40 + 7 * i, 30 + 5 * i), COLORS[i % len(COLORS)])


def conversation(user_images: int = 1, tool_images: int = 0, words: int = 3) -> list[dict]:
    """A user turn with images, then (when tool_images) an assistant tool call and a tool result carrying images."""
    user = [{"type": "image", "image": image(i)} for i in range(user_images)]
    messages = [{"role": "user", "content": [*user, {"type": "text", "text": "how many shapes? " * words}]}]
    if tool_images:
        call = '<tool_call>{"name": "crop", "arguments": {"image": "image_0"}}</tool_call>'
        tool = [{"type": "image", "image": image(10 + i)} for i in range(tool_images)]
        messages += [
            {"role": "assistant", "content": call},
            {"role": "tool", "content": [{"type": "text", "text": "cropped:"}, *tool]},
        ]
    return messages


def reference(backend, messages, max_tokens, prefix=""):
    """transformers' own greedy generate on one conversation, decoded the way the backend decodes."""
    prompt, images = backend.prepare(Request(messages, prefix=prefix))
    inputs = backend.processor(text=[prompt], images=images or None, return_tensors="pt")
    out = backend.model.generate(**inputs, max_new_tokens=max_tokens, do_sample=False)
    ids = out[0, inputs["input_ids"].shape[1] :].tolist()
    if ids[-1] in backend.eos_ids:
        ids = ids[:-1]
    return backend.detokenize(ids), inputs["input_ids"].shape[1]


def greedy(max_tokens=12, **kw):
    return Sampling(max_tokens=max_tokens, **kw)


@pytest.mark.parametrize(("user_images", "tool_images"), [(1, 0), (2, 0), (5, 0), (1, 1), (0, 2), (1, 5), (0, 0)])
def test_greedy_matches_transformers_generate(tiny_backend, user_images, tool_images):
    messages = conversation(user_images, tool_images)
    want, prompt_tokens = reference(tiny_backend, messages, 12)
    [[got]] = tiny_backend.generate([Request(messages, sampling=greedy())])
    assert got.text == want
    assert got.prompt_tokens == prompt_tokens
    assert prompt_tokens > 16 * (user_images + tool_images)  # 16 image tokens per 32x32 image at patch 8


def test_one_batch_of_mixed_requests_matches_each_alone(tiny_backend):
    shapes = [(1, 0), (5, 0), (0, 2), (2, 5), (0, 0), (1, 1)]
    requests = [Request(conversation(u, t, words=1 + i), sampling=greedy(8 + i)) for i, (u, t) in enumerate(shapes)]
    together = tiny_backend.generate(requests)
    for request, [got] in zip(requests, together, strict=True):
        want, prompt_tokens = reference(tiny_backend, request.messages, request.sampling.max_tokens)
        assert (got.text, got.prompt_tokens) == (want, prompt_tokens)


class ForwardLog:
    """Records the batch size of every language-model forward and the number of images the vision tower encodes."""

    def __init__(self, model):
        self.text, self.vision = [], []
        inner = model.model
        self.handles = [
            inner.language_model.register_forward_pre_hook(self._text, with_kwargs=True),
            inner.vision_tower.register_forward_pre_hook(self._vision, with_kwargs=True),
        ]

    def _text(self, module, args, kwargs):
        x = kwargs.get("inputs_embeds")
        self.text.append(tuple(x.shape[:2]))

    def _vision(self, module, args, kwargs):
        self.vision.append((args[0] if args else kwargs["pixel_values"]).shape[0])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()


def test_n_samples_share_one_image_encoding_and_prefill(tiny_backend):
    request = Request(conversation(2, 1), n=8, sampling=Sampling(temperature=1.0, max_tokens=6, seed=3))
    with ForwardLog(tiny_backend.model) as log:
        [samples] = tiny_backend.generate([request])
    assert len(samples) == 8
    assert log.vision == [3]  # three images encoded once, not 8 times
    prefill, *steps = log.text
    assert prefill[0] == 1 and prefill[1] > 48  # one prompt row, prefilled once
    assert steps and all(size == (8, 1) for size in steps[:1])  # then 8 rows decode one token each
    assert len({s.text for s in samples}) > 1
    assert all(s.prompt_tokens == prefill[1] for s in samples)


def test_seeded_samples_do_not_depend_on_batch_company(tiny_backend):
    request = Request(conversation(1), n=4, sampling=Sampling(temperature=0.9, top_p=0.9, max_tokens=10, seed=42))
    alone = tiny_backend.generate([request])[0]
    crowd = Request(conversation(0, 2, words=5), n=3, sampling=Sampling(temperature=1.5, max_tokens=14))
    together = tiny_backend.generate([crowd, request, crowd])[1]
    assert [c.text for c in alone] == [c.text for c in together]
    other_seed = tiny_backend.generate(
        [Request(request.messages, n=4, sampling=Sampling(temperature=0.9, seed=7, max_tokens=10))]
    )
    assert [c.text for c in other_seed[0]] != [c.text for c in alone]


def test_top_p_near_zero_is_greedy(tiny_backend):
    messages = conversation(1)
    [[hot]] = tiny_backend.generate([Request(messages, sampling=Sampling(temperature=5.0, top_p=1e-6, max_tokens=10))])
    [[cold]] = tiny_backend.generate([Request(messages, sampling=greedy(10))])
    assert hot.text == cold.text


def test_max_tokens_and_finish_reasons(tiny_backend):
    [[c]] = tiny_backend.generate([Request(conversation(1), sampling=greedy(5))])
    assert (c.completion_tokens, c.finish_reason) == (5, "length")
    # an eos token ends a sequence with "stop" and is not in the text: force one through the prefix's next token
    eos = next(iter(tiny_backend.eos_ids))
    with torch.no_grad():
        bias = torch.zeros(tiny_backend.model.lm_head.weight.shape[0])
        bias[eos] = 1e4
        tiny_backend.model.lm_head.bias = torch.nn.Parameter(bias)
    try:
        [[c]] = tiny_backend.generate([Request(conversation(1), sampling=greedy(5))])
    finally:
        tiny_backend.model.lm_head.bias = None
    assert (c.text, c.completion_tokens, c.finish_reason) == ("", 1, "stop")


def test_stop_strings_cut_the_text(tiny_backend):
    messages = conversation(1, 1)
    full, _ = reference(tiny_backend, messages, 40)
    stop = full[15:18]
    cut = full.index(stop)
    [[c]] = tiny_backend.generate([Request(messages, sampling=greedy(40, stop=["never-there", stop]))])
    assert (c.text, c.finish_reason) == (full[:cut], "stop")
    assert c.completion_tokens < 40


def test_prefix_forces_the_start_of_the_answer(tiny_backend):
    messages = conversation(1)
    want, prompt_tokens = reference(tiny_backend, messages, 10, prefix="<think>")
    [[got]] = tiny_backend.generate([Request(messages, prefix="<think>", sampling=greedy(10))])
    assert (got.text, got.prompt_tokens) == (want, prompt_tokens)
    assert not got.text.startswith("<think>")


def test_stream_yields_the_same_text_and_a_completion(tiny_backend):
    messages = conversation(2, 1)
    [[want]] = tiny_backend.generate([Request(messages, sampling=greedy(30))])
    stream = tiny_backend.stream(Request(messages, sampling=greedy(30)))
    deltas = list(stream)
    assert "".join(deltas) == want.text and len(deltas) > 1
    assert stream.completion == want
    stop = want.text[10:13]
    stopped = tiny_backend.stream(Request(messages, sampling=greedy(30, stop=[stop])))
    assert "".join(stopped) == want.text[: want.text.index(stop)]
    assert stopped.completion.finish_reason == "stop"


def test_leaving_a_stream_early_stops_its_generation(tiny_backend):
    with ForwardLog(tiny_backend.model) as log:
        stream = tiny_backend.stream(Request(conversation(1), sampling=greedy(500)))
        next(stream)
        stream.close()
        [[after]] = tiny_backend.generate([Request(conversation(1), sampling=greedy(4))])
    assert after.completion_tokens == 4
    assert len(log.text) < 30  # not 500 decode steps


def test_concurrent_callers_share_batches_and_get_their_own_answers(tiny_backend):
    requests = [Request(conversation(i % 3, i % 2, words=1 + i), sampling=greedy(6 + 2 * i)) for i in range(8)]
    alone = [tiny_backend.generate([r])[0][0].text for r in requests]
    start = threading.Barrier(len(requests))

    def call(request):
        start.wait()
        return tiny_backend.generate([request])[0][0].text

    with ForwardLog(tiny_backend.model) as log, ThreadPoolExecutor(len(requests)) as pool:
        together = list(pool.map(call, requests))
    assert together == alone
    assert max(rows for rows, _ in log.text) >= 4  # several callers' rows in one forward pass
    assert len(log.text) < sum(r.sampling.max_tokens for r in requests)


def test_bad_input_is_a_clear_error_and_the_backend_keeps_serving(tiny_backend, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    cases = {
        "not a readable image": [{"role": "user", "content": [{"type": "image", "image": str(broken)}]}],
        "needs a PIL image": [{"role": "user", "content": [{"type": "image", "image": 42}]}],
        "aspect ratio under 200:1": [
            {"role": "user", "content": [{"type": "image", "image": Image.new("RGB", (3000, 10))}]}
        ],
        "cannot take a 0x0 image": [
            {"role": "user", "content": [{"type": "image", "image": Image.new("RGB", (0, 0))}]}
        ],
        "unknown content part": [{"role": "user", "content": [{"type": "audio", "audio": b""}]}],
        "must be a dict with a 'role'": ["hello"],
    }
    for expected, messages in cases.items():
        with pytest.raises(RequestError, match=expected):
            tiny_backend.generate([Request(messages)])
    with pytest.raises(RequestError, match="n must be at least 1"):
        Request(conversation(1), n=0)
    with pytest.raises(RequestError, match="top_p"):
        Sampling(top_p=0)
    [[c]] = tiny_backend.generate([Request(conversation(1), sampling=greedy(3))])
    assert c.completion_tokens == 3


def test_an_overlong_prompt_fails_alone_in_its_batch(tiny_backend):
    long = Request([{"role": "user", "content": "how many shapes? " * 1200}], sampling=greedy(4))
    short = Request(conversation(1), sampling=greedy(4))
    start = threading.Barrier(2)

    def call(request):
        start.wait()
        try:
            return tiny_backend.generate([request])[0][0]
        except RequestError as e:
            return e

    with ThreadPoolExecutor(2) as pool:
        failed, served = pool.map(call, [long, short])
    assert isinstance(failed, RequestError) and "holds at most 2048" in str(failed)
    assert served.completion_tokens == 4


def test_odd_images_are_converted_not_refused(tiny_backend):
    odd = [
        Image.new("RGB", (1, 1)),
        Image.new("RGBA", (30, 20)),
        Image.new("I;16", (16, 16)),
        Image.new("P", (300, 2)),
    ]
    messages = [{"role": "user", "content": [{"type": "image", "image": im} for im in odd]}]
    [[c]] = tiny_backend.generate([Request(messages, sampling=greedy(3))])
    assert c.completion_tokens == 3


def test_the_shipped_tiny_model_takes_images_in_user_and_tool_messages():
    from mmcot.models.backend import load_backend
    from mmcot.models.load import shipped

    if "tiny" not in shipped():
        pytest.skip("no shipped tiny checkpoint in mmcot/models/checkpoints yet")
    backend = load_backend("tiny")
    try:
        requests = [
            Request(conversation(u, t), sampling=greedy(4)) for u, t in [(1, 0), (2, 0), (5, 0), (1, 2), (0, 5)]
        ]
        out = backend.generate(requests)
    finally:
        backend.close()
    image_tokens = backend.model.config.image_seq_length
    for (u, t), [c] in zip([(1, 0), (2, 0), (5, 0), (1, 2), (0, 5)], out, strict=True):
        assert c.completion_tokens <= 4 and c.prompt_tokens > image_tokens * (u + t)


def test_sampling_follows_temperature_and_top_p(tiny_backend):
    from types import SimpleNamespace

    vocab = tiny_backend.model.lm_head.weight.shape[0]
    logits = torch.full((1, vocab), -float("inf"))
    logits[0, [5, 7, 9]] = torch.tensor([0.6, 0.3, 0.1]).log()
    draws = 4000

    def frequencies(temperature, top_p):
        seqs = [
            SimpleNamespace(temperature=temperature, top_p=top_p, generator=tiny_backend.generator(i))
            for i in range(draws)
        ]
        tokens = torch.tensor(tiny_backend.sample(logits.expand(draws, -1).clone(), seqs))
        return [(tokens == t).float().mean().item() for t in (5, 7, 9)]

    assert frequencies(1.0, 1.0) == pytest.approx([0.6, 0.3, 0.1], abs=0.03)
    assert frequencies(1.0, 0.8) == pytest.approx([2 / 3, 1 / 3, 0.0], abs=0.03)  # 0.6 + 0.3 reach 0.8
    assert frequencies(0.5, 1.0) == pytest.approx([0.36 / 0.46, 0.09 / 0.46, 0.01 / 0.46], abs=0.03)


def test_a_multimodal_rope_model_is_refused_with_what_to_do_instead():
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from mmcot.models.local import LocalBackend
    from mmcot.models.presets import ModelError

    text = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                vocab_size=200, bos_token_id=0, eos_token_id=1, rope_scaling={"type": "mrope", "mrope_section": [2, 2, 4]})  # fmt: skip
    vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32)
    model = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(text_config=text, vision_config=vision))
    with pytest.raises(ModelError, match=r"qwen2_5_vl uses multimodal rotary positions .* use --model openai:"):
        LocalBackend(model, processor=None, name="Qwen2.5-VL-3B")


@pytest.mark.parametrize("names, system", [(("zoom", "crop"), ""), (("python", "search"), "Be brief.")])
def test_tools_are_listed_as_the_fine_tuning_data_lists_them(tiny_backend, names, system):
    from mmcot.models.data import tools_system  # the fine-tuning data renders the package's template
    from mmcot.tools import tool_schemas

    head = [{"role": "system", "content": system}] if system else []
    prompt, _ = tiny_backend.prepare(Request([*head, {"role": "user", "content": "q?"}], tools=tool_schemas(names)))
    assert prompt.startswith(f"<|im_start|>system\n{tools_system(names, system)}<|im_end|>\n")
