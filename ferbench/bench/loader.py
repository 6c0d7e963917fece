"""Data-loading speed: ferbench's loader (``ferbench.train.loader``) beside torchvision and Hugging
Face ``datasets``, on the same images, the same number of worker processes and the same batch.

Each benchmark writes one raw tree with a dataset's own layout writer and converts it with
ferbench (untimed). Then one shuffled pass of uint8 (B, C, H, W) batches is timed for:

* ferbench: the streaming ``Loader`` over the converted store (bytes in Arrow buffers, decoded
  in ``workers`` DataLoader workers);
* torchvision: ``ImageFolder`` over the raw class folders + ``DataLoader`` (same workers, persistent);
* HF ``datasets``: ``load_dataset("imagefolder")`` (its Arrow cache built untimed) +
  ``with_transform`` + ``DataLoader`` (same workers, persistent);
* the baseline: decoding the same bytes with Pillow in a plain loop, one process (goal: the loader
  is no slower);
* the limit: the loader's own decoding (``decode.decode_color``, into one reused array) of the
  same bytes spread over ``workers`` processes, nothing sent back, so that the ratio is what the
  loader adds to decoding (goal: at least 0.8× its samples/s, i.e. ratio ≤ 1.25). ferbench
  decodes a JPEG at the input size with torchvision's decoder, about a tenth faster than Pillow,
  so a limit made of Pillow decoding would be beaten and measure nothing.

Rows: ``loader_jpeg`` (224² RGB JPEGs, AffectNet/RAF-DB-like: RAF-DB Kaggle tree) and
``loader_png`` (48² grayscale PNGs, FER2013/CK+-like: CK+48 tree). ``loader_memory``: the
memory-served loader (decoded once) vs indexing a uint8 tensor.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .base import BenchResult, Comparison, benchmark, compared, measure, missing, skipped, time_once, usable_cpus, workdir
from .inputs import faces, write_ck48, write_rafdb_kaggle

LIMIT_GOAL = 1.25  # ferbench's time ≤ 1.25× the limit's: at least 0.8× its samples/s
_SHARED: dict[str, Any] = {}  # what forked decode processes read (set before the pool forks)


def _decode(blobs: list[bytes], mode: str) -> int:
    """Decode every blob to a uint8 array (the plainest possible loop); returns how many."""
    from PIL import Image

    for b in blobs:
        np.asarray(Image.open(io.BytesIO(b)).convert(mode))
    return len(blobs)


def _decode_part(k: int) -> int:
    """Part ``k`` of the blobs decoded as the loader's workers decode them, into one reused array."""
    from ..train.decode import decode_color

    size, channels = _SHARED["size"], _SHARED["channels"]
    out = np.empty((size, size, channels), np.uint8)
    part = _SHARED["blobs"][k::_SHARED["parts"]]
    for b in part:
        decode_color(b, size, channels, out)
    return len(part)


def _open(path: str, mode: str) -> Any:
    from PIL import Image

    with open(path, "rb") as fh:
        return Image.open(fh).convert(mode)


def converted_store(out: Path, channels: int, size: int) -> Any:
    """A ferbench sample store over every row of a converted dataset."""
    import pyarrow.compute as pc

    from ..converted import read_table
    from ..train.inputs import InputSpec
    from ..train.store import Store

    table = read_table(out, ["sample_id", "label", "rgb"])
    n = table.num_rows
    spec = InputSpec("rgb", size, channels, (0.5,) * channels, (0.25,) * channels)
    return Store(spec=spec, sample_ids=table.column("sample_id").to_pylist(), datasets=["bench"] * n, subjects=[None] * n,
                 labels=table.column("label").to_numpy(zero_copy_only=False).astype(np.int64),
                 color_bytes=pc.struct_field(table.column("rgb").combine_chunks(), "bytes"), depth_bytes=None,
                 depth_unit=np.ones(n), sources=[])


