"""The validation carve: split part of the training rows off as validation, stratified by label."""

from __future__ import annotations

import numpy as np

from frugaltext.data.dataset import Split
from frugaltext.errors import DataFormatError

__all__ = ["iterative_stratified_mask"]


def _carve_validation(
    train: Split, fraction: float, seed: int, multi_label: bool
) -> tuple[Split, Split, str]:
    """Split ``fraction`` of ``train`` off as validation, stratified by label where possible.

    Single-label: ``sklearn.model_selection.train_test_split(test_size=fraction, random_state=seed,
    stratify=...)``; multi-label: :func:`iterative_stratified_mask`. Both parts are returned in source order.
    """
    from sklearn.model_selection import train_test_split

    n = len(train)
    if n < 2:
        raise DataFormatError(
            f"{train.source}: the training split has {n} row, too few to carve a validation split from; "
            "add training documents or provide a validation file"
        )
    indices = np.arange(n)
    reason = None
    if multi_label:
        va_mask = iterative_stratified_mask(np.asarray(train.labels), fraction, seed)
        tr_idx, va_idx = indices[~va_mask], indices[va_mask]
        if len(va_idx) == 0 or len(tr_idx) == 0:
            raise DataFormatError(
                f"{train.source}: validation_fraction={fraction} of {n} rows leaves one side empty; "
                "change validation_fraction or provide a validation file"
            )
        return _carved(train, tr_idx, va_idx, fraction, seed,
                       "multi-label iterative stratification, Sechidis et al. 2011, iterstrat")
    else:
        counts = np.bincount(train.labels)
        present = counts[counts > 0]
        n_val = int(np.ceil(fraction * n))
        if present.min() < 2:
            reason = "a class has fewer than 2 training documents"
        elif n_val < len(present) or n - n_val < len(present):
            reason = f"one side would hold fewer rows than the {len(present)} classes"
    stratify = None if reason else train.labels
    try:
        tr_idx, va_idx = train_test_split(indices, test_size=fraction, random_state=seed, stratify=stratify)
    except ValueError as err:
        if stratify is None:
            raise
        reason = str(err)
        tr_idx, va_idx = train_test_split(indices, test_size=fraction, random_state=seed, stratify=None)
    how = "stratified by label" if reason is None else f"unstratified ({reason})"
    return _carved(train, tr_idx, va_idx, fraction, seed, how)


def _carved(train: Split, tr_idx: np.ndarray, va_idx: np.ndarray, fraction: float, seed: int,
            how: str) -> tuple[Split, Split, str]:
    """The two splits (source order) and the note of a carve."""
    n = len(train)
    tr_idx, va_idx = np.sort(tr_idx), np.sort(va_idx)
    source = f"carved from train (seed {seed})"
    note = (
        f"validation: carved {len(va_idx)} of {n} training rows (validation_fraction={fraction}, "
        f"seed={seed}, {how}); train keeps {len(tr_idx)}"
    )
    new_train = train.subset(tr_idx, source=f"{train.source} [minus {len(va_idx)} carved as validation]")
    validation = Split(
        name="validation",
        texts=[train.texts[i] for i in va_idx],
        labels=train.labels[va_idx],
        ids=[train.ids[i] for i in va_idx],
        source=source,
    )
    return new_train, validation, note


def iterative_stratified_mask(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Choose about ``fraction`` of the rows of a multi-label matrix so that every label keeps about that
    share in the chosen part: iterative stratification (Sechidis, Tsoumakas and Vlahavas 2011, Algorithm 1),
    as implemented by the maintained ``iterative-stratification`` package (``iterstrat.ml_stratifiers.
    MultilabelStratifiedShuffleSplit(n_splits=1, test_size=n_chosen, random_state=seed)``).

    The algorithm repeatedly takes the label with the fewest rows still unassigned (rare labels first, where a
    random split hurts most) and gives each of its rows to the subset that still wants most of that label
    (ties: the subset that wants most rows overall, then at random); rows without any label go to the subset
    that wants most rows. A label with a single row therefore usually lands on the larger side.

    Up to commit 5fa11ea this was a hand-written implementation of the same algorithm; iterstrat shuffles
    the rows first and draws its random numbers differently, so **the validation split carved from
    multi-label data changed** with the switch (same sizes and per-label shares up to a row, other
    documents). Single-label carves are unchanged.

    Parameters
    ----------
    labels : ndarray of shape (n_rows, n_labels), 0/1
        A single label column is stratified together with its complement (rows without the label).
    fraction : float in (0, 1)
        Share of the rows for the chosen (validation) part: ``ceil(fraction * n_rows)`` rows are wanted there
        (as ``sklearn.model_selection.train_test_split``), at least one and at most ``n_rows - 1``. Label
        shares come first, so the part's size is approximate (on a 400-row, 12-label toy: within a few rows
        of the 80 wanted, every label within one row of its 20%).
    seed : int
        ``random_state`` of the shuffle and the tie-breaks; the same seed gives the same mask.

    Returns
    -------
    ndarray of bool, shape (n_rows,)
        True for the rows of the chosen part; all False when there are fewer than 2 rows (nothing to carve).

    Raises
    ------
    ValueError
        If ``labels`` is not 2-D or ``fraction`` is not in (0, 1).
    """
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    y = np.asarray(labels) > 0
    if y.ndim != 2:
        raise ValueError(f"iterative_stratified_mask: labels must be 2-D (rows, labels), got shape {y.shape}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"iterative_stratified_mask: fraction must be in (0, 1), got {fraction}")
    n = y.shape[0]
    if n < 2:
        return np.zeros(n, dtype=bool)
    if y.shape[1] < 2:  # iterstrat needs a multilabel-indicator matrix (at least 2 columns)
        y = np.column_stack([y, ~y.any(axis=1)]) if y.shape[1] == 1 else np.ones((n, 2), dtype=bool)
    # as sklearn's train_test_split: the chosen part has ceil(fraction * n) rows, and each side at least one
    n_chosen = min(max(int(np.ceil(fraction * n)), 1), n - 1)
    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=n_chosen, random_state=seed)
    _, chosen = next(splitter.split(np.zeros((n, 1)), y))
    mask = np.zeros(n, dtype=bool)
    mask[chosen] = True
    return mask
