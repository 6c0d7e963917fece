"""Building the board: every run result → one DuckDB file, rebuilt whole and swapped in atomically.

Runs never touch the database (DuckDB lets one process hold a file): each run writes its own
``result.json``, and ``build_board`` reads them all (``collect``), computes the comparison groups
and their statistics (``standings``), writes a new database into a temporary sibling and renames it
over the old one, holding the lock file ``.<db name>.lock`` (concurrent ingests take turns; a
killed writer's temp file is removed by the next writer). So an ingest is idempotent, safe while runs finish and beside another ingest, and
the file can always be deleted and rebuilt. It refuses, leaving everything as it was: a ``--runs``
folder that does not exist or holds no result, a set of results none of which is readable or none
of which lies in the coverage asked for (an existing board is never replaced by an empty one), and
a ``db`` path holding a file that is not a ferbench board.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import FerbenchError
from ..file_lock import FileLock
from .collect import collect
from .reproduce import reproduction_rows
from .standings import plan_groups, score_group
from .tables import rows

FORMAT = "ferbench-board/3"
DEFAULT_DB = Path("leaderboard") / "ferbench.duckdb"
MIN_BOOT = 1000


@dataclass
class IngestReport:
    db: Path
    runs: int
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    notes: list[tuple[str | None, str, str]] = field(default_factory=list)  # (manifest hash, kind, message)

    def lines(self) -> list[str]:
        out = [f"skipped {f}: {why}" for f, why in self.skipped]
        return out + [f"note: {msg}" for _, kind, msg in self.notes if kind != "skipped"]


def sql(name: str) -> str:
    """The text of a packaged SQL file (``schema.sql``, ``views.sql``)."""
    return resources.files(__package__).joinpath(name).read_text()


def method(n_boot: int, level: float, seed: int) -> str:
    pct = f"{100 * level:g}%"
    return (f"Mean over the runs of each entry (± sample std over runs; — for a single run). {pct} intervals: "
            f"paired cluster bootstrap over test subjects (a row without a subject resampled alone), B={n_boot} "
            f"resamples, seed {seed}, percentile intervals; each resample rescores every run of every system on "
            "the same resampled subjects and averages over runs. Entries sharing a rank are statistically tied: the "
            f"{pct} interval of their difference to the tier's leader contains 0. \"not distinguishable\" from "
            f"baseline: the {pct} interval of the difference to the best baseline (majority class or class prior, "
            "computed on the same runs) contains 0.")


def is_board(path: str | Path) -> bool:
    """Is ``path`` a ferbench board (a DuckDB file with ``board_info.format``, or one of the first format)?"""
    import duckdb

    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return False
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "board_info" in tables:
            row = con.execute("SELECT value FROM board_info WHERE key = 'format'").fetchone()
            return bool(row and str(row[0]).startswith("ferbench-board/"))
        return {"runs", "fold_metrics", "intervals", "protocols"} <= tables  # written before board_info existed
    except duckdb.Error:
        return False
    finally:
        con.close()


def check_target(db: Path) -> None:
    if db.is_dir():
        raise FerbenchError(f"--db {db} is a folder; give the board's file (e.g. {db / 'ferbench.duckdb'})")
    if db.exists() and not is_board(db):
        raise FerbenchError(f"--db {db} exists and is not a ferbench board: refusing to overwrite it "
                            "(choose another --db, or delete that file yourself)")


def build_board(runs: Iterable[str | Path], db: str | Path = DEFAULT_DB, *, folds: Sequence[int] | None = None,
                repeats: Sequence[int] | None = None, seeds: Sequence[int] | None = None, n_boot: int = MIN_BOOT,
                level: float = 0.95, seed: int = 0) -> IngestReport:
    """Rebuild the board ``db`` from every result under ``runs`` (see the module docstring)."""
    if n_boot < MIN_BOOT:
        raise FerbenchError(f"--bootstrap {n_boot}: the board's intervals use at least {MIN_BOOT} resamples")
    if not 0 < level < 1:
        raise FerbenchError(f"CI level {level} is not in (0, 1)")
    db, runs = Path(db), [Path(r) for r in runs]
    if not runs:
        raise FerbenchError("no --runs folder given")
    check_target(db)
    found = collect(runs)
    if not found.runs:
        detail = "; ".join(f"{f}: {why}" for f, why in found.skipped[:5])
        raise FerbenchError(f"none of the {len(found.skipped)} result file(s) under {', '.join(map(str, runs))} is "
                            f"readable ({detail}); the board was not changed")
    groups, coverage_notes = plan_groups(found.runs, folds=folds, repeats=repeats, seeds=seeds)
    if not groups:
        raise FerbenchError(f"no run of {', '.join(map(str, runs))} lies in the coverage asked for (folds {folds}, "
                            f"repeats {repeats}, seeds {seeds}): nothing to show; the board was not changed")
    tables = rows(found.runs)
    tables["reproductions"] = reproduction_rows(found.runs, n_boot=n_boot, level=level, seed=seed)
    for t in ("groups", "group_runs", "standings"):
        tables[t] = []
    for group in groups:
        for t, r in score_group(group, n_boot=n_boot, level=level, seed=seed).items():
            tables[t] += r
    unpaired = [(g["manifest_hash"], "unpaired", f"group {g['group_id']}: its entries saw different test samples in "
                                                 "some run, so no paired test is given")
                for g in tables["groups"] if not g["paired"]]
    notes = [(None, "skipped", f"skipped {f}: {why}") for f, why in found.skipped] + found.notes + coverage_notes + unpaired
    tables["notes"] = [{"manifest_hash": m, "kind": k, "message": msg} for m, k, msg in notes]
    tables["board_info"] = [{"key": k, "value": v if isinstance(v, str) else json.dumps(v)} for k, v in {
        "format": FORMAT, "built_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "runs_folders": [str(r) for r in runs], "coverage_folds": folds, "coverage_repeats": repeats,
        "coverage_seeds": seeds, "bootstrap_resamples": n_boot, "ci_level": level, "bootstrap_seed": seed,
        "method": method(n_boot, level, seed)}.items()]
    _write(db, tables)
    return IngestReport(db, len(found.runs), found.skipped, notes)


def ingest(runs: Iterable[str | Path], db: str | Path = DEFAULT_DB, **kw: Any) -> int:
    """Rebuild the board from every result record under ``runs``; returns the number of runs ingested."""
    return build_board(runs, db, **kw).runs


def _write(db: Path, tables: dict[str, list[dict[str, Any]]]) -> None:
    db.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(db.with_name(f".{db.name}.lock")):  # one writer at a time; a killed one's lock dies with it
        for stale in db.parent.glob(f".{db.name}.tmp-*"):  # left by a killed writer: no live writer owns it
            stale.unlink(missing_ok=True)
        _write_locked(db, tables)


def _write_locked(db: Path, tables: dict[str, list[dict[str, Any]]]) -> None:
    import duckdb

    tmp = db.with_name(f".{db.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        con = duckdb.connect(str(tmp))
        try:
            con.execute(sql("schema.sql"))
            for table, data in tables.items():
                _insert(con, table, data)
            con.execute(sql("views.sql"))
        finally:
            con.close()
        os.replace(tmp, db)
    finally:
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}.wal").unlink(missing_ok=True)


def _insert(con, table: str, data: list[dict[str, Any]]) -> None:
    if not data:
        return
    import pyarrow as pa

    keys = list(dict.fromkeys(k for row in data for k in row))  # rows may leave out optional keys
    con.register("_rows", pa.table({k: [row.get(k) for row in data] for k in keys}))
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _rows")
    finally:
        con.unregister("_rows")
