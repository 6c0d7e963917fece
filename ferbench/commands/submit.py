"""``ferbench submit PREDICTIONS --manifest M --name NAME``: score outside predictions as external runs."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from ..submit import submit

    records = submit(args.predictions, args.manifest, name=args.name, info=args.info, runs=args.runs,
                     data_dirs=args.data, bootstrap=args.bootstrap, overwrite=args.overwrite)
    first = records[0]
    print(f"{args.name} (external) on {first.protocol['name']} @{first.manifest_hash[:8]}: "
          f"{len(records)} run(s) written under {args.runs}")
    for rec in records:
        t = rec.metrics["test"]
        lo, hi = t["ci"]["balanced_accuracy"]
        print(f"  r{rec.repeat} f{rec.fold}  n={t['n']:<6} balanced_accuracy {100 * t['balanced_accuracy']:.2f} "
              f"[{100 * lo:.2f}, {100 * hi:.2f}]  accuracy {100 * t['accuracy']:.2f}  macro_f1 {100 * t['macro_f1']:.2f}"
              f"  → {rec.run_dir}")
    print(f"  predictions sha256 {rec.extra['external']['predictions_sha256']}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("submit", help="score predictions made outside ferbench against a manifest (external runs)")
    p.add_argument("predictions", help="CSV or Parquet: sample_id, repeat, fold, and pred or p_<class> columns")
    p.add_argument("--manifest", required=True, help="manifest Parquet file the predictions are for")
    p.add_argument("--name", required=True, help="the submission's name on the leaderboard")
    p.add_argument("--info", default=None, metavar="YAML",
                   help="declared facts: model, params, pretraining_data, extra_training_data, link, modality, "
                        "input_size, channels, description")
    p.add_argument("--runs", default="runs", help="folder the run directories are written to (default: runs)")
    p.add_argument("--data", action="append", default=None, metavar="DIR",
                   help="dataset directory, when not at the path the manifest recorded (repeatable)")
    p.add_argument("--bootstrap", type=int, default=1000, help="subject-bootstrap resamples for the CI (default 1000)")
    p.add_argument("--overwrite", action="store_true", help="replace runs of an earlier submission of this name")
    p.set_defaults(func=run)
