"""The ``mmcot`` command line. The only module that knows every subcommand; each imports its code lazily."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional  # noqa: F401  (Optional keeps typer happy on 3.11)

import typer

app = typer.Typer(
    help="mmcot: multimodal chain-of-thought reasoning: puzzles, a locally trained VLM, tools, strategies and RL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
train_app = typer.Typer(
    help="Train the model: tokenizer, vision, align, sft, detector (and RL: grpo, dpo, prm).", no_args_is_help=True
)
app.add_typer(train_app, name="train")

# The --model option of the commands that run the agent (solve, chat, serve): one spelling, one default.
AgentModel = Annotated[
    str | None,
    typer.Option(help="Model spec: tiny, smol, NAME-think, a folder, openai:URL#model (default smol, else tiny)."),
]


def fail(message: str, code: int = 1) -> None:
    """Print a clear error (never a traceback) and exit."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


eval_app = typer.Typer(
    help="Evaluate a solver (a baseline, or --model with --strategy) on puzzles, items.jsonl, a TSV or easy-VQA.\n\n"
    "Writes results.jsonl, summary.json and a report (Markdown, PNG, HTML) under --out; rerunning resumes. "
    "`mmcot eval compare RUN_A RUN_B ...` puts finished runs side by side.",
    invoke_without_command=True,
    subcommand_metavar="[compare RUN_A RUN_B ...]",
)
app.add_typer(eval_app, name="eval")


