"""Whether the data path keeps the accelerator busy: the runner training on images streamed from a
converted dataset, beside the same training on images already decoded in device memory.

``loader_cuda_resnet50`` (``ferbench bench --device cuda``): timm ResNet-50 at 224², bf16 autocast,
channels-last, batch 256, on a RAF-DB-layout tree of 224² JPEGs converted by ferbench (untimed).

* ferbench's figure: one epoch of ``fit`` with the streaming loader, decoding where
  ``data.decode: auto`` decides (``ferbench.train.throughput.choose_decode``, from the model's
  measured training rate and the CPU workers' decode rate);
* the baseline: the same epoch with every image decoded once into device memory beforehand (no
  loading cost at all). Goal: ratio ≤ 1.05, i.e. loading costs training at most 5 %;
* notes: samples/s of the model alone (``model_rate``), of the loader alone with CPU decoding and
  with GPU decoding (batches on the device, no model), and the decode choice with its reason. A
  loader that never starves the GPU delivers more samples/s alone than the model consumes.

The function takes ``device``, ``model`` and sizes, so the test suite runs it on the CPU with a tiny
model (there ``auto`` stays on the CPU and the GPU-decode pass is skipped).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..devices import synchronize
from .base import BenchResult, benchmark, compared, measure, usable_cpus, workdir
from .inputs import write_rafdb_kaggle
from .loader import converted_store
from .loop import fit_epoch, one_epoch_recipe


def bench_feed(model: str = "timm/resnet50", n: int = 6144, size: int = 224, batch: int = 256, workers: int | None = None,
               device: str = "cuda", precision: str = "bf16", channels_last: bool = True, epochs: int = 2,
               classes: int = 7, scratch: str | Path | None = None) -> BenchResult:
    """Runner epoch on streamed JPEGs vs the same epoch on images decoded in device memory."""
    import torch

    from ..build import convert
    from ..models import create_model
    from ..train.device_decode import gpu_decode_unavailable
    from ..train.loader import Loader
    from ..train.throughput import choose_decode, model_rate

    dev, workers = torch.device(device), workers or usable_cpus()
    with workdir(scratch) as wd:
        write_rafdb_kaggle(wd / "raw", n, size, test_fraction=0.0)
        convert("rafdb", wd / "raw", wd / "converted", workers=workers, progress=False)
        streamed = converted_store(wd / "converted", 3, size)
        memory = dataclasses.replace(streamed)
        memory.decode_all(workers, dev)
        spec, n = streamed.spec, len(streamed)
        recipe = one_epoch_recipe(model, batch, precision, channels_last)
        torch.manual_seed(0)
        net = create_model(model, classes, 3).to(dev)
        model_per_s = model_rate(net, spec, batch, dev, precision, channels_last)
        choice = choose_decode("auto", streamed, dev, workers, lambda: model_per_s)

        def loader(store: Any, decode: str = "cpu") -> Any:
            return Loader(store, np.arange(n), batch, train=True, sampler=lambda rng: rng.permutation(n), device=dev,
                          workers=0 if store.cached or decode == "gpu" else workers, decode=decode)

        loaders = {"cpu": loader(streamed)}
        if gpu_decode_unavailable(streamed, dev) is None:
            loaders["gpu"] = loader(streamed, "gpu")
        train_streamed, train_memory = loaders[choice.used], loader(memory)
        with tempfile.TemporaryDirectory(prefix="ferbench-bench-") as tmp:
            fns = {
                "ferbench": fit_epoch(net, lambda: train_streamed, spec, recipe, classes, Path(tmp) / "s"),
                "memory": fit_epoch(net, lambda: train_memory, spec, recipe, classes, Path(tmp) / "m"),
                **{f"loader_{k}": (lambda ld=ld: _drain(ld)) for k, ld in loaders.items()},
            }
            t = measure(fns, repeat=epochs, warmup=1)
    steps = n // batch * batch
    per_s = {k: round(steps / v.median, 1) for k, v in t.items()}
    return BenchResult(
        figure=t["ferbench"].median,
        what=f"seconds per epoch of fit on streamed JPEGs (decode: {choice.used}), {workers} workers",
        baseline=compared("the same epoch on images decoded in device memory beforehand", "baseline", t["memory"],
                          stat="median"),
        goal=1.05,
        notes={
            "model": model, "samples": n, "size": size, "batch": batch, "device": str(dev), "precision": precision,
            "channels_last": channels_last, "workers": workers, "decode": choice.to_json(),
            "model_samples_per_s": round(model_per_s, 1), "samples_per_s": per_s,
            "statistic": f"median of {epochs} epochs, round-robin, after one warm-up epoch each",
        },
    )


def _drain(loader: Any) -> int:
    """One pass of a loader with every batch on its device, nothing else done; returns samples."""
    seen = 0
    for batch in loader:
        seen += batch.label.shape[0]
    synchronize(loader.device)
    return seen


benchmark("loader_cuda_resnet50", gpu=True, quick={"n": 1024, "epochs": 1})(bench_feed)
