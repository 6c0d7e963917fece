"""Manifest + converted dataset dirs → batches of model input.

``open_store`` joins the manifest's samples (all repeats and folds) with the image bytes of the
dataset dirs (checking each dir's fingerprint against the manifest). Encoded bytes stay in Arrow
buffers, which forked loader workers share without copying. With ``cache="memory"`` (or "auto" when
the decoded set fits ``cache_max_gb``) every image is decoded once, resized to the input size, and
batches are served by indexing one uint8 tensor (on the GPU when training there); otherwise images
are decoded in ``DataLoader`` workers every epoch (pinned memory on CUDA).

Model input (the manifest contract): rgb → 3 channels (grayscale repeated) or 1 (``channels: 1``);
depth → 1 channel; rgbd → RGB then depth (4) or gray then depth (2). Images are resized to a square
(the faces are pre-cropped). Depth is converted to millimetres with the dataset's ``depth.unit_mm``
metadata and scaled either per image (``depth_norm: minmax``: valid pixels to [0.1, 1], 0 = no data) or
by ``depth_scale_mm``. Colour channels are /255. All channels are then normalised with mean/std.

Augmentations (``AUGMENTATIONS``) act on whole batches on the training device, after scaling to
[0, 1] and before normalisation, on all channels at once (so a geometric transform moves RGB and
depth alike; colour changes touch the colour channels only); more in ``augment_extra``. Samplers
(``SAMPLERS``) give each epoch's order of training indices. ``fold_stats`` gives the per-channel
mean/std of a fold's train role (``input.normalize: train``).
"""

from __future__ import annotations

import io
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
import torch.nn.functional as F
from PIL import Image

from ..converted import ConvertedDataset, open_dataset
from ..errors import FerbenchError
from ..imageio import decode

if TYPE_CHECKING:
    from ..protocols import Manifest


# -- input specification ----------------------------------------------------------------------------
@dataclass(frozen=True)
class InputSpec:
    """What the model is fed: modality, square size, channel count, per-channel mean/std, depth scaling."""

    modality: str
    size: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    depth_norm: str = "minmax"
    depth_scale_mm: float = 200.0

    @property
    def color_channels(self) -> int:
        return {"rgb": self.channels, "depth": 0, "rgbd": self.channels - 1}[self.modality]

    @property
    def uses_depth(self) -> bool:
        return self.modality != "rgb"

    def decoded_bytes(self) -> int:
        """Bytes one decoded sample takes in the memory cache."""
        return self.size * self.size * (self.color_channels + 4 * self.uses_depth)


# -- samplers: labels → (rng → one epoch's indices) ---------------------------------------------------
Sampler = Callable[[np.random.Generator], np.ndarray]
SAMPLERS: dict[str, Callable[..., Sampler]] = {}


def register_sampler(fn: Callable[..., Sampler]) -> Callable[..., Sampler]:
    SAMPLERS[fn.__name__] = fn
    return fn


@register_sampler
def random(labels: np.ndarray) -> Sampler:
    """Every training sample once per epoch, shuffled."""
    return lambda rng: rng.permutation(len(labels))


def inverse_frequency(labels: np.ndarray) -> np.ndarray:
    """Per-sample weight 1/N_c (N_c = the count of the sample's class)."""
    return 1.0 / np.bincount(labels)[labels]


@register_sampler
def class_balanced(labels: np.ndarray, *, replacement: bool = True, epoch_factor: float = 1.0) -> Sampler:
    """``epoch_factor`` × as many draws as samples, each sample weighted 1/N_c, so every class is
    equally likely; oversamples rare classes (report 000: epoch_factor 2, as PyTorch's
    WeightedRandomSampler with num_samples = 2 × the training set)."""
    p = inverse_frequency(labels)
    p = p / p.sum()
    size = max(1, round(epoch_factor * len(labels)))
    return lambda rng: rng.choice(len(labels), size=size, replace=replacement, p=p)


