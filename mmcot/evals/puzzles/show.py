"""Look at puzzles: a contact sheet PNG (each image with its question and answer under it) and a terminal table.

mmcot puzzles --family all --n 2 --out runs/look --show   # writes runs/look/contact_sheet.png, prints a table
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from mmcot.evals.item import Item
from mmcot.evals.puzzles.render import font

TILE = 240  # px per tile side (the images area)
PAD = 10
LINE = 15


def _caption_lines(item: Item, width_chars: int) -> list[str]:
    lines = [f"{item.id}  (difficulty {item.difficulty})"]
    lines += textwrap.wrap("Q: " + item.question, width_chars)[:4]
    if item.choices:
        lines += textwrap.wrap("choices: " + " | ".join(item.choices), width_chars)[:2]
    lines += textwrap.wrap("A: " + item.answer, width_chars)[:1]
    return lines


def contact_sheet(items: list[Item], path: str | Path, columns: int | None = None) -> Path:
    """Write a grid of the items' images, each with id, question, choices and answer beneath; returns the path."""
    if not items:
        raise ValueError("no items to show")
    columns = columns or min(len(items), 6 if len(items) > 16 else 4)
    width_chars = TILE // 7
    text_h = LINE * max(len(_caption_lines(it, width_chars)) for it in items) + PAD
    cell_w, cell_h = TILE + 2 * PAD, TILE + text_h + 2 * PAD
    rows = (len(items) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    fnt, bold = font(12), font(13)
    for k, item in enumerate(items):
        x, y = (k % columns) * cell_w + PAD, (k // columns) * cell_h + PAD
        imgs = item.images or [Image.new("RGB", (TILE, TILE), (200, 200, 200))]
        slot = (TILE - PAD * (len(imgs) - 1)) // len(imgs)
        for j, img in enumerate(imgs):
            scale = min(slot / img.width, TILE / img.height)
            thumb = img.resize(
                (max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.LANCZOS
            )
            ox = x + j * (slot + PAD) + (slot - thumb.width) // 2
            sheet.paste(thumb, (ox, y + (TILE - thumb.height) // 2))
            draw.rectangle(
                [ox - 1, y + (TILE - thumb.height) // 2 - 1, ox + thumb.width, y + (TILE + thumb.height) // 2],
                outline=(180, 180, 180),
            )
        for i, line in enumerate(_caption_lines(item, width_chars)):
            color = (0, 110, 40) if line.startswith("A: ") else (90, 90, 90) if i == 0 else (20, 20, 20)
            draw.text(
                (x, y + TILE + PAD // 2 + i * LINE), line, font=bold if line.startswith("A: ") else fnt, fill=color
            )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def sample_table(items: list[Item], limit: int = 30) -> Any:
    """A ``rich.table.Table`` of up to ``limit`` items: id, difficulty, question (with choices), answer."""
    from rich.table import Table

    table = Table(title=f"{min(limit, len(items))} of {len(items)} puzzles")
    table.add_column("id", no_wrap=True)
    table.add_column("d", no_wrap=True)
    table.add_column("question", ratio=1)
    table.add_column("answer", no_wrap=True, style="bold green")
    for item in items[:limit]:
        question = item.question + (f"  [dim]({' | '.join(item.choices)})[/]" if item.choices else "")
        table.add_row(item.id, str(item.difficulty), question, item.answer)
    return table
