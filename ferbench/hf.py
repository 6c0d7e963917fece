"""Hugging Face ``datasets`` view of a converted dataset: images decode, labels carry their names.

HF's ``ClassLabel`` is stored as int64 while the canonical ``label`` column is int8, so plain
``load_dataset("parquet", ...)`` shows ``label`` as ``Value("int8")``; pass ``features=`` (as
``load`` does) and it becomes a ``ClassLabel`` with the 8 canonical names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from .converted import open_dataset


def data_files(data_dir: str | Path) -> list[str]:
    return [str(p) for p in open_dataset(data_dir).shard_paths]


def features(data_dir: str | Path) -> Any:
    """The ``datasets.Features`` written into the shards' ``huggingface`` metadata."""
    import datasets

    schema = pq.read_schema(data_files(data_dir)[0])
    return datasets.Features.from_dict(json.loads(schema.metadata[b"huggingface"])["info"]["features"])


def load(data_dir: str | Path, **kwargs: Any) -> Any:
    """``datasets.load_dataset("parquet", ...)`` of a converted dataset, offline, with its features."""
    import datasets

    kwargs.setdefault("split", "train")
    return datasets.load_dataset("parquet", data_files=data_files(data_dir), features=features(data_dir), **kwargs)
