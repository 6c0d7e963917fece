"""``ferbench info DIR``: per-split / per-class / per-subject counts (DuckDB over the shards) and the build report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def summary(data_dir: str | Path) -> dict:
    """Counts computed by DuckDB over the Parquet shards of a converted dataset (``ferbench.api.info``)."""
    from ..api import info

    return info(data_dir)


def run(args: argparse.Namespace) -> int:
    info = summary(args.data_dir)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    card, rep = info["card"], info["build_report"] or {}
    print(f"{card['title']} ({card['name']} {card['version']}, layout {card['layout']})")
    print(f"  rows {card['num_rows']}, fingerprint {card['fingerprint']}, synthetic={card['synthetic']}")
    for split, counts in info["per_split_class"].items():
        total = sum(counts.values())
        print(f"  {split:<14} {total:>8}  " + "  ".join(f"{k}={v}" for k, v in counts.items()))
    s = info["subjects"]
    print(f"  subjects {s['distinct']} (rows without subject: {s['rows_without_subject']}, per subject min/median/max {s['samples_per_subject_min_median_max']})")
    print(f"  faults {rep.get('faults_total', 0)}: {rep.get('fault_kinds', {})}")
    if info["legacy_layout"]:
        print("  note: written by an older ferbench (no data/ folder, no README card); convert again for the standard layout")
    for fault in rep.get("faults", [])[: args.faults]:
        where = fault["file"] + (f":{fault['row']}" if fault.get("row") is not None else "")
        print(f"    {fault['kind']}: {where}: {fault['reason']}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="counts and build report of a converted dataset")
    p.add_argument("data_dir")
    p.add_argument("--json", action="store_true", help="print everything as JSON")
    p.add_argument("--faults", type=int, default=20, help="how many listed faults to print")
    p.set_defaults(func=run)
