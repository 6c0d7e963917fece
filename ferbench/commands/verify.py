"""``ferbench verify MANIFEST``: re-run the leakage checks; exit status 1 if the manifest leaks.

Leaks (subject overlap, exact duplicates across test and train/val of a fold) decide the verdict
and the exit status; near-duplicates are warnings that never do. The output says so and lists
the two apart, each with how many of how many are shown.

Before that, the manifest's integrity: its rows must hash to the content hash its metadata records,
and each row's label, subject and dataset must be its dataset's (``protocols.check_rows``). A failure
is reported (``integrity`` in ``--json``) and makes the exit status 1 whatever the leakage verdict:
``run`` and ``sweep`` refuse such a manifest.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def run(args: argparse.Namespace) -> int:
    from ..protocols import read_manifest
    from ..protocols.verify import verify

    manifest = read_manifest(args.manifest, check=False)
    integrity = check_integrity(manifest, args.manifest)
    report = verify(manifest, near_threshold=args.near_threshold)
    if args.json:
        print(json.dumps({**report, "integrity": integrity}, indent=2))
    else:
        stored = (manifest.meta.get("leakage") or {}).get("verdict")
        lines = render(report, args.manifest, stored, args.details)
        print("\n".join(lines[:1] + [f"  integrity: {integrity['status']}"] + lines[1:]))
    return 0 if report["verdict"] == "clean" and integrity["ok"] else 1


def check_integrity(manifest, path: str) -> dict[str, Any]:
    """Hash of the rows against the recorded one, then the rows against their datasets."""
    from ..errors import FerbenchError
    from ..protocols import check_rows, content_hash, open_sources

    stored, actual = manifest.meta.get("content_hash"), content_hash(manifest.table)
    out: dict[str, Any] = {"stored_hash": stored, "content_hash": actual, "ok": stored == actual}
    if stored != actual:
        out["status"] = f"FAILED: rows hash to {actual}, the metadata records {stored} (edited after split; run refuses it)"
        return out
    try:
        check_rows(manifest, open_sources(manifest.meta, [], path), path)
    except FerbenchError as exc:
        out.update(ok=False, status=f"FAILED: {exc}")
        return out
    out["status"] = f"ok (content hash {actual}; labels, subjects and datasets match the datasets)"
    return out


def render(report: dict[str, Any], name: str, stored: str | None, shown: int) -> list[str]:
    """The text report: verdict, leak counts, warning counts, then the listed leaks and warnings."""
    leaks = report["subject_overlap"] + report["exact_duplicates"]
    near, kinds = report["near_duplicates"], report["near_duplicate_kinds"]
    if report["verdict"] == "clean":
        why = "no leak" + (f"; {near} near-duplicate warning(s) below do not change it" if near else "")
    else:
        why = f"{leaks} leak(s)"
    lines = [
        f"{name}: {report['verdict']} ({why}; stored verdict: {stored})",
        f"  leaks (decide the verdict): subject overlap {report['subject_overlap']}, "
        f"exact duplicates {report['exact_duplicates']} (test images pixel-identical to a train/val image of their fold)",
        f"  warnings (never change the verdict): near-duplicates {near} within {report['near_threshold']} of 64 "
        f"perceptual-hash bits: test vs train/val {kinds['test_vs_train_val']}, train vs val {kinds['train_vs_val']}, "
        f"across sources {kinds['cross_source']} (of which pixel-identical {kinds['pixel_identical']})",
        f"  {report['hashed_samples']} images hashed, {report['unhashed_samples']} samples without an image",
    ]
    from ..protocols.verify import DETAIL_SEVERITY

    leak_details = [d for d in report["details"] if DETAIL_SEVERITY[d["kind"]] == "leak"]
    near_details = [d for d in report["details"] if DETAIL_SEVERITY[d["kind"]] == "warning"]
    if leaks:
        listed = leak_details[:shown]
        lines.append(f"  LEAKS ({len(listed)} of {leaks} shown):")
        lines += [f"    LEAK {_leak(d)}" for d in listed]
    if near:
        listed = near_details[:shown]
        lines.append(f"  near-duplicate WARNINGS, not leaks: check them by eye ({len(listed)} of {near} shown):")
        lines += [f"    warning {_near(d)}" for d in listed]
    return lines


def _leak(d: dict[str, Any]) -> str:
    if d["kind"] == "subject":
        return f"subject {d['subject_id']} is in test and in train/val of repeat {d['repeat']} fold {d['fold']}"
    return f"exact duplicate: test sample {d['test_sample']} has the same pixels as a train/val image of its fold"


def _near(d: dict[str, Any]) -> str:
    if "roles" in d:
        where = f", {d['roles'][0]} vs {d['roles'][1]} in repeat {d['repeat']} fold {d['fold']}"
    else:
        where = ", from two source datasets"
    return f"near-duplicate {d['a']} ~ {d['b']} (hash distance {d['distance']}{where})"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="check a manifest for subject and image leakage (near-duplicates: warnings)")
    p.add_argument("manifest")
    p.add_argument("--near-threshold", type=int, default=4, help="perceptual-hash bits for a near-duplicate (of 64)")
    p.add_argument("--details", type=int, default=10, help="how many leaks, and how many near-duplicate warnings, to list")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
