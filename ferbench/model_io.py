"""A run's saved model: ``model.safetensors`` (weights) + ``model.json`` (how to rebuild and feed it).

``model.json`` (``ferbench-model/1``): model (registry name), kwargs, num_classes, in_chans, classes,
input (modality, size, channels, mean, std, depth_norm, depth_scale_mm: the run's ``InputSpec``,
with the fold's train statistics under ``input.normalize: train``).

``load_model(run_dir)`` gives (the model in eval mode, transform): ``transform`` turns a PIL image
(or an image file path) into the normalised (C, H, W) float tensor the model was evaluated on
(resized to a square as the runner's decoder does, /255, mean/std). ``evaluate`` scores any model or
callable on a manifest's test folds and returns a submission (``ferbench.submit``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .errors import FerbenchError

WEIGHTS = "model.safetensors"
MODEL_JSON = "model.json"
MODEL_SCHEMA = "ferbench-model/1"

PathLike = str | Path


def unwrap(model):
    net = getattr(model, "module", model)  # DDP
    return getattr(net, "_orig_mod", net)  # torch.compile


def model_json(name: str, kwargs: dict[str, Any], classes: Sequence[str], spec) -> dict[str, Any]:
    return {"schema": MODEL_SCHEMA, "model": name, "kwargs": dict(kwargs or {}), "num_classes": len(classes),
            "in_chans": spec.channels, "classes": list(classes),
            "input": {"modality": spec.modality, "size": spec.size, "channels": spec.channels, "mean": list(spec.mean),
                      "std": list(spec.std), "depth_norm": spec.depth_norm, "depth_scale_mm": spec.depth_scale_mm}}


def save_model(model, out_dir: PathLike, name: str, kwargs: dict[str, Any], classes: Sequence[str], spec) -> None:
    """Write ``model.safetensors`` and ``model.json`` into ``out_dir``."""
    from safetensors.torch import save_model as _save

    out_dir = Path(out_dir)
    _save(unwrap(model), str(out_dir / WEIGHTS))
    (out_dir / MODEL_JSON).write_text(json.dumps(model_json(name, kwargs, classes, spec), indent=2) + "\n")


class Transform:
    """PIL image (or path) → normalised (C, H, W) float32 tensor, as the runner fed the model."""

    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        if spec["modality"] != "rgb":
            self.unsupported = f"modality {spec['modality']} (needs depth maps): only rgb models classify plain image files"
        else:
            self.unsupported = None

    def __call__(self, image):
        import torch
        from PIL import Image

        if self.unsupported:
            raise FerbenchError(self.unsupported)
        size, channels = self.spec["size"], self.spec["channels"]
        if isinstance(image, (str, Path)):
            try:
                with Image.open(image) as im:
                    im.load()
                    image = im.copy()
            except OSError as exc:
                raise FerbenchError(f"{image}: cannot be read as an image ({exc})") from None
        im = image.convert("L" if channels == 1 else "RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        a = np.asarray(im, dtype=np.float32) / 255
        a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
        mean = np.asarray(self.spec["mean"], np.float32)[:, None, None]
        std = np.asarray(self.spec["std"], np.float32)[:, None, None]
        return torch.from_numpy(np.ascontiguousarray((a - mean) / std))

    def __repr__(self) -> str:
        return f"Transform({self.spec})"


def read_model_json(run_dir: PathLike) -> dict[str, Any]:
    path = Path(run_dir) / MODEL_JSON
    if not path.is_file() or not (Path(run_dir) / WEIGHTS).is_file():
        raise FerbenchError(f"{run_dir}: no saved model ({WEIGHTS} + {MODEL_JSON}); runs with runtime.keep_weights write one")
    try:
        info = json.loads(path.read_text())
    except ValueError as exc:
        raise FerbenchError(f"{path}: invalid JSON ({exc})") from None
    if not isinstance(info, dict) or info.get("schema") != MODEL_SCHEMA:
        raise FerbenchError(f"{path}: not a {MODEL_SCHEMA} file")
    return info


def load_model(run_dir: PathLike, device: str = "cpu"):
    """(model in eval mode on ``device``, transform) of a run directory's saved model."""
    from safetensors.torch import load_model as _load

    from .models import create_model

    info = read_model_json(run_dir)
    model = create_model(info["model"], info["num_classes"], info["in_chans"], False, None, **info["kwargs"])
    _load(model, str(Path(run_dir) / WEIGHTS), device="cpu")
    model = model.to(device).eval()
    transform = Transform(info["input"])
    model.ferbench_classes = list(info["classes"])
    model.ferbench_transform = transform
    return model, transform


