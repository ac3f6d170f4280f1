"""Control flow of each strategy with a scripted model: what it asks, how it searches, votes, scores and answers."""

import threading
import time

import pytest
from PIL import Image, ImageDraw

from mmcot.evals.item import Item
from mmcot.reasoning.solve import solve

DONE = "</think><answer>{}</answer>"


def test_direct_is_one_short_call(make_backend, image):
    backend = make_backend(lambda r: "5")
    trace = solve(image, "How many?", strategy="direct", backend=backend)
    (req,) = backend.calls[0]
    assert req.prefix == "" and req.sampling.max_tokens == 32 and req.sampling.temperature == 0
    assert (trace.answer, trace.model_calls, len(trace.nodes)) == ("5", 1, 1)


def test_cot_thinks_and_few_shot_adds_worked_examples(make_backend, image):
    backend = make_backend(lambda r: "two and two" + DONE.format(4))
    item = Item(id="x", question="How many circles?", answer="4", images=[image], category="count")
    trace = solve(item, strategy="cot", backend=backend, shots=2)
    (req,) = backend.calls[0]
    assert req.prefix == "<think>"
    assert [m["role"] for m in req.messages] == ["user", "assistant", "user", "assistant", "user"]
    assert req.messages[1]["content"].startswith("<think>") and "</answer>" in req.messages[1]["content"]
    assert isinstance(req.messages[0]["content"][0]["image"], Image.Image)
    assert trace.answer == "4" and trace.nodes[0].text.startswith("<think>two")


def test_describe_then_reason(make_backend, image, last_text):
    backend = make_backend(lambda r: "a red dot" if "Describe" in last_text(r) else "one" + DONE.format(1))
    trace = solve(image, "How many dots?", strategy="describe", backend=backend, keep_image=False)
    second = backend.calls[1][0]
    assert "Description of the image: a red dot" in last_text(second)
    assert all(p["type"] == "text" for p in second.messages[-1]["content"])  # keep_image=False
    assert trace.answer == "1" and trace.nodes[1].parents == [0]


def test_staged_writes_each_stage_into_the_thinking(make_backend, image):
    backend = make_backend(lambda r: "done\n" if r.prefix.endswith(": ") else "yes")
    trace = solve(image, "Is it left?", strategy="staged", backend=backend)
    prefixes = [c[0].prefix for c in backend.calls]
    assert prefixes[0] == "<think>First, the objects the question is about: "
    assert prefixes[2].endswith("Where they are: done\nHow they relate to the question: ")
    assert prefixes[3].endswith("</think><answer>")
    assert trace.answer == "yes" and [n.parents for n in trace.nodes] == [[], [0], [1], [2]]


def test_self_consistency_votes_like_the_scorer(make_backend, image):
    backend = make_backend(lambda r: [DONE.format(a) for a in ["four", "5", "4", "4.0", "5"]])
    trace = solve(image, "How many?", strategy="self-consistency", n=5, backend=backend)
    (req,) = backend.calls[0]
    assert req.n == 5 and len(backend.calls) == 1  # one request, n samples: one prefill
    assert trace.answer == "four"  # four, 4 and 4.0 are the same answer
    vote = trace.nodes[-1]
    assert vote.kind == "score" and vote.parents == [0, 1, 2, 3, 4] and vote.score == pytest.approx(0.6)


def test_self_consistency_maps_choices_to_letters(make_backend, image):
    backend = make_backend(lambda r: [DONE.format(a) for a in ["B", "square", "A"]])
    item = Item(id="x", question="Which?", answer="B", images=[image], choices=["circle", "square"])
    assert solve(item, strategy="self-consistency", n=3, backend=backend).answer == "B"


def test_best_of_n_keeps_what_the_judge_likes(make_backend, image, last_text):
    def respond(r):
        if "Is this answer correct" in last_text(r):
            return "yes" if "<answer>5" in last_text(r) else "no"
        return [DONE.format(a) for a in ["4", "4", "5"]]

    backend = make_backend(respond)
    trace = solve(image, "How many?", strategy="best-of-n", n=3, backend=backend)
    assert trace.answer == "5"  # the majority says 4
    assert len(backend.calls[1]) == 3  # the three verdicts in one batched call
    assert [n.score for n in trace.nodes if n.kind == "score"] == [0, 0, 1]


