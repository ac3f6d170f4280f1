"""Model cards: the README.md written beside every trained artifact (data, steps, seed, wall time, peak memory, evals).

``write_card`` writes the card and a machine-readable ``mmcot_card.json``; ``add_eval`` appends eval numbers later,
e.g. a finished ``mmcot eval`` run::

    .venv/bin/python -m mmcot.models.card mmcot/models/checkpoints/tiny runs/eval/tiny-direct "mmcot eval ..."
"""

from __future__ import annotations

import json
import platform
import resource
from pathlib import Path
from typing import Any


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_card(
    folder: str | Path,
    title: str,
    stage: str,
    config: dict[str, Any],
    facts: dict[str, Any],
    wall_s: float,
    evals: dict[str, Any] | None = None,
) -> Path:
    """Write ``README.md`` and ``mmcot_card.json`` into ``folder``; returns the README path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        "title": title,
        "stage": stage,
        "facts": facts,
        "wall_time_s": round(wall_s, 1),
        "peak_memory_mb": round(peak_memory_mb(), 1),
        "machine": f"{platform.machine()}, {_cpus()} CPU cores, {platform.python_implementation()} "
        f"{platform.python_version()}",
        "config": config,
        "evals": evals or {},
    }
    (folder / "mmcot_card.json").write_text(json.dumps(meta, indent=2, default=str))
    return render_card(folder)


def add_eval(folder: str | Path, name: str, result: dict[str, Any]) -> Path:
    """Record eval numbers (e.g. a ``summary.json`` from ``mmcot eval``) in the card of ``folder``."""
    folder = Path(folder)
    meta = json.loads((folder / "mmcot_card.json").read_text())
    meta.setdefault("evals", {})[name] = result
    (folder / "mmcot_card.json").write_text(json.dumps(meta, indent=2, default=str))
    return render_card(folder)


def render_card(folder: Path) -> Path:
    meta = json.loads((folder / "mmcot_card.json").read_text())
    lines = [f"# {meta['title']}", "", f"Stage: `{meta['stage']}`. Written by mmcot.", ""]
    lines += [f"- **{k}**: {v}" for k, v in meta["facts"].items()]
    lines += [
        f"- **wall time**: {meta['wall_time_s'] / 60:.1f} min on {meta['machine']}",
        f"- **peak memory**: {meta['peak_memory_mb']:.0f} MiB (resident)",
        "",
    ]
    for name, result in meta.get("evals", {}).items():
        lines += [f"## Eval: {name}", ""]
        if isinstance(result, dict) and "by_category" in result:
            lines += ["| category | accuracy | n |", "|---|---|---|"]
            for cat, row in sorted(result["by_category"].items()):
                lines.append(f"| {cat} | {row['accuracy']:.3f} | {row['n']} |")
            lines.append(f"| **all** | {result['accuracy']:.3f} | {result['n']} |")
            if result.get("command"):
                lines += ["", f"Command: `{result['command']}`"]
        else:
            lines.append(f"```\n{json.dumps(result, indent=2)}\n```")
        lines.append("")
    lines += ["## Config", "", "```json", json.dumps(meta["config"], indent=2, default=str), "```", ""]
    path = folder / "README.md"
    path.write_text("\n".join(lines))
    return path


def add_eval_run(folder: str | Path, run: str | Path, command: str = "") -> Path:
    """Record a finished ``mmcot eval`` run (its ``summary.json``) in the card of ``folder``, under its solver name."""
    summary = json.loads((Path(run) / "summary.json").read_text())
    result = {
        "accuracy": summary["accuracy"],
        "n": summary["n"],
        "by_category": {k: {"accuracy": v["accuracy"], "n": v["n"]} for k, v in summary["by_category"].items()},
        "command": command,
    }
    name = summary.get("solver", {}).get("name", Path(run).name)
    config = summary.get("config", {})
    where = f"{config.get('data', 'suite')}, {config.get('split', 'test')} split, n={config.get('n', '?')} per family"
    if config.get("blind"):
        where += ", blind: each image swapped for another item's"
    return add_eval(folder, f"mmcot eval: {name} ({where})", result)


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    import sys

    if len(sys.argv) not in (3, 4):
        sys.exit("usage: python -m mmcot.models.card CHECKPOINT_FOLDER EVAL_RUN_FOLDER [COMMAND]")
    print(add_eval_run(*sys.argv[1:]))
