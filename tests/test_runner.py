"""The runner end to end on CPU: fixture data → convert → protocol → run → leaderboard, plus skip,
resume, concurrent jobs, the data pipeline's modalities and exact evaluation sharding."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from ferbench import runner
from ferbench.cli import main
from ferbench.errors import FerbenchError
from ferbench.protocols import read_manifest
from ferbench.metrics import rescore
from ferbench.train.inputs import InputSpec, norm_tensors, to_input
from ferbench.train.loader import Loader
from ferbench.train.store import open_store, resolve_dirs, split_indices
from ferbench.train.recipe import load_recipe

sys.path.insert(0, str(Path(__file__).parent))
import train_fixtures as tf  # noqa: E402

FILES = {"recipe.yaml", "predictions.parquet", "metrics.json", "curves.csv", "curves.png", "confusion.png", "result.json",
         "model.safetensors", "model.json"}


@pytest.fixture(scope="module")
def e2e(toy, tmp_path_factory):
    """One CLI run of fold 0 through the protocol registry (protocol.name + data.dirs), then ingest."""
    data, _ = toy
    root = tmp_path_factory.mktemp("e2e")
    recipe = root / "toy.yaml"
    recipe.write_text(yaml.safe_dump({
        "data": {"dirs": [str(data)]}, "protocol": {"name": "toy-kfold"}, "model": {"name": "tiny_cnn"},
        "input": {"size": 16}, "train": {"epochs": 1, "batch_size": 8}, "eval": {"bootstrap": 100},
        "runtime": {"workers": 1, "progress": False, "out_dir": str(root / "runs")},
    }))
    assert main(["run", str(recipe), "--device", "cpu", "--folds", "0"]) == 0
    (run_dir,) = [p for p in (root / "runs").iterdir() if not p.name.startswith(".") and p.name != "manifests"]
    assert main(["leaderboard", "--runs", str(root / "runs"), "--db", str(root / "lb.duckdb")]) == 0
    return recipe, run_dir, root / "lb.duckdb"


def test_run_directory_holds_every_output(e2e):
    recipe, run_dir, _ = e2e
    assert FILES <= {p.name for p in run_dir.iterdir()}
    resolved = load_recipe(run_dir / "recipe.yaml")
    assert resolved.hash() == load_recipe(recipe).hash()
    preds = pq.read_table(run_dir / "predictions.parquet")
    assert {"sample_id", "fold", "seed", "label", "pred", "probs", "role", "subject_id"} <= set(preds.column_names)
    assert set(preds.column("role").to_pylist()) == {"val", "test"}
    probs = np.array(preds.column("probs").to_pylist())
    assert probs.shape == (preds.num_rows, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    curves = (run_dir / "curves.csv").read_text().splitlines()
    assert curves[0].startswith("epoch,lr,train_loss") and len(curves) == 2
    assert (run_dir / "confusion.png").read_bytes()[:4] == b"\x89PNG"


def test_leaderboard_row_has_every_provenance_field(e2e):
    _, run_dir, db = e2e
    con = duckdb.connect(str(db), read_only=True)
    record = json.loads((run_dir / "result.json").read_text())
    for table in ("runs", "environment", "protocols", "datasets", "predictions"):
        cur = con.execute(f"SELECT * FROM {table}")
        names = [d[0] for d in cur.description]
        (row,) = cur.fetchall()
        missing = [n for n, v in zip(names, row) if v is None]
        assert not missing, f"{table} has empty fields {missing}"
    assert con.execute("SELECT leakage_verdict, protocol FROM protocols").fetchone() == ("clean", "toy-kfold")
    assert con.execute("SELECT manifest_hash FROM runs").fetchone()[0] == record["protocol"]["manifest_hash"]
    assert con.execute("SELECT count(*) FROM fold_metrics WHERE system IN ('majority', 'prior')").fetchone()[0] > 0
    env = record["environment"]
    assert env["world_size"] == 1 and env["device"] == "cpu" and len(env["git_sha"]) == 40
    assert env["packages"]["torch"] and env["train_samples_per_s"] > 0
    con.close()


def test_metrics_recomputed_from_predictions_equal_the_stored_ones(e2e):
    _, run_dir, _ = e2e
    stored = json.loads((run_dir / "metrics.json").read_text())
    for role in ("test", "val"):
        assert rescore(run_dir / "predictions.parquet", role) == stored[role]


def test_rerunning_skips_a_finished_job(e2e, capsys):
    recipe, run_dir, _ = e2e
    before = (run_dir / "result.json").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["run", str(recipe), "runtime.progress=true", "--device", "cpu", "--folds", "0"]) == 0
    assert "done, skipped" in capsys.readouterr().err
    assert (run_dir / "result.json").stat().st_mtime_ns == before


def _recipe(toy, tmp_path, **sections):
    return load_recipe(tf.write_recipe(tmp_path / "r.yaml", toy[1], tmp_path / "runs", **sections))


def test_a_killed_run_resumes_where_it_stopped(toy, tmp_path):
    def crash(epoch, row):
        if epoch == 0:
            raise RuntimeError("killed")

    recipe = _recipe(toy, tmp_path, train={"epochs": 2})
    with pytest.raises(RuntimeError, match="killed"):
        runner.run_recipe(recipe, folds=[1], callbacks=[crash])
    (job,) = runner.plan(recipe, folds=[1])
    assert not job.finished() and (job.run_dir.parent / f".{job.name}.partial" / "ckpt" / "last.pt").exists()

    (run_dir,) = runner.run_recipe(recipe, folds=[1])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["selection"]["resumed_from_epoch"] == 1 and metrics["selection"]["epochs_ran"] == 2
    epochs = [line.split(",")[0] for line in (run_dir / "curves.csv").read_text().splitlines()[1:]]
    assert epochs == ["0", "1"]
    assert not (job.run_dir.parent / f".{job.name}.partial").exists()

    # the resumed run is the run an uninterrupted one gives
    other = _recipe(toy, tmp_path / "straight", train={"epochs": 2})
    (straight,) = runner.run_recipe(other, folds=[1])
    a, b = (pq.read_table(d / "predictions.parquet") for d in (run_dir, straight))
    assert a.column("pred").equals(b.column("pred"))
    assert np.allclose(np.array(a.column("probs").to_pylist()), np.array(b.column("probs").to_pylist()), atol=1e-6)


def test_sweep_runs_jobs_in_parallel_processes_and_both_land(toy, tmp_path, capsys):
    from ferbench import leaderboard

    path = str(tf.write_recipe(tmp_path / "r.yaml", toy[1], tmp_path / "runs"))
    argv = ["sweep", path, path, "train.epochs=1", "--workers", "2", "--folds", "1,2", "--device", "cpu"]
    assert main(argv) == 0  # the same recipe twice: each job runs once
    assert "2 jobs: 2 run, 0 already finished, 0 failed" in capsys.readouterr().out
    assert leaderboard.ingest([tmp_path / "runs"], tmp_path / "lb.duckdb") == 2
    assert main(argv) == 0
    assert "2 jobs: 0 run, 2 already finished" in capsys.readouterr().out


def test_ray_executor_asks_for_ray(toy, tmp_path, monkeypatch):
    from ferbench.sweep import collect, sweep

    monkeypatch.setitem(sys.modules, "ray", None)
    jobs = collect([tf.write_recipe(tmp_path / "r.yaml", toy[1], tmp_path / "runs")], folds=[0])
    with pytest.raises(FerbenchError, match="pip install ray"):
        sweep(jobs, executor="ray")


def test_ray_executor_runs_the_same_jobs_on_a_local_cluster(toy, tmp_path):
    import ray

    from ferbench import leaderboard
    from ferbench.sweep import collect, sweep

    recipe = tf.write_recipe(tmp_path / "r.yaml", toy[1], tmp_path / "runs")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        first = sweep(collect([recipe], folds=[0, 1]), executor="ray", device="cpu")
        assert (len(first.done), first.failed, first.skipped) == (2, {}, [])
        again = sweep(collect([recipe], folds=[0, 1]), executor="ray", device="cpu")
        assert (again.done, sorted(again.skipped)) == ([], sorted(first.done))
    finally:
        ray.shutdown()
    assert leaderboard.ingest([tmp_path / "runs"], tmp_path / "lb.duckdb") == 2


def test_leaky_manifest_needs_allow_leakage(toy, tmp_path):
    m = read_manifest(toy[1])
    m.meta["leakage"] = {**m.meta["leakage"], "verdict": "leaky-allowed"}
    leaky = m.write(tmp_path / "leaky.parquet")
    path = tf.write_recipe(tmp_path / "r.yaml", leaky, tmp_path / "runs")
    with pytest.raises(FerbenchError, match="allow_leakage"):
        runner.plan(load_recipe(path))
    assert runner.plan(load_recipe(path, ["protocol.allow_leakage=true"]), folds=[0])


def test_fingerprint_mismatch_is_refused(toy):
    meta = read_manifest(toy[1]).meta
    meta["datasets"][0]["fingerprint"] = "0" * 16
    with pytest.raises(FerbenchError, match="fingerprint"):
        resolve_dirs(meta, [toy[0]])


def _spec(modality: str, channels: int) -> InputSpec:
    return InputSpec(modality, 16, channels, (0.5,) * channels, (0.25,) * channels)


@pytest.mark.parametrize(("modality", "channels"), [("rgb", 3), ("rgb", 1), ("depth", 1), ("rgbd", 4), ("rgbd", 2)])
def test_modalities_memory_and_stream_give_the_same_batches(toy, modality, channels):
    m = read_manifest(toy[1])
    spec = _spec(modality, channels)
    stream = open_store(m, [toy[0]], spec)
    cached = open_store(m, [toy[0]], spec)
    cached.decode_all(workers=2)
    idx = split_indices(m, cached, 0, 0)["test"]
    mean, std = norm_tensors(spec, "cpu")
    xs = [to_input(next(iter(Loader(s, idx, 5, train=False))), spec, mean, std) for s in (stream, cached)]
    assert xs[0].shape == (5, channels, 16, 16) and torch.equal(xs[0], xs[1])
    if modality != "rgb":
        depth = xs[1][:, -1] * 0.25 + 0.5  # undo the normalisation: min-max depth in [0.1, 1], 0 = no data
        assert depth.min() >= 0.1 - 1e-6 and depth.max() <= 1 + 1e-6


def test_evaluation_shards_cover_every_sample_once(toy):
    m = read_manifest(toy[1])
    store = open_store(m, [toy[0]], _spec("rgb", 3))
    idx = np.arange(len(store))[: len(store) - 1]  # an odd count
    shards = [Loader(store, idx, 4, train=False, rank=r, world=3)._order() for r in range(3)]
    assert np.array_equal(np.concatenate(shards), idx)
    train = [Loader(store, idx, 4, train=True, sampler=lambda rng: rng.permutation(len(idx)), rank=r, world=3)._order()
             for r in range(3)]
    assert len({len(t) for t in train}) == 1 and set(np.concatenate(train)) == set(idx)  # padded evenly, all seen


def test_early_stopping_with_every_option_switched_on(toy, tmp_path):
    """lr = 0 and a model without batch statistics: the val loss never improves, so patience 1 stops
    after the second epoch and the first epoch's weights are selected."""
    recipe = _recipe(
        toy, tmp_path, model={"name": "tiny_vit"}, sampler={"name": "class_balanced"},
        augment=[{"name": n} for n in ("hflip", "affine", "color", "erasing")],
        loss={"name": "ce", "class_weights": "inverse", "label_smoothing": 0.1},
        optimizer={"name": "sgd", "lr": 0.0}, scheduler={"name": "plateau", "patience": 0},
        train={"epochs": 5, "accum_steps": 2, "precision": "bf16", "channels_last": True, "grad_clip": 1.0,
               "early_stopping": 1, "monitor": "loss"},
    )
    (run_dir,) = runner.run_recipe(recipe, folds=[0])
    selection = json.loads((run_dir / "metrics.json").read_text())["selection"]
    assert (selection["epochs_ran"], selection["stopped_early"], selection["epoch"]) == (2, True, 0)


