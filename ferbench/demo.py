"""``ferbench demo``: the whole job on data ferbench makes itself, offline, in minutes on a laptop CPU.

No licensed data is needed, yet every stage runs the code a licensed copy goes through:

1. **world** — ``ferbench.synth.layouts`` writes a synthetic world (``--subjects`` people per
   dataset, ``--seed``) in the published raw layouts of the three RGB-D sets of the Global merge:
   CalD3r/MenD3s (RGB + 16-bit depth pairs), BU-3DFE (VRML meshes, textures, ``.bnd`` landmarks)
   and Bosphorus (``.bnt`` range grids, ``.lm2``/``.lm3``). Each tree is marked synthetic.
2. **convert** — the real converters (``ferbench.build.convert``) turn each tree into canonical
   Parquet; BU-3DFE meshes and Bosphorus range grids are rendered to depth by the converters'
   camera, set to the world's framing (``world.FOV_MM`` across the image).
3. **merge** — ``ferbench.merges`` builds the Global RGB-D set (7 classes, depth harmonised).
4. **split** — the ``global`` protocol (subject-grouped stratified 5-fold) is materialised and
   verified for leakage; the demo trains on fold 0 and tests on its held-out *subjects*.
5. **train** — every recipe in ``recipes/demo/`` (an RGB CNN and an RGB-D two-stream fusion
   network with a transformer encoder) runs through ``ferbench.runner`` with one seed.
6. **leaderboard** — the runs are ingested into a demo-local DuckDB and ranked on fold 0 (the fold
   both models ran: ``--folds 0``), with subject-bootstrap CIs, paired tests against the best model
   and the baselines (majority class, class prior) and the synthetic flag, and written as HTML.

World choices: images are rendered at 64 px (``--quick``: 32 px, 3 subjects per dataset, 1 epoch:
the test suite's size). CalD3r/MenD3s expressions are drawn at all four intensity levels (the
layout's default keeps the two weakest, its spontaneous look), BU-3DFE at levels 3 and 4 without
the ``RAW`` files converters ignore, Bosphorus with its single-AU and occlusion scans (the Global
merge labels six AU scans by the AU rule). Each dataset gets its own people (world seed
``3 × seed + k`` for the k-th dataset), as the real sets share nobody: otherwise one synthetic
face could sit in train under one dataset's subject id and in test under another's.
``world.json`` maps every raw sample to its world person. Everything is written under ``--out``
(default ``./ferbench-demo``), which must be empty or hold an earlier demo (``--overwrite``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO

from .errors import FerbenchError
from .recipes import root as recipes_root

RECIPES = recipes_root() / "demo"
#: An empty file marking a directory as a demo's output (only such a directory is ever cleared).
MARKER = ".ferbench-demo"
SUBJECTS, QUICK_SUBJECTS = 20, 3
SIZE, QUICK_SIZE = 64, 32
QUICK_EPOCHS = 1
PROTOCOL = "global"
#: Writer options per dataset besides subjects, seed and size (see the module docstring).
WORLD: dict[str, dict[str, Any]] = {
    "bu3dfe": {"levels": (3, 4), "raw_files": False},
    "caldr_menders": {"levels": (1, 2, 3, 4)},
    "bosphorus": {"extras": True},
}
STAGES = ("world", "convert", "merge", "split", "train", "leaderboard")


@dataclass(frozen=True)
class DemoOptions:
    out: Path = Path("ferbench-demo")
    subjects: int | None = None  # per dataset; None = SUBJECTS (QUICK_SUBJECTS with quick)
    seed: int = 0  # world and protocol seed
    epochs: int | None = None  # None = each recipe's own (QUICK_EPOCHS with quick)
    quick: bool = False
    overwrite: bool = False

    @property
    def n_subjects(self) -> int:
        return self.subjects or (QUICK_SUBJECTS if self.quick else SUBJECTS)

    @property
    def size(self) -> int:
        return QUICK_SIZE if self.quick else SIZE

    @property
    def n_epochs(self) -> int | None:
        return self.epochs or (QUICK_EPOCHS if self.quick else None)


class Progress:
    """Numbered stages with their elapsed seconds, and indented detail lines."""

    def __init__(self, stream: TextIO = sys.stdout):
        self.stream, self.t0, self.seconds = stream, time.perf_counter(), {}
        self.tty = stream.isatty()

    def say(self, text: str = "", end: str = "\n") -> None:
        print(text, end=end, file=self.stream, flush=True)

    def detail(self, text: str) -> None:
        self.say(f"      {text}")

    def inline(self, text: str) -> None:
        """A line rewritten in place on a terminal (skipped elsewhere); ``clear`` removes it."""
        if self.tty:
            self.say(f"\r      {text}\033[K", end="")

    def clear(self) -> None:
        if self.tty:
            self.say("\r\033[K", end="")

    @contextmanager
    def stage(self, name: str, what: str) -> Iterator[None]:
        self.say(f"[{STAGES.index(name) + 1}/{len(STAGES)}] {name:<11} {what}")
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 1)
        self.say(f"      done in {self.seconds[name]:.1f} s (total {self.elapsed():.1f} s)")

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0


# -- output directory ---------------------------------------------------------------------------------
def prepare_out(out: Path, overwrite: bool) -> Path:
    """The output directory: created if missing; a non-empty one is refused unless it holds an
    earlier demo and ``overwrite`` is set (then it is cleared)."""
    out = out.expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not (out / MARKER).is_file():
            raise FerbenchError(f"{out} is not empty and holds no ferbench demo; choose another --out")
        if not overwrite:
            raise FerbenchError(f"{out} holds an earlier demo; pass --overwrite to replace it, or choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).touch()
    return out


# -- stages ---------------------------------------------------------------------------------------------
def world_seeds(seed: int) -> dict[str, int]:
    """The world seed of each dataset: distinct people per dataset (see the module docstring)."""
    return {name: len(WORLD) * seed + k for k, name in enumerate(WORLD)}


def _write_layout(name: str, root: Path, subjects: int, seed: int, size: int) -> tuple[str, dict[str, str], float]:
    """Write one dataset's raw tree (runs in a worker process); returns sample_id → world person."""
    from .synth.layouts import SYNTH_LAYOUTS as LAYOUTS

    start = time.perf_counter()
    summary = LAYOUTS[name](root, subjects=subjects, seed=seed, size=size, **WORLD[name])
    people = {sid: f"{seed}:{t['world_subject']}" for sid, t in summary["samples"].items()}
    return name, people, time.perf_counter() - start


