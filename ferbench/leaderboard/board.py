"""Reading a built board back as ``Board`` objects: one per ranked group, one per manifest for its
partial entries. Everything shown comes from the database (``--no-ingest`` shows the same)."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import FerbenchError
from ..metrics import SCALARS
from .ingest import DEFAULT_DB, FORMAT

DEFAULT_METRIC = "balanced_accuracy"
SHOWN = ("balanced_accuracy", "accuracy", "macro_f1")


@dataclass
class Board:
    """One table: the ranked entries of one group (with its baselines), or a manifest's partial entries."""

    protocol: str
    manifest_hash: str
    metric: str
    leakage: str | None
    siblings: int  # other manifests of the same protocol (never ranked together)
    section: str = "ranked"  # ranked | partial
    coverage: str = ""
    k_folds: int = 0
    total_folds: int = 0
    paired: bool = True
    method: str = ""
    entries: list[dict[str, Any]] = field(default_factory=list)
    baselines: list[dict[str, Any]] = field(default_factory=list)
    confusions: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict)
    details: list[dict[str, Any]] = field(default_factory=list)  # per entry: names, recipe files, overrides, facts
    reported: list[dict[str, Any]] = field(default_factory=list)  # reported vs reproduced
    notes: list[str] = field(default_factory=list)  # what the ingest noticed

    @property
    def synthetic(self) -> bool:
        return any(e["synthetic"] for e in self.entries)


def _dicts(cur) -> list[dict[str, Any]]:
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def rank(db: str | Path = DEFAULT_DB, protocol: str | None = None, manifest: str | None = None,
         metric: str = DEFAULT_METRIC) -> list[Board]:
    """The boards of a built database; refuses a protocol whose results span several manifests."""
    if metric not in SCALARS:
        raise FerbenchError(f"unknown metric {metric!r}; one of {', '.join(SCALARS)}")
    with _open(db) as (con, info):
        pairs = con.execute("SELECT DISTINCT protocol, manifest_hash FROM groups ORDER BY ALL").fetchall()
        if protocol is not None:
            pairs = [p for p in pairs if p[0] == protocol]
            if not pairs:
                raise FerbenchError(f"no results for protocol {protocol!r}")
        if manifest is not None:
            pairs = [p for p in pairs if p[1].startswith(manifest)]
            if not pairs:
                raise FerbenchError(f"no results for manifest {manifest!r}" + (f" of protocol {protocol!r}" if protocol else ""))
        elif protocol is not None and len(pairs) > 1:
            raise FerbenchError(
                f"results for protocol {protocol!r} come from {len(pairs)} different manifests "
                f"({', '.join(h[:12] for _, h in pairs)}): their splits differ, so they are not ranked together; "
                "pick one with --manifest HASH"
            )
        per_protocol = dict(con.execute("SELECT protocol, count(DISTINCT manifest_hash) FROM groups GROUP BY 1").fetchall())
        boards = []
        for p, h in pairs:
            mine = _manifest_boards(con, p, h, metric, per_protocol[p] - 1, info.get("method", ""))
            notes = [r[0] for r in con.execute("SELECT message FROM notes WHERE manifest_hash = ? ORDER BY kind, message",
                                               [h]).fetchall()]
            if mine:
                mine[-1].notes += notes
            boards += mine
        general = [r[0] for r in con.execute("SELECT message FROM notes WHERE manifest_hash IS NULL ORDER BY message").fetchall()]
        if boards:
            boards[0].notes = general + boards[0].notes
        return boards


def reproductions(db: str | Path = DEFAULT_DB) -> list[dict[str, Any]]:
    """The board's ``reproductions`` rows (``reproduce.reproduction_rows``: each published figure of a
    recipe reported, reproduced as published and honestly, with both gaps)."""
    with _open(db) as (con, _):
        return _dicts(con.execute("SELECT * FROM reproductions ORDER BY recipe_name, metric, role"))


@contextlib.contextmanager
def _open(db: str | Path) -> Iterator[tuple[Any, dict[str, Any]]]:
    """(read-only connection, board_info) of a built board of this format; one-line errors otherwise."""
    import duckdb

    if not Path(db).is_file():
        raise FerbenchError(f"no leaderboard database at {db}: run `ferbench leaderboard --runs RUNS_DIR` first")
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error as exc:
        raise FerbenchError(f"{db} is not a ferbench board ({' '.join(str(exc).split())})") from None
    try:
        yield con, _info(con, db)
    finally:
        con.close()


