"""The DuckDB leaderboard: ingest run records, group what is comparable, rank with paired tests,
export table / Markdown / HTML.

* ``collect``: the run results under ``--runs`` (hidden staging folders never read; junk skipped with
  its reason; one job found twice read once);
* ``standings``: the comparison groups (an entry, i.e. a recipe content hash on a manifest, is ranked
  only against entries scored on exactly the same (repeat, fold, seed) runs; by default every fold of
  the protocol; others are "partial") and their statistics (mean over runs, paired subject
  bootstrap: CIs, differences to the best entry and to the best baseline, tiers of tied entries);
* ``tables``: the per-run rows (metrics, per-class and per-source scores, confusion, model facts,
  recipe origins, reported figures, environment);
* ``ingest``: the atomic rebuild of the database (``schema.sql``, ``views.sql``: package data);
* ``reproduce``: each published figure reported, reproduced as published and honestly, with both gaps
  (table ``reproductions``);
* ``board``: the boards read back (``rank``, ``reproductions``); ``render``: text, Markdown (escaped)
  and HTML (``page``, ``drill``, ``html_parts``).

Views users can query: ``leaderboard``, ``baseline_scores``, ``per_fold``, ``per_class``,
``per_source``, ``confusion_matrix``, ``reported_vs_measured``, ``entries``, ``entry_names``; table
``reproductions``.
"""

from __future__ import annotations

from .board import DEFAULT_METRIC, SHOWN, Board, rank, reproductions
from .collect import find_results
from .ingest import DEFAULT_DB, FORMAT, MIN_BOOT, IngestReport, build_board, ingest, is_board, method, sql
from .render import md_escape, render, render_html, render_text

__all__ = ["DEFAULT_DB", "DEFAULT_METRIC", "FORMAT", "SHOWN", "Board", "IngestReport", "MIN_BOOT", "build_board",
           "find_results", "ingest", "is_board", "md_escape", "method", "rank", "render", "render_html", "render_text",
           "reproductions", "sql"]
