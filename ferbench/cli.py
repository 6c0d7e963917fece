"""The ``ferbench`` command line: one sub-command per module in ``ferbench.commands``.

Global options work before or after the command: ``-q`` (results and errors only), ``-v`` (more
detail, third-party log lines included), ``--debug`` (tracebacks). An error ferbench raises on
purpose (a bad recipe or override, a missing file, an unknown name, a missing extra) is one line
``ferbench COMMAND: error: ...`` with exit status 2; anything else is reported as an internal error
in one line (exit status 1) unless ``--debug`` (or ``FERBENCH_DEBUG=1``) asks for the traceback.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys
import traceback

from . import ui
from .errors import FerbenchError
from .version import version_string

#: Sub-command modules, in the order ``ferbench --help`` lists them. Each defines
#: ``register(subparsers)`` which adds its parser and sets ``func`` (args -> exit code).
COMMANDS = ("demo", "datasets", "convert", "info", "merge", "protocols", "split", "verify", "models", "run", "sweep", "recipe_schema", "clean", "leaderboard", "reproductions", "bench", "synth", "export_fold", "submit", "export", "predict", "analyse")


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line (plus a did-you-mean for a misspelt command)."""

    def error(self, message: str):  # type: ignore[override]
        if "invalid choice" in message and self.prog == "ferbench":
            wrong = message.split("'")[1] if "'" in message else ""
            hint = difflib.get_close_matches(wrong, list(_command_names()), n=1)
            message = f"unknown command {wrong!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _command_names() -> list[str]:
    return [name.replace("_", "-") for name in COMMANDS]


def _global_options(p: argparse.ArgumentParser, top: bool) -> None:
    """-q, -v and --debug; on sub-commands without overriding what was given before the command."""
    default = False if top else argparse.SUPPRESS
    options = (("-q", "--quiet", "results and errors only"),
               ("-v", "--verbose", "more detail, including third-party log lines"),
               (None, "--debug", "show tracebacks"))
    for short, long, text in options:
        names = [n for n in (short, long) if n and n not in p._option_string_actions]
        if names:
            p.add_argument(*names, dest=f"global_{long[2:]}", action="store_true", default=default, help=text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ferbench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=version_string())
    _global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"ferbench.commands.{name}").register(sub)
    for p in sub.choices.values():
        _global_options(p, top=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; ``argv`` None reads the real command line (and keeps native banners out)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # `key=value` recipe overrides may also follow the options (`run R --device cpu a=1`)
    takes = "overrides" if hasattr(args, "overrides") else "items" if hasattr(args, "items") else None
    if extra and takes and all("=" in e and not e.startswith("-") for e in extra):
        setattr(args, takes, [*getattr(args, takes), *extra])
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    level = ui.QUIET if args.global_quiet else ui.VERBOSE if args.global_verbose else ui.NORMAL
    args.debug = args.global_debug or os.environ.get("FERBENCH_DEBUG", "") not in ("", "0")
    before = os.environ.get(ui.ENV)
    ui.set_verbosity(level)  # through the environment, so worker processes inherit it
    try:
        with ui.quiet_native_stderr(enabled=argv is None and level < ui.VERBOSE and not args.debug):
            return _call(args)
    finally:
        if argv is not None and before is None:  # called in-process (tests, scripts): leave the environment as it was
            os.environ.pop(ui.ENV, None)
        elif argv is not None:
            os.environ[ui.ENV] = before


def _call(args: argparse.Namespace) -> int:
    where = f"ferbench {args.command}"
    try:
        return int(args.func(args) or 0)
    except FerbenchError as exc:
        return _report(f"{where}: error: {exc}", 2, args.debug)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        name = f": {exc.filename}" if exc.filename else ""
        return _report(f"{where}: error: {exc.strerror or exc}{name}", 2, args.debug)
    except KeyboardInterrupt:
        print(f"{where}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line, the traceback with --debug
        text = str(exc).strip().splitlines()
        first = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
        hint = "" if args.debug else " (rerun with --debug for the traceback)"
        return _report(f"{where}: internal error: {first}{hint}", 1, args.debug)


def _report(line: str, code: int, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    print(line, file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
