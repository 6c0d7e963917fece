"""Open benchmark: score predictions made outside ferbench against a manifest's ground truth.

A submission is one CSV or Parquet file, one row per test sample of every (repeat, fold) of the
manifest (``SUBMISSION_SCHEMA``):

* ``sample_id`` (string), ``repeat`` (int), ``fold`` (int);
* either ``pred`` (a class name of the protocol, or its index in the protocol's class list), or one
  probability column per class, ``p_<class>`` (finite, in [0, 1], each row summing to 1 within
  1e-3), or both (``pred`` must then be a most probable class of its row);
* optionally ``dataset``, ``subject_id``, ``role``, ``seed`` (ignored: the manifest is the truth).

``submit`` refuses a file with missing, duplicate, unknown or train/val sample ids (counts and the
first offenders named), a class outside the protocol, bad probabilities, or a manifest whose
datasets do not have the fingerprints it was made from; nothing is written then. Otherwise every
metric and the subject-bootstrap CI are recomputed from the manifest's labels (never from the file),
and one run directory per (repeat, fold) is written beside ordinary runs (``result.json`` marked
``external`` with the file's SHA-256 and the submitter's declared facts, ``predictions.parquet`` in
the runner's columns, ``metrics.json``, ``confusion.png``), so the leaderboard ingests it as any run.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import FerbenchError
from .fingerprint import hash_obj

PathLike = str | Path

#: The declared facts a ``--info`` YAML may hold (strict: any other key is refused).
INFO_KEYS: dict[str, tuple[type, ...]] = {
    "model": (str,), "params": (int,), "pretraining_data": (str, type(None)), "extra_training_data": (str, bool, type(None)),
    "link": (str, type(None)), "modality": (str,), "input_size": (int, type(None)), "channels": (int, type(None)),
    "description": (str, type(None)),
}
IGNORED_COLUMNS = ("dataset", "subject_id", "role", "seed")
SHOWN = 5
PROB_TOL = 1e-3

#: The submission format as JSON Schema (one object per row; ``p_<class>`` per protocol class).
SUBMISSION_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "ferbench submission row (CSV or Parquet; one row per test sample of every (repeat, fold))",
    "type": "object",
    "required": ["sample_id", "repeat", "fold"],
    "properties": {
        "sample_id": {"type": "string", "description": "the manifest's sample_id"},
        "repeat": {"type": "integer", "minimum": 0},
        "fold": {"type": "integer", "minimum": 0},
        "pred": {"oneOf": [{"type": "string", "description": "a class name of the protocol"},
                           {"type": "integer", "minimum": 0, "description": "index into the protocol's classes"}]},
        "dataset": {"type": "string", "description": "ignored"},
        "subject_id": {"type": ["string", "null"], "description": "ignored"},
        "role": {"type": "string", "description": "ignored"},
        "seed": {"type": "integer", "description": "ignored"},
    },
    "patternProperties": {"^p_.+$": {"type": "number", "minimum": 0, "maximum": 1,
                                     "description": "probability of class <class>; all p_ columns sum to 1 ± 1e-3"}},
    "anyOf": [{"required": ["pred"]}, {"description": "one p_<class> column for every protocol class"}],
    "additionalProperties": False,
}


def file_sha256(path: PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _first(items: Sequence[Any]) -> str:
    shown = ", ".join(str(x) for x in list(items)[:SHOWN])
    return shown + (", …" if len(items) > SHOWN else "")


# -- reading ---------------------------------------------------------------------------------------
def read_info(info: PathLike | dict[str, Any] | None) -> dict[str, Any]:
    """The submitter's declared facts (``--info`` YAML or a mapping), keys and types checked."""
    if info is None:
        return {}
    if not isinstance(info, dict):
        import yaml

        try:
            data = yaml.safe_load(Path(info).read_text())
        except yaml.YAMLError as exc:
            raise FerbenchError(f"--info {info}: not valid YAML ({' '.join(str(exc).split())[:200]})") from None
        where = f"--info {info}"
    else:
        data, where = info, "info"
    data = data or {}
    if not isinstance(data, dict):
        raise FerbenchError(f"{where}: must be a mapping of {', '.join(INFO_KEYS)}")
    unknown = sorted(set(map(str, data)) - set(INFO_KEYS))
    if unknown:
        raise FerbenchError(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(INFO_KEYS)})")
    for k, v in data.items():
        types = INFO_KEYS[k]
        if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
            raise FerbenchError(f"{where}: {k} must be {' or '.join(t.__name__ for t in types)}, not {type(v).__name__}")
    return dict(data)


