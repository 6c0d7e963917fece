"""What a trained run learned: Grad-CAM heat maps per class, a t-SNE of its features, its curves.

``analyse(run_dir)`` writes ``RUN_DIR/analysis/`` (or ``out``), atomically (a temp folder renamed
into place, replacing an earlier analysis):

* ``gradcam.png``: per class, up to ``per_class`` test images of that class from the run's own test
  fold (the most confident correct ones first, then the rest), each overlaid with Grad-CAM
  (Selvaraju et al., ICCV 2017) of its true class at the model's last convolution, the prediction in
  its title. A model without a convolution (a ViT) gets gradient × input saliency, named so.
* ``tsne.png`` and ``tsne.csv``: the test samples' penultimate features (the input of the model's
  last linear layer) embedded in 2-D by scikit-learn's t-SNE (PCA init, perplexity
  min(30, (n − 1) / 3), ``seed``), coloured by true class; at most ``max_points`` samples, a seeded
  draw stratified by class.
* ``curves.png``: the run's training curves (every run writes them).
* ``analysis.json``: what was drawn: the samples per class, the layers, the methods.

The test fold is found through the run's resolved recipe (its manifest must still hash to the
run's ``manifest_hash``). RGB runs only: a depth or RGB-D model is refused with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FerbenchError

OUT = "analysis"


def last_module(model, kind) -> tuple[str, Any] | None:
    """The last sub-module of type ``kind`` in registration order (name, module), or None."""
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, kind)]
    return found[-1] if found else None


def gradcam(model, x, target, layer=None):
    """Heat maps (N, H, W) in [0, 1] for inputs ``x`` (N, C, H, W) and classes ``target`` (N,): Grad-CAM
    at ``layer`` (default: the last ``Conv2d``), or gradient × input saliency without one. Returns
    (maps, method)."""
    import torch
    import torch.nn.functional as F

    layer = layer or (last_module(model, torch.nn.Conv2d) or (None, None))[1]
    x = x.detach().clone().requires_grad_(layer is None)
    kept: dict[str, Any] = {}
    hook = layer.register_forward_hook(lambda m, i, o: kept.update(act=o)) if layer is not None else None
    try:
        with torch.enable_grad():
            logits = model(x)
            score = logits.gather(1, torch.as_tensor(target, device=logits.device).view(-1, 1)).sum()
            if layer is not None:
                (grad,) = torch.autograd.grad(score, kept["act"])
                weights = grad.mean((2, 3), keepdim=True)
                cam = F.relu((weights * kept["act"]).sum(1, keepdim=True))
                cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
                method = "Grad-CAM"
            else:
                (grad,) = torch.autograd.grad(score, x)
                cam = (grad * x).sum(1).abs()
                method = "gradient × input"
    finally:
        if hook is not None:
            hook.remove()
    cam = cam.detach()
    peak = cam.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
    return (cam / peak).cpu().numpy(), method


def _features_and_logits(model, transform, images, batch_size: int, device: str) -> tuple[np.ndarray, np.ndarray, str]:
    import torch

    found = last_module(model, torch.nn.Linear)
    if found is None:
        raise FerbenchError("analyse: the model has no linear layer to take penultimate features from")
    name, head = found
    feats: list[np.ndarray] = []
    hook = head.register_forward_pre_hook(lambda m, args: feats.append(args[0].detach().flatten(1).float().cpu().numpy()))
    logits = []
    try:
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                x = torch.stack([transform(im) for im in images[start:start + batch_size]]).to(device)
                logits.append(model(x).float().cpu().numpy())
    finally:
        hook.remove()
    return np.concatenate(feats), np.concatenate(logits), name


def _pick(truth: np.ndarray, pred: np.ndarray, conf: np.ndarray, n_classes: int, per_class: int) -> dict[int, list[int]]:
    """Per class, up to ``per_class`` rows of that true class: correct ones by confidence, then the rest."""
    out = {}
    for c in range(n_classes):
        rows = np.flatnonzero(truth == c)
        order = sorted(rows, key=lambda i: (pred[i] != c, -conf[i], i))
        out[c] = [int(i) for i in order[:per_class]]
    return out


def _stratified(truth: np.ndarray, max_points: int, seed: int) -> np.ndarray:
    if len(truth) <= max_points:
        return np.arange(len(truth))
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(truth):
        rows = np.flatnonzero(truth == c)
        k = max(1, round(max_points * len(rows) / len(truth)))
        keep.append(rng.choice(rows, size=min(k, len(rows)), replace=False))
    return np.sort(np.concatenate(keep))[:max_points]


def _test_fold(run_dir: Path, record) -> Any:
    from .folds import load_fold
    from .protocols import read_manifest
    from .runner.jobs import manifest_path, resolve_paths
    from .train.recipe import load_recipe

    recipe = load_recipe(run_dir / "recipe.yaml")
    resolve_paths(recipe)
    path = manifest_path(recipe)
    stored = read_manifest(path).meta["content_hash"]  # load_fold then checks the rows hash to it
    if stored != record.manifest_hash:
        raise FerbenchError(f"{path}: its content hash is {stored}, the run used {record.manifest_hash}; "
                            "analyse needs the manifest the run was trained on")
    return load_fold(path, record.fold, record.repeat, recipe.data.dirs or None)["test"]


def analyse(run_dir: str | Path, out: str | Path | None = None, *, per_class: int = 4, max_points: int = 2000,
            device: str = "cpu", batch_size: int = 64, seed: int = 0) -> Path:
    """Write the analysis of a run (see the module docstring); returns its folder."""
    import torch

    from .extras import require
    from .model_io import load_model
    from .run_record import RESULT, RunRecord

    run_dir = Path(run_dir)
    if not (run_dir / RESULT).is_file():
        raise FerbenchError(f"{run_dir}: not a finished run (no {RESULT})")
    record = RunRecord.load(run_dir / RESULT)
    model, transform = load_model(run_dir, device)
    if transform.unsupported:
        raise FerbenchError(f"analyse: {transform.unsupported}")
    manifold = require("sklearn.manifold", "analyse", "t-SNE (ferbench analyse)")
    test = _test_fold(run_dir, record)
    classes = list(model.ferbench_classes)
    images, truth = list(test["image"]), np.asarray(test["label"], dtype=np.int64)
    feats, logits, head = _features_and_logits(model, transform, images, batch_size, device)
    probs = torch.softmax(torch.from_numpy(logits), 1).numpy()
    pred, conf = probs.argmax(1), probs.max(1)
    picks = _pick(truth, pred, conf, len(classes), per_class)

    out = Path(out) if out is not None else run_dir / OUT
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    try:
        rows = [i for c in range(len(classes)) for i in picks[c]]
        x = torch.stack([transform(images[i]) for i in rows]).to(device)
        maps, method = gradcam(model, x, truth[rows]) if rows else (np.zeros((0, 1, 1)), "Grad-CAM")
        conv = last_module(model, torch.nn.Conv2d)
        _gradcam_png(tmp / "gradcam.png", x.cpu().numpy(), maps, rows, picks, truth, pred, conf, classes, transform.spec, method)
        keep = _stratified(truth, max_points, seed)
        tsne = _tsne(manifold, feats[keep], seed)
        _tsne_files(tmp, tsne, keep, truth, pred, classes, [test["sample_id"][i] for i in keep])
        if (run_dir / "curves.png").is_file():
            shutil.copyfile(run_dir / "curves.png", tmp / "curves.png")
        info = {"run": record.run_name, "manifest_hash": record.manifest_hash, "repeat": record.repeat, "fold": record.fold,
                "test_samples": len(truth), "classes": classes,
                "saliency": {"method": method, "layer": conv[0] if conv and method == "Grad-CAM" else None,
                             "samples": {classes[c]: [test["sample_id"][i] for i in picks[c]] for c in picks}},
                "tsne": {"features": f"input of {head}", "points": int(len(keep)), "seed": seed,
                         "perplexity": None if tsne is None else _perplexity(len(keep))}}
        (tmp / "analysis.json").write_text(json.dumps(info, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _perplexity(n: int) -> float:
    return float(min(30.0, (n - 1) / 3))


def _tsne(manifold, feats: np.ndarray, seed: int) -> np.ndarray | None:
    """2-D t-SNE of ``feats`` (None with fewer than 4 points: t-SNE needs perplexity ≥ 1)."""
    if len(feats) < 4:
        return None
    return manifold.TSNE(n_components=2, perplexity=_perplexity(len(feats)), init="pca", random_state=seed).fit_transform(
        feats.astype(np.float64))


def _tsne_files(tmp: Path, xy: np.ndarray | None, keep: np.ndarray, truth, pred, classes, samples) -> None:
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with (tmp / "tsne.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sample_id", "x", "y", "true", "pred"])
        for k, (i, s) in enumerate(zip(keep, samples)):
            w.writerow([s, *(("", "") if xy is None else (f"{xy[k, 0]:.6g}", f"{xy[k, 1]:.6g}")),
                        classes[truth[i]], classes[pred[i]]])
    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=100)
    if xy is None:
        ax.text(0.5, 0.5, "too few test samples for t-SNE", ha="center", va="center", transform=ax.transAxes)
    else:
        for c, name in enumerate(classes):
            sel = truth[keep] == c
            if sel.any():
                ax.scatter(xy[sel, 0], xy[sel, 1], s=8, label=name)
        ax.legend(fontsize=7, markerscale=2)
    ax.set(title="t-SNE of penultimate features (test, by true class)", xticks=[], yticks=[])
    fig.tight_layout()
    fig.savefig(tmp / "tsne.png")
    plt.close(fig)


def _gradcam_png(path: Path, x: np.ndarray, maps: np.ndarray, rows, picks, truth, pred, conf, classes, spec, method) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per = max([len(v) for v in picks.values()] + [1])
    fig, axes = plt.subplots(len(classes), per, figsize=(1.6 * per, 1.7 * len(classes)), dpi=100, squeeze=False)
    mean, std = np.asarray(spec["mean"])[:, None, None], np.asarray(spec["std"])[:, None, None]
    k = 0
    for c in range(len(classes)):
        for j in range(per):
            ax = axes[c, j]
            ax.axis("off")
            if j >= len(picks[c]):
                continue
            i = rows[k]
            img = np.clip(x[k] * std + mean, 0, 1).transpose(1, 2, 0)
            ax.imshow(img[..., 0] if img.shape[2] == 1 else img, cmap="gray" if img.shape[2] == 1 else None)
            ax.imshow(maps[k], cmap="jet", alpha=0.45, vmin=0, vmax=1)
            ax.set_title(f"{classes[c]} → {classes[pred[i]]} {100 * conf[i]:.0f}%", fontsize=6)
            k += 1
    fig.suptitle(f"{method} of the true class (rows: true class; titles: prediction, confidence)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
