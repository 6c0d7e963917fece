"""``ferbench split PROTOCOL --data DIR ... --out MANIFEST.parquet``: materialise a protocol (verified).

The manifest appears atomically: killed at any point (SIGKILL or SIGTERM), ``split`` leaves either
no file or the previous one at ``--out``, never part of one; a SIGTERM removes the temp file on its
way out and the next ``split`` removes one a SIGKILL left.

``ferbench split BASE --folds LIST ...`` applies a published fold list (CSV/TSV of sample or sequence
id → fold, or a sectioned list like Emotion-FAN's CK+ file) to the rows of protocol BASE, as protocol
``BASE-folds``, through the same verified path: a list that leaks is refused unless
``--leakage-stated "how it leaks"`` (verdict ``leaky-published``) or ``--allow-leakage``.
"""

from __future__ import annotations

import argparse

from .convert import _options


def run(args: argparse.Namespace) -> int:
    from ..api import split
    from ..interrupt import terminate_as_exit

    with terminate_as_exit("the previous manifest, if any, is untouched; run again"):  # SIGTERM unwinds: the manifest's temp file is removed on the way out
        if getattr(args, "folds", None):
            manifest = _split_folds(args)
        else:
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
    if meta.get("published"):
        print(f"  AS PUBLISHED (leaky by design): {meta.get('leakage_stated') or '(no leakage stated)'}")
    print(f"  content hash {meta['content_hash']}")
    return 0


def _split_folds(args: argparse.Namespace):
    from ..protocols import materialise_folds

    opts = _options(args.param)
    val = opts.pop("val", "none")
    manifest = materialise_folds(args.protocol, args.data, args.folds, seed=args.seed, leakage_stated=args.leakage_stated or "",
                                 allow_leakage=args.allow_leakage, val=val, near_threshold=args.near_threshold, **opts)
    manifest.write(args.out)
    return manifest


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("split", help="materialise a protocol into a verified manifest")
    p.add_argument("protocol", help="protocol name (see `ferbench protocols`)")
    p.add_argument("--data", action="append", required=True, metavar="DIR", help="converted or merged dataset directory (repeatable)")
    p.add_argument("--out", required=True, help="manifest Parquet file (written atomically)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE", help="protocol parameter")
    p.add_argument("--allow-leakage", action="store_true", help="keep a manifest that leaks (verdict leaky-allowed)")
    p.add_argument("--folds", metavar="FILE", help="a published fold list (CSV/TSV id → fold, or '<n>-fold' sections) "
                   "applied to the rows of PROTOCOL, as protocol PROTOCOL-folds")
    p.add_argument("--leakage-stated", metavar="TEXT", help="with --folds: how the published list leaks; a leaky list then "
                   "builds with verdict leaky-published")
    p.add_argument("--near-threshold", type=int, default=4, help="perceptual-hash bits for a near-duplicate (of 64)")
    p.set_defaults(func=run)
