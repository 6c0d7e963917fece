"""Run one (recipe, repeat, fold, seed) job into a run directory, and plan the jobs of a recipe.

A job is identified by content: the recipe hash, the protocol manifest's content hash, the dataset
fingerprints, the code version, and (repeat, fold, seed). Its run directory
``<out_dir>/<model>-r<repeat>-f<fold>-s<seed>-<key>/`` appears atomically (written under a temporary
name, then renamed) and holds:

* ``recipe.yaml``: the fully resolved recipe;
* ``predictions.parquet``: sample_id, dataset, subject_id, role (val/test), repeat, fold, seed, label,
  pred, probs (class names in the schema metadata ``ferbench_classes``);
* ``metrics.json``: test and val metrics, the majority and class-prior baselines, the selection rule
  (with ``phases`` for a recipe with ``hard_samples``: its epoch then counts within the last phase);
* ``curves.csv``: one row per epoch; ``confusion.png``: the test confusion matrix;
* ``result.json``: the one record ``ferbench leaderboard`` ingests (with provenance and environment);
* ``model.pt``: the selected weights (``runtime.keep_weights``).

While a job runs, its checkpoints live in ``<out_dir>/.<run name>.partial/``; a re-run of an
interrupted job resumes from there. A job whose run directory exists is finished and is skipped.
Under torchrun every rank runs the same jobs; rank 0 writes.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import functools
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import __version__
from .errors import FerbenchError
from .fingerprint import hash_obj, source_hash

RESULT = "result.json"
RESULT_SCHEMA = "ferbench-result/1"


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

    @property
    def run_dir(self) -> Path:
        return Path(self.recipe["runtime"]["out_dir"]) / self.name

    def finished(self) -> bool:
        return (self.run_dir / RESULT).is_file()


def code_version(model_name: str) -> str:
    """ferbench version + hash of the training code + the model's own code version."""
    from .models import model_version
    from .train import augment_extra, data, evaluate, hard_samples, loop, losses, losses_metric, optim, sam

    code = source_hash(sys.modules[__name__], data, augment_extra, evaluate, hard_samples, loop, losses, losses_metric,
                       optim, sam)
    return f"{__version__}+{code}.{model_version(model_name)}"


# -- planning -------------------------------------------------------------------------------------------
def resolve_paths(recipe) -> None:
    """Make the recipe's data, manifest and output paths absolute (relative to the working directory)."""
    recipe.data.dirs = [str(Path(d).expanduser().resolve()) for d in recipe.data.dirs]
    if recipe.protocol.manifest:
        recipe.protocol.manifest = str(Path(recipe.protocol.manifest).expanduser().resolve())
    recipe.runtime.out_dir = str(Path(recipe.runtime.out_dir).expanduser().resolve())


def manifest_path(recipe) -> str:
    """The manifest file of a recipe: its ``protocol.manifest``, or the materialised protocol saved
    once under ``<out_dir>/manifests/<content hash>.parquet``."""
    if recipe.protocol.manifest:
        return recipe.protocol.manifest
    from .protocols import materialise

    m = materialise(recipe.protocol.name, recipe.data.dirs, seed=recipe.protocol.seed,
                    allow_leakage=recipe.protocol.allow_leakage, **recipe.protocol.params)
    path = Path(recipe.runtime.out_dir) / "manifests" / f"{m.meta['content_hash']}.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        m.write(path)
    return str(path)


def plan(recipe, *, folds: Sequence[int] | None = None, seeds: Sequence[int] | None = None,
         repeats: Sequence[int] | None = None) -> list[Job]:
    """Every (repeat, fold, seed) job of a recipe; arguments override the recipe's selection."""
    from .protocols import read_manifest

    resolve_paths(recipe)
    path = manifest_path(recipe)
    meta = read_manifest(path).meta
    _check_leakage(recipe, meta)
    chosen_repeats = list(repeats or recipe.repeats or range(meta["n_repeats"]))
    chosen_folds = list(folds or recipe.folds or range(meta["n_folds"]))
    for what, chosen, n in (("repeat", chosen_repeats, meta["n_repeats"]), ("fold", chosen_folds, meta["n_folds"])):
        bad = [v for v in chosen if not 0 <= v < n]
        if bad:
            raise FerbenchError(f"{what}s {bad} do not exist: the protocol has {n}")
    identity = {
        "recipe": recipe.hash(),
        "manifest": meta["content_hash"],
        "datasets": sorted(d["fingerprint"] for d in meta["datasets"]),
        "code": code_version(recipe.model.name),
    }
    slug = recipe.model.name.replace("/", "_")
    jobs = []
    for r in chosen_repeats:
        for f in chosen_folds:
            for s in list(seeds or recipe.seeds):
                key = hash_obj({**identity, "repeat": r, "fold": f, "seed": s})
                jobs.append(Job(recipe.to_dict(), path, r, f, s, key, f"{slug}-r{r}-f{f}-s{s}-{key}"))
    return jobs


