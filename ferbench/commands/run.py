"""``ferbench run RECIPE [key=value ...]``: train and evaluate every fold × seed of a recipe's protocol.

RECIPE is a YAML file or the name of a shipped recipe (``ferbench run --list``). Before any work the
recipe, the device, the model and the protocol are checked (one-line errors). Each job says when it
starts or that it finished before; epochs show as a progress bar on a terminal, elsewhere as a line
per epoch with its rate and, at most every 30 s, one with the job's ETA. The run ends with a table
of the test metrics, each with its subject-bootstrap CI, and the run directories. ``--dry-run``
prints the resolved recipe (valid YAML) and, as comments, the jobs it would run; it trains nothing
and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

from .. import ui
from ..errors import FerbenchError

#: test metrics the closing table shows (all scalars are in metrics.json)
SHOWN = ("balanced_accuracy", "accuracy", "macro_f1")


def int_list(text: str) -> list[int]:
    """``0,2,5`` or ``0-4`` (inclusive) → list of ints."""
    out: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            out += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list like 0,2,5 or a range like 0-4") from None
    return out


def add_selection(p: argparse.ArgumentParser) -> None:
    """Options shared by ``run`` and ``sweep``: device and the fold/seed/repeat selection."""
    p.add_argument("--device", default=None, metavar="DEVICE",
                   help="cpu, cuda, cuda:N, mps or auto (default: the recipe's runtime.device)")
    p.add_argument("--folds", type=int_list, default=None, help="folds to run, e.g. 0,1 or 0-4 (default: all)")
    p.add_argument("--seeds", type=int_list, default=None, help="training seeds (default: the recipe's)")
    p.add_argument("--repeats", type=int_list, default=None, help="protocol repeats (default: all)")


def check_names(recipe) -> None:
    """One-line errors for a model or protocol name nothing registers (before any data is read)."""
    from ..models import model_cfg
    from ..protocols.base import PROTOCOLS

    model_cfg(recipe.model.name)
    if recipe.protocol.name is not None:
        PROTOCOLS.get(recipe.protocol.name)


def run(args: argparse.Namespace) -> int:
    from .. import recipes
    from ..devices import resolve_device
    from ..train.recipe import load_recipe

    if args.list:
        print("\n".join(recipes.names()))
        return 0
    if not args.recipe:
        raise FerbenchError("give a recipe file or the name of a shipped recipe (list them: ferbench run --list)")
    recipe = load_recipe(args.recipe, args.overrides)
    device = resolve_device(args.device or recipe.runtime.device)
    check_names(recipe)
    if args.dry_run:
        return dry_run(recipe, args, device)
    return run_jobs(recipe, args, device)


def run_jobs(recipe, args: argparse.Namespace, device: str) -> int:
    """The recipe's jobs through ``runner.run_recipe`` (job locks, resume, SIGTERM handling), then the table."""
    from ..runner import run_recipe

    rank0 = int(os.environ.get("RANK", "0")) == 0
    progress = recipe.runtime.progress and not ui.quiet()
    if rank0:
        ui.say(f"ferbench run {recipe.name}: device {device}, run directories in {Path(recipe.runtime.out_dir).resolve()}/")
    eta = [] if ui.is_tty() or not progress else [EpochLines(recipe.train.epochs)]
    start = time.perf_counter()
    dirs = run_recipe(recipe, folds=args.folds, seeds=args.seeds, repeats=args.repeats, device=device,
                      callbacks=eta, progress=progress)
    if not rank0:
        return 0
    if ui.quiet():
        print("\n".join(map(str, dirs)))
    else:
        print(summary(dirs, f"{recipe.name}: {len(dirs)} job(s) in {ui.duration(time.perf_counter() - start)}"))
    return 0


class EpochLines:
    """Off a terminal, beside the runner's line per epoch: the rate and the ETA of the job, at most
    every ``interval`` seconds (every epoch with -v)."""

    def __init__(self, epochs: int, interval: float = 30.0):
        self.epochs, self.interval = epochs, interval
        self.seconds: list[float] = []
        self.previous, self.last = -1, time.perf_counter()

    def __call__(self, epoch: int, row: dict[str, Any]) -> None:
        if epoch <= self.previous:  # the next job started
            self.seconds = []
        self.previous = epoch
        self.seconds.append(row.get("seconds", 0.0))
        done = epoch + 1
        due = time.perf_counter() - self.last >= self.interval or ui.verbosity() >= ui.VERBOSE
        if done >= self.epochs or not due:
            return
        self.last = time.perf_counter()
        per_epoch = sum(self.seconds) / len(self.seconds)
        ui.say(f"  epoch {done}/{self.epochs}: {row.get('samples_per_s', 0):.0f} samples/s, {per_epoch:.1f} s/epoch, "
               f"ETA {ui.duration(per_epoch * (self.epochs - done))}")


