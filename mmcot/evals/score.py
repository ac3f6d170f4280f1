"""The one definition of a correct answer. Evals, answer extraction in strategies and RL's outcome reward call it.

>>> score("<think>two blue, one red</think><answer>Three</answer>", "3")
1.0
>>> score("The answer is (B).", "square", choices=["circle", "square", "triangle"])
1.0
>>> score("yep", "yes"), score("no", "yes")
(1.0, 0.0)

Matching is exact after :func:`normalize` (no partial credit, no "the answer is somewhere in the text"): a
prediction of "3 circles" does not match "3". Times fold to a 12-hour clock, since analog clocks have no am/pm.
"""

from __future__ import annotations

import re
from decimal import Decimal

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
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_ANSWER_PHRASE = re.compile(r"(?:final answer|answer)\s*(?:is|:)\s*(.+)", re.I)
_LETTER = re.compile(r"^(?:option\s+|choice\s+)?\(?([A-J])(?:[.:)]+\s*(.*))?$", re.I)
_YES_NO_LEAD = re.compile(r"^(yes|yeah|yep|no|nope)\s*[,.;!]")  # "Yes, it is." -> yes
_CLOCK = re.compile(r"\b(\d{1,2}):(\d\d)\b(?:\s*[ap]\.?\s?m\b\.?)?")
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")


def extract_answer(text: str) -> str:
    """The answer part of a model's output: the last ``<answer>`` block, else the last ``\\boxed{}``, else
    "answer is X" (up to the end of its sentence), else the last line.

    >>> extract_answer("<think>...</think> <answer> red </answer>")
    'red'
    >>> extract_answer("Let me look.\\nSo the answer is 4, since I see four.")
    '4'
    >>> extract_answer("shape</answer><tool_call>{")  # the prompt opened <answer>; a closed block ends the answer
    'shape'
    """
    text = re.sub(r"<think>.*?(</think>|$)", " ", text or "", flags=re.S | re.I).strip()
    tags = _ANSWER_TAG.findall(text)
    if tags:
        return tags[-1].split("<")[0].strip() or tags[-1].strip()  # an unclosed block ends at the next tag
    if re.search(r"</answer>", text, re.I):
        return re.split(r"</answer>", text, flags=re.I)[0].strip()
    boxed = _BOXED.findall(text)
    if boxed:
        return boxed[-1].strip()
    phrases = _ANSWER_PHRASE.findall(text)
    if phrases:
        line = phrases[-1].strip().splitlines()[0]
        return re.split(r"[.,;!](?:\s|$)", line)[0].strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _clock(m: re.Match) -> str:
    """h:mm on a 12-hour clock: 03:05, 15:05 and 3:05 pm are all 3:05; 0:30 is 12:30."""
    return f"{int(m.group(1)) % 12 or 12}:{m.group(2) or '00'}"


def _number(token: str) -> str:
    """One spelling per number: 05 -> 5, 4.0 -> 4, 1.50 -> 1.5, -0 -> 0."""
    d = Decimal(token)
    return "0" if d == 0 else format(d.normalize(), "f")


def _fold_number_words(words: list[str]) -> list[str]:
    """Number words to digits, merging compounds: "twenty one" -> 21, "one hundred five" -> 105."""
    out: list[str] = []
    spoken = False  # whether out[-1] came from number words, so the next word may extend it
    for w in words:
        if w not in NUMBER_WORDS:
            out.append(w)
            spoken = False
            continue
        v = int(NUMBER_WORDS[w])
        if spoken:
            p = int(out[-1])
            if v == 100 and 0 < p < 10:
                out[-1] = str(p * 100)
                continue
            if (p >= 100 and p % 100 == 0 and v < 100) or (20 <= p % 100 <= 90 and p % 10 == 0 and 0 < v < 10):
                out[-1] = str(p + v)
                continue
        out.append(str(v))
        spoken = True
    return out


def normalize(text: str) -> str:
    """Case, punctuation, articles, number words, number spellings, yes/no variants and times folded to one
    canonical string.

    >>> normalize("  The Three. "), normalize("Yeah!"), normalize("03:05"), normalize("4.0"), normalize("1,000")
    ('3', 'yes', '3:05', '4', '1000')
    >>> normalize("Twenty-one"), normalize("-3"), normalize("15:05 pm"), normalize("three o'clock"), normalize("A")
    ('21', '-3', '3:05', '3:00', 'a')
    """
    t = text.strip().lower().replace("\u2212", "-")
    lead = _YES_NO_LEAD.match(t)
    if lead:
        return "yes" if lead.group(1) in YES else "no"
    t = re.sub(r"(?<=\d),(?=\d{3}\b)", "", t)  # 1,000 -> 1000
    t = re.sub(r"(?<![\w.])\.(?=\d)", "0.", t)  # .5 -> 0.5
    t = _CLOCK.sub(_clock, t)
    t = re.sub(r"[^\w\s:.\-]", " ", t)  # drop punctuation but keep times, decimals, negatives
    t = re.sub(r"(?<!\d)[.:]|[.:](?!\d)|(?<=\S)-|-(?!\d)", " ", t)  # ... unless they are not part of a number
    words = t.split()
    words = [w for w in words if w not in ARTICLES] or words  # "a" alone is an answer (a letter), not an article
    words = [_number(w) if _NUMBER.match(w) else w for w in _fold_number_words(words)]
    t = re.sub(r"\b(\d{1,2}) o ?clock\b()", _clock, " ".join(words))  # three o'clock -> 3:00
    if t in YES:
        return "yes"
    if t in NO:
        return "no"
    return t


def choice_index(text: str, choices: list[str]) -> int | None:
    """Which choice a prediction names: a letter ("B", "(B)", "B. square", "option B") or the choice's text."""
    raw = text.strip().strip("*").strip()
    m = _LETTER.match(raw)
    if m and (m.group(1).isupper() or m.group(2) is not None) and LETTERS.index(m.group(1).upper()) < len(choices):
        return LETTERS.index(m.group(1).upper())
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
