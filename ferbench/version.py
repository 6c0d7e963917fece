"""ferbench's version, and the git commit of the checkout it runs from (``ferbench --version``).

``__version__`` is the one place the version is written (pyproject.toml reads it from here).
``git_sha()`` is the commit of the source checkout this package was imported from, with ``+dirty``
when tracked files differ from it; ``"unknown"`` for an installed wheel, without git, or on any error.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

__version__ = "0.1.0"


@functools.lru_cache(maxsize=1)
def git_sha() -> str:
    """The commit of the checkout holding this package (``abc123def456[+dirty]``), else ``"unknown"``."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():  # an installed package: site-packages is no checkout
        return "unknown"
    try:
        def git(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5)

        head = git("rev-parse", "--short=12", "HEAD")
        if head.returncode != 0 or not head.stdout.strip():
            return "unknown"
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def version_string() -> str:
    """What ``ferbench --version`` prints: ``ferbench 0.1.0 (git abc123def456)``."""
    return f"ferbench {__version__} (git {git_sha()})"
