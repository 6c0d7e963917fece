"""Writing a finished job: its ``RunRecord`` and every file of its run directory, atomically.

The outputs are written into a temporary sibling (``.<run name>.tmp-<random>``), which is then
renamed to the run directory; a concurrent run of the same job that lands first wins.

Besides the scores, the record says what was run: the recipe's content hash and how the resolved
recipe differs from its recipe file (``recipe_origin``), and the model's facts (``model_facts``:
parameters, GFLOPs of one forward pass at the run's input size, pretraining source, checkpoint hash).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from ..run_record import PREDICTIONS, RunRecord
from .jobs import code_version, resolve_paths

if TYPE_CHECKING:
    from .steps import Evaluation, Fitted, Prepared


def environment(device: str, precision: str, world: int, wall_s: float, samples_per_s: float) -> dict[str, Any]:
    """Where and how a run ran: git state, package versions, hardware, precision, world size, speed."""
    import torch

    sha, dirty = _git_state()
    cuda = device.startswith("cuda")
    return {
        "git_sha": sha,
        "git_dirty": dirty,
        "packages": _packages(),
        "ferbench_version": __version__,
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
    root = Path(__file__).resolve().parent.parent.parent
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


# -- what was run ----------------------------------------------------------------------------------------
def model_facts(model, spec, recipe, device: str) -> dict[str, Any]:
    """Parameter counts, GFLOPs of one batch-1 forward pass at the run's input size, pretraining source
    and the checkpoint's SHA-256 (when one was loaded)."""
    import torch

    net = getattr(model, "module", model)  # DDP
    net = getattr(net, "_orig_mod", net)  # torch.compile
    shape = [1, spec.channels, spec.size, spec.size]
    facts: dict[str, Any] = {
        "name": recipe.model.name,
        "params": int(sum(t.numel() for t in net.parameters())),
        "trainable_params": int(sum(t.numel() for t in net.parameters() if t.requires_grad)),
        "gflops": None,
        "flops_input": shape,
        "flops_counter": "torch.utils.flop_counter.FlopCounterMode (multiply-add = 2 FLOPs)",
    }
    try:
        from torch.utils.flop_counter import FlopCounterMode

        was_training = net.training
        net.eval()
        try:
            counter = FlopCounterMode(display=False)
            with torch.no_grad(), counter:
                net(torch.zeros(shape, device=device))
        finally:
            net.train(was_training)
        facts["gflops"] = round(counter.get_total_flops() / 1e9, 6)
    except Exception as exc:  # noqa: BLE001 - a model FlopCounterMode cannot trace still has a record
        facts["flops_error"] = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
    trunk = (recipe.model.kwargs or {}).get("backbone_checkpoint")  # weights loaded into a model's trunk(s)
    ckpt, cfg = recipe.model.checkpoint or trunk, getattr(net, "ferbench_cfg", None) or {}
    facts["pretrained"] = bool(recipe.model.pretrained or ckpt)
    facts["checkpoint"] = ckpt
    facts["checkpoint_sha256"] = _sha256(ckpt) if ckpt else None
    if ckpt:
        facts["pretrained_source"] = f"{'checkpoint' if recipe.model.checkpoint else 'trunk checkpoint'} {Path(ckpt).name}"
    elif recipe.model.pretrained:
        tag = getattr(net, "pretrained_cfg", None) or {}
        facts["pretrained_source"] = (tag.get("hf_hub_id") or tag.get("url") or
                                      f"{recipe.model.name} pretrained weights (local cache)")
    else:
        facts["pretrained_source"] = None
    if cfg.get("checkpoint_skipped"):
        facts["checkpoint_skipped"] = cfg["checkpoint_skipped"]
    return facts


def _sha256(path: str) -> str | None:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def recipe_origin(recipe, cwd: Path | None = None) -> dict[str, Any]:
    """The recipe file a run's recipe came from and ``{dotted key: [file value, run value]}`` for every
    key the run changed (``runtime`` left out): the file a recipe names (a ``source`` key), else
    ``recipes/**/<name>.yaml`` under the working directory or the ferbench source tree ("by name")."""
    from ..train.recipe import load_recipe

    resolved = recipe.to_dict()
    path, located = resolved.get("source"), "given"
    if not path or not Path(path).is_file():
        path, located = _find_recipe_file(recipe.name, cwd or Path.cwd()), "by name"
    if path is None:
        return {"file": None, "located": None, "overrides": None}
    try:
        original = load_recipe(path)
        resolve_paths(original)
    except Exception as exc:  # noqa: BLE001 - the file changed since or no longer validates
        return {"file": str(path), "located": located, "overrides": None,
                "overrides_error": " ".join(str(exc).split())[:300]}
    a, b = _flat(original.to_dict()), _flat(resolved)
    diff = {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k) and k.split(".")[0] not in ("runtime", "source")}
    return {"file": str(path), "located": located, "overrides": diff}


def _find_recipe_file(name: str | None, cwd: Path) -> Path | None:
    """``recipes/**/<name>.yaml`` under the working directory, else among ferbench's own recipes (the
    package's, or the source tree's); None when absent or ambiguous (several files of that name in a root)."""
    if not name:
        return None
    package = Path(__file__).resolve().parents[1]
    for root in (cwd / "recipes", package / "recipes", package.parent / "recipes"):
        hits = sorted(p for p in root.rglob(f"{name}.yaml") if "_base" not in p.parts) if root.is_dir() else []
        if hits:  # several files of that name: which one is unknown, so none is claimed
            return hits[0].resolve() if len(hits) == 1 else None
    return None


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _reported(rep: Any) -> Any:
    """The ``reported`` block as JSON: one object (one figure), a list of objects (several), or None."""
    if not rep:
        return None
    if isinstance(rep, (list, tuple)):
        return [_reported(r) for r in rep]
    return dataclasses.asdict(rep) if dataclasses.is_dataclass(rep) else dict(rep)