@register_sampler
def sequential(labels: np.ndarray) -> Sampler:
    """Manifest order, every epoch (for debugging and benchmarks)."""
    return lambda rng: np.arange(len(labels))


# -- augmentations: batch-level, on device, on [0, 1] floats ------------------------------------------
Augment = Callable[[torch.Tensor, torch.Generator, int], torch.Tensor]
AUGMENTATIONS: dict[str, Callable[..., Augment]] = {}


def register_augmentation(fn: Callable[..., Augment]) -> Callable[..., Augment]:
    AUGMENTATIONS[fn.__name__] = fn
    return fn


def _rand(g: torch.Generator, n: int, like: torch.Tensor) -> torch.Tensor:
    return torch.rand(n, generator=g).to(like.device, like.dtype)


@register_augmentation
def hflip(*, p: float = 0.5) -> Augment:
    """Mirror each image left-right with probability ``p``."""

    def apply(x: torch.Tensor, g: torch.Generator, n_color: int) -> torch.Tensor:
        flip = (_rand(g, x.shape[0], x) < p).view(-1, 1, 1, 1)
        return torch.where(flip, x.flip(-1), x)

    return apply


@register_augmentation
def affine(*, degrees: float = 10.0, translate: float = 0.1, scale_min: float = 0.9, scale_max: float = 1.1,
           p: float = 1.0) -> Augment:
    """Random rotation (±degrees), translation (± fraction of the side) and zoom, one grid_sample per batch."""

    def apply(x: torch.Tensor, g: torch.Generator, n_color: int) -> torch.Tensor:
        b = x.shape[0]
        on = _rand(g, b, x) < p
        angle = (_rand(g, b, x) * 2 - 1) * math.radians(degrees) * on
        scale = 1 / torch.where(on, scale_min + _rand(g, b, x) * (scale_max - scale_min), torch.ones_like(angle))
        shift = (torch.stack([_rand(g, b, x), _rand(g, b, x)], 1) * 2 - 1) * 2 * translate * on[:, None]
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    return apply


@register_augmentation
def color(*, brightness: float = 0.2, contrast: float = 0.2, p: float = 1.0) -> Augment:
    """Random brightness and contrast factors in [1 - v, 1 + v] on the colour channels only."""

    def apply(x: torch.Tensor, g: torch.Generator, n_color: int) -> torch.Tensor:
        if n_color == 0:
            return x
        b = x.shape[0]
        on = (_rand(g, b, x) < p).view(-1, 1, 1, 1)
        bright = 1 + (_rand(g, b, x) * 2 - 1).view(-1, 1, 1, 1) * brightness
        contr = 1 + (_rand(g, b, x) * 2 - 1).view(-1, 1, 1, 1) * contrast
        c = x[:, :n_color]
        mean = c.mean(dim=(1, 2, 3), keepdim=True)
        out = ((c * bright - mean) * contr + mean).clamp(0, 1)
        return torch.cat([torch.where(on, out, c), x[:, n_color:]], 1)

    return apply


@register_augmentation
def erasing(*, p: float = 0.25, area_min: float = 0.02, area_max: float = 0.2) -> Augment:
    """Zero one random rectangle (square-ish, ``area_min``-``area_max`` of the image) with probability ``p``."""

    def apply(x: torch.Tensor, g: torch.Generator, n_color: int) -> torch.Tensor:
        b, _, h, w = x.shape
        on = _rand(g, b, x) < p
        side = torch.sqrt(area_min + _rand(g, b, x) * (area_max - area_min))
        cy, cx = _rand(g, b, x), _rand(g, b, x)
        ys = torch.linspace(0, 1, h, device=x.device, dtype=x.dtype).view(1, h, 1)
        xs = torch.linspace(0, 1, w, device=x.device, dtype=x.dtype).view(1, 1, w)
        half = (side / 2).view(-1, 1, 1)
        box = ((ys - cy.view(-1, 1, 1)).abs() < half) & ((xs - cx.view(-1, 1, 1)).abs() < half) & on.view(-1, 1, 1)
        return x.masked_fill(box[:, None], 0.0)

    return apply


