""""As published" protocols: the (leaky) splits the reproduced reports actually used.

They exist to reproduce a number, never to rank a method: each declares how it leaks
(``Protocol.published`` and ``leakage_stated``), ``materialise`` keeps that leak only because it is
stated (verdict ``leaky-published``; no ``allow_leakage`` needed), and the manifest metadata carries
``published: true`` and ``leakage_stated`` so that a leaderboard shows its board as LEAKY. Their
names end in ``-published`` (or ``-random-kfold`` / ``-folds``), so they never share a board with an
honest protocol.

* ``published_protocol(name, description, dataset, classes, leakage_stated)``: scikit-learn's
  ``KFold(k, shuffle=True, random_state=seed)`` over the samples (rows sorted by sample_id), no
  validation set (the reports selected epochs on the test fold). Declared per dataset:
  ``caldr_menders7-published``, ``bu3dfe7-published``, ``bu3dfe-p1-published``; here:
  ``global-published`` and ``global-published-8020`` (one 80/20 sample split).
* ``random_kfold_protocol(base)``: ``<base>-random-kfold``, the image-level random k-fold most FER
  repositories use, over the rows (and labels) of any protocol ``base``; leaky wherever the
  dataset has subjects.
* ``folds_protocol(base)``: ``<base>-folds``, a published fold list (a CSV/TSV or a list like
  Emotion-FAN's CK+ file) applied to the rows of protocol ``base``; the list itself is stored in
  the parameters (``assignments``), so the manifest can be planned again without the file.
  ``read_folds_file`` reads such a file and ``materialise_folds`` (``ferbench split --folds``)
  builds it through ``materialise`` (verified; a leaky list needs ``leakage_stated``).

``derived_protocol(name)`` registers ``<base>-random-kfold`` / ``<base>-folds`` on demand.
"""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import FerbenchError
from .base import PROTOCOLS, Inputs, Plan, Protocol, get_protocol, in_classes, np_col, plan_rows, register, resolve_params
from .kfold import fold_roles, sample_holdout, sample_kfold
from .official import SEVEN

SAMPLE_KFOLD_LEAK = (
    "sample-level KFold(k, shuffle=True): one subject's images are in train and test of the same fold "
    "(the report also selected epochs on the test fold)"
)
RANDOM_KFOLD_LEAK = "image-level random k-fold: a subject's images are in train and test of the same fold"
#: The manifest meta keys a leaderboard reads: ``published`` (bool) → show the board as LEAKY.
META_PUBLISHED, META_LEAKAGE_STATED = "published", "leakage_stated"


def sample_kfold_plan(dataset: str, classes: tuple[int, ...]):
    """Plan: rows of ``dataset`` labelled with ``classes``; ``KFold(k, shuffle, random_state=seed + r)``."""

    def plan(inputs: Inputs, seed: int, params: dict[str, Any]) -> Plan:
        src = inputs.get(dataset)
        rows = plan_rows(src, in_classes(np_col(src.table, "label", -1), classes))
        return Plan(rows, kfold_roles(rows.num_rows, seed, params), classes)

    return plan


def kfold_roles(n: int, seed: int, params: dict[str, Any]) -> np.ndarray:
    k, repeats = int(params["k"]), int(params.get("repeats", 1))
    folds = np.stack([sample_kfold(n, k, seed + r) for r in range(repeats)])
    return fold_roles(folds, k, params.get("val", "none"))


def published_protocol(name: str, description: str, dataset: str, classes: tuple[int, ...], leakage_stated: str = SAMPLE_KFOLD_LEAK,
                       k: int = 5, plan=None, params: dict[str, Any] | None = None, columns: tuple[str, ...] = (),
                       datasets: tuple[str, ...] | None = None) -> Protocol:
    """Register an as-published protocol (default: sample-level ``KFold(k, shuffle, seed)``, no val)."""
    return register(Protocol(
        name, f"{description} [AS PUBLISHED, LEAKY: {leakage_stated}]", (dataset,) if datasets is None else datasets, plan or sample_kfold_plan(dataset, classes),
        params if params is not None else {"k": k, "repeats": 1, "val": "none"}, columns,
        published=True, leakage_stated=leakage_stated,
    ))


def holdout_plan(dataset: str, classes: tuple[int, ...]):
    """Plan: one ``train_test_split(test_size=test, shuffle=True, random_state=seed)`` over the samples."""

    def plan(inputs: Inputs, seed: int, params: dict[str, Any]) -> Plan:
        src = inputs.get(dataset)
        rows = plan_rows(src, in_classes(np_col(src.table, "label", -1), classes))
        return Plan(rows, sample_holdout(rows.num_rows, params["test"], seed)[None, None, :], classes)

    return plan