def test_batch_augmentations_keep_shape_and_do_what_they_say():
    from ferbench.train.augment import AUGMENTATIONS

    x = torch.rand(6, 4, 16, 16)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(AUGMENTATIONS["hflip"](p=1.0)(x, g, 3), x.flip(-1))
    same = AUGMENTATIONS["affine"](degrees=0.0, translate=0.0, scale_min=1.0, scale_max=1.0)(x, g, 3)
    assert torch.allclose(same, x, atol=1e-5)
    jittered = AUGMENTATIONS["color"](brightness=0.5, contrast=0.5)(x, g, 3)
    assert torch.equal(jittered[:, 3], x[:, 3]) and not torch.equal(jittered[:, :3], x[:, :3])  # depth untouched
    erased = AUGMENTATIONS["erasing"](p=1.0)(x, g, 3)
    assert erased.shape == x.shape and (erased == 0).sum() > (x == 0).sum()


def test_schedules_and_class_weights():
    from ferbench.train.losses import weights_for
    from ferbench.train.optim import OPTIMIZERS, SCHEDULERS

    def lrs(name, **kw):
        opt = OPTIMIZERS["sgd"](torch.nn.Linear(2, 2), lr=1.0)
        sched = SCHEDULERS[name](opt, 2, 5, **kw)
        out = []
        for _ in range(10):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step(0.0)
        return out

    cosine = lrs("cosine", warmup_epochs=1.0, min_lr_ratio=0.1)
    assert cosine[0] == pytest.approx(0.2) and cosine[4] == pytest.approx(1.0) and cosine[-1] > 0.1
    assert max(lrs("onecycle")) == pytest.approx(1.0, rel=0.05)
    assert lrs("step", step_epochs=1, gamma=0.5)[:2] == [1.0, 0.5]
    assert weights_for("inverse", [10, 30, 0]).tolist() == pytest.approx([1.5, 0.5, 0.0])
