"""Training conversations and vision targets from the puzzle world: deterministic rows, every kind well formed, the
strategies' exact prompts, tool traces that parse and carry their images, targets that agree with the scene."""

import random

import pytest

from mmcot.evals.puzzles import FAMILIES, puzzle
from mmcot.models import data
from mmcot.models.data import KINDS, DataMix, Rows, conversation


def placeholders(row):
    return sum(
        1 for m in row["messages"] if isinstance(m["content"], list) for p in m["content"] if p["type"] == "image"
    )


def test_rows_are_deterministic_and_images_match_placeholders():
    rows = Rows(DataMix(), 40)
    again = Rows(DataMix(), 40)
    for i in range(0, 40, 3):
        a, b = rows[i], again[i]
        assert a["messages"] == b["messages"]
        assert placeholders(a) == len(a["images"])
    assert Rows(DataMix(data_seed=1), 40)[0]["messages"] != rows[0]["messages"]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_kind_is_well_formed_for_every_family(family):
    item = puzzle(family, 7)
    for kind in KINDS:
        row = conversation(item, kind, random.Random(0))
        if row is None:
            continue
        assert placeholders(row) == len(row["images"])
        assert row["messages"][-1]["role"] == "assistant" and row["messages"][-1]["content"]
        if kind == "direct":
            assert row["messages"][-1]["content"] == item.answer
        if kind == "think":
            assert row["messages"][-1]["content"].endswith(f"<answer>{item.answer}</answer>")


def test_prompts_match_the_strategies_word_for_word():
    from mmcot.reasoning import prompts

    for name in ("DESCRIBE", "EXISTS", "FROM_DESCRIPTION", "JUDGE", "ZOOMED", "THINK", "END_THINK", "ANSWER"):
        assert getattr(data, name) == getattr(prompts, name), name
    assert data.think_reply(["a", "b"], "3") == prompts.rationale_reply(["a", "b"], "3")


def test_tool_traces_parse_and_carry_the_tool_image():
    from mmcot.tools import parse_tool_calls

    rows = [(it, conversation(it, "tool", random.Random(0))) for it in (puzzle("small_object", i) for i in range(12))]
    kept = [(it, r) for it, r in rows if r is not None]
    assert len(kept) >= 8  # a row where the detector is wrong is left out, not taught
    item, row = kept[0]
    system, user, call, tool, answer = row["messages"]
    assert system["role"] == "system" and "- detect(" in system["content"] and "- zoom(" in system["content"]
    calls, errors = parse_tool_calls(call["content"])
    assert not errors and calls[0].name == "detect" and "small" in calls[0].arguments["target"]
    assert tool["role"] == "tool" and tool["content"][0]["text"].startswith("image_1 (")
    assert len(row["images"]) == 2 and row["images"][1].size == (128, 128)
    assert answer["content"].endswith(f"<answer>{item.answer}</answer>")
    arithmetic = conversation(puzzle("arithmetic", 3), "tool", random.Random(0))
    calls, _ = parse_tool_calls(arithmetic["messages"][2]["content"])
    code = calls[0].arguments["code"]
    assert eval(code[len("print(") : -1]) == int(puzzle("arithmetic", 3).answer)  # noqa: S307 - our own expression
    assert arithmetic["messages"][3]["content"][0]["text"] == puzzle("arithmetic", 3).answer


def test_existence_answers_agree_with_the_scene():
    rng = random.Random(0)
    seen = {"yes": 0, "no": 0}
    for i in range(60):
        item = puzzle("count", i)
        row = conversation(item, "exists", rng)
        if row is None:
            continue
        question = row["messages"][0]["content"][-1]["text"]
        target = question[len("Is there a ") : -len(" in this image?")]
        color, noun = target.split(" ", 1)
        present = any(o["color"] == color and (noun in ("object", "shape") or o["shape"] == noun)
                      for o in item.metadata["objects"])  # fmt: skip
        assert row["messages"][1]["content"] == ("yes" if present else "no"), question
        seen[row["messages"][1]["content"]] += 1
    assert seen["yes"] > 10 and seen["no"] > 10