def write_world(raw: Path, opts: DemoOptions, progress: Progress) -> tuple[dict[str, Path], dict[str, str]]:
    """The raw tree of every Global source, written in parallel processes (the slowest first), and
    the world person ("<world seed>:<id>") behind every raw sample."""
    roots, seeds = {name: raw / name for name in WORLD}, world_seeds(opts.seed)
    people: dict[str, str] = {}
    workers = max(1, min(len(WORLD), os.cpu_count() or 1))
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_write_layout, n, r, opts.n_subjects, seeds[n], opts.size) for n, r in roots.items()]
        for fut in as_completed(futures):
            name, mine, seconds = fut.result()
            people.update(mine)
            progress.detail(f"{name:<14} {len(mine):>5} raw samples → {roots[name]} ({seconds:.1f} s)")
    return roots, dict(sorted(people.items()))


def convert_all(roots: dict[str, Path], data: Path, size: int, progress: Progress) -> dict[str, Path]:
    """Each raw tree through its real converter; mesh and range-grid depth framed as the world renders."""
    from .build import convert
    from .synth.world import FOV_MM

    camera = {"size": size, "mm_per_px": FOV_MM / size}
    options = {"bu3dfe": camera, "bosphorus": camera, "caldr_menders": {}}
    out = {}
    for name, root in roots.items():
        result = convert(name, root, data / name, progress=False, **options[name])
        faults = result.report["faults_total"]
        progress.detail(f"{name:<14} {result.num_rows:>5} rows → {result.out_dir} ({faults} faults)")
        out[name] = Path(result.out_dir)
    return out


