"""Run records written without training (``fake_run``), for leaderboard tests that need exact control
over which entry ran which folds and predicted what; plus checks that they are what the runner writes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ferbench import metrics
from ferbench.run_record import RESULT, RunRecord

CLASSES = ["neutral", "happiness", "surprise"]
MANIFEST = "a" * 64


def fold_truth(fold: int, subjects: int = 8, per_subject: int = 6) -> tuple[np.ndarray, list[str], list[str]]:
    """The test set of a fold: labels, subject ids (``subjects`` people of its own), sample ids."""
    truth = np.tile(np.arange(per_subject) % len(CLASSES), subjects)
    subj = [f"p{fold}-{i // per_subject}" for i in range(len(truth))]
    ids = [f"f{fold}-{i}" for i in range(len(truth))]
    return truth, subj, ids


def predict(truth: np.ndarray, accuracy: float, seed: int) -> np.ndarray:
    """Predictions right on about ``accuracy`` of the rows (the others shifted by one class)."""
    rng = np.random.default_rng(seed)
    wrong = rng.random(len(truth)) >= accuracy
    return np.where(wrong, (truth + 1) % len(CLASSES), truth)


def fake_run(runs: Path, name: str, recipe_hash: str, *, fold: int = 0, seed: int = 0, repeat: int = 0,
             accuracy: float = 0.9, pred: np.ndarray | None = None, n_folds: int = 3, n_repeats: int = 1,
             manifest: str = MANIFEST, created_at: str = "2024-01-01T00:00:00+00:00", reported: Any = None,
             train_counts: Sequence[int] = (5, 4, 3), datasets: Sequence[str] | None = None, run_id: str | None = None,
             synthetic: bool = False, subjects: bool = True, model: dict | None = None, published: bool = False,
             **recipe: Any) -> Path:
    """Write one run directory (``result.json`` + ``predictions.parquet``) under ``runs``; returns it."""
    truth, subj, ids = fold_truth(fold)
    if pred is None:
        pred = predict(truth, accuracy, seed=int(hashlib.sha256(f"{recipe_hash}/{fold}/{seed}".encode()).hexdigest()[:8], 16))
    run_id = run_id or hashlib.sha256(f"{recipe_hash}{manifest}{repeat}{fold}{seed}".encode()).hexdigest()[:16]
    run_dir = runs / f"{name}-r{repeat}-f{fold}-s{seed}-{run_id}"
    run_dir.mkdir(parents=True)
    scores = {"classes": CLASSES, "test": metrics.evaluate(truth, pred, CLASSES), "val": None,
              "baselines": metrics.baselines(train_counts, truth, CLASSES),
              "selection": {"rule": "last", "epoch": 0, "epochs_ran": 1, "stopped_early": False},
              "n": {"train": int(sum(train_counts)), "test": len(truth)}, "train_class_counts": list(train_counts)}
    record = RunRecord(
        run_id=run_id, run_name=run_dir.name, created_at=created_at,
        recipe={"name": name, "hash": recipe_hash, "model": "tiny_cnn", "modality": "rgb", "input_size": 16,
                "channels": 3, "pretrained": False, "eval": {"bootstrap": 100, "ci": 0.95}, "reported": reported,
                **recipe},
        protocol={"name": "toy", "version": "1", "manifest_hash": manifest, "seed": 0, "params": {}, "n_folds": n_folds,
                  "n_repeats": n_repeats, "classes": CLASSES, "published": published,
                  "leakage": {"verdict": "leaky-published" if published else "clean"}},
        repeat=repeat, fold=fold, seed=seed,
        datasets=[{"name": "toyfer", "fingerprint": "f" * 16, "synthetic": synthetic, "num_rows": 100}],
        code_version="0.1.0+test", metrics=scores,
        environment={"git_sha": "0" * 40, "git_dirty": False, "ferbench_version": "0.1.0", "device": "cpu",
                     "device_name": "test cpu", "wall_s": 2.0},
        model=model,
    )
    record.write(run_dir)
    n = len(truth)
    table = pa.table({
        "sample_id": ids, "dataset": list(datasets) * (n // len(datasets)) if datasets else ["toyfer"] * n,
        "subject_id": subj if subjects else [None] * n, "role": ["test"] * n,
        "repeat": np.full(n, repeat, np.int16), "fold": np.full(n, fold, np.int16), "seed": np.full(n, seed, np.int64),
        "label": truth.astype(np.int8), "pred": np.asarray(pred).astype(np.int8),
    })
    pq.write_table(table.replace_schema_metadata({b"ferbench_classes": json.dumps(CLASSES).encode()}),
                   run_dir / "predictions.parquet")
    return run_dir


def test_a_fake_run_loads_and_rescores_to_its_record(tmp_path):
    run = fake_run(tmp_path, "x", "h" * 16, fold=1, accuracy=0.5)
    record = RunRecord.load(run / RESULT)
    assert metrics.rescore(run / "predictions.parquet") == record.metrics["test"]
    assert record.model is None and "model" not in json.loads((run / RESULT).read_text())
