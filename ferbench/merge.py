"""Merged datasets built from converted ones: ``global`` (RGB-D) and ``avfer`` (2-D, 8 classes).

A merged dataset is an ordinary dataset directory (same schema, card, fingerprint, build
report). Provenance is kept row by row: ``dataset`` stays the row's origin, ``sample_id`` and
``subject_id`` keep their origin namespace, ``source_split`` stays the origin's split, and every
origin-specific column is kept (union of the sources' columns, null elsewhere). Labels are
already canonical, so harmonising them means choosing the class set and, where a merge derives a
label, saying so in ``label_source``. The build report lists per-source counts, exclusions by
reason, and the published reference counts with the known reasons for any difference.

**Global** (CalD3r/MenD3s + BU-3DFE + Bosphorus; Ulrich-lab thesis, 12,098 samples): 7 classes
(no contempt), rows with both RGB and depth. Bosphorus contributes its E_* and N_N scans and, with
``bosphorus_au_rule`` (default true, as in the thesis), AU scans mapped by the CK+-style rule
LFAU_24→anger, LFAU_9→disgust, LFAU_12→happiness, LFAU_15→sadness, UFAU_2→surprise,
UFAU_1→fear (exact codes; label_source ``au-rule``). Unlike the reference code, every neutral
scan and every repetition is kept (it overwrote them by name) and subjects stay whole.
Depth is brought to **one unit, orientation and reference**: 16-bit PNG, 0.1 mm per unit,
value = distance along the camera's viewing axis from a plane 50 mm in front of the face's
nearest point (larger = farther, as ``geometry.render`` draws BU-3DFE and Bosphorus), 0 = no
data, image upright (+y up) as seen from the camera. A source already in that convention passes
through untouched; others are rescaled/shifted and re-encoded (only those rows). Raw-sensor
depth (CalD3r/MenD3s, ``unit_mm: null``, an absolute distance) is scaled with ``sensor_unit_mm``
— default 0.125 mm (the SR300's native unit), **UNVERIFIED**: the dataset does not state its
unit; set 1.0 if your copy is in millimetres — and re-referenced per image to its nearest valid
pixel, so no source is told apart by its depth offset. ``depth_reference=source`` keeps each
source's own zero point (unit conversion only).

**AVFER** (FER2013 + CK+48-style peak frames + AffectNet; Aggregation for ViT on FER): 8 classes.
Grayscale images are brought to 3 channels (RGB PNG, identical channels); RGB passes through.
CK+ contributes the last 3 frames of each labelled sequence with the sequence label
(label_source ``sequence-label``). Test: ``test_per_class`` (500) AffectNet validation images per
class; val: ``val_per_class`` (500) AffectNet training images per class; both drawn by seed;
train: everything else (``avfer_split``). ``balance_per_class`` N > 0 balances train to N per
class (the original used 20,000 via offline augmentation): larger classes are subsampled, smaller
ones keep every image plus augmented copies (seeded rotation ±10°, zoom 0.8–1.2, brightness
0.7–1.3, horizontal flip), spread evenly over their sources; a copy's ``sample_id`` is
``<source sample_id>#aug<k>``, ``augmented_from`` names its source row and ``augment`` its
parameters (JSON).
"""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image, ImageEnhance, ImageOps

from . import __version__
from .build import BuildResult, write_dataset
from .errors import FerbenchError
from .imageio import decode, encode_png
from .protocols.base import TEST, TRAIN, Inputs, Source, load_inputs, np_col, require_columns, resolve_params, split_roles, stream
from .datasets.ckplus.protocols import last_frames
from .protocols.kfold import per_class_draw
from .schema import CORE_NAMES, EMOTIONS, make_schema

