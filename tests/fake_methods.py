"""Small fake methods for tests of ``compare`` and the CLI.

The ``fake_methods`` fixture registers them under test names for the duration of one test.

They follow the :class:`~frugaltext.methods.base.Method` contract with no torch and no sklearn, so that the
tests of the orchestration do not depend on the real methods.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from frugaltext.methods.base import Method

FIT_CALLS: Counter = Counter()  # (method name, seed) -> number of fit() calls


@dataclass(frozen=True)
class MajoritySettings:
    """Settings of the majority-class fake."""

    epochs: int = 1


@dataclass(frozen=True)
class KeywordSettings:
    """Settings of the keyword fake: add-``smoothing`` word counts per class (a tiny naive Bayes)."""

    smoothing: float = 1.0
    epochs: int = 2


@dataclass(frozen=True)
class StudentSettings:
    """Settings of a fake that needs a teacher model ("auto": the teacher of the same seed in the run)."""

    teacher: str = "auto"


class _Fake(Method):
    def _record(self, data, meter, seed):
        FIT_CALLS[(self.name, seed)] += 1
        self.label_names, self.multi_label = data.label_names, data.multi_label
        for _ in range(getattr(self.settings, "epochs", 1)):
            meter.record_epoch(0.001)

    def n_params(self) -> int:
        return int(np.asarray(self.table_).size)

    def flops_per_document(self, texts):
        return {"flops": float(2 * self.n_params()), "flops_train_step": None}

    def cost_notes(self):
        return {"fake": True}

    def _save(self, directory: Path) -> None:
        (directory / "fake.json").write_text(
            json.dumps({"table": np.asarray(self.table_).tolist(), "vocab": getattr(self, "vocab_", [])})
        )

    def _load(self, directory: Path) -> None:
        stored = json.loads((directory / "fake.json").read_text())
        self.table_ = np.asarray(stored["table"], dtype=np.float64)
        self.vocab_ = stored["vocab"]


class MajorityMethod(_Fake):
    """Predicts the label frequencies of the training split for every document."""

    name = "test-majority"
    Settings = MajoritySettings

    def fit(self, data, meter, seed=0, output_dir=None):
        self._record(data, meter, seed)
        labels = data.train.labels
        counts = labels.sum(axis=0) if data.multi_label else np.bincount(labels, minlength=data.num_labels)
        self.table_ = (counts + 1e-3) / (counts + 1e-3).sum()
        return self

    def predict_proba(self, texts, batch_size=32):
        return np.tile(self.table_.astype(np.float32), (len(texts), 1))


class KeywordMethod(_Fake):
    """Multinomial naive Bayes over whitespace tokens; single-label only."""

    name = "test-keyword"
    Settings = KeywordSettings

    def fit(self, data, meter, seed=0, output_dir=None):
        self._record(data, meter, seed)
        self.vocab_ = sorted({w for t in data.train.texts for w in t.split()})
        index = {w: i for i, w in enumerate(self.vocab_)}
        counts = np.full((data.num_labels, len(self.vocab_)), self.settings.smoothing)
        for text, y in zip(data.train.texts, data.train.labels, strict=True):
            for w in text.split():
                counts[int(y), index[w]] += 1
        self.table_ = np.log(counts / counts.sum(axis=1, keepdims=True))
        return self

    def predict_proba(self, texts, batch_size=32):
        index = {w: i for i, w in enumerate(self.vocab_)}
        scores = np.zeros((len(texts), self.table_.shape[0]))
        for r, text in enumerate(texts):
            ids = [index[w] for w in text.split() if w in index]
            if ids:
                scores[r] = self.table_[:, ids].sum(axis=1)
        scores -= scores.max(axis=1, keepdims=True)
        proba = np.exp(scores)
        return (proba / proba.sum(axis=1, keepdims=True)).astype(np.float32)


class StudentMethod(MajorityMethod):
    """A majority-class fake that records the teacher directory it was given."""

    name = "test-student"
    Settings = StudentSettings
    TEACHERS: list = []

    def fit(self, data, meter, seed=0, output_dir=None):
        if not Path(self.settings.teacher).is_dir():
            raise AssertionError(f"teacher {self.settings.teacher!r} is not a directory")
        StudentMethod.TEACHERS.append(self.settings.teacher)
        return super().fit(data, meter, seed, output_dir)


@pytest.fixture
def fake_methods(monkeypatch):
    """Register the fakes for one test, and remove them afterwards (the registry stays clean for others)."""
    from frugaltext.methods import base

    base._import_builtin_methods()
    for cls in (MajorityMethod, KeywordMethod, StudentMethod):
        monkeypatch.setitem(base._REGISTRY, cls.name, cls)
    yield
