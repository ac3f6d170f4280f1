"""LocalBackend: a transformers vision-language model run in this process, batched, where the n samples of a request
share one image encoding and one prompt prefill.

    from mmcot.models.backend import Request, Sampling, load_backend
    backend = load_backend("tiny")  # a shipped preset, or a folder holding a transformers VLM
    [samples] = backend.generate([Request(messages, n=8, sampling=Sampling(temperature=0.8, max_tokens=64))])
    for delta in backend.stream(Request(messages)):
        print(delta, end="")

From the shell: ``mmcot generate "How many shapes?" --image scene.png --model tiny -n 8 --temperature 0.8``.

A conversation is rendered by the processor's chat template (images may sit in any message, tool results included),
and ``Request.prefix`` is appended after the generation prompt. Requests from every thread then go through one
``mmcot.models.batching.Batcher``: prompts are prefilled together with left padding, each prompt's KV-cache rows are
repeated ``n`` times (encode once, prefill once, then sample; ``num_return_sequences`` would prefill n times), and
the rows of all running requests decode one token per forward pass. Positions are counted per row from the attention
mask, so rows of any length share a batch. That suits models with 1-D rotary positions (LLaVA, Idefics3, Llama-style
language models); multimodal-RoPE models such as Qwen2-VL need their own position ids and are not supported.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from mmcot.models.backend import Completion, Request, RequestError, Stream, part_image
from mmcot.models.batching import Batcher, Sequence


@dataclass
class Rows:
    """The running rows of a batch: their KV cache, attention mask (1 = a real token, 0 = padding) and the position
    id of each row's next token."""

    cache: Any  # transformers.DynamicCache
    mask: torch.Tensor  # [rows, length]
    positions: torch.Tensor  # [rows]


