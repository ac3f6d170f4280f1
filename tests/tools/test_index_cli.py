"""`mmcot index DIR` end to end: the real command builds, updates and searches an index, and fails cleanly."""

import subprocess
import sys


def mmcot(*args, env=None):
    return subprocess.run([sys.executable, "-m", "mmcot.cli", *args], capture_output=True, text=True, env=env)


def test_index_command(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Hexagons\n\nA hexagon has six sides.")
    (docs / "b.txt").write_text("Pentagons have five sides.")
    db = tmp_path / "idx.sqlite"
    out = mmcot("index", str(docs), "--db", str(db), "--search", "six sides")
    assert out.returncode == 0, out.stderr
    assert f"{db}: 2 added, 0 updated, 0 removed, 0 unchanged, 0 skipped; 2 passages in the index" in out.stdout
    assert "[1] Hexagons" in out.stdout and "A hexagon has six sides" in out.stdout
    again = mmcot("index", str(docs), "--db", str(db))
    assert "0 added, 0 updated, 0 removed, 2 unchanged" in again.stdout


def test_index_command_default_path_and_errors(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MMCOT_INDEX": str(tmp_path / "default.sqlite")}
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "c.txt").write_text("text")
    assert mmcot("index", str(docs), env=env).returncode == 0
    assert (tmp_path / "default.sqlite").exists()
    missing = mmcot("index", str(tmp_path / "nope"), env=env)
    assert missing.returncode == 1 and "error: " in missing.stderr and "is not a folder" in missing.stderr
    assert "Traceback" not in missing.stderr
    (tmp_path / "bad.sqlite").write_text("garbage" * 100)
    bad = mmcot("index", str(docs), "--db", str(tmp_path / "bad.sqlite"), env=env)
    assert bad.returncode == 1 and "not a usable mmcot search index" in bad.stderr
