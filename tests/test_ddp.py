"""DDP under torchrun with 2 CPU processes (gloo): evaluation is exact, so with the weights held fixed
(lr = 0, a model without batch statistics) the predictions and metrics equal a 1-process run's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ferbench import runner
from ferbench.train.recipe import load_recipe

sys.path.insert(0, str(Path(__file__).parent))
import train_fixtures as tf  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def test_two_gloo_processes_give_the_single_process_predictions(tmp_path):
    data = tf.make_dataset(tmp_path, subjects=7, per_class=1)  # 21 samples in folds of 3, 2, 2 subjects
    manifest = tf.write_manifest(data, tmp_path / "m.parquet")
    sections = dict(model={"name": "tiny_vit"}, optimizer={"name": "adamw", "lr": 0.0},
                    train={"epochs": 1, "batch_size": 4}, eval={"batch_size": 6, "bootstrap": 50})
    single = tf.write_recipe(tmp_path / "one.yaml", manifest, tmp_path / "one", **sections)
    double = tf.write_recipe(tmp_path / "two.yaml", manifest, tmp_path / "two", **sections)

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "ferbench.cli", "run", str(double), "--device", "cpu", "--folds", "0"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (one,) = runner.run_recipe(load_recipe(single), folds=[0])
    (two,) = [p for p in (tmp_path / "two").iterdir() if not p.name.startswith(".")]

    a, b = (pq.read_table(d / "predictions.parquet") for d in (one, two))
    roles = a.column("role").to_pylist()
    assert a.num_rows == b.num_rows and len(roles) % 2  # val + test, every sample once; odd: uneven rank shards
    for col in ("sample_id", "role", "label", "pred"):
        assert a.column(col).equals(b.column(col)), col
    assert np.allclose(np.array(a.column("probs").to_pylist()), np.array(b.column("probs").to_pylist()), atol=1e-5)
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    assert ma["test"] == mb["test"] and ma["val"] == mb["val"]
    envs = [json.loads((d / "result.json").read_text())["environment"]["world_size"] for d in (one, two)]
    assert envs == [1, 2]
