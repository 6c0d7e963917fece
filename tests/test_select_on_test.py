"""``train.select: on_test`` — picking the epoch on the test fold, as some publications did: refused on
an honest protocol, run on an as-published one, recorded in the run and marked on the board."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

from ferbench import leaderboard as lb
from ferbench import runner
from ferbench.errors import FerbenchError
from ferbench.protocols import materialise
from ferbench.train.recipe import load_recipe

sys.path.insert(0, str(Path(__file__).parent))
import train_fixtures as tf  # noqa: E402

ON_TEST = {"epochs": 3, "select": "on_test", "monitor": "accuracy"}


def test_on_test_selection_is_refused_on_an_honest_protocol(toy, tmp_path):
    recipe = tf.write_recipe(tmp_path / "r.yaml", toy[1], tmp_path / "runs", train=ON_TEST)
    with pytest.raises(FerbenchError, match="only an as-published protocol may do that.*'toy-kfold' is not one"):
        runner.plan(load_recipe(recipe))
    assert not (tmp_path / "runs").exists()


def test_on_test_selection_on_a_published_protocol_is_recorded_and_marked(toy, tmp_path):
    published = materialise("toy-kfold-random-kfold", [toy[0]]).write(tmp_path / "published.parquet")
    recipe = tf.write_recipe(tmp_path / "r.yaml", published, tmp_path / "runs", train=ON_TEST)
    (run_dir,) = runner.run_recipe(load_recipe(recipe), folds=[0])
    selection = json.loads((run_dir / "metrics.json").read_text())["selection"]
    with (run_dir / "curves.csv").open() as f:
        curves = list(csv.DictReader(f))
    assert len(curves) == 3 and not any(k.startswith("val_") for k in curves[0])  # the scores are the test fold's
    test_acc = [float(r["test_accuracy"]) for r in curves]
    best = max(range(3), key=lambda e: (test_acc[e], -e))  # the first epoch of the best test accuracy
    assert (selection["rule"], selection["monitored_role"], selection["epoch"]) == ("on_test", "test", best)
    assert selection["value"] == pytest.approx(test_acc[best])
    measured = json.loads((run_dir / "metrics.json").read_text())["test"]["accuracy"]
    assert measured == pytest.approx(test_acc[best])  # the tested weights are that epoch's

    db = tmp_path / "lb.duckdb"
    lb.ingest([tmp_path / "runs"], db)
    (board,) = lb.rank(db)
    assert any(n.startswith("SELECTED ON TEST: r picks its epoch on the test fold") for n in board.notes), board.notes
    assert "SELECTED ON TEST" in lb.render([board], "table")
