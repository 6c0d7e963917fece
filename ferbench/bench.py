"""Speed benchmarks: every figure is measured next to a baseline in the same run and given as a ratio.

A benchmark is a function returning a dict with ``figure`` and ``baseline`` (both seconds),
``ratio`` = figure / baseline, ``goal`` (the ratio it should not exceed) and ``details``. It is
registered in ``BENCHMARKS`` (name → function) with its small test sizes in ``QUICK``;
``ferbench bench`` runs them and writes ``bench.json`` and ``bench.md``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .synth.raw.affectnet import Sample, write_small


# -- synthetic AffectNet-small tree -------------------------------------------------------------
def _face_bases(rng: np.random.Generator, size: int, count: int) -> list[np.ndarray]:
    """Smooth face-like pictures (int16): a gradient background, a skin ellipse, dark eyes and mouth."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    bases = []
    for _ in range(count):
        c0, c1 = rng.uniform(40, 200, 3), rng.uniform(40, 200, 3)
        img = c0 + (c1 - c0) * (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1))[..., None]
        cx, cy = rng.uniform(0.4, 0.6, 2)
        rx, ry = rng.uniform(0.25, 0.35), rng.uniform(0.32, 0.45)
        blobs = [(cx, cy, rx, ry, rng.uniform([150, 100, 80], [240, 190, 160]))]  # skin
        for dx, dy, r in ((-0.4, -0.25, 0.04), (0.4, -0.25, 0.04), (0.0, 0.5, 0.07)):  # eyes, mouth
            blobs.append((cx + dx * rx, cy + dy * ry, r, r / 1.8, np.array([40.0, 30.0, 30.0])))
        for bx, by, sx, sy, colour in blobs:
            mask = np.clip((1 - ((xx - bx) / sx) ** 2 - ((yy - by) / sy) ** 2) * 4, 0, 1)[..., None]
            img = img * (1 - mask) + colour * mask
        bases.append(img.astype(np.int16))
    return bases


def affectnet_small_samples(n: int, size: int = 224, seed: int = 0) -> Iterator[Sample]:
    """``n`` deterministic AffectNet-small samples: face-like pictures plus noise (≈10-25 kB as
    JPEG quality 90 at 224×224), random labels 0-7, valence/arousal and 68 landmarks; ids are
    non-contiguous and the two splits share ids, like the real release."""
    rng = np.random.default_rng(seed)
    bases = _face_bases(rng, size, 32)
    noise = [(rng.normal(0, 1, (2 * size, 2 * size, 3)) * s).astype(np.int16) for s in (6, 9, 12)]
    n_val = max(1, n // 10)
    for i in range(n):
        base = bases[rng.integers(len(bases))]
        oy, ox = rng.integers(0, size, 2)
        pixels = np.clip(base + noise[i % 3][oy : oy + size, ox : ox + size] + rng.integers(-20, 20), 0, 255)
        split, k = ("val", i - (n - n_val)) if i >= n - n_val else ("train", i)
        yield Sample(
            split=split,
            name=str(k * 3 // 2),
            image=pixels.astype(np.uint8),
            expression=int(rng.integers(8)),
            valence=float(rng.uniform(-1, 1)),
            arousal=float(rng.uniform(-1, 1)),
            landmarks=rng.uniform(0, size, (68, 2)),
        )


def _tree_files(root: Path) -> list[str]:
    return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files]


def read_and_hash(root: Path) -> tuple[int, int]:
    """The baseline: list a tree, read every file and sha256 it (files, bytes)."""
    files, nbytes = 0, 0
    for path in _tree_files(root):
        with open(path, "rb") as fh:
            data = fh.read()
        hashlib.sha256(data).digest()
        files, nbytes = files + 1, nbytes + len(data)
    return files, nbytes


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process and its finished children, result)."""
    t0, c0 = time.perf_counter(), _cpu()
    value = fn()
    return time.perf_counter() - t0, _cpu() - c0, value


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@contextlib.contextmanager
def _workdir(workdir: str | Path | None) -> Iterator[Path]:
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
        yield Path(workdir)
        return
    tmp = Path(tempfile.mkdtemp(prefix="ferbench-bench-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- benchmarks ---------------------------------------------------------------------------------
def bench_convert(
    n: int = 20000, size: int = 224, workers: int | None = None, workdir: str | Path | None = None, repeat: int = 3
) -> dict[str, Any]:
    """``ferbench convert affectnet`` of an AffectNet-small tree of ``n`` JPEGs (+ 4 npy files each)
    against listing, reading and hashing every file of that tree. Both run on a warm page cache
    (the baseline once untimed first) and each figure is the best of ``repeat`` runs: on a
    virtual machine, memory touched for the first time costs far more than memory reused."""
    from .build import BUILD_REPORT
    from .cli import main

    with _workdir(workdir) as wd:
        raw, out = wd / "affectnet-small", wd / "affectnet-converted"
        shutil.rmtree(raw, ignore_errors=True)
        write_small(raw, affectnet_small_samples(n, size))
        read_and_hash(raw)  # warm the page cache
        argv = ["convert", "affectnet", str(raw), "--out", str(out), "--overwrite"]
        argv += ["--workers", str(workers)] if workers else []
        base_runs, conv_runs = [], []
        for _ in range(repeat):
            *seconds, (files, nbytes) = _timed(lambda: read_and_hash(raw))
            base_runs.append(seconds)
            with contextlib.redirect_stdout(io.StringIO()):
                *seconds, code = _timed(lambda: main(argv))
            if code:
                raise RuntimeError(f"ferbench {' '.join(argv)} exited with {code}")
            conv_runs.append(seconds)
        build = json.loads((out / BUILD_REPORT).read_text())
    (figure, conv_cpu), (baseline, base_cpu) = min(conv_runs), min(base_runs)
    return {
        "figure": figure,
        "baseline": baseline,
        "ratio": figure / baseline,
        "goal": 1.5,
        "details": {
            "figure": f"seconds of `ferbench convert affectnet` in-process, workers={build['workers']}, best of {repeat}",
            "baseline": f"seconds to list the tree, read and sha256 every file in one process, best of {repeat}",
            "runs_seconds": {"convert": [round(t, 3) for t, _ in conv_runs], "baseline": [round(t, 3) for t, _ in base_runs]},
            "cpu_seconds_of_best": {"convert": round(conv_cpu, 3), "baseline": round(base_cpu, 3)},
            "convert_scan_seconds": build["seconds"]["scan"],
            "images": n,
            "image_size": size,
            "files": files,
            "megabytes": round(nbytes / 1e6, 1),
            "rows": build["num_rows"],
            "cpus": os.cpu_count(),
        },
    }


#: name → benchmark function (one line per benchmark).
BENCHMARKS: dict[str, Callable[..., dict[str, Any]]] = {"convert": bench_convert}
#: name → keyword arguments for ``--quick`` (test-sized runs).
QUICK: dict[str, dict[str, Any]] = {"convert": {"n": 300, "size": 64, "repeat": 1}}
