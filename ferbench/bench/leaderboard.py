"""Leaderboard speed: ``ferbench leaderboard`` ingest (a fresh DuckDB file from ``n`` run records,
bootstrap CIs included) and ranking, beside reading and parsing the same records and predictions.

The records are clones of one real run (synthetic CalD3r/MenD3s → convert → protocol → one epoch
of ``tiny_cnn``), each with its own run id and the template's predictions hard-linked.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .base import BenchResult, benchmark, compared, measure, time_once, workdir


def _template_run(wd: Path) -> Path:
    """One real run; its run directory is the template the records are cloned from."""
    from ..build import convert
    from ..datasets.caldr_menders.synth import write_caldr_menders
    from ..runner import run_recipe
    from ..train.recipe import from_dict

    write_caldr_menders(wd / "raw", subjects=6, seed=0, size=32)
    convert("caldr_menders", wd / "raw", wd / "data", workers=1, progress=False)
    recipe = from_dict({
        "name": "bench-template", "data": {"dirs": [str(wd / "data")]}, "protocol": {"name": "caldr_menders7"},
        "model": {"name": "tiny_cnn"}, "input": {"modality": "rgb", "size": 32}, "seeds": [0],
        "train": {"epochs": 1, "batch_size": 32}, "eval": {"bootstrap": 100},
        "runtime": {"out_dir": str(wd / "runs"), "progress": False},
    })
    return run_recipe(recipe, folds=[0], device="cpu", progress=False)[0]


def _clone_runs(template: Path, runs: Path, n: int, models: int) -> None:
    """``n`` result records cloned from ``template``: ``models`` recipes × seeds, each with its own
    run id and the template's predictions (hard-linked)."""
    from ..run_record import RESULT

    record = json.loads((template / RESULT).read_text())
    preds = template / record["predictions"]
    for i in range(n):
        rec = json.loads(json.dumps(record))
        model = i % models
        rec["run_id"] = hashlib.sha256(f"run{i}".encode()).hexdigest()[:16]
        rec["run_name"] = f"model{model}-{rec['run_id']}"
        rec["recipe"]["name"] = rec["recipe"]["model"] = f"model{model}"
        rec["recipe"]["hash"] = hashlib.sha256(f"model{model}".encode()).hexdigest()[:16]
        rec["seed"] = i // models
        d = runs / rec["run_name"]
        d.mkdir(parents=True)
        os.link(preds, d / record["predictions"])
        (d / RESULT).write_text(json.dumps(rec))


@benchmark("leaderboard", quick={"n": 40, "models": 4})
def bench_leaderboard(n: int = 10_000, models: int = 50, scratch: str | Path | None = None) -> BenchResult:
    """Leaderboard ingest of ``n`` run records vs reading and parsing the same records and predictions."""
    import pyarrow.parquet as pq

    from ..leaderboard import find_results, ingest, rank

    with workdir(scratch) as wd:
        template = _template_run(wd / "template")
        _clone_runs(template, wd / "runs", n, models)

        def read_all() -> int:
            rows = 0
            for path in find_results([wd / "runs"]):
                rec = json.loads(path.read_text())
                rows += pq.read_table(path.parent / rec["predictions"], columns=["label", "pred"]).num_rows
            return rows

        base = measure({"read": read_all}, repeat=1, warmup=1)["read"]  # the warm-up warms the page cache
        ingest_s, count = time_once(lambda: ingest([wd / "runs"], wd / "lb.duckdb"))
        query_s, boards = time_once(lambda: rank(wd / "lb.duckdb"))
    return BenchResult(
        figure=ingest_s,
        what=f"ingest {count} run records into a fresh DuckDB file (bootstrap CIs included)",
        baseline=compared("list, read and parse every result.json and its predictions.parquet", "baseline", base),
        goal=3.0,
        notes={"query_s": round(query_s, 3), "boards": len(boards), "entries": sum(len(b.entries) for b in boards),
               "prediction_rows": base.value, "statistic": "one run each (page cache warm)"},
    )
