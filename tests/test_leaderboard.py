"""The leaderboard on real runs: rebuilt from result files, ranked per manifest and coverage only, with
baselines, CIs, paired tests, drill-down views and flags."""

from __future__ import annotations

import json
import re
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
    """tiny_cnn and tiny_vit on every fold of one 3-fold manifest; two partial entries on it (folds {0,1}
    and {0,2}); tiny_cnn on fold 0 of a second manifest (other seed)."""
    root = tmp_path_factory.mktemp("lb")
    data = tf.make_dataset(root)
    m0, m1 = (tf.write_manifest(data, root / f"m{s}.parquet", seed=s) for s in (0, 1))
    out = root / "runs"
    for name, manifest, model, folds, extra in (
            ("cnn", m0, "tiny_cnn", [0, 1, 2], {}), ("vit", m0, "tiny_vit", [0, 1, 2], {}),
            ("cnn-01", m0, "tiny_cnn", [0, 1], {"train": {"epochs": 2}}),
            ("cnn-02", m0, "tiny_cnn", [0, 2], {"train": {"epochs": 3}}), ("cnn-m1", m1, "tiny_cnn", [0], {})):
        path = tf.write_recipe(root / f"{name}.yaml", manifest, out, model={"name": model}, **extra)
        runner.run_recipe(load_recipe(path), folds=folds)
    hashes = [read_manifest(m).meta["content_hash"] for m in (m0, m1)]
    assert hashes[0] != hashes[1]
    db = root / "lb.duckdb"
    assert lb.ingest([out], db) == 11
    return out, db, hashes


def _all_notes(board) -> str:
    return " ".join(lb.render([board], "table").splitlines())


def test_a_protocol_with_several_manifests_is_not_ranked_together(runs):
    _, db, (h0, h1) = runs
    with pytest.raises(FerbenchError, match="not ranked together"):
        lb.rank(db, protocol="toy-kfold")
    boards = lb.rank(db, protocol="toy-kfold", manifest=h0[:12])
    assert [(b.manifest_hash, b.section, b.siblings) for b in boards] == [(h0, "ranked", 1), (h0, "partial", 1)]
    boards = lb.rank(db)
    assert sorted({b.manifest_hash for b in boards}) == sorted([h0, h1])
    assert all("ranked separately" in _all_notes(b) for b in boards)


def test_partial_entries_are_never_ranked_beside_complete_ones(runs):
    _, db, (h0, _) = runs
    ranked, partial = lb.rank(db, manifest=h0)
    assert sorted(e["model"] for e in ranked.entries) == ["tiny_cnn", "tiny_vit"]
    assert (ranked.k_folds, ranked.total_folds, ranked.coverage) == (3, 3, "repeat 0: folds 0-2 × seed 0")
    assert sorted(e["coverage"] for e in partial.entries) == ["repeat 0: folds 0,1 × seed 0", "repeat 0: folds 0,2 × seed 0"]
    assert all(e["rank"] is None and e["n_folds"] == 2 for e in partial.entries)
    text = lb.render([ranked, partial], "table")
    assert text.count("partial 2/3 folds") == 2 and "partial entries (unranked)" in text


def test_ranking_with_baselines_std_and_subject_ci(runs):
    out, db, (h0, _) = runs
    board = lb.rank(db, manifest=h0)[0]
    means = [e["mean"] for e in board.entries]
    assert len(means) == 2 and means == sorted(means, reverse=True) and board.entries[0]["rank"] == 1
    assert {b["system"] for b in board.baselines} == {"majority", "prior"}
    assert all(b["n_folds"] == 3 for b in board.baselines)
    for e in board.entries:
        values = [json.loads(p.read_text())["metrics"]["test"]["balanced_accuracy"]
                  for p in lb.find_results([out]) if json.loads(p.read_text())["recipe"]["hash"] == e["recipe_hash"]]
        assert e["n_runs"] == 3 and e["n_folds"] == 3 and e["n_seeds"] == 1
        assert e["mean"] == pytest.approx(np.mean(values)) and e["std"] == pytest.approx(np.std(values, ddof=1))
        assert e["ci_unit"] == "subject" and e["ci_lo"] <= e["ci_hi"] and e["ci_level"] == 0.95
        assert e["leakage_verdict"] == "clean" and e["synthetic"] is False
        assert e["vs_baseline"] in ("above", "not distinguishable", "below") and e["diff_best_lo"] is not None


def test_drill_down_views(runs):
    _, db, (h0, _) = runs
    con = duckdb.connect(str(db), read_only=True)
    try:
        group = con.execute("SELECT group_id FROM groups WHERE manifest_hash = ? AND section = 'ranked'", [h0]).fetchone()[0]
        (recipe,) = con.execute("SELECT recipe_hash FROM leaderboard WHERE group_id = ? AND model = 'tiny_cnn' "
                                "AND metric = 'accuracy'", [group]).fetchone()
        folds = con.execute("SELECT fold, model, majority, prior FROM per_fold WHERE group_id = ? AND recipe_hash = ? "
                            "AND metric = 'accuracy' ORDER BY fold", [group, recipe]).fetchall()
        assert [f[0] for f in folds] == [0, 1, 2] and all(None not in f for f in folds)
        classes = con.execute("SELECT class, precision, recall, f1, support FROM per_class WHERE group_id = ? "
                              "AND recipe_hash = ? ORDER BY class_idx", [group, recipe]).fetchall()
        assert [c[0] for c in classes] == list(tf.CLASSES) and sum(c[4] for c in classes) == 36
        source = con.execute("SELECT dataset, mean, n FROM per_source WHERE group_id = ? AND recipe_hash = ? "
                             "AND metric = 'accuracy'", [group, recipe]).fetchall()
        mean = con.execute("SELECT mean FROM leaderboard WHERE group_id = ? AND recipe_hash = ? AND metric = 'accuracy'",
                           [group, recipe]).fetchone()[0]
        assert source == [("toyfer", pytest.approx(mean), 36)]
        rows = con.execute("SELECT true_label, sum(row_pct), sum(n) FROM confusion_matrix WHERE group_id = ? "
                           "AND recipe_hash = ? GROUP BY 1", [group, recipe]).fetchall()
        assert len(rows) == 3 and all(r[1] == pytest.approx(100) and r[2] == 12 for r in rows)
        facts = con.execute("SELECT params, gflops, devices, ferbench_versions, git_shas FROM entries "
                            "WHERE recipe_hash = ? AND manifest_hash = ?", [recipe, h0]).fetchone()
        assert facts[0] > 0 and facts[1] > 0 and facts[2] and facts[3] and len(facts[4][0]) == 40
    finally:
        con.close()


