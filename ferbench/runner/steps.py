"""The steps of one job: ``prepare`` (device, data, model, loss), ``fit`` (training and model
selection), ``evaluate`` (predictions and metrics); ``write.write_run`` writes them.

Under torchrun every rank runs every step (``fit`` and ``evaluate`` are collective); only rank 0
writes. The store of decoded samples is shared by the jobs of one process (``_store``).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..errors import FerbenchError
from .jobs import Job

if TYPE_CHECKING:
    import pyarrow as pa
    from torch import nn

    from ..protocols import Manifest
    from ..train.inputs import InputSpec
    from ..train.loader import Loader
    from ..train.loop import FitResult
    from ..train.recipe import Recipe
    from ..train.store import Store
    from ..train.throughput import DecodeChoice


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


# -- prepare -------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=2)
def _store(manifest: str, manifest_hash: str, dirs: tuple[str, ...], spec, cache: str, cache_max_gb: float, workers: int,
           device: str):
    """The manifest and its (decoded or encoded) sample store, shared by the jobs of one process. The
    file's rows must still hash to ``manifest_hash``, the content hash ``plan`` checked (cached by it,
    so a manifest replaced in between is never served from the cache)."""
    from ..protocols import read_manifest
    from ..train.store import open_store

    m = read_manifest(manifest)
    if manifest_hash and m.meta["content_hash"] != manifest_hash:
        raise FerbenchError(
            f"manifest {manifest} changed since the job was planned: its rows hash to {m.meta['content_hash']}, "
            f"the job was planned on {manifest_hash}; plan again"
        )
    store = open_store(m, dirs, spec)
    if cache == "memory" or (cache == "auto" and len(store) * spec.decoded_bytes() <= cache_max_gb * 2**30):
        store.decode_all(workers, device if device.startswith("cuda") else "cpu")
    return m, store


def input_spec(recipe, model_cfg: dict[str, Any]):
    """The ``InputSpec`` of a recipe for a model (its config as ``models.adapt_cfg`` gives it)."""
    from ..train.inputs import InputSpec
    from ..train.recipe import in_chans

    inp, c = recipe.input, in_chans(recipe)
    if inp.modality not in model_cfg["modalities"]:
        raise FerbenchError(f"model {recipe.model.name} takes {list(model_cfg['modalities'])}, not {inp.modality}")
    mean, std = tuple(inp.mean or model_cfg["mean"]), tuple(inp.std or model_cfg["std"])
    if len(mean) != c or len(std) != c:
        raise FerbenchError(f"input.mean/std need {c} values for {inp.modality} with {c} channels")
    return InputSpec(inp.modality, inp.size or model_cfg["input_size"][-1], c, mean, std, inp.depth_norm, inp.depth_scale_mm)


@dataclass
class Prepared:
    """Everything a job trains and evaluates with, once the data are loaded and the model built."""

    job: Job
    recipe: "Recipe"
    rank: int
    world: int
    device: str
    progress: bool
    t_start: float  # perf_counter at the start of the job
    spec: "InputSpec"  # with the fold's train mean/std under ``input.normalize: train``
    manifest: "Manifest"
    store: "Store"
    idx: dict[str, np.ndarray]  # store indices per role of this (repeat, fold)
    model: "nn.Module"
    loss_fn: "nn.Module"
    train_counts: np.ndarray  # training samples per class
    stream_workers: int = 0  # DataLoader workers (0 when the store is decoded in memory)
    eval_loaders: dict[str, "Loader"] = field(default_factory=dict)  # val (when the fold has one) and test
    precision: str = "fp32"  # train.precision as resolved for this device (``loop.resolve_train``; auto → bf16/fp32)
    channels_last: bool = False  # likewise resolved
    decode: "DecodeChoice | None" = None  # data.decode as resolved (``throughput.choose_decode``); None = cpu

    @property
    def run_recipe(self) -> "Recipe":
        """The recipe with ``train.precision`` / ``channels_last`` as resolved (``recipe`` keeps what was asked)."""
        t = self.recipe.train
        if (t.precision, t.channels_last) == (self.precision, self.channels_last):
            return self.recipe
        return dataclasses.replace(self.recipe, train=dataclasses.replace(t, precision=self.precision,
                                                                           channels_last=self.channels_last))

    @property
    def classes(self) -> list[str]:
        return self.manifest.meta["classes"]

    @property
    def work(self) -> Path:
        """The job's partial folder (checkpoints), removed once the run directory is written."""
        return Path(self.recipe.runtime.out_dir) / f".{self.job.name}.partial"

    def loader(self, indices: np.ndarray, train: bool) -> "Loader":
        """A loader over store ``indices``: the recipe's sampler and batch size per rank (train), or
        contiguous evaluation shards."""
        from ..train.loader import Loader
        from ..params import component
        from ..train.samplers import SAMPLERS

        r = self.recipe
        common = dict(rank=self.rank, world=self.world, device=self.device, workers=self.stream_workers,
                      decode=self.decode.used if self.decode else "cpu")
        if not train:
            eval_batch = (r.eval.batch_size or 2 * r.train.batch_size) // self.world or 1
            return Loader(self.store, indices, eval_batch, train=False, **common)
        name, params = component(r.sampler)
        return Loader(self.store, indices, r.train.batch_size // self.world, train=True,
                      sampler=SAMPLERS[name](self.store.labels[indices], **params), seed=self.job.seed, **common)


