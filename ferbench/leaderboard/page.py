"""The leaderboard as one static HTML page: no server, no external asset (CSS, JS, images and the CSV
downloads are inline), readable from a 360 px phone to a wide screen (tables scroll inside their own
container). Per protocol: an anchor, a CSV download, and per board its notes, the entries table
(sortable columns, a filter box), the method, the baselines on the same runs, reported vs measured,
and a drill-down per entry (per-source, per-class and per-fold scores, the confusion matrix with row
percentages, training curves, model facts).

Every string that comes from a user (recipe names, notes, sources, class and dataset names, paths) is
HTML-escaped; the CSV is percent-encoded into a ``data:`` URI. The drill-down tables and training
curves are read from the board's database (``db``); without it the page shows what the ``Board``
objects hold (tables, notes, confusion matrices, model facts).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import re
import urllib.parse
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .board import SHOWN, Board
from .render import _notes, _pct, _pm, _runs, _size, _vs, _vs_baseline, _vs_best, _warning

METRIC_NAMES = {"accuracy": "Accuracy", "balanced_accuracy": "Balanced accuracy", "macro_f1": "Macro F1",
                "weighted_precision": "Weighted precision", "weighted_recall": "Weighted recall",
                "weighted_f1": "Weighted F1"}
MAX_CURVE_RUNS = 12  # runs drawn per entry's training-curve plot (the first ones, in cell order)

CSS = """
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:8px 16px 40px;color:#1b1b1b;
 overflow-wrap:anywhere}