class LocalBackend:
    """A transformers VLM behind the Backend interface; thread-safe, batched across callers.

    ``max_batch_size``: the most sequences decoded together (a request's n samples count n);
    ``max_wait_ms``: how long an idle backend waits for more requests to batch with the first one."""

    def __init__(
        self, model: Any, processor: Any, name: str = "local", max_batch_size: int = 32, max_wait_ms: float = 5.0
    ):
        rope = getattr(model.config.get_text_config(), "rope_parameters", None) or {}
        if any(key.startswith("mrope") for key in rope):
            from mmcot.models.presets import ModelError

            raise ModelError(
                f"{name}: {model.config.model_type} uses multimodal rotary positions (M-RoPE), which the local backend "
                f"does not compute; serve the folder with vLLM (`vllm serve FOLDER`) and use "
                f"--model openai:http://127.0.0.1:8000/v1#FOLDER"
            )
        self.model = model.eval()
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.name = name
        eos = model.generation_config.eos_token_id if getattr(model, "generation_config", None) else None
        eos = eos if isinstance(eos, list) else [eos]
        self.eos_ids = {i for i in [*eos, self.tokenizer.eos_token_id] if i is not None}
        self.context = getattr(model.config.get_text_config(), "max_position_embeddings", None)
        self.image_token_id = getattr(processor, "image_token_id", None)  # never sampled: it would need an image
        self.batcher = Batcher(self, max_batch_size, max_wait_ms)

    @classmethod
    def from_spec(cls, spec: str, device: str = "cpu", dtype: str = "float32", **kwargs: Any) -> LocalBackend:
        """A shipped checkpoint (``tiny``, ``smol``, ``smol-think``...) or a folder holding a transformers VLM (see
        ``mmcot.models.load``); ``kwargs`` go to the constructor. Raises ``ModelError`` saying what to do."""
        from mmcot.models.load import load_model

        model, processor = load_model(spec, dtype=dtype, device=device)
        return cls(model, processor, name=spec, **kwargs)

    def generate(self, requests: list[Request]) -> list[list[Completion]]:
        prompts = [self.prepare(r) for r in requests]  # bad input fails here, in the caller's thread, before any work
        return self.batcher.generate(requests, prompts)

    def stream(self, request: Request) -> Stream:
        if request.n != 1:
            raise RequestError(f"streaming takes one sample (n=1), got n={request.n}")
        return Stream(self.batcher.stream(request, self.prepare(request)))

    def close(self) -> None:
        """Stop the batching worker thread."""
        self.batcher.close()

    @functools.cached_property
    def detector(self):
        """The small-object detector shipped in this model's folder (``mmcot.models.detector``), or None."""
        from mmcot.models.detector import Detector
        from mmcot.models.load import resolve
        from mmcot.models.presets import ModelError

        try:
            folder, _ = resolve(self.name)
        except ModelError:
            return None  # built from objects, not from a folder
        return Detector.load(folder)

    # ---- prompts ----

    def prepare(self, request: Request) -> tuple[str, list[Image.Image]]:
        """The prompt text (chat template + generation prompt + prefix) and the images in order of appearance."""
        images = []
        for i, message in enumerate(request.messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise RequestError(f"message {i} must be a dict with a 'role', got {message!r:.100}")
            content = message.get("content")
            if content is None or isinstance(content, str):
                continue
            if not isinstance(content, list):
                raise RequestError(f"message {i}: content must be a string or a list of parts, got {content!r:.100}")
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "image":
                    images.append(part_image(part.get("image"), f"message {i}"))
                elif kind != "text":
                    raise RequestError(f"message {i}: unknown content part {part!r:.100}; parts are text or image")
        try:
            text = self.processor.apply_chat_template(
                request.messages, tools=request.tools or None, add_generation_prompt=True, tokenize=False
            )
        except Exception as e:  # noqa: BLE001 - templates raise anything, including jinja's TemplateError
            raise RequestError(f"{self.name}'s chat template cannot render these messages: {e}") from None
        return text + request.prefix, images

    # ---- the Runner that mmcot.models.batching.Batcher drives ----

    @torch.inference_mode()
    def prefill(self, prompts: list[tuple[str, list]], repeats: list[int]) -> tuple[Rows, torch.Tensor, list[int]]:
        from transformers import DynamicCache

        images = [image for _, ims in prompts for image in ims]
        try:
            inputs = self.processor(
                text=[text for text, _ in prompts],
                images=images or None,
                padding=True,
                padding_side="left",
                return_tensors="pt",
            )
        except Exception as e:  # noqa: BLE001 - processors raise many types
            raise RequestError(f"{self.name}'s processor cannot take this input ({type(e).__name__}: {e})") from None
        device, dtype = self.model.device, self.model.dtype
        inputs = {k: v.to(device, dtype) if v.is_floating_point() else v.to(device) for k, v in inputs.items()}
        ids, mask = inputs.pop("input_ids"), inputs.pop("attention_mask")
        counts = mask.sum(-1)
        if self.context and int(counts.max()) >= self.context:
            raise RequestError(f"the prompt is {int(counts.max())} tokens; {self.name} holds at most {self.context}")
        cache = DynamicCache()
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
            **inputs,
        )
        rows = torch.repeat_interleave(torch.arange(len(prompts), device=device), torch.tensor(repeats, device=device))
        return self.select(Rows(cache, mask, counts), rows), out.logits[:, -1][rows], counts.tolist()

    @torch.inference_mode()
    def decode(self, rows: Rows, tokens: list[int]) -> torch.Tensor:
        device = rows.mask.device
        rows.mask = torch.cat([rows.mask, rows.mask.new_ones(len(tokens), 1)], dim=1)
        out = self.model(
            input_ids=torch.tensor(tokens, device=device)[:, None],
            attention_mask=rows.mask,
            position_ids=rows.positions[:, None],
            cache=rows.cache,
            use_cache=True,
        )
        rows.positions = rows.positions + 1
        return out.logits[:, -1]

    def select(self, rows: Rows, keep: list[int] | torch.Tensor) -> Rows:
        """The given rows, without the leading columns that are padding in all of them."""
        from transformers import DynamicCache

        keep = torch.as_tensor(keep, device=rows.mask.device)
        mask = rows.mask[keep]
        start = int(mask.any(0).int().argmax())
        cache = DynamicCache([(k[keep, :, start:], v[keep, :, start:]) for k, v, *_ in rows.cache])
        return Rows(cache, mask[:, start:], rows.positions[keep])

    def merge(self, a: Rows, b: Rows) -> Rows:
        """Both batches' rows in one, the shorter left-padded to the longer."""
        from transformers import DynamicCache

        length = max(a.mask.shape[1], b.mask.shape[1])

        def pad(t: torch.Tensor, dim: int) -> torch.Tensor:
            return F.pad(t, (0, 0) * (t.dim() - 1 - dim) + (length - t.shape[dim], 0))

        cache = DynamicCache(
            [
                (torch.cat([pad(ka, 2), pad(kb, 2)]), torch.cat([pad(va, 2), pad(vb, 2)]))
                for (ka, va, *_), (kb, vb, *_) in zip(a.cache, b.cache, strict=True)
            ]
        )
        return Rows(cache, torch.cat([pad(a.mask, 1), pad(b.mask, 1)]), torch.cat([a.positions, b.positions]))

    @torch.inference_mode()
    def sample(self, logits: torch.Tensor, seqs: list[Sequence]) -> list[int]:
        """Greedy for temperature 0; otherwise temperature and top-p (nucleus) sampling with each sequence's own
        random generator, so a seeded request gives the same samples whatever else shares its batch."""
        logits = logits.float()
        if self.image_token_id is not None:
            logits[:, self.image_token_id] = -float("inf")
        tokens = logits.argmax(-1)
        hot = [i for i, s in enumerate(seqs) if s.temperature > 0]
        if hot:
            temperature = torch.tensor([seqs[i].temperature for i in hot], device=logits.device)[:, None]
            top_p = torch.tensor([seqs[i].top_p for i in hot], device=logits.device)[:, None]
            probs, order = (logits[hot] / temperature).softmax(-1), None
            if (top_p < 1).any():  # keep the smallest head of the sorted distribution whose mass reaches top_p
                probs, order = probs.sort(-1, descending=True)
                probs[probs.cumsum(-1) - probs >= top_p] = 0
            cdf = probs.cumsum(-1)
            u = torch.cat([torch.rand(1, generator=seqs[i].generator) for i in hot]).to(logits.device)[:, None]
            pick = torch.searchsorted(cdf, u * cdf[:, -1:]).clamp(max=cdf.shape[1] - 1)
            tokens[hot] = (pick if order is None else order.gather(-1, pick))[:, 0]
        return tokens.tolist()

    def generator(self, seed: int) -> torch.Generator:
        return torch.Generator().manual_seed(seed)

    def detokenize(self, ids: list[int]) -> str:
        # special tokens stay: tags such as <think> or <tool_call> may be special tokens the strategies must see
        return self.tokenizer.decode(ids, skip_special_tokens=False)