def _check_leakage(recipe, meta: dict[str, Any]) -> None:
    verdict = (meta.get("leakage") or {}).get("verdict", "clean")
    if verdict != "clean" and not recipe.protocol.allow_leakage:
        raise FerbenchError(
            f"the manifest's leakage verdict is {verdict!r}; set protocol.allow_leakage=true to run it anyway "
            "(its results are flagged on the leaderboard)"
        )


# -- distributed / device ------------------------------------------------------------------------------
def dist_context(device: str) -> tuple[int, int, str]:
    """(rank, world size, device) under torchrun (initialising the process group), else (0, 1, device)."""
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise FerbenchError("device cuda requested but torch sees no CUDA GPU; use --device cpu")
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick the fastest kernels
    if world == 1:
        return 0, 1, device
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return dist.get_rank(), world, device


# -- running one job -----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=2)
def _store(manifest: str, dirs: tuple[str, ...], spec, cache: str, cache_max_gb: float, workers: int, device: str):
    """The manifest and its (decoded or encoded) sample store, shared by the jobs of one process."""
    from .protocols import read_manifest
    from .train.data import open_store

    m = read_manifest(manifest)
    store = open_store(m, dirs, spec)
    if cache == "memory" or (cache == "auto" and len(store) * spec.decoded_bytes() <= cache_max_gb * 2**30):
        store.decode_all(workers, device if device.startswith("cuda") else "cpu")
    return m, store


def input_spec(recipe, model_cfg: dict[str, Any]):
    from .train.data import InputSpec
    from .train.recipe import in_chans

    inp, c = recipe.input, in_chans(recipe)
    if inp.modality not in model_cfg["modalities"]:
        raise FerbenchError(f"model {recipe.model.name} takes {list(model_cfg['modalities'])}, not {inp.modality}")
    mean, std = tuple(inp.mean or model_cfg["mean"]), tuple(inp.std or model_cfg["std"])
    if len(mean) != c or len(std) != c:
        raise FerbenchError(f"input.mean/std need {c} values for {inp.modality} with {c} channels")
    return InputSpec(inp.modality, inp.size or model_cfg["input_size"][-1], c, mean, std, inp.depth_norm, inp.depth_scale_mm)


