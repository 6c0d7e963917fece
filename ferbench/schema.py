"""The canonical ferbench schema: one Arrow schema every converted dataset lands in.

Core columns (every dataset has them, in this order):

============== ============================== ===============================================
column         Arrow type                     meaning
============== ============================== ===============================================
sample_id      string, not null               unique, derived from the raw relative path/row
dataset        string, not null               converter name (kept through merges)
source_split   string                         the dataset's own split, verbatim
subject_id     string                         ``<dataset>:<raw id>``, null if unknown
label          int8                           canonical 8-class index (see ``EMOTIONS``)
label_raw      string                         the dataset's own label, verbatim
label_source   string                         how ``label`` was derived (``annotation``, ...)
rgb            struct{bytes, path}            HF ``Image``: original encoded bytes
depth          struct{bytes, path}            HF ``Image``: 16-bit PNG, unit in metadata
aus            list<struct{au, intensity,     FACS action units, null if not annotated
               side}>
landmarks      list<list<float32>>            N points × 2 or 3 coordinates
landmark_scheme string                        e.g. ``ibug68-2d`` (see ``LANDMARK_SCHEMES``)
============== ============================== ===============================================

Dataset-specific columns follow the core ones. The schema describes itself: the Arrow
metadata key ``ferbench`` holds a JSON object (schema version, dataset name and version,
label names, the dataset's raw→canonical label map, converter fingerprint, depth unit,
synthetic flag) and the key ``huggingface`` holds the ``datasets`` features, so
``datasets.load_dataset("parquet", ...)`` decodes images and names labels offline.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import pyarrow as pa

SCHEMA_VERSION = "1.0"

#: The canonical 8 emotions, index = label id. AffectNet's own ids 0-7 use this order.
EMOTIONS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "sadness",
    "surprise",
    "fear",
    "disgust",
    "anger",
    "contempt",
)
EMOTION_INDEX: dict[str, int] = {name: i for i, name in enumerate(EMOTIONS)}

#: Landmark schemes a converter may name in ``landmark_scheme``.
LANDMARK_SCHEMES: dict[str, str] = {
    "ibug68-2d": "68-point iBUG/Multi-PIE layout, (x, y) image pixels, x first",
    "bu3dfe83-3d": "BU-3DFE 83 feature points, (x, y, z) mesh millimetres",
    "bosphorus24-3d": "Bosphorus up-to-24 named points, (x, y, z) scanner millimetres, NaN if absent",
    "bosphorus24-2d": "Bosphorus up-to-24 named points, (x, y) texture pixels, NaN if absent",
    "mediapipe468-2d": "MediaPipe face mesh 468 points, (x, y) image pixels",
    "synth-2d": "ferbench synthetic world key points, (x, y) image pixels",
}

IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
AU_TYPE = pa.list_(
    pa.struct([("au", pa.int16()), ("intensity", pa.float32()), ("side", pa.string())])
)
LANDMARKS_TYPE = pa.list_(pa.list_(pa.float32()))

CORE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("sample_id", pa.string(), nullable=False),
    pa.field("dataset", pa.string(), nullable=False),
    pa.field("source_split", pa.string()),
    pa.field("subject_id", pa.string()),
    pa.field("label", pa.int8()),
    pa.field("label_raw", pa.string()),
    pa.field("label_source", pa.string()),
    pa.field("rgb", IMAGE_TYPE),
    pa.field("depth", IMAGE_TYPE),
    pa.field("aus", AU_TYPE),
    pa.field("landmarks", LANDMARKS_TYPE),
    pa.field("landmark_scheme", pa.string()),
)
CORE_NAMES: tuple[str, ...] = tuple(f.name for f in CORE_FIELDS)
IMAGE_COLUMNS = ("rgb", "depth")


class SchemaError(ValueError):
    """A table or record does not fit the canonical schema."""


def image(data: bytes | None, path: str | None = None) -> dict[str, Any] | None:
    """An HF ``Image`` struct value: encoded bytes plus the raw relative path."""
    if data is None:
        return None
    return {"bytes": data, "path": path}


def namespaced(dataset: str, raw_id: str | int | None) -> str | None:
    """Subject id namespaced by dataset, so merged datasets never collide."""
    return None if raw_id is None else f"{dataset}:{raw_id}"


def make_schema(extra_fields: tuple[pa.Field, ...] = (), metadata: Mapping[str, Any] | None = None) -> pa.Schema:
    """The canonical schema plus dataset-specific columns, with self-describing metadata."""
    names = [f.name for f in extra_fields]
    clash = sorted(set(names) & set(CORE_NAMES)) or sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise SchemaError(f"extra columns clash with core or each other: {clash}")
    fields = list(CORE_FIELDS) + list(extra_fields)
    schema = pa.schema(fields)
    meta = dict(metadata or {})
    meta.setdefault("schema_version", SCHEMA_VERSION)
    meta.setdefault("label_names", list(EMOTIONS))
    return schema.with_metadata(
        {
            b"ferbench": json.dumps(meta, sort_keys=True).encode(),
            b"huggingface": json.dumps({"info": {"features": hf_features(schema)}}, sort_keys=True).encode(),
        }
    )


def ferbench_metadata(schema: pa.Schema) -> dict[str, Any]:
    """The ``ferbench`` metadata object of a schema (empty dict if absent)."""
    raw = (schema.metadata or {}).get(b"ferbench")
    return json.loads(raw) if raw else {}


def _hf_feature(name: str, dtype: pa.DataType) -> dict[str, Any]:
    if name == "label" or (name.endswith("_label") and pa.types.is_integer(dtype)):
        return {"_type": "ClassLabel", "names": list(EMOTIONS)}
    if name in IMAGE_COLUMNS or dtype == IMAGE_TYPE:
        return {"_type": "Image"}
    if pa.types.is_struct(dtype):
        return {dtype.field(i).name: _hf_feature(dtype.field(i).name, dtype.field(i).type) for i in range(dtype.num_fields)}
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype) or pa.types.is_fixed_size_list(dtype):
        return {"_type": "List", "feature": _hf_feature("", dtype.value_type)}
    if pa.types.is_binary(dtype):
        return {"_type": "Value", "dtype": "binary"}
    if pa.types.is_string(dtype):
        return {"_type": "Value", "dtype": "string"}
    if pa.types.is_boolean(dtype):
        return {"_type": "Value", "dtype": "bool"}
    if pa.types.is_floating(dtype):  # Arrow says "float"/"double", HF "float32"/"float64"
        return {"_type": "Value", "dtype": f"float{dtype.bit_width}"}
    return {"_type": "Value", "dtype": str(dtype)}


def hf_features(schema: pa.Schema) -> dict[str, Any]:
    """Hugging Face ``datasets`` features for a schema (label → ClassLabel, images → Image)."""
    return {f.name: _hf_feature(f.name, f.type) for f in schema}


def validate(table: pa.Table) -> None:
    """Raise ``SchemaError`` unless ``table`` holds the core columns with their types and valid labels."""
    for field in CORE_FIELDS:
        if field.name not in table.column_names:
            raise SchemaError(f"missing core column {field.name!r}")
        got = table.schema.field(field.name).type
        if got != field.type:
            raise SchemaError(f"column {field.name!r} has type {got}, expected {field.type}")
    if table.column("sample_id").null_count:
        raise SchemaError("sample_id has nulls")
    import pyarrow.compute as pc

    labels = table.column("label")
    if len(labels) - labels.null_count:
        lo, hi = pc.min(labels).as_py(), pc.max(labels).as_py()
        if lo < 0 or hi >= len(EMOTIONS):
            raise SchemaError(f"label outside 0..{len(EMOTIONS) - 1}: [{lo}, {hi}]")
    if pc.count_distinct(table.column("sample_id")).as_py() != table.num_rows:
        raise SchemaError("sample_id is not unique")