GLOBAL_DEPTH_UNIT_MM = 0.1
#: Global depth reference: the plane this far in front of the nearest surface point (as rendered).
MARGIN_MM = 50.0
AU_RULE: dict[tuple[str, str], int] = {
    ("LFAU", "24"): 6,
    ("LFAU", "9"): 5,
    ("LFAU", "12"): 1,
    ("LFAU", "15"): 2,
    ("UFAU", "2"): 3,
    ("UFAU", "1"): 4,
}


@dataclass
class Selection:
    """What a merge takes from one source; arrays align with the source rows (sample_id order)."""

    keep: np.ndarray
    label: np.ndarray
    label_source: dict[int, str] = field(default_factory=dict)  # row index → new label_source
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    copies: np.ndarray | None = None
    excluded: Counter = field(default_factory=Counter)


@dataclass(frozen=True)
class MergeSpec:
    name: str
    title: str
    sources: tuple[str, ...]
    params: dict[str, Any]
    columns: tuple[str, ...]
    extra_fields: tuple[pa.Field, ...]
    select: Callable[[Inputs, int, dict[str, Any]], dict[str, Selection]]
    images: Callable[[Source, dict[str, Any]], "RowImages"]
    reference: dict[str, Any]
    require: tuple[str, ...]  # image columns a row must have (checked while streaming)
    metadata: Callable[[dict[str, "RowImages"], dict[str, Any]], dict[str, Any]] = lambda images, params: {}


class RowImages:
    """Per-source image transform of a merge (identity by default).

    ``note`` describes the transform (schema metadata and build report); ``counts`` are tallied
    while rows stream through (build report only).
    """

    note: dict[str, Any] = {}

    def __init__(self, src: Source, params: dict[str, Any]):
        self.counts: Counter = Counter()

    def rgb(self, data: bytes) -> bytes:
        return data

    def depth(self, data: bytes) -> bytes:
        return data


# -- Global -------------------------------------------------------------------------------------
GLOBAL_CLASSES = (0, 1, 2, 3, 4, 5, 6)


def _global_select(inputs: Inputs, seed: int, params: dict[str, Any]) -> dict[str, Selection]:
    out = {}
    for name, src in inputs.sources.items():
        t = src.table
        label = np_col(t, "label", -1).astype(np.int64)
        sel = Selection(np.zeros(t.num_rows, bool), label)
        if name == "bosphorus":
            require_columns(src, "scan_class", "scan_code")
            _bosphorus_labels(t, sel, params["bosphorus_au_rule"])
        sel.keep = np.isin(sel.label, GLOBAL_CLASSES)
        sel.excluded["no-label-in-7-classes"] = int((~sel.keep).sum())
        out[name] = sel
    return out


def _bosphorus_labels(t: pa.Table, sel: Selection, au_rule: bool) -> None:
    """E_*/N_N scans keep their label; AU scans get the AU rule's label (or none)."""
    scan, code = np_col(t, "scan_class", ""), np_col(t, "scan_code", "")
    source = np_col(t, "label_source", "")
    derived = source == "au-rule"
    if not au_rule:
        sel.label[derived] = -1
        return
    for i in np.flatnonzero(sel.label < 0):
        rule = AU_RULE.get((scan[i], code[i]))
        if rule is not None:
            sel.label[i] = rule
            sel.label_source[int(i)] = "au-rule"


