"""The DuckDB leaderboard: ingest run records, rank models per protocol, export table / Markdown / HTML.

Runs never touch the database (DuckDB lets one process hold a file): each run writes its own
``result.json``, and ``ingest`` rebuilds ``leaderboard/ferbench.duckdb`` from all of them into a
temporary file that replaces the old one atomically. Ingesting is therefore idempotent, safe to run
while runs finish, and the database can always be deleted and rebuilt. Tables: ``leaderboard/schema.sql``;
views (the ranking): ``leaderboard/views.sql``.

Models are ranked per (protocol, manifest): results whose manifests differ are never ranked
together (asking for a protocol with several manifests is an error unless one is chosen). Every
table shows the majority-class and class-prior baselines, mean ± std over folds × seeds, the
bootstrap CI (subjects resampled where known), the leakage verdict, and flags synthetic data.
A recipe with a ``reported`` block shows the published figure beside the measured mean of the same
metric and role ("reported vs measured"); its source is listed under the table.
"""

from __future__ import annotations

import base64
import html
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .errors import FerbenchError
from .run_record import RESULT, RunRecord

SQL_DIR = Path(__file__).resolve().parent.parent / "leaderboard"
DEFAULT_DB = Path("leaderboard") / "ferbench.duckdb"
DEFAULT_METRIC = "balanced_accuracy"
SHOWN = ("balanced_accuracy", "accuracy", "macro_f1")


def find_results(runs: Iterable[str | Path]) -> list[Path]:
    """Every finished run's record under the given run folders (one level deep), sorted."""
    found = []
    for root in runs:
        root = Path(root)
        found += root.glob(f"*/{RESULT}") if root.is_dir() else []
    return sorted(found)


