"""The leaderboard page's drill-down per entry: per-source, per-class and per-fold scores, the
confusion matrix with row percentages and a colour bar, training curves (PNG, inline) and the model
and run facts, read from the board's database."""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .board import SHOWN, Board
from .html_parts import Cell, entry_names, esc, metric_name, points, table
from .cells import pm, size_text

MAX_CURVE_RUNS = 12  # runs drawn per entry's training-curve plot (the first ones, in cell order)


class Drill:
    """The per-entry views of the board's database (empty without one), read once per board."""

    def __init__(self, db: str | Path | None):
        self.con = None
        if db is not None:
            import duckdb

            self.con = duckdb.connect(str(db), read_only=True)

    def close(self) -> None:
        if self.con is not None:
            self.con.close()

    def load(self, board: Board) -> dict[str, dict[tuple[str, str], list[dict[str, Any]]]]:
        out: dict[str, dict[tuple[str, str], list[dict[str, Any]]]] = {k: {} for k in ("source", "cls", "fold", "runs")}
        ids = sorted({e["group_id"] for e in board.entries})
        if self.con is None or not ids:
            return out
        queries = {
            "source": ("SELECT * FROM per_source WHERE group_id IN ? AND metric IN ? ORDER BY dataset", [ids, list(SHOWN)]),
            "cls": ("SELECT * FROM per_class WHERE group_id IN ? ORDER BY class_idx", [ids]),
            "fold": ("SELECT * FROM per_fold WHERE group_id IN ? AND metric IN ? ORDER BY repeat_idx, fold, seed, run_id",
                     [ids, list(SHOWN)]),
            "runs": ("SELECT gr.group_id, gr.recipe_hash, r.run_dir, r.repeat_idx, r.fold, r.seed FROM group_runs gr "
                     "JOIN runs r USING (run_id) WHERE gr.group_id IN ? ORDER BY r.repeat_idx, r.fold, r.seed", [ids]),
        }
        for key, (query, params) in queries.items():
            cur = self.con.execute(query, params)
            cols = [d[0] for d in cur.description]
            for row in cur.fetchall():
                r = dict(zip(cols, row))
                out[key].setdefault((r["group_id"], r["recipe_hash"]), []).append(r)
        return out


def _source_table(rows: list[dict[str, Any]]) -> str:
    by: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(r["dataset"], {})[r["metric"]] = r
    head = ["Source dataset", *[f"{metric_name(m)} (%)" for m in SHOWN], "Test samples (all runs)", "Runs"]
    body = []
    for name, ms in by.items():
        any_row = next(iter(ms.values()))
        body.append([name, *[Cell(pm(ms[m]["mean"], ms[m]["std"]), ms[m]["mean"]) if m in ms else Cell("—", None)
                             for m in SHOWN], Cell(any_row["n"], any_row["n"]), Cell(any_row["n_runs"], any_row["n_runs"])])
    return table(head, body)


def _class_table(rows: list[dict[str, Any]]) -> str:
    head = ["Class", "Precision (%)", "Recall (%)", "F1 (%)", "Support (all runs)"]
    return table(head, [[r["class"], points(r["precision"]), points(r["recall"]), points(r["f1"]),
                         Cell(r["support"], r["support"])] for r in rows])


def _fold_table(rows: list[dict[str, Any]], metric: str) -> str:
    runs: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        runs.setdefault(r["run_id"], {})[r["metric"]] = r
    others = [m for m in SHOWN if m != metric]
    name = metric_name(metric)
    head = ["Repeat", "Fold", "Seed", f"{name} (%)", f"{name}: majority (%)", f"{name}: prior (%)",
            *[f"{metric_name(m)} (%)" for m in others]]
    body = []
    for ms in runs.values():
        first = next(iter(ms.values()))
        m = ms.get(metric, {})
        body.append([Cell(first["repeat_idx"], first["repeat_idx"]), Cell(first["fold"], first["fold"]),
                     Cell(first["seed"], first["seed"]), points(m.get("model")), points(m.get("majority")),
                     points(m.get("prior")), *[points(ms[o]["model"]) if o in ms else Cell("—", None) for o in others]])
    return table(head, body)