def prepare(job: Job, *, device: str | None = None, progress: bool | None = None) -> Prepared:
    """Set up the device (and process group), the sample store, the fold's indices, the model
    (seeded with the job's seed), the evaluation loaders and the loss."""
    import torch

    from ..devices import resolve_device
    from ..models import adapt_cfg, create_model, model_cfg
    from ..train.losses import LOSSES
    from ..params import component
    from ..train.recipe import from_dict, in_chans
    from ..train.store import fold_stats, split_indices

    t_start = time.perf_counter()
    recipe = from_dict(job.recipe)
    rank, world, device = dist_context(resolve_device(device or recipe.runtime.device))
    workers = recipe.runtime.workers if recipe.runtime.workers is not None else min(8, os.cpu_count() or 1)
    progress = recipe.runtime.progress if progress is None else progress
    if recipe.train.batch_size % world:
        raise FerbenchError(f"train.batch_size={recipe.train.batch_size} is not divisible by the world size {world}")

    mcfg = recipe.model
    spec = input_spec(recipe, adapt_cfg(model_cfg(mcfg.name), in_chans(recipe)))
    manifest, store = _store(job.manifest, job.manifest_hash, tuple(recipe.data.dirs), spec, recipe.data.cache,
                             recipe.data.cache_max_gb, workers, device)
    if job.leakage is not None:  # the verdict plan trusted (sealed, or verified again) is what the run records
        manifest = dataclasses.replace(manifest, meta={**manifest.meta, "leakage": job.leakage})
    n_classes = len(manifest.meta["classes"])
    torch.manual_seed(job.seed)
    model = create_model(mcfg.name, n_classes, spec.channels, mcfg.pretrained, mcfg.checkpoint, **mcfg.kwargs).to(device)

    idx = split_indices(manifest, store, job.repeat, job.fold)
    if recipe.input.normalize == "train":
        mean, std = fold_stats(store, idx["train"])
        spec = dataclasses.replace(spec, mean=mean, std=std)
    counts = np.bincount(store.labels[idx["train"]], minlength=n_classes)
    loss_name, loss_params = component(recipe.loss)
    loss_fn = LOSSES[loss_name](n_classes, counts.tolist(), **loss_params)
    from ..train.loop import resolve_train

    run_train = resolve_train(recipe.train, torch.device(device))
    stream_workers = 0 if store.cached else workers
    decode = _decode_choice(recipe, store, spec, model, device, world, stream_workers, run_train)
    p = Prepared(job, recipe, rank, world, device, progress, t_start, spec, manifest, store, idx, model, loss_fn, counts,
                 stream_workers=stream_workers, precision=run_train.precision, channels_last=run_train.channels_last,
                 decode=decode)
    p.eval_loaders = {role: p.loader(i, False) for role, i in idx.items() if role != "train"}
    return p


def _decode_choice(recipe: "Recipe", store: "Store", spec: "InputSpec", model: "nn.Module", device: str, world: int,
                   workers: int, run_train: Any) -> "DecodeChoice":
    """``data.decode`` resolved for this run; under DDP every rank takes rank 0's choice."""
    from ..train.throughput import choose_decode, model_rate

    batch = recipe.train.batch_size // world
    choice = choose_decode(recipe.data.decode, store, device, workers,
                           lambda: model_rate(model, spec, batch, device, run_train.precision, run_train.channels_last))
    if world > 1 and choice.model_per_s is not None:  # only ``auto`` times anything, and alike on every rank
        import torch.distributed as dist

        shared = [choice]
        dist.broadcast_object_list(shared, src=0)
        choice = shared[0]
    return choice


