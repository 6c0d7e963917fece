"""A run's saved model (model.safetensors + model.json, curves.png), ``load_model``, ``ferbench
predict`` and inference-only ``evaluate`` (a loaded model and a plain callable)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ferbench import api
from ferbench.cli import main
from ferbench.errors import FerbenchError

sys.path.insert(0, str(Path(__file__).parent))
import train_fixtures as tf  # noqa: E402


@pytest.fixture(scope="module")
def trained(toy, tmp_path_factory):
    _, manifest = toy
    root = tmp_path_factory.mktemp("runs")
    recipe = tf.write_recipe(root / "toy.yaml", manifest, root / "runs", train={"epochs": 2, "batch_size": 8})
    return sorted(api.run(recipe), key=lambda r: r.fold)


def test_run_dir_has_safetensors_model_json_and_curves_png(trained):
    d = trained[0].run_dir
    assert {"model.safetensors", "model.json", "curves.png"} <= {p.name for p in d.iterdir()}
    info = json.loads((d / "model.json").read_text())
    assert info["model"] == "tiny_cnn" and info["classes"] == list(tf.CLASSES)
    assert info["input"]["size"] == 16 and len(info["input"]["mean"]) == info["input"]["channels"]
    assert (d / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_load_model_reproduces_the_runs_test_predictions(toy, trained):
    data, manifest = toy
    model, transform = api.load_model(trained[0].run_dir)
    assert not model.training
    test = api.load_fold(manifest, trained[0].fold)["test"]
    x = torch.stack([transform(im) for im in test["image"]])
    with torch.no_grad():
        probs = torch.softmax(model(x), 1).numpy()
    import pyarrow.parquet as pq
    t = pq.read_table(trained[0].predictions_path).to_pylist()
    ref = {r["sample_id"]: r["probs"] for r in t if r["role"] == "test"}
    for sid, p in zip(test["sample_id"], probs):
        np.testing.assert_allclose(p, ref[sid], atol=1e-3)  # float op order differs slightly


def test_predict_command(toy, trained, tmp_path, capsys):
    data, manifest = toy
    test = api.load_fold(manifest, 0)["test"]
    files = []
    for i, im in enumerate(test["image"][:3]):
        files.append(tmp_path / f"f{i}.png")
        im.save(files[-1])
    assert main(["predict", str(trained[0].run_dir), *map(str, files), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["file"] for r in rows] == list(map(str, files))
    assert all(r["class"] in tf.CLASSES and 0 <= r["probability"] <= 1 for r in rows)
    assert main(["predict", str(trained[0].run_dir), str(files[0])]) == 0
    assert capsys.readouterr().out.split("\t")[0] == str(files[0])
    assert main(["predict", str(tmp_path), str(files[0])]) == 2  # no saved model


def test_evaluate_loaded_model_matches_run_metrics(toy, trained, tmp_path):
    _, manifest = toy
    model, _ = api.load_model(trained[0].run_dir)
    sub = api.evaluate(model, manifest, batch_size=5, name="reloaded", runs=tmp_path / "runs", progress=False)
    assert sub.table.num_rows == sum(r.metrics["n"]["test"] for r in trained)
    rec0 = next(r for r in sub.records if r.fold == trained[0].fold)
    assert rec0.metrics["test"]["confusion"] == trained[0].metrics["test"]["confusion"]


def test_evaluate_plain_callable(toy, tmp_path):
    _, manifest = toy

    def oracle(images):  # the fixture's classes are bright squares at fixed places
        out = []
        for im in images:
            a = np.asarray(im.convert("L"), np.float32)
            q = a.shape[0] // 4
            spots = [a[0:2 * q, 0:2 * q].mean(), a[0:2 * q, 2 * q:].mean(), a[2 * q:, q:3 * q].mean()]
            p = np.full(3, 0.01)
            p[int(np.argmax(spots))] = 0.98
            out.append(p)
        return np.stack(out)

    sub = api.evaluate(oracle, manifest, out=tmp_path / "sub.csv", name="oracle", runs=tmp_path / "runs", progress=False)
    assert (tmp_path / "sub.csv").is_file()
    assert all(r.metrics["test"]["accuracy"] == 1.0 for r in sub.records)
    with pytest.raises(FerbenchError, match="shape"):
        api.evaluate(lambda ims: np.ones((len(ims), 2)) / 2, manifest, progress=False)
