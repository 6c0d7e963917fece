"""How fast the model trains and how fast the CPU decodes, measured in place, and where to decode.

``choose_decode`` settles ``data.decode`` for a run: ``cpu`` (loader workers, Pillow) or ``gpu``
(``ferbench.train.device_decode``). ``auto`` picks ``gpu`` only where it can run (CUDA, colour-only
input, every image a JPEG, streamed rather than cached) and the CPU cannot keep up: the workers'
decode rate (one worker's rate on a sample of the store, times the workers) is below
``HEADROOM`` times the rate the model consumes samples (``model_rate``: forward and backward of a
copy of the model on a batch of the input's shape, at the run's precision and memory format). The
choice, its reason and both rates are recorded in the run's environment.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from ..devices import synchronize
from ..errors import FerbenchError
from .device_decode import gpu_decode_unavailable

if TYPE_CHECKING:
    from .inputs import InputSpec
    from .store import Store

HEADROOM = 1.2  # CPU decoding must supply this many times what the model consumes to stay on the CPU
DECODE_CHOICES = ("auto", "cpu", "gpu")


@dataclass(frozen=True)
class DecodeChoice:
    """Where a run decodes its images, and why."""

    asked: str
    used: str  # "cpu" or "gpu"
    why: str
    cpu_decode_per_s: float | None = None  # every loader worker together (estimate)
    model_per_s: float | None = None  # training samples the model consumes per second

    def to_json(self) -> dict[str, Any]:
        return {k: round(v, 1) if isinstance(v, float) else v for k, v in asdict(self).items()}


def choose_decode(asked: str, store: "Store", device: torch.device | str, workers: int,
                  model_per_s: Callable[[], float]) -> DecodeChoice:
    """``data.decode`` resolved for this store and device; ``model_per_s`` is called only when
    ``auto`` has to compare (it trains a copy of the model for a few steps)."""
    if asked not in DECODE_CHOICES:
        raise FerbenchError(f"data.decode: {asked!r} is not one of {', '.join(DECODE_CHOICES)}")
    if asked == "cpu":
        return DecodeChoice(asked, "cpu", "asked")
    unavailable = gpu_decode_unavailable(store, device)
    if asked == "gpu":
        if unavailable:
            stream = "; or data.cache: stream, which decodes every epoch" if store.cached else ""
            raise FerbenchError(f"data.decode: gpu cannot be used here: {unavailable} (hint: data.decode: auto or cpu{stream})")
        return DecodeChoice(asked, "gpu", "asked")
    if unavailable:
        return DecodeChoice(asked, "cpu", unavailable)
    supply, demand = cpu_decode_rate(store, workers), model_per_s()
    if supply < HEADROOM * demand:
        why = f"{workers} CPU worker(s) decode about {supply:.0f}/s, below {HEADROOM}x the {demand:.0f}/s the model trains on"
        return DecodeChoice(asked, "gpu", why, supply, demand)
    why = f"{workers} CPU worker(s) decode about {supply:.0f}/s, at least {HEADROOM}x the {demand:.0f}/s the model trains on"
    return DecodeChoice(asked, "cpu", why, supply, demand)


def cpu_decode_rate(store: "Store", workers: int, samples: int = 128) -> float:
    """Samples/s ``workers`` loader workers decode, estimated from one process decoding up to
    ``samples`` rows spread over the store (after one untimed row)."""
    n = len(store)
    rows = np.unique(np.linspace(0, n - 1, min(samples, n)).astype(np.int64))
    store.decode_batch(rows[:1])
    t0 = time.perf_counter()
    store.decode_batch(rows)
    return max(1, workers) * len(rows) / max(time.perf_counter() - t0, 1e-9)


def model_rate(model: torch.nn.Module, spec: "InputSpec", batch: int, device: torch.device | str, precision: str,
               channels_last: bool, steps: int = 3, warmup: int = 2) -> float:
    """Samples/s of forward + backward on a copy of ``model`` (the model itself is not touched:
    no gradient, statistic or weight of it changes) with random input of the run's shape."""
    device = torch.device(device)
    net = copy.deepcopy(model).to(device).train()
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    x = torch.randn(batch, spec.channels, spec.size, spec.size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    try:
        for step in range(warmup + steps):
            if step == warmup:
                synchronize(device)
                t0 = time.perf_counter()
            with torch.autocast(device.type, dtype=dtype, enabled=precision in ("bf16", "fp16")):
                out = net(x)
            if out.requires_grad:  # a model frozen whole still runs its forward
                out.float().mean().backward()
            net.zero_grad(set_to_none=True)
        synchronize(device)
        return steps * batch / max(time.perf_counter() - t0, 1e-9)
    finally:
        del net
