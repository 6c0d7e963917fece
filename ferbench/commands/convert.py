"""``ferbench convert NAME RAW_DIR --out OUT_DIR``: raw licensed copy → canonical Parquet shards.

A second ``convert`` to the same OUT while one runs stops at once with an error (exit 2): it
does not wait. SIGTERM stops a conversion cleanly (exit 143, nothing written)."""

from __future__ import annotations

import argparse

from ..errors import FerbenchError


def _options(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise FerbenchError(f"option {pair!r} is not key=value")
        key, value = pair.split("=", 1)
        out[key.strip().replace("-", "_")] = value
    return out


def run(args: argparse.Namespace) -> int:
    from .. import ui
    from ..build import convert

    result = convert(
        args.name,
        args.raw_dir,
        args.out,
        strict=args.strict,
        workers=args.workers,
        overwrite=args.overwrite,
        progress=not ui.quiet(),
        decode_check=not args.no_decode_check,
        follow_external_links=args.follow_external_links,
        **_options(args.option),
    )
    rep = result.report
    print(f"{args.name}: {result.num_rows} rows → {result.out_dir} (fingerprint {result.fingerprint})")
    if ui.quiet():
        return 0
    print(f"  layout {rep['layout']}, {rep['null_labels']} without an emotion label, {rep['faults_total']} faults")
    for kind, n in rep["fault_kinds"].items():
        print(f"    {kind}: {n}")
    for note in rep["notes"]:
        print(f"  note: {note}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from ..datasets import list_datasets

    p = sub.add_parser("convert", help="convert a licensed raw dataset into the canonical schema")
    p.add_argument("name", help=f"dataset: {', '.join(list_datasets())}")
    p.add_argument("raw_dir", help="the dataset as you received it (layout is auto-detected)")
    p.add_argument(
        "--out", required=True, help="output directory (written atomically; never the raw directory, inside it or around it)"
    )
    p.add_argument("--strict", action="store_true", help="stop at the first faulty sample")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing output directory (only one ferbench wrote, or an empty one)"
    )
    p.add_argument(
        "--no-decode-check",
        action="store_true",
        help="skip decoding every image in full (faster; only headers and end markers are checked)",
    )
    p.add_argument(
        "--follow-external-links",
        action="store_true",
        help="read raw files that are symbolic links to places outside the raw directory (default: a bad-link fault)",
    )
    p.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE", help="converter option")
    p.set_defaults(func=run)
