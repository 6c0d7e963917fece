"""Exact evaluation under any world size, and the predictions table a run writes.

Each rank predicts a contiguous block of the samples (no padding, no duplicates); the blocks are
gathered in rank order, so every rank ends with the logits of every sample in manifest order,
identical to a single-process run.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import torch
import torch.distributed as dist

from .inputs import InputSpec, norm_tensors, to_input
from .loader import Loader
from .store import Store


def autocast(device: torch.device, precision: str):
    """The autocast context of a precision ("fp32" = none)."""
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


@torch.no_grad()
def predict(model: torch.nn.Module, loader: Loader, spec: InputSpec, *, precision: str = "fp32",
            channels_last: bool = False) -> np.ndarray:
    """Float32 logits (N, C) of ``loader.indices`` in order, gathered over ranks."""
    was_training = model.training
    model.eval()
    mean, std = norm_tensors(spec, loader.device)
    chunks = []
    with autocast(loader.device, precision):
        for batch in loader:
            x = to_input(batch, spec, mean, std, channels_last=channels_last)
            chunks.append(model(x).float().cpu())
    model.train(was_training)
    local = torch.cat(chunks).numpy() if chunks else np.zeros((0, 0), np.float32)
    if loader.world == 1:
        return local
    parts: list[Any] = [None] * loader.world
    dist.all_gather_object(parts, local)
    return np.concatenate([p for p in parts if len(p)])


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def nll(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of logits against labels."""
    z = logits - logits.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    return float(-logp[np.arange(len(labels)), labels].mean())


def predictions_table(store: Store, indices: np.ndarray, logits: np.ndarray, *, role: str, repeat: int, fold: int,
                      seed: int, classes: Sequence[str]) -> pa.Table:
    """One row per sample: ids, fold, seed, true and predicted label, class probabilities (float32 list)."""
    probs = softmax(logits).astype(np.float32)
    n = len(indices)
    table = pa.table({
        "sample_id": pa.array([store.sample_ids[i] for i in indices], pa.string()),
        "dataset": pa.array([store.datasets[i] for i in indices], pa.string()),
        "subject_id": pa.array([store.subjects[i] for i in indices], pa.string()),
        "role": pa.array([role] * n, pa.string()),
        "repeat": pa.array(np.full(n, repeat, np.int16)),
        "fold": pa.array(np.full(n, fold, np.int16)),
        "seed": pa.array(np.full(n, seed, np.int64)),
        "label": pa.array(store.labels[indices].astype(np.int8)),
        "pred": pa.array(probs.argmax(1).astype(np.int8)),
        "probs": pa.FixedSizeListArray.from_arrays(pa.array(probs.reshape(-1)), len(classes)),
    })
    return table.replace_schema_metadata({b"ferbench_classes": json.dumps(list(classes)).encode()})
