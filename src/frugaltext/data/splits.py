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
                       "multi-label iterative stratification, Sechidis et al. 2011")
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
    share in the chosen part: iterative stratification (Sechidis, Tsoumakas and Vlahavas 2011, Algorithm 1)
    for two subsets, the algorithm behind ``iterstrat``/``skmultilearn``'s stratified splits.

    Repeatedly take the label with the fewest rows still unassigned (rare labels first, where a random split
    hurts most) and give each of its rows to the subset that still wants most of that label (ties: the subset
    that wants most rows overall, then at random); rows with no label left go to the subset that wants most
    rows. A label with a single row therefore lands on the larger side.

    Parameters
    ----------
    labels : ndarray of shape (n_rows, n_labels), 0/1
    fraction : float in (0, 1)
        Share of the rows for the chosen (validation) part: ``ceil(fraction * n_rows)`` rows are wanted there
        (as ``sklearn.model_selection.train_test_split``), at least one and at most ``n_rows - 1``. Label
        shares come first, so the part's size is approximate (on a 400-row, 12-label toy: 77 to 88 rows for
        80 wanted, every label within one row of its 20%).
    seed : int

    Returns
    -------
    ndarray of bool, shape (n_rows,)
        True for the rows of the chosen part.

    Raises
    ------
    ValueError
        If ``labels`` is not 2-D or ``fraction`` is not in (0, 1).
    """
    y = np.asarray(labels) > 0
    if y.ndim != 2:
        raise ValueError(f"iterative_stratified_mask: labels must be 2-D (rows, labels), got shape {y.shape}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"iterative_stratified_mask: fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    n, _ = y.shape
    # as sklearn's train_test_split: the chosen part has ceil(fraction * n) rows, and each side at least one
    n_chosen = min(max(int(np.ceil(fraction * n)), 1), max(n - 1, 1))
    ratios = np.array([n_chosen / n, 1.0 - n_chosen / n]) if n else np.array([fraction, 1.0 - fraction])
    wanted_rows = ratios * n  # subset 0 = chosen part, 1 = the rest
    wanted_label = np.outer(ratios, y.sum(axis=0)).astype(float)  # (2, n_labels)
    subset = np.full(n, -1)
    remaining = y.copy()
    unassigned = np.ones(n, dtype=bool)

    def assign(row: int, target: int) -> None:
        subset[row] = target
        unassigned[row] = False
        wanted_rows[target] -= 1
        wanted_label[target, y[row]] -= 1
        remaining[row] = False

    while unassigned.any():
        counts = remaining.sum(axis=0)
        if not counts.any():
            break
        candidates = np.flatnonzero(counts == counts[counts > 0].min())
        label = int(candidates[rng.integers(len(candidates))])
        rows = np.flatnonzero(remaining[:, label])
        for row in rng.permutation(rows):
            want = wanted_label[:, label]
            best = np.flatnonzero(want == want.max())
            if len(best) > 1:
                best = best[wanted_rows[best] == wanted_rows[best].max()]
            assign(int(row), int(best[rng.integers(len(best))]))
    for row in rng.permutation(np.flatnonzero(unassigned)):
        best = np.flatnonzero(wanted_rows == wanted_rows.max())
        assign(int(row), int(best[rng.integers(len(best))]))
    return subset == 0