def test_renderings(runs):
    _, db, (h0, _) = runs
    boards = lb.rank(db, manifest=h0, metric="macro_f1")
    md = lb.render(boards, "md")
    assert "| 1" in md and r"tiny\_" not in md and "baseline: majority" in md and "baseline: prior" in md
    assert "by subject" in md and "*Method:* " in md and "paired cluster bootstrap" in md
    page = lb.render(boards, "html", db=db)
    # one curves.png per run (every run writes one) and one confusion matrix per entry
    assert page.count("data:image/png;base64,") == 10 and page.count("<div class='cm'>") == 4 and "<table>" in page and "Method: " in page
    table = lb.render(boards, "table")
    assert "macro_f1 (%)" in table and "params" in table and "GFLOPs" in table


def test_ingest_is_idempotent_and_rebuildable(runs, tmp_path):
    out, db, _ = runs
    query = "SELECT protocol, model, metric, mean, std, ci_lo, ci_hi FROM leaderboard ORDER BY ALL"
    first = duckdb.connect(str(db), read_only=True).execute(query).fetchall()
    assert lb.ingest([out], db) == 11
    rebuilt = tmp_path / "again.duckdb"
    lb.ingest([out], rebuilt)
    for path in (db, rebuilt):
        con = duckdb.connect(str(path), read_only=True)
        assert con.execute(query).fetchall() == first
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 11
        con.close()


def test_concurrent_ingests_both_succeed(runs, tmp_path):
    out, _, _ = runs
    db = tmp_path / "shared.duckdb"
    code = f"from ferbench.leaderboard import ingest; print(ingest([{str(out)!r}], {str(db)!r}))"
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert [r[0].strip() for r in results] == ["11", "11"]
    assert duckdb.connect(str(db), read_only=True).execute("SELECT count(*) FROM runs").fetchone()[0] == 11
    assert [p.name for p in tmp_path.iterdir()] == ["shared.duckdb"]  # no temporary file left behind


def test_cli_writes_html_and_refuses_mixed_manifests(runs, tmp_path, capsys):
    out, _, (h0, _) = runs
    db, page = tmp_path / "x.duckdb", tmp_path / "index.html"
    assert main(["leaderboard", "--runs", str(out), "--db", str(db), "--format", "html", "--out", str(page)]) == 0
    assert page.read_text().startswith("<!doctype html>")
    assert main(["leaderboard", "--no-ingest", "--db", str(db), "--protocol", "toy-kfold"]) == 2
    assert "not ranked together" in capsys.readouterr().err
    assert main(["leaderboard", "--no-ingest", "--db", str(db), "--manifest", h0[:10], "--format", "md"]) == 0
    assert main(["leaderboard", "--no-ingest", "--db", str(db), "--folds", "0,1"]) == 2
    assert "not with --no-ingest" in capsys.readouterr().err
    # ranked on folds {0, 1}: the entry that ran exactly those joins the complete ones (restricted to them)
    assert main(["leaderboard", "--runs", str(out), "--db", str(db), "--folds", "0-1", "--manifest", h0[:12]]) == 0
    ranked, partial = lb.rank(db, manifest=h0)
    assert ranked.coverage == "repeat 0: folds 0,1 × seed 0" and len(ranked.entries) == 3
    assert [e["coverage"] for e in partial.entries] == ["repeat 0: fold 0 × seed 0"]  # cnn-02 ran fold 2 instead of 1


def test_synthetic_data_is_flagged(tmp_path):
    data = tf.make_dataset(tmp_path, synthetic=True, seed=7)
    manifest = tf.write_manifest(data, tmp_path / "m.parquet")
    runner.run_recipe(load_recipe(tf.write_recipe(tmp_path / "r.yaml", manifest, tmp_path / "runs")), folds=[0])
    lb.ingest([tmp_path / "runs"], tmp_path / "lb.duckdb")
    (board,) = lb.rank(tmp_path / "lb.duckdb")
    assert board.synthetic and board.section == "partial"
    text = lb.render([board], "table")
    assert "SYNTHETIC DATA" in text and "SYNTHETIC toyfer" in text
    assert "class='warn'>SYNTHETIC DATA" in lb.render([board], "html")


def test_the_sql_ships_in_the_package_and_is_not_copied():
    assert "CREATE TABLE board_info" in lb.sql("schema.sql") and "CREATE VIEW per_source" in lb.sql("views.sql")
    assert not list((REPO / "leaderboard").glob("*.sql"))  # one copy only: nothing to drift
    views = re.findall(r"CREATE VIEW (\w+)", lb.sql("views.sql"))
    assert {"leaderboard", "per_source", "per_class", "per_fold"} <= set(views)
    readme = (REPO / "leaderboard" / "README.md").read_text()
    assert [v for v in views if f"`{v}`" not in readme] == []
