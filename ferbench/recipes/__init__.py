"""The recipes shipped inside the package: reference experiments, their ``_base/`` files, the demo's
recipes (``demo/``) and ``recipe.schema.json`` (the JSON Schema of a recipe file, for editors).

They are package data, read through ``importlib.resources``, so an installed wheel has them too:
``ferbench run fer2013_tiny_cnn`` runs a shipped recipe by name. This folder is the source of truth;
the repository's top-level ``recipes/`` is the user-facing copy of it, kept identical by
``python -m ferbench.recipes sync`` and checked by the test suite (tests/test_packaging.py).
"""

from __future__ import annotations

import filecmp
import shutil
from difflib import get_close_matches
from importlib.resources import files
from pathlib import Path

SCHEMA = "recipe.schema.json"
#: what belongs to the shipped set (and to the top-level copy)
PATTERNS = ("*.yaml", "_base/*.yaml", "demo/*.yaml", SCHEMA)


def root() -> Path:
    """The folder of the shipped recipes (a real folder: ferbench is installed unzipped)."""
    return Path(str(files(__name__)))


def names() -> list[str]:
    """Runnable shipped recipes by name: ``fer2013_tiny_cnn``, ``demo/rgb_cnn`` (bases left out)."""
    base = root()
    return sorted(p.relative_to(base).with_suffix("").as_posix()
                  for pattern in ("*.yaml", "demo/*.yaml") for p in base.glob(pattern))


def find(name: str) -> Path | None:
    """The shipped recipe called ``name`` (with or without ``.yaml``, optionally ``recipes/`` first)."""
    key = name.removesuffix(".yaml").removesuffix(".yml")
    key = key.removeprefix("recipes/")
    return root() / f"{key}.yaml" if key in names() else None


def suggest(name: str) -> str | None:
    """The closest shipped recipe name, for a did-you-mean hint."""
    key = Path(name).name.removesuffix(".yaml").removesuffix(".yml")
    hit = get_close_matches(key, [n.rpartition("/")[2] for n in names()], n=1, cutoff=0.6)
    if not hit:
        return None
    return next(n for n in names() if n.rpartition("/")[2] == hit[0])


def demo() -> list[Path]:
    """The demo's recipes (``ferbench demo`` trains each of them)."""
    return sorted((root() / "demo").glob("*.yaml"))


def files_of(folder: Path) -> dict[str, Path]:
    """Every file of the shipped set under ``folder``, by relative path."""
    return {p.relative_to(folder).as_posix(): p for pattern in PATTERNS for p in sorted(folder.glob(pattern))}


def drift(copy: Path) -> list[str]:
    """How the copy in ``copy`` (the repository's ``recipes/``) differs from the shipped set; empty when identical."""
    shipped, copied = files_of(root()), files_of(Path(copy))
    problems = [f"missing in {copy}: {rel}" for rel in sorted(set(shipped) - set(copied))]
    problems += [f"not shipped (only in {copy}): {rel}" for rel in sorted(set(copied) - set(shipped))]
    problems += [f"differs: {copy}/{rel}" for rel in sorted(set(shipped) & set(copied))
                 if not filecmp.cmp(shipped[rel], copied[rel], shallow=False)]
    return problems


def sync(copy: Path) -> list[str]:
    """Make ``copy`` an exact copy of the shipped set (the package wins); returns what changed."""
    copy = Path(copy)
    changed = drift(copy)
    shipped, copied = files_of(root()), files_of(copy)
    for rel in set(copied) - set(shipped):
        copied[rel].unlink()
    for rel, src in shipped.items():
        dest = copy / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    return changed
