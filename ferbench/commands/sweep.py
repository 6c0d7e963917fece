"""``ferbench sweep RECIPE... [--executor local|ray]``: run many recipes' jobs, skipping finished ones.

Each job prints one line: ``cached`` (its run directory existed: finished before), ``done`` as soon
as its run directory appears (with its test score and how long it ran) or ``FAILED`` (with the
error's first line); a summary closes the sweep. The jobs run through ``ferbench.sweep.sweep``
(process pool or Ray, job locks, clean stop on SIGTERM); a run directory appears atomically when its
job finishes, so watching for it reports each job as it lands, whichever process ran it.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Sequence

from .. import ui
from ..errors import FerbenchError
from .run import add_selection


class _Report:
    """Numbered job lines, printed once per job, from the watching thread or the main one."""

    def __init__(self, total: int):
        self.total, self.count, self.lock = total, 0, threading.Lock()
        self.reported: set[str] = set()

    def line(self, name: str, state: str, detail: str, when: str) -> None:
        with self.lock:
            if name in self.reported:
                return
            self.reported.add(name)
            self.count += 1
            if not ui.quiet() or state == "FAILED":
                print(f"[{self.count}/{self.total}] {state:<6} {name}  {detail}  ({when})", flush=True)


class _Watcher(threading.Thread):
    """Reports each job whose run directory appears while the sweep runs (polling every ``every`` s)."""

    def __init__(self, jobs: Sequence, report: _Report, every: float = 1.0):
        super().__init__(daemon=True, name="ferbench-sweep-watch")
        self.pending, self.report, self.every = list(jobs), report, every
        self.stopped = threading.Event()

    def run(self) -> None:
        while self.pending and not self.stopped.wait(self.every):
            self.scan()

    def scan(self) -> None:
        for job in list(self.pending):
            if job.finished():
                self.pending.remove(job)
                self.report.line(job.name, "done", _score(job.run_dir), _took(job.run_dir))

    def finish(self) -> None:
        self.stopped.set()
        self.join()
        self.scan()


def run(args: argparse.Namespace) -> int:
    from ..devices import resolve_device
    from ..sweep import collect, sweep

    recipes = [item for item in args.items if "=" not in item]
    overrides = [item for item in args.items if "=" in item]
    if not recipes:
        raise FerbenchError("give at least one recipe file or shipped recipe name (ferbench run --list)")
    device = resolve_device(args.device) if args.device else None
    if args.executor == "ray":
        from ..extras import require

        require("ray", feature="the Ray executor (ferbench sweep --executor ray)")
    jobs = collect(recipes, overrides, folds=args.folds, seeds=args.seeds, repeats=args.repeats)
    start, report = time.perf_counter(), _Report(len(jobs))
    for job in jobs:
        if job.finished():
            report.line(job.name, "cached", _score(job.run_dir), "finished before")
    watcher = _Watcher([j for j in jobs if not j.finished()], report)
    watcher.start()
    try:
        result = sweep(jobs, executor=args.executor, workers=args.workers, device=device, address=args.address,
                       gpus_per_job=args.gpus_per_job)
    finally:
        watcher.finish()
    for name, err in result.failed.items():
        first = err.strip().splitlines()[0][:200] if err.strip() else "failed"
        report.line(name, "FAILED", first, "details below" if args.debug else "--debug for details")
    out_dirs = sorted({str(Path(j.recipe["runtime"]["out_dir"])) for j in jobs})
    print(f"{len(jobs)} jobs: {len(result.done)} run, {len(result.skipped)} already finished, {len(result.failed)} failed "
          f"in {ui.duration(time.perf_counter() - start)}; run directories in {', '.join(out_dirs) or '-'}")
    if result.failed:
        if args.debug:
            for name, err in result.failed.items():
                print(f"FAILED {name}: {err}", file=sys.stderr)
        print(f"{len(result.failed)} job(s) failed: rerun the same command to retry them (finished jobs are skipped)",
              file=sys.stderr)
    return 1 if result.failed else 0


def _score(run_dir: Path) -> str:
    try:
        test = json.loads((Path(run_dir) / "metrics.json").read_text())["test"]
        return f"test balanced acc {100 * test['balanced_accuracy']:.1f}%"
    except (OSError, ValueError, KeyError, TypeError):
        return "no score"


def _took(run_dir: Path) -> str:
    try:
        return ui.duration(json.loads((Path(run_dir) / "result.json").read_text())["environment"]["wall_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return "time unknown"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run the jobs of several recipes (resumable), locally or on Ray",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("items", nargs="+", metavar="RECIPE|KEY=VALUE",
                   help="recipe YAML files (or shipped recipe names), and KEY=VALUE overrides applied to all of them")
    p.add_argument("--executor", choices=("local", "ray"), default="local")
    p.add_argument("--workers", type=int, default=1, help="local: parallel job processes")
    p.add_argument("--address", default=None, help="ray: cluster address (default: auto)")
    p.add_argument("--gpus-per-job", type=float, default=0.0, help="ray: GPUs reserved per job")
    add_selection(p)
    p.set_defaults(func=run)
