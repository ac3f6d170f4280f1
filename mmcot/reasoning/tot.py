"""tot: tree of thoughts, breadth-first with a beam (Yao et al., 2023). A thought is one line of the model's
``<think>`` block. Each level expands every kept state into ``breadth`` sampled next thoughts (one request with
``n=breadth`` per state, the states fanned out in parallel with LangGraph ``Send`` and merged into one backend
batch), scores the new states, prunes those below ``prune`` and keeps the best ``beam``. After ``depth`` levels the
kept states are finished into answers; the answer is the best-scored one's (or a score-weighted vote). A state
whose finish ends still inside the thought is asked for its answer: the thought closed, the answer opened.

Values: ``self`` asks the model whether the reasoning so far is right (the yes rate over ``judge_samples``);
``rollout`` finishes each state greedily and scores it by how many sibling rollouts reach the same answer (a
Monte-Carlo value); or a verifier by dotted path (rl's process reward model).

    mmcot solve --image scene.png --question "How many circles are there?" --strategy tot --breadth 4 --depth 3
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mmcot.agent.graph import Builder, Strategy
from mmcot.agent.nodes import Step
from mmcot.agent.state import Context, State
from mmcot.reasoning import prompts, verify

FORCED_TOKENS = 16  # an answer asked for after the thought: a word, a number, a short phrase


@dataclass
class Config:
    breadth: int = field(default=4, metadata={"help": "next thoughts sampled from each kept state"})
    beam: int = field(default=2, metadata={"help": "states kept per level"})
    depth: int = field(default=3, metadata={"help": "levels of thoughts before the answer"})
    prune: float = field(default=0.0, metadata={"help": "drop states scored below this (0: keep all up to beam)"})
    value: str = field(default="self", metadata={"help": "'self', 'rollout' or a verifier pkg.mod:obj"})
    judge_samples: int = field(default=1, metadata={"help": "verdicts sampled per state by the 'self' value"})
    final: str = field(default="best", metadata={"help": "'best' (top-scored state) or 'vote' (score-weighted)"})
    temperature: float = field(default=0.8, metadata={"help": "sampling temperature of thoughts"})
    step_tokens: int = field(default=64, metadata={"help": "tokens per thought"})
    max_tokens: int = field(default=256, metadata={"help": "tokens to finish a state into an answer"})
    seed: int | None = field(default=None, metadata={"help": "sampling seed of each state's thoughts (None: random)"})

    def __post_init__(self) -> None:
        if min(self.breadth, self.beam, self.depth, self.judge_samples) < 1:
            raise ValueError("breadth, beam, depth and judge_samples must be at least 1")
        if self.final not in ("best", "vote"):
            raise ValueError(f"final must be 'best' or 'vote', got {self.final!r}")
        if self.value != "rollout":
            verify.load_verifier(self.value)


def expand(state: State, ctx: Context) -> str | list:
    """Fan out: one branch per kept, unfinished state; after the last level, conclude."""
    work = state.get("work") or {}
    frontier = work.get("frontier", [{"node": None, "text": ""}])
    if work.get("depth", 0) >= ctx.config.depth or not frontier:
        return "conclude"
    return [Builder.send("expand_one", state, {"path": p}) for p in frontier]


def expand_one(state: State, step: Step) -> dict:
    """Sample ``breadth`` next thoughts of one state (one request, ``n=breadth``: one prefill)."""
    cfg: Config = step.config
    path = state["branch"]["path"]
    seed = None if cfg.seed is None else cfg.seed + 1000 * (path["node"] or 0)  # one seed per state
    req = prompts.request(
        step.render(state["messages"]), cfg.step_tokens, cfg.temperature, n=cfg.breadth,
        prefix=prompts.THINK + path["text"], stop=["\n"], seed=seed,
    )  # fmt: skip
    children, seen = [], set()
    for c in step.generate([req])[0]:
        line = c.text.strip()
        if not line or line in seen:
            continue  # an empty or repeated thought adds nothing to search
        seen.add(line)
        final = prompts.END_THINK in line or prompts.ANSWER in line
        text = path["text"] + line + ("" if final else "\n")
        parents = [path["node"]] if path["node"] is not None else None
        node = step.node("thought", line, parents=parents, tokens=c.completion_tokens)
        answer = prompts.answer_of(prompts.THINK + text) if final else None
        children.append({"node": node, "text": text, "final": final, "answer": answer})
    return {"results": children}


def evaluate(state: State, step: Step) -> dict:
    """Score the new states, prune, keep the best ``beam``; remember the best answer so far."""
    cfg: Config = step.config
    work = state.get("work") or {}
    children = state.get("results") or []
    if cfg.value == "rollout":
        _rollout(state, step, [c for c in children if not c["final"]])
        answers = [c["answer"] for c in children]
        _, tally = prompts.vote(answers, state.get("choices"))
        total = sum(tally.values()) or 1
        for c in children:
            c["score"] = tally.get(prompts.vote_key(c["answer"], state.get("choices")), 0) / total
            step.node("score", f"{c['score']:.2f}", parents=[c["node"]], score=c["score"], meta={"by": "rollout"})
    else:
        texts = [prompts.THINK + c["text"] for c in children]
        scores = verify.score(state, step, texts, [c["node"] for c in children], cfg.value, cfg.judge_samples)
        for c, s in zip(children, scores, strict=True):
            c["score"] = s
    ranked = sorted(children, key=lambda c: -c["score"])
    kept = [c for c in ranked if c["score"] >= cfg.prune][: cfg.beam] or ranked[:1]  # pruning never empties the tree
    done = work.get("done", []) + [c for c in kept if c["final"]]
    out = {
        "results": None,
        "work": {"frontier": [c for c in kept if not c["final"]], "done": done, "depth": work.get("depth", 0) + 1},
    }
    scored = [c for c in done + kept if c.get("answer")]
    if scored:
        best = max(scored, key=lambda c: c["score"])
        out.update(answer=best["answer"], reply=prompts.THINK + best.get("rollout", best["text"]))
    return out


def conclude(state: State, step: Step) -> dict:
    """Finish every kept state into an answer (one batched call) and pick the final answer."""
    cfg: Config = step.config
    work = state.get("work") or {}
    paths = work.get("done", []) + work.get("frontier", [])
    if not paths:  # every sampled thought was empty or a repeat: finish from the root, as plain CoT would
        paths = [{"node": None, "text": "", "score": 0.0}]
    _rollout(state, step, [p for p in paths if not p.get("answer")])
    paths = [p for p in paths if p.get("answer")]
    if not paths:
        return {}
    if cfg.final == "vote":
        answer, _ = prompts.vote([p["answer"] for p in paths], state.get("choices"), [p["score"] for p in paths])
        best = next(p for p in paths if p["answer"] == answer)
    else:
        best = max(paths, key=lambda p: p["score"])
    return {"answer": best["answer"], "reply": prompts.THINK + best.get("rollout", best["text"])}


def _rollout(state: State, step: Step, paths: list[dict]) -> None:
    """Finish ``paths`` greedily in one batched call, setting each one's ``answer`` and ``rollout`` text."""
    if not paths:
        return
    messages = step.render(state["messages"])
    reqs = [prompts.request(messages, step.config.max_tokens, prefix=prompts.THINK + p["text"]) for p in paths]
    for p, (c,) in zip(paths, step.generate(reqs), strict=True):
        p["rollout"] = p["text"] + c.text
        p["answer"] = prompts.answer_of(prompts.THINK + p["rollout"])
        parents = [p["node"]] if p["node"] is not None else None
        p["last"] = step.node("thought", c.text, parents=parents, tokens=c.completion_tokens, meta={"rollout": True})
    _force_answers(messages, step, [p for p in paths if not p["answer"]])