h1{font-size:1.5em}h2{font-size:1.3em;margin-top:2em;border-bottom:2px solid #ddd}h3{font-size:1.1em;margin-top:1.5em}
h4{margin:1em 0 .3em}
a.anchor{color:#888;text-decoration:none;margin-left:.3em}
nav ul{padding-left:1.2em}
.scroll{overflow-x:auto;width:fit-content;max-width:100%;margin:.4em 0}
table{border-collapse:collapse}
td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;white-space:nowrap;vertical-align:top;overflow-wrap:normal}
td.wrap{white-space:normal;min-width:16em;max-width:40em;overflow-wrap:anywhere}
thead th{background:#f3f5f7;position:sticky;top:0}
th button{font:inherit;font-weight:bold;border:0;background:none;padding:0;cursor:pointer;color:inherit;text-align:left}
th button::after{content:" \\2195";color:#999}
th[aria-sort=ascending] button::after{content:" \\25B2";color:#333}
th[aria-sort=descending] button::after{content:" \\25BC";color:#333}
tbody tr:nth-child(even){background:#fafafa}
.warn{background:#fde2e1;border:2px solid #c0392b;padding:8px;font-weight:bold}
.method,.caption{color:#444;font-size:.92em;max-width:70em}
.tools{display:flex;flex-wrap:wrap;gap:.5em 1em;align-items:center;margin:.5em 0}
input.filter{font:inherit;padding:4px 8px;width:20em;max-width:100%}
.count{color:#555;font-size:.9em}
a.csv{font-size:.95em}
details{border:1px solid #ddd;border-radius:4px;margin:.4em 0;padding:.2em .6em}
details[open]{padding-bottom:.6em}
summary{cursor:pointer;font-weight:bold}
.cm td{text-align:right}
.cm small{opacity:.8}
.legend{display:flex;align-items:center;gap:.5em;font-size:.85em;margin:.3em 0;flex-wrap:wrap}
.legend .bar{display:inline-block;width:10em;max-width:50vw;height:.9em;border:1px solid #999;
 background:linear-gradient(to right,rgba(33,102,172,0),rgba(33,102,172,1))}
dl.facts{display:grid;grid-template-columns:minmax(7em,max-content) minmax(0,1fr);gap:.2em 1em;margin:.4em 0}
dl.facts dt{font-weight:bold}dl.facts dd{margin:0}
img.curves{max-width:100%;height:auto;border:1px solid #eee}
code{font-size:.95em}
"""

JS = """
(function () {
  'use strict';
  function cellKey(td) {
    var text = td.textContent.trim();
    var v = td.getAttribute('data-v');
    if (v !== null) { return v === '' ? {missing: true} : {num: Number(v), text: text}; }
    if (text === '' || text === '\\u2014' || text === '\\u2013') { return {missing: true}; }
    var m = text.match(/^[+-]?\\d+(?:\\.\\d+)?/);
    return m ? {num: Number(m[0]), text: text} : {text: text};
  }
  function compare(a, b) {
    if (a.missing || b.missing) { return a.missing && b.missing ? 0 : (a.missing ? 1 : -1); }
    if (a.num !== undefined && b.num !== undefined && a.num !== b.num) { return a.num - b.num; }
    return a.text.localeCompare(b.text, undefined, {numeric: true, sensitivity: 'base'});
  }
  function sortBy(table, th, col) {
    var desc = th.getAttribute('aria-sort') === 'ascending';
    table.querySelectorAll('thead th').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', desc ? 'descending' : 'ascending');
    var body = table.tBodies[0];
    var rows = Array.prototype.map.call(body.rows, function (r, i) { return {row: r, i: i, key: cellKey(r.cells[col])}; });
    rows.sort(function (x, y) {
      var c = compare(x.key, y.key);
      if (desc && !x.key.missing && !y.key.missing) { c = -c; }
      return c || x.i - y.i;
    });
    rows.forEach(function (x) { body.appendChild(x.row); });
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    table.querySelectorAll('thead th').forEach(function (th, col) {
      var b = th.querySelector('button');
      if (b) { b.addEventListener('click', function () { sortBy(table, th, col); }); }
    });
  });
  document.querySelectorAll('input.filter').forEach(function (input) {
    var table = document.getElementById(input.getAttribute('data-for'));
    var out = input.parentNode.querySelector('.count');
    function run() {
      var q = input.value.trim().toLowerCase(), shown = 0, rows = table.tBodies[0].rows;
      for (var i = 0; i < rows.length; i++) {
        var show = !q || rows[i].textContent.toLowerCase().indexOf(q) >= 0;
        rows[i].hidden = !show;
        if (show) { shown++; }
      }
      out.textContent = (q ? shown + ' of ' : '') + rows.length + (rows.length === 1 ? ' row' : ' rows') + (q ? ' shown' : '');
    }
    input.addEventListener('input', run);
    run();
  });
})();
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def metric_name(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric.replace("_", " ").capitalize())


class Cell:
    """A table cell: its text, a numeric sort key (``None``: missing) and a CSS class."""

    __slots__ = ("text", "key", "cls", "has_key")

    def __init__(self, text: Any, key: Any = ..., cls: str = ""):
        self.text, self.cls, self.has_key = "" if text is None else str(text), cls, key is not ...
        self.key = None if key is ... else key

    def html(self) -> str:
        attrs = f" class='{self.cls}'" if self.cls else ""
        if self.has_key:
            ok = isinstance(self.key, (int, float)) and math.isfinite(self.key)
            attrs += f" data-v='{float(self.key)!r}'" if ok else " data-v=''"
        return f"<td{attrs}>{_e(self.text)}</td>"


def _cells(row: Iterable[Any]) -> str:
    return "".join((c if isinstance(c, Cell) else Cell(c)).html() for c in row)


def table(head: Sequence[str], rows: Sequence[Sequence[Any]], tid: str | None = None, sortable: bool = True,
          cls: str = "") -> str:
    """A table in its own horizontal scroll container; header buttons sort a sortable one."""
    classes = " ".join(c for c in ("sortable" if sortable else "", cls) if c)
    attrs = (f" id='{tid}'" if tid else "") + (f" class='{classes}'" if classes else "")
    ths = "".join(f"<th scope='col'><button type='button'>{_e(h)}</button></th>" if sortable else
                  f"<th scope='col'>{_e(h)}</th>" for h in head)
    body = "".join(f"<tr>{_cells(r)}</tr>" for r in rows)
    return f"<div class='scroll'><table{attrs}><thead><tr>{ths}</tr></thead><tbody>{body}</tbody></table></div>"


def _filter(tid: str, what: str) -> str:
    return (f"<div class='tools'><input type='search' class='filter' data-for='{tid}' placeholder='Filter {_e(what)}' "
            f"aria-label='Filter {_e(what)}'><span class='count' aria-live='polite'></span></div>")


def _slug(text: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-").lower() or "protocol"
    slug, i = base, 2
    while slug in taken:
        slug, i = f"{base}-{i}", i + 1
    taken.add(slug)
    return slug


def _points(v: float | None) -> Cell:
    return Cell(_pct(v), v)


def _rank_marks(board: Board) -> dict[int, str]:
    tiers: dict[int, int] = {}
    for e in board.entries:
        tiers[e["tier"]] = tiers.get(e["tier"], 0) + 1
    return {t: "=" if n > 1 else "" for t, n in tiers.items()}


def _names(e: dict[str, Any]) -> str:
    return " = ".join(e.get("names") or ["?"])


# -- the entries, baselines and reported tables ------------------------------------------------------------------
def entries_table(board: Board, tid: str) -> str:
    others = [m for m in SHOWN if m != board.metric]
    level = next((e["ci_level"] for e in board.entries if e["ci_level"]), 0.95)
    ci = f"{100 * level:g}% CI"
    ranked = board.section == "ranked"
    head = (["Rank"] if ranked else []) + ["Entry", "Hash", "Model"] + ([] if ranked else ["Coverage"])
    head += [f"{metric_name(board.metric)} (%) mean ± std", f"{ci} (%)"] + ([f"Δ vs best (points) [{ci}]"] if ranked else [])
    head += ["vs best baseline (points)", *[f"{metric_name(m)} (%)" for m in others], "Reported vs measured (%)", "Runs",
             "Params", "GFLOPs", "Data"]
    marks = _rank_marks(board)
    rows = []
    for e in board.entries:
        row: list[Any] = [Cell(f"{e['rank']}{marks.get(e['tier'], '')}", e["rank"])] if ranked else []
        row += [_names(e), e["short_hash"], e["model"] + (" (pretrained)" if e["pretrained"] else "")]
        if not ranked:
            row.append(Cell(f"partial {e['k_folds']}/{e['total_folds']} folds ({e['coverage']})", e["k_folds"]))
        row += [Cell(_pm(e["mean"], e["std"]), e["mean"]), Cell(_interval_pct(e["ci_lo"], e["ci_hi"]), e["ci_lo"])]
        if ranked:
            row.append(Cell(_vs_best(e), e.get("diff_best")))
        row.append(Cell(_vs_baseline(e), e.get("diff_baseline")))
        row += [Cell(_pm(*e["also"][m]), e["also"][m][0]) if m in e["also"] else Cell("—", None) for m in others]
        p, g = _size(e["params"], e["gflops"])
        row += [Cell(_vs(e), cls="wrap"), Cell(_runs(e), e["n_runs"]), Cell(p, e["params"]), Cell(g, e["gflops"]),
                ("SYNTHETIC " if e["synthetic"] else "") + (e["datasets"] or "")]
        rows.append(row)
    return table(head, rows, tid)


def _interval_pct(lo: float | None, hi: float | None) -> str:
    return "—" if lo is None else f"[{_pct(lo)}, {_pct(hi)}]"


def baselines_table(board: Board) -> str:
    others = [m for m in SHOWN if m != board.metric]
    head = ["Baseline", f"{metric_name(board.metric)} (%) mean ± std", "95% CI (%)", *[f"{metric_name(m)} (%)" for m in others],
            "Folds"]
    rows = [[b["system"], Cell(_pm(b["mean"], b["std"]), b["mean"]), Cell(_interval_pct(b["ci_lo"], b["ci_hi"]), b["ci_lo"]),
             *[Cell(_pm(*b["also"][m]), b["also"][m][0]) for m in others], Cell(b["n_folds"], b["n_folds"])]
            for b in board.baselines]
    return table(head, rows)


def reported_table(board: Board, tid: str) -> str:
    head = ["Entry", "Hash", "Metric (role)", "Reported (%)", "Measured (%)", "Δ (points)", "Source", "Notes"]
    rows = [[r["recipe_name"] or "?", r["recipe_hash"][:8], f"{metric_name(r['metric'])} ({r['role']})",
             Cell(f"{r['reported']:.2f}", r["reported"]),
             Cell("—" if r["measured"] is None else f"{r['measured']:.2f}", r["measured"]),
             Cell("—" if r["delta"] is None else f"{r['delta']:+.2f}", r["delta"]),
             Cell(r["source"] or "", cls="wrap"), Cell(r["notes"] or "", cls="wrap")] for r in board.reported]
    return table(head, rows, tid)


# -- the CSV download ---------------------------------------------------------------------------------------------
CSV_FIELDS = ("protocol", "manifest_hash", "section", "coverage", "rank", "tier", "system", "entry", "short_hash",
              "recipe_hash", "model", "pretrained", "metric", "mean", "std", "ci_lo", "ci_hi", "ci_level", "ci_unit",
              "diff_best", "diff_best_lo", "diff_best_hi", "tied_with_best", "best_baseline", "diff_baseline",
              "diff_baseline_lo", "diff_baseline_hi", "vs_baseline", *[f"{m}_{s}" for m in SHOWN for s in ("mean", "std")],
              "n_runs", "n_folds", "n_seeds", "params", "gflops", "synthetic", "datasets")


def _csv_text(value: Any) -> Any:
    """A spreadsheet must not run a user's string as a formula: text starting with = + - @ gets a quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def protocol_csv(boards: Sequence[Board]) -> str:
    """Every entry and baseline of a protocol's boards, one row each, raw fractions (not percent)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for board in boards:
        base = {"protocol": board.protocol, "manifest_hash": board.manifest_hash, "section": board.section,
                "metric": board.metric}
        for e in board.entries:
            also = {**e["also"], board.metric: (e["mean"], e["std"])}
            writer.writerow({**base, **{k: e.get(k) for k in CSV_FIELDS if k in e}, "system": "model",
                             "coverage": e.get("coverage"), "entry": _csv_text(_names(e)), "model": _csv_text(e["model"]),
                             "datasets": _csv_text(e.get("datasets")), "metric": board.metric,
                             **{f"{m}_{s}": also[m][i] for m in SHOWN if m in also for i, s in enumerate(("mean", "std"))}})
        for b in board.baselines:
            also = {**b["also"], board.metric: (b["mean"], b["std"])}
            writer.writerow({**base, "section": "baseline", "coverage": board.coverage, "system": b["system"],
                             "entry": f"baseline: {b['system']}", "mean": b["mean"], "std": b["std"], "ci_lo": b["ci_lo"],
                             "ci_hi": b["ci_hi"], "n_runs": b.get("n_runs"), "n_folds": b["n_folds"],
                             **{f"{m}_{s}": also[m][i] for m in SHOWN if m in also for i, s in enumerate(("mean", "std"))}})
    return buf.getvalue()


def csv_link(boards: Sequence[Board], slug: str) -> str:
    data = "data:text/csv;charset=utf-8," + urllib.parse.quote(protocol_csv(boards), safe="")
    return f"<a class='csv' download='ferbench-{slug}.csv' href='{data}'>Download this protocol as CSV</a>"


# -- the drill-down ----------------------------------------------------------------------------------------------------
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
        body.append([name, *[Cell(_pm(ms[m]["mean"], ms[m]["std"]), ms[m]["mean"]) if m in ms else Cell("—", None)
                             for m in SHOWN], Cell(any_row["n"], any_row["n"]), Cell(any_row["n_runs"], any_row["n_runs"])])
    return table(head, body)


def _class_table(rows: list[dict[str, Any]]) -> str:
    head = ["Class", "Precision (%)", "Recall (%)", "F1 (%)", "Support (all runs)"]
    return table(head, [[r["class"], _points(r["precision"]), _points(r["recall"]), _points(r["f1"]),
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
                     Cell(first["seed"], first["seed"]), _points(m.get("model")), _points(m.get("majority")),
                     _points(m.get("prior")), *[_points(ms[o]["model"]) if o in ms else Cell("—", None) for o in others]])
    return table(head, body)


def confusion_table(classes: Sequence[str], cm: np.ndarray) -> str:
    """Row percentages (each true class's share predicted as each class), counts beside, a blue scale."""
    totals = cm.sum(1)
    head = "".join(f"<th scope='col'>{_e(c)}</th>" for c in classes)
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
        rows.append(f"<tr><th scope='row'>{_e(c)}</th>{''.join(cells)}<td>{totals[i]:.0f}</td></tr>")
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
    score = next((k for k in (f"val_{metric}", "val_balanced_accuracy", "val_accuracy", "train_accuracy") if k in keys), None)
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
        return "".join(f"<p><img class='curves' alt='training curves, run {_e(label)}' "
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
    return (f"<p><img class='curves' alt='training curves{_e(more)}' src='data:image/png;base64,{png}'></p>"
            f"<p class='caption'>Drawn from each run's curves.csv{_e(more)}: train loss and validation score per epoch.</p>")


def _wall(seconds: float | None) -> str:
    if not seconds:
        return "—"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def facts_html(d: dict[str, Any] | None) -> str:
    if not d:
        return ""
    p, g = _size(d["params"], d["gflops"])
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
    return "<dl class='facts'>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items) + "</dl>"


def drill_down(board: Board, data: dict[str, Any], has_db: bool) -> str:
    facts = {d["recipe_hash"]: d for d in board.details}
    parts = ["<h4>Entries in detail</h4>"]
    for e in board.entries:
        key = (e["group_id"], e["recipe_hash"])
        head = f"{e['rank']}{'' if e['rank'] is None else '.'} " if board.section == "ranked" else ""
        body = [f"<details><summary>{_e(head)}{_e(_names(e))} <code>{_e(e['short_hash'])}</code> — {_e(e['model'])}: "
                f"{_e(_pm(e['mean'], e['std']))}</summary>"]
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


# -- the page ------------------------------------------------------------------------------------------------------------
def _board_title(board: Board) -> str:
    if board.section == "ranked":
        what = f"Ranked by {metric_name(board.metric).lower()} on {board.coverage} ({board.k_folds}/{board.total_folds} folds)"
    else:
        what = "Partial entries (unranked)"
    return f"{what} — manifest {board.manifest_hash[:12]}"


def _ci_units(board: Board) -> str:
    units = sorted({e["ci_unit"] for e in board.entries if e.get("ci_unit")})
    return f" Intervals resample test clusters by {', '.join(units)}." if units else ""


def board_html(board: Board, bid: str, drill: Drill) -> str:
    parts = [f"<h3 id='{bid}'>{_e(_board_title(board))}<a class='anchor' href='#{bid}' aria-label='link to this table'>#</a></h3>"]
    for note in _notes(board):
        parts.append(f"<p class='warn'>{_e(note)}</p>" if _warning(note) else f"<p class='caption'>{_e(note)}</p>")
    tid = f"{bid}-entries"
    parts += [_filter(tid, "entries"), entries_table(board, tid)]
    parts.append(f"<p class='method'>Method: {_e(board.method)}{_e(_ci_units(board))} Scores in percent; Δ in "
                 "percentage points.</p>")
    if board.baselines:
        parts += ["<h4>Baselines on the same runs</h4>", baselines_table(board),
                  "<p class='caption'>Majority class and class prior, rebuilt per fold from its training class counts and "
                  "scored on exactly the runs above; “vs best baseline” compares each entry with the higher of the two.</p>"]
    if board.reported:
        rid = f"{bid}-reported"
        parts += ["<h4>Reported vs measured</h4>", _filter(rid, "reported figures"), reported_table(board, rid),
                  "<p class='caption'>Each published figure of an entry's recipe beside the measured mean of the same "
                  "metric and role over the entry's counted runs; Δ = measured − reported, in points.</p>"]
    parts.append(drill_down(board, drill.load(board), drill.con is not None))
    return "\n".join(parts)


def render_html(boards: Sequence[Board], db: str | Path | None = None) -> str:
    """The whole page (see the module docstring); ``db``: the board's database, for the drill-down."""
    by_protocol: dict[str, list[Board]] = {}
    for b in boards:
        by_protocol.setdefault(b.protocol, []).append(b)
    taken: set[str] = set()
    slugs = {p: _slug(f"protocol-{p}", taken) for p in by_protocol}
    parts = ["<!doctype html>", "<html lang='en'><head><meta charset='utf-8'>",
             "<meta name='viewport' content='width=device-width, initial-scale=1'>",
             "<title>ferbench leaderboard</title>", f"<style>{CSS}</style></head><body>",
             "<h1>ferbench leaderboard</h1>"]
    if not boards:
        parts.append("<p>No results.</p>")
    else:
        parts.append("<nav aria-label='protocols'><ul>" + "".join(
            f"<li><a href='#{slugs[p]}'>{_e(p)}</a> ({sum(len(b.entries) for b in bs)} entries)</li>"
            for p, bs in by_protocol.items()) + "</ul></nav>")
    drill = Drill(db)
    try:
        for protocol, mine in by_protocol.items():
            slug = slugs[protocol]
            parts.append(f"<section aria-labelledby='{slug}'><h2 id='{slug}'>Protocol {_e(protocol)}"
                         f"<a class='anchor' href='#{slug}' aria-label='link to this protocol'>#</a></h2>")
            parts.append(f"<p>{csv_link(mine, slug)}</p>")
            counts: dict[str, int] = {}
            for board in mine:
                n = counts[board.section] = counts.get(board.section, 0) + 1
                parts.append(board_html(board, f"{slug}-{board.section}-{n}", drill))
            parts.append("</section>")
    finally:
        drill.close()
    parts += [f"<script>{JS}</script>", "</body></html>"]
    return "\n".join(parts)
