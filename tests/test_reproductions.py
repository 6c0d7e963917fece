"""Reported vs reproduced as published vs reproduced honestly: the board's ``reproductions`` table and
``ferbench reproductions``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ferbench import leaderboard as lb
from ferbench.cli import main
from ferbench.run_record import RESULT

sys.path.insert(0, str(Path(__file__).parent))
import train_fixtures as tf  # noqa: E402
from test_leaderboard_fakes import CLASSES, fake_run, fold_truth, predict  # noqa: E402

FIGURES = [{"value": 75.0, "metric": "accuracy", "role": "test", "source": "Paper, Tab. 1"},
           {"value": 70.0, "metric": f"recall:{CLASSES[1]}", "role": "test", "source": "Paper, Tab. 2"},
           {"value": 50.0, "metric": "accuracy", "role": "val", "source": "Paper, Fig. 3"},
           {"value": 80.0, "metric": f"accuracy_without:{CLASSES[0]}", "role": "test", "source": "Paper, Tab. 1"},
           {"value": 2.5, "metric": "params_m", "role": "test", "source": "Paper, Tab. 1"}]
MODEL = {"params": 2_000_000, "trainable_params": 2_000_000, "gflops": 0.5}
HONEST, PUBLISHED = "a" * 64, "b" * 64


def _runs(root: Path, name: str, recipe_hash: str, manifest: str, published: bool, accuracy: float,
          same_as: float | None = None) -> list[dict]:
    out = []
    for fold in range(3):
        truth = fold_truth(fold)[0]
        pred = predict(truth, same_as if same_as is not None else accuracy, seed=fold)
        run = fake_run(root, name, recipe_hash, fold=fold, manifest=manifest, published=published, reported=FIGURES,
                       pred=pred, model=MODEL)
        out.append(json.loads((run / RESULT).read_text())["metrics"]["test"])
    return out


@pytest.fixture
def board(tmp_path):
    runs = tmp_path / "runs"
    honest = _runs(runs, "rep", "h" * 16, HONEST, False, 0.55)
    published = _runs(runs, "rep", "p" * 16, PUBLISHED, True, 0.85)
    _runs(runs, "same", "s" * 16, HONEST, False, 0.7, same_as=0.7)  # identical predictions on both sides
    _runs(runs, "same", "t" * 16, PUBLISHED, True, 0.7, same_as=0.7)
    db = tmp_path / "lb.duckdb"
    lb.ingest([runs], db)
    return db, honest, published


def test_each_figure_reported_as_published_honest_and_both_gaps(board):
    db, honest, published = board
    rows = {(r["recipe_name"], r["metric"], r["role"]): r for r in lb.reproductions(db)}
    acc = rows[("rep", "accuracy", "test")]
    pub = 100 * np.mean([m["accuracy"] for m in published])
    hon = 100 * np.mean([m["accuracy"] for m in honest])
    assert (acc["published_runs"], acc["honest_runs"], acc["published_manifest"], acc["honest_manifest"]) == (3, 3, PUBLISHED, HONEST)
    assert acc["as_published"] == pytest.approx(pub) and acc["honest"] == pytest.approx(hon)
    assert acc["implementation_gap"] == pytest.approx(pub - 75.0)
    assert acc["leakage_inflation"] == pytest.approx(pub - hon)
    assert acc["gap_lo"] <= acc["implementation_gap"] <= acc["gap_hi"]
    assert 0 < acc["inflation_lo"] <= acc["leakage_inflation"] <= acc["inflation_hi"]  # 30 points on 144 paired rows

    recall = rows[("rep", f"recall:{CLASSES[1]}", "test")]  # a per-class figure
    expected = 100 * np.mean([m["per_class_recall"][CLASSES[1]] for m in published])
    assert recall["as_published"] == pytest.approx(expected) and recall["gap_lo"] <= recall["implementation_gap"] <= recall["gap_hi"]

    without = rows[("rep", f"accuracy_without:{CLASSES[0]}", "test")]
    cms = [np.asarray(m["confusion"]) for m in published]
    assert without["as_published"] == pytest.approx(100 * np.mean([np.trace(cm[1:, 1:]) / cm[1:].sum() for cm in cms]))

    params = rows[("rep", "params_m", "test")]  # a model figure: in its own unit, no interval
    assert (params["as_published"], params["honest"], params["implementation_gap"], params["leakage_inflation"]) == (2.0, 2.0, -0.5, 0.0)
    assert params["gap_lo"] is None

    val = rows[("rep", "accuracy", "val")]
    assert val["as_published"] is None and "val figure" in val["note"]

    same = rows[("same", "accuracy", "test")]  # paired: identical predictions differ by exactly 0 in every resample
    assert (same["leakage_inflation"], same["inflation_lo"], same["inflation_hi"]) == (0.0, 0.0, 0.0)


def test_the_command_fills_what_was_measured_and_names_what_needs_data(board, tmp_path, capsys):
    db, _, published = board
    recipes = [tf.write_recipe(tmp_path / f"{name}.yaml", tmp_path / "m.parquet", tmp_path / "out", reported=FIGURES)
               for name in ("rep", "unmeasured")]
    assert main(["reproductions", "--db", str(db), "--recipes", *map(str, recipes), "--markdown"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("| rep") or line.startswith("| unmeasured")]
    assert len(lines) == 10
    pub = 100 * np.mean([m["accuracy"] for m in published])
    assert f"| {pub:.2f} (3 runs) |" in lines[0] and f"{pub - 75:+.2f} [" in lines[0]
    assert "val figure: see the board" in lines[2]
    assert all("needs the licensed data" in line for line in lines[5:])
    assert main(["reproductions", "--db", str(tmp_path / "nope.duckdb")]) == 2
    assert "no leaderboard database" in capsys.readouterr().err


def test_readme_table_is_the_command_output_without_a_board(tmp_path, monkeypatch, capsys):
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = readme.split("<!-- reproductions:begin -->\n", 1)[1].split("<!-- reproductions:end -->", 1)[0]
    monkeypatch.chdir(tmp_path)  # no leaderboard/ferbench.duckdb here: nothing measured
    assert main(["reproductions", "--markdown"]) == 0
    assert capsys.readouterr().out.strip() == block.strip()
    assert block.count("| needs the licensed data | needs the licensed data |") == block.count("\n") - 4
