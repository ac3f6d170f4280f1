"""The offline search backend: a SQLite FTS5 index over a folder of .txt and .md files, built by ``mmcot index``.

    mmcot index docs/                      # into the default index (~/.cache/mmcot/index.sqlite)
    mmcot index docs/ --db runs/index.sqlite

Running it again updates the index: new and changed files are (re)indexed, files deleted from the folder leave it,
unchanged files are skipped. One index can hold several folders. Documents are split into passages of about
``CHUNK_CHARS`` characters at paragraph breaks; a search ranks passages with BM25 (all words first, then any word).
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mmcot.tools.base import cache_dir
from mmcot.tools.search import SearchError, SearchHit

SUFFIXES = (".txt", ".md", ".markdown")
CHUNK_CHARS = 1200
MAX_FILE_BYTES = 20 << 20
SCHEMA = """
CREATE TABLE IF NOT EXISTS mmcot_index (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS docs (path TEXT PRIMARY KEY, mtime REAL, size INTEGER, title TEXT);
CREATE VIRTUAL TABLE IF NOT EXISTS passages USING fts5(path UNINDEXED, title, body, tokenize='porter unicode61');
"""


def default_index_path() -> Path:
    """``$MMCOT_INDEX``, else ``$XDG_CACHE_HOME/mmcot/index.sqlite`` (``~/.cache/mmcot/index.sqlite``)."""
    if os.environ.get("MMCOT_INDEX"):
        return Path(os.environ["MMCOT_INDEX"]).expanduser()
    return cache_dir() / "index.sqlite"


@dataclass
class IndexStats:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: int = 0  # too large, binary or unreadable
    passages: int = 0

    def __str__(self) -> str:
        return (
            f"{self.added} added, {self.updated} updated, {self.removed} removed, {self.unchanged} unchanged, "
            f"{self.skipped} skipped; {self.passages} passages in the index"
        )


def _open(db: Path, create: bool) -> sqlite3.Connection:
    if not create and not db.exists():
        raise SearchError(f"no local search index at {db}; build one with: mmcot index DIR --db {db}")
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(db)
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "mmcot_index" not in tables:
            conn.close()
            raise SearchError(f"{db} is a SQLite database but not an mmcot search index; choose another --db")
        conn.executescript(SCHEMA)
        conn.execute("INSERT OR IGNORE INTO mmcot_index VALUES ('format', '1')")
    except (sqlite3.DatabaseError, OSError) as e:
        raise SearchError(f"{db} is not a usable mmcot search index ({e})") from None
    return conn


def _title(text: str, path: Path) -> str:
    m = re.search(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", text, re.M)
    return (m.group(1) if m else path.stem.replace("_", " ").replace("-", " "))[:200]


def passages(text: str, size: int = CHUNK_CHARS) -> list[str]:
    """Split ``text`` at blank lines into passages of at most about ``size`` characters."""
    out, current = [], ""
    for para in re.split(r"\n\s*\n", text):
        para = para.strip()
        while len(para) > size:  # one huge paragraph: cut at the last space before the limit
            cut = para.rfind(" ", 0, size)
            cut = cut if cut > size // 2 else size
            out.append(para[:cut].strip())
            para = para[cut:].strip()
        if current and len(current) + len(para) + 2 > size:
            out.append(current)
            current = ""
        current = f"{current}\n\n{para}" if current else para
    if current.strip():
        out.append(current.strip())
    return [p for p in out if p]


def build_index(folder: str | Path, db: str | Path, progress: Callable[[int, int], None] | None = None) -> IndexStats:
    """Index (or update the index of) the .txt/.md files under ``folder`` into ``db``; returns what changed."""
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise SearchError(f"{folder} is not a folder")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
    conn = _open(Path(db).expanduser(), create=True)
    stats = IndexStats()
    known = {row[0]: (row[1], row[2]) for row in conn.execute("SELECT path, mtime, size FROM docs")}
    prefix = str(root) + os.sep
    for n, path in enumerate(files, 1):
        st = path.stat()
        key = str(path)
        if known.get(key) == (st.st_mtime, st.st_size):
            stats.unchanged += 1
        elif st.st_size > MAX_FILE_BYTES:
            stats.skipped += 1
        else:
            try:
                data = path.read_bytes()
            except OSError:
                stats.skipped += 1
                continue
            if b"\0" in data[:8192]:
                stats.skipped += 1
                continue
            text = data.decode("utf-8", errors="replace")
            title = _title(text, path)
            with conn:
                conn.execute("DELETE FROM passages WHERE path = ?", (key,))
                conn.executemany(
                    "INSERT INTO passages (path, title, body) VALUES (?, ?, ?)",
                    [(key, title, body) for body in passages(text)],
                )
                conn.execute("INSERT OR REPLACE INTO docs VALUES (?, ?, ?, ?)", (key, st.st_mtime, st.st_size, title))
            if key in known:
                stats.updated += 1
            else:
                stats.added += 1
        if progress:
            progress(n, len(files))
    present = {str(p) for p in files}
    gone = [key for key in known if key.startswith(prefix) and key not in present]
    with conn:
        for key in gone:
            conn.execute("DELETE FROM passages WHERE path = ?", (key,))
            conn.execute("DELETE FROM docs WHERE path = ?", (key,))
    stats.removed = len(gone)
    stats.passages = conn.execute("SELECT count(*) FROM passages").fetchone()[0]
    conn.close()
    return stats


class LocalIndexBackend:
    """Search a local FTS5 index (see ``build_index``)."""

    name = "local"

    def __init__(self, db: str | Path | None = None) -> None:
        self.db = Path(db).expanduser() if db else default_index_path()

    def search(self, query: str, max_results: int) -> list[SearchHit]:
        words = re.findall(r"\w+", query)
        if not words:
            raise SearchError("the query has no words to search for")
        conn = _open(self.db, create=False)
        try:
            quoted = ['"' + w.replace('"', "") + '"' for w in words]
            for joiner in (" AND ", " OR "):
                rows = conn.execute(
                    "SELECT path, title, snippet(passages, 2, '', '', ' ... ', 48) FROM passages "
                    "WHERE passages MATCH ? ORDER BY bm25(passages) LIMIT ?",
                    (joiner.join(quoted), max_results),
                ).fetchall()
                if rows:
                    break
        except sqlite3.DatabaseError as e:
            raise SearchError(f"the local index {self.db} could not be searched ({e})") from None
        finally:
            conn.close()
        return [SearchHit(title=title, url=path, snippet=snippet, source="local") for path, title, snippet in rows]
