"""``ferbench predict RUN_DIR IMAGES...``: classify image files with a run's saved model."""

from __future__ import annotations

import argparse
import json


def run(args: argparse.Namespace) -> int:
    from ..model_io import predict_files

    rows = predict_files(args.run_dir, args.images, device=args.device, batch_size=args.batch_size)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(f"{r['file']}\t{r['class']}\t{r['probability']:.4f}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="classify image files with a run's saved model (model.safetensors)")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory holding model.safetensors and model.json")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.add_argument("--json", action="store_true", help="JSON: file, class, probability, probabilities")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--batch-size", type=int, default=64)
    p.set_defaults(func=run)