def build_augment(specs: Sequence[dict[str, Any]]) -> list[Augment]:
    from .recipe import component

    return [AUGMENTATIONS[name](**params) for name, params in map(component, specs)]


# -- decoding -----------------------------------------------------------------------------------------
def decode_color(data: bytes, size: int, channels: int) -> np.ndarray:
    """(channels, size, size) uint8 from encoded bytes; JPEGs are draft-decoded near the target size."""
    with Image.open(io.BytesIO(data)) as im:
        mode = "L" if channels == 1 else "RGB"
        im.draft(mode, (size, size))
        im = im.convert(mode)
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        a = np.asarray(im)
    return np.array(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))  # a writable, contiguous copy


def decode_depth(data: bytes, size: int, unit_mm: float, spec: InputSpec) -> np.ndarray:
    """(1, size, size) float32 depth scaled per ``spec.depth_norm`` (0 stays 0 = no data)."""
    mm = decode(data).astype(np.float32) * np.float32(unit_mm)
    if mm.shape != (size, size):
        mm = np.asarray(Image.fromarray(mm, mode="F").resize((size, size), Image.NEAREST))
    if spec.depth_norm == "scale":
        return (mm / np.float32(spec.depth_scale_mm))[None]
    valid = mm > 0
    if not valid.any():
        return np.zeros((1, size, size), np.float32)
    lo, hi = mm[valid].min(), mm[valid].max()
    out = np.where(valid, (mm - lo) / max(hi - lo, 1e-6) * 0.9 + 0.1, 0.0)
    return out.astype(np.float32)[None]