def _info(con, db) -> dict[str, Any]:
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if "board_info" not in tables:
        raise FerbenchError(f"{db} was built by an older ferbench; rebuild it: ferbench leaderboard --runs RUNS_DIR --db {db}")
    info = {k: v for k, v in con.execute("SELECT key, value FROM board_info").fetchall()}
    if info.get("format") != FORMAT:
        raise FerbenchError(f"{db} is a {info.get('format')!r} board, not {FORMAT!r}; rebuild it with `ferbench leaderboard`")
    return info


def _manifest_boards(con, protocol: str, manifest: str, metric: str, siblings: int, method: str) -> list[Board]:
    leak = con.execute("SELECT leakage_verdict, classes FROM protocols WHERE manifest_hash = ?", [manifest]).fetchone()
    groups = _dicts(con.execute("SELECT * FROM groups WHERE manifest_hash = ? ORDER BY section, group_id", [manifest]))
    boards = []
    ranked = [g for g in groups if g["section"] == "ranked"]
    partial = [g for g in groups if g["section"] == "partial"]
    for group_set in [[g] for g in ranked] + ([partial] if partial else []):
        g0 = group_set[0]
        board = Board(protocol, manifest, metric, leak[0] if leak else None, siblings, section=g0["section"],
                      coverage=g0["coverage"] if g0["section"] == "ranked" else "",
                      k_folds=g0["k_folds"], total_folds=g0["total_folds"], paired=all(g["paired"] for g in group_set),
                      method=method)
        _fill(con, board, [g["group_id"] for g in group_set], leak[1] if leak else [])
        boards.append(board)
    return boards


def _fill(con, board: Board, ids: list[str], classes: list[str]) -> None:
    order = "position" if board.section == "ranked" else "mean DESC, recipe_hash"
    board.entries = _dicts(con.execute(f"SELECT * FROM leaderboard WHERE group_id IN ? AND metric = ? ORDER BY {order}",
                                       [ids, board.metric]))
    others = [m for m in SHOWN if m != board.metric]
    also = con.execute("SELECT group_id, recipe_hash, metric, mean, std FROM leaderboard WHERE group_id IN ? AND metric IN ?",
                       [ids, others]).fetchall()
    base = _dicts(con.execute("SELECT * FROM baseline_scores WHERE group_id IN ? ORDER BY system", [ids]))
    reported = _dicts(con.execute("SELECT * FROM reported_vs_measured WHERE group_id IN ? ORDER BY recipe_name, metric, role",
                                  [ids]))
    groups = {r[0]: r for r in con.execute("SELECT group_id, coverage, k_folds, total_folds FROM groups WHERE group_id IN ?",
                                           [ids]).fetchall()}
    for e in board.entries:
        e["also"] = {m: (mean, std) for g, h, m, mean, std in also if g == e["group_id"] and h == e["recipe_hash"]}
        e["reported"] = [r for r in reported if r["group_id"] == e["group_id"] and r["recipe_hash"] == e["recipe_hash"]]
        _, e["coverage"], e["k_folds"], e["total_folds"] = groups[e["group_id"]]
        e["baseline_mean"] = next((b["mean"] for b in base if b["group_id"] == e["group_id"]
                                   and b["system"] == e["best_baseline"] and b["metric"] == board.metric), None)
    if board.section == "ranked":
        for system in sorted({b["system"] for b in base}):
            vals = {b["metric"]: b for b in base if b["system"] == system}
            board.baselines.append({**vals[board.metric], "also": {m: (vals[m]["mean"], vals[m]["std"]) for m in others}})
    board.reported = reported
    idx = {c: i for i, c in enumerate(classes)}
    cells = con.execute("SELECT recipe_hash, true_label, pred_label, n FROM confusion_matrix WHERE group_id IN ?",
                        [ids]).fetchall()
    for recipe, t, p, n in cells:
        cm = board.confusions.setdefault(recipe, (classes, np.zeros((len(classes), len(classes)))))[1]
        cm[idx[t], idx[p]] += n
    hashes = [e["recipe_hash"] for e in board.entries]
    facts = {r["recipe_hash"]: r for r in _dicts(con.execute(
        "SELECT * FROM entries WHERE manifest_hash = ? AND recipe_hash IN ?", [board.manifest_hash, hashes]))}
    names = _dicts(con.execute("SELECT * FROM entry_names WHERE manifest_hash = ? AND recipe_hash IN ? "
                               "ORDER BY recipe_name, recipe_file", [board.manifest_hash, hashes]))
    for h in hashes:
        origins = [{**n, "overrides": None if n["overrides"] is None else json.loads(n["overrides"])}
                   for n in names if n["recipe_hash"] == h]
        board.details.append({**facts[h], "origins": origins})
