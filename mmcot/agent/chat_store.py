"""Chat sessions in SQLite: each session's settings and turns (text, image files, the answer's trace), so a chat
resumes after the process exits (``mmcot chat --resume ID``) and ``mmcot chat --list`` shows them.

Layout under the chat home (``~/.mmcot/chat`` or ``$MMCOT_HOME/chat``): ``sessions.sqlite`` and one folder per
session holding its images (the user's, copied in, and those the tools made) and saved transcripts.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, title TEXT NOT NULL DEFAULT '', created REAL NOT NULL, updated REAL NOT NULL,
    settings TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS turns (
    session_id TEXT NOT NULL REFERENCES sessions(id), idx INTEGER NOT NULL, role TEXT NOT NULL, text TEXT NOT NULL,
    images TEXT NOT NULL DEFAULT '[]', trace TEXT, status TEXT NOT NULL DEFAULT 'ok', created REAL NOT NULL,
    PRIMARY KEY (session_id, idx));
"""


def default_home() -> Path:
    return Path(os.environ.get("MMCOT_HOME", Path.home() / ".mmcot")) / "chat"


@dataclass
class Turn:
    role: str  # "user" | "assistant"
    text: str
    images: list[str] = field(default_factory=list)  # file names in the session folder
    trace: dict[str, Any] | None = None  # the answer's Trace.to_dict(image_dir=session folder)
    status: str = "ok"  # "ok" | "cancelled" | "error"


@dataclass
class Session:
    id: str
    folder: Path
    title: str = ""
    created: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    turns: list[Turn] = field(default_factory=list)


class SessionStore:
    def __init__(self, home: str | Path | None = None):
        self.home = Path(home) if home else default_home()
        self.home.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.home / "sessions.sqlite", check_same_thread=False)
        self.db.executescript(SCHEMA)

    def create(self, settings: dict[str, Any]) -> Session:
        now = time.time()
        session_id = time.strftime("%Y%m%d-", time.localtime(now)) + secrets.token_hex(3)
        with self.db:
            self.db.execute(
                "INSERT INTO sessions (id, created, updated, settings) VALUES (?, ?, ?, ?)",
                (session_id, now, now, json.dumps(settings)),
            )
        session = Session(session_id, self.home / session_id, created=now, settings=dict(settings))
        session.folder.mkdir(parents=True, exist_ok=True)
        return session

    def resolve(self, session_id: str) -> str:
        """The full id of a session given its id or a unique prefix; ``KeyError`` with a readable message if none."""
        rows = self.db.execute(
            "SELECT id FROM sessions WHERE id = ? OR id LIKE ? ORDER BY id", (session_id, session_id + "%")
        ).fetchall()
        exact = [r[0] for r in rows if r[0] == session_id]
        if exact or len(rows) == 1:
            return (exact or [rows[0][0]])[0]
        if not rows:
            raise KeyError(f"no chat session {session_id!r} in {self.home} (mmcot chat --list shows them)")
        raise KeyError(f"{session_id!r} matches {len(rows)} sessions: {', '.join(r[0] for r in rows[:5])}")

    def load(self, session_id: str) -> Session:
        session_id = self.resolve(session_id)
        title, created, settings = self.db.execute(
            "SELECT title, created, settings FROM sessions WHERE id = ?", (session_id,)
        ).fetchone()
        turns = [
            Turn(role, text, json.loads(images), json.loads(trace) if trace else None, status)
            for role, text, images, trace, status in self.db.execute(
                "SELECT role, text, images, trace, status FROM turns WHERE session_id = ? ORDER BY idx", (session_id,)
            )
        ]
        return Session(session_id, self.home / session_id, title, created, json.loads(settings), turns)

    def append(self, session: Session, turn: Turn) -> None:
        session.turns.append(turn)
        now = time.time()
        if not session.title and turn.role == "user":
            session.title = " ".join(turn.text.split())[:60] or "(image)"
        with self.db:
            self.db.execute(
                "INSERT INTO turns (session_id, idx, role, text, images, trace, status, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session.id,
                    len(session.turns) - 1,
                    turn.role,
                    turn.text,
                    json.dumps(turn.images),
                    json.dumps(turn.trace) if turn.trace else None,
                    turn.status,
                    now,
                ),
            )
            self.db.execute(
                "UPDATE sessions SET updated = ?, title = ?, settings = ? WHERE id = ?",
                (now, session.title, json.dumps(session.settings), session.id),
            )

    def save_settings(self, session: Session) -> None:
        with self.db:
            self.db.execute(
                "UPDATE sessions SET settings = ? WHERE id = ?", (json.dumps(session.settings), session.id)
            )

    def clear(self, session: Session) -> None:
        """Forget the turns (``/reset``); image files stay in the session folder."""
        session.turns.clear()
        with self.db:
            self.db.execute("DELETE FROM turns WHERE session_id = ?", (session.id,))

    def list(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT s.id, s.title, s.updated, s.settings, COUNT(t.idx) FROM sessions s "
            "LEFT JOIN turns t ON t.session_id = s.id GROUP BY s.id ORDER BY s.updated DESC"
        ).fetchall()
        return [
            {"id": i, "title": title, "updated": updated, "settings": json.loads(settings), "turns": n}
            for i, title, updated, settings, n in rows
        ]
