"""The ``ferbench`` command line: one sub-command per module in ``ferbench.commands``."""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import FerbenchError

#: Sub-command modules, in the order ``ferbench --help`` lists them. Each defines
#: ``register(subparsers)`` which adds its parser and sets ``func`` (args -> exit code).
COMMANDS = ("demo", "datasets", "convert", "info", "merge", "protocols", "split", "verify", "models", "run", "sweep", "leaderboard", "bench", "synth")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ferbench", description=__doc__)
    parser.add_argument("--version", action="version", version=f"ferbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"ferbench.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # `key=value` recipe overrides may also follow the options (`run R --device cpu a=1`)
    if extra and hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args) or 0)
    except FerbenchError as exc:
        print(f"ferbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ferbench {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