class _DepthHarmonise(RowImages):
    """Depth to the Global convention: 0.1 mm units, nearest surface point at ``MARGIN_MM``.

    A rendered source already in 0.1 mm with the same reference plane passes through untouched;
    a rendered source with another margin is shifted; sensor depth (an absolute distance) is
    scaled by its unit and re-referenced per image to its nearest valid point.
    """

    def __init__(self, src: Source, params: dict[str, Any]):
        super().__init__(src, params)
        meta = src.data.metadata().get("depth")
        if not meta:
            raise FerbenchError(f"{src.name}: its schema metadata does not state the depth unit")
        if meta.get("up", "+y") != "+y":
            raise FerbenchError(f"{src.name}: depth image with up={meta['up']!r}; Global needs upright images")
        if params["depth_reference"] not in ("nearest", "source"):
            raise FerbenchError(f"depth_reference={params['depth_reference']!r}; choose nearest or source")
        assumed = meta.get("unit_mm") is None
        self.unit = float(params["sensor_unit_mm"] if assumed else meta["unit_mm"])
        margin = (meta.get("camera") or {}).get("margin_mm")
        self.per_image = params["depth_reference"] == "nearest" and (meta.get("source") == "sensor" or margin is None)
        self.shift = MARGIN_MM - margin if params["depth_reference"] == "nearest" and not self.per_image else 0.0
        self.identity = abs(self.unit - GLOBAL_DEPTH_UNIT_MM) < 1e-12 and self.shift == 0 and not self.per_image
        self.note = {
            "from": {k: meta.get(k) for k in ("unit_mm", "source", "zero")},
            "unit_mm": self.unit,
            "assumed_unit": assumed,
            "reference": "per image: nearest point" if self.per_image else f"shift {self.shift:+g} mm",
            "re_encoded": not self.identity,
        }

    def depth(self, data: bytes) -> bytes:
        if self.identity:
            return data
        raw = decode(data)
        valid = raw > 0
        mm = raw.astype(np.float64) * self.unit
        if self.per_image and valid.any():
            mm -= mm[valid].min() - MARGIN_MM
        else:
            mm += self.shift
        units = np.rint(mm / GLOBAL_DEPTH_UNIT_MM)
        if (units[valid] > 65535).any():
            self.counts["images_saturated"] += 1  # points beyond 6553.5 mm are clipped to 65535
        out = np.clip(units, 1, 65535).astype(np.uint16)
        out[~valid] = 0  # 0 stays "no data", a measured point never becomes 0
        return encode_png(out)


def _global_depth_metadata(images: dict[str, RowImages], params: dict[str, Any]) -> dict[str, Any]:
    """The schema's ``depth`` entry of the Global set (what every source was brought to)."""
    nearest = params["depth_reference"] == "nearest"
    return {
        "depth": {
            "unit_mm": GLOBAL_DEPTH_UNIT_MM,
            "zero": "invalid",
            "source": "harmonised",
            "reference": f"plane {MARGIN_MM:g} mm in front of the nearest surface point; larger = farther"
            if nearest
            else "each source's own (see from)",
            "up": "+y",
            "from": {n: img.note for n, img in images.items()},
        }
    }


GLOBAL = MergeSpec(
    name="global",
    title="Global (CalD3r/MenD3s + BU-3DFE + Bosphorus, RGB-D, 7 classes)",
    sources=("bosphorus", "bu3dfe", "caldr_menders"),
    params={"bosphorus_au_rule": True, "sensor_unit_mm": 0.125, "depth_reference": "nearest"},
    columns=("label_source", "scan_class", "scan_code"),
    extra_fields=(),
    select=_global_select,
    images=_DepthHarmonise,
    require=("rgb", "depth"),
    metadata=_global_depth_metadata,
    reference={
        "source": "Ulrich-lab RGB-D FER thesis (Global dataset) and its public code's plot script",
        "total_text": 12098,
        "total_per_class_figure": 12118,
        "per_class": {"anger": 1397, "disgust": 1646, "fear": 1055, "happiness": 1779, "neutral": 3620, "sadness": 1688, "surprise": 933},
        "per_source": {"caldr_menders": 8716, "bu3dfe": 2500, "bosphorus": 902},
        "explanations": [
            "the thesis text says 12,098 while its per-class figure sums to 12,118 (8,716 + 2,500 + 902)",
            "the reference code copied every Bosphorus neutral scan to one file name per subject and let "
            "E_X_1 overwrite E_X_0, so it kept one neutral and one scan per emotion per subject; ferbench keeps all",
            "CalD3r/MenD3s rows without their RGB or depth partner (2 known pairs) are excluded here",
            "bosphorus_au_rule=false leaves the AU-derived Bosphorus scans out",
        ],
    },
)


