"""Speed of protocol materialisation and of the verifier's near-duplicate search.

Both use synthetic data of the requested size written in the converted layout (no images: the
image hashes are planted in the hash cache, as after a first verification, so the figures
measure the protocol and verifier logic, not JPEG decoding). No other tool builds these
protocols, so each is compared with a baseline only.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..converted import read_card, read_table
from ..protocols.base import BASE_COLUMNS
from ..protocols.hashes import HASH_SCHEMA, HASH_VERSION, cache_dir
from ..protocols.verify import near_pairs
from ..schema import make_schema
from ..shards import write_dataset
from .base import BenchResult, Comparison, benchmark


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    """A temporary folder that is also the hash cache for the duration of the benchmark."""
    old = os.environ.get("FERBENCH_CACHE")
    with tempfile.TemporaryDirectory(prefix="ferbench-bench-") as tmp:
        os.environ["FERBENCH_CACHE"] = str(Path(tmp) / "cache")
        try:
            yield Path(tmp)
        finally:
            if old is None:
                os.environ.pop("FERBENCH_CACHE", None)
            else:
                os.environ["FERBENCH_CACHE"] = old


def _dataset(root: Path, name: str, ids: list[str], labels: np.ndarray, splits: list[str | None], subjects: list[str | None]) -> Path:
    """A converted-layout dataset without images, plus planted image hashes (a few near-duplicates)."""
    order = np.argsort(np.asarray(ids))
    schema = make_schema(metadata={"dataset": name})
    n = len(ids)
    columns = {
        "sample_id": pa.array([ids[i] for i in order], pa.string()),
        "dataset": pa.array([name] * n, pa.string()),
        "source_split": pa.array([splits[i] for i in order], pa.string()),
        "subject_id": pa.array([subjects[i] for i in order], pa.string()),
        "label": pa.array(labels[order], mask=labels[order] < 0, type=pa.int8()),
    }
    table = pa.table({f.name: columns.get(f.name, pa.nulls(n, f.type)) for f in schema}, schema=schema)
    out = root / name
    write_dataset([table], schema, out, {"name": name, "title": name, "version": "bench", "layout": "bench"}, {})
    rng = np.random.default_rng(1)
    hashes = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64)
    twins = rng.choice(n, (n // 1000, 2), replace=False)
    hashes[twins[:, 1]] = hashes[twins[:, 0]] ^ np.uint64(0b101)  # 2 bits apart
    path = cache_dir() / f"{read_card(out).fingerprint}-v{HASH_VERSION}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    planted = {"sample_id": columns["sample_id"], "pixel_hash": pa.array(hashes), "phash": pa.array(hashes)}
    pq.write_table(pa.table(planted, schema=HASH_SCHEMA), path)
    return out


def _baseline(data: Path) -> float:
    """Seconds to read what any implementation must read: the label columns and the image hashes."""
    t0 = time.perf_counter()
    read_table(data, columns=list(BASE_COLUMNS))
    pq.read_table(cache_dir() / f"{read_card(data).fingerprint}-v{HASH_VERSION}.parquet")
    return time.perf_counter() - t0


@benchmark("protocols", quick={"n": 3000})
def bench_protocols(n: int = 300_000) -> BenchResult:
    """``materialise`` (incl. verification) of ``affectnet8`` over an AffectNet-sized set of ``n``
    rows, against reading its label columns and image hashes; a subject-grouped 5-fold
    (``global`` over ``n`` rows, ``n // 60`` subjects) is in the details."""
    from ..protocols import materialise

    rng = np.random.default_rng(0)
    n_val = min(4000, n // 10)
    with _scratch() as tmp:
        labels = rng.integers(0, 8, n)
        labels[rng.random(n) < 0.03] = -1
        ids = [f"affectnet/train/{i:07d}" for i in range(n - n_val)] + [f"affectnet/val/{i:07d}" for i in range(n_val)]
        splits = ["train"] * (n - n_val) + ["val"] * n_val
        affectnet = _dataset(tmp, "affectnet", ids, labels, splits, [None] * n)
        base = min(_baseline(affectnet) for _ in range(3))
        t0 = time.perf_counter()
        manifest = materialise("affectnet8", [affectnet], seed=0, val_per_class=min(500, max(1, n // 100)))
        figure = time.perf_counter() - t0

        subjects = [f"caldr_menders:s{i // 60:05d}" for i in range(n)]
        grouped = _dataset(tmp, "global", [f"caldr_menders/s{i:07d}" for i in range(n)], rng.integers(0, 7, n), [None] * n, subjects)
        t1 = time.perf_counter()
        kfold = materialise("global", [grouped], seed=0)
        t_kfold = time.perf_counter() - t1
        base_kfold = _baseline(grouped)
    return BenchResult(
        figure=figure,
        what=f"materialise('affectnet8') over {n} rows, verification included (hashes cached)",
        baseline=Comparison("read the label columns and the cached image hashes", "baseline", base),
        goal=20.0,
        notes={
            "manifest_rows": manifest.table.num_rows,
            "near_duplicates_found": manifest.meta["leakage"]["near_duplicates"],
            "kfold_seconds": round(t_kfold, 3),
            "kfold_baseline_seconds": round(base_kfold, 3),
            "kfold_manifest_rows": kfold.table.num_rows,
            "kfold_subjects": n // 60,
            "statistic": "one run (baseline: best of 3)",
        },
    )


@benchmark("verify", quick={"n": 3000})
def bench_verify(n: int = 300_000, threshold: int = 4) -> BenchResult:
    """The near-duplicate search (multi-index hashing) over ``n`` random 64-bit hashes with
    ``n // 100`` planted near-duplicates, against a vectorised numpy all-pairs popcount (timed on
    2,000 × ``n`` pairs, extrapolated to all ``n (n - 1) / 2`` pairs)."""
    rng = np.random.default_rng(0)
    h = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64)
    planted = rng.choice(n, (n // 100, 2), replace=False)
    flips = rng.integers(0, 64, (len(planted), threshold))
    h[planted[:, 1]] = h[planted[:, 0]] ^ np.bitwise_or.reduce(np.uint64(1) << flips.astype(np.uint64), axis=1)
    t0 = time.perf_counter()
    a, b = near_pairs(h, threshold)
    figure = time.perf_counter() - t0
    found = set(zip(a.tolist(), b.tolist()))
    recall = float(np.mean([(min(p), max(p)) in found for p in planted.tolist()]))
    block = min(n, 2000)
    t0 = time.perf_counter()
    np.bitwise_count(h[:block, None] ^ h[None, :]) <= threshold
    brute = (time.perf_counter() - t0) * (n * (n - 1) / 2) / (block * n)
    return BenchResult(
        figure=figure,
        what=f"verify.near_pairs over {n} hashes, threshold {threshold} bits",
        baseline=Comparison("vectorised numpy all-pairs popcount (extrapolated)", "baseline", brute),
        goal=0.01,
        notes={"pairs_found": len(found), "planted_recall": recall, "baseline_block": f"{block} × {n} pairs timed"},
    )
