"""``ferbench protocols [PATTERN]``: the registered protocols, one line each (``-v``: their parameters)."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from ..errors import FerbenchError
    from ..protocols.base import PROTOCOLS

    protocols = {name: PROTOCOLS.get(name) for name in PROTOCOLS.names(args.pattern)}
    if not protocols:
        raise FerbenchError(f"no protocol matches {args.pattern!r}; known: {', '.join(PROTOCOLS.names())}")
    width = max(map(len, protocols))
    for name, p in protocols.items():
        print(f"{name:<{width}}  {p.description}")
        if args.verbose:
            needs = ", ".join(p.datasets) or "named by parameters"
            params = ", ".join(f"{k}={v!r}" for k, v in p.params.items()) or "none"
            print(f"{'':<{width}}    v{p.version}; datasets: {needs}; params: {params}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("protocols", help="list the evaluation protocols")
    p.add_argument("pattern", nargs="?", default="*", help="glob, e.g. 'ckplus*' (default: all)")
    p.add_argument("-v", "--verbose", action="store_true", help="also show datasets and parameters")
    p.set_defaults(func=run)