def merge_global(sources: dict[str, Path], data: Path, progress: Progress) -> Path:
    from .merges import merge

    result = merge("global", list(sources.values()), data / "global")
    per_class = result.report["per_class"]
    progress.detail(f"global {result.num_rows} rows → {result.out_dir}")
    progress.detail("per class: " + ", ".join(f"{k} {v}" for k, v in per_class.items()))
    return Path(result.out_dir)


def split(merged: Path, path: Path, seed: int, progress: Progress) -> tuple[dict[str, Any], dict[str, dict[str, int]]]:
    """Materialise and verify the protocol; returns its metadata and fold 0's samples and subjects per role."""
    from .protocols import materialise

    manifest = materialise(PROTOCOL, [merged], seed=seed)
    manifest.write(path)
    meta, leak = manifest.meta, manifest.meta["leakage"]
    progress.detail(f"{PROTOCOL}: {meta['counts']['samples']} samples, {meta['counts']['subjects']} subjects, "
                    f"{meta['n_folds']} subject-grouped folds → {path}")
    fold0 = {role: {"samples": t.num_rows, "subjects": len(set(t.column("subject_id").to_pylist()))}
             for role, t in sorted(manifest.select(0, 0).items())}
    for role, n in fold0.items():
        progress.detail(f"fold 0 {role:<5} {n['samples']:>5} samples of {n['subjects']:>3} subjects")
    progress.detail(f"leakage: {leak['verdict']} (subjects shared between train/val and test: {leak['subject_overlap']}, "
                    f"duplicate images: {leak['exact_duplicates']})")
    return meta, fold0


def demo_recipes() -> list[Path]:
    recipes = sorted(RECIPES.glob("*.yaml"))
    if not recipes:
        raise FerbenchError(f"no demo recipes in {RECIPES}: reinstall ferbench (they ship inside the package)")
    return recipes


def _recipe(path: Path, merged: Path, manifest: Path, runs: Path, epochs: int | None):
    """A demo recipe pointed at the demo's data, manifest and run folder (validated again)."""
    from .train.recipe import from_dict, load_recipe

    raw = load_recipe(path).to_dict()
    raw["data"]["dirs"] = [str(merged)]
    raw["protocol"].update(name=None, manifest=str(manifest))
    raw["runtime"].update(out_dir=str(runs), progress=False)
    if epochs:
        raw["train"]["epochs"] = epochs
    return from_dict(raw)


def _epoch_reporter(progress: Progress, label: str, epochs: int, start: float) -> Callable[[int, dict], None]:
    """Training progress: rewritten in place on a terminal, every fifth of the epochs elsewhere."""
    every = max(1, math.ceil(epochs / 5))

    def report(epoch: int, row: dict[str, Any]) -> None:
        val = row.get("val_balanced_accuracy")
        text = (f"{label}: epoch {epoch + 1}/{epochs}  train loss {row['train_loss']:.3f}"
                + (f"  val balanced acc {100 * val:.1f}%" if val is not None else "")
                + f"  ({time.perf_counter() - start:.0f} s)")
        if progress.tty:
            progress.inline(text)
        elif (epoch + 1) % every == 0 or epoch + 1 == epochs:
            progress.detail(text)

    return report


