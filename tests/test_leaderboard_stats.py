"""Comparable by construction and uncertainty in the rank, on fake runs: who is ranked against whom,
baselines on exactly the ranked runs, the paired subject bootstrap, tied tiers, partial entries."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest

from ferbench import leaderboard as lb
from ferbench import metrics
from ferbench.errors import FerbenchError

sys.path.insert(0, str(Path(__file__).parent))
from test_leaderboard_fakes import CLASSES, fake_run, fold_truth  # noqa: E402


def _q(db, sql, *args):
    con = duckdb.connect(str(db), read_only=True)
    try:
        cur = con.execute(sql, list(args))
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]
    finally:
        con.close()


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    """On a 3-fold protocol: good (90%), copy (good's exact predictions, another recipe), bad (45%),
    chance (always the training majority class) on every fold; a (folds 0,1) and b (folds 0,2) partial."""
    root = tmp_path_factory.mktemp("stats")
    runs = root / "runs"
    for fold in range(3):
        truth, _, _ = fold_truth(fold)
        good = fake_run(runs, "good", "g" * 16, fold=fold, accuracy=0.9)
        fake_run(runs, "copy", "c" * 16, fold=fold, pred=_preds(good))
        fake_run(runs, "bad", "b" * 16, fold=fold, accuracy=0.45)
        fake_run(runs, "chance", "z" * 16, fold=fold, pred=np.zeros_like(truth))  # the training majority class
    for fold in (0, 1):
        fake_run(runs, "a", "1" * 16, fold=fold, accuracy=0.95)
    for fold in (0, 2):
        fake_run(runs, "b", "2" * 16, fold=fold, accuracy=0.95)
    db = root / "lb.duckdb"
    report = lb.build_board([runs], db)
    assert report.runs == 16 and not report.skipped
    return runs, db


def _preds(run_dir: Path) -> np.ndarray:
    import pyarrow.parquet as pq

    return pq.read_table(run_dir / "predictions.parquet").column("pred").to_numpy()


def test_only_entries_on_the_same_runs_are_ranked_together(board):
    _, db = board
    (ranked,) = lb.rank(db)[:1]
    assert ranked.section == "ranked" and ranked.k_folds == ranked.total_folds == 3
    assert {e["names"][0] for e in ranked.entries} == {"good", "copy", "bad", "chance"}
    partial = lb.rank(db)[1]
    assert partial.section == "partial" and sorted(e["names"] for e in partial.entries) == [["a"], ["b"]]
    for e in partial.entries:
        assert (e["k_folds"], e["total_folds"], e["rank"]) == (2, 3, None)
    text = lb.render(lb.rank(db), "table")
    assert "partial 2/3 folds (repeat 0: folds 0,1 × seed 0)" in text and "partial 2/3 folds (repeat 0: folds 0,2" in text
    assert "partial entries (unranked)" in text


def test_baselines_are_computed_on_exactly_the_shown_runs(board):
    runs, db = board
    rows = _q(db, "SELECT g.section, g.group_id, s.system, s.mean, s.n_folds FROM standings s JOIN groups g USING (group_id) "
                  "WHERE s.metric = 'accuracy' AND s.system = 'majority'")
    by_folds = {}
    for fold in range(3):
        truth, _, _ = fold_truth(fold)
        by_folds[fold] = metrics.baselines([5, 4, 3], truth, CLASSES)["majority"]["accuracy"]
    for r in rows:
        folds = [x["fold"] for x in _q(db, "SELECT DISTINCT r.fold FROM group_runs JOIN runs r USING (run_id) "
                                           "WHERE group_id = ?", r["group_id"])]
        assert r["n_folds"] == len(folds) and r["mean"] == pytest.approx(np.mean([by_folds[f] for f in folds]))


def test_means_are_over_runs_and_single_runs_have_no_spread(board, tmp_path):
    runs, db = board
    good = [json.loads(p.read_text())["metrics"]["test"]["balanced_accuracy"]
            for p in sorted(runs.glob("good-*/result.json"))]
    (row,) = _q(db, "SELECT mean, std, n_runs FROM leaderboard WHERE metric = 'balanced_accuracy' AND recipe_name = 'good'")
    assert row["mean"] == pytest.approx(np.mean(good)) and row["std"] == pytest.approx(np.std(good, ddof=1))
    single = tmp_path / "single"
    fake_run(single, "one", "o" * 16, n_folds=1)
    lb.build_board([single], tmp_path / "one.duckdb")
    (b,) = lb.rank(tmp_path / "one.duckdb")
    assert b.entries[0]["std"] is None
    text = lb.render([b], "md")
    assert " ± —" in text and "± 0.00" not in text.split("baseline:")[0]


def test_paired_test_ties_identical_entries_and_separates_the_clearly_worse(board):
    _, db = board
    rows = {r["recipe_name"]: r for r in _q(db, "SELECT * FROM leaderboard WHERE metric = 'accuracy' AND section = 'ranked'")}
    good, copy, bad, chance = (rows[n] for n in ("good", "copy", "bad", "chance"))
    assert good["mean"] == copy["mean"] and {good["position"], copy["position"]} == {1, 2}
    assert good["rank"] == copy["rank"] == 1 and good["tier"] == copy["tier"] == 1 and copy["tied_with_best"]
    second = copy if copy["position"] == 2 else good
    assert second["diff_best"] == 0 and second["diff_best_lo"] == second["diff_best_hi"] == 0
    assert bad["tier"] == 2 and bad["rank"] == 3 and not bad["tied_with_best"] and bad["diff_best_hi"] < 0
    assert good["vs_baseline"] == "above" and good["diff_baseline_lo"] > 0
    assert chance["vs_baseline"] == "not distinguishable" and chance["diff_baseline"] == pytest.approx(0)
    assert good["ci_unit"] == "subject" and good["clusters"] == 24 and good["ci_lo"] <= good["mean"] <= good["ci_hi"]
    text = lb.render(lb.rank(db, metric="accuracy"), "table")
    assert "not distinguishable from baseline" in text and "1= " in text and "tied" in text
    assert "B=1000 resamples, seed 0" in text and text.count("Method: ") == 2  # under each table


def test_the_bootstrap_is_seeded_and_b_is_at_least_1000(board, tmp_path):
    runs, db = board
    again = tmp_path / "again.duckdb"
    lb.build_board([runs], again)
    sql = "SELECT * FROM standings ORDER BY group_id, system, recipe_hash, metric"
    assert _q(db, sql) == _q(again, sql)
    with pytest.raises(FerbenchError, match="at least 1000"):
        lb.build_board([runs], tmp_path / "x.duckdb", n_boot=200)
    info = dict((r["key"], r["value"]) for r in _q(db, "SELECT * FROM board_info"))
    assert info["bootstrap_resamples"] == "1000" and info["bootstrap_seed"] == "0" and info["format"] == lb.FORMAT


def test_cell_bootstrap_agrees_with_the_point_estimate_and_pairs_resamples():
    rng = np.random.default_rng(0)
    cells = []
    for fold in range(3):
        truth = rng.integers(0, 3, 60)
        clusters = np.repeat(np.arange(10) + 10 * fold, 6)
        cells.append(metrics.cluster_confusions(clusters, truth, np.where(rng.random(60) < 0.8, truth, 0), 3))
    point = metrics.cell_means(cells)
    per_run = [metrics.scores(cm.sum(0)) for _, cm in cells]
    assert point[0] == pytest.approx(np.mean([s["accuracy"] for s in per_run]))
    boot = metrics.cell_bootstrap([cells, cells], n_boot=1000, seed=3)
    assert boot.shape == (1000, 2, len(metrics.SCALARS)) and np.array_equal(boot[:, 0], boot[:, 1])
    lo, hi = metrics.percentile(boot[:, 0, 0])
    assert lo < point[0] < hi and np.array_equal(boot, metrics.cell_bootstrap([cells, cells], n_boot=1000, seed=3))


def test_per_class_precision_recall_f1():
    cm = np.array([[3, 1, 0], [0, 0, 0], [1, 0, 0]])
    rows = metrics.per_class(cm, CLASSES)
    assert rows[0] == {"class": "neutral", "precision": 0.75, "recall": 0.75, "f1": 0.75, "support": 4}
    assert rows[1]["recall"] is None and rows[1]["precision"] == 0.0 and rows[1]["f1"] == 0.0
    assert rows[2]["precision"] is None and rows[2]["recall"] == 0.0 and rows[2]["f1"] == 0.0


def test_coverage_can_be_chosen_and_seed_sets_rank_apart(tmp_path):
    runs = tmp_path / "runs"
    for fold in range(3):
        for seed in (0, 1):
            fake_run(runs, "two-seeds", "t" * 16, fold=fold, seed=seed)
        fake_run(runs, "one-seed", "s" * 16, fold=fold)
    for fold in (0, 1):
        fake_run(runs, "two-folds", "w" * 16, fold=fold)
    db = tmp_path / "lb.duckdb"
    lb.build_board([runs], db)
    sections = sorted((b.section, b.coverage) for b in lb.rank(db))
    assert sections == [("partial", ""), ("ranked", "repeat 0: folds 0-2 × seed 0"),
                        ("ranked", "repeat 0: folds 0-2 × seeds 0,1")]
    report = lb.build_board([runs], db, folds=[0, 1], seeds=[0])
    (board,) = lb.rank(db)
    assert board.section == "ranked" and board.coverage == "repeat 0: folds 0,1 × seed 0" and len(board.entries) == 3
    assert all(e["n_runs"] == 2 for e in board.entries)
    assert any("4 of its 6 runs are outside the coverage" in msg for _, _, msg in report.notes)
    assert any("4 of its 6 runs" in n for n in board.notes)


def test_a_cell_run_twice_counts_the_newest_run(tmp_path):
    runs = tmp_path / "runs"
    for fold in range(3):
        fake_run(runs, "e", "e" * 16, fold=fold, accuracy=0.5)
    fake_run(runs, "e", "e" * 16, fold=0, accuracy=1.0, run_id="newer", created_at="2025-01-01T00:00:00+00:00")
    report = lb.build_board([runs], tmp_path / "lb.duckdb")
    assert report.runs == 4 and any(kind == "superseded" for _, kind, _ in report.notes)
    ids = {r["run_id"] for r in _q(tmp_path / "lb.duckdb", "SELECT run_id FROM group_runs")}
    assert "newer" in ids and len(ids) == 3


def test_per_source_scores_of_a_merged_set(tmp_path):
    import pyarrow.parquet as pq

    runs = tmp_path / "runs"
    for fold in range(3):
        fake_run(runs, "merged", "m" * 16, fold=fold, accuracy=0.7, datasets=["ckplus", "jaffe"])
    db = tmp_path / "lb.duckdb"
    lb.ingest([runs], db)
    rows = _q(db, "SELECT dataset, mean, n, n_runs FROM per_source WHERE metric = 'accuracy' ORDER BY dataset")
    assert [(r["dataset"], r["n"], r["n_runs"]) for r in rows] == [("ckplus", 72, 3), ("jaffe", 72, 3)]
    for r in rows:
        accs = []
        for run in sorted(runs.iterdir()):
            t = pq.read_table(run / "predictions.parquet").to_pandas()
            t = t[t.dataset == r["dataset"]]
            accs.append((t.label == t.pred).mean())
        assert r["mean"] == pytest.approx(np.mean(accs))


def test_baselines_weigh_each_fold_by_the_runs_that_count_it(tmp_path):
    runs = tmp_path / "runs"
    for fold, seed in ((0, 0), (1, 0), (0, 1)):
        fake_run(runs, "uneven", "u" * 16, fold=fold, seed=seed, train_counts=(10, 1, 1) if fold else (5, 4, 3))
    db = tmp_path / "lb.duckdb"
    lb.ingest([runs], db)
    (row,) = _q(db, "SELECT mean, n_folds FROM baseline_scores WHERE system = 'prior' AND metric = 'macro_f1'")
    per_fold = [metrics.baselines(c, fold_truth(f)[0], CLASSES)["prior"]["macro_f1"]
                for f, c in ((0, (5, 4, 3)), (1, (10, 1, 1)))]
    assert row["n_folds"] == 2 and abs(per_fold[0] - per_fold[1]) > 0.01 and row["mean"] == pytest.approx((2 * per_fold[0] + per_fold[1]) / 3)
