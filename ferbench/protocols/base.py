"""The pieces every protocol is made of: the registry, the loaded inputs, the plan, seeded streams.

A protocol is a ``Protocol`` record (name, version, one-line description, the datasets it needs,
its default parameters) whose ``plan`` function turns the loaded inputs into a ``Plan``: the
participating samples (sorted by ``sample_id``) with their canonical label, and a role code per
(repeat, fold, sample). ``ferbench.protocols.materialise`` turns the plan into a manifest.

Determinism: inputs are sorted by ``sample_id`` before a protocol sees them and every random
choice draws from ``stream(seed, purpose, ...)``, so a manifest depends only on the data and the
seed, never on file-system or row order.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..converted import ConvertedDataset, DatasetCard, open_dataset
from ..errors import FerbenchError
from ..params import resolve_params  # noqa: F401  (re-exported)
from ..registry import Registry
from ..schema import EMOTIONS

#: Role codes: the index into ROLES, which is alphabetical so that sorting by code sorts by name.
ROLES: tuple[str, ...] = ("test", "train", "val")
TEST, TRAIN, VAL = 0, 1, 2
ABSENT = -1
#: Columns every protocol reads; a protocol may ask for more (``Protocol.columns``).
BASE_COLUMNS: tuple[str, ...] = ("sample_id", "dataset", "source_split", "subject_id", "label")


class LeakageError(FerbenchError):
    """A manifest would leak test information into training (pass allow_leakage to keep it)."""


@dataclass(frozen=True)
class Source:
    """One converted (or merged) dataset directory, with the columns the protocol reads."""

    name: str
    data: ConvertedDataset
    table: pa.Table  # sorted by sample_id

    @property
    def path(self) -> Path:
        return self.data.path

    @property
    def card(self) -> DatasetCard:
        return self.data.card


@dataclass
class Inputs:
    """The datasets given to a protocol, by card name."""

    sources: dict[str, Source]

    def get(self, name: str) -> Source:
        try:
            return self.sources[name]
        except KeyError:
            raise FerbenchError(f"this protocol needs a converted {name!r} dataset; got {sorted(self.sources) or 'none'}") from None


@dataclass
class Plan:
    """What a protocol decides: who takes part, with which label, in which role per fold.

    ``rows`` holds sample_id, dataset, subject_id, label_canonical (int8), sorted by sample_id;
    ``roles`` is int8 (repeats, folds, len(rows)) with codes TEST/TRAIN/VAL or ABSENT.
    """

    rows: pa.Table
    roles: np.ndarray
    classes: tuple[int, ...]
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    datasets: tuple[str, ...]
    plan: Callable[[Inputs, int, dict[str, Any]], Plan]
    params: dict[str, Any] = field(default_factory=dict)
    columns: tuple[str, ...] = ()
    version: str = "1"
    #: An "as published" protocol: reproduces a report's own (leaky) split. ``leakage_stated``
    #: says how it leaks; with it, ``materialise`` keeps the leak (verdict ``leaky-published``).
    published: bool = False
    leakage_stated: str = ""
    #: The protocol's official split is known to hold pixel-identical images across train and
    #: test (FER2013): they are counted and listed (verdict ``exact-duplicates-declared``), not refused.
    allow_exact_duplicates: bool = False


#: Every protocol, by name: the generic ones register in ``ferbench.protocols``, the
#: dataset-specific ones in their dataset folder (``ferbench/datasets/<name>/protocols.py``).
PROTOCOLS: Registry[Protocol] = Registry("protocol", populate=("ferbench.protocols", "ferbench.datasets"))


def register(protocol: Protocol) -> Protocol:
    return PROTOCOLS.register(protocol.name, protocol)


def get_protocol(name: str) -> Protocol:
    return PROTOCOLS.get(name)


def all_protocols() -> dict[str, Protocol]:
    return dict(PROTOCOLS.items())


def load_inputs(data_dirs: list[str | Path], columns: tuple[str, ...]) -> Inputs:
    """Read the needed columns of each dataset directory, sorted by sample_id, keyed by card name."""
    sources: dict[str, Source] = {}
    for d in data_dirs:
        data = open_dataset(Path(d).resolve())
        name = data.card.name
        if name in sources:
            raise FerbenchError(f"two inputs are both {name!r}: {sources[name].path} and {data.path}")
        present = set(data.column_names())
        cols = [c for c in dict.fromkeys(BASE_COLUMNS + columns) if c in present]
        table = data.read(cols).combine_chunks()
        table = table.take(pc.sort_indices(table, [("sample_id", "ascending")]))
        sources[name] = Source(name, data, table)
    return Inputs(sources)


def require_columns(source: Source, *names: str) -> None:
    missing = [n for n in names if n not in source.table.column_names]
    if missing:
        raise FerbenchError(f"{source.name} at {source.path} lacks column(s) {missing} that this protocol needs")


def stream(seed: int, *keys: str | int) -> np.random.Generator:
    """An independent, reproducible random stream for (seed, purpose, ...)."""
    words = [int(seed)] + [k if isinstance(k, int) else zlib.crc32(str(k).encode()) for k in keys]
    return np.random.default_rng(np.random.SeedSequence(words))


def class_list(classes: tuple[int, ...]) -> list[str]:
    return [EMOTIONS[c] for c in classes]


def np_col(table: pa.Table, name: str, fill: Any = None) -> np.ndarray:
    """A column as a numpy array (nulls replaced by ``fill`` when given)."""
    col = table.column(name)
    if fill is not None:
        col = pc.fill_null(col, fill)
    return col.to_numpy(zero_copy_only=False)


def plan_rows(source: Source, mask: np.ndarray, label: np.ndarray | None = None) -> pa.Table:
    """The plan's ``rows`` table for the rows of ``source`` selected by ``mask``."""
    t = source.table
    idx = np.flatnonzero(mask)
    lab = np_col(t, "label", -1) if label is None else label
    return pa.table(
        {
            "sample_id": t.column("sample_id").take(idx),
            "dataset": t.column("dataset").take(idx),
            "subject_id": t.column("subject_id").take(idx),
            "label_canonical": pa.array(lab[idx].astype(np.int8), pa.int8()),
        }
    )


def in_classes(labels: np.ndarray, classes: tuple[int, ...]) -> np.ndarray:
    """Boolean mask: labels (nulls as -1) that belong to ``classes``."""
    return np.isin(labels, np.asarray(classes, dtype=labels.dtype if labels.dtype.kind in "iu" else np.int64))


def split_roles(column: pa.ChunkedArray, mapping: dict[str, int], dataset: str) -> np.ndarray:
    """Role codes from a source_split column via a case-insensitive mapping (ABSENT otherwise)."""
    lowered = {k.lower(): v for k, v in mapping.items()}
    enc = pc.utf8_lower(pc.fill_null(column, "")).combine_chunks().dictionary_encode()
    names = enc.dictionary.to_pylist()
    if not any(n in lowered for n in names):
        raise FerbenchError(f"{dataset}: none of the splits {sorted(names)} is one of {sorted(mapping)}")
    codes = np.array([lowered.get(n, ABSENT) for n in names] or [ABSENT], dtype=np.int8)
    return codes[enc.indices.to_numpy(zero_copy_only=False)]
