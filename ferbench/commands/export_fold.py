"""``ferbench export-fold MANIFEST --fold K --out DIR``: one fold as a standard dataset directory or image folders."""

from __future__ import annotations

import argparse
import json


def run(args: argparse.Namespace) -> int:
    from ..api import export_fold
    from ..folds import FOLD_FILE

    out = export_fold(args.manifest, args.out, args.fold, args.repeat, format=args.format, data_dirs=args.data,
                      overwrite=args.overwrite)
    record = json.loads((out / FOLD_FILE).read_text())
    print(f"{record['protocol']} repeat {record['repeat']} fold {record['fold']} → {out} ({args.format})")
    print(f"  classes {record['classes']}")
    for split, counts in record["splits"].items():
        print(f"  {split:<10} {counts['rows']:>7}  " + "  ".join(f"{k}={v}" for k, v in counts["per_class"].items()))
    print(f"  manifest {record['manifest_hash']}, leakage {record['leakage']}")
    if args.format == "hf":
        print(f"  load with: datasets.load_dataset({str(out)!r}) or timm --dataset hfds/{out}")
    else:
        print(f"  load with: torchvision.datasets.ImageFolder({str(out / 'train')!r}) or timm --data-dir {out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export-fold", help="write one fold of a manifest as a standard dataset (hf) or image folders")
    p.add_argument("manifest", help="manifest Parquet file (ferbench split)")
    p.add_argument("--fold", type=int, required=True, help="fold index")
    p.add_argument("--repeat", type=int, default=0, help="repeat index (default: 0)")
    p.add_argument("--out", required=True, help="output directory (written atomically)")
    p.add_argument("--format", choices=("hf", "imagefolder"), default="hf",
                   help="hf: data/<split>-*.parquet + README card; imagefolder: <split>/<NN_class>/<sample>.png|jpg")
    p.add_argument("--data", action="append", default=None, metavar="DIR",
                   help="dataset directory, when not at the path the manifest recorded (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    p.set_defaults(func=run)
