"""Run one (recipe, repeat, fold, seed) job into a run directory, and plan the jobs of a recipe.

A job is identified by content: the recipe hash, the protocol manifest's content hash, the dataset
fingerprints, the code version, and (repeat, fold, seed) (``jobs.plan``). ``run_job`` runs its steps
(``steps``: prepare, fit, evaluate; ``write``: write_run). Its run directory
``<out_dir>/<model>-r<repeat>-f<fold>-s<seed>-<key>/`` appears atomically (written under a temporary
name, then renamed) and holds:

* ``recipe.yaml``: the fully resolved recipe;
* ``predictions.parquet``: sample_id, dataset, subject_id, role (val/test), repeat, fold, seed, label,
  pred, probs (class names in the schema metadata ``ferbench_classes``);
* ``metrics.json``: test and val metrics, the majority and class-prior baselines, the selection rule
  (with ``phases`` for a recipe with ``hard_samples``: its epoch then counts within the last phase);
* ``curves.csv``: one row per epoch; ``confusion.png``: the test confusion matrix;
* ``result.json``: the one record ``ferbench leaderboard`` ingests (with provenance and environment),
  a ``ferbench.run_record.RunRecord``;
* ``model.pt``: the selected weights (``runtime.keep_weights``).

While a job runs, its checkpoints live in ``<out_dir>/.<run name>.partial/``; a re-run of an
interrupted job resumes from there. A job whose run directory exists is finished and is skipped.
Under torchrun every rank runs the same jobs; rank 0 writes.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Sequence

from ..run_record import RESULT, RESULT_SCHEMA, RunRecord
from .jobs import Job, code_version, manifest_path, plan, resolve_paths
from .steps import Evaluation, Fitted, Prepared, dist_context, evaluate, fit, input_spec, prepare
from .write import environment, make_record, write_run

__all__ = [
    "RESULT", "RESULT_SCHEMA", "Evaluation", "Fitted", "Job", "Prepared", "RunRecord", "code_version", "dist_context",
    "environment", "evaluate", "fit", "input_spec", "make_record", "manifest_path", "plan", "prepare", "resolve_paths",
    "run_job", "run_recipe", "write_run",
]


def run_job(job: Job, *, device: str | None = None, callbacks: Sequence = (), progress: bool | None = None) -> Path:
    """Train and evaluate one job; returns its run directory (existing ones are returned untouched)."""
    if job.finished():
        return job.run_dir
    prepared = prepare(job, device=device, progress=progress)
    fitted = fit(prepared, callbacks=callbacks)
    evaluation = evaluate(prepared, fitted)
    if prepared.rank == 0:
        write_run(prepared, fitted, evaluation)
        shutil.rmtree(prepared.work, ignore_errors=True)
    if prepared.world > 1:
        import torch.distributed as dist

        dist.barrier()
    return job.run_dir


def run_recipe(recipe, *, folds=None, seeds=None, repeats=None, device: str | None = None,
               callbacks: Sequence = (), progress: bool | None = None) -> list[Path]:
    """Run every unfinished job of a recipe in this process (all ranks, under torchrun)."""
    dirs = []
    for job in plan(recipe, folds=folds, seeds=seeds, repeats=repeats):
        state = "done, skipped" if job.finished() else "running"
        if int(os.environ.get("RANK", "0")) == 0 and (progress if progress is not None else recipe.runtime.progress):
            print(f"[{job.name}] {state}", file=sys.stderr)
        dirs.append(run_job(job, device=device, callbacks=callbacks, progress=progress))
    return dirs
