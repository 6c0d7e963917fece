"""``ferbench demo``: world → convert → merge → split → train → leaderboard on synthetic data, offline.

The stages and the choices behind them are described in the ferbench.demo module.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from .. import demo, ui

    opts = demo.DemoOptions(out=Path(args.out), subjects=args.subjects, seed=args.seed, epochs=args.epochs,
                            quick=args.quick, overwrite=args.overwrite)
    if not ui.quiet():
        demo.run_demo(opts)
        return 0
    summary = demo.run_demo(opts, stream=io.StringIO())  # -q: only the verdict and where the leaderboard is
    print(demo.verdict(summary))
    print(f"leaderboard: {summary['leaderboard']['html']}")
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    from ..demo import QUICK_EPOCHS, QUICK_SUBJECTS, SUBJECTS

    p = sub.add_parser("demo", help="the whole pipeline on ferbench's own synthetic data, in minutes on a CPU (start here)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="ferbench-demo", help="output directory (default: ./ferbench-demo)")
    p.add_argument("--subjects", type=_positive, default=None,
                   help=f"synthetic people per dataset (default: {SUBJECTS}; {QUICK_SUBJECTS} with --quick)")
    p.add_argument("--seed", type=int, default=0, help="world and protocol seed (default: 0)")
    p.add_argument("--epochs", type=_positive, default=None,
                   help=f"training epochs of every model (default: each demo recipe's own; {QUICK_EPOCHS} with --quick)")
    p.add_argument("--quick", action="store_true", help="a tiny world and one epoch: checks the pipeline, proves nothing")
    p.add_argument("--overwrite", action="store_true", help="replace the output of an earlier demo in --out")
    p.set_defaults(func=run)
