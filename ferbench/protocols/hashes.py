"""Per-image content hashes for leakage checks, computed once per dataset and cached.

* ``pixel_hash``: the first 64 bits of SHA-256 over the decoded pixels (shape, dtype, bytes).
  Pixels are canonicalised first: alpha dropped, palette images expanded, and a 3-channel image
  whose channels are all equal reduced to one channel, so the same picture stored as PNG, BMP,
  or as gray-in-RGB hashes the same (lossy re-encodings do not: they are near-duplicates).
* ``phash``: a 64-bit DCT perceptual hash (32×32 box-resized, grayscale, top-left 8×8 DCT
  coefficients compared with their median, DC excluded from the median). Brightness/contrast
  changes and re-encoding move it by a few bits at most.

The primary image of a row is ``rgb`` (``depth`` when a row has no rgb). Hashes are cached under
``$FERBENCH_CACHE/image-hashes/<dataset fingerprint>-v<HASH_VERSION>.parquet`` (default
``~/.cache/ferbench``): a fingerprint names exact content, so the cache never goes stale.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import multiprocessing as mp
import os
import sys
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from ..converted import open_dataset

HASH_VERSION = "1"
HASH_SCHEMA = pa.schema([("sample_id", pa.string()), ("pixel_hash", pa.uint64()), ("phash", pa.uint64())])
_N = 32
_DCT = np.sqrt(2 / _N) * np.cos(np.pi * (2 * np.arange(_N)[None, :] + 1) * np.arange(_N)[:, None] / (2 * _N))
_DCT[0] /= np.sqrt(2)


def cache_dir() -> Path:
    return Path(os.environ.get("FERBENCH_CACHE", "~/.cache/ferbench")).expanduser() / "image-hashes"


def canonical_pixels(data: bytes) -> np.ndarray:
    """Decoded pixels in the canonical form that ``pixel_hash`` hashes."""
    with Image.open(io.BytesIO(data)) as im:
        if im.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "1"):
            im = im.convert("RGBA" if "A" in im.mode or "transparency" in im.info else "RGB")
        arr = np.asarray(im)
    if arr.ndim == 3:
        if arr.shape[2] in (2, 4):
            arr = arr[:, :, :-1]
        if arr.shape[2] == 1 or (arr[:, :, 1:] == arr[:, :, :1]).all():
            arr = arr[:, :, 0]
    return arr


def phash(pixels: np.ndarray) -> int:
    if pixels.dtype == np.uint8:  # box-resize in PIL first (fast), then average the channels
        small = np.asarray(Image.fromarray(pixels).resize((_N, _N), Image.Resampling.BOX), dtype=np.float64)
    else:
        gray = pixels.astype(np.float32) if pixels.ndim == 2 else pixels.astype(np.float32).mean(axis=2)
        small = np.asarray(Image.fromarray(gray, mode="F").resize((_N, _N), Image.Resampling.BOX), dtype=np.float64)
    if small.ndim == 3:
        small = small.mean(axis=2)
    low = (_DCT @ small @ _DCT.T)[:8, :8].ravel()
    bits = low > np.median(low[1:])
    return int(np.packbits(bits).view(">u8")[0])


def image_hashes(data: bytes) -> tuple[int, int] | None:
    """(pixel_hash, phash) of encoded image bytes, or None if the bytes do not decode."""
    try:
        pixels = canonical_pixels(data)
    except Exception:  # a broken image cannot leak; the converter reported it already
        return None
    head = f"{pixels.shape}|{pixels.dtype.str}|".encode()
    digest = hashlib.sha256(head + np.ascontiguousarray(pixels).tobytes()).digest()
    return int.from_bytes(digest[:8], "big"), phash(pixels)


def dataset_hashes(data_dir: str | Path, workers: int | None = None) -> pa.Table:
    """Hashes of every row's primary image in a dataset directory (cached by fingerprint)."""
    data = open_dataset(data_dir)
    cached = cache_dir() / f"{data.card.fingerprint}-v{HASH_VERSION}.parquet"
    if cached.exists():
        return pq.read_table(cached)
    ids: list[str] = []
    results: list[tuple[int, int] | None] = []
    with _pool(workers, data.card.num_rows) as pool:
        for shard in data.shard_paths:
            t = pq.read_table(shard, columns=["sample_id", "rgb", "depth"])
            blobs = [_primary(r, d) for r, d in zip(t.column("rgb").to_pylist(), t.column("depth").to_pylist())]
            keep = [i for i, b in enumerate(blobs) if b is not None]
            sids = t.column("sample_id").to_pylist()
            ids += [sids[i] for i in keep]
            todo = [blobs[i] for i in keep]
            results += pool.map(image_hashes, todo, chunksize=max(16, len(todo) // 64)) if pool else map(image_hashes, todo)
    ok = [i for i, r in enumerate(results) if r is not None]
    table = pa.table(
        {
            "sample_id": pa.array([ids[i] for i in ok], pa.string()),
            "pixel_hash": pa.array([results[i][0] for i in ok], pa.uint64()),
            "phash": pa.array([results[i][1] for i in ok], pa.uint64()),
        },
        schema=HASH_SCHEMA,
    )
    _store(table, cached)
    return table


def _primary(rgb: dict | None, depth: dict | None) -> bytes | None:
    for img in (rgb, depth):
        if img is not None and img.get("bytes"):
            return img["bytes"]
    return None


def _pool(workers: int | None, n: int) -> contextlib.AbstractContextManager:
    """A process pool for hashing ``n`` images, or a null context when one process is enough."""
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or n < 512:
        return contextlib.nullcontext()
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    return ProcessPoolExecutor(workers, mp_context=ctx)


def _store(table: pa.Table, path: Path) -> None:
    """Best effort: an unwritable cache only costs time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}"
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except OSError:
        pass
