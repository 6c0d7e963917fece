"""Planning: the (repeat, fold, seed) jobs of a recipe, each identified by content; the job lock.

``plan`` opens the manifest with ``protocols.load_manifest`` (content hash recomputed, rows checked
against the datasets, leakage verdict sealed or verified again). A job's key hashes the recipe hash,
the manifest's identity (``manifest_identity``: the content hash its rows actually have, with the
metadata that changes what a run means: protocol, version, seed, params, classes, folds, trusted
leakage verdict), the dataset fingerprints, the code version, and (repeat, fold, seed); so two
differently edited manifests never share a job id. Its run directory is
``<out_dir>/<model>-r<repeat>-f<fold>-s<seed>-<key>/``.

One process at a time works on a job (``<out_dir>/.<run name>.lock``, a ``file_lock.FileLock``
released when the process ends, however it ends); ``ferbench clean`` leaves a locked job's partial
folder alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
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
    #: the content hash the manifest's rows had when planned (``prepare`` refuses another)
    manifest_hash: str = ""
    #: the leakage verdict ``plan`` trusted (sealed, or verified again), recorded with the run
    leakage: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def out_dir(self) -> Path:
        return Path(self.recipe["runtime"]["out_dir"])

    @property
    def run_dir(self) -> Path:
        return self.out_dir / self.name

    @property
    def work(self) -> Path:
        """The partial folder (checkpoints) of an unfinished job."""
        return self.out_dir / f".{self.name}.partial"

    @property
    def lock_path(self) -> Path:
        return self.out_dir / f".{self.name}.lock"

    def finished(self) -> bool:
        return (self.run_dir / RESULT).is_file()


def code_version(model_name: str) -> str:
    """ferbench version + hash of the runner and training code + the model's own code version.

    The code is hashed from the source files (the runner package, the run record and the
    training modules, less the recipe parser), not from imported modules, so
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
_UNVERSIONED = frozenset({"recipe.py", "recipe_checks.py", "recipe_yaml.py", "recipe_schema.py"})


def resolve_paths(recipe) -> None:
    """Make the recipe's data, manifest and output paths absolute (relative to the working directory)."""
    recipe.data.dirs = [str(Path(d).expanduser().resolve()) for d in recipe.data.dirs]
    if recipe.protocol.manifest:
        recipe.protocol.manifest = str(Path(recipe.protocol.manifest).expanduser().resolve())
    recipe.runtime.out_dir = str(Path(recipe.runtime.out_dir).expanduser().resolve())


def manifest_path(recipe) -> str:
    """The manifest file of a recipe: its ``protocol.manifest``, or the materialised protocol saved
    once under ``<out_dir>/manifests/<content hash>.parquet`` (rewritten if that file was altered)."""
    if recipe.protocol.manifest:
        return recipe.protocol.manifest
    from ..protocols import materialise

    m = materialise(recipe.protocol.name, recipe.data.dirs, seed=recipe.protocol.seed,
                    allow_leakage=recipe.protocol.allow_leakage, **recipe.protocol.params)
    path = Path(recipe.runtime.out_dir) / "manifests" / f"{m.meta['content_hash']}.parquet"
    if not _holds(path, m.meta["content_hash"]):  # missing, or not the rows its name says: (re)written atomically
        m.write(path)
    return str(path)


def _holds(path: Path, content_hash: str) -> bool:
    """Whether ``path`` is a readable manifest whose rows hash to ``content_hash``."""
    from ..protocols import read_manifest

    if not path.exists():
        return False
    try:
        return read_manifest(path).meta["content_hash"] == content_hash
    except FerbenchError:
        return False


def plan(recipe, *, folds: Sequence[int] | None = None, seeds: Sequence[int] | None = None,
         repeats: Sequence[int] | None = None) -> list[Job]:
    """Every (repeat, fold, seed) job of a recipe; arguments override the recipe's selection. The
    manifest is checked first (``protocols.load_manifest``)."""
    from ..protocols import load_manifest

    resolve_paths(recipe)
    path = manifest_path(recipe)
    manifest = load_manifest(path, recipe.data.dirs)
    meta = manifest.meta
    check_leakage(recipe, meta)
    if recipe.train.select == "on_test" and not meta.get("published"):
        raise FerbenchError(f"train.select=on_test picks the epoch on the test fold: only an as-published protocol may do "
                            f"that, and {meta.get('protocol')!r} is not one (use a *-published protocol, or select: best)")
    chosen_repeats = list(repeats or recipe.repeats or range(meta["n_repeats"]))
    chosen_folds = list(folds or recipe.folds or range(meta["n_folds"]))
    for what, chosen, n in (("repeat", chosen_repeats, meta["n_repeats"]), ("fold", chosen_folds, meta["n_folds"])):
        bad = [v for v in chosen if not 0 <= v < n]
        if bad:
            raise FerbenchError(f"{what}s {bad} do not exist: the protocol has {n}")
    identity = {
        "recipe": recipe.hash(),
        "manifest": manifest_identity(manifest),
        "datasets": sorted(d["fingerprint"] for d in meta["datasets"]),
        "code": code_version(recipe.model.name),
    }
    slug = recipe.model.name.replace("/", "_")
    jobs = []
    for r in chosen_repeats:
        for f in chosen_folds:
            for s in list(seeds or recipe.seeds):
                key = hash_obj({**identity, "repeat": r, "fold": f, "seed": s})
                jobs.append(Job(recipe.to_dict(), path, r, f, s, key, f"{slug}-r{r}-f{f}-s{s}-{key}",
                                manifest_hash=meta["content_hash"], leakage=meta.get("leakage")))
    return jobs


def manifest_identity(manifest) -> str:
    """What a manifest is, for job keys: the content hash of its (checked) rows and the metadata
    that changes what a run on it means, including the leakage verdict that was trusted."""
    meta = manifest.meta
    return hash_obj({
        "content_hash": meta["content_hash"],
        **{k: meta.get(k) for k in ("protocol", "version", "seed", "params", "classes", "class_canonical", "n_folds", "n_repeats")},
        "leakage": (meta.get("leakage") or {}).get("verdict"),
    }, n=32)


def check_leakage(recipe, meta: dict[str, Any]) -> None:
    """Refuse a manifest whose leakage verdict is not clean unless the recipe allows leakage; a leak
    the protocol declares (an as-published protocol, FER2013's official duplicates) runs, flagged."""
    from ..protocols import DECLARED_VERDICTS

    verdict = (meta.get("leakage") or {}).get("verdict")
    if verdict != "clean" and verdict not in DECLARED_VERDICTS and not recipe.protocol.allow_leakage:
        raise FerbenchError(
            f"the manifest's leakage verdict is {verdict!r}; set protocol.allow_leakage=true to run it anyway "
            "(its results are flagged on the leaderboard)"
        )