# -- fit -----------------------------------------------------------------------------------------------
@dataclass
class Fitted:
    """The training outcome: curves and phases (``FitResult``) and which weights were selected."""

    result: "FitResult"
    selection: dict[str, Any]


def fit(p: Prepared, *, callbacks: Sequence = ()) -> Fitted:
    """Train (and run the hard-sample phase of a recipe with one), then load the selected weights
    into ``p.model``; resumes from the checkpoints in ``p.work``."""
    from ..train import hard_samples, loop
    from ..train.augment import build_augment

    recipe, job, n_classes = p.run_recipe, p.job, len(p.classes)
    # select: on_test (as-published protocols only, checked by ``plan``) monitors the test fold itself
    val_loader = p.eval_loaders.get("test" if recipe.train.select == "on_test" else "val")
    ckpt = p.work / "ckpt"
    result = loop.fit(p.model, p.loader(p.idx["train"], True), val_loader, p.spec, recipe, p.loss_fn,
                      build_augment(recipe.augment), ckpt, seed=job.seed, n_classes=n_classes, callbacks=callbacks,
                      progress=p.progress)
    if recipe.hard_samples is not None:
        result, ckpt = hard_samples.second_phase(p.model, result, ckpt, p.loader, p.idx["train"], val_loader, p.spec,
                                                 recipe, p.loss_fn, p.work, seed=job.seed, n_classes=n_classes,
                                                 rank=p.rank, callbacks=callbacks, progress=p.progress)
    use_best = loop.load_selected(p.model, ckpt, recipe, val_loader is not None)
    return Fitted(result, selection(recipe, result, use_best))


def selection(recipe, fit: "FitResult", use_best: bool) -> dict[str, Any]:
    """The selection rule record of ``metrics.json``: best (on val), best on test (``on_test``, as
    published) or last weights, and why."""
    on_test = recipe.train.select == "on_test"
    return {
        "rule": ("on_test" if on_test else "best") if use_best else "last",
        "reason": None if use_best or recipe.train.select == "last" else "no val role in this fold",
        "monitor": recipe.train.monitor if use_best else None,
        "monitored_role": ("test" if on_test else "val") if use_best else None,
        "epoch": fit.best_epoch if use_best else (fit.phases[-1]["epochs_ran"] if fit.phases else fit.epochs_ran) - 1,
        "epoch_fraction": fit.best_fraction if use_best else 1.0,
        "value": fit.best_value if use_best else None,
        "epochs_ran": fit.epochs_ran,
        "stopped_early": fit.stopped_early,
        "resumed_from_epoch": fit.resumed_from,
        "phases": fit.phases or None,
    }


# -- evaluate ------------------------------------------------------------------------------------------
@dataclass
class Evaluation:
    """The val/test predictions table (``predictions.parquet``) and the scores (``metrics.json``)."""

    predictions: "pa.Table"
    scores: dict[str, Any]


def evaluate(p: Prepared, fitted: Fitted) -> Evaluation:
    """Predict the val and test roles with the selected weights (gathered over ranks), then score them."""
    from ..train.evaluate import predict

    logits = {r: predict(p.model, p.eval_loaders[r], p.spec, precision=p.precision,
                         channels_last=p.channels_last) for r in ("val", "test") if r in p.eval_loaders}
    return score(p.job, p.store, p.idx, logits, p.classes, p.train_counts, fitted.selection)


def score(job: Job, store: "Store", idx: dict[str, np.ndarray], logits: dict[str, np.ndarray], classes: list[str],
          train_counts: np.ndarray, selection: dict[str, Any]) -> Evaluation:
    """Predictions table and scores from the logits of each evaluated role (val, test)."""
    import pyarrow as pa

    from .. import metrics
    from ..train.evaluate import predictions_table

    tables = [predictions_table(store, idx[r], logits[r], role=r, repeat=job.repeat, fold=job.fold, seed=job.seed,
                                classes=classes) for r in logits]
    per_role = {r: metrics.evaluate(t.column("label").to_numpy(), t.column("pred").to_numpy(), classes)
                for r, t in zip(logits, tables)}
    scores = {
        "classes": classes,
        "test": per_role["test"],
        "val": per_role.get("val"),
        "baselines": metrics.baselines(train_counts, store.labels[idx["test"]], classes),
        "selection": selection,
        "n": {r: int(len(i)) for r, i in idx.items()},
        "train_class_counts": [int(c) for c in train_counts],
    }
    return Evaluation(pa.concat_tables(tables), scores)
