"""Prompts and answer parsing for the strategies, kept apart from their search code.

Every prompt is a chat conversation in the Hugging Face / OpenAI shape (``mmcot.models.backend``); the wording
matches what the shipped models were fine-tuned on (``mmcot/models/sft``): ``<think>...</think><answer>...</answer>``
rationales, scene descriptions, yes/no existence questions and ``<tool_call>`` traces. Answers are extracted and
compared with the evals scorer's own functions (``mmcot.evals.score``), so a vote and a score agree on what "the same
answer" means.
"""

from __future__ import annotations

import re
from collections import Counter

from mmcot.agent.nodes import answer_of
from mmcot.evals.score import choice_index, normalize
from mmcot.models.backend import Request, Sampling, user_message
from mmcot.tools.detect import with_article

THINK, END_THINK = "<think>", "</think>"
ANSWER = "<answer>"
DESCRIBE = "Describe the image."
DIRECT = "{question}"
JUDGE = "Question: {question}\nProposed reasoning and answer: {candidate}\nIs this answer correct? Answer yes or no."
EXISTS = "Is there {target} in this image?"
AGGREGATE = (
    "{question}\nHere are {k} attempts at this question:\n{attempts}\n"
    "Combine what they get right into one careful answer."
)
REFINE = "{question}\nA previous attempt:\n{attempt}\nCheck it against the image and give a corrected answer."
FROM_DESCRIPTION = "Description of the image: {description}\n{question}"
STAGES = {
    "identify": "First, the objects the question is about:",
    "locate": "Where they are:",
    "relate": "How they relate to the question:",
}
ZOOMED = "This is a zoomed-in view of part of the image (box {box} of the original)."
QUARTER = "It lies in the {where} quarter of the image."
FOUND = "Searching the image found {target} here."
NOT_FOUND = "Searching the image did not find {target}; this is the closest match."


# ---- conversations ----


def text_of(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or [] if p.get("type") == "text")


def with_question(messages: list[dict], text: str) -> list[dict]:
    """The conversation with its last user message's text replaced by ``text`` (its images kept)."""
    last = messages[-1]
    content = last.get("content")
    parts = [p for p in content if p.get("type") != "text"] if isinstance(content, list) else []
    return messages[:-1] + [{**last, "content": parts + [{"type": "text", "text": text}]}]


def without_images(messages: list[dict]) -> list[dict]:
    out = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            m = {**m, "content": [p for p in content if p.get("type") != "image"]}
        out.append(m)
    return out


def direct_messages(messages: list[dict]) -> list[dict]:
    return with_question(messages, DIRECT.format(question=text_of(messages[-1])))


def judge_messages(messages: list[dict], question: str, candidate: str) -> list[dict]:
    return with_question(messages, JUDGE.format(question=question, candidate=candidate.strip()))


def aggregate_messages(messages: list[dict], question: str, attempts: list[str]) -> list[dict]:
    listing = "\n".join(f"{i + 1}. {a.strip()}" for i, a in enumerate(attempts))
    return with_question(messages, AGGREGATE.format(question=question, k=len(attempts), attempts=listing))


def refine_messages(messages: list[dict], question: str, attempt: str) -> list[dict]:
    return with_question(messages, REFINE.format(question=question, attempt=attempt.strip()))


def rationale_reply(rationale: list[str], answer: str) -> str:
    """A worked answer in the fine-tuning format: the rationale's steps one per line in <think>, then <answer>."""
    return f"{THINK}{chr(10).join(rationale)}{END_THINK}{ANSWER}{answer}</answer>"


