"""``ferbench leaderboard``: ingest run results into DuckDB and print the rankings (table, md or html)."""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from .. import leaderboard as lb
    from ..errors import FerbenchError
    from ..interrupt import terminate_as_exit

    coverage = {"folds": args.folds, "repeats": args.repeats, "seeds": args.seeds}
    if args.no_ingest:
        if any(v is not None for v in coverage.values()) or args.bootstrap is not None:
            raise FerbenchError("--folds/--repeats/--seeds/--bootstrap choose how the board is built: not with --no-ingest")
    else:
        with terminate_as_exit("the board was not changed; run again"):  # the temp file goes on the way out
            report = lb.build_board(args.runs, args.db, n_boot=args.bootstrap or lb.MIN_BOOT, **coverage)
        print(f"ingested {report.runs} runs from {', '.join(map(str, args.runs))} into {args.db}")
        for line in report.lines():
            print(line, file=sys.stderr)
    boards = lb.rank(args.db, protocol=args.protocol, manifest=args.manifest, metric=args.metric)
    text = lb.render(boards, args.format, db=args.db)
    out = args.out or (Path(args.db).parent / "index.html" if args.format == "html" else None)
    if out:
        out = Path(out)
        tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
        try:
            tmp.write_text(text)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        print(f"wrote {out}")
    else:
        print(text)
    return 0


def int_list(text: str) -> list[int]:
    """``0,2,5`` or ``0-4`` (inclusive) → list of ints."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    return out


def register(sub: argparse._SubParsersAction) -> None:
    from ..leaderboard import DEFAULT_DB, DEFAULT_METRIC

    p = sub.add_parser("leaderboard", help="rank models per protocol from the runs' result files")
    p.add_argument("--runs", nargs="+", default=["runs"], help="run folders to ingest (default: runs)")
    p.add_argument("--db", default=str(DEFAULT_DB),
                   help=f"board file (default: {DEFAULT_DB}); a file that is not a ferbench board is never overwritten")
    p.add_argument("--no-ingest", action="store_true", help="rank the existing database without re-reading results")
    p.add_argument("--protocol", default=None, help="only this protocol")
    p.add_argument("--manifest", default=None, help="manifest hash (prefix) when a protocol has several")
    p.add_argument("--metric", default=DEFAULT_METRIC, help=f"ranking metric (default: {DEFAULT_METRIC})")
    p.add_argument("--folds", type=int_list, default=None,
                   help="rank on these folds only, e.g. 0,1 or 0-4 (default: every fold of the protocol)")
    p.add_argument("--repeats", type=int_list, default=None, help="rank on these protocol repeats only (default: all)")
    p.add_argument("--seeds", type=int_list, default=None,
                   help="rank on these training seeds (default: each entry's seeds that cover every fold)")
    p.add_argument("--bootstrap", type=int, default=None, metavar="B",
                   help="bootstrap resamples for the CIs and paired tests (default and minimum: 1000)")
    p.add_argument("--format", choices=("table", "md", "html"), default="table")
    p.add_argument("--out", default=None, help="write here instead of stdout (html default: next to the database)")
    p.set_defaults(func=run)
