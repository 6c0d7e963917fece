"""``ferbench merge global|avfer --data DIR ... --out DIR``: build a merged dataset with provenance."""

from __future__ import annotations

import argparse

from .convert import _options


def run(args: argparse.Namespace) -> int:
    from ..api import merge

    result = merge(args.name, args.data, args.out, seed=args.seed, overwrite=args.overwrite, **_options(args.param))
    rep = result.report
    print(f"{args.name}: {result.num_rows} rows → {result.out_dir} (fingerprint {result.fingerprint})")
    for name, s in rep["sources"].items():
        print(f"  {name:<14} in {s['rows_in']:>7}  out {s['rows_out']:>7}  excluded {s['excluded']}")
    print("  per class: " + "  ".join(f"{k}={v}" for k, v in rep["per_class"].items()))
    if rep["difference_to_reference"]:
        print(f"  vs. published: {rep['difference_to_reference']} (see build_report.json 'reference')")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from ..merges import MERGES

    p = sub.add_parser("merge", help="build a merged dataset (Global RGB-D, AVFER) from converted ones")
    p.add_argument("name", choices=sorted(MERGES))
    p.add_argument("--data", action="append", required=True, metavar="DIR", help="converted source dataset (repeatable)")
    p.add_argument("--out", required=True, help="output directory (written atomically)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE", help="merge parameter")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    p.set_defaults(func=run)
