"""Classification scores, mean and spread over seeds, and retention against a reference model.

Scores are computed with scikit-learn (``accuracy_score``, ``f1_score``,
``precision_recall_fscore_support``) with ``zero_division=0``: a class that is never predicted gets
precision 0 rather than a warning and NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from frugaltext.errors import DataFormatError

__all__ = ["classification_metrics", "mean_std", "retention"]


def _as_label_arrays(y_true: Any, y_pred: Any, n_labels: int,
                     multi_label: bool) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise DataFormatError(f"classification_metrics: y_true has shape {y_true.shape} but y_pred has shape "
                              f"{y_pred.shape}; they must match")
    if y_true.shape[0] == 0:
        raise DataFormatError("classification_metrics: no documents (y_true is empty)")
    if multi_label:
        if y_true.ndim != 2 or y_true.shape[1] != n_labels:
            raise DataFormatError(f"classification_metrics: multi-label y_true must have shape (n_docs, "
                                  f"{n_labels}) (one 0/1 column per label name), got {y_true.shape}")
        for name, array in (("y_true", y_true), ("y_pred", y_pred)):
            if not np.isin(array, (0, 1)).all():
                raise DataFormatError(f"classification_metrics: multi-label {name} must hold only 0 and 1; "
                                      "threshold probabilities first (e.g. >= 0.5)")
        return y_true.astype(np.int64), y_pred.astype(np.int64)
    if y_true.ndim != 1:
        raise DataFormatError(f"classification_metrics: single-label y_true must have shape (n_docs,), got "
                              f"{y_true.shape}; pass multi_label=True for a 0/1 label matrix")
    for name, array in (("y_true", y_true), ("y_pred", y_pred)):
        if not np.issubdtype(array.dtype, np.integer) and not np.all(np.mod(array, 1) == 0):
            raise DataFormatError(f"classification_metrics: {name} must hold integer label ids, got dtype "
                                  f"{array.dtype}")
        if array.min() < 0 or array.max() >= n_labels:
            raise DataFormatError(f"classification_metrics: {name} holds label ids in [{array.min()}, "
                                  f"{array.max()}] but there are {n_labels} label names "
                                  f"(ids 0..{n_labels - 1})")
    return y_true.astype(np.int64), y_pred.astype(np.int64)


def classification_metrics(y_true: Any, y_pred: Any, label_names: Sequence[str],
                           multi_label: bool) -> dict[str, Any]:
    """Accuracy, macro-, micro- and weighted-F1, and per-class scores.

    Parameters
    ----------
    y_true, y_pred : array-like
        Single-label: label ids of shape ``(n_docs,)``. Multi-label: 0/1 indicator matrices of shape
        ``(n_docs, num_labels)`` (floats 0.0/1.0 are accepted).
    label_names : sequence of str
        Name of each label id / column, length ``num_labels``.
    multi_label : bool

    Returns
    -------
    dict
        ``accuracy`` (for multi-label: subset accuracy, the share of documents whose whole label set is
        right, as ``sklearn.metrics.accuracy_score`` computes it), ``macro_f1``, ``micro_f1``,
        ``weighted_f1`` (floats in [0, 1]), and ``per_class``: ``{label_name: {"precision", "recall", "f1",
        "support"}}`` for every label name (support = true documents of that label, an int).

        The averages run over the labels that occur in ``y_true`` or ``y_pred``, which is scikit-learn's
        default for single-label input; for multi-label input we apply the same rule to the columns, so a
        label absent from both (F1 undefined) does not count as an F1 of 0 in ``macro_f1``. It still appears
        in ``per_class`` with zeros and support 0. Micro- and weighted-F1 are unaffected by this choice.

    Raises
    ------
    DataFormatError
        If the shapes differ or do not fit ``multi_label`` / ``label_names``, label ids are out of range,
        or a multi-label matrix holds values other than 0 and 1.
    """
    label_names = [str(name) for name in label_names]
    n_labels = len(label_names)
    if n_labels == 0:
        raise DataFormatError("classification_metrics: label_names is empty")
    y_true, y_pred = _as_label_arrays(y_true, y_pred, n_labels, multi_label)
    all_labels = list(range(n_labels))
    if multi_label:
        present = np.flatnonzero((y_true.sum(axis=0) + y_pred.sum(axis=0)) > 0).tolist()
    else:
        present = sorted(set(np.unique(y_true).tolist()) | set(np.unique(y_pred).tolist()))
    averaged = present or all_labels

    def f1(average: str) -> float:
        return float(f1_score(y_true, y_pred, labels=averaged, average=average, zero_division=0))

    precision, recall, f_score, support = precision_recall_fscore_support(
        y_true, y_pred, labels=all_labels, average=None, zero_division=0)
    per_class = {
        name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f_score[i]),
               "support": int(support[i])}
        for i, name in enumerate(label_names)
    }
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": f1("macro"),
        "micro_f1": f1("micro"),
        "weighted_f1": f1("weighted"),
        "per_class": per_class,
    }


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (``ddof=1``) of a score over runs (e.g. seeds).

    The sample standard deviation estimates the spread between runs, as results are reported "mean ±
    std over 3 runs" (Chaudhary et al. 2020, Table 3). With one value it is undefined (division by n - 1
    = 0); we return 0.0 so that a single run still fills the table, and the run count must be reported
    beside it.

    Parameters
    ----------
    values : sequence of float or None
        At least one value. ``None`` marks a missing measurement (e.g. energy not measured).

    Returns
    -------
    (mean, std) : tuple of float, or (None, None)
        ``(None, None)`` if any value is ``None``: a mean over the runs that happened to be measured would
        not be comparable with the others.

    Raises
    ------
    DataFormatError
        If ``values`` is empty or holds a non-number.
    """
    values = list(values)
    if not values:
        raise DataFormatError("mean_std: no values; pass the scores of at least one run")
    if any(v is None for v in values):
        return None, None
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataFormatError(f"mean_std: values must be numbers, got {values!r}") from None
    mean = float(array.mean())
    std = float(array.std(ddof=1)) if array.size > 1 else 0.0
    return mean, std


def retention(score: float | None, reference: float | None) -> float | None:
    """Retention in percent: ``score / reference x 100``.

    As in Chaudhary et al. (2020), Table 3 ("Rtn: Retention in F1 vs BERT"): a method's score divided by
    the fine-tuned BERT score. 100 means no loss; it can exceed 100.

    Parameters
    ----------
    score : float or None
        The method's score (e.g. ``macro_f1``).
    reference : float or None
        The reference model's score on the same data.

    Returns
    -------
    float or None
        ``None`` if ``reference`` is ``None`` or 0, or ``score`` is ``None`` (no ratio can be formed).
    """
    if score is None or reference is None or reference == 0:
        return None
    if isinstance(score, float) and math.isnan(score):
        return None
    return float(score) / float(reference) * 100.0
