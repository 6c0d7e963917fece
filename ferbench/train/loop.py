"""The training loop: AMP (bf16/fp16), channels-last, optional torch.compile, gradient accumulation,
DDP, per-epoch validation, early stopping, model selection on the val role, checkpoint + resume.

``train.batch_size`` is the number of samples per forward pass summed over ranks (each rank gets
batch_size / world); ``accum_steps`` forward passes make one optimiser step. After every epoch the
loop writes ``last.pt`` (everything needed to resume) and, when the monitored val value improved,
``best.pt`` (weights only) into its checkpoint folder, atomically; a loss with state (the centers of
center/island loss) is checkpointed with it. Random streams are seeded from (seed, epoch, rank), so a
resumed run continues exactly as an uninterrupted one would (no RNG state needs saving). With the
``sam`` optimizer each batch takes SAM's two passes (``sam.sam_step``); a loss that needs the model's
features is attached first.

Every checkpoint is read with ``torch.load(weights_only=True)``: ``last.pt`` holds only tensors and
plain containers (the ``FitResult`` as a dict, format ``CKPT_FORMAT``), so a file planted in a partial
run folder is never unpickled into code; one that does not load that way is refused with one line
(``read_checkpoint``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from .. import metrics
from ..errors import FerbenchError
from .augment import Augment
from .inputs import InputSpec, norm_tensors, to_input
from .loader import Loader
from .evaluate import autocast, nll, predict
from .optim import OPTIMIZERS, SCHEDULERS
from ..params import component
from .recipe import Recipe
from .sam import SAM, sam_step

LAST, BEST = "last.pt", "best.pt"
#: Version of the ``last.pt`` layout (plain dicts, lists, numbers and tensors only).
CKPT_FORMAT = 2
_STATE_KEYS = ("format", "epoch", "epochs", "model", "optimizer", "schedule", "scaler", "loss", "result")


@dataclass
class FitResult:
    curves: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = -1
    best_value: float | None = None
    #: how far into ``best_epoch`` its best validation came (1.0 = at its end; less with ``train.val_every``)
    best_fraction: float = 1.0
    stopped_early: bool = False
    train_seconds: float = 0.0
    train_samples: int = 0
    resumed_from: int | None = None
    #: for multi-phase training (``hard_samples``): one summary per phase
    phases: list[dict[str, Any]] = field(default_factory=list)

    @property
    def epochs_ran(self) -> int:
        """Epochs trained (the curves' rows less the part-way validations of ``train.val_every``)."""
        return sum(not row.get("mid_epoch") for row in self.curves)

    @property
    def samples_per_s(self) -> float:
        return self.train_samples / self.train_seconds if self.train_seconds else 0.0


#: Called after each epoch's checkpoint is written: (epoch index, that epoch's curve row).
Callback = Callable[[int, dict[str, Any]], None]


def _seed(seed: int, epoch: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


def _save(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__


def read_checkpoint(path: Path, device: torch.device | str = "cpu", *, resume: bool = True, mmap: bool = False) -> Any:
    """A checkpoint loaded with ``weights_only=True`` (never unpickling code); a file that does not
    load that way (planted, corrupt, or from another ferbench version) is one ``FerbenchError`` line.
    ``resume``: the file must be a ``last.pt`` of format ``CKPT_FORMAT``."""
    path = Path(path)
    fix = f"delete {path.parent.parent} (or run `ferbench clean` on the runs folder) and run again"
    try:
        state = torch.load(path, map_location=device, weights_only=True, mmap=mmap)
    except Exception as exc:  # pickle.UnpicklingError for anything but tensors and plain containers
        raise FerbenchError(f"refusing checkpoint {path}: it does not load as weights only ({_first_line(exc)}); {fix}") from None
    if resume and not (isinstance(state, dict) and state.get("format") == CKPT_FORMAT and set(_STATE_KEYS) <= set(state)):
        raise FerbenchError(f"refusing checkpoint {path}: not a format-{CKPT_FORMAT} ferbench resume checkpoint; {fix}")
    return state


def checkpoint_epoch(ckpt_dir: Path) -> tuple[int, int, bool] | None:
    """(epochs completed, epochs planned, stopped early) of the resume checkpoint in ``ckpt_dir``; None
    when there is none."""
    last = Path(ckpt_dir) / LAST
    if not last.exists():
        return None
    state = read_checkpoint(last, mmap=True)
    return int(state["epoch"]) + 1, int(state["epochs"]), bool(state["result"].get("stopped_early"))


def _result_state(result: FitResult) -> dict[str, Any]:
    return dataclasses.asdict(result)


def _result_from_state(state: dict[str, Any]) -> FitResult:
    known = {f.name for f in dataclasses.fields(FitResult)}
    return FitResult(**{k: v for k, v in state.items() if k in known})


def native_bf16_cpu() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX-BF16 on x86; BF16 on arm64), so
    that bf16 autocast is faster than fp32 rather than emulated."""
    cpu = getattr(torch._C, "_cpu", None)
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        check = getattr(cpu, probe, None)
        if check is not None:
            try:
                if check():
                    return True
            except Exception:  # pragma: no cover - a probe this build does not implement
                pass
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
    except OSError:
        pass
    return False


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """The precision a run uses: an explicit one as given; ``auto`` = bf16 autocast where the device
    computes bf16 natively (a CPU with ``native_bf16_cpu``, a CUDA GPU that supports bf16), fp16 on an
    older CUDA GPU, else fp32."""
    if precision != "auto":
        return precision
    device = torch.device(device)
    if device.type == "cpu":
        return "bf16" if native_bf16_cpu() else "fp32"
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def resolve_train(cfg: Any, device: torch.device | str) -> Any:
    """``cfg`` (a ``TrainCfg``) with ``precision`` resolved (``resolve_precision``); under ``auto`` the
    model also runs channels-last on a CPU or CUDA device. Explicit settings are kept as they are."""
    if cfg.precision != "auto":
        return cfg
    device = torch.device(device)
    return dataclasses.replace(cfg, precision=resolve_precision("auto", device),
                               channels_last=cfg.channels_last or device.type in ("cpu", "cuda"))


def _barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def _score(recipe: Recipe, val: dict[str, float] | None, train_loss: float, monitor: str | None = None) -> float:
    """The monitored value (``monitor`` or ``train.monitor``), higher = better (validation when there
    is a val role, else -train loss)."""
    if val is None:
        return -train_loss
    monitor = monitor or recipe.train.monitor
    return -val["loss"] if monitor == "loss" else val[monitor]


def load_selected(model: nn.Module, ckpt_dir: Path, recipe: Recipe, has_val: bool) -> bool:
    """Load the weights a finished ``fit`` selects: the best monitored epoch (``train.select: best``
    with a val role, or ``on_test``), else keep the last; True when the best were loaded."""
    if recipe.train.select == "last" or not has_val:
        return False
    device = next(model.parameters()).device
    model.load_state_dict(read_checkpoint(ckpt_dir / BEST, device, resume=False))
    return True


def validate(model: nn.Module, loader: Loader, spec: InputSpec, recipe: Recipe, n_classes: int) -> dict[str, float]:
    logits = predict(model, loader, spec, precision=recipe.train.precision, channels_last=recipe.train.channels_last)
    labels = loader.store.labels[loader.indices]
    s = metrics.scores(metrics.confusion(labels, logits.argmax(1), n_classes))
    return {"loss": nll(logits, labels), **{k: float(s[k]) for k in ("accuracy", "balanced_accuracy", "macro_f1")}}


def _unfreezer(model: nn.Module, every: int | None, world: int) -> Callable[[int], int | None]:
    """``epoch → trainable parameter count`` after applying gradual unfreezing at that epoch (stage
    ``epoch // every``: a function of the epoch alone, so a resumed run unfreezes the same); a no-op
    returning None without ``train.unfreeze_every``."""
    if not every:
        return lambda epoch: None
    from ..models.small_vit import gradual_unfreeze

    if every < 1:
        raise FerbenchError(f"train.unfreeze_every must be at least 1, got {every}")
    if world > 1:
        raise FerbenchError("train.unfreeze_every changes which parameters train between epochs, which DDP does not "
                            "allow: run it on one device")
    if not (all(hasattr(model, a) for a in ("head", "norm")) and isinstance(getattr(model, "blocks", None), nn.Sequential)):
        raise FerbenchError(f"train.unfreeze_every needs a timm ViT (blocks, norm, head); {type(model).__name__} is not one")
    return lambda epoch: gradual_unfreeze(model, epoch // every)


def fit(
    model: nn.Module,
    train: Loader,
    val: Loader | None,
    spec: InputSpec,
    recipe: Recipe,
    loss_fn: nn.Module,
    augment: Sequence[Augment],
    ckpt_dir: Path,
    *,
    seed: int,
    n_classes: int,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
) -> FitResult:
    """Train ``model`` in place for ``recipe.train.epochs`` epochs (or until early stopping)."""
    device, rank, world = train.device, train.rank, train.world
    cfg = resolve_train(recipe.train, device)
    if cfg is not recipe.train:
        recipe = dataclasses.replace(recipe, train=cfg)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    step_model: nn.Module = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    if cfg.compile:
        step_model = torch.compile(step_model)
    name, params = component(recipe.optimizer)
    optimizer = OPTIMIZERS[name](model, **params)
    steps_per_epoch = math.ceil(len(train) / cfg.accum_steps)
    name, params = component(recipe.scheduler)
    schedule = SCHEDULERS[name](optimizer, cfg.epochs, steps_per_epoch, **params)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")
    loss_fn = loss_fn.to(device).train()
    tap = loss_fn.attach(model) if hasattr(loss_fn, "attach") else None
    mean, std = norm_tensors(spec, device)

    result, start = FitResult(), 0
    last = ckpt_dir / LAST
    if last.exists():
        state = read_checkpoint(last, device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        scaler.load_state_dict(state["scaler"])
        loss_fn.load_state_dict(state["loss"])
        result = _result_from_state(state["result"])
        start = result.resumed_from = state["epoch"] + 1
    if rank == 0:
        ckpt_dir.mkdir(parents=True, exist_ok=True)

    monitored = "test" if recipe.train.select == "on_test" else "val"  # the role the curves' scores are on
    unfreeze = _unfreezer(model, cfg.unfreeze_every, world)
    for epoch in range(start, cfg.epochs):
        trainable = unfreeze(epoch)
        if result.stopped_early:
            break
        torch.manual_seed(_seed(seed, epoch, rank))
        gen = torch.Generator().manual_seed(_seed(seed, epoch, rank) + 1)
        train.set_epoch(epoch)
        t0 = time.perf_counter()
        def mid_epoch(fraction: float, epoch: int = epoch) -> None:
            """``train.val_every``: validate part-way through the epoch, keep the best weights."""
            scores = validate(model, val, spec, recipe, n_classes)
            model.train()
            result.curves.append({"epoch": round(epoch + fraction, 4), "lr": optimizer.param_groups[0]["lr"],
                                  **{f"{monitored}_{k}": v for k, v in scores.items()}, "mid_epoch": True})
            value = _score(recipe, scores, math.inf)
            if result.best_value is None or value > result.best_value:
                result.best_value, result.best_epoch, result.best_fraction = value, epoch, fraction
                if rank == 0:
                    _save(model.state_dict(), ckpt_dir / BEST)

        train_loss, train_acc, n = _train_epoch(step_model, train, spec, cfg, optimizer, schedule, scaler, loss_fn,
                                                augment, gen, mean, std, f"epoch {epoch + 1}/{cfg.epochs}", progress and rank == 0,
                                                reseed=_seed(seed, epoch, rank),
                                                mid_epoch=mid_epoch if cfg.val_every and val is not None else None)
        seconds = time.perf_counter() - t0
        result.train_seconds += seconds
        result.train_samples += n
        val_scores = validate(model, val, spec, recipe, n_classes) if val is not None else None
        value = _score(recipe, val_scores, train_loss)
        row = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"], "train_loss": train_loss, "train_accuracy": train_acc,
               **{f"{monitored}_{k}": v for k, v in (val_scores or {}).items()}, "seconds": seconds,
               "samples_per_s": n / seconds if seconds else 0.0}
        if trainable is not None:
            row["trainable_params"] = trainable
        result.curves.append(row)
        if schedule.interval == "epoch":
            schedule.step(_score(recipe, val_scores, train_loss, schedule.monitor))
        if result.best_value is None or value > result.best_value:
            result.best_value, result.best_epoch, result.best_fraction = value, epoch, 1.0
            if rank == 0:
                _save(model.state_dict(), ckpt_dir / BEST)
        patience = cfg.early_stopping
        result.stopped_early = patience is not None and val is not None and epoch - result.best_epoch >= patience
        if rank == 0:
            _save({"format": CKPT_FORMAT, "epoch": epoch, "epochs": cfg.epochs, "model": model.state_dict(),
                   "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(), "scaler": scaler.state_dict(),
                   "loss": loss_fn.state_dict(), "result": _result_state(result)}, last)
            if progress:
                shown = " ".join(f"{k}={v:.4g}" for k, v in row.items() if k not in ("epoch", "seconds"))
                print(f"epoch {epoch + 1}/{cfg.epochs}: {shown} ({seconds:.1f}s)", file=sys.stderr)
        _barrier(world)
        for cb in callbacks:
            cb(epoch, row)
    if tap is not None:
        tap.remove()
    return result


def val_marks(val_every: float | None, n_batches: int) -> dict[int, float]:
    """Batch index → epoch fraction after which to validate part-way (``train.val_every``): every
    ``val_every`` of the epoch, rounded to a batch, the epoch's end left to the end-of-epoch validation."""
    if not val_every:
        return {}
    marks = {}
    k = 1
    while k * val_every < 1 - 1e-9:
        i = max(0, round(k * val_every * n_batches) - 1)
        if i < n_batches - 1:
            marks[i] = (i + 1) / n_batches
        k += 1
    return marks


def _train_epoch(model, loader, spec, cfg, optimizer, schedule, scaler, loss_fn, augment, gen, mean, std, desc, progress,
                 reseed: int | None = None, mid_epoch: Callable[[float], None] | None = None):
    """One training epoch. ``reseed``: the global torch RNG is seeded again once the first batch is in
    hand, because starting a streaming loader's workers draws from it (on the first epoch a process
    runs only): without this, a resumed epoch would see another random stream than an uninterrupted one.
    ``mid_epoch(fraction)`` runs after the batches ``val_marks`` names (``train.val_every``)."""
    from tqdm.auto import tqdm

    model.train()
    device = loader.device
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    n, accum = 0, cfg.accum_steps
    n_batches = len(loader)
    marks = val_marks(cfg.val_every, n_batches) if mid_epoch is not None else {}
    bar = tqdm(total=n_batches, desc=desc, unit="batch", leave=False, disable=None if progress else True,
               mininterval=0.5)
    optimizer.zero_grad(set_to_none=True)
    for i, batch in enumerate(loader):
        if i == 0 and reseed is not None:
            torch.manual_seed(reseed)
        x = to_input(batch, spec, mean, std, augment, gen, cfg.channels_last)

        def forward(update_loss_state: bool = True, x=x, label=batch.label):
            loss_fn.train(update_loss_state)  # SAM's second pass leaves the loss's state (centers) alone
            with autocast(device, cfg.precision):
                logits = model(x)
                return logits, loss_fn(logits.float(), label)

        if isinstance(optimizer, SAM):
            logits, loss = sam_step(model, optimizer, scaler, forward, cfg.grad_clip)
            loss_fn.train()
            stepped = True
        else:
            stepped = (i + 1) % accum == 0 or i + 1 == n_batches
            sync = model.no_sync() if isinstance(model, nn.parallel.DistributedDataParallel) and not stepped else nullcontext()
            with sync:
                logits, loss = forward()
                scaler.scale(loss / accum).backward()
            if stepped:
                if cfg.grad_clip is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
        if stepped and schedule.interval == "step":
            schedule.step()
        b = batch.label.shape[0]
        total_loss += loss.detach() * b
        correct += (logits.detach().argmax(1) == batch.label).sum()
        n += b
        bar.update(1)
        if i in marks:
            mid_epoch(marks[i])
    bar.close()
    totals = torch.stack([total_loss.double(), correct.double(), torch.tensor(float(n), device=device, dtype=torch.float64)])
    if loader.world > 1:
        dist.all_reduce(totals)
    loss_sum, n_correct, n_all = totals.tolist()
    return loss_sum / max(n_all, 1), n_correct / max(n_all, 1), int(n_all)
