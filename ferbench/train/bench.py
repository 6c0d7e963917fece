"""Speed of the training loop and the data loader, each measured beside a baseline in the same process.

* ``bench_loop``: seconds per epoch of the runner's ``fit`` (memory-served batches, checkpoint
  written every epoch) against a bare PyTorch loop over the same model, data, batch size,
  optimiser and precision. Goal: ratio ≤ 1.10. On a GPU (``device="cuda"``, e.g.
  ``model="timm/resnet50", size=224, batch=256, precision="bf16", channels_last=True``) the bare
  loop is the shape of timm's ``benchmark.py`` train step (channels-last input, autocast,
  forward/backward/step on resident data), so the ratio reads as runner vs timm's own figure;
  samples/s of both are in ``details``.
* ``bench_loader``: one pass of the streaming loader (PNG decoded in ``workers`` DataLoader
  workers) against decoding the same bytes in a plain loop. Goal: ratio ≤ 1.0.
* ``bench_loader_memory``: one pass of the memory-served loader (decoded once) against indexing
  a uint8 tensor directly. Goal: ratio ≤ 1.25; the one-off decode is in ``details``.

Each returns ``figure``, ``baseline`` (seconds), ``ratio`` = figure / baseline, ``goal`` and ``details``.
"""

from __future__ import annotations

import io
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import torch
from PIL import Image

from ..models import create_model
from .inputs import InputSpec, norm_tensors
from .loader import Loader
from .store import Store
from .recipe import from_dict


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _store(spec: InputSpec, n: int, color: torch.Tensor | None = None, color_bytes: pa.Array | None = None,
           classes: int = 7, seed: int = 0) -> Store:
    labels = np.random.default_rng(seed).integers(0, classes, n)
    return Store(spec, [f"bench/{i:06d}" for i in range(n)], ["bench"] * n, [None] * n, labels, color_bytes, None,
                 np.ones(n), [], color=color)