def few_shot(category: str, k: int, seed: int = 0) -> list[dict]:
    """``k`` worked examples (user turn with image, assistant turn with rationale) from the puzzle family
    ``category``, or from all families when the category is not one. Drawn from the train split."""
    from mmcot.evals.puzzles import FAMILIES, generate

    families = [category] if category in FAMILIES else list(FAMILIES)
    items = generate(families, n=-(-k // len(families)), seed=seed, split="train")
    items = sorted(items, key=lambda it: it.id.rsplit("-", 1)[-1])[:k]  # one family after another
    shots = []
    for it in items:
        shots += [
            user_message(it.prompt(), it.images),
            {"role": "assistant", "content": rationale_reply(it.rationale, it.answer)},
        ]
    return shots


def request(
    messages: list[dict],
    max_tokens: int,
    temperature: float = 0.0,
    n: int = 1,
    prefix: str = "",
    stop: list[str] | None = None,
    top_p: float = 1.0,
    seed: int | None = None,
) -> Request:
    sampling = Sampling(max_tokens=max_tokens, temperature=temperature, top_p=top_p, stop=list(stop or []), seed=seed)
    return Request(messages=messages, n=n, sampling=sampling, prefix=prefix)


def think_prefix(think: bool) -> str:
    return THINK if think else ""


# ---- answers ----


def vote_key(answer: str, choices: list[str] | None) -> str:
    """Answers that the scorer would treat as the same get the same key (a choice's letter, or the normal form)."""
    if choices:
        k = choice_index(answer, choices)
        if k is not None:
            return "ABCDEFGHIJ"[k]
    return normalize(answer)


def vote(answers: list[str], choices: list[str] | None, weights: list[float] | None = None) -> tuple[str, dict]:
    """Weighted majority over answers; ties go to the earliest. Returns (a representative answer, tally by key)."""
    tally: Counter = Counter()
    first: dict[str, str] = {}
    for i, a in enumerate(answers):
        key = vote_key(a, choices)
        if not key:
            continue
        tally[key] += 1.0 if weights is None else weights[i]
        first.setdefault(key, a)
    if not tally:
        return "", {}
    best = max(tally, key=lambda k: (tally[k], -list(first).index(k)))
    return first[best], dict(tally)


def yes_score(texts: list[str]) -> float:
    """The fraction of ``texts`` that answer yes."""
    return sum(normalize(answer_of(t)) == "yes" for t in texts) / max(1, len(texts))


# ---- region search ----

_SMALL = re.compile(
    r"\b(small|tiny|little)\s+((?:[a-z]+\s+){0,2}?)(circle|square|triangle|star|object|shape|thing)s?\b", re.I
)
_ASKED = re.compile(
    r"(?:is there|are there|do you see|can you (?:see|find)|does (?:the|this) (?:image|picture) contain|find|locate|"
    r"where is|what color is|what colour is|what shape is)\s+(.+)",
    re.I,
)
_TAIL = re.compile(
    r"\s+(?:in|on|of)\s+(?:this|the)\s+(?:image|picture|scene|photo)\b.*|\s+(?:anywhere|somewhere)\b.*", re.I
)


_WHETHER = re.compile(
    r"^(?:look closely:\s*)?(?:is there|are there|do you see|can you (?:see|find)|does (?:the|this) (?:image|picture) "
    r"(?:contain|have|show))\b",
    re.I,
)
_WHERE = re.compile(r"\b(?:where is|where are|which (?:quadrant|quarter|corner|part))\b|^locate\b", re.I)


def asks_where_or_whether(question: str) -> str:
    """ "where" when a question asks where something is, "whether" when it asks if it is there, else "".

    >>> questions = ["Where is the tiny red square?", "Does the picture contain a tiny red square?", "What color is it?"]
    >>> [asks_where_or_whether(q) for q in questions]
    ['where', 'whether', '']
    """
    text = " ".join((question or "").split())
    return "whether" if _WHETHER.search(text) else "where" if _WHERE.search(text) else ""


def search_target(question: str) -> str:
    """What a small-object question asks about, as the noun phrase of the existence question.

    >>> search_target("Find the tiny red triangle in the image. What color is it?")
    'a tiny red triangle'
    >>> search_target("What color is the small square?"), search_target("Is there a dog in this picture?")
    ('a small square', 'a dog')
    """
    text = (question or "").splitlines()[0] if question else ""
    m = _SMALL.search(text)
    if m:
        phrase = " ".join(w for w in (m.group(1), m.group(2).strip(), m.group(3)) if w).lower()
    else:
        sentence = next((s for s in re.split(r"(?<=[.?!:])\s+", text) if _ASKED.search(s)), text)
        m = _ASKED.search(sentence)
        phrase = _TAIL.sub("", (m.group(1) if m else sentence)).strip(" ?.!:")
        phrase = re.sub(r"^(?:the|a|an|any)\s+", "", phrase, flags=re.I)
    return with_article(phrase)