def ingest(runs: Iterable[str | Path], db: str | Path = DEFAULT_DB) -> int:
    """Rebuild the database from every result record under ``runs``; returns the number of runs."""
    import duckdb

    records = [RunRecord.load(p) for p in find_results(runs)]
    db = Path(db)
    db.parent.mkdir(parents=True, exist_ok=True)
    tmp = db.with_name(f".{db.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        con = duckdb.connect(str(tmp))
        con.execute(_sql("schema.sql"))
        for table, rows in _rows(records).items():
            if rows:
                _insert(con, table, rows)
        _insert(con, "intervals", _intervals(records))
        con.execute(_sql("views.sql"))
        con.close()
        os.replace(tmp, db)
    finally:
        tmp.unlink(missing_ok=True)
    return len(records)


def _sql(name: str) -> str:
    path = SQL_DIR / name
    if not path.is_file():
        raise FerbenchError(f"{path} is missing: the leaderboard SQL ships with the ferbench source tree")
    return path.read_text()


def _insert(con, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    import pyarrow as pa

    arrow = pa.Table.from_pylist(rows)  # noqa: F841  (read by DuckDB's replacement scan)
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM arrow")


def _rows(records: list[RunRecord]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in (
        "runs", "fold_metrics", "confusion", "predictions", "datasets", "run_datasets", "protocols", "environment",
        "reported")}
    datasets: dict[str, dict[str, Any]] = {}
    protocols: dict[str, dict[str, Any]] = {}
    for rec in records:
        rid, m, p, rc = rec.run_id, rec.metrics, rec.protocol, rec.recipe
        sel, n = rec.selection, m["n"]
        out["runs"].append({
            "run_id": rid, "run_name": rec.run_name, "run_dir": str(rec.run_dir), "created_at": rec.created_at,
            "recipe_name": rc["name"], "recipe_hash": rc["hash"], "model": rc["model"], "modality": rc["modality"],
            "input_size": rc["input_size"], "channels": rc["channels"], "pretrained": rc["pretrained"],
            "protocol": p["name"], "manifest_hash": rec.manifest_hash, "repeat_idx": rec.repeat,
            "fold": rec.fold, "seed": rec.seed, "code_version": rec.code_version,
            "n_train": n.get("train"), "n_val": n.get("val"), "n_test": n.get("test"),
            "selection": sel["rule"], "selected_epoch": sel["epoch"], "epochs_ran": sel["epochs_ran"],
            "stopped_early": sel["stopped_early"], "ci_resamples": rc["eval"]["bootstrap"], "ci_level": rc["eval"]["ci"],
        })
        if rc.get("reported"):
            out["reported"].append({"run_id": rid, **{k: rc["reported"].get(k) for k in ("value", "metric", "role", "source", "notes")}})
        systems = [("model", role, m[role]) for role in ("test", "val") if m.get(role)]
        systems += [(name, "test", b) for name, b in m["baselines"].items()]
        for system, role, scores in systems:
            values = {k: v for k, v in scores.items() if isinstance(v, (int, float)) and k != "n"}
            values.update({f"recall/{c}": v for c, v in scores["per_class_recall"].items()})
            out["fold_metrics"] += [{"run_id": rid, "system": system, "role": role, "metric": k, "value": v}
                                    for k, v in values.items()]
        classes = m["classes"]
        for i, row in enumerate(m["test"]["confusion"]):
            out["confusion"] += [{"run_id": rid, "role": "test", "true_label": classes[i], "pred_label": classes[j], "n": int(c)}
                                 for j, c in enumerate(row)]
        out["predictions"].append({"run_id": rid, "path": str(rec.predictions_path)})
        for d in rec.datasets:
            datasets[d["fingerprint"]] = {"fingerprint": d["fingerprint"], "name": d["name"], "title": d.get("title"),
                                          "synthetic": bool(d.get("synthetic")), "num_rows": d.get("num_rows")}
            out["run_datasets"].append({"run_id": rid, "fingerprint": d["fingerprint"]})
        leak = p.get("leakage") or {}
        protocols[p["manifest_hash"]] = {
            "manifest_hash": p["manifest_hash"], "protocol": p["name"], "version": p.get("version"), "seed": p.get("seed"),
            "params": json.dumps(p.get("params"), sort_keys=True), "n_folds": p["n_folds"], "n_repeats": p["n_repeats"],
            "classes": p["classes"], "leakage_verdict": leak.get("verdict"), "subject_overlap": leak.get("subject_overlap"),
            "exact_duplicates": leak.get("exact_duplicates"), "near_duplicates": leak.get("near_duplicates"),
        }
        env = rec.environment
        out["environment"].append({**{k: env.get(k) for k in (
            "git_sha", "git_dirty", "python", "platform", "device", "device_name", "driver", "cuda", "precision",
            "world_size", "wall_s", "train_samples_per_s")}, "run_id": rid, "packages": json.dumps(env.get("packages"), sort_keys=True)})
    out["datasets"] = list(datasets.values())
    out["protocols"] = list(protocols.values())
    return out


def _intervals(records: list[RunRecord]) -> list[dict[str, Any]]:
    """Subject-bootstrap CIs of each entry's test predictions pooled over its runs."""
    import pyarrow.parquet as pq

    from .metrics import SCALARS, bootstrap_ci

    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for rec in records:
        groups.setdefault((rec.manifest_hash, rec.recipe_hash), []).append(rec)
    rows = []
    for (manifest, recipe), recs in sorted(groups.items()):
        recs = sorted(recs, key=lambda r: r.run_id)
        tables = [pq.read_table(r.predictions_path, columns=["role", "subject_id", "label", "pred"]) for r in recs]
        truth, pred, subjects = [], [], []
        for t in tables:
            test = t.filter(np.asarray(t.column("role").to_pylist()) == "test")
            truth.append(test.column("label").to_numpy())
            pred.append(test.column("pred").to_numpy())
            subjects += test.column("subject_id").to_pylist()
        ev = recs[0].recipe["eval"]
        unit = "subject" if any(s is not None for s in subjects) else "sample"
        cis = bootstrap_ci(np.concatenate(truth), np.concatenate(pred), subjects, len(recs[0].classes),
                           n_boot=ev["bootstrap"], ci=ev["ci"])
        clusters = len({s if s is not None else ("row", i) for i, s in enumerate(subjects)})
        rows += [{"manifest_hash": manifest, "recipe_hash": recipe, "metric": k, "lo": cis[k][0], "hi": cis[k][1],
                  "level": ev["ci"], "unit": unit, "clusters": clusters} for k in SCALARS]
    return rows


# -- ranking ------------------------------------------------------------------------------------------
@dataclass
class Board:
    """One ranking: the entries of one (protocol, manifest), with the baselines."""

    protocol: str
    manifest_hash: str
    metric: str
    leakage: str | None
    siblings: int  # other manifests of the same protocol (never ranked together)
    entries: list[dict[str, Any]] = field(default_factory=list)
    baselines: list[dict[str, Any]] = field(default_factory=list)
    confusions: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict)

    @property
    def synthetic(self) -> bool:
        return any(e["synthetic"] for e in self.entries)


def rank(db: str | Path = DEFAULT_DB, protocol: str | None = None, manifest: str | None = None,
         metric: str = DEFAULT_METRIC) -> list[Board]:
    """Rankings per (protocol, manifest); refuses a protocol whose results span several manifests."""
    import duckdb

    from .metrics import SCALARS

    if metric not in SCALARS:
        raise FerbenchError(f"unknown metric {metric!r}; one of {', '.join(SCALARS)}")
    if not Path(db).is_file():
        raise FerbenchError(f"no leaderboard database at {db}: run `ferbench leaderboard --runs RUNS_DIR` first")
    con = duckdb.connect(str(db), read_only=True)
    try:
        pairs = con.execute("SELECT DISTINCT protocol, manifest_hash FROM runs ORDER BY ALL").fetchall()
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
        per_protocol = dict(con.execute("SELECT protocol, count(DISTINCT manifest_hash) FROM runs GROUP BY 1").fetchall())
        return [_board(con, p, h, metric, per_protocol[p] - 1) for p, h in pairs]
    finally:
        con.close()


def _board(con, protocol: str, manifest: str, metric: str, siblings: int) -> Board:
    leak = con.execute("SELECT leakage_verdict FROM protocols WHERE manifest_hash = ?", [manifest]).fetchone()
    board = Board(protocol, manifest, metric, leak[0] if leak else None, siblings)
    cur = con.execute(
        "SELECT * FROM leaderboard WHERE manifest_hash = ? AND metric = ? ORDER BY rank, model", [manifest, metric])
    cols = [d[0] for d in cur.description]
    board.entries = [dict(zip(cols, row)) for row in cur.fetchall()]
    others = con.execute(
        "SELECT recipe_hash, metric, mean, std FROM entry_scores WHERE manifest_hash = ? AND metric IN ?",
        [manifest, [m for m in SHOWN if m != metric]]).fetchall()
    for e in board.entries:
        e["also"] = {m: (mean, std) for h, m, mean, std in others if h == e["recipe_hash"]}
    base = con.execute(
        "SELECT system, metric, mean, std, n_folds FROM baseline_scores WHERE manifest_hash = ? ORDER BY system",
        [manifest]).fetchall()
    for system in sorted({b[0] for b in base}):
        vals = {m: (mean, std, n) for s, m, mean, std, n in base if s == system}
        board.baselines.append({"system": system, "mean": vals[metric][0], "std": vals[metric][1],
                                "n_folds": vals[metric][2], "also": {m: vals[m][:2] for m in SHOWN if m != metric}})
    classes = con.execute("SELECT classes FROM protocols WHERE manifest_hash = ?", [manifest]).fetchone()[0]
    idx = {c: i for i, c in enumerate(classes)}
    cells = con.execute(
        "SELECT r.recipe_hash, c.true_label, c.pred_label, sum(c.n) FROM runs r JOIN confusion c USING (run_id) "
        "WHERE r.manifest_hash = ? AND c.role = 'test' GROUP BY ALL", [manifest]).fetchall()
    for recipe, t, p, n in cells:
        cm = board.confusions.setdefault(recipe, (classes, np.zeros((len(classes), len(classes)))))[1]
        cm[idx[t], idx[p]] += n
    return board


# -- rendering ----------------------------------------------------------------------------------------
def _pm(mean: float, std: float) -> str:
    return f"{100 * mean:.2f} ± {100 * std:.2f}"


def _rows_for(board: Board) -> tuple[list[str], list[list[str]]]:
    others = [m for m in SHOWN if m != board.metric]
    level = board.entries[0]["ci_level"] if board.entries and board.entries[0]["ci_level"] else 0.95
    head = ["#", "model", "recipe", f"{board.metric} (%)", f"{round(100 * level)}% CI", *[f"{m} (%)" for m in others],
            "reported vs measured (%)", "runs (folds×seeds)", "data"]
    body = []
    for e in board.entries:
        ci = "—" if e["ci_lo"] is None else f"[{100 * e['ci_lo']:.2f}, {100 * e['ci_hi']:.2f}] by {e['ci_unit']}"
        body.append([str(e["rank"]), e["model"] + (" (pretrained)" if e["pretrained"] else ""), e["recipe_name"] or "",
                     _pm(e["mean"], e["std"]), ci, *[_pm(*e["also"][m]) if m in e["also"] else "—" for m in others],
                     _vs(e), f"{e['n_runs']} ({e['n_folds']}×{e['n_seeds']})",
                     ("SYNTHETIC " if e["synthetic"] else "") + (e["datasets"] or "")])
    for b in board.baselines:
        body.append(["–", f"baseline: {b['system']}", "", _pm(b["mean"], b["std"]), "—",
                     *[_pm(*b["also"][m]) for m in others], "—", f"{b['n_folds']} folds", ""])
    return head, body


def _vs(entry: dict[str, Any]) -> str:
    """"55.54 vs 53.20 accuracy (test)": the published figure beside the measured mean of the same metric and role."""
    if entry.get("reported_value") is None:
        return "—"
    measured = "—" if entry["reported_measured"] is None else f"{100 * entry['reported_measured']:.2f}"
    return f"{entry['reported_value']:.2f} vs {measured} {entry['reported_metric']} ({entry['reported_role']})"


def _notes(board: Board) -> list[str]:
    notes = []
    if board.synthetic:
        notes.append("SYNTHETIC DATA: these results come from generated data, not from the real dataset(s).")
    if board.leakage and board.leakage != "clean":
        notes.append(f"LEAKAGE: the manifest's leakage verdict is {board.leakage!r}; results are not subject-independent.")
    if board.siblings:
        notes.append(f"{board.siblings} other manifest(s) exist for {board.protocol}; they are ranked separately, never together.")
    notes.append("± is the sample std over runs (folds × seeds); the CI is a bootstrap of the pooled test predictions.")
    sources = [f"{e['recipe_name']}: {e['reported_source']}" for e in board.entries if e.get("reported_value") is not None]
    if sources:
        notes.append("Reported figures (from the publication each recipe reproduces, under its own protocol): " + "; ".join(sources) + ".")
    return notes


def _warning(note: str) -> bool:
    return note.startswith(("SYNTHETIC", "LEAKAGE"))


def _title(board: Board) -> str:
    return f"{board.protocol} — manifest {board.manifest_hash[:12]} — ranked by {board.metric}"


def render_text(boards: Sequence[Board], markdown: bool = False) -> str:
    out = []
    for board in boards:
        head, body = _rows_for(board)
        out.append(("## " if markdown else "") + _title(board))
        for note in _notes(board):
            out.append(("> " + (f"**{note}**" if _warning(note) else note)) if markdown else "  " + note)
        out.append("")
        if markdown:
            out.append("| " + " | ".join(head) + " |")
            out.append("|" + "---|" * len(head))
            out += ["| " + " | ".join(row) + " |" for row in body]
        else:
            widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
            out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [head, *body]]
        out.append("")
    return "\n".join(out) if boards else "no results\n"


