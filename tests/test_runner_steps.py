"""The runner's steps one at a time (prepare → fit → evaluate → write) give what ``run_job`` gives."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq

from ferbench import runner
from ferbench.run_record import RunRecord
from ferbench.train.recipe import load_recipe

sys.path.insert(0, str(Path(__file__).parent))
import train_fixtures as tf  # noqa: E402


def test_steps_one_at_a_time_equal_run_job(tmp_path):
    manifest = tf.write_manifest(tf.make_dataset(tmp_path), tmp_path / "m.parquet")
    jobs = [runner.plan(load_recipe(tf.write_recipe(tmp_path / f"{n}.yaml", manifest, tmp_path / n)), folds=[1])[0]
            for n in ("steps", "whole")]

    p = runner.prepare(jobs[0], device="cpu")
    assert set(p.idx) == {"train", "val", "test"} and set(p.eval_loaders) == {"val", "test"}
    assert p.train_counts.sum() == len(p.idx["train"]) and p.work.name == f".{jobs[0].name}.partial"
    fitted = runner.fit(p)
    assert fitted.selection["rule"] == "best" and fitted.selection["epochs_ran"] == 1
    ev = runner.evaluate(p, fitted)
    assert ev.scores["selection"] is fitted.selection and set(ev.predictions.column("role").to_pylist()) == {"val", "test"}
    record = runner.make_record(p, ev.scores, {"world_size": 1})
    assert record.run_id == jobs[0].key and record.metrics is ev.scores
    assert not jobs[0].finished()
    assert runner.write_run(p, fitted, ev) == jobs[0].run_dir and jobs[0].finished()

    whole = runner.run_job(jobs[1], device="cpu")
    for name in ("predictions.parquet", "metrics.json"):
        a, b = jobs[0].run_dir / name, whole / name
        assert (pq.read_table(a).equals(pq.read_table(b)) if name.endswith(".parquet")
                else json.loads(a.read_text()) == json.loads(b.read_text()))
    assert RunRecord.load(jobs[0].run_dir).metrics == RunRecord.load(whole).metrics
