"""``ferbench models [PATTERN]``: registered models with their default input config; timm's too with
--timm or a ``timm/...`` pattern (e.g. ``ferbench models 'timm/resnet*'``)."""

from __future__ import annotations

import argparse
import sys


def run(args: argparse.Namespace) -> int:
    from ..models import list_models, model_cfg

    names = list_models(args.pattern, include_timm=args.timm)
    if not names:
        extra = "" if args.timm or args.pattern.startswith("timm/") else " (timm models: add --timm or use a 'timm/...' pattern)"
        print(f"no model matches {args.pattern!r}{extra}", file=sys.stderr)
        return 1
    for name in names:
        if name.startswith("timm/") and not args.verbose:
            print(name)
            continue
        cfg = model_cfg(name)
        mods = "/".join(cfg["modalities"])
        print(f"{name:<28} input {'x'.join(map(str, cfg['input_size']))}  {mods:<15} licence {cfg['license']}  paper {cfg['paper']}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the models create_model knows")
    p.add_argument("pattern", nargs="?", default="*", help="glob, e.g. 'tiny*' or 'timm/resnet*' (a timm/ pattern lists timm models)")
    p.add_argument("--timm", action="store_true", help="include every timm model as timm/<name>")
    p.add_argument("--verbose", action="store_true", help="show the config of timm models too")
    p.set_defaults(func=run)
