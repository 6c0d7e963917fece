"""Safety of the board: bad --runs / --db refused with nothing changed, junk and staging folders never
ingested, duplicates counted once, atomic rebuilds, escaped output."""

from __future__ import annotations

import hashlib
import re
import shutil
import signal
import sys
from pathlib import Path

import duckdb
import pytest

from ferbench import leaderboard as lb
from ferbench.cli import main
from ferbench.errors import FerbenchError
from ferbench.run_record import RESULT

sys.path.insert(0, str(Path(__file__).parent))
from kill_points import kill_at  # noqa: E402
from test_leaderboard_fakes import fake_run  # noqa: E402


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def built(tmp_path):
    runs = tmp_path / "runs"
    for fold in range(3):
        fake_run(runs, "good", "g" * 16, fold=fold)
    db = tmp_path / "board" / "lb.duckdb"
    assert lb.ingest([runs], db) == 3
    return runs, db


def test_missing_or_empty_runs_folders_are_refused_and_change_nothing(built, tmp_path, capsys):
    runs, db = built
    before = _digest(db)
    with pytest.raises(FerbenchError, match="no such folder"):
        lb.ingest([tmp_path / "nowhere"], db)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".x.partial").mkdir()
    with pytest.raises(FerbenchError, match="holds no run result"):
        lb.ingest([tmp_path / "empty"], db)
    with pytest.raises(FerbenchError, match="holds no run result"):
        lb.ingest([runs, tmp_path / "empty"], db)
    assert main(["leaderboard", "--runs", str(tmp_path / "nowhere"), "--db", str(db)]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["leaderboard", "--runs", str(tmp_path / "nowhere"), "--db", str(tmp_path / "new.duckdb")]) == 2
    assert _digest(db) == before and not (tmp_path / "new.duckdb").exists()
    assert sorted(p.name for p in db.parent.iterdir()) == ["lb.duckdb"]


def test_junk_results_are_skipped_named_and_the_rest_ingested(built, tmp_path, capsys):
    runs, db = built
    junk = runs / "junk-run" / RESULT
    junk.parent.mkdir()
    junk.write_text("[]")
    lost = fake_run(runs, "lost", "l" * 16)
    (lost / "predictions.parquet").unlink()
    report = lb.build_board([runs], db)
    assert report.runs == 3
    skipped = dict(report.skipped)
    assert set(skipped) == {str(junk), str(lost / RESULT)}
    assert "not a ferbench-result/1 record" in skipped[str(junk)] and "predictions" in skipped[str(lost / RESULT)]
    con = duckdb.connect(str(db), read_only=True)
    notes = [m for (m,) in con.execute("SELECT message FROM notes WHERE kind = 'skipped'").fetchall()]
    con.close()
    assert any(str(junk) in m for m in notes) and any(str(lost / RESULT) in m for m in notes)
    assert main(["leaderboard", "--runs", str(runs), "--db", str(db)]) == 0
    err = capsys.readouterr().err
    assert f"skipped {junk}: " in err and f"skipped {lost / RESULT}: " in err


def test_only_junk_never_replaces_a_board(built, tmp_path):
    _, db = built
    before = _digest(db)
    bad = tmp_path / "bad"
    (bad / "r1").mkdir(parents=True)
    (bad / "r1" / RESULT).write_text("{not json")
    with pytest.raises(FerbenchError, match="none of the 1 result file"):
        lb.ingest([bad], db)
    assert _digest(db) == before


def test_a_coverage_matching_no_run_never_replaces_a_board(built):
    runs, db = built
    before = _digest(db)
    with pytest.raises(FerbenchError, match="nothing to show"):
        lb.ingest([runs], db, folds=[7])
    assert _digest(db) == before


def test_staging_folders_are_never_read(built, tmp_path):
    runs, db = built
    done = sorted(p for p in runs.iterdir())[0]
    for hidden in (".good-r0-f9-s0-x.partial", ".good-r0-f9-s0-x.tmp-1234abcd"):
        shutil.copytree(done, runs / hidden)
    shutil.copytree(done, runs / ".hidden-copy")
    assert len(lb.find_results([runs])) == 3
    assert lb.ingest([runs], db) == 3
    with pytest.raises(FerbenchError, match="hidden"):
        lb.find_results([runs / ".hidden-copy"])


