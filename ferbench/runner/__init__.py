"""Run one (recipe, repeat, fold, seed) job into a run directory, and plan the jobs of a recipe.

A job is identified by content: the recipe hash, the manifest's identity (the content hash its rows
actually have, checked by ``protocols.load_manifest``, with the metadata that changes a run's meaning),
the dataset fingerprints, the code version, and (repeat, fold, seed) (``jobs.plan``). ``run_job`` runs its steps
(``steps``: prepare, fit, evaluate; ``write``: write_run). Its run directory
``<out_dir>/<model>-r<repeat>-f<fold>-s<seed>-<key>/`` appears atomically (written under a temporary
name, then renamed) and holds:

* ``recipe.yaml``: the fully resolved recipe;
* ``predictions.parquet``: sample_id, dataset, subject_id, role (val/test), repeat, fold, seed, label,
  pred, probs (class names in the schema metadata ``ferbench_classes``);
* ``metrics.json``: test and val metrics, the majority and class-prior baselines, the selection rule
  (with ``phases`` for a recipe with ``hard_samples``: its epoch then counts within the last phase);
* ``curves.csv`` / ``curves.png``: one row per epoch (and per part-way validation); ``confusion.png``:
  the test confusion matrix;
* ``result.json``: the one record ``ferbench leaderboard`` ingests (with provenance and environment),
  a ``ferbench.run_record.RunRecord``;
* ``model.safetensors`` + ``model.json``: the selected weights and how to rebuild and feed the model
  (``runtime.keep_weights``; ``ferbench.model_io.load_model``).

While a job runs, its checkpoints live in ``<out_dir>/.<run name>.partial/``; a re-run of an
interrupted job resumes from there, and says so first (``[<run name>] resuming from epoch E/N``). A job
whose run directory exists is finished and is skipped. Under torchrun every rank runs the same jobs;
rank 0 writes.

Faults: one process at a time works on a job (``file_lock.FileLock``; the lock dies with its process), so
runs of the same recipe into one runs folder from several processes share the work and lose nothing:
``run_recipe`` first runs the jobs nobody else holds, then waits for the others and takes over any
whose holder died. SIGTERM ends a run like an exception (temporary files removed, checkpoints kept);
after SIGKILL the next run of the job removes the temporary output folders it finds (it holds the
lock, so they are abandoned). ``ferbench clean RUNS`` removes what abandoned jobs left.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Sequence

from ..run_record import RESULT, RESULT_SCHEMA, RunRecord
from ..file_lock import FileLock
from ..interrupt import terminate_as_exit
from .jobs import Job, code_version, manifest_path, plan, resolve_paths
from .steps import Evaluation, Fitted, Prepared, dist_context, evaluate, fit, input_spec, prepare
from .write import environment, make_record, write_run

__all__ = [
    "RESULT", "RESULT_SCHEMA", "Evaluation", "Fitted", "Job", "Prepared", "RunRecord", "code_version", "dist_context",
    "environment", "evaluate", "fit", "input_spec", "make_record", "manifest_path", "plan", "prepare", "resolve_paths",
    "resume_point", "run_job", "run_recipe", "terminate_as_exit", "write_run",
]


def run_job(job: Job, *, device: str | None = None, callbacks: Sequence = (), progress: bool | None = None,
            wait: bool = True) -> Path | None:
    """Train and evaluate one job; returns its run directory (existing ones are returned untouched).

    The job's lock is taken first (rank 0): with ``wait=False`` a job another process holds is left
    alone and None is returned; with ``wait`` this process waits, then returns the run directory the
    other process wrote or, if that process died, resumes the job itself. SIGTERM during the job
    unwinds it as ``SystemExit(143)`` (``terminate_as_exit``): temp files go, checkpoints stay."""
    if job.finished():
        return job.run_dir
    with terminate_as_exit():
        return _run_locked(job, device, callbacks, progress, wait)


def _run_locked(job: Job, device: str | None, callbacks: Sequence, progress: bool | None, wait: bool) -> Path | None:
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    lock = FileLock(job.lock_path) if rank == 0 else None
    if lock is not None and not lock.acquire(blocking=False):
        if not wait:
            return None
        _say(f"[{job.name}] another process is running this job; waiting for it")
        lock.acquire()
    try:
        if world == 1 and job.finished():  # another process finished it while we waited
            _remove_leftovers(job, partial=True)
            return job.run_dir
        if rank == 0:
            _remove_leftovers(job, partial=False)
            point = resume_point(job)
            if point:
                _say(f"[{job.name}] {point}")
        prepared = prepare(job, device=device, progress=progress)
        fitted = fit(prepared, callbacks=callbacks)
        evaluation = evaluate(prepared, fitted)
        if prepared.rank == 0:
            write_run(prepared, fitted, evaluation)
            shutil.rmtree(prepared.work, ignore_errors=True)
        if prepared.world > 1:
            import torch.distributed as dist

            dist.barrier()
    finally:
        if lock is not None:
            lock.release()
    return job.run_dir


def run_recipe(recipe, *, folds=None, seeds=None, repeats=None, device: str | None = None,
               callbacks: Sequence = (), progress: bool | None = None) -> list[Path]:
    """Run every unfinished job of a recipe in this process (all ranks, under torchrun).

    Jobs another process is running are left for last, then waited for (and resumed here if their
    process died); SIGTERM stops the run like an exception (``terminate_as_exit``)."""
    rank0 = int(os.environ.get("RANK", "0")) == 0
    world = int(os.environ.get("WORLD_SIZE", "1"))
    show = rank0 and (progress if progress is not None else recipe.runtime.progress)
    with terminate_as_exit():
        jobs = plan(recipe, folds=folds, seeds=seeds, repeats=repeats)
        dirs: dict[int, Path] = {}
        later = []
        for i, job in enumerate(jobs):
            if show:
                print(f"[{job.name}] {'done, skipped' if job.finished() else 'running'}", file=sys.stderr)
            done = run_job(job, device=device, callbacks=callbacks, progress=progress, wait=world > 1)
            if done is None:
                if rank0:
                    _say(f"[{job.name}] another process is running this job; coming back to it after the others")
                later.append(i)
            else:
                dirs[i] = done
        for i in later:
            dirs[i] = run_job(jobs[i], device=device, callbacks=callbacks, progress=progress, wait=True)
    return [dirs[i] for i in range(len(jobs))]


def resume_point(job: Job) -> str | None:
    """What a run of ``job`` resumes from, in words (None when there is no partial folder). Reads the
    checkpoints with ``weights_only=True``: a planted file is refused here, before any work."""
    from ..train.loop import checkpoint_epoch

    work = job.work
    if not work.is_dir():
        return None
    for sub, phase in (("ckpt-augmented", " of hard-sample phase 2-augmented"), ("ckpt-hard", " of hard-sample phase 2-hard"),
                       ("ckpt", "")):
        point = checkpoint_epoch(work / sub)
        if point is None:
            continue
        done, total, stopped = point
        if done >= total or stopped:
            what = f"all {total} epoch(s){phase} are" if done >= total else f"{done} epoch(s){phase} (stopped early) are"
            return f"resuming: {what} checkpointed in {work / sub}; continuing after them"
        held = "epoch 1 is" if done == 1 else f"epochs 1-{done} are"
        return f"resuming from epoch {done + 1}/{total}{phase} ({held} checkpointed in {work / sub})"
    return f"an interrupted attempt left {work} without a checkpoint; starting from epoch 1"


def _remove_leftovers(job: Job, *, partial: bool) -> None:
    """Remove the temporary output folders of earlier attempts at ``job`` (and, with ``partial``, its
    partial folder); only called while holding the job's lock, so nothing removed is in use."""
    for tmp in job.out_dir.glob(f".{job.name}.tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    if partial:
        shutil.rmtree(job.work, ignore_errors=True)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
