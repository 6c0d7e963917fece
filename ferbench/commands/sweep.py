"""``ferbench sweep RECIPE... [--executor local|ray]``: run many recipes' jobs, skipping finished ones."""

from __future__ import annotations

import argparse
import sys

from .run import add_selection


def run(args: argparse.Namespace) -> int:
    from ..sweep import collect, sweep

    recipes = [item for item in args.items if "=" not in item]
    overrides = [item for item in args.items if "=" in item]
    jobs = collect(recipes, overrides, folds=args.folds, seeds=args.seeds, repeats=args.repeats)
    result = sweep(jobs, executor=args.executor, workers=args.workers, device=args.device, address=args.address,
                   gpus_per_job=args.gpus_per_job)
    print(f"{len(jobs)} jobs: {len(result.done)} run, {len(result.skipped)} already finished, {len(result.failed)} failed")
    for name, err in result.failed.items():
        print(f"  FAILED {name}: {err}", file=sys.stderr)
    return 1 if result.failed else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run the jobs of several recipes (resumable), locally or on Ray")
    p.add_argument("items", nargs="+", metavar="RECIPE|KEY=VALUE",
                   help="recipe YAML files, and KEY=VALUE overrides applied to all of them")
    p.add_argument("--executor", choices=("local", "ray"), default="local")
    p.add_argument("--workers", type=int, default=1, help="local: parallel job processes")
    p.add_argument("--address", default=None, help="ray: cluster address (default: auto)")
    p.add_argument("--gpus-per-job", type=float, default=0.0, help="ray: GPUs reserved per job")
    add_selection(p)
    p.set_defaults(func=run)