# -- derived from any protocol: image-level random k-fold, a published fold list -------------------------
_DERIVED: dict[str, Protocol] = {}


def _base_rows(base: Protocol, inputs: Inputs, seed: int) -> Plan:
    return base.plan(inputs, seed, resolve_params(f"protocol {base.name}", base.params, {}))


def random_kfold_protocol(base: str, k: int = 5) -> Protocol:
    """``<base>-random-kfold``: the rows and labels of protocol ``base``, image-level ``KFold(k,
    shuffle, seed)``, no val; leaky (stated) wherever subjects exist."""
    return _derived(f"{base}-random-kfold", base, lambda name, b: _random_kfold_protocol(name, base, b, k))


def _random_kfold_protocol(name: str, base: str, b: Protocol, k: int) -> Protocol:
    def plan(inputs: Inputs, seed: int, params: dict[str, Any]) -> Plan:
        p = _base_rows(b, inputs, seed)
        return Plan(p.rows, kfold_roles(p.rows.num_rows, seed, params), p.classes, {"base": base, **p.notes})

    return published_protocol(name, f"{base} rows, image-level random {k}-fold", "", (), RANDOM_KFOLD_LEAK, k, plan,
                              columns=b.columns, datasets=b.datasets)


def folds_protocol(base: str) -> Protocol:
    """``<base>-folds``: the rows and labels of protocol ``base`` in the folds of a published list
    (``assignments``: key → fold, keys matched against sample_id, sample_id without its
    ``<dataset>/`` prefix, then sequence_id); rows the list does not name are left out."""
    return _derived(f"{base}-folds", base, lambda name, b: _folds_protocol(name, base, b))


def _folds_protocol(name: str, base: str, b: Protocol) -> Protocol:
    def plan(inputs: Inputs, seed: int, params: dict[str, Any]) -> Plan:
        p = _base_rows(b, inputs, seed)
        assignments = params["assignments"]
        if not isinstance(assignments, dict) or not assignments:
            raise FerbenchError(f"protocol {name}: no fold list given (use `ferbench split {base} --folds FILE`)")
        folds = _match(p.rows, inputs, assignments)
        keep = folds >= 0
        if not keep.any():
            raise FerbenchError(f"protocol {name}: no row of {base} is named in the fold list (keys like {next(iter(assignments))!r})")
        k = max(assignments.values()) + 1
        rows = p.rows.filter(keep)
        roles = fold_roles(folds[keep][None, :], k, params["val"])
        named = len(assignments)
        notes = {"base": base, "folds_sha256": params["folds_sha256"], "rows_not_in_list": int((~keep).sum()), "list_entries": named, **p.notes}
        return Plan(rows, roles, p.classes, notes)

    return register(Protocol(
        name, f"{base} rows in the folds of a published fold list (`ferbench split {base} --folds FILE`)", b.datasets, plan,
        {"assignments": {}, "folds_sha256": "", "val": "none", "leakage_stated": ""}, b.columns, published=True,
    ))


def _derived(name: str, base: str, make: Callable[[str, Protocol], Protocol]) -> Protocol:
    """Protocol ``name`` derived from ``base`` by ``make(name, base protocol)``, made (and registered) once."""
    if name not in _DERIVED:
        _DERIVED[name] = make(name, get_protocol(base))
    return _DERIVED[name]


def derived_protocol(name: str) -> Protocol:
    """The registered protocol ``name``, or ``<base>-random-kfold`` / ``<base>-folds`` made on demand."""
    if name in PROTOCOLS:
        return get_protocol(name)
    for suffix, factory in (("-random-kfold", random_kfold_protocol), ("-folds", folds_protocol)):
        if name.endswith(suffix) and name[: -len(suffix)] in PROTOCOLS:
            return factory(name[: -len(suffix)])
    return get_protocol(name)  # raises the registry's "unknown protocol" error


def stated_leakage(protocol: Protocol, params: dict[str, Any]) -> str:
    """How a protocol says it leaks ('' for an honest one): its own statement or a fold list's."""
    if not protocol.published:
        return ""
    return protocol.leakage_stated or str(params.get("leakage_stated") or "")


def _match(rows, inputs: Inputs, assignments: dict[str, int]) -> np.ndarray:
    """Fold per plan row from ``assignments`` (-1 where not named)."""
    sample = rows["sample_id"].to_pylist()
    out = np.array([assignments.get(s, assignments.get(s.split("/", 1)[-1], -1)) for s in sample], dtype=np.int64)
    if (out < 0).any():
        seq: dict[str, str] = {}
        for src in inputs.sources.values():
            if "sequence_id" in src.table.column_names:
                seq.update(zip(src.table["sample_id"].to_pylist(), src.table["sequence_id"].to_pylist()))
        if seq:
            by_seq = np.array([assignments.get(seq.get(s) or "", -1) for s in sample], dtype=np.int64)
            out = np.where(out >= 0, out, by_seq)
    return out


