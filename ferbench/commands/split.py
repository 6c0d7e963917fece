"""``ferbench split PROTOCOL --data DIR ... --out MANIFEST.parquet``: materialise a protocol (verified).

The manifest appears atomically: killed at any point (SIGKILL or SIGTERM), ``split`` leaves either
no file or the previous one at ``--out``, never part of one; a SIGTERM removes the temp file on its
way out and the next ``split`` removes one a SIGKILL left.
"""

from __future__ import annotations

import argparse

from .convert import _options


def run(args: argparse.Namespace) -> int:
    from ..api import split
    from ..runner.jobs import terminate_as_exit

    with terminate_as_exit():  # SIGTERM unwinds: the manifest's temp file is removed on the way out
        manifest = split(
            args.protocol,
            args.data,
            args.out,
            seed=args.seed,
            allow_leakage=args.allow_leakage,
            near_threshold=args.near_threshold,
            **_options(args.param),
        )
    path = args.out
    meta, leak = manifest.meta, manifest.meta["leakage"]
    print(f"{meta['protocol']} v{meta['version']} (seed {meta['seed']}): {manifest.table.num_rows} rows → {path}")
    counts = meta["counts"]
    print(f"  {counts['samples']} samples, {counts['subjects']} subjects, {meta['n_repeats']} repeat(s) × {meta['n_folds']} fold(s)")
    print(f"  classes {meta['classes']}")
    for role, counts in meta["counts"]["fold0"].items():
        print(f"  fold 0 {role:<5} {sum(counts.values()):>7}  " + "  ".join(f"{k}={v}" for k, v in counts.items()))
    print(
        f"  leakage: {leak['verdict']} (subject overlap {leak['subject_overlap']}, "
        f"exact duplicates {leak['exact_duplicates']}, near-duplicates {leak['near_duplicates']})"
    )
    print(f"  content hash {meta['content_hash']}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("split", help="materialise a protocol into a verified manifest")
    p.add_argument("protocol", help="protocol name (see `ferbench protocols`)")
    p.add_argument("--data", action="append", required=True, metavar="DIR", help="converted or merged dataset directory (repeatable)")
    p.add_argument("--out", required=True, help="manifest Parquet file (written atomically)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE", help="protocol parameter")
    p.add_argument("--allow-leakage", action="store_true", help="keep a manifest that leaks (verdict leaky-allowed)")
    p.add_argument("--near-threshold", type=int, default=4, help="perceptual-hash bits for a near-duplicate (of 64)")
    p.set_defaults(func=run)