# -- the sample store ----------------------------------------------------------------------------------
@dataclass
class Store:
    """Every manifest sample once (row order = sorted sample_id), with labels, subjects and image bytes."""

    spec: InputSpec
    sample_ids: list[str]
    datasets: list[str]
    subjects: list[str | None]
    labels: np.ndarray  # protocol label, int64
    color_bytes: pa.Array | None
    depth_bytes: pa.Array | None
    depth_unit: np.ndarray  # mm per raw unit, per sample
    sources: list[dict[str, Any]]  # the dataset dirs: name, title, fingerprint, synthetic, num_rows, path
    color: torch.Tensor | None = None  # decoded cache (memory mode)
    depth: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.sample_ids)

    @property
    def cached(self) -> bool:
        return self.color is not None or self.depth is not None

    def decode_one(self, i: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        color = depth = None
        if self.spec.color_channels:
            color = decode_color(_bytes(self.color_bytes, i, "rgb", self.sample_ids), self.spec.size, self.spec.color_channels)
        if self.spec.uses_depth:
            raw = _bytes(self.depth_bytes, i, "depth", self.sample_ids)
            depth = decode_depth(raw, self.spec.size, float(self.depth_unit[i]), self.spec)
        return color, depth

    def decode_batch(self, indices: Sequence[int]) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Decoded uint8 colour (B, c, H, W) and float32 depth (B, 1, H, W) arrays of some samples."""
        n, s = len(indices), self.spec.size
        color = np.empty((n, self.spec.color_channels, s, s), np.uint8) if self.spec.color_channels else None
        depth = np.empty((n, 1, s, s), np.float32) if self.spec.uses_depth else None
        for k, i in enumerate(indices):
            c, d = self.decode_one(int(i))
            if color is not None:
                color[k] = c
            if depth is not None:
                depth[k] = d
        return color, depth

    def decode_all(self, workers: int, device: torch.device | str = "cpu") -> None:
        """Decode every sample once into uint8 / float32 tensors (threads over chunks; PIL releases the GIL)."""
        chunks = np.array_split(np.arange(len(self)), max(1, -(-len(self) // 256)))
        with ThreadPoolExecutor(max(1, workers)) as pool:
            parts = list(pool.map(self.decode_batch, chunks))
        color = None if parts[0][0] is None else np.concatenate([p[0] for p in parts])
        depth = None if parts[0][1] is None else np.concatenate([p[1] for p in parts])
        self.color = None if color is None else torch.from_numpy(color).to(device)
        self.depth = None if depth is None else torch.from_numpy(depth).to(device)


def _bytes(arr: pa.Array | None, i: int, what: str, ids: list[str]) -> bytes:
    value = None if arr is None else arr[i].as_py()
    if value is None:
        raise FerbenchError(f"sample {ids[i]} has no {what} image, which the recipe's modality needs")
    return value


def resolve_dirs(meta: dict[str, Any], dirs: Sequence[str | Path]) -> list[ConvertedDataset]:
    """The opened dataset of every dataset the manifest names; fingerprints must match.

    ``dirs`` (the recipe's ``data.dirs``) are matched by card name; a dataset not among them is looked
    up at the absolute path the manifest recorded.
    """
    given = {data.card.name: data for data in map(open_dataset, dirs)}
    out = []
    for ds in meta["datasets"]:
        data = given.get(ds["name"]) or open_dataset(ds["path"])
        if data.card.fingerprint != ds["fingerprint"]:
            raise FerbenchError(
                f"dataset {ds['name']} at {data.path} has fingerprint {data.card.fingerprint}, but the manifest was made "
                f"from {ds['fingerprint']}: re-run the protocol on these data (or point data.dirs at the original)"
            )
        out.append(data)
    return out


def open_store(manifest: "Manifest", dirs: Sequence[str | Path], spec: InputSpec) -> Store:
    """Join the manifest's distinct samples with their labels, subjects and image bytes."""
    rows = manifest.table.select(["sample_id", "dataset", "subject_id", "label"]).group_by("sample_id", use_threads=False).aggregate(
        [("dataset", "first"), ("subject_id", "first"), ("label", "min"), ("label", "max")]
    ).sort_by("sample_id")
    if not rows.column("label_min").equals(rows.column("label_max")):
        raise FerbenchError("manifest gives one sample different labels in different folds")
    ids = rows.column("sample_id")
    cols = ["sample_id"] + (["rgb"] if spec.color_channels else []) + (["depth"] if spec.uses_depth else [])
    parts, units, sources = [], [], []
    for data in resolve_dirs(manifest.meta, dirs):
        card = data.card
        sources.append({k: getattr(card, k) for k in ("name", "title", "fingerprint", "synthetic", "num_rows")} | {"path": str(data.path)})
        table = data.read(cols)
        table = table.filter(pc.is_in(table.column("sample_id"), value_set=ids))
        parts.append(table)
        units.append(np.full(table.num_rows, _depth_unit(data) if spec.uses_depth else 1.0))
    joined = pa.concat_tables(parts)
    order = pc.sort_indices(joined, [("sample_id", "ascending")])
    joined = joined.take(order)
    unit = np.concatenate(units)[order.to_numpy()] if units else np.empty(0)
    found = joined.column("sample_id")
    if found.length() != ids.length() or not found.equals(ids):
        missing = sorted(set(ids.to_pylist()) - set(found.to_pylist()))
        raise FerbenchError(f"{len(missing) or 'some'} manifest samples are not in the dataset dirs (or appear twice), e.g. {missing[:3]}")
    return Store(
        spec=spec,
        sample_ids=ids.to_pylist(),
        datasets=rows.column("dataset_first").to_pylist(),
        subjects=rows.column("subject_id_first").to_pylist(),
        labels=rows.column("label_min").to_numpy().astype(np.int64),
        color_bytes=_image_bytes(joined, "rgb"),
        depth_bytes=_image_bytes(joined, "depth"),
        depth_unit=unit,
        sources=sources,
    )


def _image_bytes(table: pa.Table, column: str) -> pa.Array | None:
    if column not in table.column_names:
        return None
    return pc.struct_field(table.column(column).combine_chunks(), "bytes")


def _depth_unit(data: ConvertedDataset) -> float:
    """Millimetres per stored depth unit, from the dataset's schema metadata (1.0 when unknown)."""
    unit = (data.metadata().get("depth") or {}).get("unit_mm")
    return float(unit) if unit else 1.0


def split_indices(manifest: "Manifest", store: Store, repeat: int, fold: int) -> dict[str, np.ndarray]:
    """Store indices of each role of one (repeat, fold); roles without rows are left out."""
    pos = {sid: i for i, sid in enumerate(store.sample_ids)}
    out = {role: np.array(sorted(pos[s] for s in t.column("sample_id").to_pylist()), dtype=np.int64)
           for role, t in manifest.select(repeat, fold).items() if t.num_rows}
    if "train" not in out or "test" not in out:
        raise FerbenchError(f"repeat {repeat}, fold {fold} lacks a train or test role: roles {sorted(out)}")
    return out


# -- batches ---------------------------------------------------------------------------------------------
@dataclass
class Batch:
    color: torch.Tensor | None  # uint8 (B, c, H, W)
    depth: torch.Tensor | None  # float32 (B, 1, H, W)
    label: torch.Tensor  # int64 (B,)


class _StreamDataset(torch.utils.data.Dataset):
    """Decodes whole batches in a loader worker (``__getitems__``), returning ready tensors."""

    def __init__(self, store: Store):
        self.store = store

    def __len__(self) -> int:
        return len(self.store)

    def __getitems__(self, indices: list[int]) -> tuple[Any, ...]:
        color, depth = self.store.decode_batch(indices)
        return (None if color is None else torch.from_numpy(color), None if depth is None else torch.from_numpy(depth),
                torch.from_numpy(self.store.labels[np.asarray(indices)]))


def _as_is(batch: Any) -> Any:
    return batch


class _IndexBatches(torch.utils.data.Sampler):
    """Batches of store indices, recomputed by ``order()`` each time it is iterated."""

    def __init__(self, loader: "Loader"):
        self.loader = loader

    def __iter__(self) -> Iterator[list[int]]:
        yield from (b.tolist() for b in self.loader.index_batches())

    def __len__(self) -> int:
        return len(self.loader)


class Loader:
    """Batches over store indices ``indices``: shuffled per epoch (training) or in order (evaluation).

    Training: the sampler's order for (seed, epoch), padded to a multiple of ``world`` and strided
    over ranks; the incomplete last batch is dropped when at least one full batch exists.
    Evaluation: rank r gets a contiguous block, no sample padded or repeated.
    """

    def __init__(self, store: Store, indices: np.ndarray, batch_size: int, *, train: bool, sampler: Sampler | None = None,
                 seed: int = 0, rank: int = 0, world: int = 1, device: torch.device | str = "cpu", workers: int = 0):
        self.store, self.indices, self.batch_size, self.train = store, indices, batch_size, train
        self.sampler, self.seed, self.rank, self.world = sampler, seed, rank, world
        self.device, self.epoch = torch.device(device), 0
        self._loader = None if store.cached else self._stream_loader(workers)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> np.ndarray:
        if not self.train:
            n = len(self.indices)
            return self.indices[self.rank * n // self.world:(self.rank + 1) * n // self.world]
        rng = np.random.default_rng([self.seed, self.epoch])
        order = self.indices[self.sampler(rng)] if self.sampler else self.indices
        pad = (-len(order)) % self.world
        order = np.concatenate([order, order[:pad]])
        return order[self.rank::self.world]

    def index_batches(self) -> list[np.ndarray]:
        order = self._order()
        n_full = len(order) // self.batch_size
        cut = n_full * self.batch_size if self.train and n_full else len(order)
        return [order[i:i + self.batch_size] for i in range(0, cut, self.batch_size)]

    def __len__(self) -> int:
        return len(self.index_batches())

    def __iter__(self) -> Iterator[Batch]:
        if self._loader is None:
            yield from self._memory_batches()
        else:
            for tensors in self._loader:
                yield Batch(*(None if t is None else t.to(self.device, non_blocking=True) for t in tensors))

    def _memory_batches(self) -> Iterator[Batch]:
        s = self.store
        home = (s.color if s.color is not None else s.depth).device
        color, depth, labels = s.color, s.depth, torch.from_numpy(s.labels).to(home)
        move = home != self.device
        for idx in self.index_batches():
            t = torch.from_numpy(idx)
            if home.type != "cpu":
                t = t.to(home, non_blocking=True)
            batch = Batch(None if color is None else color.index_select(0, t),
                          None if depth is None else depth.index_select(0, t), labels.index_select(0, t))
            if move:
                batch = Batch(*(None if p is None else p.to(self.device, non_blocking=True)
                                for p in (batch.color, batch.depth, batch.label)))
            yield batch

    def _stream_loader(self, workers: int) -> torch.utils.data.DataLoader:
        import multiprocessing as mp
        import sys

        kw: dict[str, Any] = {}
        if workers > 0:
            kw = dict(persistent_workers=True, prefetch_factor=4,
                      multiprocessing_context=mp.get_context("fork" if sys.platform.startswith("linux") else "spawn"))
        return torch.utils.data.DataLoader(
            _StreamDataset(self.store), batch_sampler=_IndexBatches(self), collate_fn=_as_is, num_workers=workers,
            pin_memory=self.device.type == "cuda", **kw,
        )


def to_input(batch: Batch, spec: InputSpec, mean: torch.Tensor, std: torch.Tensor,
             augment: Sequence[Augment] = (), generator: torch.Generator | None = None,
             channels_last: bool = False) -> torch.Tensor:
    """Float model input from a batch: colour /255, depth as decoded, augment, normalise."""
    parts = []
    if batch.color is not None:
        parts.append(batch.color.float().div_(255))
    if batch.depth is not None:
        parts.append(batch.depth.float())
    x = parts[0] if len(parts) == 1 else torch.cat(parts, 1)
    for aug in augment:
        x = aug(x, generator, spec.color_channels)
    x = (x - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def fold_stats(store: Store, indices: np.ndarray, chunk: int = 512) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of the model input before normalisation (colour /255, depth as
    decoded) over ``indices`` (a fold's train role): colour channels over every pixel, depth over
    its valid (non-zero) pixels. Accumulated in float64, chunk by chunk."""
    sums = np.zeros((2, store.spec.channels))
    counts = np.zeros(store.spec.channels)
    for part in np.array_split(indices, max(1, -(-len(indices) // chunk))):
        if store.cached:
            t = torch.from_numpy(part)
            color = None if store.color is None else store.color.index_select(0, t.to(store.color.device)).cpu().numpy()
            depth = None if store.depth is None else store.depth.index_select(0, t.to(store.depth.device)).cpu().numpy()
        else:
            color, depth = store.decode_batch(part)
        channels = ([] if color is None else [(c / 255.0, None) for c in np.moveaxis(color, 1, 0)])
        channels += [] if depth is None else [(depth[:, 0].astype(np.float64), depth[:, 0] > 0)]
        for k, (values, valid) in enumerate(channels):
            v = values if valid is None else values[valid]
            sums[:, k] += (v.sum(), np.square(v).sum())
            counts[k] += v.size
    mean = sums[0] / np.maximum(counts, 1)
    std = np.sqrt(np.maximum(sums[1] / np.maximum(counts, 1) - mean**2, 0.0))
    return tuple(float(m) for m in mean), tuple(float(max(s, 1e-6)) for s in std)


def norm_tensors(spec: InputSpec, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor(spec.mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    return mean, std


from . import augment_extra  # noqa: E402,F401  (registers randaugment, resized_crop)
