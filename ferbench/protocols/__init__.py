"""Protocols: named, versioned recipes that turn converted datasets into a manifest.

``materialise(name, data_dirs, seed)`` reads the needed columns of each dataset directory, asks
the protocol for its plan (who takes part, with which label, in which role per repeat and
fold), writes the rows in canonical order, hashes them, and runs the leakage verifier: a
manifest that leaks (a subject, or pixel-identical images, in both train/val and test of one
fold) is refused unless ``allow_leakage=True``, and the verdict is stored in its metadata.

Families: ``official`` (dataset splits), ``kfold`` (the subject-grouped stratified splitter),
``grouped`` (k-fold protocols), ``ckplus``, ``bu3dfe``, ``bosphorus``, ``cross``; ``verify``
(leakage) and ``manifest`` (the file format).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

from .. import __version__
from ..errors import FerbenchError
from . import cross, grouped, official  # noqa: F401  (register the generic protocols)
from .base import ROLES, LeakageError, Plan, Protocol, all_protocols, class_list, get_protocol, load_inputs, resolve_params
from .manifest import Manifest, content_hash, manifest_table, read_manifest
from .verify import NEAR_THRESHOLD
from .verify import verify as _verify  # ``ferbench.protocols.verify`` stays the module

__all__ = ["LeakageError", "Manifest", "list_protocols", "materialise", "read_manifest"]


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
    }
    manifest = Manifest(table, meta)
    leakage = _verify(manifest, near_threshold=near_threshold)
    if leakage["verdict"] != "clean":
        if not allow_leakage:
            raise LeakageError(_leak_message(name, leakage))
        leakage["verdict"] = "leaky-allowed"
    meta["leakage"] = leakage
    return manifest


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
