"""The leaderboard as one static HTML page: no server, no external asset (CSS, JS, images and the CSV
downloads are inline), readable from a 360 px phone to a wide screen (tables scroll inside their own
container). Per protocol: an anchor, a CSV download, and per board its notes, the entries table
(sortable columns, a filter box), the method, the baselines on the same runs, reported vs measured,
and a drill-down per entry (per-source, per-class and per-fold scores, the confusion matrix with row
percentages, training curves, model facts).

Every string that comes from a user (recipe names, notes, sources, class and dataset names, paths) is
HTML-escaped; the CSV is percent-encoded into a ``data:`` URI. The drill-down tables and training
curves are read from the board's database (``db``); without it the page shows what the ``Board``
objects hold (tables, notes, confusion matrices, model facts). The pieces: ``html_parts`` (CSS, JS,
escaping, tables), ``drill`` (the per-entry drill-down); this module lays out the tables and the page.
"""

from __future__ import annotations

import csv
import io
import urllib.parse
from pathlib import Path
from typing import Any, Sequence

from .board import SHOWN, Board
from .drill import Drill, drill_down
from .html_parts import CSS, JS, Cell, entry_names, esc, filter_box, make_slug, metric_name, table
from .cells import board_notes, is_warning, pct, pm, runs_text, size_text, vs_baseline, vs_best, vs_reported


def _rank_marks(board: Board) -> dict[int, str]:
    tiers: dict[int, int] = {}
    for e in board.entries:
        tiers[e["tier"]] = tiers.get(e["tier"], 0) + 1
    return {t: "=" if n > 1 else "" for t, n in tiers.items()}


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
        row += [entry_names(e), e["short_hash"], e["model"] + (" (pretrained)" if e["pretrained"] else "")]
        if not ranked:
            row.append(Cell(f"partial {e['k_folds']}/{e['total_folds']} folds ({e['coverage']})", e["k_folds"]))
        row += [Cell(pm(e["mean"], e["std"]), e["mean"]), Cell(_interval_pct(e["ci_lo"], e["ci_hi"]), e["ci_lo"])]
        if ranked:
            row.append(Cell(vs_best(e), e.get("diff_best")))
        row.append(Cell(vs_baseline(e), e.get("diff_baseline")))
        row += [Cell(pm(*e["also"][m]), e["also"][m][0]) if m in e["also"] else Cell("—", None) for m in others]
        p, g = size_text(e["params"], e["gflops"])
        row += [Cell(vs_reported(e), cls="wrap"), Cell(runs_text(e), e["n_runs"]), Cell(p, e["params"]), Cell(g, e["gflops"]),
                ("SYNTHETIC " if e["synthetic"] else "") + (e["datasets"] or "")]
        rows.append(row)
    return table(head, rows, tid)


def _interval_pct(lo: float | None, hi: float | None) -> str:
    return "—" if lo is None else f"[{pct(lo)}, {pct(hi)}]"


def baselines_table(board: Board) -> str:
    others = [m for m in SHOWN if m != board.metric]
    head = ["Baseline", f"{metric_name(board.metric)} (%) mean ± std", "95% CI (%)", *[f"{metric_name(m)} (%)" for m in others],
            "Folds"]
    rows = [[b["system"], Cell(pm(b["mean"], b["std"]), b["mean"]), Cell(_interval_pct(b["ci_lo"], b["ci_hi"]), b["ci_lo"]),
             *[Cell(pm(*b["also"][m]), b["also"][m][0]) for m in others], Cell(b["n_folds"], b["n_folds"])]
            for b in board.baselines]
    return table(head, rows)


def reported_table(board: Board, tid: str) -> str:
    head = ["Entry", "Hash", "Metric (role)", "Reported", "Measured", "Δ", "Source", "Notes"]
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
                             "coverage": e.get("coverage"), "entry": _csv_text(entry_names(e)), "model": _csv_text(e["model"]),
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
    parts = [f"<h3 id='{bid}'>{esc(_board_title(board))}<a class='anchor' href='#{bid}' aria-label='link to this table'>#</a></h3>"]
    for note in board_notes(board):
        parts.append(f"<p class='warn'>{esc(note)}</p>" if is_warning(note) else f"<p class='caption'>{esc(note)}</p>")
    tid = f"{bid}-entries"
    parts += [filter_box(tid, "entries"), entries_table(board, tid)]
    parts.append(f"<p class='method'>Method: {esc(board.method)}{esc(_ci_units(board))} Scores in percent; Δ in "
                 "percentage points.</p>")
    if board.baselines:
        parts += ["<h4>Baselines on the same runs</h4>", baselines_table(board),
                  "<p class='caption'>Majority class and class prior, rebuilt per fold from its training class counts and "
                  "scored on exactly the runs above; “vs best baseline” compares each entry with the higher of the two.</p>"]
    if board.reported:
        rid = f"{bid}-reported"
        parts += ["<h4>Reported vs measured</h4>", filter_box(rid, "reported figures"), reported_table(board, rid),
                  "<p class='caption'>Each published figure of an entry's recipe beside the measured mean of the same "
                  "metric and role over the entry's counted runs; Δ = measured − reported. Scores in percent (Δ in "
                  "points); params_m in millions of parameters, gmacs in 10⁹ multiply-accumulates per image.</p>"]
    parts.append(drill_down(board, drill.load(board), drill.con is not None))
    return "\n".join(parts)


def render_html(boards: Sequence[Board], db: str | Path | None = None) -> str:
    """The whole page (see the module docstring); ``db``: the board's database, for the drill-down."""
    by_protocol: dict[str, list[Board]] = {}
    for b in boards:
        by_protocol.setdefault(b.protocol, []).append(b)
    taken: set[str] = set()
    slugs = {p: make_slug(f"protocol-{p}", taken) for p in by_protocol}
    parts = ["<!doctype html>", "<html lang='en'><head><meta charset='utf-8'>",
             "<meta name='viewport' content='width=device-width, initial-scale=1'>",
             "<title>ferbench leaderboard</title>", f"<style>{CSS}</style></head><body>",
             "<h1>ferbench leaderboard</h1>"]
    if not boards:
        parts.append("<p>No results.</p>")
    else:
        parts.append("<nav aria-label='protocols'><ul>" + "".join(
            f"<li><a href='#{slugs[p]}'>{esc(p)}</a> ({sum(len(b.entries) for b in bs)} entries)</li>"
            for p, bs in by_protocol.items()) + "</ul></nav>")
    drill = Drill(db)
    try:
        for protocol, mine in by_protocol.items():
            slug = slugs[protocol]
            parts.append(f"<section aria-labelledby='{slug}'><h2 id='{slug}'>Protocol {esc(protocol)}"
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
