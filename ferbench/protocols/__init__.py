"""Protocols: named, versioned recipes that turn converted datasets into a manifest.

``materialise(name, data_dirs, seed)`` reads the needed columns of each dataset directory, asks
the protocol for its plan (who takes part, with which label, in which role per repeat and
fold), writes the rows in canonical order, hashes them, and runs the leakage verifier: a
manifest that leaks (a subject, or pixel-identical images, in both train/val and test of one
fold) is refused unless ``allow_leakage=True``, and the verdict is stored in its metadata.

``load_manifest(path, data_dirs)`` is how every consumer (run, sweep, later fold loaders) opens a
manifest for use; it trusts nothing the file says about itself:

* the rows must hash to the recorded ``content_hash`` (``read_manifest``; else one line naming the
  file and both hashes);
* each row's label, subject and dataset must be the ones its converted dataset holds (read through
  ``converted.open_dataset``, fingerprints and column digests checked): a manifest relabelled
  consistently in every fold and re-hashed is still refused, with the count and the first offenders;
  labels a protocol derives where the dataset has none (CK+'s peak and neutral frames) are derived
  again by the protocol and compared;
* a "clean" leakage verdict counts only when the ``leakage_seal`` beside it (a hash of the verdict
  report, the content hash and the dataset fingerprints, written by ``materialise``) matches; otherwise the leakage checks run again
  and their verdict replaces the stored one (a stored non-clean verdict is kept: it is never upgraded).

Families: ``official`` (dataset splits), ``kfold`` (the subject-grouped stratified splitter),
``grouped`` (k-fold protocols), ``ckplus``, ``bu3dfe``, ``bosphorus``, ``cross``; ``verify``
(leakage) and ``manifest`` (the file format).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import __version__, ui
from ..errors import FerbenchError
from ..fingerprint import hash_obj
from ..schema import EMOTIONS
from . import cross, grouped, official, published  # noqa: F401  (register the generic protocols)
from .base import ROLES, LeakageError, Plan, Protocol, all_protocols, class_list, load_inputs, resolve_params
from .published import derived_protocol as get_protocol, materialise_folds, read_folds_file, stated_leakage
from .manifest import Manifest, ManifestIntegrityError, check_content_hash, content_hash, manifest_table, read_manifest
from .verify import NEAR_THRESHOLD
from .verify import verify as _verify  # ``ferbench.protocols.verify`` stays the module

__all__ = ["LeakageError", "Manifest", "ManifestIntegrityError", "check_content_hash", "check_rows", "declare_leakage", "leakage_seal",
           "list_protocols", "load_manifest", "materialise", "materialise_folds", "open_sources", "read_folds_file", "read_manifest"]

#: Verdicts of a manifest that leaks on purpose, as its protocol declares (see ``declare_leakage``).
DECLARED_VERDICTS = ("leaky-published", "exact-duplicates-declared")


def list_protocols() -> dict[str, str]:
    """Protocol name → one-line description."""
    return {name: p.description for name, p in all_protocols().items()}


def materialise(
    name: str,
    data_dirs: list[str | Path],
    seed: int = 0,
    allow_leakage: bool = False,
    near_threshold: int = NEAR_THRESHOLD,
    **params: Any,
) -> Manifest:
    """Build protocol ``name`` over the given dataset directories (verified; see module doc)."""
    protocol = get_protocol(name)
    params = resolve_params(f"protocol {name}", protocol.params, params)
    inputs = load_inputs(list(data_dirs), protocol.columns)
    if protocol.datasets and set(inputs.sources) != set(protocol.datasets):
        raise FerbenchError(f"protocol {name} reads {list(protocol.datasets)}; got {sorted(inputs.sources)}")
    plan = protocol.plan(inputs, int(seed), params)
    _check_plan(protocol, plan)
    table = manifest_table(plan)
    meta = {
        "protocol": protocol.name,
        "version": protocol.version,
        "description": protocol.description,
        "seed": int(seed),
        "params": params,
        "classes": class_list(plan.classes),
        "class_canonical": list(plan.classes),
        "n_folds": int(plan.roles.shape[1]),
        "n_repeats": int(plan.roles.shape[0]),
        "datasets": [{"name": s.name, "fingerprint": s.card.fingerprint, "path": str(s.path)} for s in inputs.sources.values()],
        "content_hash": content_hash(table),
        "counts": _counts(plan),
        "notes": plan.notes,
        "ferbench_version": __version__,
        # an as-published (leaky by design) protocol: a leaderboard shows its board as LEAKY
        "published": bool(protocol.published),
    }
    stated = stated_leakage(protocol, params)
    if protocol.published:
        meta["leakage_stated"] = stated
    manifest = Manifest(table, meta)
    leakage = _verify(manifest, near_threshold=near_threshold, list_exact=protocol.allow_exact_duplicates)
    leakage = declare_leakage(protocol, params, leakage, allow_leakage)
    meta["leakage"] = leakage
    meta["leakage_seal"] = leakage_seal(meta["content_hash"], meta["datasets"], leakage)
    return manifest


# -- opening a manifest for use ------------------------------------------------------------------------
def load_manifest(path: str | Path, data_dirs: Sequence[str | Path] = (), *,
                  say: Callable[[str], None] | None = None) -> Manifest:
    """A manifest checked for use (see the module doc): hash, rows against the datasets, leakage
    verdict sealed or verified again. ``data_dirs`` are matched to the manifest's datasets by card
    name; a dataset not among them is opened at the path the manifest recorded. ``meta["leakage"]``
    of the result is the verdict to trust."""
    manifest = read_manifest(path)
    sources = open_sources(manifest.meta, data_dirs, path)
    check_rows(manifest, sources, path)
    trust_leakage(manifest, sources, path, say=say)
    return manifest


def open_sources(meta: dict[str, Any], data_dirs: Sequence[str | Path], path: str | Path = "manifest") -> list:
    """The opened converted dataset of each dataset the manifest names (fingerprints must match)."""
    from ..converted import open_dataset

    given = {data.card.name: data for data in map(open_dataset, data_dirs)}
    records = meta.get("datasets")
    if not isinstance(records, list) or not records or not all(isinstance(d, dict) and {"name", "fingerprint", "path"} <= set(d) for d in records):
        raise FerbenchError(f"manifest {path}: its metadata does not name its datasets (name, fingerprint, path); make it again with `ferbench split`")
    out = []
    for ds in records:
        data = given.get(ds["name"]) or open_dataset(ds["path"])
        if data.card.fingerprint != ds["fingerprint"]:
            raise FerbenchError(
                f"dataset {ds['name']} at {data.path} has fingerprint {data.card.fingerprint}, but manifest {path} was made "
                f"from {ds['fingerprint']}: re-run the protocol on these data (or point data.dirs at the original)"
            )
        out.append(data)
    return out


def check_rows(manifest: Manifest, sources: list, path: str | Path = "manifest", shown: int = 5) -> None:
    """Refuse a manifest whose rows disagree with its own class list or with its datasets: the label
    index and label_canonical, each row's label, subject and dataset against the dataset's row."""
    t, meta = manifest.table, manifest.meta
    canon_classes = meta.get("class_canonical")
    if not isinstance(canon_classes, list) or not canon_classes or not all(isinstance(c, int) and 0 <= c < len(EMOTIONS) for c in canon_classes):
        raise FerbenchError(f"manifest {path}: class_canonical {canon_classes!r} is not a list of class indices")
    if meta.get("classes") != class_list(tuple(canon_classes)):
        raise FerbenchError(f"manifest {path}: classes {meta.get('classes')} do not name class_canonical {canon_classes} ({class_list(tuple(canon_classes))})")
    sample = t["sample_id"].combine_chunks()
    label = t["label"].to_numpy().astype(np.int64)
    canon = t["label_canonical"].to_numpy().astype(np.int64)
    lut = np.full(len(EMOTIONS), -1, np.int64)
    lut[canon_classes] = np.arange(len(canon_classes))
    in_range = (canon >= 0) & (canon < len(EMOTIONS))
    expected = np.where(in_range, lut[np.clip(canon, 0, len(EMOTIONS) - 1)], -2)
    problems: dict[str, np.ndarray] = {"label index": (expected != label)}

    ref = pa.concat_tables([data.read(["sample_id", "dataset", "subject_id", "label"]).select(["sample_id", "dataset", "subject_id", "label"])
                            .cast(pa.schema([("sample_id", pa.string()), ("dataset", pa.string()), ("subject_id", pa.string()), ("label", pa.int64())]))
                            for data in sources])
    pos = pc.index_in(sample, value_set=ref["sample_id"].combine_chunks())
    found = pos.is_valid().to_numpy(zero_copy_only=False)
    take = pc.fill_null(pos, 0)
    problems["missing from the datasets"] = ~found
    ref_label = ref["label"].take(take)
    has_label = ref_label.is_valid().to_numpy(zero_copy_only=False) & found
    ref_lab = pc.fill_null(ref_label, -1).to_numpy(zero_copy_only=False)
    problems["label"] = has_label & (ref_lab != canon)
    for col in ("subject_id", "dataset"):
        mine = pc.fill_null(t[col].combine_chunks(), "\x00<null>")
        theirs = pc.fill_null(ref[col].take(take).combine_chunks(), "\x00<null>")
        problems[col.replace("_id", "")] = found & ~pc.equal(mine, theirs).to_numpy(zero_copy_only=False)
    derived = found & ~has_label
    if derived.any():
        problems["derived label"] = _derived_label_mismatch(manifest, sources, sample, canon, derived, path)
    bad = np.zeros(len(label), bool)
    for mask in problems.values():
        bad |= mask
    if not bad.any():
        return
    rows = np.flatnonzero(bad)
    ids = sample.take(pa.array(rows)).to_pylist()
    first = sorted(dict.fromkeys(ids))[:shown]
    detail = []
    for sid in first:
        i = rows[ids.index(sid)]
        what = [k for k, m in problems.items() if m[i]]
        got = f"manifest label {EMOTIONS[canon[i]] if in_range[i] else canon[i]}"
        if has_label[i]:
            got += f", dataset label {EMOTIONS[ref_lab[i]] if 0 <= ref_lab[i] < len(EMOTIONS) else ref_lab[i]}"
        detail.append(f"{sid} ({'/'.join(what)}: {got})")
    counts = ", ".join(f"{k} {int(m.sum())}" for k, m in problems.items() if m.any())
    raise FerbenchError(
        f"manifest {path}: {len(set(ids))} sample(s) in {len(rows)} row(s) disagree with their datasets ({counts}); "
        f"first: {'; '.join(detail)}; refusing it (make it again with `ferbench split`)"
    )


def _derived_label_mismatch(manifest: Manifest, sources: list, sample, canon: np.ndarray, derived: np.ndarray,
                            path: str | Path) -> np.ndarray:
    """Rows whose dataset has no label (the protocol derived one): compare with the protocol's plan again."""
    meta = manifest.meta
    try:
        protocol = get_protocol(meta.get("protocol", ""))
    except FerbenchError:
        protocol = None
    if protocol is None or str(protocol.version) != str(meta.get("version")):
        raise FerbenchError(
            f"manifest {path}: {int(derived.sum())} row(s) carry a label their dataset does not have, and protocol "
            f"{meta.get('protocol')!r} v{meta.get('version')} is not here to derive it again; refusing it"
        )
    inputs = load_inputs([data.path for data in sources], protocol.columns)
    plan = protocol.plan(inputs, int(meta.get("seed", 0)), resolve_params(f"protocol {protocol.name}", protocol.params, meta.get("params") or {}))
    pos = pc.index_in(sample, value_set=plan.rows["sample_id"].combine_chunks())
    planned = pc.fill_null(plan.rows["label_canonical"].cast(pa.int64()).take(pc.fill_null(pos, 0)), -1).to_numpy(zero_copy_only=False)
    missing = ~pos.is_valid().to_numpy(zero_copy_only=False)
    return derived & (missing | (planned != canon))


