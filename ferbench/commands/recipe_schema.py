"""``ferbench recipe-schema [--out FILE]``: the JSON Schema of recipe files, for editors.

Generated from the recipe dataclasses and the registered components (losses, optimisers, ...).
A copy ships as ``recipes/recipe.schema.json``; point an editor at it, e.g. with a first line
``# yaml-language-server: $schema=recipe.schema.json`` in a recipe (VS Code's YAML extension).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from ..train.recipe_schema import schema_json

    text = schema_json()
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")
    else:
        print(text, end="")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recipe-schema", help="print the JSON Schema of recipe files (for editors)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=None, help="write it to this file instead of stdout")
    p.set_defaults(func=run)
