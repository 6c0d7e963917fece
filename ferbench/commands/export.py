"""``ferbench export RUN_DIR... --csv [--out FILE]``: a run's test predictions in the submission format."""

from __future__ import annotations

import argparse
import sys


def run(args: argparse.Namespace) -> int:
    import pyarrow.csv as pcsv

    from ..submit import export

    table = export(args.run_dirs, args.out)
    if args.out is None:
        sink = sys.stdout.buffer
        pcsv.write_csv(table, sink)
        sink.flush()
    else:
        print(f"{table.num_rows} test predictions → {args.out}", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write runs' test predictions in the submission format (CSV)")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directory (several: one file for all)")
    p.add_argument("--csv", action="store_true", required=True, help="CSV output (the only format for now)")
    p.add_argument("--out", default=None, metavar="FILE", help="output file (default: standard output)")
    p.set_defaults(func=run)