def _bench(dataset: str, folder: Path, raw: Path, wd: Path, channels: int, size: int, batch: int, workers: int,
           repeat: int, warmup: int, layout: str) -> BenchResult:
    import multiprocessing as mp

    import torch

    from ..build import convert
    from ..train.loader import Loader

    mode = "L" if channels == 1 else "RGB"
    convert(dataset, raw, wd / "converted", workers=workers, progress=False)
    store = converted_store(wd / "converted", channels, size)
    n = len(store)
    used = n // batch * batch
    loader = Loader(store, np.arange(n), batch, train=True, sampler=lambda rng: rng.permutation(n), workers=workers)
    shapes: dict[str, list[int]] = {}

    def count(name: str, batches: Any, images: Callable[[Any], Any]) -> int:
        seen = 0
        for b in batches:
            x = images(b)
            seen += x.shape[0]
        shapes[name] = list(x.shape)
        return seen

    fns: dict[str, Callable[[], Any]] = {"ferbench": lambda: count("ferbench", loader, lambda b: b.color)}
    blobs = [store.color_bytes[i].as_py() for i in range(used)]
    fns["decode"] = lambda: _decode(blobs, mode)
    _SHARED.update(blobs=blobs, size=size, channels=channels, parts=workers)
    pool = mp.get_context("fork").Pool(workers)
    fns["decode_parallel"] = lambda: sum(pool.map(_decode_part, range(workers)))
    peers_missing: dict[str, str | None] = {"torchvision": missing("torchvision"), "hf": missing("datasets", "torchvision")}
    loader_kw = dict(batch_size=batch, shuffle=True, drop_last=True, num_workers=workers, persistent_workers=workers > 0)
    if not peers_missing["torchvision"]:
        from torchvision.datasets import ImageFolder
        from torchvision.transforms.functional import pil_to_tensor

        tv = torch.utils.data.DataLoader(
            ImageFolder(str(folder), transform=pil_to_tensor, loader=functools.partial(_open, mode=mode)), **loader_kw)
        fns["torchvision"] = lambda: count("torchvision", tv, lambda b: b[0])
    hf_setup = None
    if not peers_missing["hf"]:
        try:
            hf_setup, hf = time_once(lambda: _hf_loader(folder, wd / "hf-cache", mode, loader_kw))
            fns["hf"] = lambda: count("hf", hf, lambda b: b["image"])
        except Exception as e:  # reported as skipped below
            peers_missing["hf"] = f"failed: {type(e).__name__}: {e}"
    try:
        t = measure(fns, repeat=repeat, warmup=warmup, fragile=("torchvision", "hf"))
    finally:
        pool.terminate()
        _SHARED.clear()
    counts = {k: v.value for k, v in t.items()}
    peers: list[Comparison] = []
    for key, name in (("torchvision", "torchvision ImageFolder + DataLoader"),
                      ("hf", "HF datasets imagefolder + with_transform + DataLoader")):
        peers.append(compared(name, "peer", t[key], goal=1.0) if key in t else skipped(name, "peer", peers_missing[key] or ""))
    peers.append(compared(f"the loader's decoding alone in {workers} processes", "limit", t["decode_parallel"], goal=LIMIT_GOAL))
    return BenchResult(
        figure=t["ferbench"].best,
        what=f"one shuffled pass of ferbench's streaming loader, {workers} workers, batch {batch}",
        baseline=compared("plain Pillow decode loop, 1 process", "baseline", t["decode"]),
        peers=peers,
        goal=1.0,
        notes={
            "layout": layout, "images": n, "samples_per_pass": used, "size": size, "channels": channels, "batch": batch,
            "workers": workers, "batch_shapes": shapes, "samples_seen": counts,
            "hf_arrow_cache_build_s": None if hf_setup is None else round(hf_setup, 3),
            "samples_per_s": {k: round(used / v.best) for k, v in t.items() if v.runs},
            "statistic": f"best of {repeat} (warm-up {warmup}, which also starts persistent workers)",
        },
    )


