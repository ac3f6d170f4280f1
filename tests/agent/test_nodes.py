"""The controller's node helpers: tools reach the model as the fine-tuning data lists them, budgets cap generation,
-think models are not given a second <think>."""

import pytest

from mmcot.reasoning.solve import solve
from mmcot.tools import tool_schemas


def test_the_model_step_hands_the_tools_to_the_backend(make_backend, image):
    backend = make_backend(lambda r: "<answer>3</answer>")
    trace = solve(image, "q?", strategy="image-loop", tools=["zoom", "python"], system="Be brief.", backend=backend)
    (request,) = backend.calls[0]
    assert trace.answer == "3" and request.tools == tool_schemas(["zoom", "python"])
    assert request.messages[0] == {"role": "system", "content": "Be brief."}  # the backend adds the tool list


def test_image_tools_are_offered_once_there_is_an_image(make_backend, image):
    backend = make_backend(lambda r: "<answer>4</answer>")
    solve(None, "What is 2 + 2?", strategy="image-loop", tools=["zoom", "detect", "python"], backend=backend)
    assert backend.calls[0][0].tools == tool_schemas(["python"])


def test_an_openai_server_gets_the_tools_as_a_hermes_block():
    import json

    from mmcot.models.openai_backend import _with_tools

    schemas = tool_schemas(["zoom"])
    for head in ([], [{"role": "system", "content": "Be brief."}]):
        (system, user) = _with_tools([*head, {"role": "user", "content": "q?"}], schemas)
        assert system["role"] == "system" and user == {"role": "user", "content": "q?"}
        assert system["content"].startswith("Be brief.\n\n# Tools\n" if head else "# Tools\n")
        assert json.dumps(schemas[0]["function"]) in system["content"]


def test_budget_splits_tokens_across_samples(make_backend, image):
    backend = make_backend(lambda r: "x")
    solve(image, "q?", strategy="self-consistency", n=4, max_tokens=384, backend=backend, budget={"max_tokens": 100})
    assert backend.calls[0][0].sampling.max_tokens == 25


def test_a_thinking_model_gets_no_second_think(make_backend, image):
    from mmcot.models.processor import chat_template

    backend = make_backend(lambda r: "one</think><answer>1</answer>")
    backend.processor = type("P", (), {"chat_template": chat_template(think=True)})()
    trace = solve(image, "q?", strategy="cot", backend=backend)
    assert backend.calls[0][0].prefix == ""
    assert trace.answer == "1" and trace.nodes[0].text == "<think>one</think><answer>1</answer>"


@pytest.mark.parametrize("strategy", ["cot", "image-loop"])
def test_a_model_that_ends_right_after_think_is_asked_again_without_it(make_backend, image, strategy):
    """smol was not taught to think: given <think> it ends its turn at once. It is asked once more without the
    prefix, so its answer is kept (an empty thought, then the answer), not silently lost."""
    backend = make_backend(lambda r: "" if r.prefix == "<think>" else "blue")
    trace = solve(image, "What color?", strategy=strategy, backend=backend)
    assert [call[0].prefix for call in backend.calls] == ["<think>", ""]
    assert trace.answer == "blue" and trace.model_calls == 2
    assert trace.nodes[0].text == "<think></think>blue"


def test_a_reply_left_inside_think_is_the_reply(make_backend, image):
    """Given <think>, smol writes its reply and ends its turn without closing the thought: that text is its reply
    (chat shows it), not a thought with no answer. One model call."""
    backend = make_backend(lambda r: "Take short breaks.")
    trace = solve(image, "Any tip?", strategy="image-loop", backend=backend)
    assert trace.answer == "Take short breaks." and trace.model_calls == 1
    assert trace.nodes[0].text == "<think></think>Take short breaks."


def test_a_template_that_opens_think_gets_the_thought_closed_on_the_retry(make_backend, image):
    """smol-think: the chat template itself opens <think>, so the retry closes the thought instead of leaving it out."""
    from mmcot.models.processor import chat_template

    backend = make_backend(lambda r: "blue" if r.prefix == "</think>" else "")
    backend.processor = type("P", (), {"chat_template": chat_template(think=True)})()
    trace = solve(image, "What color?", strategy="cot", backend=backend)
    assert [call[0].prefix for call in backend.calls] == ["", "</think>"]
    assert trace.answer == "blue" and trace.nodes[0].text == "<think></think>blue"


def test_the_retry_keeps_to_the_token_budget(make_backend, image):
    """The second try after an empty thought gets what the first left of the turn's token budget, and a reply cut
    there stops as max_tokens. The first try's end-of-turn token counts, as a real model's does."""
    from mmcot.models.backend import Completion

    class EndsAtOnce(make_backend):
        def _complete(self, request, text):
            if request.prefix == "<think>":
                return Completion("", prompt_tokens=10, completion_tokens=1, finish_reason="stop")
            return super()._complete(request, text)

    backend = EndsAtOnce(lambda r: "the answer is blue")
    trace = solve(image, "What color?", strategy="cot", backend=backend, budget={"max_tokens": 3})
    assert [call[0].sampling.max_tokens for call in backend.calls] == [3, 2]
    assert trace.stop_reason == "max_tokens" and trace.completion_tokens == 3
    backend = EndsAtOnce(lambda r: "blue")  # a first try that spends the whole budget leaves no second one
    trace = solve(image, "What color?", strategy="cot", backend=backend, budget={"max_tokens": 1})
    assert len(backend.calls) == 1 and trace.stop_reason == "max_tokens"


def test_a_thought_that_ends_the_turn_is_followed_by_an_answer(make_backend, image):
    """A model taught to think first (tool traces) may close its thought and end the turn. The turn goes on from
    ``</think><answer>``, so the chat shows an answer, not "(no answer)"; the trace node says it was forced."""
    backend = make_backend(lambda r: "\n<answer> blue" if r.prefix.endswith("<answer>") else "two tips</think>")
    trace = solve(image, "Any tip?", strategy="image-loop", backend=backend)
    assert [call[0].prefix for call in backend.calls] == ["<think>", "<think>two tips</think><answer>"]
    assert backend.calls[1][0].sampling.stop == ["</answer>"]  # a repeated <answer> tag is dropped
    assert trace.answer == "blue" and trace.nodes[0].text == "<think>two tips</think><answer>blue</answer>"
    assert trace.nodes[0].meta["forced_answer"] and trace.model_calls == 2


def test_a_thought_cut_by_its_token_limit_is_closed_and_answered(make_backend, image):
    from mmcot.models.backend import Completion

    class Rambles(make_backend):
        def _complete(self, request, text):
            if request.prefix == "<think>":
                return Completion("hmm " * 8, prompt_tokens=10, completion_tokens=8, finish_reason="length")
            return super()._complete(request, text)

    trace = solve(image, "What color?", strategy="cot", backend=Rambles(lambda r: "red"))
    assert trace.answer == "red" and trace.nodes[-1].text.endswith("hmm</think><answer>red</answer>")
    trace = solve(image, "What color?", strategy="cot", backend=Rambles(lambda r: "red"), budget={"max_tokens": 8})
    assert trace.answer == "" and trace.stop_reason == "max_tokens"  # no tokens left: the thought stands
