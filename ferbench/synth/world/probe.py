"""How learnable the world's labels are: a tiny linear/MLP model on pixels across held-out subjects."""

from __future__ import annotations

import time

import numpy as np

from .sampling import sample_world
from .subjects import make_subjects

def learnability_probe(
    n_subjects: int = 40,
    held_out: int = 10,
    size: int = 32,
    seed: int = 0,
    hidden: int = 0,
    epochs: int = 300,
    **world,
) -> dict:
    """Balanced accuracy of a tiny softmax (``hidden`` = 0) or one-hidden-layer MLP on flattened
    grayscale ``size``-px images (rendered at 2× and area-averaged), trained on all but the last
    ``held_out`` subjects and tested on those; ``world`` goes to ``sample_world``. Returns figures
    and timings (full-batch AdamW, deterministic per seed).
    """
    import torch

    from ...metrics import confusion, scores

    start = time.perf_counter()
    samples = list(sample_world(make_subjects(n_subjects, seed), size=2 * size, seed=seed, **world))
    render_s = time.perf_counter() - start
    gray = np.stack([s.rgb.mean(-1).reshape(size, 2, size, 2).mean((1, 3)).ravel() / 255 for s in samples])
    y = np.array([s.label for s in samples])
    test = np.array([s.subject.id >= n_subjects - held_out for s in samples])
    x = torch.tensor((gray - gray[~test].mean(0)) / (gray[~test].std(0) + 1e-3), dtype=torch.float32)
    n_cls = int(y.max()) + 1
    torch.manual_seed(seed)
    width = hidden or n_cls
    head = [torch.nn.ReLU(), torch.nn.Linear(hidden, n_cls)] if hidden else []
    model = torch.nn.Sequential(torch.nn.Linear(x.shape[1], width), *head)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    x_train, y_train = x[~test], torch.tensor(y[~test])
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x_train), y_train).backward()
        opt.step()
    with torch.no_grad():
        pred = model(x[test]).argmax(1).numpy()
    majority = np.full(test.sum(), np.bincount(y[~test]).argmax())
    return {
        "balanced_accuracy": float(scores(confusion(y[test], pred, n_cls))["balanced_accuracy"]),
        "majority_baseline": float(scores(confusion(y[test], majority, n_cls))["balanced_accuracy"]),
        "n_train": int((~test).sum()),
        "n_test": int(test.sum()),
        "images_per_s": round(len(samples) / render_s, 1),
        "total_s": round(time.perf_counter() - start, 2),
    }
