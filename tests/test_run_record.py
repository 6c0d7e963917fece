"""The run record: what the runner writes reads back to the same bytes, and junk is refused by name."""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path

import pytest

from ferbench import leaderboard as lb
from ferbench import runner
from ferbench.errors import FerbenchError
from ferbench.run_record import RESULT, RESULT_SCHEMA, RunRecord
from ferbench.train.recipe import load_recipe

sys.path.insert(0, str(Path(__file__).parent))
import train_fixtures as tf  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("record")
    manifest = tf.write_manifest(tf.make_dataset(root), root / "m.parquet")
    (run,) = runner.run_recipe(load_recipe(tf.write_recipe(root / "r.yaml", manifest, root / "runs")), folds=[0])
    return run


def test_the_runners_record_round_trips(run_dir):
    text = (run_dir / RESULT).read_text()
    record = RunRecord.load(run_dir)
    assert record.run_dir == run_dir and record.predictions_path == run_dir / "predictions.parquet"
    assert record.dumps() == text  # same keys, same order, same bytes
    assert RunRecord.from_json(json.loads(text)) == record == RunRecord.load(run_dir / RESULT)
    assert record.manifest_hash == record.protocol["manifest_hash"] and record.selection == record.metrics["selection"]
    assert record.fold == 0 and record.metrics == json.loads((run_dir / "metrics.json").read_text())


def test_unknown_keys_are_kept(run_dir, tmp_path):
    data = {**json.loads((run_dir / RESULT).read_text()), "note": {"from": "a later version"}}
    record = RunRecord.from_json(data)
    assert record.extra == {"note": {"from": "a later version"}} and record.to_json() == data
    assert list(RunRecord.from_json(record.dumps()).to_json()) == list(data)
    assert record.write(tmp_path).read_text() == record.dumps()


def _broken(data: dict) -> list[tuple[str, object]]:
    """(what is wrong, the JSON text or object written) for a set of bad records."""
    missing_selection = copy.deepcopy(data)
    del missing_selection["metrics"]["selection"]
    no_fingerprint = copy.deepcopy(data)
    del no_fingerprint["datasets"][0]["fingerprint"]
    return [
        ("invalid JSON", "{not json"),
        ("not an object", [1, 2]),
        ("schema 'ferbench-result/0'", {**data, "schema": "ferbench-result/0"}),
        ("no schema", {k: v for k, v in data.items() if k != "schema"}),
        ("no 'metrics'", {k: v for k, v in data.items() if k != "metrics"}),
        ("'fold' is str, not int", {**data, "fold": "0"}),
        ("no metrics.selection.rule", missing_selection),
        ("no datasets[0].fingerprint", no_fingerprint),
    ]


def test_junk_records_are_refused_in_one_line_naming_the_file(run_dir, tmp_path):
    data = json.loads((run_dir / RESULT).read_text())
    for i, (problem, content) in enumerate(_broken(data)):
        path = tmp_path / f"run{i}" / RESULT
        path.parent.mkdir()
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        with pytest.raises(FerbenchError) as err:
            RunRecord.load(path)
        message = str(err.value)
        assert "\n" not in message and message.startswith(f"{path}: not a {RESULT_SCHEMA} record"), message
        assert problem in message, message
    with pytest.raises(FerbenchError, match="cannot read"):
        RunRecord.load(tmp_path / "nowhere" / RESULT)


def test_ingest_skips_a_junk_result_file_naming_it(run_dir, tmp_path):
    import shutil

    runs = tmp_path / "runs"
    junk = runs / "broken-run" / RESULT
    junk.parent.mkdir(parents=True)
    junk.write_text("[]")
    with pytest.raises(FerbenchError, match=re.escape(f"{junk}: not a {RESULT_SCHEMA} record")):
        lb.ingest([runs], tmp_path / "lb.duckdb")  # nothing readable: refused
    shutil.copytree(run_dir, runs / run_dir.name)
    report = lb.build_board([runs], tmp_path / "lb.duckdb")
    assert report.runs == 1 and report.skipped == [(str(junk), f"not a {RESULT_SCHEMA} record (a JSON list, not an object)")]


def test_the_runner_records_model_facts_and_the_recipe_origin(run_dir):
    record = RunRecord.load(run_dir)
    assert record.model["params"] > 0 and record.model["gflops"] > 0 and record.model["checkpoint"] is None
    assert {"file", "located", "overrides"} <= set(record.recipe) and record.environment["ferbench_version"]
    assert list(record.to_json())[-1] == "model"


def test_model_is_optional_and_left_out_when_absent(run_dir):
    data = json.loads((run_dir / RESULT).read_text())
    del data["model"]
    record = RunRecord.from_json(data)
    assert record.model is None and record.to_json() == data and "model" not in json.loads(record.dumps())
    with pytest.raises(FerbenchError, match="'model' is list, not dict"):
        RunRecord.from_json({**data, "model": []})
    assert RunRecord.from_json({**data, "recipe": {**data["recipe"], "reported": [{"value": 1}, {"value": 2}]}}).reported \
        == [{"value": 1}, {"value": 2}]
