"""``ferbench datasets [PATTERN]``: the registered converters, their layouts and where to request the data."""

from __future__ import annotations

import argparse


def table(markdown: bool = False, pattern: str = "*") -> str:
    from ..datasets import DATASETS
    from ..errors import FerbenchError

    rows = []
    names = [n for n in DATASETS.names(pattern) if not n.startswith("_")]
    if not names:
        raise FerbenchError(f"no dataset matches {pattern!r}; known: {', '.join(DATASETS.names())}")
    for name in names:
        cls = DATASETS.get(name)
        rows.append((name, cls.title, ", ".join(cls.layouts), cls.homepage))
    if markdown:
        head = "| name | dataset | layouts accepted | request the data |\n| --- | --- | --- | --- |\n"
        return head + "\n".join(f"| `{n}` | {t} | {l} | {h} |" for n, t, l, h in rows)
    return "\n".join(f"{n:<14} {t}\n{'':<14} layouts: {l}\n{'':<14} request: {h}" for n, t, l, h in rows)


def run(args: argparse.Namespace) -> int:
    print(table(args.markdown, args.pattern))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datasets", help="list the dataset converters and their accepted layouts")
    p.add_argument("pattern", nargs="?", default="*", help="glob, e.g. 'ck*' (default: all)")
    p.add_argument("--markdown", action="store_true", help="print the README table")
    p.set_defaults(func=run)
