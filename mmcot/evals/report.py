"""Reports of eval runs: a Markdown table, a PNG chart and a self-contained HTML page; and runs side by side.

    mmcot eval --suite --solver random --out runs/random          # also writes report.md, report.html, accuracy.png
    mmcot eval compare runs/random runs/tiny-cot --out runs/cmp   # prints the table; compare.{md,html,png} in --out

Accuracy carries a 95% Wilson score interval, which stays honest for small n and for accuracies near 0 or 1. The
HTML page embeds every image (data URLs), so it can be mailed or archived as one file.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

from mmcot.evals.harness import NO_CATEGORY, RunError, read_results

THUMB = 512  # px: the longest side of an image embedded in an HTML page; larger ones are shrunk to it
MAX_ITEMS = 500  # items shown in a run's HTML page (all of them count in the tables)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of ``k`` successes in ``n`` trials (95% for z=1.96).

    >>> [round(x, 3) for x in wilson(20, 100)]
    [0.133, 0.289]
    """
    if n == 0:
        return 0.0, 1.0
    p = k / n
    d = 1 + z * z / n
    center = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, center - half), min(1.0, center + half)


def load_run(run_dir: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(summary, rows)`` of a run folder written by ``mmcot eval``."""
    run_dir = Path(run_dir)
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except FileNotFoundError:
        raise RunError(f"{run_dir}: no summary.json; is this a folder written by mmcot eval --out?") from None
    except json.JSONDecodeError as e:
        raise RunError(f"{run_dir / 'summary.json'}: not valid JSON ({e})") from None
    return summary, list(read_results(run_dir).values())


def data_label(summary: dict[str, Any]) -> str:
    """What a run evaluated: "suite (test split)", "easy-vqa (test split)" or the data file's name."""
    cfg = summary.get("config", {})
    data = cfg.get("data", "?")
    return f"{data} ({cfg.get('split')} split)" if data in ("suite", "easy-vqa") else Path(data).name


def title(summary: dict[str, Any]) -> str:
    return f"{summary.get('solver', {}).get('name', '?')} on {data_label(summary)}"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _ci(stats: dict[str, Any]) -> str:
    lo, hi = stats["ci95"]
    return f"{100 * lo:.1f}–{100 * hi:.1f}"


def _costs(stats: dict[str, Any]) -> list[str]:
    m = stats["means"]
    return [f"{m['tokens']:.0f}", f"{m['model_calls']:.2f}", f"{m['tool_calls']:.2f}", f"{m['seconds']:.3f}"]


COST_HEADER = ["tokens/item", "model calls/item", "tool calls/item", "s/item"]


def run_table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a run's table: one row per category, then all items."""
    chance = "expected_accuracy" in summary
    header = ["category", "n", "accuracy", "95% CI", *(["chance"] if chance else []), *COST_HEADER]
    rows = []
    for name, stats in [*summary["by_category"].items(), ("all", summary)]:
        cells = [name, str(stats["n"]), _pct(stats["accuracy"]), _ci(stats)]
        cells += [_pct(stats["expected_accuracy"])] if chance else []
        rows.append(cells + _costs(stats))
    return header, rows


def notes(summary: dict[str, Any]) -> list[str]:
    """Sentences under a run's table: what the solver uses, the chance check, failures and skipped input."""
    out = []
    if summary.get("solver", {}).get("uses"):
        out.append(f"Solver `{summary['solver']['name']}` uses {summary['solver']['uses']}.")
    if "expected_accuracy" in summary:
        lo, hi = summary["ci95"]
        inside = lo <= summary["expected_accuracy"] <= hi
        out.append(
            f"Chance check: the expected accuracy {_pct(summary['expected_accuracy'])} is "
            f"{'inside' if inside else 'OUTSIDE'} the measured 95% interval {_ci(summary)} (n={summary['n']})."
        )
    if summary.get("errors"):
        out.append(f"{summary['errors']} items failed with an error (counted wrong; see `error` in results.jsonl).")
    if summary.get("skipped"):
        out.append(f"{len(summary['skipped'])} input rows were skipped (listed under `skipped` in summary.json).")
    return out


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(summary: dict[str, Any]) -> str:
    text = f"## {title(summary)}\n\n{markdown_table(*run_table(summary))}\n"
    return text + "".join(f"\n{note}\n" for note in notes(summary))


def chart(runs: list[tuple[str, dict[str, Any]]], path: str | Path) -> Path:
    """Horizontal bars of accuracy per category (and all items) with 95% intervals; chance marked with |."""
    from matplotlib.figure import Figure

    categories = list(dict.fromkeys(c for _, s in runs for c in s["by_category"])) + ["all"]
    fig = Figure(figsize=(8, 1.2 + 0.3 * len(categories) * len(runs)))
    ax = fig.add_subplot()
    height = 0.8 / len(runs)
    for j, (label, summary) in enumerate(runs):
        stats = [summary if c == "all" else summary["by_category"].get(c) for c in categories]
        ys = [i + j * height for i in range(len(categories))]
        acc = [s["accuracy"] if s else math.nan for s in stats]
        lo, hi = ([s["ci95"][k] if s else math.nan for s in stats] for k in (0, 1))
        err = [
            [max(0.0, a - b) for a, b in zip(acc, lo, strict=True)],
            [max(0.0, b - a) for a, b in zip(acc, hi, strict=True)],
        ]
        ax.barh(ys, acc, height, xerr=err, capsize=2, label=label)
        chance = [
            (s["expected_accuracy"], y) for s, y in zip(stats, ys, strict=True) if s and "expected_accuracy" in s
        ]
        if chance:
            ax.scatter(
                *zip(*chance, strict=True),
                marker="|",
                s=300,
                color="crimson",
                linewidths=2,
                zorder=3,
                label="chance" if j == 0 else None,
            )
    ax.set_yticks([i + height * (len(runs) - 1) / 2 for i in range(len(categories))], categories)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy (whiskers: 95% Wilson interval)")
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return Path(path)


def write_report(
    run_dir: str | Path, summary: dict[str, Any] | None = None, rows: list[dict[str, Any]] | None = None
) -> list[Path]:
    """Write ``report.md``, ``accuracy.png`` and ``report.html`` into a run folder; returns their paths."""
    run_dir = Path(run_dir)
    if summary is None or rows is None:
        summary, rows = load_run(run_dir)
    md = run_dir / "report.md"
    md.write_text(markdown(summary))
    png = chart([(summary["solver"]["name"], summary)], run_dir / "accuracy.png")
    page = run_dir / "report.html"
    page.write_text(run_html(run_dir, summary, rows))
    return [md, png, page]


def compare(run_dirs: list[str | Path], out: str | Path | None = None) -> str:
    """Runs side by side: returns the Markdown; with ``out`` also writes compare.md, compare.png, compare.html."""
    if len(run_dirs) < 2:
        raise RunError("compare needs at least two run folders")
    loaded = [load_run(d) for d in run_dirs]
    names = [Path(d).name for d in run_dirs]
    labels = names if len(set(names)) == len(names) else [str(d) for d in run_dirs]
    runs = [(label, s, rows, Path(d)) for label, (s, rows), d in zip(labels, loaded, run_dirs, strict=True)]
    tables = compare_tables(runs)
    md = "\n\n".join(markdown_table(*t) for t in tables) + "\n"
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.md").write_text(md)
        chart([(label, s) for label, s, _, _ in runs], out / "compare.png")
        (out / "compare.html").write_text(compare_html(runs, tables, out / "compare.png"))
    return md


def mcnemar(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs: items right only in A, right only in B.

    >>> round(mcnemar(49, 11), 6), mcnemar(3, 3), mcnemar(0, 0)
    (1e-06, 1.0, 1.0)
    """
    n, k = only_a + only_b, min(only_a, only_b)
    return min(1.0, 2 * sum(math.comb(n, j) for j in range(k + 1)) / 2**n) if n else 1.0


def item_key(row: dict[str, Any]) -> tuple:
    """What makes two result rows the same puzzle within runs over the same data: id, question and answer."""
    return row.get("id"), row.get("question"), str(row.get("answer"))


def _puzzles(summary: dict[str, Any]) -> tuple:
    cfg = summary.get("config", {})
    return tuple(cfg.get(k) for k in ("data", "seed", "split", "difficulty"))


def paired_rows(runs: list[tuple[str, dict, list, Path]]) -> list[list[str]]:
    """Each later run against the first, over the items both answered: an item is the same puzzle when the runs drew
    from the same data, seed, split and difficulty and it has the same id, question and answer (``--seed`` draws
    other puzzles under the same ids)."""
    first_label, first_summary, first_rows, _ = runs[0]
    first = {item_key(r): bool(r.get("correct")) for r in first_rows}
    out = []
    for label, summary, rows, _ in runs[1:]:
        if _puzzles(summary) != _puzzles(first_summary):
            out.append([label, first_label, "0 (other puzzles)", "–", "–", "–"])
            continue
        pairs = [(bool(r.get("correct")), first[item_key(r)]) for r in rows if item_key(r) in first]
        only_here, only_first = sum(a and not b for a, b in pairs), sum(b and not a for a, b in pairs)
        p = mcnemar(only_here, only_first)
        out.append(
            [label, first_label, str(len(pairs)), str(only_here), str(only_first), f"{p:.2g}" if p < 1 else "1"]
        )
    return out


PAIRED_HEADER = ["run", "against", "same puzzles", "right only here", "right only there", "exact McNemar p"]


def compare_tables(runs: list[tuple[str, dict, list, Path]]) -> list[tuple[list[str], list[list[str]]]]:
    """Accuracy per category (rows) and run (columns); each run's solver, size and costs; then each later run paired
    with the first on the puzzles both answered (exact McNemar)."""
    categories = list(dict.fromkeys(c for _, s, _, _ in runs for c in s["by_category"]))
    acc_rows = []
    for name in [*categories, "all"]:
        cells = [name]
        for _, s, _, _ in runs:
            stats = s if name == "all" else s["by_category"].get(name)
            cells.append(f"{_pct(stats['accuracy'])} [{_ci(stats)}] n={stats['n']}" if stats else "–")
        acc_rows.append(cells)
    cost_rows = [[label, s["solver"]["name"], data_label(s), str(s["n"]), *_costs(s)] for label, s, _, _ in runs]
    return [
        (["category", *[label for label, *_ in runs]], acc_rows),
        (["run", "solver", "data", "n", *COST_HEADER], cost_rows),
        (PAIRED_HEADER, paired_rows(runs)),
    ]


# ---- HTML ----

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: 3px 8px; }
th { background: #f3f3f3; } td { text-align: right; } td:first-child { text-align: left; }
.item { border: 1px solid #ddd; border-left: 6px solid #c33; padding: 8px 12px; margin: 10px 0; }
.item.ok { border-left-color: #3a3; } .item img, .node img { max-width: 512px; image-rendering: pixelated;
  min-width: 128px; border: 1px solid #ccc; margin: 2px; vertical-align: top; }
pre { white-space: pre-wrap; margin: 4px 0; font: 13px/1.35 ui-monospace, monospace; }
.meta { color: #666; font-size: 12px; } .node { margin: 6px 0 6px 1em; padding-left: 8px; border-left: 2px solid #ccc; }
.ok-mark { color: #3a3; font-weight: bold; } .bad-mark { color: #c33; font-weight: bold; }
"""


def _page(heading: str, body: str) -> str:
    return (
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{html.escape(heading)}</title>"
        f"<style>{CSS}</style></head><body><h1>{html.escape(heading)}</h1>\n{body}\n</body></html>\n"
    )


def _table_html(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _data_url(path: Path, max_side: int = THUMB) -> str:
    """An <img> with the image inline: the PNG file's own bytes, or a PNG thumbnail when it is larger."""
    from PIL import Image

    from mmcot.tools.images import ImageError, open_image

    try:
        img = open_image(path)
    except ImageError as e:
        return f"<span class='meta'>[{html.escape(path.name)}: {html.escape(str(e))}]</span>"
    if max(img.size) > max_side or path.suffix.lower() != ".png":
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        data = buf.getvalue()
    else:
        data = path.read_bytes()
    return f"<img src='data:image/png;base64,{base64.b64encode(data).decode()}' alt='{html.escape(path.name)}'>"


def _mark(correct: bool) -> str:
    return "<span class='ok-mark'>✓</span>" if correct else "<span class='bad-mark'>✗</span>"


def _item_html(row: dict[str, Any], run_dir: Path) -> str:
    e = html.escape
    images = "".join(_data_url(run_dir / p) for p in row.get("images", []))
    choices = ""
    if row.get("choices"):
        choices = "<ol type='A'>" + "".join(f"<li>{e(c)}</li>" for c in row["choices"]) + "</ol>"
    costs = ", ".join(f"{m.replace('_', ' ')} {row[m]}" for m in ("tokens", "model_calls", "tool_calls", "seconds"))
    error = f"<div class='bad-mark'>error: {e(row['error'])}</div>" if row.get("error") else ""
    return (
        f"<div class='item {'ok' if row['correct'] else 'bad'}' id='{e(row['id'])}'>"
        f"<div class='meta'>{e(row['id'])} · {e(row['category'] or NO_CATEGORY)} · {costs}</div>{images}"
        f"<pre>{e(row['question'])}</pre>{choices}"
        f"<div>answer: <b>{e(row['answer'])}</b> · prediction: <b>{e(row['prediction'])}</b> {_mark(row['correct'])}"
        f"</div>{error}{_trace_html(row.get('trace'), run_dir)}</div>"
    )


def _trace_html(trace: dict[str, Any] | None, run_dir: Path) -> str:
    if not trace:
        return ""
    e = html.escape
    nodes = []
    for node in trace.get("nodes", []):
        head = f"#{node['id']} {node['kind']}"
        head += f" ← {', '.join(f'#{p}' for p in node['parents'])}" if node.get("parents") else ""
        head += f" · score {node['score']}" if node.get("score") is not None else ""
        head += f" · {node['tokens']} tokens" if node.get("tokens") else ""
        call = f"<pre>{e(json.dumps(node['tool_call']))}</pre>" if node.get("tool_call") else ""
        images = "".join(
            _data_url(run_dir / trace["images"][i]) for i in node.get("images", []) if i in trace["images"]
        )
        text = f"<pre>{e(node['text'])}</pre>" if node.get("text") else ""
        nodes.append(f"<div class='node'><div class='meta'>{e(head)}</div>{text}{call}{images}</div>")
    head = (
        f"trace: {trace.get('strategy', '')}, {len(nodes)} nodes, stopped by {trace.get('stop_reason') or '?'}, "
        f"{trace.get('model_calls', 0)} model calls, {trace.get('tool_calls', 0)} tool calls"
    )
    return f"<details><summary>{e(head)}</summary>{''.join(nodes)}</details>"


def run_html(run_dir: Path, summary: dict[str, Any], rows: list[dict[str, Any]], max_items: int = MAX_ITEMS) -> str:
    """The run's page: the table, the chart, then each item (up to ``max_items``) with its images and trace."""
    body = [_table_html(*run_table(summary)), *(f"<p>{html.escape(n)}</p>" for n in notes(summary))]
    if (run_dir / "accuracy.png").exists():
        body.append(_data_url(run_dir / "accuracy.png", max_side=2000))
    if summary.get("skipped"):
        skipped = "".join(f"<li>{html.escape(p)}</li>" for p in summary["skipped"])
        body.append(
            f"<details><summary>skipped input ({len(summary['skipped'])})</summary><ul>{skipped}</ul></details>"
        )
    shown = rows[:max_items]
    more = f" (the first {len(shown)} of {len(rows)})" if len(rows) > len(shown) else ""
    body.append(f"<h2>Items{more}</h2>")
    body += [_item_html(row, run_dir) for row in shown]
    return _page(title(summary), "\n".join(body))


def compare_html(runs: list[tuple[str, dict, list, Path]], tables: list, png: Path, max_items: int = MAX_ITEMS) -> str:
    """The tables, the chart, and the items the runs disagree on (right in some, wrong in others)."""
    body = [_table_html(*t) for t in tables] + [_data_url(png, max_side=2000)]
    by_id = [{item_key(r): r for r in rows} for _, _, rows, _ in runs]
    common = [i for i in by_id[0] if all(i in b for b in by_id[1:])]
    split = [i for i in common if len({b[i]["correct"] for b in by_id}) > 1]
    body.append(f"<h2>Items the runs disagree on: {len(split)} of {len(common)} in common</h2>")
    run_dir = runs[0][3]
    for item_id in split[:max_items]:
        first = by_id[0][item_id]
        images = "".join(_data_url(run_dir / p) for p in first.get("images", []))
        preds = "".join(
            f"<div>{html.escape(label)}: <b>{html.escape(b[item_id]['prediction'])}</b> {_mark(b[item_id]['correct'])}</div>"
            for (label, *_), b in zip(runs, by_id, strict=True)
        )
        body.append(
            f"<div class='item'><div class='meta'>{html.escape(first['id'])}</div>{images}"
            f"<pre>{html.escape(first['question'])}</pre><div>answer: <b>{html.escape(first['answer'])}</b></div>"
            f"{preds}</div>"
        )
    return _page("Comparison: " + " vs ".join(label for label, *_ in runs), "\n".join(body))
