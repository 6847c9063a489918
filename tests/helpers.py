"""Small builders shared by tests (importable as ``tests.helpers``)."""

from __future__ import annotations

import numpy as np

from frugaltext.data.dataset import Split, TextClassificationData


def make_data(texts, labels, multi_label=False, name="toy", test_texts=None, test_labels=None):
    """A TextClassificationData whose train = validation = test = the given toy rows (unless test is
    given)."""
    if multi_label:
        names = tuple(sorted({lab for row in labels for lab in row}))
        index = {n: i for i, n in enumerate(names)}

        def encode(rows):
            y = np.zeros((len(rows), len(names)), dtype=np.float32)
            for r, row in enumerate(rows):
                for lab in row:
                    y[r, index[lab]] = 1.0
            return y
    else:
        names = tuple(sorted(set(labels)))
        index = {n: i for i, n in enumerate(names)}

        def encode(rows):
            return np.array([index[lab] for lab in rows], dtype=np.int64)

    def split(name, t, y):
        return Split(name=name, texts=list(t), labels=encode(y),
                     ids=[f"{name}:{i + 1}" for i in range(len(t))])

    test_texts = texts if test_texts is None else test_texts
    test_labels = labels if test_labels is None else test_labels
    return TextClassificationData(
        name=name,
        train=split("train", texts, labels),
        validation=split("validation", texts, labels),
        test=split("test", test_texts, test_labels),
        label_names=names,
        multi_label=multi_label,
    )
