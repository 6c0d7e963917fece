"""``python -m ferbench.recipes sync [DIR]``: copy the shipped recipes over the repository's ``recipes/``
(edit them in ``ferbench/recipes/``, then run this); ``check`` lists differences and exits 1 if any."""

from __future__ import annotations

import sys
from pathlib import Path

from . import drift, sync


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("sync", "check"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    folder = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[2] / "recipes"
    problems = sync(folder) if argv[0] == "sync" else drift(folder)
    for line in problems:
        print(line)
    if argv[0] == "sync":
        print(f"{folder}: {'updated ' + str(len(problems)) + ' file(s)' if problems else 'already identical'}")
        return 0
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