def run_job(job: Job, *, device: str | None = None, callbacks: Sequence = (), progress: bool | None = None) -> Path:
    """Train and evaluate one job; returns its run directory (existing ones are returned untouched)."""
    import torch

    from .models import adapt_cfg, create_model, model_cfg
    from .train import hard_samples, loop
    from .train.data import SAMPLERS, Loader, build_augment, fold_stats, split_indices
    from .train.evaluate import predict
    from .train.losses import LOSSES
    from .train.recipe import component, from_dict, in_chans

    if job.finished():
        return job.run_dir
    t_start = time.perf_counter()
    recipe = from_dict(job.recipe)
    rank, world, device = dist_context(device or recipe.runtime.device)
    workers = recipe.runtime.workers if recipe.runtime.workers is not None else min(8, os.cpu_count() or 1)
    progress = recipe.runtime.progress if progress is None else progress
    if recipe.train.batch_size % world:
        raise FerbenchError(f"train.batch_size={recipe.train.batch_size} is not divisible by the world size {world}")

    mcfg = recipe.model
    spec = input_spec(recipe, adapt_cfg(model_cfg(mcfg.name), in_chans(recipe)))
    manifest, store = _store(job.manifest, tuple(recipe.data.dirs), spec, recipe.data.cache,
                             recipe.data.cache_max_gb, workers, device)
    meta = manifest.meta
    classes = meta["classes"]
    n_classes = len(classes)
    torch.manual_seed(job.seed)
    model = create_model(mcfg.name, n_classes, spec.channels, mcfg.pretrained, mcfg.checkpoint, **mcfg.kwargs).to(device)

    idx = split_indices(manifest, store, job.repeat, job.fold)
    if recipe.input.normalize == "train":
        mean, std = fold_stats(store, idx["train"])
        spec = dataclasses.replace(spec, mean=mean, std=std)
    stream_workers = 0 if store.cached else workers
    sampler_name, sampler_params = component(recipe.sampler)
    per_rank = recipe.train.batch_size // world
    eval_batch = (recipe.eval.batch_size or 2 * recipe.train.batch_size) // world or 1

    def make_loader(indices: np.ndarray, train: bool) -> Loader:
        if not train:
            return Loader(store, indices, eval_batch, train=False, rank=rank, world=world, device=device, workers=stream_workers)
        return Loader(store, indices, per_rank, train=True, sampler=SAMPLERS[sampler_name](store.labels[indices], **sampler_params),
                      seed=job.seed, rank=rank, world=world, device=device, workers=stream_workers)

    loaders = {role: make_loader(i, False) for role, i in idx.items() if role != "train"}
    val_loader = loaders.get("val")
    counts = np.bincount(store.labels[idx["train"]], minlength=n_classes)
    loss_name, loss_params = component(recipe.loss)
    loss_fn = LOSSES[loss_name](n_classes, counts.tolist(), **loss_params)
    out = Path(recipe.runtime.out_dir)
    work = out / f".{job.name}.partial"
    ckpt = work / "ckpt"
    fit = loop.fit(model, make_loader(idx["train"], True), val_loader, spec, recipe, loss_fn, build_augment(recipe.augment),
                   ckpt, seed=job.seed, n_classes=n_classes, callbacks=callbacks, progress=progress)
    if recipe.hard_samples is not None:
        fit, ckpt = hard_samples.second_phase(model, fit, ckpt, make_loader, idx["train"], val_loader, spec, recipe, loss_fn,
                                              work, seed=job.seed, n_classes=n_classes, rank=rank, callbacks=callbacks,
                                              progress=progress)

    use_best = loop.load_selected(model, ckpt, recipe, val_loader is not None)
    selection = {
        "rule": "best" if use_best else "last",
        "reason": None if use_best or recipe.train.select == "last" else "no val role in this fold",
        "monitor": recipe.train.monitor if use_best else None,
        "epoch": fit.best_epoch if use_best else (fit.phases[-1]["epochs_ran"] if fit.phases else len(fit.curves)) - 1,
        "value": fit.best_value if use_best else None,
        "epochs_ran": len(fit.curves),
        "stopped_early": fit.stopped_early,
        "resumed_from_epoch": fit.resumed_from,
        "phases": fit.phases or None,
    }
    logits = {r: predict(model, loaders[r], spec, precision=recipe.train.precision,
                         channels_last=recipe.train.channels_last) for r in ("val", "test") if r in loaders}
    if rank == 0:
        env = environment(device, recipe.train.precision, world, time.perf_counter() - t_start, fit.samples_per_s)
        _write_run(job, recipe, meta, store, spec, idx, logits, counts, fit, selection, env, model)
        shutil.rmtree(work, ignore_errors=True)
    if world > 1:
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