@eval_app.callback()
def eval_run(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option(help="Run folder (required): results, summary and report.")] = None,
    suite: Annotated[bool, typer.Option("--suite", help="The built-in puzzle suite (the default source).")] = False,
    data: Annotated[
        Path | None, typer.Option(help="An items.jsonl (or a folder holding one) or a VLMEvalKit-style .tsv.")
    ] = None,
    easy_vqa: Annotated[bool, typer.Option("--easy-vqa", help="easy-VQA from the easy-vqa package.")] = False,
    family: Annotated[
        list[str] | None, typer.Option(help="Suite: puzzle family (repeat it, or comma-separate); default all.")
    ] = None,
    n: Annotated[int, typer.Option(help="Suite: puzzles per family.")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the suite's puzzles and of the random baseline.")] = 0,
    split: Annotated[str, typer.Option(help="Suite: train, val or test. easy-VQA: train or test.")] = "test",
    difficulty: Annotated[int | None, typer.Option(help="Suite: 1, 2 or 3 (default: all three).")] = None,
    solver: Annotated[
        str | None, typer.Option(help="random, majority or pkg.mod:factory (default random without --model).")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model spec: tiny, smol, a folder, openai:URL#model.")] = None,
    strategy: Annotated[str | None, typer.Option(help="Reasoning strategy for --model (default cot).")] = None,
    option: Annotated[
        list[str] | None, typer.Option(help="KEY=VALUE passed to the strategy (VALUE read as JSON if it can be).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Items solved concurrently.")] = 8,
    limit: Annotated[int | None, typer.Option(help="Evaluate only the first N items.")] = None,
    train_data: Annotated[
        Path | None, typer.Option(help="Majority baseline: a .jsonl/.tsv whose answers it counts.")
    ] = None,
    fit_n: Annotated[int, typer.Option(help="Majority baseline on the suite: train puzzles per family.")] = 100,
    blind: Annotated[
        bool, typer.Option("--blind", help="Blind control: each item gets another item's images (same category).")
    ] = False,
) -> None:
    """Evaluate a solver and write a run folder (see `mmcot eval --help`)."""
    if ctx.invoked_subcommand:
        return
    import json

    from mmcot.evals.harness import EvalConfig, RunError, run

    if suite + (data is not None) + easy_vqa > 1:
        fail("choose one source: --suite, --data FILE or --easy-vqa")
    if out is None:
        fail("--out DIR is required: the run folder for results.jsonl, summary.json and the report")
    options = {}
    for item in option or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--option {item!r}: expected KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    try:
        cfg = EvalConfig(
            out=str(out),
            data=str(data) if data is not None else "easy-vqa" if easy_vqa else "suite",
            families=",".join(family) if family else "all",
            n=n,
            seed=seed,
            split=split,
            difficulty=difficulty,
            solver=solver or "",
            model=model or "",
            strategy=strategy or "",
            strategy_options=options,
            batch_size=batch_size,
            limit=limit,
            train_data=str(train_data or ""),
            fit_n=fit_n,
            blind=blind,
        )
        summary = run(cfg)
    except (ValueError, RunError, ImportError, OSError) as e:
        fail(str(e))
    except KeyboardInterrupt:
        fail(f"interrupted: finished items are in {out}/results.jsonl; run the same command again to resume", 130)
    from mmcot.evals.report import markdown

    typer.echo(markdown(summary))
    for problem in summary["skipped"][:20]:
        typer.secho(f"skipped: {problem}", fg=typer.colors.YELLOW, err=True)
    if len(summary["skipped"]) > 20:
        typer.secho(f"... and {len(summary['skipped']) - 20} more (summary.json lists them all)", err=True)
    typer.echo(f"report: {out / 'report.html'}")


@eval_app.command("compare")
def eval_compare(
    runs: Annotated[list[Path], typer.Argument(help="Run folders written by mmcot eval --out (two or more).")],
    out: Annotated[Path | None, typer.Option(help="Also write compare.md, compare.html, compare.png here.")] = None,
) -> None:
    """Put eval runs side by side: accuracy per category with 95% intervals, and costs per item."""
    from mmcot.evals.harness import RunError
    from mmcot.evals.report import compare

    try:
        typer.echo(compare(runs, out))
    except RunError as e:
        fail(str(e))
    if out is not None:
        typer.echo(f"report: {out / 'compare.html'}")


@app.command()
def puzzles(
    family: Annotated[
        str, typer.Option(help="'all', a family, comma-separated families, or a dotted path pkg.mod:fn.")
    ] = "all",
    n: Annotated[int, typer.Option(help="Puzzles per family.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed; the same seed, split and index always give the same puzzle.")] = 0,
    split: Annotated[str, typer.Option(help="train, val or test (disjoint seed ranges).")] = "test",
    difficulty: Annotated[int | None, typer.Option(help="1, 2 or 3 (default: cycle through all three).")] = None,
    out: Annotated[Path, typer.Option(help="Folder for items.jsonl and images/.")] = Path("runs/puzzles"),
    hf: Annotated[bool, typer.Option("--hf", help="Also save a Hugging Face dataset to OUT/hf.")] = False,
    show: Annotated[
        bool, typer.Option("--show", help="Print a sample table and write OUT/contact_sheet.png.")
    ] = False,
    list_families: Annotated[bool, typer.Option("--list", help="List the puzzle families and exit.")] = False,
) -> None:
    """Generate procedural visual puzzles with exact answers, metadata and rationales into OUT/items.jsonl."""
    from collections import Counter

    from mmcot.evals.item import save_items
    from mmcot.evals.puzzles import FAMILIES, describe, generate

    if list_families:
        for name, fn in FAMILIES.items():
            typer.echo(f"{name:<13} {describe(fn)}")
        return
    try:
        items = generate(family, n=n, seed=seed, split=split, difficulty=difficulty)
        path = save_items(items, out)
    except (ValueError, TypeError) as e:
        fail(str(e))
    except OSError as e:
        fail(f"cannot write to {out}: {e}")
    counts = Counter(item.category for item in items)
    typer.echo(f"wrote {len(items)} puzzles to {path} (images in {out / 'images'})")
    for name, k in counts.items():
        typer.echo(f"  {name:<13} {k}")
    if hf:
        from mmcot.evals.puzzles import to_hf_dataset

        to_hf_dataset(items).save_to_disk(str(out / "hf"))
        typer.echo(f"Hugging Face dataset: {out / 'hf'} (datasets.load_from_disk)")
    if show and items:
        from rich.console import Console

        from mmcot.evals.puzzles.show import contact_sheet, sample_table

        Console().print(sample_table(items))
        typer.echo(f"contact sheet: {contact_sheet(items, out / 'contact_sheet.png')}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def solve(
    ctx: typer.Context,
    question: Annotated[str | None, typer.Option("--question", "-q", help="The question.")] = None,
    image: Annotated[list[Path] | None, typer.Option(help="An image file (repeat for several).")] = None,
    strategy: Annotated[str, typer.Option(help="A strategy from `mmcot strategies`, or pkg.mod:obj.")] = "cot",
    model: AgentModel = None,
    choice: Annotated[list[str] | None, typer.Option(help="An answer option (repeat: lettered A, B, ...).")] = None,
    tools: Annotated[
        str | None, typer.Option(help="Comma-separated tools (image-loop, react); default theirs.")
    ] = None,
    budget_steps: Annotated[int, typer.Option(help="Budget: controller steps.")] = 100,
    budget_tokens: Annotated[int, typer.Option(help="Budget: generated tokens, all model calls together.")] = 8192,
    budget_seconds: Annotated[float, typer.Option(help="Budget: wall-clock seconds.")] = 600.0,
    thread: Annotated[
        str | None, typer.Option(help="Conversation id: this question is its next turn (checkpointed in SQLite).")
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option(help="SQLite file of --thread (default ~/.mmcot/threads.sqlite).")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Finish the --thread turn a dead process left.")] = False,
    out: Annotated[Path | None, typer.Option(help="Also write trace.json and its images to this folder.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the trace as JSON (images as data URLs).")] = False,
) -> None:
    """Solve one visual question with a reasoning strategy and print the trace and the answer.

    Strategy knobs follow as --NAME VALUE (see `mmcot strategies`), e.g. `--strategy tot --breadth 4 --depth 3`."""
    import sys

    from mmcot.reasoning import get_strategy, make_config, parse_knobs
    from mmcot.reasoning.show import printer, render, summary

    try:
        knobs = parse_knobs(ctx.args)
        make_config(get_strategy(strategy), knobs)  # bad knobs fail before the model loads
    except ValueError as e:
        fail(str(e))
    if resume and (question or image):
        fail("--resume continues an unfinished turn; give --thread ID without --question or --image")
    if resume and not thread:
        fail("--resume needs --thread ID")
    if not resume and not question:
        fail("give --question (and usually --image)")
    if choice and len(choice) < 2:
        fail("give at least two --choice options, or none")
    if choice:
        question = question + "\n" + "\n".join(f"{'ABCDEFGHIJ'[i]}. {c}" for i, c in enumerate(choice))
    from mmcot.reasoning.solve import solve as run_solve

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    try:
        trace = run_solve(
            list(image or []) or None,
            question,
            strategy=strategy,
            model=model,
            tools=tools,
            budget={"max_steps": budget_steps, "max_tokens": budget_tokens, "max_seconds": budget_seconds},
            emit=None if json_out else printer(write),
            thread=thread,
            checkpoint=checkpoint,
            **knobs,
        )
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except (ValueError, RuntimeError, OSError) as e:
        fail(str(e))
    if out is not None:
        (out / "trace.json").parent.mkdir(parents=True, exist_ok=True)
        (out / "trace.json").write_text(trace.to_json(image_dir=out / "images"))
    if json_out:
        typer.echo(trace.to_json())
    else:
        typer.echo(summary(trace) if trace.nodes else render(trace))
        if out is not None:
            typer.echo(f"trace: {out / 'trace.json'}")
    if trace.stop_reason.startswith("error"):
        fail(trace.stop_reason)


@app.command()
def strategies() -> None:
    """List the reasoning strategies with a one-line description and their knobs (--NAME DEFAULT)."""
    from mmcot.reasoning.show import strategies_table

    typer.echo(strategies_table())


@app.command()
def index(
    folder: Annotated[Path, typer.Argument(help="Folder of .txt and .md documents (searched recursively).")],
    db: Annotated[
        Path | None, typer.Option(help="Index file (default: $MMCOT_INDEX or ~/.cache/mmcot/index.sqlite).")
    ] = None,
    search: Annotated[str | None, typer.Option(help="Then search the index for this and print the results.")] = None,
) -> None:
    """Build or update the offline search index (SQLite FTS5) that the search tool uses when there is no network."""
    from rich.console import Console
    from rich.progress import Progress

    from mmcot.tools.local_index import LocalIndexBackend, build_index, default_index_path
    from mmcot.tools.search import SearchConfig, SearchError, format_hits

    db = db or default_index_path()
    try:
        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("indexing", total=None)
            stats = build_index(folder, db, progress=lambda n, total: bar.update(task, completed=n, total=total))
        typer.echo(f"{db}: {stats}")
        if search is not None:
            hits = LocalIndexBackend(db).search(search, 5)
            typer.echo(format_hits(search, hits, "local", SearchConfig(backend="local")))
    except SearchError as e:
        fail(str(e))
    except OSError as e:
        fail(f"cannot index {folder} into {db}: {e}")


STAGE = {
    "context_settings": {"allow_extra_args": True, "ignore_unknown_options": True},
    "add_help_option": False,  # --help goes to the stage's own parser, which lists every config field
}


def _stage(stage: str, argv: list[str]) -> None:
    """Run one `mmcot train` stage (model stages and RL jobs alike) and print where its output went."""
    from mmcot.models.presets import ModelError
    from mmcot.models.stage import StageError, run_stage

    try:
        if stage in ("grpo", "dpo", "prm"):
            from mmcot.rl.jobs import run_job as run_stage
        path = run_stage(stage, argv)
    except KeyboardInterrupt:
        fail("interrupted: run the same command again to resume from the last checkpoint", 130)
    except (StageError, ModelError, ValueError, RuntimeError, OSError) as e:
        fail(str(e))
    typer.echo(f"written: {path}")


@train_app.command("tokenizer", **STAGE)
def train_tokenizer(ctx: typer.Context) -> None:
    """Train the tiny preset's byte-level BPE tokenizer on rendered training conversations.
    `--preset tiny --config recipes/NAME.yaml` plus `--FIELD VALUE` overrides (--help lists them)."""
    _stage("tokenizer", ctx.args)


@train_app.command("vision", **STAGE)
def train_vision(ctx: typer.Context) -> None:
    """Pretrain the vision tower on puzzle metadata (per-patch heads and/or CLIP's contrastive loss), check it alone.
    `--preset tiny --config recipes/NAME.yaml` plus `--FIELD VALUE` overrides (transformers' TrainingArguments +
    mmcot's; --help lists them)."""
    _stage("vision", ctx.args)


@train_app.command("align", **STAGE)
def train_align(ctx: typer.Context) -> None:
    """LLaVA stage 1: train the projector alone on image descriptions (tower and language model frozen).
    `--preset tiny|smol --config recipes/NAME.yaml` plus `--FIELD VALUE` overrides (TRL's SFTConfig + mmcot's)."""
    _stage("align", ctx.args)


@train_app.command("sft", **STAGE)
def train_sft(ctx: typer.Context) -> None:
    """LLaVA stage 2: instruction tuning on puzzle QA, descriptions, thinking and tool-using traces (LoRA for smol).
    `--preset tiny|smol --config recipes/NAME.yaml` plus `--FIELD VALUE` overrides (TRL's SFTConfig + mmcot's)."""
    _stage("sft", ctx.args)


@train_app.command("detector", **STAGE)
def train_detector(ctx: typer.Context) -> None:
    """A small-object detector (a small CNN) that region search scores its tiles with; --publish adds it to a model.
    `--config recipes/NAME.yaml [--publish smol]` plus `--FIELD VALUE` overrides (TrainingArguments + mmcot's)."""
    _stage("detector", ctx.args)


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="The user message.")],
    image: Annotated[list[Path] | None, typer.Option(help="An image file before the text (repeatable).")] = None,
    model: Annotated[str, typer.Option(help="Model spec: tiny, smol, a folder, openai:URL#model.")] = "smol",
    system: Annotated[str | None, typer.Option(help="A system message.")] = None,
    n: Annotated[int, typer.Option("-n", help="Samples (they share one prefill).")] = 1,
    temperature: Annotated[float, typer.Option(help="0 is greedy.")] = 0.0,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling mass.")] = 1.0,
    max_tokens: Annotated[int, typer.Option(help="Tokens per sample.")] = 256,
    stop: Annotated[
        list[str] | None, typer.Option(help="A stop string, cut from the text (repeat for several).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the sampling.")] = None,
    prefix: Annotated[str, typer.Option(help="Text the answer is forced to start with (e.g. '<think>').")] = "",
    stream: Annotated[bool, typer.Option("--stream", help="Print the text as it is generated (n=1).")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the completions as JSON with token counts.")] = False,
) -> None:
    """Generate straight from a model backend (no strategy, no tools): n samples, sampling, stop strings, streaming."""
    import dataclasses
    import json

    from mmcot.models.backend import Request, Sampling, load_backend, part_image, user_message

    if stream and n != 1:
        fail("--stream prints one sample; drop -n or --stream")
    try:  # images are checked before the model loads
        images = [part_image(str(p), f"--image {p}") for p in image or []]
        messages = [{"role": "system", "content": system}] if system else []
        messages.append(user_message(prompt, images))
        sampling = Sampling(max_tokens=max_tokens, temperature=temperature, top_p=top_p, stop=stop or [], seed=seed)
        request = Request(messages, n=n, sampling=sampling, prefix=prefix)
        backend = load_backend(model)
        if stream:
            deltas = backend.stream(request)
            for delta in deltas:
                typer.echo(delta, nl=False)
            typer.echo()
            completions = [deltas.completion]
        else:
            [completions] = backend.generate([request])
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except (ValueError, RuntimeError, OSError) as e:
        fail(str(e))
    if json_out:
        typer.echo(json.dumps([dataclasses.asdict(c) for c in completions], indent=2))
    elif not stream:
        for i, c in enumerate(completions):
            if n > 1:
                typer.secho(f"--- sample {i + 1} ({c.completion_tokens} tokens, {c.finish_reason})", dim=True)
            typer.echo(c.text)