# -- AVFER --------------------------------------------------------------------------------------
AVFER_CLASSES = tuple(range(8))


def _avfer_select(inputs: Inputs, seed: int, params: dict[str, Any]) -> dict[str, Selection]:
    sels: dict[str, Selection] = {}
    split: dict[str, np.ndarray] = {}
    for name, src in inputs.sources.items():
        t = src.table
        label = np_col(t, "label", -1).astype(np.int64)
        sel = Selection(np.zeros(t.num_rows, bool), label)
        if name == "ckplus":
            peak = last_frames(t, 3)
            sel.label = np.where(peak, np_col(t, "sequence_label", -1), -1).astype(np.int64)
            sel.label_source = {int(i): "sequence-label" for i in np.flatnonzero(peak & (label < 0))}
            sel.excluded["not-a-peak-frame"] = int((~peak).sum())
        labelled = np.isin(sel.label, AVFER_CLASSES)
        sel.excluded["no-label"] += int((~labelled).sum() - sel.excluded["not-a-peak-frame"])
        roles = np.full(t.num_rows, TRAIN, np.int8)  # FER2013 (all splits) and CK+ only ever train
        if name == "affectnet":
            roles = split_roles(t["source_split"], {"train": TRAIN, "val": TEST}, name)
        s = np.full(t.num_rows, "", dtype=object)
        s[labelled & (roles == TRAIN)] = "train"
        if name == "affectnet":
            test = per_class_draw(sel.label, labelled & (roles == TEST), params["test_per_class"], stream(seed, "avfer", "test"))
            val = per_class_draw(sel.label, labelled & (roles == TRAIN), params["val_per_class"], stream(seed, "avfer", "val"))
            s[test], s[val] = "test", "val"
            sel.excluded["affectnet-val-beyond-test-quota"] = int((labelled & (roles == TEST) & ~test).sum())
        sel.keep = s != ""
        sels[name], split[name] = sel, s
    if params["balance_per_class"] > 0:
        _balance(sels, split, params["balance_per_class"], seed)
    for name, sel in sels.items():
        sel.columns["avfer_split"] = np.where(split[name] == "", None, split[name])
    return sels


def _balance(sels: dict[str, Selection], split: dict[str, np.ndarray], n: int, seed: int) -> None:
    """Train to ``n`` per class: subsample big classes, add evenly spread copies to small ones."""
    names = sorted(sels)
    owner = np.concatenate([np.full(len(sels[k].keep), i) for i, k in enumerate(names)])
    row = np.concatenate([np.arange(len(sels[k].keep)) for k in names])
    label = np.concatenate([sels[k].label for k in names])
    train = np.concatenate([split[k] == "train" for k in names])
    copies = np.zeros(len(label), np.int64)
    drop = np.zeros(len(label), bool)
    for c in AVFER_CLASSES:
        idx = np.flatnonzero(train & (label == c))
        if not len(idx):
            continue
        rng = stream(seed, "avfer", "balance", c)
        if len(idx) >= n:
            drop[np.setdiff1d(idx, rng.choice(idx, n, replace=False))] = True
        else:
            perm = rng.permutation(idx)
            need = n - len(idx)
            copies[perm] += need // len(idx)
            copies[perm[: need % len(idx)]] += 1
    for i, k in enumerate(names):
        mine = owner == i
        sels[k].copies = copies[mine]
        dropped = row[mine & drop]
        split[k][dropped] = ""
        sels[k].keep[dropped] = False
        sels[k].excluded["balanced-out"] = len(dropped)


