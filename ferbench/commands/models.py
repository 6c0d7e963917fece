"""``ferbench models [PATTERN]``: registered models with their default input config (and timm's, with --timm)."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from ..models import list_models, model_cfg

    names = list_models(args.pattern, include_timm=args.timm)
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
    p.add_argument("pattern", nargs="?", default="*", help="glob, e.g. 'tiny*' or 'timm/resnet*'")
    p.add_argument("--timm", action="store_true", help="include every timm model as timm/<name>")
    p.add_argument("--verbose", action="store_true", help="show the config of timm models too")
    p.set_defaults(func=run)
