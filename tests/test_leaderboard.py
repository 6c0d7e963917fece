"""The leaderboard: rebuilt from result files, ranked per manifest only, with baselines, CIs and flags."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest

from ferbench import leaderboard as lb
from ferbench import runner
from ferbench.cli import main
from ferbench.errors import FerbenchError
from ferbench.protocols import read_manifest
from ferbench.train.recipe import load_recipe

sys.path.insert(0, str(Path(__file__).parent))
import train_fixtures as tf  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """tiny_cnn and tiny_vit on folds 0-1 of one manifest, tiny_cnn on a second manifest (other seed)."""
    root = tmp_path_factory.mktemp("lb")
    data = tf.make_dataset(root)
    m0, m1 = (tf.write_manifest(data, root / f"m{s}.parquet", seed=s) for s in (0, 1))
    out = root / "runs"
    for name, manifest, model, folds in (("cnn", m0, "tiny_cnn", [0, 1]), ("vit", m0, "tiny_vit", [0, 1]),
                                         ("cnn-m1", m1, "tiny_cnn", [0])):
        path = tf.write_recipe(root / f"{name}.yaml", manifest, out, model={"name": model})
        runner.run_recipe(load_recipe(path), folds=folds)
    hashes = [read_manifest(m).meta["content_hash"] for m in (m0, m1)]
    assert hashes[0] != hashes[1]
    db = root / "lb.duckdb"
    assert lb.ingest([out], db) == 5
    return out, db, hashes


def test_a_protocol_with_several_manifests_is_not_ranked_together(runs):
    _, db, (h0, h1) = runs
    with pytest.raises(FerbenchError, match="not ranked together"):
        lb.rank(db, protocol="toy-kfold")
    (board,) = lb.rank(db, protocol="toy-kfold", manifest=h0[:12])
    assert board.manifest_hash == h0 and board.siblings == 1
    boards = lb.rank(db)
    assert sorted(b.manifest_hash for b in boards) == sorted([h0, h1])
    assert all("ranked separately" in " ".join(lb._notes(b)) for b in boards)


def test_ranking_with_baselines_std_and_subject_ci(runs):
    out, db, (h0, _) = runs
    (board,) = lb.rank(db, manifest=h0)
    means = [e["mean"] for e in board.entries]
    assert len(means) == 2 and means == sorted(means, reverse=True) and board.entries[0]["rank"] == 1
    assert {b["system"] for b in board.baselines} == {"majority", "prior"}
    for e in board.entries:
        values = [json.loads(p.read_text())["metrics"]["test"]["balanced_accuracy"]
                  for p in lb.find_results([out]) if json.loads(p.read_text())["recipe"]["hash"] == e["recipe_hash"]]
        assert e["n_runs"] == 2 and e["n_folds"] == 2 and e["n_seeds"] == 1
        assert e["mean"] == pytest.approx(np.mean(values)) and e["std"] == pytest.approx(np.std(values, ddof=1))
        assert e["ci_unit"] == "subject" and e["ci_lo"] <= e["ci_hi"] and e["ci_level"] == 0.95
        assert e["leakage_verdict"] == "clean" and e["synthetic"] is False


def test_renderings(runs):
    _, db, (h0, _) = runs
    boards = lb.rank(db, manifest=h0, metric="macro_f1")
    md = lb.render(boards, "md")
    assert "| 1 | tiny_" in md and "baseline: majority" in md and "baseline: prior" in md and "by subject" in md
    page = lb.render(boards, "html")
    assert page.count("data:image/png;base64,") == 2 and "<table>" in page
    assert "macro_f1 (%)" in lb.render(boards, "table")


def test_ingest_is_idempotent_and_rebuildable(runs, tmp_path):
    out, db, _ = runs
    query = "SELECT protocol, model, metric, mean, std, ci_lo, ci_hi FROM leaderboard ORDER BY ALL"
    first = duckdb.connect(str(db), read_only=True).execute(query).fetchall()
    assert lb.ingest([out], db) == 5
    rebuilt = tmp_path / "again.duckdb"
    lb.ingest([out], rebuilt)
    for path in (db, rebuilt):
        con = duckdb.connect(str(path), read_only=True)
        assert con.execute(query).fetchall() == first
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 5
        con.close()


def test_concurrent_ingests_both_succeed(runs, tmp_path):
    out, _, _ = runs
    db = tmp_path / "shared.duckdb"
    code = f"from ferbench.leaderboard import ingest; print(ingest([{str(out)!r}], {str(db)!r}))"
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert [r[0].strip() for r in results] == ["5", "5"]
    assert duckdb.connect(str(db), read_only=True).execute("SELECT count(*) FROM runs").fetchone()[0] == 5
    assert [p.name for p in tmp_path.iterdir()] == ["shared.duckdb"]  # no temporary file left behind


def test_cli_writes_html_and_refuses_mixed_manifests(runs, tmp_path, capsys):
    out, _, (h0, _) = runs
    db, page = tmp_path / "x.duckdb", tmp_path / "index.html"
    assert main(["leaderboard", "--runs", str(out), "--db", str(db), "--format", "html", "--out", str(page)]) == 0
    assert page.read_text().startswith("<!doctype html>")
    assert main(["leaderboard", "--no-ingest", "--db", str(db), "--protocol", "toy-kfold"]) == 2
    assert "not ranked together" in capsys.readouterr().err
    assert main(["leaderboard", "--no-ingest", "--db", str(db), "--manifest", h0[:10], "--format", "md"]) == 0


def test_synthetic_data_is_flagged(tmp_path):
    data = tf.make_dataset(tmp_path, synthetic=True, seed=7)
    manifest = tf.write_manifest(data, tmp_path / "m.parquet")
    runner.run_recipe(load_recipe(tf.write_recipe(tmp_path / "r.yaml", manifest, tmp_path / "runs")), folds=[0])
    lb.ingest([tmp_path / "runs"], tmp_path / "lb.duckdb")
    (board,) = lb.rank(tmp_path / "lb.duckdb")
    assert board.synthetic
    text = lb.render([board], "table")
    assert "SYNTHETIC DATA" in text and "SYNTHETIC toyfer" in text
    assert "class='warn'>SYNTHETIC DATA" in lb.render([board], "html")
