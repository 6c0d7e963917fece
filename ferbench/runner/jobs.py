"""Planning: the (repeat, fold, seed) jobs of a recipe, each identified by content.

A job's key hashes the recipe hash, the protocol manifest's content hash, the dataset
fingerprints, the code version, and (repeat, fold, seed); its run directory is
``<out_dir>/<model>-r<repeat>-f<fold>-s<seed>-<key>/``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .. import __version__
from ..errors import FerbenchError
from ..fingerprint import hash_obj
from ..run_record import RESULT


@dataclass(frozen=True)
class Job:
    """One unit of work; plain data, so it pickles to pool workers and Ray tasks."""

    recipe: dict[str, Any]
    manifest: str
    repeat: int
    fold: int
    seed: int
    key: str
    name: str

    @property
    def run_dir(self) -> Path:
        return Path(self.recipe["runtime"]["out_dir"]) / self.name

    def finished(self) -> bool:
        return (self.run_dir / RESULT).is_file()


def code_version(model_name: str) -> str:
    """ferbench version + hash of the runner and training code + the model's own code version.

    The code is hashed from the source files (the runner package, the run record and the
    training modules, less the benchmark and the recipe parser), not from imported modules, so
    this module imports none of the steps it versions."""
    from ..models import model_version

    package = Path(__file__).resolve().parents[1]
    files = sorted(
        [*package.glob("runner/*.py"), package / "run_record.py", *package.glob("train/**/*.py")],
        key=lambda p: p.relative_to(package).as_posix(),
    )
    digest = hashlib.sha256()
    for path in files:
        if path.name not in _UNVERSIONED:
            digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:16]}.{model_version(model_name)}"


#: Training-package files that do not change what a run computes.
_UNVERSIONED = frozenset({"bench.py", "recipe.py"})


def resolve_paths(recipe) -> None:
    """Make the recipe's data, manifest and output paths absolute (relative to the working directory)."""
    recipe.data.dirs = [str(Path(d).expanduser().resolve()) for d in recipe.data.dirs]
    if recipe.protocol.manifest:
        recipe.protocol.manifest = str(Path(recipe.protocol.manifest).expanduser().resolve())
    recipe.runtime.out_dir = str(Path(recipe.runtime.out_dir).expanduser().resolve())


def manifest_path(recipe) -> str:
    """The manifest file of a recipe: its ``protocol.manifest``, or the materialised protocol saved
    once under ``<out_dir>/manifests/<content hash>.parquet``."""
    if recipe.protocol.manifest:
        return recipe.protocol.manifest
    from ..protocols import materialise

    m = materialise(recipe.protocol.name, recipe.data.dirs, seed=recipe.protocol.seed,
                    allow_leakage=recipe.protocol.allow_leakage, **recipe.protocol.params)
    path = Path(recipe.runtime.out_dir) / "manifests" / f"{m.meta['content_hash']}.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        m.write(path)
    return str(path)


def plan(recipe, *, folds: Sequence[int] | None = None, seeds: Sequence[int] | None = None,
         repeats: Sequence[int] | None = None) -> list[Job]:
    """Every (repeat, fold, seed) job of a recipe; arguments override the recipe's selection."""
    from ..protocols import read_manifest

    resolve_paths(recipe)
    path = manifest_path(recipe)
    meta = read_manifest(path).meta
    check_leakage(recipe, meta)
    chosen_repeats = list(repeats or recipe.repeats or range(meta["n_repeats"]))
    chosen_folds = list(folds or recipe.folds or range(meta["n_folds"]))
    for what, chosen, n in (("repeat", chosen_repeats, meta["n_repeats"]), ("fold", chosen_folds, meta["n_folds"])):
        bad = [v for v in chosen if not 0 <= v < n]
        if bad:
            raise FerbenchError(f"{what}s {bad} do not exist: the protocol has {n}")
    identity = {
        "recipe": recipe.hash(),
        "manifest": meta["content_hash"],
        "datasets": sorted(d["fingerprint"] for d in meta["datasets"]),
        "code": code_version(recipe.model.name),
    }
    slug = recipe.model.name.replace("/", "_")
    jobs = []
    for r in chosen_repeats:
        for f in chosen_folds:
            for s in list(seeds or recipe.seeds):
                key = hash_obj({**identity, "repeat": r, "fold": f, "seed": s})
                jobs.append(Job(recipe.to_dict(), path, r, f, s, key, f"{slug}-r{r}-f{f}-s{s}-{key}"))
    return jobs


def check_leakage(recipe, meta: dict[str, Any]) -> None:
    """Refuse a manifest whose leakage verdict is not clean unless the recipe allows leakage."""
    verdict = (meta.get("leakage") or {}).get("verdict", "clean")
    if verdict != "clean" and not recipe.protocol.allow_leakage:
        raise FerbenchError(
            f"the manifest's leakage verdict is {verdict!r}; set protocol.allow_leakage=true to run it anyway "
            "(its results are flagged on the leaderboard)"
        )
