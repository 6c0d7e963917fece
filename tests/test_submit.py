"""Open benchmark: ``ferbench submit`` / ``export`` — validation (exit 2, nothing written), scores
recomputed from the manifest's truth, external runs ingested by the leaderboard, and the round trip
export → submit reproducing a real run's metrics exactly (CI within bootstrap tolerance)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
import yaml

from ferbench import api
from ferbench.cli import main
from ferbench.metrics import bootstrap_ci
from ferbench.protocols import read_manifest
from ferbench.run_record import RunRecord
from ferbench.submit import SUBMISSION_SCHEMA

sys.path.insert(0, str(Path(__file__).parent))
import train_fixtures as tf  # noqa: E402


@pytest.fixture(scope="module")
def trained(toy, tmp_path_factory):
    """All three folds of a tiny recipe (1 epoch, CPU)."""
    data, manifest = toy
    root = tmp_path_factory.mktemp("runs")
    recipe = tf.write_recipe(root / "toy.yaml", manifest, root / "runs")
    records = api.run(recipe)
    return sorted(records, key=lambda r: r.fold)


def _truth(manifest):
    t = read_manifest(manifest).table.to_pylist()
    return [r for r in t if r["role"] == "test"], t


def _write(table: pa.Table, path: Path) -> Path:
    (pq.write_table if path.suffix == ".parquet" else pcsv.write_csv)(table, path)
    return path


def _perfect(manifest, classes=tf.CLASSES, probs=False) -> pa.Table:
    test, _ = _truth(manifest)
    cols = {"sample_id": [r["sample_id"] for r in test], "repeat": [r["repeat"] for r in test],
            "fold": [r["fold"] for r in test]}
    if probs:
        for j, c in enumerate(classes):
            cols[f"p_{c}"] = [0.9 if r["label"] == j else 0.05 for r in test]
    else:
        cols["pred"] = [classes[r["label"]] for r in test]
    return pa.table(cols)


def _fails(tmp_path, argv, *needles, capsys):
    runs = tmp_path / "out"
    assert main([*argv, "--runs", str(runs)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err, err
    for n in needles:
        assert n in err, err
    assert not runs.exists() or not any(runs.iterdir())
    return err


def test_perfect_submission_scored_from_manifest_and_ingested(toy, tmp_path, capsys):
    data, manifest = toy
    sub = _write(_perfect(manifest, probs=True), tmp_path / "sub.parquet")
    info = tmp_path / "model.yaml"
    info.write_text(yaml.safe_dump({"model": "MyNet", "params": 1234, "pretraining_data": "ImageNet-1k",
                                    "extra_training_data": False, "link": "https://example.invalid/paper"}))
    runs = tmp_path / "runs"
    assert main(["submit", str(sub), "--manifest", str(manifest), "--name", "mynet", "--info", str(info),
                 "--runs", str(runs), "--bootstrap", "100"]) == 0
    dirs = sorted(p for p in runs.iterdir())
    assert len(dirs) == 3  # one external run per fold
    test, _ = _truth(manifest)
    for d in dirs:
        rec = RunRecord.load(d)
        assert rec.recipe["external"] is True and rec.recipe["model"] == "MyNet (external)"
        ext = rec.extra["external"]
        assert ext["declared"]["params"] == 1234 and ext["format"] == "probabilities"
        import hashlib
        assert ext["predictions_sha256"] == hashlib.sha256(sub.read_bytes()).hexdigest()
        t = rec.metrics["test"]
        assert t["balanced_accuracy"] == 1.0 and t["n"] == sum(r["fold"] == rec.fold for r in test)
        assert t["ci"]["balanced_accuracy"] == [1.0, 1.0]
        preds = pq.read_table(rec.predictions_path)
        assert {"sample_id", "dataset", "subject_id", "role", "repeat", "fold", "seed", "label", "pred",
                "probs"} <= set(preds.column_names)
        assert json.loads(preds.schema.metadata[b"ferbench_classes"]) == list(tf.CLASSES)
    db = tmp_path / "lb.duckdb"
    boards = api.leaderboard(runs, db)
    (entry,) = [e for b in boards for e in b.entries]
    assert "(external)" in entry["model"]
    from ferbench.leaderboard.collect import collect
    assert all(r.external and r.external["name"] == "mynet" for r in collect([runs]).runs)
    # stored again under the same name: refused, nothing changed
    assert main(["submit", str(sub), "--manifest", str(manifest), "--name", "mynet", "--runs", str(runs)]) == 2


def test_pred_as_index_and_csv(toy, tmp_path):
    _, manifest = toy
    t = _perfect(manifest)
    idx = pa.array([str(tf.CLASSES.index(v)) for v in t.column("pred").to_pylist()])
    sub = _write(t.set_column(t.column_names.index("pred"), "pred", idx), tmp_path / "sub.csv")
    recs = api.submit(sub, manifest, name="idx", runs=tmp_path / "runs", bootstrap=50)
    assert [r.metrics["test"]["accuracy"] for r in recs] == [1.0, 1.0, 1.0]
    assert recs[0].extra["external"]["format"] == "pred"


def test_labels_come_from_the_manifest_not_the_file(toy, tmp_path):
    _, manifest = toy
    t = _perfect(manifest)
    wrong = pa.array([tf.CLASSES[(tf.CLASSES.index(v) + 1) % 3] for v in t.column("pred").to_pylist()])
    sub = _write(t.set_column(t.column_names.index("pred"), "pred", wrong), tmp_path / "sub.csv")
    recs = api.submit(sub, manifest, name="wrong", runs=tmp_path / "runs", bootstrap=50)
    assert all(r.metrics["test"]["accuracy"] == 0.0 for r in recs)


def _mutate(manifest, tmp_path, how):
    t = _perfect(manifest, probs=True).to_pydict()
    how(t)
    return _write(pa.table(t), tmp_path / "bad.parquet")


@pytest.mark.parametrize("how, needles", [
    (lambda t: [t[k].pop() for k in t], ["1 test sample(s) missing", "first: r0 f"]),
    (lambda t: [t[k].append(t[k][0]) for k in t], ["1 duplicate row(s)"]),
    (lambda t: t["sample_id"].__setitem__(0, "nope/x"), ["not in the manifest", "nope/x", "1 test sample(s) missing"]),
    (lambda t: t.pop("fold"), ["no column(s) fold"]),
    (lambda t: t.__setitem__("p_neutral", [float("nan")] + t["p_neutral"][1:]), ["non-finite probability"]),
    (lambda t: t.__setitem__("p_neutral", [0.5] + t["p_neutral"][1:]), ["do not sum to 1"]),
    (lambda t: t.__setitem__("p_anger", [0.0] * len(t["fold"])), ["not in protocol", "anger"]),
    (lambda t: t.pop("p_surprise"), ["probability columns missing", "p_surprise"]),
    (lambda t: t.__setitem__("label", [0] * len(t["fold"])), ["unknown column(s) label"]),
])
def test_bad_submissions_refused(toy, tmp_path, capsys, how, needles):
    _, manifest = toy
    bad = _mutate(manifest, tmp_path, how)
    _fails(tmp_path, ["submit", str(bad), "--manifest", str(manifest), "--name", "x"], *needles, capsys=capsys)


def test_train_ids_and_unknown_class_names_refused(toy, tmp_path, capsys):
    _, manifest = toy
    test, rows = _truth(manifest)
    train = next(r for r in rows if r["role"] == "train" and r["fold"] == test[0]["fold"])
    t = _perfect(manifest).to_pydict()
    t["sample_id"][0] = train["sample_id"]
    _fails(tmp_path, ["submit", str(_write(pa.table(t), tmp_path / "a.csv")), "--manifest", str(manifest), "--name", "x"],
           "train/val samples", train["sample_id"], capsys=capsys)
    t = _perfect(manifest).to_pydict()
    t["pred"][3] = "contempt"
    _fails(tmp_path, ["submit", str(_write(pa.table(t), tmp_path / "b.csv")), "--manifest", str(manifest), "--name", "x"],
           "contempt", "neither a class", capsys=capsys)


def test_bad_info_and_fingerprint_mismatch_refused(toy, tmp_path, capsys):
    data, manifest = toy
    sub = _write(_perfect(manifest), tmp_path / "sub.csv")
    info = tmp_path / "i.yaml"
    info.write_text("model: X\nflops: 3\n")
    _fails(tmp_path, ["submit", str(sub), "--manifest", str(manifest), "--name", "x", "--info", str(info)],
           "unknown key(s) flops", capsys=capsys)
    other = tf.make_dataset(tmp_path / "other", seed=7)  # same name, other pixels → other fingerprint
    _fails(tmp_path, ["submit", str(sub), "--manifest", str(manifest), "--name", "x", "--data", str(other)],
           "fingerprint", capsys=capsys)


def test_export_submit_round_trip_reproduces_the_run(toy, trained, tmp_path, capsys):
    _, manifest = toy
    out = tmp_path / "export.csv"
    assert main(["export", *[str(r.run_dir) for r in trained], "--csv", "--out", str(out)]) == 0
    header = out.read_text().splitlines()[0]
    assert header.replace('"', "") == "sample_id,repeat,fold,pred," + ",".join(f"p_{c}" for c in tf.CLASSES)
    recs = api.submit(out, manifest, name="roundtrip", runs=tmp_path / "runs", bootstrap=200)
    assert len(recs) == len(trained)
    for run, sub in zip(trained, recs):
        assert (run.repeat, run.fold) == (sub.repeat, sub.fold)
        for k in ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1", "confusion", "per_class_recall", "n"):
            assert sub.metrics["test"][k] == run.metrics["test"][k], k
        assert sub.metrics["baselines"] == run.metrics["baselines"]
        assert sub.metrics["train_class_counts"] == run.metrics["train_class_counts"]
        t = pq.read_table(run.predictions_path)
        t = t.filter(np.asarray(t.column("role").to_pylist(), dtype=object) == "test")
        ci = bootstrap_ci(t.column("label").to_numpy(), t.column("pred").to_numpy(), t.column("subject_id").to_pylist(),
                          len(tf.CLASSES), n_boot=200)
        for k, (lo, hi) in ci.items():
            assert abs(sub.metrics["test"]["ci"][k][0] - lo) <= 0.1 and abs(sub.metrics["test"]["ci"][k][1] - hi) <= 0.1
        exported = pq.read_table(sub.predictions_path)
        mine = dict(zip(exported.column("sample_id").to_pylist(), exported.column("probs").to_pylist()))
        theirs = dict(zip(t.column("sample_id").to_pylist(), t.column("probs").to_pylist()))
        assert mine.keys() == theirs.keys()
        for sid, p in theirs.items():
            np.testing.assert_allclose(mine[sid], p, rtol=0, atol=1e-7)
    # stdout export works too
    capsys.readouterr()
    assert main(["export", str(trained[0].run_dir), "--csv"]) == 0
    assert capsys.readouterr().out.startswith('"sample_id"')


def test_schema_documents_the_format():
    assert SUBMISSION_SCHEMA["required"] == ["sample_id", "repeat", "fold"]
    assert "^p_.+$" in SUBMISSION_SCHEMA["patternProperties"]
