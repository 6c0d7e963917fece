"""``ferbench analyse``: Grad-CAM, t-SNE and curves of a finished run."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ferbench import runner
from ferbench.analyse import gradcam
from ferbench.cli import main
from ferbench.run_record import RESULT
from ferbench.train.recipe import load_recipe

sys.path.insert(0, str(Path(__file__).parent))
import train_fixtures as tf  # noqa: E402


class LeftHalf(torch.nn.Module):
    """A classifier that sees only the left half of its input (the right half is zeroed before a
    bias-free convolution, so the convolution's activations there are zero)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.head = torch.nn.Linear(4, 2)

    def forward(self, x):
        mask = torch.zeros_like(x)
        mask[..., : x.shape[-1] // 2] = 1
        return self.head(torch.relu(self.conv(x * mask)).mean((2, 3)))


def test_gradcam_lights_only_what_the_model_can_see():
    maps, method = gradcam(LeftHalf(), torch.rand(3, 3, 16, 16), [0, 1, 0])
    assert method == "Grad-CAM" and maps.shape == (3, 16, 16)
    assert maps.min() >= 0 and np.allclose(maps.max((1, 2)), 1.0)
    assert maps[..., 10:].max() < 0.05  # the right half (past the interpolation seam) gets nothing
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 2))  # no convolution
    maps, method = gradcam(model, torch.rand(2, 3, 16, 16), [1, 0])
    assert method == "gradient × input" and maps.shape == (2, 16, 16)


def test_analyse_a_run(toy, tmp_path, capsys):
    recipe = tf.write_recipe(tmp_path / "r.yaml", toy[1], tmp_path / "runs", train={"epochs": 2, "precision": "fp32"})
    (run_dir,) = runner.run_recipe(load_recipe(recipe), folds=[0])
    assert main(["analyse", str(run_dir), "--per-class", "2"]) == 0
    out = run_dir / "analysis"
    assert sorted(p.name for p in out.iterdir()) == ["analysis.json", "curves.png", "gradcam.png", "tsne.csv", "tsne.png"]
    info = json.loads((out / "analysis.json").read_text())
    record = json.loads((run_dir / RESULT).read_text())
    preds = {r["sample_id"]: r for r in __import__("pyarrow.parquet", fromlist=["x"]).read_table(
        run_dir / "predictions.parquet").to_pylist() if r["role"] == "test"}
    classes = record["metrics"]["classes"]
    assert info["saliency"]["method"] == "Grad-CAM" and info["test_samples"] == len(preds)
    for c, samples in info["saliency"]["samples"].items():  # each shown image is of its row's true class
        assert 0 < len(samples) <= 2 and all(classes[preds[s]["label"]] == c for s in samples)
    with (out / "tsne.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(preds) and {r["sample_id"] for r in rows} == set(preds)
    assert all(r["true"] == classes[preds[r["sample_id"]]["label"]] and r["pred"] == classes[preds[r["sample_id"]]["pred"]]
               for r in rows)  # the analysis predicts what the run predicted
    assert np.isfinite([[float(r["x"]), float(r["y"])] for r in rows]).all()
    assert Image.open(out / "gradcam.png").size[1] > 100 and Image.open(out / "tsne.png").format == "PNG"
    assert main(["analyse", str(run_dir)]) == 0  # again: replaced, nothing left behind
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith(".")) == []


def test_analyse_refuses_what_it_cannot_read(tmp_path, capsys):
    assert main(["analyse", str(tmp_path)]) == 2
    assert "not a finished run" in capsys.readouterr().err