def predict_files(run_dir: PathLike, images: Sequence[PathLike], *, device: str = "cpu",
                  batch_size: int = 64) -> list[dict[str, Any]]:
    """Classify image files: one {file, class, probability, probabilities} per file."""
    import torch

    model, transform = load_model(run_dir, device)
    classes = model.ferbench_classes
    out = []
    for start in range(0, len(images), batch_size):
        files = list(images[start:start + batch_size])
        x = torch.stack([transform(f) for f in files]).to(device)
        with torch.no_grad():
            probs = torch.softmax(model(x).float(), 1).cpu().numpy()
        for f, p in zip(files, probs):
            k = int(p.argmax())
            out.append({"file": str(f), "class": classes[k], "probability": float(p[k]),
                        "probabilities": {c: float(v) for c, v in zip(classes, p)}})
    return out


# -- inference-only evaluation -----------------------------------------------------------------------
@dataclass
class Submission:
    """What ``evaluate`` produced: the submission table, the file it was written to, the runs written (if submitted)."""

    table: Any  # pyarrow.Table: sample_id, repeat, fold, pred, p_<class>
    path: Path | None = None
    records: list = field(default_factory=list)


def evaluate(predict: Callable | Any, manifest: PathLike, *, data_dirs: Sequence[PathLike] | None = None,
             batch_size: int = 64, device: str = "cpu", name: str | None = None, transform: Callable | None = None,
             out: PathLike | None = None, runs: PathLike = "runs", info: Any = None,
             progress: bool = True) -> Submission:
    """Predict every test sample of every (repeat, fold) of ``manifest`` and return the submission.

    ``predict`` is a ``torch.nn.Module`` (logits; fed ``transform(image)`` batches on ``device``; a
    model from ``load_model`` brings its transform) or a callable taking a list of PIL images
    (after ``transform`` when given: a stacked tensor) and returning (N, classes) probabilities.
    With ``out`` the submission is written (CSV or Parquet); with ``name`` it is also submitted
    (``ferbench.submit.submit``: runs written under ``runs``)."""
    import tempfile

    import pyarrow as pa
    import torch

    from . import ui
    from .folds import load_fold
    from .protocols import load_manifest
    from .submit import submit

    m = load_manifest(manifest, list(data_dirs or ()))
    classes = list(m.meta["classes"])
    is_module = isinstance(predict, torch.nn.Module)
    if is_module:
        transform = transform or getattr(predict, "ferbench_transform", None)
        if transform is None:
            raise FerbenchError("evaluate: a torch model needs transform= (PIL image → normalised tensor)")
        predict = predict.to(device).eval()
    pairs = sorted({(int(r), int(f)) for r, f, ro in zip(m.table.column("repeat").to_pylist(),
                                                          m.table.column("fold").to_pylist(),
                                                          m.table.column("role").to_pylist()) if ro == "test"})
    cols: dict[str, list] = {"sample_id": [], "repeat": [], "fold": [], "pred": []}
    probs_all = []
    for r, f in pairs:
        test = load_fold(manifest, f, r, data_dirs)["test"]
        n = len(test)
        if progress:
            ui.say(f"evaluate: repeat {r} fold {f}: {n} test samples")
        for start in range(0, n, batch_size):
            batch = test[start:start + batch_size]
            images = batch["image"]
            x = torch.stack([transform(im) for im in images]) if transform is not None else images
            with torch.no_grad():
                if is_module:
                    p = torch.softmax(predict(x.to(device)).float(), 1).cpu().numpy()
                else:
                    p = predict(x)
                    p = p.detach().float().cpu().numpy() if isinstance(p, torch.Tensor) else np.asarray(p, np.float64)
            if p.shape != (len(images), len(classes)):
                raise FerbenchError(f"evaluate: predictions of shape {p.shape}, expected ({len(images)}, {len(classes)})")
            probs_all.append(np.asarray(p, np.float64))
            cols["sample_id"] += batch["sample_id"]
            cols["repeat"] += [r] * len(images)
            cols["fold"] += [f] * len(images)
    probs = np.concatenate(probs_all) if probs_all else np.zeros((0, len(classes)))
    cols["pred"] = [classes[i] for i in probs.argmax(1)]
    table = pa.table({**{k: pa.array(v) for k, v in cols.items()},
                      **{f"p_{c}": pa.array(probs[:, j]) for j, c in enumerate(classes)}})
    result = Submission(table)
    if out is not None or name is not None:
        import pyarrow.parquet as pq

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(out) if out is not None else Path(tmp) / "submission.parquet"
            if path.suffix.lower() == ".csv":
                import pyarrow.csv as pcsv

                pcsv.write_csv(table, path)
            else:
                pq.write_table(table, path)
            if name is not None:
                result.records = submit(path, manifest, name=name, info=info, runs=runs, data_dirs=data_dirs)
            result.path = Path(out) if out is not None else None
    return result