# -- outputs -------------------------------------------------------------------------------------------
def environment(device: str, precision: str, world: int, wall_s: float, samples_per_s: float) -> dict[str, Any]:
    """Where and how a run ran: git state, package versions, hardware, precision, world size, speed."""
    import torch

    sha, dirty = _git_state()
    cuda = device.startswith("cuda")
    return {
        "git_sha": sha,
        "git_dirty": dirty,
        "packages": _packages(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device.split(":")[0],
        "device_name": torch.cuda.get_device_name(device) if cuda else _cpu_name(),
        "driver": _nvidia_driver() if cuda else "none (cpu)",
        "cuda": torch.version.cuda if cuda else "none (cpu)",
        "precision": precision,
        "world_size": world,
        "wall_s": round(wall_s, 3),
        "train_samples_per_s": round(samples_per_s, 2),
        "host_cpus": os.cpu_count(),
    }


def _git_state() -> tuple[str | None, bool | None]:
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return sha, bool(status.strip())


def _packages() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in ("ferbench", "torch", "torchvision", "timm", "numpy", "pyarrow", "pillow", "duckdb"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _nvidia_driver() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        return out.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def _write_run(job: Job, recipe, meta, store, spec, idx, logits, train_counts, fit, selection, env, model) -> None:
    """Write every output into a temporary sibling, then rename it to the run directory."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    from .train import metrics
    from .train.evaluate import predictions_table

    classes = meta["classes"]
    tables = [predictions_table(store, idx[r], logits[r], role=r, repeat=job.repeat, fold=job.fold, seed=job.seed,
                                classes=classes) for r in logits]
    preds = pa.concat_tables(tables)
    per_role = {r: metrics.evaluate(t.column("label").to_numpy(), t.column("pred").to_numpy(), classes)
                for r, t in zip(logits, tables)}
    test_truth = store.labels[idx["test"]]
    scores = {
        "classes": classes,
        "test": per_role["test"],
        "val": per_role.get("val"),
        "baselines": metrics.baselines(train_counts, test_truth, classes),
        "selection": selection,
        "n": {r: int(len(i)) for r, i in idx.items()},
        "train_class_counts": [int(c) for c in train_counts],
    }
    sources = {d["name"]: d for d in store.sources}
    record = {
        "schema": RESULT_SCHEMA,
        "run_id": job.key,
        "run_name": job.name,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "recipe": {"name": recipe.name, "hash": recipe.hash(), "model": recipe.model.name,
                   "modality": recipe.input.modality, "input_size": spec.size, "channels": spec.channels,
                   "pretrained": bool(recipe.model.pretrained or recipe.model.checkpoint),
                   "epochs": recipe.train.epochs, "batch_size": recipe.train.batch_size,
                   "input_norm": {"from": recipe.input.normalize, "mean": list(spec.mean), "std": list(spec.std)},
                   "eval": {"bootstrap": recipe.eval.bootstrap, "ci": recipe.eval.ci},
                   "reported": dataclasses.asdict(recipe.reported) if recipe.reported else None},
        "protocol": {"name": meta["protocol"], "version": meta.get("version"), "manifest_hash": meta["content_hash"],
                     "seed": meta.get("seed"), "params": meta.get("params"), "n_folds": meta["n_folds"],
                     "n_repeats": meta["n_repeats"], "classes": classes, "leakage": meta.get("leakage")},
        "repeat": job.repeat, "fold": job.fold, "seed": job.seed,
        "datasets": [{**sources[d["name"]], "fingerprint": d["fingerprint"]} for d in meta["datasets"]],
        "code_version": code_version(recipe.model.name),
        "metrics": scores,
        "environment": env,
        "predictions": "predictions.parquet",
    }
    out = job.run_dir.parent
    tmp = out / f".{job.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        (tmp / "recipe.yaml").write_text(recipe.dump())
        pq.write_table(preds, tmp / "predictions.parquet", compression="zstd")
        (tmp / "metrics.json").write_text(json.dumps(scores, indent=2) + "\n")
        _write_curves(fit.curves, tmp / "curves.csv")
        title = f"{recipe.model.name} · {meta['protocol']} r{job.repeat} f{job.fold} s{job.seed} (test)"
        (tmp / "confusion.png").write_bytes(metrics.confusion_png(np.array(scores["test"]["confusion"]), classes, title))
        if recipe.runtime.keep_weights:
            torch.save(model.state_dict(), tmp / "model.pt")
        (tmp / RESULT).write_text(json.dumps(record, indent=2, default=str) + "\n")
        os.replace(tmp, job.run_dir)
    except OSError:
        if not job.finished():  # a concurrent run of the same job that lands first is fine
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_curves(rows: list[dict[str, Any]], path: Path) -> None:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, keys)
        writer.writeheader()
        writer.writerows(rows)
