"""``ferbench analyse RUN_DIR``: Grad-CAM heat maps per class, a t-SNE of the features and the training
curves of a finished run, written to ``RUN_DIR/analysis/`` (see ``ferbench.analyse``)."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from ..analyse import analyse

    out = analyse(args.run_dir, args.out, per_class=args.per_class, max_points=args.max_points, device=args.device,
                  seed=args.seed)
    print(f"wrote {out}/ (gradcam.png, tsne.png, tsne.csv, curves.png, analysis.json)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyse", help="Grad-CAM per class, t-SNE of features and curves of a finished run",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run directory (result.json, model.safetensors)")
    p.add_argument("--out", default=None, help="output folder (default: RUN_DIR/analysis)")
    p.add_argument("--per-class", type=int, default=4, help="Grad-CAM images per class (default 4)")
    p.add_argument("--max-points", type=int, default=2000, help="t-SNE samples at most (default 2000)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)