class _ToRGB(RowImages):
    """Grayscale (or palette, CMYK, ...) images → 3-channel RGB PNG; RGB bytes pass through."""

    note = {"grayscale": "to 3-channel RGB PNG"}

    def rgb(self, data: bytes) -> bytes:
        with Image.open(io.BytesIO(data)) as im:
            if im.mode == "RGB":
                return data
            self.counts["converted_to_rgb"] += 1
            return encode_png(np.asarray(im.convert("RGB")))


def augment(data: bytes, rng: np.random.Generator) -> tuple[bytes, dict[str, Any]]:
    """One augmented copy (rotation, zoom, brightness, flip) of an RGB image, and its parameters."""
    p = {
        "rotate": round(float(rng.uniform(-10, 10)), 3),
        "zoom": round(float(rng.uniform(0.8, 1.2)), 3),
        "brightness": round(float(rng.uniform(0.7, 1.3)), 3),
        "flip": bool(rng.random() < 0.5),
    }
    with Image.open(io.BytesIO(data)) as im:
        fmt, img = im.format, im.convert("RGB")
    w, h = img.size
    img = img.rotate(p["rotate"], resample=Image.Resampling.BILINEAR)
    cw, ch = min(w, round(w / p["zoom"])), min(h, round(h / p["zoom"]))
    img = img.crop(((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch)).resize((w, h), Image.Resampling.BILINEAR)
    img = ImageEnhance.Brightness(img).enhance(p["brightness"])
    if p["flip"]:
        img = ImageOps.mirror(img)
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.save(buf, format="JPEG", quality=90)
    else:
        img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue(), p


AVFER = MergeSpec(
    name="avfer",
    title="AVFER (FER2013 + CK+ peak frames + AffectNet, 8 classes)",
    sources=("affectnet", "ckplus", "fer2013"),
    params={"test_per_class": 500, "val_per_class": 500, "balance_per_class": 0},
    columns=("sequence_id", "frame_index", "n_frames", "sequence_label"),
    extra_fields=(
        pa.field("avfer_split", pa.string()),
        pa.field("augmented_from", pa.string()),
        pa.field("augment", pa.string()),
    ),
    select=_avfer_select,
    images=_ToRGB,
    require=("rgb",),
    reference={
        "source": "AVFER report (Aggregation for ViT on FER)",
        "train_balanced": {"per_class": 20000, "total_reported": 161000},
        "test": {"per_class": 500, "total": 4000, "origin": "AffectNet only"},
        "explanations": [
            "the report balanced its training set to about 20,000 per class (161,000 images) with offline "
            "augmentation: use balance_per_class=20000 to do the same",
            "the report used a Kaggle copy of CK+48 (about 1,000 images); ferbench takes the last 3 frames of "
            "each labelled CK+ sequence (981 images from the full release or CK+48)",
            "the AffectNet small release has 499 contempt validation images, so its test set has 3,999",
        ],
    },
)

MERGES: dict[str, MergeSpec] = {m.name: m for m in (GLOBAL, AVFER)}


# -- the builder --------------------------------------------------------------------------------
def merge(name: str, data_dirs: list[str | Path], out_dir: str | Path, seed: int = 0, overwrite: bool = False, **params: Any) -> BuildResult:
    """Build merged dataset ``name`` from the converted source directories into ``out_dir``."""
    t0 = time.perf_counter()
    try:
        spec = MERGES[name]
    except KeyError:
        raise FerbenchError(f"unknown merge {name!r}; known: {', '.join(sorted(MERGES))}") from None
    params = resolve_params(f"merge {name}", spec.params, params)
    inputs = load_inputs(list(data_dirs), spec.columns)
    if set(inputs.sources) != set(spec.sources):
        raise FerbenchError(f"merge {name} needs exactly {list(spec.sources)}; got {sorted(inputs.sources)}")
    sels = spec.select(inputs, int(seed), params)
    images = {n: spec.images(inputs.sources[n], params) for n in spec.sources}
    schema = make_schema(_union_extras(inputs, spec), _metadata(spec, inputs, images, params, seed))
    per_source: dict[str, Any] = {}
    tables = _rows(spec, inputs, sels, images, schema, int(seed), per_source)
    card = {
        "name": spec.name,
        "title": spec.title,
        "version": "1",
        "layout": "merged",
        "synthetic": any(s.card.synthetic for s in inputs.sources.values()),
        "sources": [{"name": s.name, "fingerprint": s.card.fingerprint, "path": str(s.path)} for s in inputs.sources.values()],
        "seed": int(seed),
        "params": params,
    }
    report: dict[str, Any] = {"params": params, "seed": int(seed), "sources": per_source, "reference": spec.reference}
    tables = _then(tables, lambda: report.update(_summary(per_source, images, spec.reference, t0)))
    result = write_dataset(tables, schema, out_dir, card, report, overwrite=overwrite)
    return BuildResult(result.out_dir, result.num_rows, result.fingerprint, report)


def _then(items: Iterator[pa.Table], done: Callable[[], None]) -> Iterator[pa.Table]:
    """``items``, then ``done()`` once they are exhausted (before the writer writes its report)."""
    yield from items
    done()


def _union_extras(inputs: Inputs, spec: MergeSpec) -> tuple[pa.Field, ...]:
    fields: dict[str, pa.Field] = {}
    for src in inputs.sources.values():
        for f in src.data.schema():
            if f.name in CORE_NAMES:
                continue
            if f.name in fields and fields[f.name].type != f.type:
                raise FerbenchError(f"column {f.name!r} has type {fields[f.name].type} in one source and {f.type} in {src.name}")
            fields[f.name] = f.with_nullable(True)
    for f in spec.extra_fields:
        fields[f.name] = f
    return tuple(fields.values())


def _metadata(spec: MergeSpec, inputs: Inputs, images: dict[str, RowImages], params: dict[str, Any], seed: int) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "dataset": spec.name,
        "dataset_title": spec.title,
        "dataset_version": "1",
        "layout": "merged",
        "merged_from": [{"name": s.name, "fingerprint": s.card.fingerprint} for s in inputs.sources.values()],
        "merge_params": params,
        "seed": int(seed),
        "label_map": {},
        "converter": f"ferbench.merge.{spec.name}",
        "converter_version": __version__,
    }
    return {**meta, **spec.metadata(images, params)}