# -- fold list files --------------------------------------------------------------------------------------
_HEADER = re.compile(r"^\s*(\d+)\s*-?\s*fold\b", re.IGNORECASE)


def read_folds_file(path: str | Path) -> tuple[dict[str, int], str]:
    """(key → fold 0..k-1, sha256 of the file) from a published fold list. Two formats:

    * a CSV/TSV with a key column (``sample_id``, ``sequence_id``, ``id``, ``sample`` or ``sequence``;
      else the first column) and a ``fold`` column (else the second); folds numbered from 0 or 1;
    * a sectioned list like Emotion-FAN's CK+ file: a header line ``<n>-fold ...`` opens fold n
      (numbered from 1), each following line is ``<id> [label]``.

    Folds are renumbered from 0 in ascending order; a key listed in two folds is refused."""
    raw = Path(path).read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    lines = [ln for ln in raw.decode("utf-8-sig").splitlines() if ln.strip()]
    if not lines:
        raise FerbenchError(f"fold list {path} is empty")
    pairs: list[tuple[str, int]] = []
    if any(_HEADER.match(ln) for ln in lines[:1]):
        fold = None
        for i, ln in enumerate(lines, 1):
            m = _HEADER.match(ln)
            if m:
                fold = int(m.group(1))
                continue
            if fold is None:
                raise FerbenchError(f"fold list {path} line {i}: an id before any '<n>-fold' header")
            pairs.append((ln.split()[0], fold))
    else:
        dialect = "\t" if "\t" in lines[0] else ","
        table = list(csv.reader(lines, delimiter=dialect))
        head = [c.strip().lower() for c in table[0]]
        has_head = "fold" in head
        body = table[1:] if has_head else table
        key_col = next((head.index(c) for c in ("sample_id", "sequence_id", "id", "sample", "sequence") if has_head and c in head), 0)
        fold_col = head.index("fold") if has_head else 1
        for i, rec in enumerate(body, 2 if has_head else 1):
            try:
                pairs.append((rec[key_col].strip(), int(rec[fold_col])))
            except (IndexError, ValueError):
                raise FerbenchError(f"fold list {path} line {i}: expected <id>{dialect}<fold>, got {rec!r}") from None
    if not pairs:
        raise FerbenchError(f"fold list {path} names no sample")
    numbers = sorted({f for _, f in pairs})
    if len(numbers) < 2:
        raise FerbenchError(f"fold list {path} has a single fold ({numbers})")
    renumber = {f: i for i, f in enumerate(numbers)}
    out: dict[str, int] = {}
    for key, f in pairs:
        if key in out and out[key] != renumber[f]:
            raise FerbenchError(f"fold list {path}: {key!r} is in two folds")
        out[key] = renumber[f]
    return out, sha


def materialise_folds(base: str, data_dirs, folds_file: str | Path, seed: int = 0, *, leakage_stated: str = "",
                      allow_leakage: bool = False, val: str = "none", **kwargs: Any):
    """Build protocol ``<base>-folds`` from a published fold list through ``materialise`` (verified:
    a leaky list is refused unless ``leakage_stated`` says how it leaks, or ``allow_leakage``)."""
    from . import materialise

    assignments, sha = read_folds_file(folds_file)
    protocol = folds_protocol(base)
    manifest = materialise(protocol.name, data_dirs, seed, allow_leakage=allow_leakage, assignments=assignments, folds_sha256=sha,
                           val=val, leakage_stated=leakage_stated, **kwargs)
    manifest.meta["folds_file"] = {"path": str(Path(folds_file).resolve()), "sha256": sha, "entries": len(assignments)}
    return manifest


# -- the merged Global set's as-published protocols --------------------------------------------------------
published_protocol(
    "global-published",
    "Global merged RGB-D set, 7 classes, sample-level KFold(5, shuffle=True, random_state=seed) as in report 003",
    "global", SEVEN,
)
published_protocol(
    "global-published-8020",
    "Global merged RGB-D set, 7 classes, one 80/20 sample-level train/test split (train_test_split, random_state=seed) as in report 003",
    "global", SEVEN, "sample-level 80/20 split: one subject's images are in train and test (epochs selected on the test split)",
    plan=holdout_plan("global", SEVEN), params={"test": 0.2},
)