def train(recipes: list[Path], merged: Path, manifest: Path, runs: Path, epochs: int | None, progress: Progress) -> list[Path]:
    """Run fold 0 of every demo recipe (one seed each); returns the run directories."""
    from .runner import run_recipe

    run_dirs = []
    for path in recipes:
        recipe = _recipe(path, merged, manifest, runs, epochs)
        label = f"{recipe.name} ({recipe.model.name}, {recipe.input.modality})"
        start = time.perf_counter()
        (run_dir,) = run_recipe(recipe, folds=[0], seeds=recipe.seeds[:1],
                                callbacks=[_epoch_reporter(progress, label, recipe.train.epochs, start)])
        progress.clear()
        scores = json.loads((run_dir / "metrics.json").read_text())
        sel = scores["selection"]
        progress.detail(f"{label}: test balanced accuracy {100 * scores['test']['balanced_accuracy']:.1f}% "
                        f"(weights of epoch {sel['epoch'] + 1}/{sel['epochs_ran']}, best on val; "
                        f"{time.perf_counter() - start:.0f} s) → {run_dir}")
        run_dirs.append(run_dir)
    return run_dirs


def rank(runs: Path, board_dir: Path, progress: Progress) -> tuple[list, str]:
    """Ingest the runs into a demo-local database, rank them, write the HTML and Markdown pages."""
    from . import leaderboard

    db = board_dir / "ferbench.duckdb"
    n = leaderboard.ingest([runs], db, folds=[0])  # the demo trains fold 0: ranked on exactly that fold
    boards = leaderboard.rank(db)
    (board_dir / "index.html").write_text(leaderboard.render_html(boards, db=db))
    (board_dir / "leaderboard.md").write_text(leaderboard.render_text(boards, markdown=True))
    progress.detail(f"{n} runs → {db}")
    return boards, leaderboard.render_text(boards)


# -- summary --------------------------------------------------------------------------------------------
def _results(boards: list) -> dict[str, Any]:
    (board,) = boards
    return {
        "protocol": board.protocol,
        "manifest_hash": board.manifest_hash,
        "metric": board.metric,
        "synthetic": board.synthetic,
        "models": [{"model": e["model"], "recipe": e["recipe_name"], "mean": e["mean"], "ci": [e["ci_lo"], e["ci_hi"]],
                    "ci_unit": e["ci_unit"], "synthetic": e["synthetic"]} for e in board.entries],
        "baselines": {b["system"]: b["mean"] for b in board.baselines},
    }


def verdict(summary: dict[str, Any]) -> str:
    """One line: the best model against chance and the baselines, on subjects never trained on."""
    board, test = summary["leaderboard"], summary["manifest"]["fold0"]["test"]
    best = max(board["models"], key=lambda m: m["mean"])
    chance = 100 / len(summary["manifest"]["counts"]["fold0"]["test"])
    baselines = ", ".join(f"{name} {100 * v:.1f}%" for name, v in board["baselines"].items())
    line = (f"Best: {best['model']} at {100 * best['mean']:.1f}% balanced accuracy on {test['samples']} test samples of "
            f"{test['subjects']} held-out subjects it never saw (chance {chance:.1f}%; baselines: {baselines}).")
    if summary["options"]["quick"]:
        line += "\n--quick only checks the pipeline: run without it to see the models learn."
    return line