def _rows(spec, inputs, sels, images, schema, seed, per_source) -> Iterator[pa.Table]:
    """The merged rows, source by source (sample_ids carry the source name, so this is sorted)."""
    for name in sorted(inputs.sources):
        src, sel = inputs.sources[name], sels[name]
        stats = per_source.setdefault(name, {"rows_in": src.table.num_rows})
        offset = 0
        for shard in src.data.shard_paths:
            table = pq.read_table(shard)
            span = slice(offset, offset + table.num_rows)
            if not table["sample_id"].equals(src.table["sample_id"].slice(offset, table.num_rows)):
                raise FerbenchError(f"{name}: shard {shard} is not in the dataset's sample_id order")
            offset += table.num_rows
            _drop_incomplete(table, sel, span, spec.require)
            out = _chunk(table, sel, span, images[name], schema, seed)
            if out.num_rows:
                yield out
        stats["excluded"] = {k: v for k, v in sel.excluded.items() if v}
        kept = np.flatnonzero(sel.keep)
        weight = 1 + (0 if sel.copies is None else sel.copies[kept])  # a row and its augmented copies
        stats["rows_out"] = int(np.sum(weight * np.ones(len(kept), np.int64)))
        per_class = np.bincount(sel.label[kept], weights=weight * np.ones(len(kept)), minlength=len(EMOTIONS))
        stats["per_class"] = {EMOTIONS[c]: int(n) for c, n in enumerate(per_class) if n}
        if sel.copies is not None:
            stats["augmented_copies"] = int(sel.copies[kept].sum())
        if "avfer_split" in sel.columns:
            splits = sel.columns["avfer_split"][kept]
            stats["per_split"] = {sp: int(np.sum(weight * (splits == sp))) for sp in sorted(set(splits.tolist()))}