@train_app.command("grpo", **STAGE)
def train_grpo(ctx: typer.Context) -> None:
    """RL: GRPO with outcome/format/length/tool/process rewards and multi-turn tool rollouts.
    `--config recipes/NAME.yaml` plus `--FIELD VALUE` overrides (TRL's GRPOConfig + mmcot's; --help lists them)."""
    _stage("grpo", ctx.args)


@train_app.command("dpo", **STAGE)
def train_dpo(ctx: typer.Context) -> None:
    """RL: DPO on preference pairs sampled from the model itself (correct over wrong, higher over lower process
    score). `--config recipes/NAME.yaml` plus `--FIELD VALUE` overrides (TRL's DPOConfig + mmcot's)."""
    _stage("dpo", ctx.args)


@train_app.command("prm", **STAGE)
def train_prm(ctx: typer.Context) -> None:
    """RL: a process reward model trained on Monte-Carlo step labels (Math-Shepherd); it scores best-of-N and tree
    search (`--option verifier=mmcot.rl.prm:Verifier`) and GRPO's 'prm' reward. `--config recipes/NAME.yaml` + overrides."""
    _stage("prm", ctx.args)


@app.command()
def chat(
    prompt: Annotated[
        str | None, typer.Option("--prompt", "-p", help="Answer this once and exit (scriptable).")
    ] = None,
    image: Annotated[
        list[Path] | None, typer.Option(help="An image for the first message (repeat for several).")
    ] = None,
    model: AgentModel = None,
    strategy: Annotated[
        str, typer.Option(help="A strategy from `mmcot strategies` (/strategy changes it).")
    ] = "image-loop",
    option: Annotated[list[str] | None, typer.Option(help="A strategy knob as KEY=VALUE (repeat).")] = None,
    tools: Annotated[
        str | None, typer.Option(help="Comma-separated tools (image-loop, react); default theirs.")
    ] = None,
    resume: Annotated[str | None, typer.Option(help="Continue the session with this id (or id prefix).")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the saved sessions and exit.")] = False,
    plain: Annotated[bool, typer.Option(help="Plain text output, even on a terminal.")] = False,
    thoughts: Annotated[bool, typer.Option(help="Show thoughts in full (they collapse by default).")] = False,
    max_seconds: Annotated[float, typer.Option(help="Time budget of one answer, in seconds.")] = 600.0,
    home: Annotated[Path | None, typer.Option(help="Chat home: sessions.sqlite and session folders.")] = None,
) -> None:
    """Chat in the terminal with images, streaming, thoughts and tool calls; sessions are saved and resume.

    In the chat: /image PATH (or type a path into a message), /strategy, /tools, /model, /thoughts, /trace, /save,
    /reset, /help, /quit. Enter sends, Alt-Enter adds a line, Ctrl-C cancels the answer, Ctrl-D leaves."""
    import time

    from mmcot.agent.chat import ChatConfig, ChatError, list_sessions, parse_option
    from mmcot.agent.chat import main as run_chat

    if list_:
        sessions = list_sessions(str(home or ""))
        for s in sessions:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(s["updated"]))
            settings = s["settings"]
            typer.echo(
                f"{s['id']}  {when}  {s['turns']:3d} turns  {settings.get('model', '?')}/"
                f"{settings.get('strategy', '?')}  {s['title']}"
            )
        if not sessions:
            typer.echo("no chat sessions yet")
        return
    try:
        cfg = ChatConfig(
            model=model or "",
            strategy=strategy,
            options=dict(parse_option(o) for o in option or []),
            tools=tools,
            home=str(home or ""),
            resume=resume or "",
            prompt=prompt or "",
            images=[str(i) for i in image or []],
            plain=plain,
            show_thoughts=thoughts,
            max_seconds=max_seconds,
        )
        run_chat(cfg)
    except ChatError as e:
        fail(str(e))
    except KeyboardInterrupt:
        fail("interrupted", 130)


