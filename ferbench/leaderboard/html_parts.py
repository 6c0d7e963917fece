"""The pieces the leaderboard page is made of: its inline CSS and JS, escaping, human metric names,
and tables (each in its own scroll container, sortable by clicking a header) with a filter box."""

from __future__ import annotations

import html
import math
import re
from typing import Any, Iterable, Sequence

from .cells import pct

METRIC_NAMES = {"accuracy": "Accuracy", "balanced_accuracy": "Balanced accuracy", "macro_f1": "Macro F1",
                "weighted_precision": "Weighted precision", "weighted_recall": "Weighted recall",
                "weighted_f1": "Weighted F1"}

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


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def metric_name(metric: str) -> str:
    """``weighted_f1`` → "Weighted F1"; a per-class ``recall:anger`` → "Recall (anger)"."""
    kind, _, cls = metric.partition(":")
    name = METRIC_NAMES.get(kind, kind.replace("_", " ").capitalize())
    return f"{name} ({cls})" if cls else name


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
        return f"<td{attrs}>{esc(self.text)}</td>"


def cells(row: Iterable[Any]) -> str:
    return "".join((c if isinstance(c, Cell) else Cell(c)).html() for c in row)


def table(head: Sequence[str], rows: Sequence[Sequence[Any]], tid: str | None = None, sortable: bool = True,
          cls: str = "") -> str:
    """A table in its own horizontal scroll container; header buttons sort a sortable one."""
    classes = " ".join(c for c in ("sortable" if sortable else "", cls) if c)
    attrs = (f" id='{tid}'" if tid else "") + (f" class='{classes}'" if classes else "")
    ths = "".join(f"<th scope='col'><button type='button'>{esc(h)}</button></th>" if sortable else
                  f"<th scope='col'>{esc(h)}</th>" for h in head)
    body = "".join(f"<tr>{cells(r)}</tr>" for r in rows)
    return f"<div class='scroll'><table{attrs}><thead><tr>{ths}</tr></thead><tbody>{body}</tbody></table></div>"


def filter_box(tid: str, what: str) -> str:
    return (f"<div class='tools'><input type='search' class='filter' data-for='{tid}' placeholder='Filter {esc(what)}' "
            f"aria-label='Filter {esc(what)}'><span class='count' aria-live='polite'></span></div>")


def make_slug(text: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-").lower() or "protocol"
    slug, i = base, 2
    while slug in taken:
        slug, i = f"{base}-{i}", i + 1
    taken.add(slug)
    return slug


def points(v: float | None) -> Cell:
    return Cell(pct(v), v)


def entry_names(e: dict[str, Any]) -> str:
    return " = ".join(e.get("names") or ["?"])