def test_best_of_n_takes_a_verifier_by_dotted_path(make_backend, image, tmp_path, monkeypatch):
    (tmp_path / "my_prm.py").write_text(
        "def verify(images, question, candidates):\n"
        "    assert images[0].size == (64, 48) and question == 'How many?'\n"
        "    return [float('<answer>4' in c) for c in candidates]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    backend = make_backend(lambda r: [DONE.format(a) for a in ["5", "4", "5"]])
    trace = solve(image, "How many?", strategy="best-of-n", n=3, verifier="my_prm:verify", backend=backend)
    assert trace.answer == "4" and len(backend.calls) == 1  # no model judge calls


def test_best_of_n_can_vote_with_the_verifier_scores(make_backend, image, tmp_path, monkeypatch):
    (tmp_path / "my_scores.py").write_text(
        "def verify(images, question, candidates):\n"
        "    return [0.9 if '<answer>4' in c else 0.6 for c in candidates]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    backend = make_backend(lambda r: [DONE.format(a) for a in ["5", "4", "5"]])
    best = solve(image, "How many?", strategy="best-of-n", n=3, verifier="my_scores:verify", backend=backend)
    voted = solve(image, "How many?", strategy="best-of-n", n=3, verifier="my_scores:verify", final="vote",
                  backend=backend)  # fmt: skip
    assert best.answer == "4" and voted.answer == "5"  # 0.9 alone against 0.6 + 0.6
    with pytest.raises(ValueError, match="final must be"):
        solve(image, "How many?", strategy="best-of-n", final="most", backend=backend)


def tot_model(last_text, delay=0.0):
    """Thoughts: 'good k' leads to the answer 7, 'bad k' to 1; the judge likes good thoughts."""
    seen = []

    def respond(r):
        if "Is this answer correct" in last_text(r):
            return "no" if "bad" in last_text(r).rsplit("reasoning and answer:", 1)[1] else "yes"
        seen.append((threading.get_ident(), time.monotonic()))
        time.sleep(delay)
        if r.sampling.stop == ["\n"]:
            depth = r.prefix.count("\n")
            return [f"good {depth}", f"bad {depth}", f"good {depth}", f"meh {depth}"][: r.n]
        return DONE.format(1 if "bad" in r.prefix else 7)

    return respond, seen


def test_tot_expands_in_parallel_scores_prunes_and_answers(make_backend, image, last_text):
    respond, seen = tot_model(last_text, delay=0.05)
    backend = make_backend(respond)
    trace = solve(image, "q?", strategy="tot", breadth=4, beam=2, depth=3, prune=0.5, backend=backend)
    assert trace.answer == "7" and trace.stop_reason == "answer"
    expansions = [c for c in backend.calls if c[0].sampling.stop == ["\n"]]
    # level 1: the root; levels 2-3: the kept states, one request (n=breadth) each, in parallel branches
    assert [c[0].n for c in expansions] == [4] * len(expansions) and len(expansions) == 1 + 2 + 2
    thoughts = [n for n in trace.nodes if n.kind == "thought"]
    expanded = {trace.nodes[n.parents[0]].text for n in thoughts if n.parents}
    assert expanded and all(t.startswith(("good", "meh")) for t in expanded)  # bad ones were pruned
    assert len({t for t, _ in seen}) > 1  # the Send branches ran on several threads


def test_tot_rollout_value(make_backend, image, last_text):
    respond, _ = tot_model(last_text)
    trace = solve(
        image, "q?", strategy="tot", breadth=4, beam=1, depth=2, value="rollout", backend=make_backend(respond)
    )
    assert trace.answer == "7"  # good and meh roll out to 7: most siblings agree
    assert any(n.meta.get("by") == "rollout" for n in trace.nodes if n.kind == "score")


def test_tot_answers_when_every_thought_is_empty(make_backend, image):
    """A model that ends each thought at once (an empty line) still gets an answer: ToT finishes from the root."""

    def respond(r):
        return [""] * r.n if r.sampling.stop == ["\n"] else DONE.format(3)

    trace = solve(image, "q?", strategy="tot", breadth=2, beam=2, depth=2, backend=make_backend(respond))
    assert trace.answer == "3" and trace.stop_reason == "answer"
    assert [n.kind for n in trace.nodes] == ["thought"] and trace.nodes[0].meta["rollout"]


def test_tot_asks_for_the_answer_a_rollout_did_not_give(make_backend, image, last_text):
    """A model that goes on thinking without ever closing the thought gets its answer asked for."""

    def respond(r):
        if "Is this answer correct" in last_text(r):
            return "yes"
        if r.sampling.stop == ["\n"]:
            return [f"step {i}" for i in range(r.n)]
        return "7" if r.prefix.endswith("</think><answer>") else "still thinking"

    backend = make_backend(respond)
    trace = solve(image, "q?", strategy="tot", breadth=2, beam=1, depth=1, backend=backend)
    assert trace.answer == "7" and trace.stop_reason == "answer"
    forced = [n for n in trace.nodes if n.meta.get("forced")]
    assert len(forced) == 1 and trace.nodes[forced[0].parents[0]].meta["rollout"]
    assert [c[0].sampling.stop for c in backend.calls if c[0].prefix.endswith("<answer>")] == [["</answer>"]]


def test_got_generates_aggregates_refines(make_backend, image, last_text):
    def respond(r):
        t = last_text(r)
        if "Is this answer correct" in t:
            return "yes" if "<answer>9" in t else "no"
        if "attempts at this question" in t:
            assert "1. <think>" in t and "2. <think>" in t
            return "combined" + DONE.format(8)
        if "A previous attempt" in t:
            return "checked" + DONE.format(9)
        return [DONE.format(a) for a in [1, 2, 3]]

    backend = make_backend(respond)
    trace = solve(image, "q?", strategy="got", k=3, keep=2, rounds=1, backend=backend)
    ops = [n.meta.get("op") for n in trace.nodes if n.kind == "thought"]
    assert ops == ["generate"] * 3 + ["aggregate", "refine"]
    assert trace.answer == "9"
    aggregate = next(n for n in trace.nodes if n.meta.get("op") == "aggregate")
    assert len(aggregate.parents) == 2


def scene() -> Image.Image:
    """256x256: a red target at the top left, a blue decoy at the bottom right."""
    img = Image.new("RGB", (256, 256), "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle([20, 30, 27, 37], fill=(255, 0, 0))
    draw.rectangle([220, 220, 227, 227], fill=(0, 0, 255))
    return img


def has(img: Image.Image, color: tuple) -> bool:
    return color in {c for _, c in img.getcolors(1 << 16)}


def test_region_search_zooms_backtracks_and_answers_on_the_crop(make_backend, last_text):
    def respond(r):
        crops = [p["image"] for m in r.messages for p in m["content"] if p["type"] == "image"]
        if "Is there a red square" in last_text(r):
            (crop,) = crops
            # the decoy looks like the target from afar only
            return "yes" if has(crop, (255, 0, 0)) or (has(crop, (0, 0, 255)) and crop.width > 100) else "no"
        assert len(crops) == 2 and crops[1].width < 100 and has(crops[1], (255, 0, 0))
        assert "zoomed-in view" in last_text(r)
        return "it is red" + DONE.format("red")

    backend = make_backend(respond)
    knobs = {"grid": 2, "max_depth": 3}  # three levels: the decoy is abandoned at the second
    trace = solve(scene(), "What color is the red square?", strategy="region-search", backend=backend, **knobs)
    assert trace.answer == "red" and trace.stop_reason == "answer"
    crops = [n for n in trace.nodes if n.kind == "crop"]
    assert all(len(c[0].messages) == 1 for c in backend.calls[:-1])  # tiles scored alone, batched per level
    assert any(n.meta.get("backtrack") for n in trace.nodes)  # the decoy branch was abandoned
    final = trace.nodes[-1]
    target = trace.nodes[final.parents[0]]
    assert target.kind == "crop" and target.meta["depth"] == 3 and target.score == 1
    x0, y0, x1, y1 = target.meta["box"]
    assert x0 <= 20 and y0 <= 30 and x1 >= 28 and y1 >= 38 and x1 - x0 < 100
    assert set(trace.images) == {"image_0"} | {i for n in crops for i in n.images}


def test_region_search_without_a_hit_answers_on_the_best_region(make_backend, last_text):
    backend = make_backend(lambda r: "no" if "in this image?" in last_text(r) else DONE.format("no"))
    trace = solve(scene(), "Is there a green star?", strategy="region-search", backend=backend, max_expansions=3)
    assert trace.answer == "no"
    assert "Is there a green star in this image?" in last_text(backend.calls[0][0])
    assert len(backend.calls) == 1  # the root's tiles said no: the search's own verdict answers "is there"
    assert trace.nodes[-1].text == "The search did not find a green star. The answer is no."
    trace = solve(scene(), "Is there a green star?", strategy="region-search", backend=backend, search_answers=False)
    assert trace.answer == "no" and len(backend.calls) == 3  # now the model answers, looking at the best tile
    assert "did not find a green star; this is the closest match" in last_text(backend.calls[-1][0])


def test_region_search_answers_where_from_the_region_it_found(make_backend):
    backend = make_backend(lambda r: "yes" if has(r.messages[0]["content"][0]["image"], (255, 0, 0)) else "no")
    trace = solve(scene(), "Where is the red square?", strategy="region-search", backend=backend)
    assert trace.answer == "top left" and trace.nodes[-1].meta == {"found": True, "by": "search", "step": "answer"}


class RedDetector:
    """Scores a crop 0.9 where it holds red pixels (at the first one), else 0.1: the shape of a model's detector."""

    def __init__(self):
        self.asked = []

    def score(self, crops, color, shape):
        self.asked.append((color, shape))
        out = []
        for crop in crops:
            red = [
                (x, y) for x in range(crop.width) for y in range(crop.height) if crop.getpixel((x, y)) == (255, 0, 0)
            ]
            x, y = red[0] if red else (0, 0)
            out.append((0.9 if red else 0.1, ((x + 0.5) / crop.width, (y + 0.5) / crop.height)))
        return out


def test_region_search_scores_tiles_with_the_models_detector(make_backend, last_text):
    def respond(r):
        crops = [p["image"] for m in r.messages for p in m["content"] if p["type"] == "image"]
        assert len(crops) == 2 and has(crops[1], (255, 0, 0))  # the whole image and a crop centered on the target
        assert "top left quarter" in last_text(r) and "found a small red square here" in last_text(r)
        return DONE.format("red")

    backend = make_backend(respond)
    backend.detector = RedDetector()
    trace = solve(scene(), "What color is the small red square?", strategy="region-search", backend=backend)
    assert trace.answer == "red" and len(backend.calls) == 1  # tiles cost no model calls, only the answer does
    assert set(backend.detector.asked) == {("red", "square")}
    crops = [n for n in trace.nodes if n.kind == "crop"]
    assert crops[0].text.startswith("detector: a small red square") and crops[0].meta["point"] == [20, 30]
    final = trace.nodes[trace.nodes[-1].parents[0]]
    assert final.meta["depth"] == 2 and final.score == 0.9

    backend = make_backend(lambda r: DONE.format("no"))
    backend.detector = RedDetector()
    trace = solve(scene(), "Is there a small blue circle?", strategy="region-search", backend=backend, scorer="model")
    assert backend.detector.asked == [] and "Is there a small blue circle in this image?" in last_text(
        backend.calls[0][0]
    )
    trace = solve(scene(), "Is there a dog?", strategy="region-search", backend=backend, scorer="detector")
    assert trace.stop_reason.startswith("error: search: ValueError: scorer=detector: 'a dog' cannot be scored")


def test_region_search_needs_an_image(make_backend):
    trace = solve(None, "Is there a star?", strategy="region-search", backend=make_backend(lambda r: "no"))
    assert trace.stop_reason == "error: search: ValueError: region-search needs an image in the question"
