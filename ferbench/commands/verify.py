"""``ferbench verify MANIFEST``: re-run the leakage checks; exit status 1 if the manifest leaks."""

from __future__ import annotations

import argparse
import json


def run(args: argparse.Namespace) -> int:
    from ..protocols import read_manifest
    from ..protocols.verify import verify

    manifest = read_manifest(args.manifest)
    report = verify(manifest, near_threshold=args.near_threshold)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        stored = manifest.meta.get("leakage", {}).get("verdict")
        print(f"{args.manifest}: {report['verdict']} (stored verdict: {stored})")
        print(
            f"  subject overlap {report['subject_overlap']}, exact duplicates {report['exact_duplicates']}, "
            f"near-duplicates {report['near_duplicates']} {report['near_duplicate_kinds']}"
        )
        print(f"  {report['hashed_samples']} images hashed, {report['unhashed_samples']} samples without an image")
        for d in report["details"][: args.details]:
            print(f"    {d}")
    return 0 if report["verdict"] == "clean" else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="check a manifest for subject and image leakage")
    p.add_argument("manifest")
    p.add_argument("--near-threshold", type=int, default=4, help="perceptual-hash bits for a near-duplicate (of 64)")
    p.add_argument("--details", type=int, default=10, help="how many offending items to print")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
