"""tf-idf + linear classifier baselines (DocBERT's LR and SVM baselines; Adhikari et al. 2019).

:class:`TfidfLinearClassifier` follows the scikit-learn estimator contract (``__init__`` stores arguments,
``fit`` validates and builds ``pipeline_``), so ``clone``/``get_params`` work. Saving uses JSON + safetensors
(vocabulary, idf weights, coefficients), never pickle.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from frugaltext.errors import ConfigError, ModelLoadError

#: decision score stored for a label that was constant in training (sigmoid(10) > 0.9999)
CONSTANT_SCORE = 10.0


class TfidfLinearClassifier(ClassifierMixin, BaseEstimator):
    """tf-idf features + logistic regression or linear SVM; one-vs-rest for multi-label targets.

    Parameters
    ----------
    classifier : {"lr", "svm"}
        LogisticRegression (lbfgs, multinomial) or LinearSVC (squared hinge, one-vs-rest).
    C : float
        Inverse regularisation strength.
    ngram_range : tuple of int
        Word n-gram range of the vectoriser (default unigrams).
    min_df : int
        Minimum document frequency of a feature.
    max_features : int or None
        Vocabulary cap (most frequent features).
    sublinear_tf : bool
        1 + log(tf) instead of raw tf.
    max_iter : int
        Solver iterations.

    Notes
    -----
    ``y`` of shape ``(n_samples,)`` is single-label; a 0/1 indicator matrix ``(n_samples, n_labels)`` is
    multi-label and trains one binary classifier per label. ``decision_function`` returns raw scores;
    ``predict_proba`` returns probabilities for ``lr`` and, for ``svm``, the softmax (single-label) or sigmoid
    (multi-label) of the SVM scores: monotone in the scores, so predictions agree with ``predict``, but not
    calibrated probabilities.
    """

    def __init__(self, classifier="lr", C=1.0, ngram_range=(1, 1), min_df=1, max_features=None,
                 sublinear_tf=True, max_iter=1000):
        self.classifier = classifier
        self.C = C
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_features = max_features
        self.sublinear_tf = sublinear_tf
        self.max_iter = max_iter

    def _make_linear(self):
        if self.classifier == "lr":
            return LogisticRegression(C=self.C, max_iter=self.max_iter)
        if self.classifier == "svm":
            return LinearSVC(C=self.C, max_iter=self.max_iter)
        raise ConfigError(f"classifier must be 'lr' or 'svm', got {self.classifier!r}")

    def fit(self, X, y):
        """Fit on texts ``X`` (sequence of str) and labels ``y`` ((n,) ids or (n, K) 0/1); returns self."""
        y = np.asarray(y)
        self.multi_label_ = y.ndim == 2
        linear = self._make_linear()
        if self.multi_label_:
            linear = OneVsRestClassifier(linear)
        vectorizer = TfidfVectorizer(
            ngram_range=tuple(self.ngram_range), min_df=self.min_df, max_features=self.max_features,
            sublinear_tf=self.sublinear_tf, dtype=np.float32,
        )
        self.pipeline_ = Pipeline([("tfidf", vectorizer), ("clf", linear)]).fit(list(X), y)
        self.classes_ = np.arange(y.shape[1]) if self.multi_label_ else self.pipeline_.classes_
        return self

    def decision_function(self, X) -> np.ndarray:
        """Raw scores of shape (n_samples, n_classes) (a column for binary problems is expanded to two)."""
        if self.multi_label_:
            # from the stored coefficients: sklearn's constant predictor (a label never/always on in
            # training) scores 0 = "undecided", which a 0.5 probability threshold would turn into "on" for
            # every document
            coef, intercept = self.coefficients()
            features = self.pipeline_.named_steps["tfidf"].transform(list(X))
            return np.asarray(features @ coef.T) + intercept
        scores = self.pipeline_.decision_function(list(X))
        if scores.ndim == 1:
            scores = np.stack([-scores, scores], axis=1) / 2
        return scores

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities of shape (n_samples, n_classes); see the class notes for ``svm``."""
        scores = self.decision_function(X)
        if self.multi_label_:
            return 1.0 / (1.0 + np.exp(-scores))
        if self.classifier == "lr":
            return self.pipeline_.predict_proba(list(X))
        z = scores - scores.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        """Class labels (n_samples,) or a 0/1 matrix (n_samples, n_labels)."""
        return self.pipeline_.predict(list(X))

    # -- safe persistence --------------------------------------------------------------------------
    def coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        """(coef of shape (n_outputs, n_features), intercept (n_outputs,)) of the linear model(s)."""
        clf = self.pipeline_.named_steps["clf"]
        if isinstance(clf, OneVsRestClassifier):
            n_features = len(self.pipeline_.named_steps["tfidf"].vocabulary_)
            coefs, intercepts = [], []
            for est in clf.estimators_:
                if hasattr(est, "coef_"):
                    coefs.append(est.coef_.reshape(1, -1))
                    intercepts.append(np.atleast_1d(est.intercept_))
                else:
                    # a label that is always (or never) on in training: sklearn keeps a constant predictor;
                    # store it as a zero-weight linear model whose score has the constant's sign
                    constant = float(np.ravel(est.y_)[0])
                    coefs.append(np.zeros((1, n_features)))
                    intercepts.append(np.array([CONSTANT_SCORE if constant > 0.5 else -CONSTANT_SCORE]))
            coef, intercept = np.vstack(coefs), np.concatenate(intercepts)
        else:
            coef, intercept = clf.coef_, np.atleast_1d(clf.intercept_)
        return np.ascontiguousarray(coef, dtype=np.float32), np.ascontiguousarray(intercept, dtype=np.float32)

    def save(self, directory: Path) -> None:
        """Write ``tfidf.json`` (parameters, vocabulary) and ``tfidf.safetensors`` (idf, coefficients)."""
        vec = self.pipeline_.named_steps["tfidf"]
        coef, intercept = self.coefficients()
        meta = {
            "params": {**self.get_params(), "ngram_range": list(self.ngram_range)},
            "multi_label": bool(self.multi_label_),
            "classes": [int(c) for c in self.classes_],
            "vocabulary": {k: int(v) for k, v in vec.vocabulary_.items()},
        }
        (directory / "tfidf.json").write_text(json.dumps(meta), encoding="utf-8")
        save_file({"idf": np.ascontiguousarray(vec.idf_, dtype=np.float32), "coef": coef,
                   "intercept": intercept},
                  str(directory / "tfidf.safetensors"))

    @classmethod
    def load(cls, directory: Path) -> TfidfLinearClassifier:
        """Rebuild a fitted classifier from :meth:`save` output (identical predictions).

        Raises
        ------
        ModelLoadError
            If a file is missing, truncated or invalid (the message names it and says to retrain or re-copy
            the folder).
        """
        json_path, tensor_path = directory / "tfidf.json", directory / "tfidf.safetensors"
        damaged = "the model folder is damaged or incomplete: train the model again or copy the folder again"
        for path in (json_path, tensor_path):
            if not path.is_file():
                raise ModelLoadError(f"{path} is missing; {damaged}")
        try:
            meta = json.loads(json_path.read_text(encoding="utf-8"))
            params = meta["params"]
            meta["vocabulary"], meta["classes"], meta["multi_label"]  # noqa: B018 - KeyError when absent
        except (ValueError, KeyError, TypeError) as err:  # incl. JSONDecodeError, UnicodeDecodeError
            raise ModelLoadError(f"{json_path}: not a valid tf-idf model file ({type(err).__name__}: {err}); "
                                 f"{damaged}") from None
        try:
            tensors = load_file(str(tensor_path))
        except Exception as err:  # noqa: BLE001 - SafetensorError and OSError: a truncated or foreign file
            raise ModelLoadError(f"{tensor_path}: cannot read the weights ({type(err).__name__}: {err}); "
                                 f"{damaged}") from None
        missing = sorted({"idf", "coef", "intercept"} - set(tensors))
        if missing:
            raise ModelLoadError(f"{tensor_path}: the tensors {missing} are missing; {damaged}")
        params["ngram_range"] = tuple(params["ngram_range"])
        self = cls(**params)
        vec = TfidfVectorizer(ngram_range=self.ngram_range, min_df=self.min_df,
                              max_features=self.max_features, sublinear_tf=self.sublinear_tf,
                              dtype=np.float32)
        vec.vocabulary_ = meta["vocabulary"]
        vec.idf_ = tensors["idf"].astype(np.float64)
        classes = np.asarray(meta["classes"])
        coef, intercept = tensors["coef"].astype(np.float64), tensors["intercept"].astype(np.float64)

        def linear(c, b, cls_):
            est = self._make_linear()
            est.coef_, est.intercept_, est.classes_ = c, b, cls_
            if isinstance(est, LogisticRegression):
                est.n_features_in_ = c.shape[1]
            return est

        if meta["multi_label"]:
            ovr = OneVsRestClassifier(self._make_linear())
            ovr.estimators_ = [linear(coef[i : i + 1], intercept[i : i + 1], np.array([0, 1]))
                               for i in range(coef.shape[0])]
            from sklearn.preprocessing import LabelBinarizer

            ovr.label_binarizer_ = LabelBinarizer(sparse_output=False).fit(np.eye(len(classes), dtype=int))
            ovr.classes_ = classes
            clf = ovr
        else:
            clf = linear(coef, intercept, classes)
        self.pipeline_ = Pipeline([("tfidf", vec), ("clf", clf)])
        self.multi_label_ = bool(meta["multi_label"])
        self.classes_ = classes
        return self
