"""``ferbench bench [--only NAME ...] [--out DIR] [--quick] [--device cuda]``: speed figures beside
their baselines and peers, measured in the same run (``ferbench.bench``)."""

from __future__ import annotations

import argparse
import json
import time
import traceback
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from ..errors import FerbenchError


def select(names: list[str] | None, device: str = "cpu") -> list[str]:
    """The benchmarks to run: every CPU one (plus the GPU ones with ``device="cuda"``), or those
    matching ``names`` (globs allowed), in registry order."""
    from ..bench import BENCHMARKS

    usable = [n for n, b in BENCHMARKS.items() if device == "cuda" or not b.gpu]
    if not names:
        return usable
    unknown = [p for p in names if not any(fnmatchcase(n, p) for n in BENCHMARKS.names())]
    if unknown:
        raise FerbenchError(BENCHMARKS.unknown(unknown[0]) + (f" (also unknown: {unknown[1:]})" if unknown[1:] else ""))
    gpu_only = [p for p in names if not any(fnmatchcase(n, p) for n in usable)]
    if gpu_only:
        raise FerbenchError(f"benchmark(s) {gpu_only} need --device cuda")
    return [n for n in usable if any(fnmatchcase(n, p) for p in names)]


def run_benchmarks(names: list[str] | None = None, quick: bool = False, device: str = "cpu") -> dict[str, Any]:
    """Run the selected benchmarks (``quick``: their small test sizes). A benchmark that raises is
    recorded with its error and the others still run."""
    from ..bench import BENCHMARKS
    from ..bench.base import machine

    results: dict[str, Any] = {}
    for name in select(names, device):
        print(f"bench {name} ...", flush=True)
        t0 = time.perf_counter()
        try:
            results[name] = BENCHMARKS[name].run(quick).to_dict()
        except Exception as e:
            results[name] = {"name": name, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
        results[name]["wall_s"] = round(time.perf_counter() - t0, 2)  # the whole benchmark, inputs included
    return {"quick": quick, "device": device, "machine": machine(), "results": results}


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"


def _goal(goal: float | None, ratio: float | None, met: bool | None) -> str:
    if goal is None:
        return ""
    return f"ratio ≤ {goal:g}" + ("" if met is None else f" ({'met' if met else 'missed'})")


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table: one line per comparison (baseline, peers, limits) of each
    benchmark, then each benchmark's notes."""
    m = report["machine"]
    lines = [
        f"ferbench bench ({m.get('usable_cpus', m.get('cpus'))} CPUs{', ' + m['gpu'] if m.get('gpu') else ''}, "
        f"python {m.get('python')}, torch {m.get('torch', '?')}{', quick sizes' if report['quick'] else ''})",
        "",
        "Ratio = ferbench's figure / the compared figure (below 1: ferbench is faster). Seconds throughout.",
        "",
        "| benchmark | ferbench (s) | compared with | kind | its figure (s) | ratio | goal |",
        "| --- | ---: | --- | --- | ---: | ---: | --- |",
    ]
    for name, r in report["results"].items():
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error'].splitlines()[0][:120]} | | | | | |")
            continue
        rows = ([r["baseline"]] if r["baseline"] else []) + r["peers"]
        budget = "" if r.get("limit") is None else (
            f"≤ {r['limit'] * 1e3:g} ms ({'met' if r['figure'] <= r['limit'] else 'missed'})")
        if not rows:
            lines.append(f"| {name} | {_num(r['figure'])} | — | | | | {budget} |")
        for k, c in enumerate(rows):
            head = f"| {name} | {_num(r['figure'])} |" if k == 0 else "| | |"
            goal = ", ".join(g for g in (_goal(c["goal"], c["ratio"], c["met"]), budget if k == 0 else "") if g)
            figure = _num(c["figure"]) if c["status"] == "ok" else f"skipped ({c['note']})"
            lines.append(f"{head} {c['name']} | {c['kind']} | {figure} | {_num(c['ratio'])} | {goal} |")
    lines.append("")
    for name, r in report["results"].items():
        if "error" not in r:
            notes = "; ".join(f"{k}: {v}" for k, v in r["notes"].items())
            peer_notes = "; ".join(f"{c['name']}: {c['note']}" for c in r["peers"] if c["note"] and c["status"] == "ok")
            lines.append(f"- **{name}**: {r['what']}. {notes}" + (f"; {peer_notes}" if peer_notes else ""))
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    report = run_benchmarks(args.only, args.quick, args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    (out / "bench.md").write_text(text)
    print(text, end="")
    failed = [n for n, r in report["results"].items() if "error" in r]
    if failed:
        raise FerbenchError(f"benchmark(s) {failed} failed; their tracebacks are in {out / 'bench.json'}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed benchmarks, each beside its baseline and peers measured in the same run")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks (globs allowed, e.g. 'loader_*')")
    p.add_argument("--out", default=".", help="directory for bench.json and bench.md (default: here)")
    p.add_argument("--quick", action="store_true", help="small sizes (seconds, for tests)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="cuda adds GPU train throughput of the runner vs a timm-benchmark-style loop")
    p.set_defaults(func=run)
