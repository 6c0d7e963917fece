"""The sample store: a protocol manifest joined with the image bytes of its converted datasets.

``open_store`` joins the manifest's samples (all repeats and folds) with the image bytes of the
dataset dirs, each opened through ``ferbench.converted.open_dataset`` (``resolve_dirs`` checks each
dir's fingerprint against the manifest). Encoded bytes stay in Arrow buffers, which forked loader
workers share without copying. ``Store.decode_all`` decodes every image once, resized to the input
size, into one uint8 tensor (the memory cache; the runner uses it with ``cache="memory"``, or
"auto" when the decoded set fits ``cache_max_gb``). ``split_indices`` gives the store indices of
each role of one (repeat, fold); ``fold_stats`` the per-channel mean/std of a fold's train role
(``input.normalize: train``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from ..converted import ConvertedDataset, open_dataset
from ..errors import FerbenchError
from .inputs import InputSpec
from .decode import decode_color, decode_depth

if TYPE_CHECKING:
    from ..protocols import Manifest


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
        """Decoded uint8 colour (c, H, W) and float32 depth (1, H, W) of one sample (views)."""
        color, depth = self.decode_batch([i])
        return None if color is None else color[0], None if depth is None else depth[0]

    def decode_batch(self, indices: Sequence[int], color_out: np.ndarray | None = None,
                     depth_out: np.ndarray | None = None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Decoded uint8 colour (B, c, H, W) and float32 depth (B, 1, H, W) arrays of some samples.

        Colour is decoded straight into one (B, H, W, c) buffer (``color_out`` when given, e.g. shared
        memory) and returned as its (B, c, H, W) view, i.e. channels-last strides, with no copy between
        the decoder and the batch; depth goes into ``depth_out`` (B, 1, H, W) when given."""
        n, s, c = len(indices), self.spec.size, self.spec.color_channels
        color = depth = None
        if c:
            color = np.empty((n, s, s, c), np.uint8) if color_out is None else color_out
            for k, i in enumerate(indices):
                decode_color(_bytes(self.color_bytes, int(i), "rgb", self.sample_ids), s, c, out=color[k])
            color = color.transpose(0, 3, 1, 2)
        if self.spec.uses_depth:
            depth = np.empty((n, 1, s, s), np.float32) if depth_out is None else depth_out
            for k, i in enumerate(indices):
                raw = _bytes(self.depth_bytes, int(i), "depth", self.sample_ids)
                depth[k] = decode_depth(raw, s, float(self.depth_unit[int(i)]), self.spec)
        return color, depth

    def decode_all(self, workers: int, device: torch.device | str = "cpu") -> None:
        """Decode every sample once into uint8 / float32 tensors (threads over chunks, each decoding
        into its slice of one buffer; PIL releases the GIL), kept contiguous (B, C, H, W)."""
        n, s, c = len(self), self.spec.size, self.spec.color_channels
        color = np.empty((n, s, s, c), np.uint8) if c else None
        depth = np.empty((n, 1, s, s), np.float32) if self.spec.uses_depth else None
        bounds = np.linspace(0, n, max(1, -(-n // 256)) + 1).astype(int)

        def part(k: int) -> None:
            a, b = bounds[k], bounds[k + 1]
            self.decode_batch(range(a, b), None if color is None else color[a:b], None if depth is None else depth[a:b])

        with ThreadPoolExecutor(max(1, workers)) as pool:
            list(pool.map(part, range(len(bounds) - 1)))
        self.color = None if color is None else torch.from_numpy(color).permute(0, 3, 1, 2).contiguous().to(device)
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
