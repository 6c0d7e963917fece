"""Speed benchmarks: every figure is measured next to a baseline in the same run and given as a ratio.

A benchmark is a function returning a dict with ``figure`` and ``baseline`` (both seconds),
``ratio`` = figure / baseline, ``goal`` (the ratio it should not exceed) and ``details``. It is
registered in ``BENCHMARKS`` (name → function) with its small test sizes in ``QUICK``;
``ferbench bench`` runs them and writes ``bench.json`` and ``bench.md``.
"""

from __future__ import annotations

import contextlib
import functools
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

from .datasets.affectnet.layout import Sample, write_small


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
    return _read_and_hash_files(_tree_files(root))


def _read_and_hash_files(paths: list[str]) -> tuple[int, int]:
    files, nbytes = 0, 0
    for path in paths:
        with open(path, "rb") as fh:
            data = fh.read()
        hashlib.sha256(data).digest()
        files, nbytes = files + 1, nbytes + len(data)
    return files, nbytes


def read_and_hash_parallel(root: Path, processes: int) -> tuple[int, int]:
    """The same work spread over ``processes`` processes (every ``processes``-th file each)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    paths = _tree_files(root)
    with ProcessPoolExecutor(processes, mp_context=mp.get_context("fork")) as pool:
        counts = list(pool.map(_read_and_hash_files, [paths[i::processes] for i in range(processes)]))
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


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
    from .converted import REPORT_FILE
    from .cli import main

    with _workdir(workdir) as wd:
        raw, out = wd / "affectnet-small", wd / "affectnet-converted"
        shutil.rmtree(raw, ignore_errors=True)
        write_small(raw, affectnet_small_samples(n, size))
        read_and_hash(raw)  # warm the page cache
        argv = ["convert", "affectnet", str(raw), "--out", str(out), "--overwrite"]
        argv += ["--workers", str(workers)] if workers else []
        base_runs, conv_runs, parallel_runs = [], [], []
        processes = workers or os.cpu_count() or 1
        for _ in range(repeat):
            *seconds, (files, nbytes) = _timed(lambda: read_and_hash(raw))
            base_runs.append(seconds)
            parallel_runs.append(_timed(lambda: read_and_hash_parallel(raw, processes))[0])
            with contextlib.redirect_stdout(io.StringIO()):
                *seconds, code = _timed(lambda: main(argv))
            if code:
                raise RuntimeError(f"ferbench {' '.join(argv)} exited with {code}")
            conv_runs.append(seconds)
        build = json.loads((out / REPORT_FILE).read_text())
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
            "parallel_baseline": f"the baseline's work on {processes} processes: best {min(parallel_runs):.3f} s, "
            f"so conversion takes {figure / min(parallel_runs):.2f}x a parallel read-and-hash",
            "convert_scan_seconds": build["seconds"]["scan"],
            "images": n,
            "image_size": size,
            "files": files,
            "megabytes": round(nbytes / 1e6, 1),
            "rows": build["num_rows"],
            "cpus": os.cpu_count(),
        },
    }


def _template_run(wd: Path) -> Path:
    """One real run (synthetic CalD3r/MenD3s → convert → protocol → one epoch of tiny_cnn): its
    run directory is the template the leaderboard benchmark clones."""
    from .build import convert
    from .runner import run_recipe
    from .datasets.caldr_menders.synth import write_caldr_menders
    from .train.recipe import from_dict

    write_caldr_menders(wd / "raw", subjects=6, seed=0, size=32)
    convert("caldr_menders", wd / "raw", wd / "data", workers=1, progress=False)
    recipe = from_dict({
        "name": "bench-template", "data": {"dirs": [str(wd / "data")]}, "protocol": {"name": "caldr_menders7"},
        "model": {"name": "tiny_cnn"}, "input": {"modality": "rgb", "size": 32}, "seeds": [0],
        "train": {"epochs": 1, "batch_size": 32}, "eval": {"bootstrap": 100},
        "runtime": {"out_dir": str(wd / "runs"), "progress": False},
    })
    return run_recipe(recipe, folds=[0], device="cpu", progress=False)[0]


def _clone_runs(template: Path, runs: Path, n: int, models: int) -> None:
    """``n`` result records cloned from ``template``: ``models`` recipes × folds/seeds, each with its
    own run id and the template's predictions (hard-linked)."""
    from .run_record import RESULT

    record = json.loads((template / RESULT).read_text())
    preds = template / record["predictions"]
    for i in range(n):
        rec = json.loads(json.dumps(record))
        model = i % models
        rec["run_id"] = hashlib.sha256(f"run{i}".encode()).hexdigest()[:16]
        rec["run_name"] = f"model{model}-{rec['run_id']}"
        rec["recipe"]["name"] = rec["recipe"]["model"] = f"model{model}"
        rec["recipe"]["hash"] = hashlib.sha256(f"model{model}".encode()).hexdigest()[:16]
        rec["seed"] = i // models
        d = runs / rec["run_name"]
        d.mkdir(parents=True)
        os.link(preds, d / record["predictions"])
        (d / RESULT).write_text(json.dumps(rec))


