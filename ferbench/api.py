"""The Python API: what every ``ferbench`` command does, as functions (``import ferbench as fb``).

=================  ===========================================================================
``convert``        a licensed raw copy → a converted dataset directory (``ferbench convert``)
``open``           open a converted or merged dataset directory (card, schema, rows)
``info``           per-split / per-class / per-subject counts and the build report (``info``)
``merge``          converted datasets → a merged one (``ferbench merge``)
``split``          materialise a protocol into a verified manifest, optionally written (``split``)
``load_manifest``  read a manifest file, its content hash checked
``load_fold``      one (repeat, fold) as a ``datasets.DatasetDict`` (train / validation / test)
``export_fold``    the same fold as a standard dataset directory or an image-folder tree
``run``            train and evaluate a recipe; returns the runs' result records (metrics)
``leaderboard``    ingest run results and rank them: one ``Board`` per (protocol, manifest)
``submit``         score outside predictions (CSV/Parquet) as external runs (``ferbench submit``)
``evaluate``       inference-only evaluation of a model or callable on a manifest's test folds
``load_model``     a run's saved model (``model.safetensors``) and its input transform
=================  ===========================================================================

Heavy modules (pyarrow, datasets, torch) are imported inside the functions, so importing this
module (and ``ferbench``) stays fast.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Mapping, Sequence

if TYPE_CHECKING:
    import datasets

    from .converted import ConvertedDataset
    from .leaderboard import Board
    from .protocols.manifest import Manifest
    from .run_record import RunRecord
    from .shards import BuildResult
    from .train.recipe import Recipe

PathLike = str | Path

#: ``open`` is public too but left out, so that ``from ferbench.api import *`` never shadows the builtin.
__all__ = ["convert", "evaluate", "export_fold", "info", "leaderboard", "load_fold", "load_manifest", "load_model", "merge",
           "run", "split", "submit"]


def _dirs(data_dirs: PathLike | Sequence[PathLike]) -> list[PathLike]:
    return [data_dirs] if isinstance(data_dirs, (str, Path)) else list(data_dirs)


# -- datasets -------------------------------------------------------------------------------------
def convert(name: str, raw_dir: PathLike, out: PathLike, *, strict: bool = False, workers: int | None = None,
            overwrite: bool = False, progress: bool = True, **options: Any) -> "BuildResult":
    """Convert the raw copy of dataset ``name`` into a dataset directory at ``out`` (written atomically).

    ``options`` are the converter's own (``ferbench datasets NAME`` lists them); ``strict`` stops at
    the first faulty sample. Returns out_dir, num_rows, fingerprint and the build report."""
    from .build import convert as _convert

    return _convert(name, raw_dir, out, strict=strict, workers=workers, overwrite=overwrite, progress=progress, **options)


def open(path: PathLike) -> "ConvertedDataset":  # noqa: A001  (``fb.open``; ``ferbench.__all__`` leaves it out)
    """Open a converted or merged dataset directory; its shards are checked against its card.

    ``.card`` (name, fingerprint, num_rows, …), ``.read(columns)`` (an Arrow table, its columns
    re-checked), ``.schema()``, ``.metadata()``, ``.report()``."""
    from .converted import open_dataset

    return open_dataset(path)


def info(path: PathLike) -> dict[str, Any]:
    """Counts of a dataset directory (per source split × class, subjects) with its card and build report."""
    import duckdb

    from .converted import open_dataset
    from .schema import EMOTIONS

    data = open_dataset(path)
    con = duckdb.connect()
    try:
        con.read_parquet([str(p) for p in data.shard_paths]).create_view("d")
        per_split = con.execute(
            "SELECT coalesce(source_split, '<none>'), label, count(*) FROM d GROUP BY ALL ORDER BY 1, 2 NULLS LAST"
        ).fetchall()
        distinct, without = con.execute(
            "SELECT count(DISTINCT subject_id), count(*) FILTER (WHERE subject_id IS NULL) FROM d").fetchone()
        spread = con.execute(
            "SELECT min(c), median(c), max(c) FROM (SELECT count(*) c FROM d WHERE subject_id IS NOT NULL GROUP BY subject_id)"
        ).fetchone()
    finally:
        con.close()
    table: dict[str, dict[str, int]] = {}
    for split, label, n in per_split:
        table.setdefault(split, {})[EMOTIONS[label] if label is not None else "<no label>"] = n
    return {
        "card": data.card.to_json(),
        "legacy_layout": data.legacy,
        "per_split_class": table,
        "subjects": {
            "distinct": distinct,
            "rows_without_subject": without,
            "samples_per_subject_min_median_max": list(spread),
        },
        "build_report": data.report() or None,
    }


def merge(name: str, data_dirs: PathLike | Sequence[PathLike], out: PathLike, *, seed: int = 0,
          overwrite: bool = False, **params: Any) -> "BuildResult":
    """Build merged dataset ``name`` (``global``, ``avfer``) from converted source directories into ``out``."""
    from .merges import merge as _merge

    return _merge(name, _dirs(data_dirs), out, seed=seed, overwrite=overwrite, **params)


# -- protocols ------------------------------------------------------------------------------------
def split(protocol: str, data_dirs: PathLike | Sequence[PathLike], out: PathLike | None = None, *, seed: int = 0,
          allow_leakage: bool = False, near_threshold: int | None = None, **params: Any) -> "Manifest":
    """Materialise ``protocol`` over dataset directories into a manifest, verified for leakage.

    A leaking manifest raises ``LeakageError`` unless ``allow_leakage``. With ``out`` the manifest is
    also written there (atomically). ``params`` are the protocol's (``k``, ``repeats``, ``val`` …)."""
    from .protocols import materialise

    extra = {} if near_threshold is None else {"near_threshold": near_threshold}
    manifest = materialise(protocol, _dirs(data_dirs), seed=seed, allow_leakage=allow_leakage, **extra, **params)
    if out is not None:
        manifest.write(out)
    return manifest


