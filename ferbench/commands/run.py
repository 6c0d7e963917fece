"""``ferbench run RECIPE [key=value ...]``: train and evaluate every fold × seed of a recipe's protocol."""

from __future__ import annotations

import argparse


def int_list(text: str) -> list[int]:
    """``0,2,5`` or ``0-4`` (inclusive) → list of ints."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    return out


def add_selection(p: argparse.ArgumentParser) -> None:
    """Options shared by ``run`` and ``sweep``: device and the fold/seed/repeat selection."""
    p.add_argument("--device", choices=("auto", "cuda", "cpu"), default=None, help="override runtime.device")
    p.add_argument("--folds", type=int_list, default=None, help="folds to run, e.g. 0,1 or 0-4 (default: all)")
    p.add_argument("--seeds", type=int_list, default=None, help="training seeds (default: the recipe's)")
    p.add_argument("--repeats", type=int_list, default=None, help="protocol repeats (default: all)")


def run(args: argparse.Namespace) -> int:
    from ..runner import run_recipe
    from ..train.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    dirs = run_recipe(recipe, folds=args.folds, seeds=args.seeds, repeats=args.repeats, device=args.device)
    for d in dirs:
        print(d)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="train and evaluate a recipe (every fold × seed); torchrun for multi-GPU")
    p.add_argument("recipe", help="recipe YAML (see recipes/)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="recipe overrides right after the recipe, e.g. train.epochs=3 seeds=[0,1]")
    add_selection(p)
    p.set_defaults(func=run)
