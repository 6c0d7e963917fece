"""``ferbench synth NAME --out DIR``: write the synthetic expression world in a dataset's raw layout.

The tree is what the licensed dataset looks like on disk, so ``ferbench convert NAME DIR`` runs
the real converter on it; every converted row is marked synthetic. ``all`` writes every layout
into ``DIR/<name>``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from ..errors import FerbenchError
    from ..synth.layouts import SYNTH_LAYOUTS as LAYOUTS

    if args.name != "all" and args.name not in LAYOUTS:
        raise FerbenchError(LAYOUTS.unknown(args.name) + ", all")
    names = list(LAYOUTS) if args.name == "all" else [args.name]
    for name in names:
        out = Path(args.out) / name if args.name == "all" else Path(args.out)
        kwargs = {"subjects": args.subjects, "seed": args.seed}
        if args.size is not None:
            kwargs["size"] = args.size
        start = time.perf_counter()
        summary = LAYOUTS[name](out, **kwargs)
        counts = ", ".join(f"{label} {n}" for label, n in summary["labels"].items())
        print(f"{name}: {summary['rows']} samples of {summary['subjects']} subjects → {out} ({time.perf_counter() - start:.1f} s)")
        print(f"  {counts}")
        print(f"  convert with: ferbench convert {name} {out} --out <converted dir>")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from ..synth.layouts import SYNTH_LAYOUTS

    p = sub.add_parser("synth", help="write synthetic faces in a dataset's raw layout (no licensed data needed)")
    p.add_argument(
        "name",
        help=f"dataset whose raw layout to write ({', '.join(SYNTH_LAYOUTS.names())}), or all (each into OUT/<name>)",
    )
    p.add_argument("--out", required=True, help="raw root to create (must be empty or not exist)")
    p.add_argument("--subjects", type=int, default=20, help="synthetic people (default: 20)")
    p.add_argument("--seed", type=int, default=0, help="world seed: same seed, same bytes (default: 0)")
    p.add_argument("--size", type=int, default=None, help="rendered image side in pixels (default: per layout)")
    p.set_defaults(func=run)