def test_lookup_turns_ask_each_object_by_its_unique_attribute():
    rng = random.Random(0)
    rows = [(item, conversation(item, "lookup", rng)) for item in (puzzle("attribute", i) for i in range(30))]
    rows = [(item, row) for item, row in rows if row is not None]
    assert len(rows) > 10
    for item, row in rows:
        objects, messages = item.metadata["objects"], row["messages"]
        assert placeholders(row) == 1 and len(messages) >= 4 and len(messages) % 2 == 0
        for ask, reply in zip(messages[::2], messages[1::2], strict=True):
            text = ask["content"] if isinstance(ask["content"], str) else ask["content"][-1]["text"]
            words = text.rstrip("?.").split()
            named = [o for o in objects if (o["color"] in words) != (o["shape"] in words)]
            assert len(named) == 1, text  # the attribute asked about names exactly one object
            assert reply["content"] in (named[0]["color"], named[0]["shape"]) and reply["content"] not in text


def test_scene_targets_mark_each_object_center_once():
    from mmcot.models.targets import COLORS, targets

    for i in range(12):
        item = puzzle("count", i)
        t = targets(item, 0, 128, 8)
        objects = item.metadata["objects"]
        assert int(t["center"].sum()) == len(objects)
        centers = sorted(int(c) for c in t["color"][t["center"] == 1])
        assert centers == sorted(COLORS.index(o["color"]) + 1 for o in objects)


def test_grounding_names_the_objects_an_answer_is_read_from():
    from mmcot.evals.puzzles.count import matches
    from mmcot.models.data import grounding
    from mmcot.models.targets import targets

    for i in range(12):
        item = puzzle("count", i)
        g = grounding(item)
        wanted = [k for k, o in enumerate(item.metadata["objects"]) if matches(o, item.metadata["query"])]
        assert g["objects"] == wanted  # a count of zero too (the 'count' grounding query reads it)
        thing = targets(item, 0, 128, 8)["thing"]
        assert set(thing[thing >= 0]) == set(range(len(item.metadata["objects"])))  # every object covers a patch
        spatial, attribute = grounding(puzzle("spatial", i)), grounding(puzzle("attribute", i))
        query = puzzle("attribute", i).metadata["query"]
        assert attribute["objects"] == [query["target"]] and (attribute["word"] is None) == query["kind"].endswith(
            "largest"
        )
        assert len(spatial["objects"]) in (1, 2) and spatial["word"] is None
    assert grounding(puzzle("maze", 0)) is None


def test_rotation_targets_follow_the_rotated_image():
    from mmcot.models.targets import targets

    item = next(it for i in range(30) if (it := puzzle("rotation", i)).metadata["query"]["rotation_cw"] == 180)
    first, second = targets(item, 0, 128, 8), targets(item, 1, 128, 8)
    assert (second["color"].reshape(8, 8) == first["color"].reshape(8, 8)[::-1, ::-1]).mean() > 0.9


def test_families_without_geometry_are_ignored():
    from mmcot.models.targets import IGNORE, targets

    t = targets(puzzle("maze", 0), 0, 128, 8)
    assert (t["color"] == IGNORE).all() and t["mask"].sum() == 0


def test_bad_mix_is_refused():
    with pytest.raises(ValueError, match="unknown conversation kind 'chat'"):
        DataMix(kinds="direct:1,chat:2")
    with pytest.raises(ValueError, match="bad weight"):
        data.parse_weights("direct:x")
    with pytest.raises(ValueError, match="question_weights must be positive"):
        DataMix(question_weights="shape_of_color:0")


def test_question_weights_shift_the_question_kinds_within_a_family():
    def shapes(weights):
        rows = Rows(DataMix(families="attribute", kinds="direct:1", question_weights=weights, data_seed=2), 120)
        return sum(r["ground"]["item"].metadata["query"]["kind"].startswith("shape") for r in rows)

    plain, weighted = shapes(""), shapes("shape_of_color:3,shape_of_largest:3")
    assert 40 <= plain <= 80 and weighted >= plain + 25
    with pytest.raises(ValueError, match=r"question kinds \['shape_of_colour'\] are not asked by families attribute"):
        Rows(DataMix(families="attribute", question_weights="shape_of_colour:2"), 8)
