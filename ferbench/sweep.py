"""Sweeps: the (recipe, repeat, fold, seed) jobs of several recipes, run by a local process pool or Ray.

Jobs are keyed by content (``ferbench.runner.Job.key``): a job whose run directory exists is
skipped, duplicates across recipes run once, and a sweep restarted after a crash picks up where it
stopped (an interrupted job resumes from its checkpoint). Both executors call the same ``execute``
function; Ray sends it to an existing cluster (``ray start --head`` / ``ray.init(address=...)``),
which must see the same file system paths (data, manifests, run folder).

Every job is planned through ``runner.plan`` (manifest hash recomputed, rows checked against the
datasets, leakage verdict trusted only when sealed), and run under its job lock, so sweeps and runs
sharing a runs folder never run one job twice at once. Local pool workers die with the sweep
(``PR_SET_PDEATHSIG`` on Linux; on SIGTERM or an error the pool's workers are terminated, their
checkpoints kept for the next sweep), so a killed sweep leaves no orphan process.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .errors import FerbenchError
from .runner import Job, plan, run_job, terminate_as_exit


@dataclass
class SweepResult:
    done: list[str] = field(default_factory=list)  # run directories
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # job name -> error


def collect(recipes: Sequence[str | Path], overrides: Sequence[str] = (), *, folds=None, seeds=None, repeats=None) -> list[Job]:
    """Every job of every recipe, each distinct job once (by content key), in recipe order."""
    from .train.recipe import load_recipe

    seen: dict[str, Job] = {}
    for path in recipes:
        for job in plan(load_recipe(path, overrides), folds=folds, seeds=seeds, repeats=repeats):
            seen.setdefault(job.key, job)
    return list(seen.values())


def execute(job: Job, device: str | None, threads: int | None) -> str:
    """Run one job in a worker (process-pool worker or Ray task); returns its run directory."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    return str(run_job(job, device=device, progress=False))


def sweep(jobs: Sequence[Job], *, executor: str = "local", workers: int = 1, device: str | None = None,
          address: str | None = None, gpus_per_job: float = 0.0) -> SweepResult:
    """Run the unfinished ``jobs``; finished ones are reported as skipped."""
    result = SweepResult(skipped=[str(j.run_dir) for j in jobs if j.finished()])
    todo = [j for j in jobs if not j.finished()]
    if not todo:
        return result
    with terminate_as_exit():
        if executor == "local":
            _local(todo, workers, device, result)
        elif executor == "ray":
            _ray(todo, device, address, gpus_per_job, result)
        else:
            raise FerbenchError(f"unknown executor {executor!r}: local or ray")
    return result


def _local(jobs: Sequence[Job], workers: int, device: str | None, result: SweepResult) -> None:
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    if workers <= 1:
        for job in jobs:
            _record(job, result, lambda: execute(job, device, None))
        return
    pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_die_with_parent)
    try:
        futures = [(job, pool.submit(execute, job, device, threads)) for job in jobs]
        for job, fut in futures:
            _record(job, result, fut.result)
    except BaseException:  # SIGTERM (SystemExit), Ctrl-C: stop the workers now; their checkpoints stay
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def _die_with_parent() -> None:
    """Pool-worker initializer: on Linux the kernel sends SIGTERM to the worker when the sweep dies."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):
            pass


def _ray(jobs: Sequence[Job], device: str | None, address: str | None, gpus_per_job: float, result: SweepResult) -> None:
    try:
        import ray
    except ImportError:
        raise FerbenchError("the ray executor needs Ray: pip install ray (then start a cluster with `ray start --head` "
                            "or pass --address of an existing one)") from None
    ray.init(address=address or "auto", ignore_reinit_error=True)
    task = ray.remote(num_gpus=gpus_per_job)(execute)
    refs = [(job, task.remote(job, device, None)) for job in jobs]
    for job, ref in refs:
        _record(job, result, lambda: ray.get(ref))


def _record(job: Job, result: SweepResult, get) -> None:
    try:
        result.done.append(get())
    except Exception as exc:  # one failed job must not stop the others
        result.failed[job.name] = f"{type(exc).__name__}: {exc}"