def _force_answers(messages: list[dict], step: Step, paths: list[dict]) -> None:
    """Rollouts that ended, or ran out of tokens, still inside the thought get their answer asked for: the thought
    is closed and the answer opened after it (one batched call), as budget forcing ends a long thought."""
    if not paths:
        return
    close = prompts.END_THINK + prompts.ANSWER
    reqs = [
        prompts.request(messages, FORCED_TOKENS, prefix=prompts.THINK + p["rollout"] + close, stop=["</answer>"])
        for p in paths
    ]
    for p, (c,) in zip(paths, step.generate(reqs), strict=True):
        p["rollout"] += close + c.text.split("</answer>")[0] + "</answer>"
        p["answer"] = prompts.answer_of(prompts.ANSWER + c.text)
        step.node("thought", close + c.text, parents=[p["last"]], tokens=c.completion_tokens, meta={"forced": True})


def build(g: Builder) -> None:
    g.node("expand_one", expand_one)
    g.node("evaluate", evaluate)
    g.node("conclude", conclude)
    g.edge("start", expand)
    g.edge("expand_one", "evaluate")
    g.edge("evaluate", expand)
    g.edge("conclude", "finish")


STRATEGY = Strategy("tot", "tree of thoughts: expand thoughts in parallel, score, keep a beam, answer", Config, build)