def _hf_loader(folder: Path, cache: Path, mode: str, loader_kw: dict[str, Any]) -> Any:
    import datasets
    import torch
    from torchvision.transforms.functional import pil_to_tensor

    datasets.disable_progress_bars()
    ds = datasets.load_dataset("imagefolder", data_dir=str(folder), split="train", cache_dir=str(cache))

    def transform(b: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return {"image": [pil_to_tensor(im.convert(mode)) for im in b["image"]], "label": b["label"]}

    return torch.utils.data.DataLoader(ds.with_transform(transform), **loader_kw)


@benchmark("loader_jpeg", quick={"n": 128, "size": 64, "batch": 32, "repeat": 1})
def bench_loader_jpeg(n: int = 8192, size: int = 224, batch: int = 64, workers: int | None = None, repeat: int = 5,
                      warmup: int = 1, scratch: str | Path | None = None) -> BenchResult:
    """224² RGB JPEGs (RAF-DB Kaggle tree): ferbench's loader vs torchvision ImageFolder and HF datasets."""
    with workdir(scratch) as wd:
        folder = write_rafdb_kaggle(wd / "raw", n, size, test_fraction=0.0) / "train"
        return _bench("rafdb", folder, wd / "raw", wd, 3, size, batch, workers or usable_cpus(), repeat, warmup,
                      "rafdb kaggle (DATASET/train/<label>/*.jpg)")


@benchmark("loader_png", quick={"n": 192, "size": 48, "batch": 32, "repeat": 1})
def bench_loader_png(n: int = 16384, size: int = 48, batch: int = 64, workers: int | None = None, repeat: int = 5,
                     warmup: int = 1, scratch: str | Path | None = None) -> BenchResult:
    """48² grayscale PNGs (CK+48 tree): ferbench's loader vs torchvision ImageFolder and HF datasets."""
    with workdir(scratch) as wd:
        folder = write_ck48(wd / "raw", n, size)
        return _bench("ckplus", folder, wd / "raw", wd, 1, size, batch, workers or usable_cpus(), repeat, warmup,
                      "ck+48 (CK+48/<class>/*.png)")


@benchmark("loader_memory", quick={"n": 512, "passes": 10, "repeat": 5})
def bench_loader_memory(n: int = 4096, size: int = 64, batch: int = 64, workers: int | None = None, passes: int = 20,
                        repeat: int = 5) -> BenchResult:
    """Memory-served loader (decoded once) vs indexing a uint8 tensor, seconds per shuffled pass."""
    import pyarrow as pa
    import torch

    from ..imageio import encode_png
    from ..train.inputs import InputSpec
    from ..train.loader import Loader
    from ..train.store import Store

    blobs = pa.array([encode_png(p) for p in faces(n, size)], pa.binary())
    spec = InputSpec("rgb", size, 3, (0.5,) * 3, (0.25,) * 3)
    labels = np.random.default_rng(0).integers(0, 7, n)
    store = Store(spec=spec, sample_ids=[f"bench/{i:06d}" for i in range(n)], datasets=["bench"] * n, subjects=[None] * n,
                  labels=labels, color_bytes=blobs, depth_bytes=None, depth_unit=np.ones(n), sources=[])
    decode_once, _ = time_once(lambda: store.decode_all(workers or usable_cpus()))
    loader = Loader(store, np.arange(n), batch, train=True, sampler=lambda rng: rng.permutation(n))
    array, label_t = store.color.clone(), torch.from_numpy(store.labels)

    def ferbench_pass() -> None:
        for _ in loader:
            pass

    def bare() -> None:
        order = torch.randperm(n)
        for i in range(0, n - batch + 1, batch):
            idx = order[i:i + batch]
            array.index_select(0, idx), label_t.index_select(0, idx)

    t = measure({"ferbench": ferbench_pass, "bare": bare}, repeat=repeat, warmup=1, per_call=passes)
    return BenchResult(
        figure=t["ferbench"].best,
        what="one shuffled pass of the memory-served loader",
        baseline=compared("index the same uint8 tensor directly", "baseline", t["bare"]),
        goal=1.25,
        notes={"samples": n, "size": size, "batch": batch, "decode_once_s": round(decode_once, 3),
               "statistic": f"best of {repeat} runs of {passes} passes"},
    )
