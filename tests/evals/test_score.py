"""The one scorer: normalization, answer extraction and choice matching, case by case, and its doctests."""

import doctest

import pytest

from mmcot.evals import score as score_module
from mmcot.evals.score import choice_index, extract_answer, normalize, score

SHAPES = ["circle", "square", "triangle"]


def test_doctests():
    assert doctest.testmod(score_module).failed == 0


@pytest.mark.parametrize(
    "prediction, answer",
    [
        # case, whitespace, punctuation, markdown
        ("Red", "red"),
        ("  RED!  ", "red"),
        ("red.", "red"),
        ("**Red**", "red"),
        ('"red"', "red"),
        ("top-left", "top left"),
        ("a circle", "circle"),
        ("The square", "square"),
        # number words and digits
        ("three", "3"),
        ("Three.", "3"),
        ("3", "three"),
        ("zero", "0"),
        ("twenty-one", "21"),
        ("twenty one", "21"),
        ("one hundred", "100"),
        ("one hundred twenty-five", "125"),
        ("forty", "40"),
        # number spellings
        ("4.0", "4"),
        ("05", "5"),
        ("1.50", "1.5"),
        (".5", "0.5"),
        ("1,000", "1000"),
        ("-3", "-3"),
        ("−3", "-3"),  # unicode minus
        ("90°", "90"),
        # yes / no variants
        ("Yes", "yes"),
        ("yep", "yes"),
        ("True", "yes"),
        ("Yes, it is.", "yes"),
        ("No.", "no"),
        ("nope", "no"),
        ("No, there is none.", "no"),
        ("false", "no"),
        # times (12-hour clock: an analog clock has no am/pm)
        ("3:05", "03:05"),
        ("15:05", "3:05"),
        ("3:05 pm", "3:05"),
        ("3:05 p.m.", "3:05"),
        ("0:30", "12:30"),
        ("12:00", "12:00"),
        ("three o'clock", "3:00"),
        ("3 o'clock", "3:00"),
        # extraction from model output
        ("<think>two and one</think><answer>three</answer>", "3"),
        ("<answer>4", "4"),
        ("The answer is 3, because I count three circles.", "3"),
        ("Final answer: 7", "7"),
        ("I looked carefully.\n7", "7"),
        ("so the answer is \\boxed{42}", "42"),
        # a lone letter is an answer, not an article
        ("A", "a"),
    ],
)
def test_matches(prediction, answer):
    assert score(prediction, answer) == 1.0


@pytest.mark.parametrize(
    "prediction, answer",
    [
        ("3", "-3"),  # the sign is kept
        ("3", "4"),
        ("yes", "no"),
        ("no red circles", "no"),  # not a yes/no answer: "no" must be followed by punctuation to fold
        ("3 circles", "3"),  # exact match after normalization, no partial credit
        ("3 or 4", "3"),
        ("circles", "circle"),
        ("3:05", "3:50"),
        ("", ""),  # an empty answer is never matched
        ("red", ""),
        ("21", "twenty"),
    ],
)
def test_mismatches(prediction, answer):
    assert score(prediction, answer) == 0.0


@pytest.mark.parametrize(
    "prediction",
    [
        "B",
        "b",
        "(B)",
        "B)",
        "B.",
        "B. square",
        "(B) square",
        "Option B",
        "square",
        "Square.",
        "The answer is (B).",
        "**B**",
    ],
)
def test_choice_letter_and_text(prediction):
    assert choice_index(extract_answer(prediction), SHAPES) == 1
    assert score(prediction, "square", SHAPES) == 1.0
    assert score(prediction, "B", SHAPES) == 1.0  # the answer may be given as the letter too


@pytest.mark.parametrize("prediction", ["A", "circle", "C. triangle", "a circle", "D", "squares", ""])
def test_wrong_or_invalid_choice(prediction):
    assert score(prediction, "B", SHAPES) == 0.0


def test_letter_beyond_the_choices_is_not_a_choice():
    assert choice_index("D", SHAPES) is None
    assert choice_index("E. foo", SHAPES) is None


def test_an_article_is_not_read_as_letter_a():
    assert choice_index("a circle", SHAPES) == 0  # by the text "circle", not by the letter
    assert choice_index("A square", SHAPES) == 1


def test_answer_outside_the_choices_falls_back_to_text():
    assert score("pentagon", "pentagon", SHAPES) == 1.0
    assert score("circle", "pentagon", SHAPES) == 0.0


def test_normalize_canonical_forms():
    assert normalize("  The Three. ") == "3"
    assert normalize("Yeah!") == "yes"
    assert normalize("1,000,000") == "1000000"
    assert normalize("-0") == "0"
    assert normalize("3-4") == "3 4"
    assert normalize("the") == "the"


def test_extract_answer_prefers_tags_then_phrases_then_last_line():
    assert extract_answer("<answer>a</answer> <answer>b</answer>") == "b"
    assert extract_answer("<think>the answer is 2</think>The answer is 3") == "3"
    assert extract_answer("line one\n\nline two\n") == "line two"
    assert extract_answer("") == ""
