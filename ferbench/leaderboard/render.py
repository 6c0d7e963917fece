"""Boards as a text table, Markdown or a static HTML page (``page``). Every string that comes from a
user (recipe names, notes, sources, overrides, dataset names) is escaped for the format: a ``|`` in a
recipe name cannot break a Markdown table, nor ``<`` the page."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Sequence

from .board import SHOWN, Board
from .cells import board_notes, entry_label, is_warning, pct, pm, runs_text, size_text, vs_baseline, vs_best, vs_reported

_MD_SPECIAL = re.compile(r"([\\|*`<>]|\](?=\())")
_MD_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def md_escape(text: Any) -> str:
    """One Markdown table cell: backslash-escaped specials, newlines folded."""
    s = " ".join(str(text).split())
    return _MD_UNDERSCORE.sub(r"\\_", _MD_SPECIAL.sub(r"\\\1", s))


def _table(board: Board) -> tuple[list[str], list[list[str]]]:
    others = [m for m in SHOWN if m != board.metric]
    level = next((e["ci_level"] for e in board.entries if e["ci_level"]), 0.95)
    ci = f"{100 * level:g}% CI"
    head = ["entry", "model", f"{board.metric} (%)", ci]
    head = (["#", *head, f"Δ vs best [{ci}]"] if board.section == "ranked" else [*head[:2], "coverage", *head[2:]])
    head += ["vs baseline", *[f"{m} (%)" for m in others], "reported vs measured (%)", "runs", "params", "GFLOPs", "data"]
    tiers: dict[int, int] = {}
    for e in board.entries:
        tiers[e["tier"]] = tiers.get(e["tier"], 0) + 1
    body = []
    for e in board.entries:
        interval = "—" if e["ci_lo"] is None else f"[{pct(e['ci_lo'])}, {pct(e['ci_hi'])}] by {e['ci_unit']}"
        row = [entry_label(e), e["model"] + (" (pretrained)" if e["pretrained"] else ""), pm(e["mean"], e["std"]), interval]
        if board.section == "ranked":
            row = [f"{e['rank']}{'=' if tiers.get(e['tier'], 0) > 1 else ''}", *row, vs_best(e)]
        else:
            row = [*row[:2], f"partial {e['k_folds']}/{e['total_folds']} folds ({e['coverage']})", *row[2:]]
        row += [vs_baseline(e), *[pm(*e["also"][m]) if m in e["also"] else "—" for m in others], vs_reported(e), runs_text(e),
                *size_text(e["params"], e["gflops"]), ("SYNTHETIC " if e["synthetic"] else "") + (e["datasets"] or "")]
        body.append(row)
    for b in board.baselines:
        interval = "—" if b["ci_lo"] is None else f"[{pct(b['ci_lo'])}, {pct(b['ci_hi'])}]"
        body.append(["–", f"baseline: {b['system']}", "", pm(b["mean"], b["std"]), interval, "", "",
                     *[pm(*b["also"][m]) for m in others], "—", f"{b['n_folds']} folds", "", "", ""])
    return head, body


def _reported_table(board: Board) -> tuple[list[str], list[list[str]]]:
    head = ["entry", "metric (role)", "reported", "measured", "Δ", "source", "notes"]  # scores in % (Δ in points)
    body = [[f"{r['recipe_name']} @{r['recipe_hash'][:8]}", f"{r['metric']} ({r['role']})",
             f"{r['reported']:.2f}", "—" if r["measured"] is None else f"{r['measured']:.2f}",
             "—" if r["delta"] is None else f"{r['delta']:+.2f}", r["source"] or "", r["notes"] or ""]
            for r in board.reported]
    return head, body


def _detail_lines(board: Board) -> list[str]:
    out = []
    for d in board.details:
        for o in d["origins"]:
            where = (f"{o['recipe_file']} ({o['located']})" if o["recipe_file"] else
                     "no recipe file found at run time" if o["recorded"] else "recipe file not recorded")
            diff = o["overrides"]
            changes = ("overrides: not recorded" if diff is None else "no overrides" if not diff else
                       "overrides: " + ", ".join(f"{k}: {json.dumps(a)} → {json.dumps(b)}" for k, (a, b) in diff.items()))
            out.append(f"{d['short_hash']} {o['recipe_name']}: {where}; {changes}")
        p, g = size_text(d["params"], d["gflops"])
        facts = [f"params {p}", f"GFLOPs {g}", f"pretrained: {d['pretrained_source'] or ('yes' if d['pretrained'] else 'no')}"]
        if d["checkpoint_sha256"]:
            facts.append("checkpoint sha256 " + ", ".join(s[:16] for s in d["checkpoint_sha256"]))
        facts += [f"device {', '.join(d['devices'] or ['?'])}", f"ran {str(d['first_run'])[:19]} – {str(d['last_run'])[:19]}",
                  f"wall {d['wall_s'] or 0:.0f} s", f"ferbench {', '.join(d['ferbench_versions'] or ['?'])}",
                  f"git {', '.join(s[:12] for s in d['git_shas'] or ['?'])}"]
        out.append(f"{d['short_hash']} model: " + "; ".join(facts))
    return out


def _title(board: Board) -> str:
    what = f"ranked by {board.metric} on {board.coverage}" if board.section == "ranked" else "partial entries (unranked)"
    return f"{board.protocol} — manifest {board.manifest_hash[:12]} — {what}"


def _text_table(head: list[str], body: list[list[str]], markdown: bool) -> list[str]:
    if markdown:
        return ["| " + " | ".join(map(md_escape, head)) + " |", "|" + "---|" * len(head),
                *["| " + " | ".join(map(md_escape, row)) + " |" for row in body]]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [head, *body]]


def render_text(boards: Sequence[Board], markdown: bool = False) -> str:
    out = []
    esc = md_escape if markdown else (lambda s: s)
    for board in boards:
        out.append(("## " if markdown else "") + esc(_title(board)))
        for note in board_notes(board):
            out.append(("> " + (f"**{esc(note)}**" if is_warning(note) else esc(note))) if markdown else "  " + note)
        out.append("")
        out += _text_table(*_table(board), markdown)
        out += ["", ("*Method:* " if markdown else "Method: ") + esc(board.method), ""]
        out += [("- " if markdown else "  ") + esc(line) for line in _detail_lines(board)]
        if board.reported:
            out += ["", ("**Reported vs reproduced**" if markdown else "Reported vs reproduced:"), ""]
            out += _text_table(*_reported_table(board), markdown)
            out += ["", "Scores in percent (Δ in points); params_m in millions of parameters, gmacs in 10^9 "
                        "multiply-accumulates per image."]
        out.append("")
    return "\n".join(out) if boards else "no results\n"


def render_html(boards: Sequence[Board], db: str | Path | None = None) -> str:
    """The static HTML page (``page.render_html``); ``db``, the board's database, adds the drill-down."""
    from .page import render_html as page

    return page(boards, db)


def render(boards: Sequence[Board], fmt: str, db: str | Path | None = None) -> str:
    """``fmt``: table, md or html (``db``: the board's database, for the page's drill-down)."""
    if fmt == "html":
        return render_html(boards, db)
    return render_text(boards, markdown=fmt == "md")