def read_predictions(path: PathLike):
    """The submission file as an Arrow table (CSV or Parquet, by suffix)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise FerbenchError(f"{path}: no such predictions file")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pq.read_table(path)
        if path.suffix.lower() in (".csv", ".gz"):
            return pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(
                column_types={"sample_id": pa.string(), "pred": pa.string()}))
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise FerbenchError(f"{path}: cannot be read ({' '.join(str(exc).split())[:200]})") from None
    raise FerbenchError(f"{path}: predictions must be a .csv or .parquet file")


# -- validating ------------------------------------------------------------------------------------
class Checked:
    """A validated submission: per (repeat, fold), the manifest's test rows in order with their predictions."""

    def __init__(self, folds: dict[tuple[int, int], dict[str, Any]], has_probs: bool):
        self.folds = folds
        self.has_probs = has_probs


def validate(table, manifest, source: str = "predictions") -> Checked:
    """Check a submission table against a manifest (see the module doc); one ``FerbenchError`` per problem."""
    import pyarrow as pa

    classes: list[str] = list(manifest.meta["classes"])
    c = len(classes)
    names = table.column_names
    missing = [k for k in ("sample_id", "repeat", "fold") if k not in names]
    if missing:
        raise FerbenchError(f"{source}: no column(s) {', '.join(missing)} (need sample_id, repeat, fold, and pred or p_<class>)")
    prob_cols = [n for n in names if n.startswith("p_")]
    foreign = [n[2:] for n in prob_cols if n[2:] not in classes]
    if foreign:
        raise FerbenchError(f"{source}: probability column(s) for class(es) not in protocol {manifest.meta['protocol']}: "
                            f"{_first(foreign)} (its classes: {', '.join(classes)})")
    other = [n for n in names if n not in ("sample_id", "repeat", "fold", "pred", *IGNORED_COLUMNS) and n not in prob_cols]
    if other:
        raise FerbenchError(f"{source}: unknown column(s) {_first(other)} (allowed: sample_id, repeat, fold, pred, "
                            f"p_<class>, {', '.join(IGNORED_COLUMNS)})")
    has_probs = bool(prob_cols)
    if has_probs and len(prob_cols) != c:
        absent = [f"p_{k}" for k in classes if f"p_{k}" not in prob_cols]
        raise FerbenchError(f"{source}: probability columns missing for {_first(absent)} (need one p_<class> per class)")
    if not has_probs and "pred" not in names:
        raise FerbenchError(f"{source}: neither a pred column nor p_<class> columns ({', '.join('p_' + k for k in classes)})")
    n = table.num_rows
    if not n:
        raise FerbenchError(f"{source}: holds no rows")

    def ints(col: str) -> np.ndarray:
        arr = table.column(col)
        if arr.null_count:
            raise FerbenchError(f"{source}: column {col} has {arr.null_count} empty value(s)")
        if not pa.types.is_integer(arr.type):
            try:
                v = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.float64)
            except (ValueError, TypeError):
                raise FerbenchError(f"{source}: column {col} must hold integers, not {arr.type}") from None
            if not np.all(np.isfinite(v)) or np.any(v != np.round(v)):
                raise FerbenchError(f"{source}: column {col} must hold integers")
            return v.astype(np.int64)
        return arr.to_numpy(zero_copy_only=False).astype(np.int64)

    repeats, folds = ints("repeat"), ints("fold")
    sid_col = table.column("sample_id")
    if sid_col.null_count:
        raise FerbenchError(f"{source}: column sample_id has {sid_col.null_count} empty value(s)")
    sids = [str(s) for s in sid_col.to_pylist()]

    probs = None
    if has_probs:
        probs = np.empty((n, c), np.float64)
        for j, k in enumerate(classes):
            col = table.column(f"p_{k}")
            try:
                probs[:, j] = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
            except (ValueError, TypeError):
                raise FerbenchError(f"{source}: column p_{k} must hold numbers, not {col.type}") from None
        bad = ~np.isfinite(probs).all(1)
        if bad.any():
            rows = np.flatnonzero(bad)
            raise FerbenchError(f"{source}: {len(rows)} row(s) with a missing or non-finite probability "
                                f"(first: {_first([sids[i] for i in rows])})")
        bad = ((probs < 0) | (probs > 1)).any(1)
        if bad.any():
            rows = np.flatnonzero(bad)
            raise FerbenchError(f"{source}: {len(rows)} row(s) with a probability outside [0, 1] "
                                f"(first: {_first([sids[i] for i in rows])})")
        sums = probs.sum(1)
        bad = np.abs(sums - 1) > PROB_TOL
        if bad.any():
            rows = np.flatnonzero(bad)
            raise FerbenchError(f"{source}: {len(rows)} row(s) whose probabilities do not sum to 1 (±{PROB_TOL:g}) "
                                f"(first: {_first([f'{sids[i]} ({sums[i]:.4f})' for i in rows])})")

    pred = None
    if "pred" in names:
        raw = table.column("pred")
        if raw.null_count:
            raise FerbenchError(f"{source}: column pred has {raw.null_count} empty value(s)")
        values = [str(v) for v in raw.to_pylist()]
        index = {k: i for i, k in enumerate(classes)}
        index.update({str(i): i for i in range(c)})
        unknown = sorted({v for v in values if v not in index})
        if unknown:
            raise FerbenchError(f"{source}: pred holds {len(unknown)} value(s) that are neither a class of protocol "
                                f"{manifest.meta['protocol']} nor an index 0..{c - 1}: {_first(unknown)} "
                                f"(its classes: {', '.join(classes)})")
        pred = np.array([index[v] for v in values], np.int64)
        if probs is not None:
            off = probs[np.arange(n), pred] < probs.max(1) - 1e-6
            if off.any():
                rows = np.flatnonzero(off)
                raise FerbenchError(f"{source}: {len(rows)} row(s) whose pred is not their most probable class "
                                    f"(first: {_first([sids[i] for i in rows])})")
    if pred is None:
        pred = probs.argmax(1)

    # -- ids: each test sample of each (repeat, fold) exactly once --------------------------------
    m = manifest.table
    m_rep = m.column("repeat").to_numpy().astype(np.int64)
    m_fold = m.column("fold").to_numpy().astype(np.int64)
    m_role = np.asarray(m.column("role").to_pylist(), dtype=object)
    m_sid = m.column("sample_id").to_pylist()
    role_of = {(int(r), int(f), s): ro for r, f, s, ro in zip(m_rep, m_fold, m_sid, m_role)}
    row_of: dict[tuple[int, int, str], int] = {}
    dup, unknown_ids, trainval = [], [], []
    for i, key in enumerate(zip(repeats.tolist(), folds.tolist(), sids)):
        role = role_of.get(key)
        if role is None:
            unknown_ids.append(key)
        elif role != "test":
            trainval.append(key)
        elif key in row_of:
            dup.append(key)
        else:
            row_of[key] = i
    test = np.flatnonzero(m_role == "test")
    absent = [(int(m_rep[i]), int(m_fold[i]), m_sid[i]) for i in test if (int(m_rep[i]), int(m_fold[i]), m_sid[i]) not in row_of]
    problems = []
    show = lambda keys: _first([f"r{r} f{f} {s}" for r, f, s in keys])  # noqa: E731
    if absent:
        problems.append(f"{len(absent)} test sample(s) missing (first: {show(absent)})")
    if dup:
        problems.append(f"{len(dup)} duplicate row(s) (first: {show(dup)})")
    if unknown_ids:
        problems.append(f"{len(unknown_ids)} row(s) with a (repeat, fold, sample_id) not in the manifest (first: {show(unknown_ids)})")
    if trainval:
        problems.append(f"{len(trainval)} row(s) of train/val samples, not test (first: {show(trainval)})")
    if problems:
        raise FerbenchError(f"{source}: every test sample of every (repeat, fold) must appear exactly once: " + "; ".join(problems))

    out: dict[tuple[int, int], dict[str, Any]] = {}
    labels = m.column("label").to_numpy().astype(np.int64)
    subjects = m.column("subject_id").to_pylist()
    datasets = m.column("dataset").to_pylist()
    for r, f in sorted({(int(a), int(b)) for a, b in zip(m_rep[test], m_fold[test])}):
        sel = (m_rep == r) & (m_fold == f)
        idx = np.flatnonzero(sel & (m_role == "test"))
        rows = np.array([row_of[(r, f, m_sid[i])] for i in idx], np.int64)
        out[(r, f)] = {
            "sample_id": [m_sid[i] for i in idx], "dataset": [datasets[i] for i in idx],
            "subject_id": [subjects[i] for i in idx], "label": labels[idx], "pred": pred[rows],
            "probs": probs[rows] if probs is not None else None,
            "train_counts": np.bincount(labels[sel & (m_role == "train")], minlength=c),
            "n": {role: int((sel & (m_role == role)).sum()) for role in ("train", "val", "test") if (sel & (m_role == role)).any()},
        }
    return Checked(out, has_probs)