@app.command()
def serve(
    model: AgentModel = None,
    host: Annotated[str, typer.Option(help="Address to bind; anything but loopback needs --api-key.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    api_key: Annotated[str | None, typer.Option(help="Bearer key clients must send (or env MMCOT_API_KEY).")] = None,
    served_model_name: Annotated[str | None, typer.Option(help="Model id in the API (default mmcot-MODEL).")] = None,
    strategy: Annotated[str, typer.Option(help="Strategy when the model name has no :STRATEGY.")] = "image-loop",
    max_concurrency: Annotated[int, typer.Option(help="Agent runs at once (their model calls are batched).")] = 16,
    max_queue: Annotated[int, typer.Option(help="Requests waiting beyond those; more get 429.")] = 64,
    timeout: Annotated[float, typer.Option(help="Seconds one request may take.")] = 300.0,
    max_body_mb: Annotated[float, typer.Option(help="Largest request body, MiB.")] = 32.0,
    max_images: Annotated[int, typer.Option(help="Images per request.")] = 8,
    max_pixels: Annotated[int, typer.Option(help="Pixels per image.")] = 16_777_216,
    max_tokens: Annotated[int, typer.Option(help="Largest max_tokens a request may ask for.")] = 4096,
    allow_files: Annotated[
        Path | None, typer.Option(help="Let file:// image URLs read files below this folder.")
    ] = None,
) -> None:
    """Serve the model over HTTP: OpenAI-compatible /v1/chat/completions (agent loop server-side), /v1/models,
    /v1/solve (answer + full trace). API docs at /docs, schema at /openapi.json."""
    from mmcot.agent.server.app import ServeConfig
    from mmcot.agent.server.app import serve as run_server
    from mmcot.models.presets import ModelError

    if model is None:
        from mmcot.agent.chat import default_model

        model, note = default_model()
        if note:
            typer.secho(f"note: {note}", fg=typer.colors.YELLOW, err=True)
    try:
        cfg = ServeConfig(
            model=model,
            host=host,
            port=port,
            api_key=api_key or "",
            served_model_name=served_model_name or "",
            strategy=strategy,
            max_concurrency=max_concurrency,
            max_queue=max_queue,
            timeout=timeout,
            max_body_mb=max_body_mb,
            max_images=max_images,
            max_pixels=max_pixels,
            max_tokens=max_tokens,
            allow_files=str(allow_files or ""),
        )
        run_server(cfg)
    except (ValueError, ModelError, OSError) as e:
        fail(str(e))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
