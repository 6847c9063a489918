"""In-memory dataset types shared by every method: one split of texts with label ids, and the task."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from frugaltext.errors import ConfigError


@dataclass(frozen=True)
class Split:
    """One split of a text-classification task.

    Attributes
    ----------
    name : str
        ``"train"``, ``"validation"`` or ``"test"``.
    texts : list of str, length n_docs
        Non-empty document texts.
    labels : ndarray
        Shape ``(n_docs,)``, dtype int64, label ids for single-label tasks; shape ``(n_docs, num_labels)``,
        dtype float32 with 0/1 entries for multi-label tasks. Ids index
        ``TextClassificationData.label_names``.
    ids : list of str, length n_docs
        Row identifiers (the ``id`` field when present, else ``"<file>:<line>"``), for error messages and
        output.
    source : str
        Where the split came from (a path, or ``"carved from train (seed 13)"``).
    """

    name: str
    texts: list[str]
    labels: np.ndarray
    ids: list[str]
    source: str = ""

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int] | np.ndarray, source: str | None = None) -> Split:
        """Return the rows at ``indices`` (in that order) as a new split."""
        idx = np.asarray(indices, dtype=np.int64)
        return Split(
            name=self.name,
            texts=[self.texts[i] for i in idx],
            labels=self.labels[idx],
            ids=[self.ids[i] for i in idx],
            source=source if source is not None else f"{self.source} [subset of {len(idx)}]",
        )


@dataclass(frozen=True)
class TextClassificationData:
    """A task: train/validation/test splits plus the label set (taken from the training split).

    Attributes
    ----------
    name : str
        Dataset name (embedded name or directory/file stem).
    train, validation, test : Split
        ``test`` may be ``None`` when the source has no test split.
    label_names : tuple of str
        Sorted label names from the training split; label id ``i`` is ``label_names[i]``.
    multi_label : bool
        True when each document carries a set of labels (sigmoid/BCE), False for exactly one (softmax/CE).
    notes : list of str
        Human-readable facts about loading (e.g. the size of a carved validation split).
    """

    name: str
    train: Split
    validation: Split
    test: Split | None
    label_names: tuple[str, ...]
    multi_label: bool
    notes: list[str] = field(default_factory=list)

    @property
    def num_labels(self) -> int:
        """Number of labels."""
        return len(self.label_names)

    @property
    def problem_type(self) -> str:
        """The ``problem_type`` transformers expects: single_label_classification or
        multi_label_classification."""
        return "multi_label_classification" if self.multi_label else "single_label_classification"

    @property
    def id2label(self) -> dict[int, str]:
        """Mapping label id -> name, as stored in transformers configs."""
        return dict(enumerate(self.label_names))

    @property
    def label2id(self) -> dict[str, int]:
        """Mapping label name -> id."""
        return {n: i for i, n in enumerate(self.label_names)}

    def limit(
        self,
        n_train: int | None = None,
        n_validation: int | None = None,
        n_test: int | None = None,
        seed: int = 0,
    ) -> TextClassificationData:
        """Return a copy with at most ``n_train`` / ``n_validation`` / ``n_test`` documents per split.

        The subset is deterministic for a given ``seed`` (each split draws from its own
        ``numpy.random.default_rng(seed)``, so limiting one split does not change another) and keeps the
        source order. Single-label splits are stratified: the ``n`` places are shared in proportion to the
        class sizes (largest-remainder method); when ``n`` is at least the number of classes present, a class
        left with no place gets one, taken from the class with the most places. Multi-label splits are
        sampled uniformly without replacement. ``label_names`` is unchanged, so ids stay comparable with the
        full data. A note per limited split is appended to ``notes``.

        Parameters
        ----------
        n_train, n_validation, n_test : int >= 1 or None
            Maximum number of documents; None (or a value >= the split size) keeps the split whole.
        seed : int, default 0

        Returns
        -------
        TextClassificationData

        Raises
        ------
        ConfigError
            If a limit is not a positive integer.
        """
        notes = list(self.notes)
        changes: dict[str, Split | None] = {}
        for name, n in (("train", n_train), ("validation", n_validation), ("test", n_test)):
            split = getattr(self, name)
            if n is None or split is None:
                continue
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise ConfigError(f"n_{name} must be a positive integer or None, got {n!r}")
            if n >= len(split):
                continue
            idx, how = _sample_indices(split.labels, int(n), np.random.default_rng(seed))
            source = f"{split.source} [limited to {len(idx)} of {len(split)}]"
            changes[name] = split.subset(idx, source=source)
            notes.append(
                f"limit: {name} reduced to {len(idx)} of {len(split)} documents "
                f"(seed {seed}, {how})"
            )
        return replace(self, notes=notes, **changes)


def _sample_indices(labels: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Pick ``n`` row indices (sorted), stratified by label for 1-D labels; return them and how."""
    n_rows = labels.shape[0]
    if labels.ndim != 1:
        return np.sort(rng.choice(n_rows, size=n, replace=False)), "uniform (multi-label)"
    classes, counts = np.unique(labels, return_counts=True)
    k = len(classes)
    alloc = _largest_remainder(n, counts)
    if n >= k:
        for c in np.flatnonzero(alloc == 0):  # every class keeps one document: take it from the largest share
            alloc[int(np.argmax(alloc))] -= 1
            alloc[c] = 1
        how = "stratified by label, at least one per class"
    else:
        how = f"stratified by label; {n} < {k} classes, so some classes are absent"
    chosen = [
        rng.choice(np.flatnonzero(labels == c), size=int(a), replace=False)
        for c, a in zip(classes, alloc, strict=True)
        if a
    ]
    return np.sort(np.concatenate(chosen)), how


def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """Share ``total`` integer places in proportion to ``weights`` (Hamilton / largest remainder method)."""
    weight_sum = weights.sum()
    if total == 0 or weight_sum == 0:
        return np.zeros(len(weights), dtype=np.int64)
    quota = total * weights / weight_sum
    alloc = np.floor(quota).astype(np.int64)
    left = total - int(alloc.sum())
    order = np.argsort(-(quota - alloc), kind="stable")
    alloc[order[:left]] += 1
    return alloc

