"""Report 001's "hard-sample" second training phase, run after a recipe's own training.

Report 001 (FER2013 CNN and ViT, Keras) trained a first phase without augmentation, then (a)
retrained each model for 20 epochs on the training samples the first phase got wrong (its "hard
set"), and (b) trained once more with augmentation (rotation 20°, shift 0.1, zoom 0.1, horizontal
flip) to undo the overfitting to the hard set; test accuracy rose from 62.89% to 64.72% (CNN) and
from 39.62% to 41.87% (ViT).

``second_phase`` does the same from the first phase's selected weights:

1. predict every training sample (no augmentation, eval mode); the misclassified ones are the hard
   set, saved as ``hard_samples.npy`` (store indices) in the phase's checkpoint folder so a resumed
   run uses the same set;
2. (a) ``hard_samples.epochs`` epochs on the hard set only: the recipe's sampler, optimiser and
   schedule (fresh), no augmentation, no early stopping, the last weights carried on;
3. (b) ``hard_samples.augment_epochs`` epochs on the whole training set with ``hard_samples.augment``,
   a fresh optimiser and schedule, early stopping and model selection as the recipe's ``train``.

Each step checkpoints and resumes like the first phase (``loop.fit``). The runner tests the
weights step (b) selects.

UNVERIFIED (the report does not say): that (b) used the whole training set rather than the hard set
again; whether the optimiser state and learning rate carried over from phase 1 (fresh here); and
the batch size and callbacks of phase 2 (the recipe's here).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from torch import nn

from . import loop
from .augment import Augment, build_augment
from .inputs import InputSpec
from .loader import Loader
from .evaluate import predict
from .loop import FitResult
from .recipe import Recipe

HARD = "hard_samples.npy"
#: (store indices, train) -> a loader over them: shuffled by the recipe's sampler (train) or in order
MakeLoader = Callable[[np.ndarray, bool], Loader]


def misclassified(model: nn.Module, loader: Loader, spec: InputSpec, precision: str = "fp32") -> np.ndarray:
    """The store indices of ``loader`` (an evaluation loader) whose predicted class is wrong."""
    pred = predict(model, loader, spec, precision=precision).argmax(1)
    return loader.indices[pred != loader.store.labels[loader.indices]]


def hard_set(model: nn.Module, make_loader: MakeLoader, train_idx: np.ndarray, spec: InputSpec, recipe: Recipe,
             ckpt: Path, rank: int) -> np.ndarray:
    """The hard set: read back from ``ckpt`` when a previous attempt saved it, else predicted and saved."""
    path = ckpt / HARD
    if path.exists():
        return np.load(path)
    hard = misclassified(model, make_loader(train_idx, False), spec, recipe.train.precision)
    if rank == 0:
        ckpt.mkdir(parents=True, exist_ok=True)
        np.save(path, hard)
    return hard


def _with_train(recipe: Recipe, augment: Sequence[dict], **train) -> Recipe:
    return dataclasses.replace(recipe, augment=list(augment), train=dataclasses.replace(recipe.train, **train))


def second_phase(model: nn.Module, first: FitResult, first_ckpt: Path, make_loader: MakeLoader, train_idx: np.ndarray,
                 val: Loader | None, spec: InputSpec, recipe: Recipe, loss_fn: nn.Module, work: Path, *, seed: int,
                 n_classes: int, rank: int = 0, callbacks: Sequence[loop.Callback] = (),
                 progress: bool = True) -> tuple[FitResult, Path]:
    """Steps (a) and (b) from the first phase's selected weights; the merged result and (b)'s checkpoint folder."""
    cfg = recipe.hard_samples
    loop.load_selected(model, first_ckpt, recipe, val is not None)
    hard_ckpt, aug_ckpt = work / "ckpt-hard", work / "ckpt-augmented"
    hard = hard_set(model, make_loader, train_idx, spec, recipe, hard_ckpt, rank)
    hard_fit = FitResult()
    if len(hard) and cfg.epochs:
        plain = _with_train(recipe, [], epochs=cfg.epochs, early_stopping=None, select="last")
        no_augment: list[Augment] = []
        hard_fit = loop.fit(model, make_loader(hard, True), val, spec, plain, loss_fn, no_augment, hard_ckpt, seed=seed,
                            n_classes=n_classes, callbacks=callbacks, progress=progress)
    augmented = _with_train(recipe, cfg.augment, epochs=cfg.augment_epochs)
    last = loop.fit(model, make_loader(train_idx, True), val, spec, augmented, loss_fn, build_augment(cfg.augment), aug_ckpt,
                    seed=seed, n_classes=n_classes, callbacks=callbacks, progress=progress)
    fits = {"1": (first, len(train_idx)), "2-hard": (hard_fit, len(hard)), "2-augmented": (last, len(train_idx))}
    merged = dataclasses.replace(
        last,
        curves=[{**row, "phase": name} for name, (f, _) in fits.items() for row in f.curves],
        train_seconds=sum(f.train_seconds for f, _ in fits.values()),
        train_samples=sum(f.train_samples for f, _ in fits.values()),
        resumed_from=first.resumed_from,
        phases=[{"phase": name, "samples": int(n), "epochs_ran": f.epochs_ran, "best_epoch": f.best_epoch}
                for name, (f, n) in fits.items()],
    )
    return merged, aug_ckpt