def confusion_table(classes: Sequence[str], cm: np.ndarray) -> str:
    """Row percentages (each true class's share predicted as each class), counts beside, a blue scale."""
    totals = cm.sum(1)
    head = "".join(f"<th scope='col'>{esc(c)}</th>" for c in classes)
    rows = []
    for i, c in enumerate(classes):
        cells = []
        for j in range(len(classes)):
            pct = 100 * cm[i, j] / totals[i] if totals[i] else None
            if pct is None:
                cells.append("<td>—</td>")
                continue
            alpha = pct / 100
            style = f"background:rgba(33,102,172,{alpha:.2f})" + (";color:#fff" if alpha > 0.55 else "")
            cells.append(f"<td style='{style}'>{pct:.1f}% <small>({cm[i, j]:.0f})</small></td>")
        rows.append(f"<tr><th scope='row'>{esc(c)}</th>{''.join(cells)}<td>{totals[i]:.0f}</td></tr>")
    return (f"<div class='scroll'><table><thead><tr><th scope='col'>true \\ predicted</th>{head}"
            f"<th scope='col'>Samples</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
            "<div class='legend'><span>row share: 0%</span><span class='bar' role='img' "
            "aria-label='colour scale from white (0%) to dark blue (100%)'></span><span>100%</span>"
            "<span>(cell: % of the true class, count in brackets; summed over the entry's counted runs)</span></div>")


def _read_curves(path: Path) -> list[dict[str, float]]:
    rows = []
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            parsed = {}
            for k, v in row.items():
                try:
                    parsed[k] = float(v)
                except (TypeError, ValueError):
                    continue
            rows.append(parsed)
    return rows


def curves_png(runs: list[tuple[str, list[dict[str, float]]]], metric: str) -> bytes:
    """Train loss and a validation score (the board's metric if the runs logged it) per epoch, a line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = set().union(*(r.keys() for _, rows in runs for r in rows))
    score = next((k for k in (f"val_{metric}", "val_balanced_accuracy", "val_accuracy", f"test_{metric}",
                              "test_balanced_accuracy", "train_accuracy") if k in keys), None)  # test_*: select on_test
    fig, axes = plt.subplots(1, 2 if score else 1, figsize=(7.2 if score else 3.8, 2.6), dpi=80, squeeze=False)
    for label, rows in runs:
        x = np.arange(1, len(rows) + 1)
        axes[0, 0].plot(x, [r.get("train_loss", np.nan) for r in rows], marker=".", label=label)
        if score:
            axes[0, 1].plot(x, [100 * r.get(score, np.nan) for r in rows], marker=".", label=label)
    axes[0, 0].set(xlabel="epoch", ylabel="train loss")
    if score:
        axes[0, 1].set(xlabel="epoch", ylabel=f"{score.replace('_', ' ')} (%)")
    if 1 < len(runs) <= 6:
        axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def curves_html(runs: list[dict[str, Any]], metric: str) -> str:
    """The runs' own curves PNGs if they have one, else one plot drawn from their ``curves.csv``."""
    dirs = [(Path(r["run_dir"]), f"r{r['repeat_idx']} f{r['fold']} s{r['seed']}") for r in runs]
    pngs = [(d / "curves.png", label) for d, label in dirs if (d / "curves.png").is_file()][:MAX_CURVE_RUNS]
    if pngs:
        return "".join(f"<p><img class='curves' alt='training curves, run {esc(label)}' "
                       f"src='data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}'></p>" for p, label in pngs)
    data = []
    for d, label in dirs:
        try:
            rows = _read_curves(d / "curves.csv") if (d / "curves.csv").is_file() else []
        except (OSError, csv.Error, UnicodeDecodeError):
            rows = []
        if rows:
            data.append((label, rows))
    if not data:
        return "<p class='caption'>No training curves: the runs' folders (curves.csv) are not available.</p>"
    shown = data[:MAX_CURVE_RUNS]
    png = base64.b64encode(curves_png(shown, metric)).decode()
    more = f" (the first {len(shown)} of {len(data)} runs)" if len(data) > len(shown) else ""
    return (f"<p><img class='curves' alt='training curves{esc(more)}' src='data:image/png;base64,{png}'></p>"
            f"<p class='caption'>Drawn from each run's curves.csv{esc(more)}: train loss and validation score per epoch.</p>")