def load_manifest(path: PathLike, data_dirs: Sequence[PathLike] | None = None) -> "Manifest":
    """Read a manifest checked for use: its rows must hash to its stored content hash, its datasets
    have the fingerprints it was made from and agree with its rows, its leakage verdict is sealed
    (else checked again). ``data_dirs`` (matched by card name) override the recorded dataset paths.

    ``.table`` (one row per sample × repeat × fold), ``.meta`` (protocol, classes, n_folds, …),
    ``.select(repeat, fold)`` (role → rows), ``.content_hash``."""
    from .protocols import load_manifest as _load_manifest

    return _load_manifest(path, list(data_dirs or ()))


def load_fold(manifest: "Manifest | PathLike", fold: int, repeat: int = 0,
              data_dirs: Sequence[PathLike] | None = None) -> "datasets.DatasetDict":
    """One (repeat, fold) as a ``datasets.DatasetDict``: splits train / validation / test (no
    validation where the protocol has none); columns sample_id, dataset, subject_id, image (PIL),
    depth (PIL, where present), label (``ClassLabel`` with the protocol's classes, in its order) and
    label_canonical (``ClassLabel`` over ``ferbench.schema.EMOTIONS``).

    The manifest is checked first as by ``load_manifest`` (content hash, fingerprints, rows, leakage
    seal); ``data_dirs`` (matched by card name) override the dataset paths the manifest recorded."""
    from .folds import load_fold as _load_fold

    return _load_fold(manifest, fold, repeat, data_dirs)


def export_fold(manifest: "Manifest | PathLike", out: PathLike, fold: int, repeat: int = 0, *,
                format: Literal["hf", "imagefolder"] = "hf", data_dirs: Sequence[PathLike] | None = None,
                overwrite: bool = False) -> Path:
    """Write one (repeat, fold) to ``out`` (atomically): ``hf``, a standard dataset directory that
    ``datasets.load_dataset(out)`` and timm's ``hfds/out`` read; or ``imagefolder``,
    ``split/NN_class/sample.png|jpg`` for torchvision's ``ImageFolder`` and timm folder datasets."""
    from .folds import export_fold as _export_fold

    return _export_fold(manifest, out, fold, repeat, format=format, data_dirs=data_dirs, overwrite=overwrite)


