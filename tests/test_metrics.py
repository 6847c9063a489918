"""Metrics agree with scikit-learn; mean/std over seeds; retention in percent."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from frugaltext.errors import DataFormatError
from frugaltext.metrics import classification_metrics, mean_std, retention

NAMES = ["acq", "crude", "earn", "grain", "interest"]


def _check_against_sklearn(result, y_true, y_pred, labels_for_average):
    assert result["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    for average in ("macro", "micro", "weighted"):
        expected = f1_score(y_true, y_pred, labels=labels_for_average, average=average, zero_division=0)
        assert result[f"{average}_f1"] == pytest.approx(expected)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(len(NAMES))), average=None, zero_division=0)
    assert list(result["per_class"]) == NAMES
    for i, name in enumerate(NAMES):
        row = result["per_class"][name]
        assert row == {"precision": pytest.approx(precision[i]), "recall": pytest.approx(recall[i]),
                       "f1": pytest.approx(f1[i]), "support": int(support[i])}
        assert isinstance(row["support"], int)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_single_label_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, len(NAMES), 60)
    y_pred = np.where(rng.random(60) < 0.6, y_true, rng.integers(0, len(NAMES), 60))
    result = classification_metrics(y_true, y_pred, NAMES, multi_label=False)
    _check_against_sklearn(result, y_true, y_pred, labels_for_average=None)
    assert all(isinstance(result[k], float) for k in ("accuracy", "macro_f1", "micro_f1", "weighted_f1"))
    assert result["micro_f1"] == pytest.approx(result["accuracy"])  # single-label: micro-F1 = accuracy


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_multi_label_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    y_true = (rng.random((40, len(NAMES))) < 0.3).astype(np.float32)  # float 0/1, as in Split.labels
    y_pred = np.where(rng.random((40, len(NAMES))) < 0.7, y_true, 1 - y_true).astype(np.int64)
    result = classification_metrics(y_true, y_pred, NAMES, multi_label=True)
    _check_against_sklearn(result, y_true.astype(int), y_pred, labels_for_average=None)
    expected_subset = np.mean((y_true.astype(int) == y_pred).all(axis=1))
    assert result["accuracy"] == pytest.approx(expected_subset)


def test_label_absent_from_truth_and_prediction_is_not_averaged_as_zero():
    y_true = np.array([0, 1, 2, 2])
    y_pred = np.array([0, 1, 2, 1])  # ids 3 and 4 never occur
    result = classification_metrics(y_true, y_pred, NAMES, multi_label=False)
    assert result["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert result["per_class"]["interest"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}

    y_true_ml = np.array([[1, 0, 0, 0, 0], [0, 1, 0, 0, 0]])
    y_pred_ml = np.array([[1, 0, 0, 0, 0], [1, 1, 0, 0, 0]])
    result = classification_metrics(y_true_ml, y_pred_ml, NAMES, multi_label=True)
    assert result["macro_f1"] == pytest.approx((1.0 + 2 / 3) / 2)  # columns 0 and 1 only


def test_perfect_predictions_score_one():
    y = np.array([0, 1, 2, 3, 4, 0])
    result = classification_metrics(y, y, NAMES, multi_label=False)
    assert result["accuracy"] == result["macro_f1"] == result["micro_f1"] == result["weighted_f1"] == 1.0


def test_bad_inputs_raise_data_format_error():
    with pytest.raises(DataFormatError, match=r"y_true has shape \(3,\) but y_pred has shape \(2,\)"):
        classification_metrics([0, 1, 2], [0, 1], NAMES, multi_label=False)
    with pytest.raises(DataFormatError, match=r"label ids in \[0, 5\] but there are 5 label names"):
        classification_metrics([0, 1, 2], [0, 1, 5], NAMES, multi_label=False)
    with pytest.raises(DataFormatError, match="must hold only 0 and 1"):
        classification_metrics(np.zeros((2, 5)), np.full((2, 5), 0.7), NAMES, multi_label=True)
    with pytest.raises(DataFormatError, match=r"must have shape \(n_docs, 5\)"):
        classification_metrics(np.zeros((2, 4)), np.zeros((2, 4)), NAMES, multi_label=True)
    with pytest.raises(DataFormatError, match="pass multi_label=True"):
        classification_metrics(np.zeros((2, 5)), np.zeros((2, 5)), NAMES, multi_label=False)


def test_mean_std_uses_sample_std():
    mean, std = mean_std([0.8, 0.9, 1.0])
    assert mean == pytest.approx(0.9)
    assert std == pytest.approx(0.1)  # ddof=1: sqrt((0.01 + 0 + 0.01) / 2)
    assert mean_std([0.5]) == (0.5, 0.0)
    assert mean_std([1.0, None]) == (None, None)
    with pytest.raises(DataFormatError, match="at least one run"):
        mean_std([])


def test_retention_in_percent():
    assert retention(0.9, 1.0) == pytest.approx(90.0)
    assert retention(0.826, 0.823) == pytest.approx(100.3645, abs=1e-3)  # TopicBERT-128 vs BERT, Table 3
    assert retention(0.5, None) is None
    assert retention(0.5, 0) is None
    assert retention(None, 0.5) is None
    assert retention(math.nan, 0.5) is None