def bench_leaderboard(n: int = 10_000, models: int = 50, workdir: str | Path | None = None) -> dict[str, Any]:
    """``ferbench leaderboard`` ingest (rebuild of the DuckDB file from ``n`` run records, CIs
    included) and ranking query, against reading and parsing the same records and predictions."""
    import pyarrow.parquet as pq

    from .leaderboard import find_results, ingest, rank

    with _workdir(workdir) as wd:
        template = _template_run(wd / "template")
        _clone_runs(template, wd / "runs", n, models)

        def read_all() -> int:
            rows = 0
            for path in find_results([wd / "runs"]):
                rec = json.loads(path.read_text())
                rows += pq.read_table(path.parent / rec["predictions"], columns=["label", "pred"]).num_rows
            return rows

        *_, rows = _timed(read_all)  # warm the page cache
        (baseline, _, rows) = _timed(read_all)
        (ingest_s, _, count) = _timed(lambda: ingest([wd / "runs"], wd / "lb.duckdb"))
        (query_s, _, boards) = _timed(lambda: rank(wd / "lb.duckdb"))
    return {
        "figure": ingest_s,
        "baseline": baseline,
        "ratio": ingest_s / baseline,
        "goal": 3.0,
        "details": {
            "figure": f"seconds to ingest {count} run records into a fresh DuckDB file (bootstrap CIs included)",
            "baseline": "seconds to list, read and parse every result.json and its predictions.parquet",
            "query_seconds": round(query_s, 3),
            "boards": len(boards),
            "entries": sum(len(b.entries) for b in boards),
            "prediction_rows": rows,
            "cpus": os.cpu_count(),
        },
    }


def _geometry(name: str, key: str, base_key: str, limit_ms: float | None, **kw: Any) -> dict[str, Any]:
    """One figure of the geometry benchmarks in this module's format (seconds), with the issue's
    absolute budget as ``limit``."""
    from .geometry import bench as geometry_bench

    r = getattr(geometry_bench, name)(**kw)
    figure, baseline = r["figure"][key] / 1e3, r["baseline"][base_key] / 1e3
    return {
        "figure": figure,
        "baseline": baseline,
        "ratio": figure / baseline,
        "goal": None,
        "limit": None if limit_ms is None else limit_ms / 1e3,
        "details": {"figure": key, "baseline": base_key, **r["params"], **{k: round(v, 3) for k, v in r["figure"].items()}},
    }


def bench_vrml(n_vertices: int = 20000) -> dict[str, Any]:
    """VRML parse of a BU-3DFE-like F3D mesh vs reading its bytes (budget: well under 100 ms)."""
    return _geometry("bench_vrml", "parse_ms", "read_bytes_ms", 100.0, n_vertices=n_vertices)


def bench_render_view(n_faces: int = 50000, size: int = 256) -> dict[str, Any]:
    """A 256×256 depth view of a loaded mesh (open3d) vs splatting its vertices (budget 10 ms)."""
    return _geometry("bench_render", "open3d_view_ms", "vertex_splat_ms", 10.0, n_faces=n_faces, size=size)


def bench_render_mesh(n_faces: int = 50000, size: int = 256) -> dict[str, Any]:
    """Load a new 50k-face mesh and render one view (open3d) vs splatting (budget 50 ms)."""
    return _geometry("bench_render", "open3d_new_mesh_ms", "vertex_splat_ms", 50.0, n_faces=n_faces, size=size)


def bench_render_grid(size: int = 256) -> dict[str, Any]:
    """A 640×480 organised point grid (Bosphorus) → 256×256 depth vs splatting its points."""
    return _geometry("bench_render", "grid_open3d_ms", "grid_splat_ms", None, size=size)


def _lazy(module: str, name: str) -> Callable[..., dict[str, Any]]:
    """A benchmark living in another module, imported only when it runs."""

    def run(**kw: Any) -> dict[str, Any]:
        import importlib

        return getattr(importlib.import_module(module), name)(**kw)

    run.__name__ = name
    return run


#: name → benchmark function (one line per benchmark).
BENCHMARKS: dict[str, Callable[..., dict[str, Any]]] = {
    "convert": bench_convert,
    "vrml": bench_vrml,
    "render_view": bench_render_view,
    "render_mesh": bench_render_mesh,
    "render_grid": bench_render_grid,
    "loader": _lazy("ferbench.train.bench", "bench_loader"),
    "loader_memory": _lazy("ferbench.train.bench", "bench_loader_memory"),
    "loop": _lazy("ferbench.train.bench", "bench_loop"),
    "protocols": _lazy("ferbench.protocols.bench", "bench_protocols"),
    "verify": _lazy("ferbench.protocols.bench", "bench_verify"),
    "leaderboard": bench_leaderboard,
}
#: GPU benchmarks added by ``ferbench bench --device cuda``: runner train samples/s against the
#: train step of timm's own benchmark script (channels-last, bf16 autocast, resident data) for
#: the same model, batch and precision. Goal: ≥ 0.9× timm, i.e. time ratio ≤ 1.11.
GPU: dict[str, Callable[..., dict[str, Any]]] = {
    f"loop_cuda_{tag}": functools.partial(
        _lazy("ferbench.train.bench", "bench_loop"), model=model, size=224, batch=batch, n=batch * 20,
        epochs=3, device="cuda", precision="bf16", channels_last=True)
    for tag, model, batch in (("resnet50", "timm/resnet50", 256), ("vit_b16", "timm/vit_base_patch16_224", 128))
}
#: name → keyword arguments for ``--quick`` (test-sized runs).
QUICK: dict[str, dict[str, Any]] = {
    "convert": {"n": 300, "size": 64, "repeat": 1},
    "vrml": {"n_vertices": 2000},
    "render_view": {"n_faces": 5000, "size": 64},
    "render_mesh": {"n_faces": 5000, "size": 64},
    "render_grid": {"size": 64},
    "loader": {"n": 512},
    "loader_memory": {"n": 512},
    "loop": {"n": 256, "size": 32, "epochs": 2},
    "protocols": {"n": 3000},
    "verify": {"n": 3000},
    "leaderboard": {"n": 40, "models": 4},
}
