"""``ferbench leaderboard``: ingest run results into DuckDB and print the rankings (table, md or html)."""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from .. import leaderboard as lb

    if not args.no_ingest:
        n = lb.ingest(args.runs, args.db)
        print(f"ingested {n} runs from {', '.join(map(str, args.runs))} into {args.db}")
    boards = lb.rank(args.db, protocol=args.protocol, manifest=args.manifest, metric=args.metric)
    text = lb.render(boards, args.format)
    out = args.out or (Path(args.db).parent / "index.html" if args.format == "html" else None)
    if out:
        Path(out).write_text(text)
        print(f"wrote {out}")
    else:
        print(text)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from ..leaderboard import DEFAULT_DB, DEFAULT_METRIC

    p = sub.add_parser("leaderboard", help="rank models per protocol from the runs' result files")
    p.add_argument("--runs", nargs="+", default=["runs"], help="run folders to ingest (default: runs)")
    p.add_argument("--db", default=str(DEFAULT_DB), help=f"database file (default: {DEFAULT_DB})")
    p.add_argument("--no-ingest", action="store_true", help="rank the existing database without re-reading results")
    p.add_argument("--protocol", default=None, help="only this protocol")
    p.add_argument("--manifest", default=None, help="manifest hash (prefix) when a protocol has several")
    p.add_argument("--metric", default=DEFAULT_METRIC, help=f"ranking metric (default: {DEFAULT_METRIC})")
    p.add_argument("--format", choices=("table", "md", "html"), default="table")
    p.add_argument("--out", default=None, help="write here instead of stdout (html default: next to the database)")
    p.set_defaults(func=run)
