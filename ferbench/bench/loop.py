"""Training-loop speed: seconds per epoch of the runner's ``fit`` (``ferbench.train.loop``:
memory-served batches, checkpoint written every epoch) beside a bare PyTorch loop over the same
model, data, batch size, optimiser and precision. The bare loop has the shape of timm's
``benchmark.py`` train step (channels-last input when asked, autocast, forward / backward / step on
resident data), so on a GPU the ratio reads as the runner against timm's own figure.

* ``loop`` — CPU, a small model (test-sized by default). Goal: ≥ 0.95× the bare loop's samples/s,
  i.e. ratio ≤ 1.05.
* ``loop_cuda_resnet50``, ``loop_cuda_vit_b16`` (``ferbench bench --device cuda``) — timm models at
  224², bf16 autocast, channels-last; samples/s of both loops are in the notes. Goal: ≥ 0.95×
  the bare loop's samples/s, i.e. ratio ≤ 1.05.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..devices import synchronize
from .base import BenchResult, benchmark, compared, measure


def one_epoch_recipe(model: str, batch: int, precision: str, channels_last: bool) -> Any:
    """The recipe the runner trains with in a speed benchmark: one epoch, AdamW, constant rate."""
    from ..train.recipe import from_dict

    return from_dict({
        "protocol": {"manifest": "bench"}, "model": {"name": model}, "scheduler": {"name": "constant"},
        "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.05},
        "train": {"epochs": 1, "batch_size": batch, "precision": precision, "channels_last": channels_last},
    })


def fit_epoch(net: Any, make_loader: Callable[[], Any], spec: Any, recipe: Any, classes: int,
              tmp: Path) -> Callable[[], None]:
    """A function running one epoch of the runner's ``fit`` over a new loader from ``make_loader``,
    each time into a fresh checkpoint folder under ``tmp`` (so ``fit`` never resumes)."""
    import torch

    from ..train.loop import fit

    runs = [0]

    def epoch() -> None:
        runs[0] += 1
        loader = make_loader()
        fit(net, loader, None, spec, recipe, torch.nn.CrossEntropyLoss(), [], tmp / f"c{runs[0]}", seed=0,
            n_classes=classes, progress=False)
        synchronize(loader.device)

    return epoch


@benchmark("loop", quick={"n": 128, "size": 32, "batch": 32, "epochs": 1})
def bench_loop(model: str = "tiny_cnn", n: int = 1024, size: int = 64, batch: int = 64, epochs: int = 3,
               device: str = "cpu", precision: str = "fp32", channels_last: bool = False, classes: int = 7,
               goal: float = 1.05) -> BenchResult:
    """Runner ``fit`` vs a bare PyTorch loop, seconds per epoch (median of ``epochs``, after a warm-up epoch)."""
    import torch

    from ..models import create_model
    from ..train.inputs import InputSpec, norm_tensors
    from ..train.loader import Loader
    from ..train.optim import adamw
    from ..train.store import Store

    dev = torch.device(device)
    spec = InputSpec("rgb", size, 3, (0.5,) * 3, (0.25,) * 3)
    data = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (n, 3, size, size), dtype=np.uint8)).to(dev)
    labels_np = np.random.default_rng(0).integers(0, classes, n)
    store = Store(spec=spec, sample_ids=[f"bench/{i:06d}" for i in range(n)], datasets=["bench"] * n, subjects=[None] * n,
                  labels=labels_np, color_bytes=None, depth_bytes=None, depth_unit=np.ones(n), sources=[], color=data)
    recipe = one_epoch_recipe(model, batch, precision, channels_last)

    def make_model() -> torch.nn.Module:
        torch.manual_seed(0)
        return create_model(model, classes, 3).to(dev)

    labels = torch.from_numpy(labels_np).to(dev)
    mean, std = norm_tensors(spec, dev)
    net_r, net_b = make_model(), make_model()
    if channels_last:
        net_b = net_b.to(memory_format=torch.channels_last)
    opt_b = adamw(net_b, lr=1e-3, weight_decay=0.05)

    def bare_epoch() -> None:
        net_b.train()
        order = torch.randperm(n, device=dev)
        for i in range(0, n - batch + 1, batch):
            idx = order[i:i + batch]
            x = (data[idx].float() / 255 - mean) / std
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(dev.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16,
                                enabled=precision != "fp32"):
                loss = torch.nn.functional.cross_entropy(net_b(x).float(), labels[idx])
            opt_b.zero_grad(set_to_none=True)
            loss.backward()
            opt_b.step()
        synchronize(dev)

    with tempfile.TemporaryDirectory(prefix="ferbench-bench-") as tmp:
        runner_epoch = fit_epoch(net_r, lambda: Loader(store, np.arange(n), batch, train=True,
                                                       sampler=lambda rng: rng.permutation(n), device=dev),
                                 spec, recipe, classes, Path(tmp))
        t = measure({"ferbench": runner_epoch, "bare": bare_epoch}, repeat=epochs, warmup=1)
    fig, base = t["ferbench"].median, t["bare"].median
    steps = n // batch * batch
    return BenchResult(
        figure=fig,
        what="seconds per epoch of ferbench.train.loop.fit (memory-served batches, checkpoint each epoch)",
        baseline=compared("bare PyTorch loop (timm benchmark.py train step)", "baseline", t["bare"], stat="median"),
        goal=goal,
        notes={
            "model": model, "samples": n, "size": size, "batch": batch, "device": str(dev), "precision": precision,
            "channels_last": channels_last, "threads": torch.get_num_threads(),
            "runner_samples_per_s": round(steps / fig, 1), "bare_samples_per_s": round(steps / base, 1),
            "statistic": f"median of {epochs} epochs, round-robin, after one warm-up epoch each",
        },
    )


for _tag, _model, _batch in (("resnet50", "timm/resnet50", 256), ("vit_b16", "timm/vit_base_patch16_224", 128)):
    benchmark(
        f"loop_cuda_{_tag}", gpu=True, quick={"n": _batch * 4, "epochs": 1},
        model=_model, size=224, batch=_batch, n=_batch * 20, epochs=3, device="cuda", precision="bf16",
        channels_last=True, goal=1.05,
    )(bench_loop)