def make_record(p: "Prepared", scores: dict[str, Any], env: dict[str, Any],
                model: dict[str, Any] | None = None) -> RunRecord:
    """The run's result record: identity, recipe (with its origin) and protocol summary, data provenance,
    scores, environment, model facts."""
    job, recipe, spec, meta = p.job, p.recipe, p.spec, p.manifest.meta
    sources = {d["name"]: d for d in p.store.sources}
    return RunRecord(
        run_id=job.key,
        run_name=job.name,
        created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        recipe={"name": recipe.name, "hash": recipe.hash(), "model": recipe.model.name,
                "modality": recipe.input.modality, "input_size": spec.size, "channels": spec.channels,
                "pretrained": bool(recipe.model.pretrained or recipe.model.checkpoint),
                "epochs": recipe.train.epochs, "batch_size": recipe.train.batch_size,
                "input_norm": {"from": recipe.input.normalize, "mean": list(spec.mean), "std": list(spec.std)},
                "eval": {"bootstrap": recipe.eval.bootstrap, "ci": recipe.eval.ci},
                "reported": _reported(recipe.reported), **recipe_origin(recipe)},
        protocol={"name": meta["protocol"], "version": meta.get("version"), "manifest_hash": meta["content_hash"],
                  "seed": meta.get("seed"), "params": meta.get("params"), "n_folds": meta["n_folds"],
                  "n_repeats": meta["n_repeats"], "classes": meta["classes"], "leakage": meta.get("leakage"),
                  "published": bool(meta.get("published"))},
        repeat=job.repeat, fold=job.fold, seed=job.seed,
        datasets=[{**sources[d["name"]], "fingerprint": d["fingerprint"]} for d in meta["datasets"]],
        code_version=code_version(recipe.model.name),
        metrics=scores,
        environment=env,
        predictions=PREDICTIONS,
        model=model,
    )


def write_run(p: "Prepared", fitted: "Fitted", ev: "Evaluation") -> Path:
    """Write every output into a temporary sibling, then rename it to the run directory (rank 0)."""
    import pyarrow.parquet as pq

    from .. import metrics

    job, recipe, classes = p.job, p.recipe, p.classes
    env = environment(p.device, p.precision, p.world, time.perf_counter() - p.t_start,
                      fitted.result.samples_per_s) | {"channels_last": p.channels_last,
                                                       "decode": p.decode.to_json() if p.decode else None}
    record = make_record(p, ev.scores, env, model_facts(p.model, p.spec, recipe, p.device))
    tmp = job.run_dir.parent / f".{job.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        (tmp / "recipe.yaml").write_text(recipe.dump())
        pq.write_table(ev.predictions, tmp / record.predictions, compression="zstd")
        (tmp / "metrics.json").write_text(json.dumps(ev.scores, indent=2) + "\n")
        write_curves(fitted.result.curves, tmp / "curves.csv")
        title = f"{recipe.model.name} · {p.manifest.meta['protocol']} r{job.repeat} f{job.fold} s{job.seed} (test)"
        (tmp / "confusion.png").write_bytes(metrics.confusion_png(np.array(ev.scores["test"]["confusion"]), classes, title))
        write_curves_png(fitted.result.curves, tmp / "curves.png", title.replace(" (test)", ""))
        if recipe.runtime.keep_weights:
            from ..model_io import save_model

            save_model(p.model, tmp, recipe.model.name, recipe.model.kwargs, classes, p.spec)
        record.write(tmp)
        os.replace(tmp, job.run_dir)
    except OSError:
        if not job.finished():  # a concurrent run of the same job that lands first is fine
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return job.run_dir


def write_curves(rows: list[dict[str, Any]], path: Path) -> None:
    """``curves.csv``: one row per epoch, the union of the rows' keys as columns."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, keys)
        writer.writeheader()
        writer.writerows(rows)


def write_curves_png(rows: list[dict[str, Any]], path: Path, title: str = "") -> None:
    """``curves.png``: every numeric per-epoch series of the curves (losses on the left axis, the rest on the right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in dict.fromkeys(k for row in rows for k in row) if k != "epoch"
            and any(isinstance(row.get(k), (int, float)) and not isinstance(row.get(k), bool) for row in rows)]
    keys = [k for k in keys if not k.endswith(("_per_s", "seconds", "_s", "lr"))] or keys
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    right = ax.twinx()
    epochs = [row.get("epoch", i) for i, row in enumerate(rows)]
    for k in keys:
        xs = [e for e, row in zip(epochs, rows) if isinstance(row.get(k), (int, float))]
        ys = [row[k] for row in rows if isinstance(row.get(k), (int, float))]
        (ax if "loss" in k else right).plot(xs, ys, marker="o", markersize=3, label=k,
                                            linestyle="-" if "loss" in k else "--")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    right.set_ylabel("metric")
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    if handles:
        ax.legend(handles, [h.get_label() for h in handles], fontsize=7, loc="best")
    if not rows:
        ax.text(0.5, 0.5, "no curves", ha="center", va="center", transform=ax.transAxes)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
