"""What an entry is: its recipe content hash (names listed, override diff against the recipe file), the
model facts a run measures, and reported vs reproduced figures."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest

from ferbench import leaderboard as lb
from ferbench import runner
from ferbench.run_record import RESULT, RunRecord
from ferbench.train.recipe import load_recipe

sys.path.insert(0, str(Path(__file__).parent))
import train_fixtures as tf  # noqa: E402
from test_leaderboard_fakes import CLASSES, fake_run  # noqa: E402


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("identity")
    return root, tf.write_manifest(tf.make_dataset(root), root / "m.parquet")


def _entries(db) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT names, short_hash FROM entries ORDER BY short_hash").fetchall()
    finally:
        con.close()


def test_same_content_under_two_names_is_one_entry_listing_both(toy, tmp_path):
    root, manifest = toy
    for name in ("alpha", "beta"):
        path = tf.write_recipe(tmp_path / f"{name}.yaml", manifest, tmp_path / name)
        runner.run_recipe(load_recipe(path), folds=[0])
    report = lb.build_board([tmp_path / "alpha", tmp_path / "beta"], tmp_path / "lb.duckdb")
    assert report.runs == 1 and [k for _, k, _ in report.notes] == ["duplicate"]
    ((names, short),) = _entries(tmp_path / "lb.duckdb")
    assert names == ["alpha", "beta"]
    assert f"alpha = beta @{short}" in lb.render(lb.rank(tmp_path / "lb.duckdb"), "table")


def test_two_contents_under_one_name_are_two_entries(toy, tmp_path):
    root, manifest = toy
    for sub, epochs in (("x", 1), ("y", 2)):
        path = tf.write_recipe(tmp_path / sub / "gamma.yaml", manifest, tmp_path / "runs", train={"epochs": epochs})
        runner.run_recipe(load_recipe(path), folds=[0])
    lb.ingest([tmp_path / "runs"], tmp_path / "lb.duckdb")
    entries = _entries(tmp_path / "lb.duckdb")
    assert [e[0] for e in entries] == [["gamma"], ["gamma"]] and entries[0][1] != entries[1][1]
    text = lb.render(lb.rank(tmp_path / "lb.duckdb"), "table")
    assert all(f"gamma @{short}" in text for _, short in entries)


def test_override_diff_and_model_facts_are_recorded_at_run_time(toy, tmp_path, monkeypatch):
    import torch

    from ferbench.models import create_model

    root, manifest = toy
    weights = tmp_path / "w.pt"
    torch.save(create_model("tiny_cnn", 3, 3).state_dict(), weights)
    path = tf.write_recipe(tmp_path / "recipes" / "delta.yaml", manifest, tmp_path / "runs")
    monkeypatch.chdir(tmp_path)
    recipe = load_recipe("recipes/delta.yaml", ["train.epochs=2", f"model.checkpoint={weights}"])
    (run_dir,) = runner.run_recipe(recipe, folds=[0])
    record = RunRecord.load(run_dir)
    assert record.recipe["file"] == str(path.resolve()) and record.recipe["located"] == "by name"
    assert record.recipe["overrides"] == {"train.epochs": [1, 2], "model.checkpoint": [None, str(weights)]}
    facts = record.model
    model = create_model("tiny_cnn", 3, 3)
    assert facts["params"] == sum(p.numel() for p in model.parameters()) == facts["trainable_params"]
    assert facts["gflops"] > 0 and facts["flops_input"] == [1, 3, 16, 16] and "FlopCounterMode" in facts["flops_counter"]
    assert facts["checkpoint_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert facts["pretrained"] is True and facts["pretrained_source"] == "checkpoint w.pt"
    env = record.environment
    assert env["ferbench_version"] and env["wall_s"] > 0 and env["device"] == "cpu" and record.created_at
    lb.ingest([tmp_path / "runs"], tmp_path / "lb.duckdb")
    text = lb.render(lb.rank(tmp_path / "lb.duckdb"), "md")
    assert "train.epochs: 1 → 2" in text and "(by name)" in text and "checkpoint sha256 " + facts["checkpoint_sha256"][:16] in text
    assert "pretrained: checkpoint w.pt" in text


def test_a_recipe_without_a_file_says_so(toy, tmp_path):
    root, manifest = toy
    runner.run_recipe(load_recipe(tf.write_recipe(tmp_path / "no-such-name-anywhere.yaml", manifest, tmp_path / "runs")),
                      folds=[0])
    (result,) = lb.find_results([tmp_path / "runs"])
    rc = json.loads(result.read_text())["recipe"]
    assert (rc["file"], rc["located"], rc["overrides"]) == (None, None, None)
    lb.ingest([tmp_path / "runs"], tmp_path / "lb.duckdb")
    assert "no recipe file found at run time" in lb.render(lb.rank(tmp_path / "lb.duckdb"), "table")


def test_several_reported_figures_with_measured_delta_and_notes(tmp_path):
    reported = [{"value": 60.0, "metric": "accuracy", "role": "test", "source": "report 9, Table 1", "notes": "one run"},
                {"value": 50.0, "metric": "macro_f1", "role": "test", "source": "report 9, Table 2", "notes": "macro"},
                {"value": 70.0, "metric": f"recall:{CLASSES[1]}", "role": "test", "source": "report 9, Table 3"},
                {"value": 65.0, "metric": f"accuracy_without:{CLASSES[2]}", "role": "test", "source": "report 9, Table 1"},
                {"value": 1.5, "metric": "gmacs", "role": "test", "source": "report 9, Table 1"}]
    runs = tmp_path / "runs"
    for fold in range(3):
        fake_run(runs, "rep", "r" * 16, fold=fold, reported=reported)
    lb.ingest([runs], tmp_path / "lb.duckdb")
    (board,) = lb.rank(tmp_path / "lb.duckdb")
    rows = {r["metric"]: r for r in board.reported}
    measured = [json.loads(p.read_text())["metrics"]["test"] for p in sorted(runs.glob(f"*/{RESULT}"))]
    acc = 100 * sum(m["accuracy"] for m in measured) / 3
    assert rows["accuracy"]["measured"] == pytest.approx(acc) and rows["accuracy"]["delta"] == pytest.approx(acc - 60)
    assert rows["macro_f1"]["reported"] == 50.0 and rows["macro_f1"]["notes"] == "macro"
    recall = 100 * sum(m["per_class_recall"][CLASSES[1]] for m in measured) / 3  # a per-class figure
    per_class = rows[f"recall:{CLASSES[1]}"]
    assert per_class["measured"] == pytest.approx(recall) and per_class["n_runs"] == 3
    cms = [np.asarray(m["confusion"]) for m in measured]  # the full argmax on the rows of the other classes
    without = 100 * np.mean([np.trace(cm[:2, :2]) / cm[:2].sum() for cm in cms])
    assert rows[f"accuracy_without:{CLASSES[2]}"]["measured"] == pytest.approx(without)
    assert rows["gmacs"]["measured"] is None  # these records have no model facts
    text = lb.render([board], "table")
    assert "Reported vs reproduced" in text and "report 9, Table 2" in text and "one run" in text
    assert f"60.00 vs {acc:.2f} accuracy (test); 50.00 vs" in text
    # a record written before model facts and recipe origins were recorded
    assert "params —" in text and "recipe file not recorded" in text


def test_a_trunk_checkpoint_is_loaded_and_recorded_with_its_hash(toy, tmp_path):
    """Report 003's recipes load their trunk from ``model.kwargs.backbone_checkpoint``: the weights land
    in the trunk, and the run records the file and its SHA-256."""
    import timm
    import torch

    from ferbench.models import create_model

    weights = tmp_path / "trunk.pth"
    torch.manual_seed(1)
    state = timm.create_model("resnet10t", pretrained=False).state_dict()
    torch.save(state, weights)
    kwargs = {"backbone": "resnet10t", "backbone_checkpoint": str(weights)}
    model = create_model("rgbd_effnet_b2_rgb", 3, 3, True, None, **kwargs)
    trunk = model.trunks["rgb"].body
    assert torch.equal(trunk.state_dict()["conv1.0.weight"], state["conv1.0.weight"])
    path = tf.write_recipe(tmp_path / "t.yaml", toy[1], tmp_path / "runs",
                           model={"name": "rgbd_effnet_b2_rgb", "pretrained": True, "kwargs": kwargs})
    (run_dir,) = runner.run_recipe(load_recipe(path), folds=[0])
    facts = RunRecord.load(run_dir).model
    assert facts["checkpoint"] == str(weights) and facts["pretrained_source"] == "trunk checkpoint trunk.pth"
    assert facts["checkpoint_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()


def test_model_figures_are_compared_in_their_own_units(tmp_path):
    reported = [{"value": 1.5, "metric": "gmacs", "role": "test", "source": "T1"},
                {"value": 12.0, "metric": "params_m", "role": "test", "source": "T1"}]
    runs = tmp_path / "runs"
    for fold in range(3):
        fake_run(runs, "m", "m" * 16, fold=fold, reported=reported,
                 model={"params": 11_000_000, "trainable_params": 11_000_000, "gflops": 4.0})
    lb.ingest([runs], tmp_path / "lb.duckdb")
    (board,) = lb.rank(tmp_path / "lb.duckdb")
    rows = {r["metric"]: r for r in board.reported}
    assert (rows["gmacs"]["measured"], rows["gmacs"]["delta"]) == (2.0, 0.5)  # 4 GFLOPs = 2 GMACs
    assert rows["params_m"]["measured"] == pytest.approx(11.0) and rows["params_m"]["delta"] == pytest.approx(-1.0)
