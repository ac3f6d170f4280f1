"""Multi-turn tool rollouts inside TRL's GRPOTrainer: the policy calls mmcot tools (crop, zoom, python...)
mid-completion, sees their results (images included) and goes on, up to ``max_tool_calling_iterations`` turns.

TRL 1.16 has its own tool loop, but it parses calls with a response schema it only knows for a fixed list of chat
templates (mmcot's template is not one), calls plain Python functions without the conversation's images, and
ends a rollout on a malformed call. :class:`ToolGRPOTrainer` keeps all of TRL's GRPO (sampling, loss, logging,
vLLM options) and replaces only the loop, ``_tool_call_loop``, with one over mmcot's tool layer:

- calls are parsed by :func:`mmcot.tools.parse_tool_calls` and run by :func:`mmcot.tools.run_tool_call` in a
  per-rollout :class:`~mmcot.tools.base.ToolContext` that holds the conversation's images by id (``image_0`` is the
  prompt's first image, results add ``image_1``...), so a crop of a crop works as it does in ``mmcot solve``;
- a malformed call or a failing tool becomes a tool message the policy reads (errors are data), and counts as a
  tool failure in TRL's ``tools/failure_frequency``;
- tool-result tokens (and their image tokens) get ``tool_mask = 0``: they condition the next turn but are not trained;
- the tool list reaches the model through the chat template's ``tools`` block, worded as the strategies word it.

Each tool message also carries the call's ``arguments``, the result's ``metadata`` and ``error``, so reward
functions (e.g. the crop-IoU process reward) can read what the tools did. Timings of generation and tool execution
are logged as ``timing/generate_s`` and ``timing/tools_s``.
"""

from __future__ import annotations

import time
from typing import Any

from trl import GRPOTrainer


class ToolGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` with mmcot's multi-turn tool rollout. ``tool_names`` empty gives TRL's single-turn GRPO."""

    def __init__(self, *args: Any, tool_names: list[str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        from mmcot.tools import resolve_tools, tool_schemas

        try:
            self.rollout_tools = resolve_tools(tool_names or [])
        except KeyError as e:
            raise ValueError(e.args[0]) from None
        # TRL renders prompts with these schemas (the template's tools block) and, when tool results brought images,
        # builds the loss inputs from prompt and tool images together. Set after TRL's __init__, which would
        # otherwise try to swap mmcot's chat template for one of the templates it knows.
        self.tools = tool_schemas(self.rollout_tools) if self.rollout_tools else []
        self._timing = {"generate_s": 0.0, "tools_s": 0.0}

    def _generate_single_turn(self, *args: Any, **kwargs: Any):
        start = time.perf_counter()
        try:
            return super()._generate_single_turn(*args, **kwargs)
        finally:
            self._timing["generate_s"] += time.perf_counter() - start

    def _generate(self, prompts: list):
        self._timing = {"generate_s": 0.0, "tools_s": 0.0}
        out = super()._generate(prompts)
        mode = "train" if self.model.training else "eval"
        for key, value in self._timing.items():
            self._metrics[mode][f"timing/{key}"].append(value)
        return out

    def _tool_call_loop(self, prompts, prompt_ids, completion_ids, completions, logprobs, images, multimodal_fields):
        from mmcot.tools import ToolContext

        n = len(completion_ids)
        images = [list(ims or []) for ims in images] if images else [[] for _ in range(n)]
        state = {
            "ids": completion_ids,
            "mask": [[1] * len(ids) for ids in completion_ids],
            "logprobs": logprobs,
            "messages": [[{"role": "assistant", "content": self._turn_text(ids)}] for ids in completion_ids],
            "tool_images": [[] for _ in range(n)],
            "calls": [0] * n,
            "failures": 0,
        }
        size = getattr(self.processing_class.image_processor, "size", None) or {}
        side = size.get("height") or size.get("shortest_edge") or ToolContext.image_size  # zoom to the model's input
        contexts = [
            ToolContext(images={f"image_{k}": im for k, im in enumerate(images[i])}, image_size=side) for i in range(n)
        ]
        active = list(range(n))
        try:
            for _ in range(self.max_tool_calling_iterations):
                start = time.perf_counter()
                waiting = [i for i in active if self._run_tools(i, state, contexts[i])]
                self._timing["tools_s"] += time.perf_counter() - start
                if not waiting:
                    break
                seq_images = [images[i] + state["tool_images"][i] for i in waiting]
                new_ids, new_logprobs = self._generate_single_turn(
                    [prompt_ids[i] + state["ids"][i] for i in waiting],
                    seq_images,
                    self._image_fields(seq_images),
                    num_generations=1,
                )
                for k, i in enumerate(waiting):
                    ids = new_ids[k][: self.max_completion_length - len(state["ids"][i])]
                    state["ids"][i] = state["ids"][i] + ids
                    state["mask"][i] += [1] * len(ids)
                    if logprobs is not None:
                        logprobs[i] += new_logprobs[k][: len(ids)]
                    state["messages"][i].append({"role": "assistant", "content": self._turn_text(ids)})
                active = waiting
        finally:
            for ctx in contexts:
                ctx.close()
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["tools/call_rate"].append(sum(c > 0 for c in state["calls"]) / max(1, n))
        return (
            state["mask"],
            state["messages"],
            state["ids"],
            logprobs,
            sum(state["calls"]),
            state["failures"],
            state["tool_images"],
        )

    def _run_tools(self, i: int, state: dict, ctx: Any) -> bool:
        """Run the tool calls of sample ``i``'s latest turn and append their results; True when the sample should
        take another turn (it called tools and there is room to read the results and answer)."""
        from mmcot.tools import parse_tool_calls, run_tool_call, tool_message

        parsed, errors = parse_tool_calls(state["messages"][i][-1]["content"], self.rollout_tools)
        if not (parsed or errors) or len(state["ids"][i]) >= self.max_completion_length - 1:
            return False
        self._close_turn(i, state)
        messages, new_images = [], []
        results = [(call, run_tool_call(call, ctx, self.rollout_tools)) for call in parsed]
        results += [({"name": e.name or "error", "arguments": {}}, e.as_result()) for e in errors]
        for call, result in results:
            state["calls"][i] += 1
            state["failures"] += not result.ok
            message = tool_message(result, call)
            # what the tool did rides along for reward functions (e.g. crop IoU); the chat template ignores it
            message.update(arguments=call["arguments"], metadata=result.metadata, error=result.error)
            messages.append(message)
            new_images += result.images
        suffix = self._get_tool_suffix_ids(messages)  # the tool turn as the template renders it, image tokens included
        if len(state["ids"][i]) + len(suffix) >= self.max_completion_length:
            return False  # no room left to read the results and answer: the rollout ends here
        state["ids"][i] = state["ids"][i] + suffix
        state["mask"][i] += [0] * len(suffix)  # tool results condition the next turn but are not trained on
        if state["logprobs"] is not None:
            state["logprobs"][i] += [0.0] * len(suffix)
        state["messages"][i] += messages
        state["tool_images"][i] += new_images
        return True

    def _close_turn(self, i: int, state: dict) -> None:
        """End a tool-calling turn right after its last ``</tool_call>`` with the end-of-turn token, as the tool-use
        traces the model was fine-tuned on do. Text the policy wrote after its calls (a made-up tool result, say)
        is dropped before the real results come in; a turn cut by the length limit gets its end-of-turn token."""
        mask, ids_all, logprobs = state["mask"][i], state["ids"][i], state["logprobs"]
        start = len(mask)
        while start > 0 and mask[start - 1] == 1:  # the latest turn: the trailing run of model tokens
            start -= 1
        ids, text = ids_all[start:], state["messages"][i][-1]["content"]
        end = text.rfind("</tool_call>")
        keep = len(ids)
        if end >= 0 and text[end + len("</tool_call>") :].strip():
            keep = next(k for k in range(1, len(ids) + 1) if "</tool_call>" in self._turn_text(ids[:k])[end:])
        elif ids and ids[-1] in self.eos_token_ids:
            return
        state["ids"][i] = ids_all[: start + keep] + [self.eos_token_ids[0]]
        state["mask"][i] = mask[: start + keep] + [1]
        if logprobs is not None:
            logprobs[i] = logprobs[i][: start + keep] + [0.0]
        state["messages"][i][-1] = {"role": "assistant", "content": self._turn_text(state["ids"][i][start:])}

    def _turn_text(self, ids: list[int]) -> str:
        return self._tokenizer.decode(ids, skip_special_tokens=True)

    def _image_fields(self, seq_images: list[list]) -> dict:
        """Pixel inputs for a continuation batch: every image of every sequence, in order (prompt, then tools)."""
        flat = [im for ims in seq_images for im in ims]
        if not flat:
            return {}
        from transformers import Trainer

        fields = self.processing_class.image_processor(images=flat, return_tensors="pt")
        return Trainer._prepare_inputs(self, dict(fields))  # device (and dtype under DeepSpeed), as TRL's loop does