def _drop_incomplete(table: pa.Table, sel: Selection, span: slice, require: tuple[str, ...]) -> None:
    """Unselect rows of this shard that lack a required image (counted as an exclusion)."""
    present = np.ones(table.num_rows, bool)
    for col in require:
        present &= table[col].is_valid().to_numpy(zero_copy_only=False)
    missing = sel.keep[span] & ~present
    if missing.any():
        sel.keep[span][missing] = False
        sel.excluded[f"missing-{'-or-'.join(require)}"] += int(missing.sum())


def _chunk(table: pa.Table, sel: Selection, span: slice, images: RowImages, schema: pa.Schema, seed: int) -> pa.Table:
    """The kept rows of one source shard with merged labels, extra columns, images and copies."""
    local = np.flatnonzero(sel.keep[span])
    idx = local + span.start
    sub = table.take(pa.array(local))
    label = sel.label[idx]
    sources = sub["label_source"].to_pylist()
    new: dict[str, pa.Array] = {
        "label": pa.array(label, mask=label < 0, type=pa.int8()),
        "label_source": pa.array([sel.label_source.get(int(i), s) for i, s in zip(idx, sources)], pa.string()),
        "rgb": _images(sub["rgb"], images.rgb),
        "depth": _images(sub["depth"], images.depth),
    }
    for col, values in sel.columns.items():
        new[col] = pa.array(values[idx].tolist(), schema.field(col).type)
    n = len(local)
    out = pa.table({f.name: new.get(f.name, sub[f.name] if f.name in sub.column_names else pa.nulls(n, f.type)) for f in schema}, schema=schema)
    if sel.copies is None or not sel.copies[idx].any():
        return out
    with_copies = np.flatnonzero(sel.copies[idx])
    originals = out.take(pa.array(with_copies)).to_pylist()
    copies = [_copy(r, k, seed) for i, r in zip(with_copies, originals) for k in range(int(sel.copies[idx][i]))]
    out = pa.concat_tables([out, pa.Table.from_pylist(copies, schema=schema)])
    return out.take(pc.sort_indices(out, [("sample_id", "ascending")]))


def _images(column: pa.ChunkedArray, fn: Callable[[bytes], bytes]) -> pa.Array:
    values = column.to_pylist()
    return pa.array([None if v is None or v["bytes"] is None else {"bytes": fn(v["bytes"]), "path": v["path"]} for v in values], column.type)


def _copy(r: dict[str, Any], k: int, seed: int) -> dict[str, Any]:
    data, params = augment(r["rgb"]["bytes"], stream(seed, "avfer", "augment", r["sample_id"], k))
    return {
        **r,
        "sample_id": f"{r['sample_id']}#aug{k:05d}",
        "rgb": {"bytes": data, "path": r["rgb"]["path"]},
        "landmarks": None,  # the geometry changed
        "landmark_scheme": None,
        "augmented_from": r["sample_id"],
        "augment": json.dumps(params, sort_keys=True),
    }


def _summary(per_source: dict[str, Any], images: dict[str, RowImages], reference: dict[str, Any], t0: float) -> dict[str, Any]:
    total: Counter = Counter()
    for stats in per_source.values():
        total.update(stats["per_class"])
    return {
        "per_class": {c: total[c] for c in EMOTIONS if total[c]},
        "rows_out": sum(s["rows_out"] for s in per_source.values()),
        "images": {n: {**img.note, **img.counts} for n, img in images.items()},
        "difference_to_reference": {n: per_source[n]["rows_out"] - v for n, v in reference.get("per_source", {}).items() if n in per_source},
        "seconds": round(time.perf_counter() - t0, 3),
    }