def test_the_same_job_in_two_run_folders_is_ingested_once_with_a_note(built, tmp_path):
    runs, db = built
    other = tmp_path / "other"
    shutil.copytree(runs, other)
    report = lb.build_board([runs, other], db)
    assert report.runs == 3
    dupes = [m for _, kind, m in report.notes if kind == "duplicate"]
    assert len(dupes) == 3 and all("ingested once" in m and str(other) in m for m in dupes)
    (board,) = lb.rank(db)
    assert sum("ingested once" in n for n in board.notes) == 3


def test_db_that_is_not_a_board_is_never_overwritten(built, tmp_path, capsys):
    runs, _ = built
    text = tmp_path / "notes.txt"
    text.write_text("my notes\n")
    other = tmp_path / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE mine AS SELECT 42 AS answer")
    con.close()
    for target in (text, other):
        before = _digest(target)
        with pytest.raises(FerbenchError, match="not a ferbench board"):
            lb.ingest([runs], target)
        assert main(["leaderboard", "--runs", str(runs), "--db", str(target)]) == 2
        assert "refusing to overwrite" in capsys.readouterr().err and _digest(target) == before
    with pytest.raises(FerbenchError, match="is a folder"):
        lb.ingest([runs], tmp_path)
    assert lb.is_board(built[1]) and not lb.is_board(text) and not lb.is_board(other)
    legacy = tmp_path / "legacy.duckdb"  # a board written before board_info existed may be rebuilt
    con = duckdb.connect(str(legacy))
    for table in ("runs", "fold_metrics", "intervals", "protocols"):
        con.execute(f"CREATE TABLE {table} (x INTEGER)")
    con.close()
    assert lb.is_board(legacy) and lb.ingest([runs], legacy) == 3 and lb.rank(legacy)
    with pytest.raises(FerbenchError, match="older ferbench"):
        lb.rank(other)


def test_markdown_and_html_escape_user_strings(tmp_path):
    runs = tmp_path / "runs"
    for fold in range(3):
        fake_run(runs, "cnn|v2 <b>", "p" * 16, fold=fold,
                 reported={"value": 50.0, "metric": "accuracy", "role": "test", "source": "a | b", "notes": "x\n| y"})
    db = tmp_path / "lb.duckdb"
    lb.ingest([runs], db)
    md = lb.render(lb.rank(db), "md")
    header = next(line for line in md.splitlines() if line.startswith("| #"))
    row = next(line for line in md.splitlines() if "cnn" in line and line.startswith("| 1"))
    unescaped = re.compile(r"(?<!\\)\|")
    assert len(unescaped.findall(row)) == len(unescaped.findall(header))
    assert r"cnn\|v2 \<b\>" in row and "<b>" not in md
    page = lb.render(lb.rank(db), "html")
    assert "cnn|v2 &lt;b&gt;" in page and "<b>" not in page.replace("<b>ferbench", "")
    assert lb.md_escape("a_b _c_ [x](y)") == r"a_b \_c\_ [x\](y)"


def _board_content(db: Path) -> dict[str, list]:
    """Every table and view of the board, less the build time."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
        return {n: sorted(map(repr, con.execute(f'SELECT * FROM "{n}"').fetchall())) for n in names if n != "board_info"}
    finally:
        con.close()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_ingest_keeps_the_old_board_and_the_next_one_cleans_up(built, tmp_path, sig):
    """Killed with the new board complete under its temp name: the old board is untouched (SIGTERM also
    removes the temp file and says so; SIGKILL leaves it), and the next ingest removes what a dead
    writer left and lands the same board as an uninterrupted ingest."""
    runs, db = built
    fake_run(runs, "late", "l" * 16)
    before = _digest(db)
    code, err = kill_at(tmp_path, "rename", sig, db, ["leaderboard", "--runs", str(runs), "--db", str(db)])
    assert _digest(db) == before
    leftovers = sorted(p.name for p in db.parent.iterdir() if p.name != db.name)
    if sig == signal.SIGTERM:
        assert code == 143 and "terminated (SIGTERM); the board was not changed" in err
        assert leftovers == []
    else:
        assert code == -signal.SIGKILL
        assert len(leftovers) == 2 and leftovers[0] == ".lb.duckdb.lock" and leftovers[1].startswith(".lb.duckdb.tmp-")
    assert main(["leaderboard", "--runs", str(runs), "--db", str(db)]) == 0
    assert sorted(p.name for p in db.parent.iterdir()) == ["lb.duckdb"]
    straight = tmp_path / "straight" / "lb.duckdb"
    assert lb.ingest([runs], straight) == 4
    assert _board_content(db) == _board_content(straight)
