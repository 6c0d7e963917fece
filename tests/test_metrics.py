"""Metrics from predictions: hand-checked values, baselines fitted on train counts, subject bootstrap."""

from __future__ import annotations

import numpy as np
import pytest

from ferbench.metrics import baselines, bootstrap_ci, confusion, evaluate, mean_std, scores

CLASSES = ["neutral", "happiness", "sadness", "surprise"]


def test_hand_computed_example():
    m = evaluate(np.array([0, 0, 0, 1, 1, 2]), np.array([0, 0, 1, 1, 2, 2]), CLASSES)
    assert m["confusion"] == [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)  # class 3 absent: not averaged
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert m["weighted_precision"] == pytest.approx((3 * 1 + 2 * 0.5 + 1 * 0.5) / 6)
    assert m["weighted_recall"] == pytest.approx(4 / 6)
    assert m["weighted_f1"] == pytest.approx((3 * 0.8 + 2 * 0.5 + 2 / 3) / 6)
    assert m["per_class_recall"] == {"neutral": pytest.approx(2 / 3), "happiness": 0.5, "sadness": 1.0, "surprise": None}
    assert m["n"] == 6


def test_a_predicted_but_absent_class_counts_in_macro_f1_not_in_balanced_accuracy():
    m = evaluate(np.array([0, 0]), np.array([0, 1]), CLASSES[:2])
    assert m["balanced_accuracy"] == pytest.approx(0.5)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0) / 2)


def test_scores_are_vectorised_over_stacks():
    a = confusion(np.array([0, 1, 1]), np.array([0, 1, 0]), 2)
    b = confusion(np.array([0, 0, 1]), np.array([1, 0, 1]), 2)
    stacked = scores(np.stack([a, b]))
    for i, cm in enumerate((a, b)):
        single = scores(cm)
        assert all(stacked[k][i] == pytest.approx(single[k]) for k in ("accuracy", "balanced_accuracy", "macro_f1", "weighted_f1"))


def test_baselines_use_training_counts_only():
    truth = np.array([1, 1, 1, 2])  # the test set's majority is class 1, the training set's is 0
    b = baselines([5, 1, 0, 4], truth, CLASSES)
    assert b["majority"]["accuracy"] == 0.0 and b["majority"]["balanced_accuracy"] == 0.0
    prior = np.array([5, 1, 0, 4]) / 10
    assert b["prior"]["accuracy"] == pytest.approx((3 * prior[1] + prior[2]) / 4)
    assert b["prior"]["balanced_accuracy"] == pytest.approx((prior[1] + prior[2]) / 2)


def test_bootstrap_resamples_subjects_not_images():
    truth = np.zeros(100, dtype=int)
    pred = np.r_[np.zeros(50, int), np.ones(50, int)]  # subject A always right, subject B always wrong
    by_subject = bootstrap_ci(truth, pred, ["A"] * 50 + ["B"] * 50, 2, n_boot=500, seed=0)
    by_image = bootstrap_ci(truth, pred, [None] * 100, 2, n_boot=500, seed=0)
    assert by_subject["accuracy"] == (0.0, 1.0)  # two clusters: 0, 1/2 or 1
    lo, hi = by_image["accuracy"]
    assert 0.35 < lo < 0.5 < hi < 0.65
    assert bootstrap_ci(truth, pred, [None] * 100, 2, n_boot=500, seed=0) == by_image  # seeded


def test_bootstrap_of_perfect_predictions_is_degenerate():
    y = np.array([0, 1, 2, 0, 1, 2])
    ci = bootstrap_ci(y, y, ["s1", "s1", "s2", "s2", "s3", "s3"], 3, n_boot=100)
    assert ci["accuracy"] == (1.0, 1.0) and ci["macro_f1"] == (1.0, 1.0)


def test_mean_std_is_the_sample_std():
    assert mean_std([0.5, 0.7]) == (pytest.approx(0.6), pytest.approx(np.std([0.5, 0.7], ddof=1)))
    assert mean_std([0.9]) == (0.9, 0.0)
