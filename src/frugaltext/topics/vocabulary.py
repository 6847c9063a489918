"""Bag-of-words vocabulary of the topic model, and helpers that turn bags of words into tensors.

See :class:`BowVocabulary` for the preprocessing and its sources (TopicBERT supplementary A.2). The NVDM
itself lives in :mod:`frugaltext.models.nvdm`, its metrics in :mod:`frugaltext.topics.metrics` and its
training loop in :mod:`frugaltext.topics.training`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import sparse

from frugaltext.errors import ConfigError, DataFormatError, ModelLoadError
from frugaltext.fileio import atomic_write_text

__all__ = ["BOW_VOCABULARY_FILE", "TOKEN_PATTERN", "BowVocabulary", "to_bow_tensor"]

BOW_VOCABULARY_FILE = "bow_vocabulary.json"
#: Tokens of two or more letters (no digits, no underscore); the text is lower-cased first.
TOKEN_PATTERN = r"(?u)\b[^\W\d_]{2,}\b"


class BowVocabulary:
    """Bag-of-words vocabulary of the topic model, built from the training texts only.

    Texts are lower-cased and split into tokens of two or more letters (``TOKEN_PATTERN``); English stop
    words (scikit-learn ``ENGLISH_STOP_WORDS``, 318 words) are removed; words in fewer than ``min_df``
    training documents or in more than ``max_df`` of them are dropped; of the rest the ``max_size`` most
    frequent (by total count) are kept. Words outside the vocabulary are ignored by :meth:`transform`.

    Parameters
    ----------
    min_df : int >= 1, default 1
        Minimum number of training documents a word must occur in (the paper's F_min is 10 for Reuters-8
        and 100 for larger sets, counted as occurrences; supplementary A.2).
    max_df : float in (0, 1], default 1.0
        Maximum share of training documents a word may occur in (1.0 keeps all).
    max_size : int or None, default None
        Keep at most this many words, the most frequent ones.

    Attributes
    ----------
    words_ : list of str
        The vocabulary, in column order (alphabetical, as scikit-learn's ``CountVectorizer``).
    n_documents_ : int
        Number of training documents it was built from.
    """

    def __init__(self, min_df: int = 1, max_df: float = 1.0, max_size: int | None = None) -> None:
        self.min_df = min_df
        self.max_df = max_df
        self.max_size = max_size
        self.words_: list[str] | None = None
        self.n_documents_: int = 0
        self._vectorizer = None

    # ---- building ---------------------------------------------------------------------------------
    def _check_params(self) -> None:
        if isinstance(self.min_df, bool) or not isinstance(self.min_df, int | np.integer) or self.min_df < 1:
            raise ConfigError(f"BowVocabulary: min_df must be an integer >= 1 (a number of documents), got "
                              f"{self.min_df!r}")
        if not 0.0 < float(self.max_df) <= 1.0:
            raise ConfigError(f"BowVocabulary: max_df must be a share of documents in (0, 1], got "
                              f"{self.max_df!r}")
        max_size = self.max_size
        if max_size is not None and (not isinstance(max_size, int | np.integer) or max_size < 1):
            raise ConfigError(f"BowVocabulary: max_size must be a positive integer or None, got "
                              f"{self.max_size!r}")

    @staticmethod
    def _make_vectorizer(**kwargs: Any):
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

        return CountVectorizer(lowercase=True, token_pattern=TOKEN_PATTERN,
                               stop_words=sorted(ENGLISH_STOP_WORDS), dtype=np.float32, **kwargs)

    def fit(self, texts: Sequence[str]) -> BowVocabulary:
        """Build the vocabulary from ``texts`` (the training split only); returns ``self``.

        Raises
        ------
        ConfigError
            If a parameter is invalid, or no word survives the filters (the message says how to relax them).
        DataFormatError
            If ``texts`` is empty or holds something other than strings.
        """
        self._check_params()
        texts = _check_texts(texts, "BowVocabulary.fit")
        max_df = float(self.max_df)
        vectorizer = self._make_vectorizer(min_df=int(self.min_df), max_df=max_df if max_df < 1.0 else 1.0,
                                           max_features=None if self.max_size is None else int(self.max_size))
        try:
            vectorizer.fit(texts)
        except ValueError as err:
            raise ConfigError(
                f"BowVocabulary.fit: no word is left from {len(texts)} training documents after removing "
                f"stop words and words in fewer than min_df={self.min_df} documents (or more than "
                f"max_df={self.max_df}); lower min_df or raise max_df ({err})") from err
        self.words_ = [str(w) for w in vectorizer.get_feature_names_out()]
        self.n_documents_ = len(texts)
        self._vectorizer = self._make_vectorizer(vocabulary={w: i for i, w in enumerate(self.words_)})
        return self

    # ---- using ------------------------------------------------------------------------------------
    def _require(self):
        if self._vectorizer is None or self.words_ is None:
            raise ModelLoadError("BowVocabulary: not built; call fit(train_texts) or "
                                 "BowVocabulary.load(path) first")
        return self._vectorizer

    def __len__(self) -> int:
        return len(self.words_ or ())

    @property
    def size(self) -> int:
        """Number of words Z (the NVDM's ``vocab_size``)."""
        return len(self)

    @property
    def index(self) -> dict[str, int]:
        """Mapping word -> column."""
        return dict(self._require().vocabulary_)

    def analyze(self, text: str) -> list[str]:
        """The tokens of ``text`` that the vocabulary considers (lower-cased, stop words removed), in order,
        including words outside the vocabulary."""
        return list(self._require().build_analyzer()(text))

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """Word counts of each text over the vocabulary; out-of-vocabulary words are ignored.

        Parameters
        ----------
        texts : sequence of str, length n_docs

        Returns
        -------
        scipy.sparse.csr_matrix of shape (n_docs, vocab_size), float32
            Count of each vocabulary word in each text. A text with no vocabulary word gives an empty row.

        Raises
        ------
        ModelLoadError
            If the vocabulary is not built.
        DataFormatError
            If ``texts`` holds something other than strings.
        """
        vectorizer = self._require()
        texts = _check_texts(texts, "BowVocabulary.transform", allow_empty=True)
        return sparse.csr_matrix(vectorizer.transform(texts), dtype=np.float32)

    def fit_transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """:meth:`fit` then :meth:`transform` on the same texts."""
        return self.fit(texts).transform(texts)

    # ---- persistence ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-able description: the words and the settings that built them."""
        self._require()
        return {
            "format": "frugaltext-bow-vocabulary",
            "version": 1,
            "min_df": int(self.min_df),
            "max_df": float(self.max_df),
            "max_size": None if self.max_size is None else int(self.max_size),
            "token_pattern": TOKEN_PATTERN,
            "lowercase": True,
            "stop_words": "sklearn.feature_extraction.text.ENGLISH_STOP_WORDS",
            "n_documents": int(self.n_documents_),
            "words": list(self.words_ or ()),
        }

    @classmethod
    def from_dict(cls, payload: dict[str, Any], where: str = "vocabulary") -> BowVocabulary:
        """Rebuild a vocabulary from :meth:`to_dict` output.

        Raises
        ------
        ModelLoadError
            If the payload is not a frugaltext bag-of-words vocabulary.
        """
        if not isinstance(payload, dict) or payload.get("format") != "frugaltext-bow-vocabulary":
            raise ModelLoadError(f"{where}: not a frugaltext bag-of-words vocabulary (missing "
                                 "\"format\": \"frugaltext-bow-vocabulary\"); write it with "
                                 "BowVocabulary.save")
        words = payload.get("words")
        if not isinstance(words, list) or not words or len(set(words)) != len(words):
            raise ModelLoadError(f"{where}: \"words\" must be a non-empty list of distinct strings")
        self = cls(min_df=int(payload.get("min_df", 1)), max_df=float(payload.get("max_df", 1.0)),
                   max_size=payload.get("max_size"))
        self.words_ = [str(w) for w in words]
        self.n_documents_ = int(payload.get("n_documents", 0))
        self._vectorizer = self._make_vectorizer(vocabulary={w: i for i, w in enumerate(self.words_)})
        return self

    def save(self, path: str | Path) -> Path:
        """Write the vocabulary as JSON to ``path`` (a file, or a directory that gets
        ``bow_vocabulary.json``)."""
        path = Path(path)
        if path.is_dir():
            path = path / BOW_VOCABULARY_FILE
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> BowVocabulary:
        """Read a vocabulary written by :meth:`save` (a file, or a directory holding ``bow_vocabulary.json``).

        Raises
        ------
        ModelLoadError
            If the file is missing, not JSON, or not a vocabulary.
        """
        path = Path(path)
        if path.is_dir():
            path = path / BOW_VOCABULARY_FILE
        if not path.is_file():
            raise ModelLoadError(f"{path}: bag-of-words vocabulary file not found; save it with "
                                 "BowVocabulary.save")
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ModelLoadError(f"{path}, line {err.lineno}: invalid JSON ({err.msg})") from err
        return cls.from_dict(payload, where=str(path))

    def __repr__(self) -> str:
        return (f"BowVocabulary(min_df={self.min_df}, max_df={self.max_df}, max_size={self.max_size}, "
                f"size={len(self)})")


def _check_texts(texts: Sequence[str], where: str, allow_empty: bool = False) -> list[str]:
    if isinstance(texts, str):
        raise DataFormatError(f"{where}: expected a sequence of texts, got a single string; wrap it in a "
                              "list")
    texts = list(texts)
    if not texts and not allow_empty:
        raise DataFormatError(f"{where}: no texts given")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise DataFormatError(f"{where}: text {i} is a {type(text).__name__}, not a str")
    return texts


def to_bow_tensor(bow: Any, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A dense ``(n_docs, vocab_size)`` tensor from a scipy sparse matrix, numpy array or tensor."""
    if sparse.issparse(bow):
        return torch.from_numpy(np.asarray(bow.toarray(), dtype=np.float32)).to(dtype)
    if isinstance(bow, torch.Tensor):
        return (bow.to_dense() if bow.is_sparse else bow).to(dtype)
    return torch.as_tensor(np.asarray(bow, dtype=np.float32)).to(dtype)


def _rows(bow: Any, index: np.ndarray | slice) -> torch.Tensor:
    """Dense float32 tensor of the rows ``index`` of ``bow`` (sparse, array or tensor)."""
    if sparse.issparse(bow):
        return to_bow_tensor(bow[index])
    if isinstance(bow, torch.Tensor):
        rows = bow.to_dense() if bow.is_sparse else bow
        return rows[torch.as_tensor(index) if not isinstance(index, slice) else index].float()
    return to_bow_tensor(np.asarray(bow)[index])


def _word_counts(bow: Any) -> np.ndarray:
    if sparse.issparse(bow):
        return np.asarray(bow.sum(axis=1)).ravel().astype(np.float64)
    if isinstance(bow, torch.Tensor):
        return (bow.to_dense() if bow.is_sparse else bow).double().sum(1).cpu().numpy()
    return np.asarray(bow, dtype=np.float64).sum(1)
