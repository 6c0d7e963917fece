"""``ferbench reproductions``: every reference figure — reported, as published, honest, both gaps.

One row per figure of every shipped recipe's ``reported`` block (or of ``--recipes FILE ...``),
filled from the board (``--db``, built by ``ferbench leaderboard``): the figure reproduced with the
publication's own protocol and selection rule, reproduced on ferbench's honest protocol, the
implementation gap (as published − reported) and the leakage inflation (as published − honest),
each with its paired cluster-bootstrap interval (``ferbench.leaderboard.reproduce``). A figure no
run measured says "needs the licensed data" — never a number that was not measured. ``--markdown``
prints the table the README carries.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

MISSING = "needs the licensed data"


def _interval(value: float | None, lo: float | None, hi: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:+.2f}" + ("" if lo is None else f" [{lo:+.2f}, {hi:+.2f}]")


def _pct(value: float | None, runs: int | None) -> str:
    return "—" if value is None else f"{value:.2f} ({runs} run{'s' if runs != 1 else ''})"


def table_rows(recipes: list[Path], measured: dict[tuple[str, str, str], dict[str, Any]]) -> list[list[str]]:
    from ..train.recipe import load_recipe

    out = []
    for path in recipes:
        recipe = load_recipe(path)
        for fig in recipe.figures():
            m = measured.get((recipe.name, fig.metric, fig.role))
            if m is not None and fig.role != "test":
                cells = [f"{fig.role} figure: see the board's reported vs measured", "—", "—", "—"]
            elif m is None or (m["as_published"] is None and m["honest"] is None):
                cells = [MISSING, MISSING, "—", "—"]
            else:
                cells = [_pct(m["as_published"], m["published_runs"]), _pct(m["honest"], m["honest_runs"]),
                         _interval(m["implementation_gap"], m["gap_lo"], m["gap_hi"]),
                         _interval(m["leakage_inflation"], m["inflation_lo"], m["inflation_hi"])]
            out.append([recipe.name, f"{fig.metric} ({fig.role})", f"{fig.value:.2f}", *cells, fig.source])
    return out


HEAD = ["recipe", "figure", "reported", "as published", "honest", "implementation gap", "leakage inflation", "source"]


def run(args: argparse.Namespace) -> int:
    from .. import leaderboard as lb
    from .. import recipes as shipped
    from ..train.recipe import resolve_recipe_path

    paths = [resolve_recipe_path(r) for r in args.recipes] if args.recipes else \
        [shipped.root() / f"{n}.yaml" for n in shipped.names() if not n.startswith("demo/")]
    db = Path(args.db or lb.DEFAULT_DB)
    # an explicit --db must exist; without one, no board yet means nothing was measured
    found = lb.reproductions(db) if args.db or db.is_file() else []
    rows = table_rows(paths, {(r["recipe_name"], r["metric"], r["role"]): r for r in found})
    if args.markdown:
        print("| " + " | ".join(HEAD) + " |")
        print("| " + " | ".join("---" for _ in HEAD) + " |")
        for r in rows:
            print("| " + " | ".join(lb.md_escape(c) for c in r) + " |")
    else:
        widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(HEAD)]
        for r in [HEAD, *rows]:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    print(f"\n{LEGEND}")
    return 0


LEGEND = ("Scores in percent, gaps in points with 95% paired cluster-bootstrap intervals (B = 1,000; clusters = "
          "subjects, or samples without one); params_m in millions, gmacs in 10^9 multiply-accumulates (no interval). "
          "Implementation gap = as published − reported; leakage inflation = as published − honest. "
          f"“{MISSING}”: no run of that recipe is on the board.")


def register(sub: argparse._SubParsersAction) -> None:
    from ..leaderboard import DEFAULT_DB

    p = sub.add_parser("reproductions", help="each reference figure: reported, reproduced as published and honestly, both gaps",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", default=None, help=f"the board (default: {DEFAULT_DB}; without it, nothing is measured)")
    p.add_argument("--recipes", nargs="+", default=None, metavar="RECIPE",
                   help="recipe files or shipped names (default: every shipped reference recipe)")
    p.add_argument("--markdown", action="store_true", help="a Markdown table (as in the README)")
    p.set_defaults(func=run)