# -- scoring and writing ---------------------------------------------------------------------------
def _slug(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    return s[:60] or "submission"


def submit(predictions: PathLike, manifest: PathLike, *, name: str, info: PathLike | dict[str, Any] | None = None,
           runs: PathLike = "runs", data_dirs: Sequence[PathLike] | None = None, bootstrap: int = 1000,
           ci: float = 0.95, overwrite: bool = False) -> list:
    """Validate a submission against ``manifest``, score it from the manifest's truth, and write one
    run directory per (repeat, fold) under ``runs``; returns their ``RunRecord``s (see module doc)."""
    import pyarrow.parquet as pq

    from . import __version__, metrics
    from .protocols import load_manifest, open_sources
    from .run_record import PREDICTIONS, RunRecord

    if not name or not str(name).strip():
        raise FerbenchError("--name must not be empty")
    declared = read_info(info)
    m = load_manifest(manifest, list(data_dirs or ()))  # hash, fingerprints, rows, leakage
    sources = {d.card.name: d for d in open_sources(m.meta, list(data_dirs or ()), manifest)}
    table = read_predictions(predictions)
    checked = validate(table, m, source=str(predictions))
    sha = file_sha256(predictions)
    meta, classes = m.meta, list(m.meta["classes"])
    c = len(classes)
    recipe_hash = hash_obj({"external": name, "declared": declared, "predictions_sha256": sha, "manifest": m.content_hash})
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    external = {"name": name, "predictions_file": Path(predictions).name, "predictions_sha256": sha,
                "format": "probabilities" if checked.has_probs else "pred", "declared": declared, "submitted_at": now}
    recipe = {"name": name, "hash": recipe_hash, "model": f"{declared.get('model') or name} (external)",
              "modality": declared.get("modality", "rgb"), "input_size": declared.get("input_size"),
              "channels": declared.get("channels"), "pretrained": bool(declared.get("pretraining_data")),
              "epochs": None, "batch_size": None, "input_norm": None,
              "eval": {"bootstrap": bootstrap, "ci": ci}, "reported": None, "external": True,
              "file": None, "located": None, "overrides": None}
    protocol = {"name": meta["protocol"], "version": meta.get("version"), "manifest_hash": meta["content_hash"],
                "seed": meta.get("seed"), "params": meta.get("params"), "n_folds": meta["n_folds"],
                "n_repeats": meta["n_repeats"], "classes": classes, "leakage": meta.get("leakage")}
    ds = []
    for d in meta["datasets"]:
        card = sources[d["name"]].card
        ds.append({"name": card.name, "title": card.title, "fingerprint": d["fingerprint"], "synthetic": card.synthetic,
                   "num_rows": card.num_rows, "path": str(sources[d["name"]].path)})
    env = {"ferbench_version": __version__, "device": "external", "precision": None, "world_size": None,
           "wall_s": None, "train_samples_per_s": None, "packages": None}

    records, staged = [], []
    out_root = Path(runs)
    for (r, f), fold in checked.folds.items():
        run_name = f"external-{_slug(name)}-{meta['content_hash'][:8]}-r{r}-f{f}"
        target = out_root / run_name
        if target.exists() and not overwrite:
            raise FerbenchError(f"{target} exists (a submission named {name!r} on this manifest was stored already); "
                                f"use another --name or --overwrite")
        y, p = fold["label"], fold["pred"]
        test = metrics.evaluate(y, p, classes)
        bounds = metrics.bootstrap_ci(y, p, fold["subject_id"], c, n_boot=bootstrap, ci=ci)
        test["ci"] = {k: list(v) for k, v in bounds.items()}
        test["ci"].update(level=ci, resamples=bootstrap, unit="subject")
        scores = {"classes": classes, "test": test, "val": None,
                  "baselines": metrics.baselines(fold["train_counts"], y, classes),
                  "selection": {"rule": "external", "reason": "predictions submitted from outside ferbench",
                                "monitor": None, "epoch": None, "value": None, "epochs_ran": None,
                                "stopped_early": None, "resumed_from_epoch": None, "phases": None},
                  "n": fold["n"], "train_class_counts": [int(x) for x in fold["train_counts"]]}
        record = RunRecord(
            run_id=hash_obj({"external": recipe_hash, "manifest": meta["content_hash"], "repeat": r, "fold": f}, 24),
            run_name=run_name, created_at=now, recipe=recipe, protocol=protocol, repeat=r, fold=f, seed=0,
            datasets=ds, code_version=f"external:{sha[:16]}", metrics=scores, environment=env,
            predictions=PREDICTIONS, model={"params": declared.get("params"), "trainable_params": None, "gflops": None,
                                            "flops_input": None, "pretrained": recipe["pretrained"],
                                            "pretrained_source": declared.get("pretraining_data"),
                                            "checkpoint": None, "checkpoint_sha256": None},
            extra={"external": external},
        )
        records.append((record, fold, target))

    out_root.mkdir(parents=True, exist_ok=True)
    try:
        for record, fold, target in records:
            tmp = out_root / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
            tmp.mkdir()
            staged.append(tmp)
            pq.write_table(_predictions_table(fold, record.repeat, record.fold, classes), tmp / PREDICTIONS,
                           compression="zstd")
            (tmp / "metrics.json").write_text(json.dumps(record.metrics, indent=2) + "\n")
            title = f"{name} (external) · {meta['protocol']} r{record.repeat} f{record.fold} (test)"
            (tmp / "confusion.png").write_bytes(metrics.confusion_png(np.array(record.metrics["test"]["confusion"]), classes, title))
            record.write(tmp)
        for (record, _, target), tmp in zip(records, staged):
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
            record.run_dir = target
    finally:
        for tmp in staged:
            shutil.rmtree(tmp, ignore_errors=True)
    return [r for r, _, _ in records]


def _predictions_table(fold: dict[str, Any], repeat: int, f: int, classes: list[str]):
    """The runner's ``predictions.parquet`` columns (probabilities one-hot when only ``pred`` was given)."""
    import pyarrow as pa

    n, c = len(fold["sample_id"]), len(classes)
    probs = fold["probs"]
    if probs is None:
        probs = np.zeros((n, c), np.float32)
        probs[np.arange(n), fold["pred"]] = 1
    table = pa.table({
        "sample_id": pa.array(fold["sample_id"], pa.string()),
        "dataset": pa.array(fold["dataset"], pa.string()),
        "subject_id": pa.array(fold["subject_id"], pa.string()),
        "role": pa.array(["test"] * n, pa.string()),
        "repeat": pa.array(np.full(n, repeat, np.int16)),
        "fold": pa.array(np.full(n, f, np.int16)),
        "seed": pa.array(np.zeros(n, np.int64)),
        "label": pa.array(fold["label"].astype(np.int8)),
        "pred": pa.array(fold["pred"].astype(np.int8)),
        "probs": pa.FixedSizeListArray.from_arrays(pa.array(np.asarray(probs, np.float32).reshape(-1)), c),
    })
    return table.replace_schema_metadata({b"ferbench_classes": json.dumps(classes).encode()})


# -- exporting -------------------------------------------------------------------------------------
def export(run_dirs: PathLike | Sequence[PathLike], out: PathLike | None = None, role: str = "test"):
    """A run's (or several runs') predictions in the submission format: sample_id, repeat, fold,
    pred (class name), p_<class>. Written as CSV to ``out`` when given; returns the Arrow table."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from .run_record import RunRecord

    dirs = [run_dirs] if isinstance(run_dirs, (str, Path)) else list(run_dirs)
    if not dirs:
        raise FerbenchError("export: no run directory given")
    parts, classes = [], None
    for d in dirs:
        rec = RunRecord.load(d)
        t = pq.read_table(rec.predictions_path)
        cls = json.loads(t.schema.metadata[b"ferbench_classes"])
        if classes is not None and cls != classes:
            raise FerbenchError(f"{d}: its classes {cls} differ from the other runs' {classes}")
        classes = cls
        t = t.filter(np.asarray(t.column("role").to_pylist(), dtype=object) == role)
        probs = t.column("probs").combine_chunks().flatten().to_numpy().reshape(t.num_rows, len(cls))
        pred = t.column("pred").to_numpy().astype(np.int64)
        cols = {"sample_id": t.column("sample_id"), "repeat": t.column("repeat").cast(pa.int64()),
                "fold": t.column("fold").cast(pa.int64()), "pred": pa.array([cls[i] for i in pred], pa.string())}
        cols.update({f"p_{k}": pa.array(probs[:, j].astype(np.float64)) for j, k in enumerate(cls)})
        parts.append(pa.table(cols))
    table = pa.concat_tables(parts)
    if out is not None:
        out = Path(out)
        tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
        try:
            if out.suffix.lower() in (".parquet", ".pq"):
                pq.write_table(table, tmp)
            else:
                pcsv.write_csv(table, tmp)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    return table