# -- training and results -------------------------------------------------------------------------
def run(recipe: "PathLike | Recipe | Mapping[str, Any]", overrides: Sequence[str] = (), *,
        folds: Sequence[int] | None = None, seeds: Sequence[int] | None = None, repeats: Sequence[int] | None = None,
        device: str | None = None, progress: bool | None = None) -> list["RunRecord"]:
    """Train and evaluate every unfinished (repeat, fold, seed) job of a recipe in this process.

    ``recipe`` is a YAML path, a ``Recipe`` or a plain mapping; ``overrides`` are ``dotted.key=value``
    strings. Returns one ``RunRecord`` per job (finished jobs are read back, not re-run):
    ``.metrics["test"]["balanced_accuracy"]``, ``.run_dir``, ``.fold``, ``.seed`` …"""
    from .run_record import RunRecord
    from .runner import run_recipe
    from .train.recipe import Recipe, apply_override, from_dict, load_recipe

    if isinstance(recipe, (str, Path)):
        resolved = load_recipe(recipe, list(overrides))
    else:
        raw = recipe.to_dict() if isinstance(recipe, Recipe) else dict(recipe)
        for item in overrides:
            apply_override(raw, item)
        resolved = from_dict(raw)  # a copy: the runner resolves paths in place
    dirs = run_recipe(resolved, folds=folds, seeds=seeds, repeats=repeats, device=device, progress=progress)
    return [RunRecord.load(d) for d in dirs]


def leaderboard(runs: PathLike | Sequence[PathLike] = ("runs",), db: PathLike | None = None, *,
                protocol: str | None = None, manifest: str | None = None, metric: str = "balanced_accuracy",
                ingest: bool = True) -> list["Board"]:
    """Ingest every run result under ``runs`` into the DuckDB file ``db`` (default
    ``leaderboard/ferbench.duckdb``; not when ``ingest=False``) and rank: one ``Board`` per
    (protocol, manifest), entries best first, with the baselines.

    ``ferbench.leaderboard.render(boards, "table" | "md" | "html")`` formats them."""
    lb = importlib.import_module("ferbench.leaderboard")
    db = lb.DEFAULT_DB if db is None else db
    if ingest:
        lb.ingest(_dirs(runs), db)
    return lb.rank(db, protocol=protocol, manifest=manifest, metric=metric)



# -- open benchmark -------------------------------------------------------------------------------
def submit(predictions: PathLike, manifest: PathLike, *, name: str, info: "PathLike | Mapping[str, Any] | None" = None,
           runs: PathLike = "runs", data_dirs: Sequence[PathLike] | None = None, bootstrap: int = 1000,
           overwrite: bool = False) -> list["RunRecord"]:
    """Score a submission file (sample_id, repeat, fold, pred or p_<class>) against ``manifest``'s
    ground truth and store it as external runs under ``runs`` (one per (repeat, fold)); bad input
    raises ``FerbenchError`` and writes nothing. ``ferbench.submit.SUBMISSION_SCHEMA`` is the format."""
    from .submit import submit as _submit

    return _submit(predictions, manifest, name=name, info=None if info is None else (
        dict(info) if isinstance(info, Mapping) else info), runs=runs, data_dirs=data_dirs, bootstrap=bootstrap,
        overwrite=overwrite)


def evaluate(predict_fn_or_model: Any, manifest: PathLike, *, data_dirs: Sequence[PathLike] | None = None,
             batch_size: int = 64, device: str = "cpu", name: str | None = None, **kwargs: Any):
    """Predict every test fold of ``manifest`` with a torch model or a callable (list of PIL images, or a
    tensor batch after ``transform=``, → (N, classes) probabilities); returns a ``Submission`` (``.table``
    in the submission format). With ``name`` it is also submitted (``runs=``, ``info=``); ``out=`` writes it."""
    from .model_io import evaluate as _evaluate

    return _evaluate(predict_fn_or_model, manifest, data_dirs=data_dirs, batch_size=batch_size, device=device,
                     name=name, **kwargs)


def load_model(run_dir: PathLike, device: str = "cpu"):
    """(model in eval mode, transform) from a run directory's ``model.safetensors`` + ``model.json``;
    ``transform(PIL image or path)`` is the normalised (C, H, W) tensor the run evaluated on."""
    from .model_io import load_model as _load_model

    return _load_model(run_dir, device)