def declare_leakage(protocol: Protocol, params: dict[str, Any], leakage: dict[str, Any], allow_leakage: bool = False) -> dict[str, Any]:
    """The verdict to store, given what the protocol declares about its own leaks:

    * clean → clean;
    * a published protocol that states its leakage → ``leaky-published`` (subject overlap and
      duplicates kept, the statement stored as ``stated``; no ``allow_leakage`` needed);
    * a protocol declaring ``allow_exact_duplicates`` (FER2013's official split), with exact
      duplicates but no subject overlap → ``exact-duplicates-declared`` (counted; every duplicated
      test sample listed in ``exact_duplicate_samples``);
    * otherwise ``leaky-allowed`` with ``allow_leakage``, else ``LeakageError``."""
    if leakage["verdict"] == "clean":
        return leakage
    stated = stated_leakage(protocol, params)
    if stated:
        leakage["verdict"] = "leaky-published"
        leakage["stated"] = stated
    elif protocol.allow_exact_duplicates and leakage["subject_overlap"] == 0:
        leakage["verdict"] = "exact-duplicates-declared"
    elif allow_leakage:
        leakage["verdict"] = "leaky-allowed"
    else:
        raise LeakageError(_leak_message(protocol.name, leakage))
    return leakage


def leakage_seal(content_hash_: str, datasets: list[dict[str, Any]], leakage: dict[str, Any]) -> str:
    """What binds a leakage verdict to the rows and datasets it was computed on."""
    return hash_obj({"content_hash": content_hash_, "fingerprints": sorted(d["fingerprint"] for d in datasets),
                     "leakage": leakage}, n=64)