def _wall(seconds: float | None) -> str:
    if not seconds:
        return "—"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def facts_html(d: dict[str, Any] | None) -> str:
    if not d:
        return ""
    p, g = size_text(d["params"], d["gflops"])
    items = [("Parameters", p), ("GFLOPs", g),
             ("Pretraining", d["pretrained_source"] or ("yes" if d["pretrained"] else "none (trained from scratch)")),
             ("Checkpoint sha256", ", ".join(d["checkpoint_sha256"] or []) or "—"),
             ("Device", ", ".join(d["devices"] or []) or "—"),
             ("Ran", f"{str(d['first_run'])[:19]} – {str(d['last_run'])[:19]} (UTC)"),
             ("Wall time (all runs)", _wall(d["wall_s"])),
             ("ferbench version", ", ".join(d["ferbench_versions"] or []) or "—"),
             ("git sha", ", ".join(d["git_shas"] or []) or "—"),
             ("Recipe hash", d["recipe_hash"])]
    for o in d.get("origins", []):
        where = (f"{o['recipe_file']} ({o['located']})" if o["recipe_file"] else
                 "no recipe file found at run time" if o["recorded"] else "recipe file not recorded")
        diff = o["overrides"]
        changes = ("overrides not recorded" if diff is None else "no overrides" if not diff else
                   "overrides: " + ", ".join(f"{k}: {json.dumps(a)} → {json.dumps(b)}" for k, (a, b) in diff.items()))
        items.append((f"Recipe “{o['recipe_name']}”", f"{where}; {changes}"))
    return "<dl class='facts'>" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items) + "</dl>"


def drill_down(board: Board, data: dict[str, Any], has_db: bool) -> str:
    facts = {d["recipe_hash"]: d for d in board.details}
    parts = ["<h4>Entries in detail</h4>"]
    for e in board.entries:
        key = (e["group_id"], e["recipe_hash"])
        head = f"{e['rank']}{'' if e['rank'] is None else '.'} " if board.section == "ranked" else ""
        body = [f"<details><summary>{esc(head)}{esc(entry_names(e))} <code>{esc(e['short_hash'])}</code> — {esc(e['model'])}: "
                f"{esc(pm(e['mean'], e['std']))}</summary>"]
        if has_db:
            if data["source"].get(key):
                body += ["<h4>Per source dataset</h4>", _source_table(data["source"][key])]
            if data["cls"].get(key):
                body += ["<h4>Per class (test; mean over the counted runs)</h4>", _class_table(data["cls"][key])]
            if data["fold"].get(key):
                body += ["<h4>Per fold (test), beside the baselines of the same fold</h4>",
                         _fold_table(data["fold"][key], board.metric)]
        if e["recipe_hash"] in board.confusions:
            classes, cm = board.confusions[e["recipe_hash"]]
            body += ["<h4>Confusion matrix (test)</h4>", f"<div class='cm'>{confusion_table(classes, cm)}</div>"]
        if has_db:
            body += ["<h4>Training curves</h4>", curves_html(data["runs"].get(key, []), board.metric)]
        body += ["<h4>Model and run facts</h4>", facts_html(facts.get(e["recipe_hash"])), "</details>"]
        parts.append("".join(body))
    return "\n".join(parts)