def summary(run_dirs: Sequence[Path], title: str) -> str:
    """The closing table: test metrics with their CI per run (and pooled over runs), baselines, paths."""
    import numpy as np
    import pyarrow.parquet as pq

    from ..metrics import bootstrap_ci, mean_std

    rows, pooled, ev = [], {"y": [], "p": [], "g": []}, None
    for d in run_dirs:
        metrics = json.loads((Path(d) / "metrics.json").read_text())
        ev = json.loads((Path(d) / "result.json").read_text())["recipe"]["eval"]
        t = pq.read_table(Path(d) / "predictions.parquet", columns=["role", "subject_id", "label", "pred"])
        test = t.filter(np.asarray(t.column("role").to_pylist()) == "test")
        y, p, g = test.column("label").to_numpy(), test.column("pred").to_numpy(), test.column("subject_id").to_pylist()
        pooled["y"].append(y)
        pooled["p"].append(p)
        pooled["g"].extend(g)
        ci = bootstrap_ci(y, p, g, len(metrics["classes"]), n_boot=ev["bootstrap"], ci=ev["ci"])
        rows.append((Path(d).name, {k: (metrics["test"][k], ci[k]) for k in SHOWN}, metrics))
    if not rows:
        return f"{title}: no runs"
    classes = len(rows[0][2]["classes"])
    unit = "subject" if any(s is not None for s in pooled["g"]) else "sample"
    table = [["run", *SHOWN]]
    table += [[name, *(_cell(v, ci) for v, ci in vals.values())] for name, vals, _ in rows]
    if len(rows) > 1:
        ci = bootstrap_ci(np.concatenate(pooled["y"]), np.concatenate(pooled["p"]), pooled["g"], classes,
                          n_boot=ev["bootstrap"], ci=ev["ci"])
        cells = []
        for k in SHOWN:
            mean, std = mean_std([vals[k][0] for _, vals, _ in rows])
            cells.append(f"{100 * mean:.1f} ± {100 * std:.1f} [{100 * ci[k][0]:.1f}, {100 * ci[k][1]:.1f}]")
        table.append([f"all {len(rows)} runs (mean ± std, pooled CI)", *cells])
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = [title, f"test metrics in %, {100 * ev['ci']:g}% CI by {unit} bootstrap ({ev['bootstrap']} resamples):"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    base = rows[0][2].get("baselines", {})
    if base:
        shown = ", ".join(f"{name} {100 * b['balanced_accuracy']:.1f}" for name, b in base.items())
        lines.append(f"baselines (balanced accuracy, from train-class priors): {shown}")
    if len(rows) == 1:
        lines.append(f"run directory: {run_dirs[0]}")
    else:
        lines.append(f"run directories: {Path(run_dirs[0]).parent}/ (one per run above)")
    return "\n".join(lines)


def _cell(value: float, ci: tuple[float, float]) -> str:
    return f"{100 * value:.1f} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def dry_run(recipe, args: argparse.Namespace, device: str) -> int:
    """The resolved recipe as YAML, then the jobs as comments; nothing is trained or written."""
    import tempfile

    from ..runner import plan
    from ..train.recipe import from_dict

    print(f"# ferbench run --dry-run: the resolved recipe {recipe.name!r} (hash {recipe.hash()}), device {device}")
    print(recipe.dump(), end="", flush=True)
    out_dir = Path(recipe.runtime.out_dir).expanduser().resolve()
    with tempfile.TemporaryDirectory(prefix="ferbench-dry-run-") as tmp:
        probe = from_dict(recipe.to_dict())
        probe.runtime.out_dir = tmp  # a materialised protocol's manifest lands here, not in the run folder
        jobs = plan(probe, folds=args.folds, seeds=args.seeds, repeats=args.repeats)
    todo = [j for j in jobs if not (out_dir / j.name / "result.json").is_file()]
    print(f"# {len(jobs)} job(s), {len(todo)} to run, {len(jobs) - len(todo)} finished before; run directories in {out_dir}/")
    for job in jobs:
        state = "to run  " if job in todo else "finished"
        print(f"#   {state} repeat {job.repeat} fold {job.fold} seed {job.seed}  {job.name}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="train and evaluate a recipe (every fold × seed); torchrun for multi-GPU",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", nargs="?", help="recipe YAML file, or a shipped recipe's name (see --list)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="recipe overrides right after the recipe, e.g. train.epochs=3 seeds=[0,1]")
    add_selection(p)
    p.add_argument("--dry-run", action="store_true", help="print the resolved recipe and the jobs it would run, then stop")
    p.add_argument("--list", action="store_true", help="list the shipped recipes and stop")
    p.set_defaults(func=run)