def next_steps(out: Path) -> str:
    """Where everything is, and how to point ferbench at a licensed dataset."""
    recipe = demo_recipes()[0]
    try:
        recipe = recipe.relative_to(Path.cwd())
    except ValueError:
        pass
    return f"""Where everything is ({out}):
  raw/<dataset>/             synthetic raw trees in each dataset's published layout (marked synthetic)
  data/<dataset>/            converted datasets: data/part-*.parquet, README.md (dataset card), ferbench.json, build_report.json
  data/global/               the merged Global RGB-D set
  manifests/{PROTOCOL}.parquet   the verified, subject-grouped protocol manifest
  runs/<run>/                per model: predictions.parquet, metrics.json, curves.csv/png, confusion.png, model.safetensors
  leaderboard/index.html     the ranked table with each model's confusion matrix
  leaderboard/ferbench.duckdb, leaderboard/leaderboard.md, demo.json (this run's summary)
Open {out / "leaderboard" / "index.html"} in a browser.

Next, with a licensed dataset (the same commands the demo ran, on your copy):
  ferbench datasets                                     # converters, accepted layouts, where to request the data
  ferbench convert bu3dfe /path/to/BU_3DFE --out data/bu3dfe     # likewise caldr_menders, bosphorus, ...
  ferbench merge global --data data/caldr_menders --data data/bu3dfe --data data/bosphorus --out data/global
  ferbench split {PROTOCOL} --data data/global --out manifests/{PROTOCOL}.parquet
  ferbench run {recipe} protocol.name=null protocol.manifest=manifests/{PROTOCOL}.parquet \\
      data.dirs=[data/global] runtime.out_dir=runs --folds 0-4
  ferbench leaderboard --runs runs --format html
"""


def run_demo(opts: DemoOptions, stream: TextIO = sys.stdout) -> dict[str, Any]:
    """Run every stage into ``opts.out``; returns (and writes to ``demo.json``) the summary."""
    if opts.n_subjects < 2:
        raise FerbenchError("the demo needs at least 2 subjects per dataset (the protocol splits by subject)")
    out = prepare_out(Path(opts.out), opts.overwrite)
    recipes = demo_recipes()
    progress = Progress(stream)
    progress.say(f"ferbench demo → {out}: synthetic data, {opts.n_subjects} people per dataset, "
                 f"{len(recipes)} models, {os.cpu_count()} CPU cores")
    data, manifest = out / "data", out / "manifests" / f"{PROTOCOL}.parquet"
    with progress.stage("world", f"rendering the raw layouts of {', '.join(WORLD)} ({opts.size} px)"):
        roots, people = write_world(out / "raw", opts, progress)
        (out / "world.json").write_text(json.dumps({"seeds": world_seeds(opts.seed), "people": people}, indent=1) + "\n")
    with progress.stage("convert", "the real converters → canonical Parquet"):
        converted = convert_all(roots, data, opts.size, progress)
    with progress.stage("merge", "the Global RGB-D set (7 classes)"):
        merged = merge_global(converted, data, progress)
    with progress.stage("split", f"protocol {PROTOCOL}, verified subject-independent"):
        meta, fold0 = split(merged, manifest, opts.seed, progress)
    with progress.stage("train", f"{len(recipes)} recipes from {RECIPES}, fold 0, one seed each"):
        run_dirs = train(recipes, merged, manifest, out / "runs", opts.n_epochs, progress)
    with progress.stage("leaderboard", "ingest, rank with CIs and baselines, write HTML"):
        boards, table = rank(out / "runs", out / "leaderboard", progress)
    summary = {
        "out": str(out),
        "options": {"subjects": opts.n_subjects, "seed": opts.seed, "size": opts.size, "epochs": opts.n_epochs,
                    "quick": opts.quick},
        "seconds": {**progress.seconds, "total": round(progress.elapsed(), 1)},
        "datasets": {name: str(p) for name, p in {**converted, "global": merged}.items()},
        "manifest": {"path": str(manifest), "content_hash": meta["content_hash"], "leakage": meta["leakage"]["verdict"],
                     "counts": meta["counts"], "fold0": fold0},
        "runs": [str(d) for d in run_dirs],
        "confusion_matrices": [str(d / "confusion.png") for d in run_dirs],
        "leaderboard": {"db": str(out / "leaderboard" / "ferbench.duckdb"), "html": str(out / "leaderboard" / "index.html"),
                        **_results(boards)},
    }
    (out / "demo.json").write_text(json.dumps(summary, indent=2) + "\n")
    progress.say()
    progress.say(table)
    progress.say(verdict(summary))
    progress.say(f"Finished in {summary['seconds']['total']:.0f} s.")
    progress.say()
    progress.say(next_steps(out))
    return summary