def _images(n: int, size: int, seed: int = 0) -> list[np.ndarray]:
    """Face-sized pictures: smooth gradients plus noise (PNG of realistic size, not pure noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    out = []
    for _ in range(n):
        a, b = rng.uniform(30, 220, 3), rng.uniform(30, 220, 3)
        img = a + (b - a) * (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1))[..., None] + rng.normal(0, 8, (size, size, 3))
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def _median_time(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_loop(model: str = "tiny_cnn", n: int = 1024, size: int = 64, batch: int = 64, epochs: int = 3,
               device: str = "cpu", precision: str = "fp32", channels_last: bool = False, classes: int = 7) -> dict[str, Any]:
    """Runner ``fit`` vs a bare PyTorch loop, seconds per epoch (median of ``epochs``, after a warm-up epoch)."""
    dev = torch.device(device)
    spec = InputSpec("rgb", size, 3, (0.5,) * 3, (0.25,) * 3)
    data = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (n, 3, size, size), dtype=np.uint8)).to(dev)
    store = _store(spec, n, color=data, classes=classes)
    recipe = from_dict({
        "protocol": {"manifest": "bench"}, "model": {"name": model}, "scheduler": {"name": "constant"},
        "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.05},
        "train": {"epochs": 1, "batch_size": batch, "precision": precision, "channels_last": channels_last},
    })

    def make_model() -> torch.nn.Module:
        torch.manual_seed(0)
        return create_model(model, classes, 3).to(dev)

    def runner_epoch(net: torch.nn.Module, ckpt: Path) -> None:
        from .loop import fit

        loader = Loader(store, np.arange(n), batch, train=True, sampler=lambda rng: rng.permutation(n), device=dev)
        fit(net, loader, None, spec, recipe, torch.nn.CrossEntropyLoss(), [], ckpt, seed=0, n_classes=classes, progress=False)

    labels = torch.from_numpy(store.labels).to(dev)
    mean, std = norm_tensors(spec, dev)

    def bare_epoch(net: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
        net.train()
        order = torch.randperm(n, device=dev)
        for i in range(0, n - batch + 1, batch):
            idx = order[i:i + batch]
            x = (data[idx].float() / 255 - mean) / std
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(dev.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16,
                                enabled=precision != "fp32"):
                loss = torch.nn.functional.cross_entropy(net(x).float(), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _sync(dev)

    net_r = make_model()
    net_b = make_model()
    if channels_last:
        net_b = net_b.to(memory_format=torch.channels_last)
    from .optim import adamw

    opt_b = adamw(net_b, lr=1e-3, weight_decay=0.05)
    with tempfile.TemporaryDirectory() as tmp:
        runs = [0]

        def runner_once() -> None:  # a fresh checkpoint dir each time, so fit never resumes
            runs[0] += 1
            runner_epoch(net_r, Path(tmp) / f"c{runs[0]}")
            _sync(dev)

        runner_once()
        bare_epoch(net_b, opt_b)  # warm-up
        t_runner, t_bare = [], []
        for _ in range(epochs):  # interleaved, so drifting machine load hits both alike
            t_runner.append(_median_time(runner_once, 1))
            t_bare.append(_median_time(lambda: bare_epoch(net_b, opt_b), 1))
    fig, base = statistics.median(t_runner), statistics.median(t_bare)
    steps = n // batch * batch
    return {
        "figure": fig, "baseline": base, "ratio": fig / base, "goal": 1.10,
        "details": {
            "figure": "seconds per epoch of ferbench.train.loop.fit (memory-served batches, checkpoint each epoch)",
            "baseline": "seconds per epoch of a bare PyTorch loop (same model, data, batch, AdamW, precision)",
            "model": model, "samples": n, "size": size, "batch": batch, "device": str(dev), "precision": precision,
            "channels_last": channels_last, "threads": torch.get_num_threads(),
            "runner_samples_per_s": round(steps / fig, 1), "bare_samples_per_s": round(steps / base, 1),
        },
    }


def _pass(loader: Loader) -> int:
    seen = 0
    for batch in loader:
        seen += batch.label.shape[0]
    return seen


def bench_loader(n: int = 4096, size: int = 64, batch: int = 64, workers: int = 2) -> dict[str, Any]:
    """Streaming loader (PNG decoded in workers) vs a plain decode loop over the same bytes, seconds per pass."""
    blobs = [_png(p) for p in _images(n, size)]
    spec = InputSpec("rgb", size, 3, (0.5,) * 3, (0.25,) * 3)
    store = _store(spec, n, color_bytes=pa.array(blobs, pa.binary()))
    loader = Loader(store, np.arange(n), batch, train=False, workers=workers)
    _pass(loader)  # start the persistent workers
    t_loader = _median_time(lambda: _pass(loader), 3)
    t_decode = _median_time(lambda: [np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in blobs], 3)
    return {
        "figure": t_loader, "baseline": t_decode, "ratio": t_loader / t_decode, "goal": 1.0,
        "details": {
            "figure": f"seconds for one pass of the streaming loader ({workers} workers, batch {batch})",
            "baseline": "seconds to decode the same PNG bytes in a plain loop (one process)",
            "samples": n, "size": size, "loader_samples_per_s": round(n / t_loader), "decode_samples_per_s": round(n / t_decode),
        },
    }


def bench_loader_memory(n: int = 4096, size: int = 64, batch: int = 64, workers: int = 2) -> dict[str, Any]:
    """Memory-served loader (decoded once) vs indexing a uint8 tensor, seconds per shuffled pass."""
    blobs = [_png(p) for p in _images(n, size)]
    spec = InputSpec("rgb", size, 3, (0.5,) * 3, (0.25,) * 3)
    store = _store(spec, n, color_bytes=pa.array(blobs, pa.binary()))
    t0 = time.perf_counter()
    store.decode_all(workers)
    t_decode_once = time.perf_counter() - t0
    loader = Loader(store, np.arange(n), batch, train=True, sampler=lambda rng: rng.permutation(n))
    array, labels = store.color.clone(), torch.from_numpy(store.labels)

    def bare() -> None:
        order = torch.randperm(n)
        for i in range(0, n - batch + 1, batch):
            idx = order[i:i + batch]
            array.index_select(0, idx), labels.index_select(0, idx)

    passes = 20  # one pass takes milliseconds: time many
    t_loader = _median_time(lambda: [_pass(loader) for _ in range(passes)], 5) / passes
    t_array = _median_time(lambda: [bare() for _ in range(passes)], 5) / passes
    return {
        "figure": t_loader, "baseline": t_array, "ratio": t_loader / t_array, "goal": 1.25,
        "details": {
            "figure": "seconds for one shuffled pass of the memory-served loader",
            "baseline": "seconds for one shuffled pass indexing the same uint8 tensor directly",
            "samples": n, "size": size, "decode_once_s": round(t_decode_once, 3),
            "loader_samples_per_s": round(n / t_loader), "array_samples_per_s": round(n / t_array),
        },
    }
