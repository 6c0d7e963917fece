"""Writing a finished job: its ``RunRecord`` and every file of its run directory, atomically.

The outputs are written into a temporary sibling (``.<run name>.tmp-<random>``), which is then
renamed to the run directory; a concurrent run of the same job that lands first wins.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
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

from ..run_record import PREDICTIONS, RunRecord
from .jobs import code_version

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


def make_record(p: "Prepared", scores: dict[str, Any], env: dict[str, Any]) -> RunRecord:
    """The run's result record: identity, recipe and protocol summary, data provenance, scores, environment."""
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
                "reported": dataclasses.asdict(recipe.reported) if recipe.reported else None},
        protocol={"name": meta["protocol"], "version": meta.get("version"), "manifest_hash": meta["content_hash"],
                  "seed": meta.get("seed"), "params": meta.get("params"), "n_folds": meta["n_folds"],
                  "n_repeats": meta["n_repeats"], "classes": meta["classes"], "leakage": meta.get("leakage")},
        repeat=job.repeat, fold=job.fold, seed=job.seed,
        datasets=[{**sources[d["name"]], "fingerprint": d["fingerprint"]} for d in meta["datasets"]],
        code_version=code_version(recipe.model.name),
        metrics=scores,
        environment=env,
        predictions=PREDICTIONS,
    )


def write_run(p: "Prepared", fitted: "Fitted", ev: "Evaluation") -> Path:
    """Write every output into a temporary sibling, then rename it to the run directory (rank 0)."""
    import pyarrow.parquet as pq
    import torch

    from .. import metrics

    job, recipe, classes = p.job, p.recipe, p.classes
    env = environment(p.device, recipe.train.precision, p.world, time.perf_counter() - p.t_start,
                      fitted.result.samples_per_s)
    record = make_record(p, ev.scores, env)
    tmp = job.run_dir.parent / f".{job.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        (tmp / "recipe.yaml").write_text(recipe.dump())
        pq.write_table(ev.predictions, tmp / record.predictions, compression="zstd")
        (tmp / "metrics.json").write_text(json.dumps(ev.scores, indent=2) + "\n")
        write_curves(fitted.result.curves, tmp / "curves.csv")
        title = f"{recipe.model.name} · {p.manifest.meta['protocol']} r{job.repeat} f{job.fold} s{job.seed} (test)"
        (tmp / "confusion.png").write_bytes(metrics.confusion_png(np.array(ev.scores["test"]["confusion"]), classes, title))
        if recipe.runtime.keep_weights:
            torch.save(p.model.state_dict(), tmp / "model.pt")
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
