"""maze: is there a path from the green dot to the red dot, and how many steps is the shortest one?

A block maze (walls are filled cells); steps move one cell up, down, left or right.

Difficulty 1: 7x7 grid. 2: 9x9 or 11x11 with a few loops. 3: 13x13 or 15x15 with loops.
"""

from __future__ import annotations

import random
from collections import deque

from PIL import Image, ImageDraw

from mmcot.evals.item import Item
from mmcot.evals.puzzles.render import jitter

WALLS = [(30, 35, 60), (40, 40, 40), (70, 45, 30), (25, 60, 55)]
FLOORS = [(245, 245, 240), (250, 246, 230), (232, 238, 246), (236, 244, 236)]
START_COLOR, GOAL_COLOR = "green", "red"
TEMPLATES = {
    "exists": [
        "Is there a path from the green dot to the red dot?",
        "Can you walk from the green dot to the red dot without crossing a wall?",
        "Do the open corridors connect the green dot and the red dot?",
    ],
    "length": [
        "How many steps is the shortest path from the green dot to the red dot?",
        "Moving one cell at a time (no diagonals), how many moves does it take to get from the green dot to the red dot?",
        "What is the length of the shortest route from green to red, counting one step per cell moved?",
    ],
}
MOVES = {(0, 1): "right", (0, -1): "left", (1, 0): "down", (-1, 0): "up"}


def carve(rng: random.Random, size: int) -> list[list[bool]]:
    """A perfect maze on a ``size`` x ``size`` grid (odd size) by randomized depth-first search; True = open."""
    open_ = [[False] * size for _ in range(size)]
    stack = [(1, 1)]
    open_[1][1] = True
    while stack:
        r, c = stack[-1]
        nbrs = [(r + dr, c + dc, dr, dc) for dr, dc in ((0, 2), (0, -2), (2, 0), (-2, 0))]
        nbrs = [n for n in nbrs if 0 < n[0] < size - 1 and 0 < n[1] < size - 1 and not open_[n[0]][n[1]]]
        if not nbrs:
            stack.pop()
            continue
        nr, nc, dr, dc = rng.choice(nbrs)
        open_[r + dr // 2][c + dc // 2] = open_[nr][nc] = True
        stack.append((nr, nc))
    return open_


def shortest_path(open_: list[list[bool]], start: tuple[int, int], goal: tuple[int, int]) -> list[tuple] | None:
    """Breadth-first search over open cells; the list of cells from start to goal, or None."""
    prev = {start: None}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        if cell == goal:
            path = []
            while cell is not None:
                path.append(cell)
                cell = prev[cell]
            return path[::-1]
        for dr, dc in MOVES:
            n = (cell[0] + dr, cell[1] + dc)
            if 0 <= n[0] < len(open_) and 0 <= n[1] < len(open_) and open_[n[0]][n[1]] and n not in prev:
                prev[n] = cell
                queue.append(n)
    return None


def generate(rng: random.Random, difficulty: int) -> Item:
    size = {1: 7, 2: rng.choice([9, 11]), 3: rng.choice([13, 15])}[difficulty]
    open_ = carve(rng, size)
    inner_walls = [(r, c) for r in range(1, size - 1) for c in range(1, size - 1) if not open_[r][c] and (r + c) % 2]
    for r, c in rng.sample(inner_walls, (difficulty - 1) * size // 3):  # knock out walls to make loops
        open_[r][c] = True
    cells = [(r, c) for r in range(1, size, 2) for c in range(1, size, 2)]
    start, goal = rng.sample(cells, 2)
    while abs(start[0] - goal[0]) + abs(start[1] - goal[1]) < size // 2:
        start, goal = rng.sample(cells, 2)
    kind = rng.choice(list(TEMPLATES))
    if kind == "exists" and rng.random() < 0.5:  # wall off the route, again if a loop leaves another open
        while path := shortest_path(open_, start, goal):
            r, c = rng.choice(path[1:-1])
            open_[r][c] = False
    path = shortest_path(open_, start, goal)
    img, layout = render(rng, open_, start, goal)
    grid = ["".join("." if cell else "#" for cell in row) for row in open_]
    meta = {
        **layout,
        "grid": grid,
        "start": list(start),
        "goal": list(goal),
        "path": [list(p) for p in path] if path else None,
        "length": len(path) - 1 if path else None,
        "kind": kind,
    }
    answer = ("yes" if path else "no") if kind == "exists" else str(len(path) - 1)
    return Item(
        id="",
        question=rng.choice(TEMPLATES[kind]),
        answer=answer,
        images=[img],
        metadata=meta,
        rationale=rationale(meta),
    )


def render(rng: random.Random, open_: list[list[bool]], start: tuple, goal: tuple) -> tuple[Image.Image, dict]:
    size = len(open_)
    cell = rng.randint(max(9, -(-128 // size)), max(10, 512 // size))
    pad = rng.randint(0, cell)
    side = size * cell + 2 * pad
    floor = tuple(min(255, c + rng.randint(-4, 4)) for c in rng.choice(FLOORS))
    wall = tuple(max(0, c + rng.randint(-8, 8)) for c in rng.choice(WALLS))
    img = Image.new("RGB", (side, side), floor)
    draw = ImageDraw.Draw(img)
    for r in range(size):
        for c in range(size):
            if not open_[r][c]:
                draw.rectangle(
                    [pad + c * cell, pad + r * cell, pad + (c + 1) * cell - 1, pad + (r + 1) * cell - 1], fill=wall
                )
    for (r, c), color in ((start, START_COLOR), (goal, GOAL_COLOR)):
        m = max(1, cell // 6)
        draw.ellipse(
            [pad + c * cell + m, pad + r * cell + m, pad + (c + 1) * cell - 1 - m, pad + (r + 1) * cell - 1 - m],
            fill=jitter(rng, color),
        )
    return img, {
        "canvas": [side, side],
        "cell_px": cell,
        "origin": [pad, pad],
        "wall_rgb": list(wall),
        "floor_rgb": list(floor),
    }


def _runs(path: list[list[int]]) -> list[str]:
    runs: list[list] = []
    for a, b in zip(path, path[1:], strict=False):
        move = MOVES[(b[0] - a[0], b[1] - a[1])]
        if runs and runs[-1][0] == move:
            runs[-1][1] += 1
        else:
            runs.append([move, 1])
    return [f"{m} {n}" for m, n in runs]


def rationale(meta: dict) -> list[str]:
    """Steps from the solution structure: the shortest route as runs of moves, or why there is none."""
    if meta["path"] is None:
        grid, start = meta["grid"], tuple(meta["start"])
        reach, queue = {start}, deque([start])
        while queue:
            r, c = queue.popleft()
            for dr, dc in MOVES:
                n = (r + dr, c + dc)
                if 0 <= n[0] < len(grid) and 0 <= n[1] < len(grid) and grid[n[0]][n[1]] == "." and n not in reach:
                    reach.add(n)
                    queue.append(n)
        return [
            f"From the green dot I can reach {len(reach)} open cells.",
            "Walls cut every route: the red dot is not among them.",
            "So there is no path: the answer is no.",
        ]
    runs = _runs(meta["path"])
    steps = [f"From the green dot the shortest route goes: {', '.join(runs)}."]
    if meta["kind"] == "exists":
        return [*steps, "It reaches the red dot, so the answer is yes."]
    counts = [r.split()[1] for r in runs]
    total = meta["length"]
    return [*steps, f"That is {' + '.join(counts)} = {total} steps." if len(counts) > 1 else f"That is {total} steps."]
