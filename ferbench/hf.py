"""Hugging Face ``datasets`` view of a converted dataset: images decode, labels carry their names.

A dataset directory is a standard one: ``datasets.load_dataset(OUT, split="train")`` needs no
ferbench code (its ``README.md`` names the features). ``load`` does the same, offline, and also
reads directories written by ferbench's first layout (no README there), passing the features
from the shards' ``huggingface`` schema metadata.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .converted import open_dataset


def features(data_dir: str | Path) -> Any:
    """The ``datasets.Features`` of a converted dataset (label columns as ``ClassLabel``)."""
    import datasets

    schema = open_dataset(data_dir).schema()
    return datasets.Features.from_dict(json.loads(schema.metadata[b"huggingface"])["info"]["features"])


def load(data_dir: str | Path, **kwargs: Any) -> Any:
    """``datasets.load_dataset`` of a converted dataset directory (one split, ``train``)."""
    import datasets

    data = open_dataset(data_dir)
    kwargs.setdefault("split", "train")
    if not data.legacy:
        return datasets.load_dataset(str(data.path), **kwargs)
    files = [str(p) for p in data.shard_paths]
    return datasets.load_dataset("parquet", data_files=files, features=features(data_dir), **kwargs)
