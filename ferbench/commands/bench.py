"""``ferbench bench [--only NAME ...] [--out DIR] [--quick]``: speed figures next to their baselines."""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path
from typing import Any

from ..errors import FerbenchError


def run_benchmarks(names: list[str] | None = None, quick: bool = False, device: str = "cpu") -> dict[str, Any]:
    """Run the named benchmarks (all by default); ``quick`` uses their small test sizes;
    ``device="cuda"`` adds the GPU training-throughput benchmarks (``GPU``)."""
    from ..bench import BENCHMARKS, GPU, QUICK

    known = {**BENCHMARKS, **(GPU if device == "cuda" else {})}
    unknown = sorted(set(names or ()) - set(known))
    if unknown:
        raise FerbenchError(f"unknown benchmark(s) {unknown}; known: {sorted(known)} (GPU ones need --device cuda)")
    results = {}
    for name in names or known:
        print(f"bench {name} ...", flush=True)
        results[name] = known[name](**(QUICK.get(name, {}) if quick else {}))
    return {
        "quick": quick,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "results": results,
    }


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table: benchmark, figure, baseline, ratio, goal."""
    lines = [
        f"ferbench bench ({report['machine']['cpus']} CPUs{', quick sizes' if report['quick'] else ''})",
        "",
        "| benchmark | figure (s) | baseline (s) | ratio | goal |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for name, r in report["results"].items():
        lines.append(f"| {name} | {r['figure']:.4f} | {r['baseline']:.4f} | {r['ratio']:.2f} | {_goal(r)} |")
    lines.append("")
    for name, r in report["results"].items():
        lines.append(f"- **{name}**: " + "; ".join(f"{k}: {v}" for k, v in r["details"].items()))
    return "\n".join(lines) + "\n"


def _goal(r: dict[str, Any]) -> str:
    """The goal column: a ratio goal and/or an absolute budget (``limit``, seconds), and whether it was met."""
    parts, met = [], True
    if r.get("goal") is not None:
        parts.append(f"ratio ≤ {r['goal']}")
        met &= r["ratio"] <= r["goal"]
    if r.get("limit") is not None:
        parts.append(f"≤ {r['limit'] * 1e3:g} ms")
        met &= r["figure"] <= r["limit"]
    return f"{', '.join(parts)} ({'met' if met else 'missed'})" if parts else "—"


def run(args: argparse.Namespace) -> int:
    report = run_benchmarks(args.only, args.quick, args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (out / "bench.md").write_text(text)
    print(text, end="")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed benchmarks, each as a ratio to a baseline measured in the same run")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")
    p.add_argument("--out", default=".", help="directory for bench.json and bench.md (default: here)")
    p.add_argument("--quick", action="store_true", help="small sizes (seconds, for tests)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="cuda adds GPU train throughput of the runner vs a timm-benchmark-style loop")
    p.set_defaults(func=run)
