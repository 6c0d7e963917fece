"""Finding and reading the run results a board is built from.

``find_results`` lists the ``result.json`` of every finished run under the run folders (one level
deep, or a run folder itself); it never enters hidden folders (the runner's staging folders
``.<run>.partial`` / ``.<run>.tmp-*``, locks) and refuses a folder that does not exist or holds no
result. ``collect`` reads each record and its test predictions: a file that is not a valid record,
or whose predictions are missing or disagree with it, is skipped with its reason (the others are
still read); the same job found in two run folders is read once (the names it was found under are
all kept: a recipe copied under another name runs the same jobs), with a note.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import FerbenchError
from ..run_record import RESULT, RunRecord


@dataclass
class Run:
    """One readable run: its record and its test rows (cluster key, truth, prediction, source dataset)."""

    record: RunRecord
    path: Path
    clusters: np.ndarray  # object: "s:<subject>" or "x:<sample id>" (a row without a subject is its own cluster)
    truth: np.ndarray
    pred: np.ndarray
    dataset: np.ndarray  # object: the source dataset of each row (merged sets)
    digest: str  # of the sorted test sample ids: runs with equal digests saw the same test samples
    subjects: bool  # every test row has a subject
    aliases: list[RunRecord] = field(default_factory=list)  # the same job found again (under other names, maybe)

    @property
    def cell(self) -> tuple[int, int, int]:
        return self.record.repeat, self.record.fold, self.record.seed

    @property
    def external(self) -> dict | None:
        """The submission facts of an external run (``ferbench submit``: name, file SHA-256, declared
        facts), else None; its recipe's model reads "<model> (external)", which the boards show."""
        ext = self.record.extra.get("external")
        return ext if isinstance(ext, dict) else None

    @property
    def entry(self) -> tuple[str, str]:
        return self.record.manifest_hash, self.record.recipe_hash


@dataclass
class Collected:
    runs: list[Run]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    notes: list[tuple[str | None, str, str]] = field(default_factory=list)  # (manifest hash, kind, message)


def _hidden(path: Path) -> bool:
    return path.name.startswith(".")


def _scan(root: Path) -> list[Path]:
    if not root.exists():
        raise FerbenchError(f"--runs {root}: no such folder")
    if root.is_file():
        if root.name != RESULT:
            raise FerbenchError(f"--runs {root}: not a run folder (give the folder holding the runs)")
        return [root]
    if _hidden(root.resolve()):
        raise FerbenchError(f"--runs {root}: a hidden (staging) folder; give the folder holding the runs")
    if (root / RESULT).is_file():
        return [root / RESULT]
    return sorted(d / RESULT for d in root.iterdir() if d.is_dir() and not _hidden(d) and (d / RESULT).is_file())


def find_results(runs: Iterable[str | Path]) -> list[Path]:
    """Every finished run's record under the given run folders, sorted; refuses a folder that does
    not exist or holds no result."""
    found: list[Path] = []
    for root in runs:
        hits = _scan(Path(root))
        if not hits:
            raise FerbenchError(f"--runs {root}: holds no run result (no <run>/{RESULT}); nothing was changed")
        found += hits
    return sorted(dict.fromkeys(found))


def collect(runs: Iterable[str | Path]) -> Collected:
    """Read every result under ``runs``: junk skipped with its reason, duplicates read once."""
    out = Collected([])
    by_id: dict[str, Run] = {}
    for path in find_results(runs):
        try:
            run = _read(path)
        except FerbenchError as exc:
            out.skipped.append((str(path), str(exc).removeprefix(f"{path}: ")))
            continue
        first = by_id.get(run.record.run_id)
        if first is not None:
            first.aliases.append(run.record)
            out.notes.append((run.record.manifest_hash, "duplicate",
                              f"run {run.record.run_name} is in both {first.path.parent} and {run.path.parent}: "
                              f"ingested once, from {first.path.parent}"))
            continue
        by_id[run.record.run_id] = run
    out.runs = list(by_id.values())
    on_test = sorted({(r.record.manifest_hash, r.record.recipe.get("name") or "?") for r in out.runs
                      if r.record.selection.get("rule") == "on_test"})
    out.notes += [(m, "selected-on-test", f"SELECTED ON TEST: {name} picks its epoch on the test fold "
                                          "(train.select=on_test, as its publication did): its score is optimistic")
                  for m, name in on_test]
    return out


def _read(path: Path) -> Run:
    """One run: its record (``RunRecord.load``) and its test predictions, checked against the record."""
    import pyarrow.parquet as pq

    rec = RunRecord.load(path)
    preds = rec.predictions_path
    try:
        file = pq.ParquetFile(preds)  # opened once: its schema, then the columns ingest needs
        names = set(file.schema_arrow.names)
        cols = [c for c in ("role", "sample_id", "subject_id", "label", "pred", "dataset") if c in names]
        table = file.read(columns=cols)
    except (OSError, ValueError) as exc:
        raise FerbenchError(f"{path}: its predictions {preds.name} cannot be read ({' '.join(str(exc).split())})") from None
    missing = {"role", "sample_id", "label", "pred"} - set(cols)
    if missing:
        raise FerbenchError(f"{path}: its predictions lack the column(s) {', '.join(sorted(missing))}")
    roles = np.asarray(table.column("role").to_pylist(), dtype=object)
    test = table.filter(roles == "test")
    truth = test.column("label").to_numpy().astype(np.int64)
    pred = test.column("pred").to_numpy().astype(np.int64)
    n_classes = len(rec.classes)
    cm = np.asarray(rec.metrics["test"]["confusion"])
    if not len(truth):
        raise FerbenchError(f"{path}: its predictions hold no test rows")
    if truth.min() < 0 or pred.min() < 0 or max(truth.max(), pred.max()) >= n_classes:
        raise FerbenchError(f"{path}: its predictions hold labels outside the {n_classes} classes")
    if cm.shape != (n_classes, n_classes) or int(cm.sum()) != len(truth):
        raise FerbenchError(f"{path}: its test predictions ({len(truth)} rows) disagree with the record's confusion matrix")
    if len(rec.metrics["train_class_counts"]) != n_classes:
        raise FerbenchError(f"{path}: metrics.train_class_counts does not have {n_classes} classes")
    samples = test.column("sample_id").to_pylist()
    subjects = test.column("subject_id").to_pylist() if "subject_id" in cols else [None] * len(samples)
    clusters = np.array([f"s:{s}" if s is not None else f"x:{x}" for s, x in zip(subjects, samples)], dtype=object)
    default = rec.datasets[0]["name"] if len(rec.datasets) == 1 else "unknown"
    dataset = np.array(test.column("dataset").to_pylist() if "dataset" in cols else [default] * len(samples), dtype=object)
    digest = hashlib.sha256("\n".join(sorted(map(str, samples))).encode()).hexdigest()[:16]
    return Run(rec, path, clusters, truth, pred, dataset, digest, all(s is not None for s in subjects))
