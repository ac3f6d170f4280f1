"""The one definition of a correct answer. Evals, answer extraction in strategies and RL's outcome reward call it.

>>> score("<think>two blue, one red</think><answer>Three</answer>", "3")
1.0
>>> score("The answer is (B).", "square", choices=["circle", "square", "triangle"])
1.0
>>> score("yep", "yes"), score("no", "yes")
(1.0, 0.0)
"""

from __future__ import annotations

import re

NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
}
NUMBER_WORDS.update(
    {w: str(10 * i) for i, w in enumerate("thirty forty fifty sixty seventy eighty ninety".split(), 3)}
)
NUMBER_WORDS["hundred"] = "100"
YES = {"yes", "y", "yeah", "yep", "true", "correct", "right", "affirmative"}
NO = {"no", "n", "nope", "false", "incorrect", "wrong", "negative"}
ARTICLES = {"a", "an", "the"}
LETTERS = "ABCDEFGHIJ"

_ANSWER_TAG = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.S | re.I)
_ANSWER_PHRASE = re.compile(r"(?:final answer|answer)\s*(?:is|:)\s*(.+)", re.I)
_LETTER = re.compile(r"^\(?([A-J])\)?(?:[.):]\s*(.*))?$")


def extract_answer(text: str) -> str:
    """The answer part of a model's output: the last ``<answer>`` block, else "answer is X", else the last line.

    >>> extract_answer("<think>...</think> <answer> red </answer>")
    'red'
    >>> extract_answer("Let me look.\\nSo the answer is 4.")
    '4.'
    """
    text = re.sub(r"<think>.*?(</think>|$)", " ", text or "", flags=re.S | re.I).strip()
    tags = _ANSWER_TAG.findall(text)
    if tags:
        return tags[-1].strip()
    phrases = _ANSWER_PHRASE.findall(text)
    if phrases:
        return phrases[-1].strip().splitlines()[0].strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def normalize(text: str) -> str:
    """Case, punctuation, articles, number words, yes/no variants and times folded to one canonical string.

    >>> normalize("  The Three. "), normalize("Yeah!"), normalize("03:05"), normalize("4.0"), normalize("1,000")
    ('3', 'yes', '3:05', '4', '1000')
    """
    t = text.strip().lower()
    t = re.sub(r"(?<=\d),(?=\d{3}\b)", "", t)  # 1,000 -> 1000
    t = re.sub(r"\b0(\d):(\d\d)\b", r"\1:\2", t)  # 03:05 -> 3:05
    t = re.sub(r"(?<=\d)\.0+\b", "", t)  # 4.0 -> 4
    t = re.sub(r"[^\w\s:.\-]", " ", t)  # drop punctuation but keep times, decimals, negatives
    t = re.sub(r"(?<!\d)[.:\-]|[.:\-](?!\d)", " ", t)
    words = [NUMBER_WORDS.get(w, w) for w in t.split() if w not in ARTICLES]
    t = " ".join(words)
    if t in YES:
        return "yes"
    if t in NO:
        return "no"
    return t


def choice_index(text: str, choices: list[str]) -> int | None:
    """Which choice a prediction names: a letter ("B", "(B)", "B. square") or the choice's text."""
    raw = text.strip().strip("*").strip()
    m = _LETTER.match(raw)
    if m and LETTERS.index(m.group(1)) < len(choices):
        return LETTERS.index(m.group(1))
    norm = [normalize(c) for c in choices]
    t = normalize(raw)
    if t in norm:
        return norm.index(t)
    if len(t) == 1 and t.upper() in LETTERS[: len(choices)]:  # a lower-case letter
        return LETTERS.index(t.upper())
    return None


def score(prediction: str, answer: str, choices: list[str] | None = None) -> float:
    """1.0 when ``prediction`` (raw model output or an extracted answer) means ``answer``, else 0.0."""
    pred = extract_answer(prediction)
    if choices:
        want = choice_index(answer, choices)
        if want is not None:
            return float(choice_index(pred, choices) == want)
    return float(normalize(pred) == normalize(answer) and normalize(answer) != "")
