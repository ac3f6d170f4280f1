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
train_app = typer.Typer(help="Train the model: tokenizer, vision, align, sft (and RL: grpo, dpo, prm).", no_args_is_help=True)
app.add_typer(train_app, name="train")


def fail(message: str, code: int = 1) -> None:
    """Print a clear error (never a traceback) and exit."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