def trust_leakage(manifest: Manifest, sources: list, path: str | Path = "manifest", *,
                  say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The leakage verdict to trust, also set as ``manifest.meta["leakage"]``: the stored one when it
    claims a leak, or is "clean" and sealed to these rows and datasets; else the checks run again."""
    meta = manifest.meta
    stored = meta.get("leakage")
    if isinstance(stored, dict):
        verdict = stored.get("verdict")
        if verdict in ("leaky", "leaky-allowed"):
            return stored
        if verdict in ("clean", *DECLARED_VERDICTS) and meta.get("leakage_seal") == leakage_seal(meta["content_hash"], meta["datasets"], stored):
            return stored
    (say or ui.say)(f"manifest {path}: its leakage verdict is not sealed to its rows and datasets; checking for leakage again")
    here = Manifest(manifest.table, {**meta, "datasets": [{**d, "path": str(data.path)} for d, data in zip(meta["datasets"], sources)]})
    threshold = stored.get("near_threshold", NEAR_THRESHOLD) if isinstance(stored, dict) else NEAR_THRESHOLD
    report = _verify(here, near_threshold=int(threshold), list_exact=isinstance(stored, dict) and "exact_duplicate_samples" in stored)
    if report["verdict"] != "clean":  # a declared leak stays declared; anything else is plain "leaky"
        try:
            protocol = get_protocol(meta.get("protocol", ""))
            params = meta.get("params") or {}
            report = declare_leakage(protocol, params, report) if str(protocol.version) == str(meta.get("version")) else report
        except FerbenchError:
            pass
    report["reverified"] = True
    meta["leakage"] = report
    meta["leakage_seal"] = leakage_seal(meta["content_hash"], meta["datasets"], report)
    return report


def _check_plan(protocol: Protocol, plan: Plan) -> None:
    if not plan.rows.num_rows:
        raise FerbenchError(f"protocol {protocol.name}: no sample takes part (check the dataset and the parameters)")
    if plan.roles.ndim != 3 or plan.roles.shape[2] != plan.rows.num_rows:
        raise FerbenchError(f"protocol {protocol.name}: role array {plan.roles.shape} does not match {plan.rows.num_rows} rows")
    for r in range(plan.roles.shape[0]):
        for f in range(plan.roles.shape[1]):
            present = set(np.unique(plan.roles[r, f]).tolist())
            missing = [ROLES[c] for c in (0, 1) if c not in present]
            if missing:
                raise FerbenchError(f"protocol {protocol.name}: repeat {r}, fold {f} has no {' or '.join(missing)} rows")


def _counts(plan: Plan) -> dict[str, Any]:
    """Samples, and per-role class counts of repeat 0 / fold 0."""
    labels = plan.rows.column("label_canonical").to_numpy()
    roles = plan.roles[0, 0]
    per_role = {}
    for code, role in enumerate(ROLES):
        sel = labels[roles == code]
        if len(sel):
            per_role[role] = {class_list((c,))[0]: int((sel == c).sum()) for c in plan.classes}
    subjects = len(pc.unique(plan.rows.column("subject_id").drop_null()))
    return {"samples": plan.rows.num_rows, "subjects": subjects, "fold0": per_role}


def _leak_message(name: str, leakage: dict[str, Any]) -> str:
    shown = "; ".join(str(d) for d in [d for d in leakage["details"] if d["kind"] != "near"][:5])
    return (
        f"protocol {name} leaks: {leakage['subject_overlap']} subject overlap(s), {leakage['exact_duplicates']} "
        f"test image(s) pixel-identical to train/val images of the same fold (e.g. {shown}). "
        "Pass --allow-leakage to keep it anyway; the verdict is then stored as leaky-allowed."
    )
