"""In-memory dataset types shared by every method: one split of texts with label ids, and the task."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


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
        dtype float32 with 0/1 entries for multi-label tasks. Ids index ``TextClassificationData.label_names``.
    ids : list of str, length n_docs
        Row identifiers (the ``id`` field when present, else ``"<file>:<line>"``), for error messages and output.
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
        """transformers' ``problem_type``: single_label_classification or multi_label_classification."""
        return "multi_label_classification" if self.multi_label else "single_label_classification"

    @property
    def id2label(self) -> dict[int, str]:
        """Mapping label id -> name, as stored in transformers configs."""
        return dict(enumerate(self.label_names))

    @property
    def label2id(self) -> dict[str, int]:
        """Mapping label name -> id."""
        return {n: i for i, n in enumerate(self.label_names)}