def render_html(boards: Sequence[Board]) -> str:
    """A static page: one table per ranking, its notes, and each entry's pooled test confusion matrix."""
    from .metrics import confusion_png

    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>ferbench leaderboard</title><style>",
             "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
             "padding:4px 8px;text-align:left}.warn{background:#fde2e1;border:2px solid #c0392b;padding:8px;"
             "font-weight:bold}.cm{display:inline-block;margin:8px;text-align:center}</style></head><body>",
             "<h1>ferbench leaderboard</h1>"]
    for board in boards:
        head, body = _rows_for(board)
        parts.append(f"<h2>{html.escape(_title(board))}</h2>")
        for note in _notes(board):
            cls = " class='warn'" if _warning(note) else ""
            parts.append(f"<p{cls}>{html.escape(note)}</p>")
        parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body]
        parts.append("</table>")
        for e in board.entries:
            classes, cm = board.confusions[e["recipe_hash"]]
            png = base64.b64encode(confusion_png(cm, classes, f"{e['model']} ({e['recipe_name']})")).decode()
            parts.append(f"<div class='cm'><img alt='confusion matrix' src='data:image/png;base64,{png}'></div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def render(boards: Sequence[Board], fmt: str) -> str:
    if fmt == "html":
        return render_html(boards)
    return render_text(boards, markdown=fmt == "md")
