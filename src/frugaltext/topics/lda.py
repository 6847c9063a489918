"""Latent Dirichlet allocation (scikit-learn) as a peer of the NVDM, on the same bag-of-words vocabulary.

:func:`fit_lda` trains scikit-learn's ``LatentDirichletAllocation`` with online variational Bayes (Hoffman,
Blei and Bach 2010), one pass over the documents per epoch (the same updates as its ``fit`` with
``learning_method="online"``, here driven by ``partial_fit`` so that a progress bar can follow the epochs).
:func:`lda_document_bounds` gives each document's negative evidence lower bound in nats, like
:func:`frugaltext.topics.metrics.document_bounds` does for the NVDM, so that both models' corpus and
per-document perplexities are computed the same way (:func:`~frugaltext.topics.metrics.
perplexities_from_bounds`).

Why not scikit-learn's ``perplexity``: it divides the *corpus* bound by the number of words, and that bound
also holds ``E_q[log p(beta | eta) - log q(beta | lambda)]``, a term for the uncertainty of the topic-word
distributions that no per-document bound of the NVDM has (its decoder is a point estimate). It is reported
beside ours (``sklearn_perplexity``) and is not comparable with the NVDM's.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from scipy import sparse
from scipy.special import gammaln, logsumexp, psi

from frugaltext.errors import ConfigError, DataFormatError
from frugaltext.topics.vocabulary import _word_counts

__all__ = ["fit_lda", "lda_document_bounds", "lda_topic_word_scores"]


def fit_lda(
    bow_train: Any,
    n_topics: int = 100,
    *,
    epochs: int = 10,
    batch_size: int = 256,
    learning_decay: float = 0.7,
    learning_offset: float = 10.0,
    doc_topic_prior: float | None = None,
    topic_word_prior: float | None = None,
    seed: int = 0,
    log: Any = None,
    progress: bool | None = False,
) -> tuple[Any, list[dict[str, float]]]:
    """Fit scikit-learn's LDA by online variational Bayes, ``epochs`` passes over the training documents.

    Parameters
    ----------
    bow_train : scipy sparse matrix or ndarray of shape (n_docs, vocab_size)
        Word counts. Documents without a vocabulary word are skipped.
    n_topics : int
        K.
    epochs : int
        Passes over the documents (scikit-learn's ``max_iter``).
    batch_size : int
        Documents per online update (scikit-learn default 128).
    learning_decay, learning_offset : float
        Online learning-rate schedule ``(learning_offset + t) ** -learning_decay`` (scikit-learn defaults).
    doc_topic_prior, topic_word_prior : float, optional
        Dirichlet priors alpha and eta; default 1 / K (scikit-learn's default).
    seed : int
    log : callable, optional
        Called with each epoch's history row.
    progress : bool or None, default False
        Progress bar over the epochs (None: only on a terminal).

    Returns
    -------
    lda : sklearn.decomposition.LatentDirichletAllocation
        Fitted; ``components_`` has shape (n_topics, vocab_size).
    history : list of dict
        ``epoch`` and ``duration_s`` per epoch.

    Raises
    ------
    ConfigError
        If a setting is invalid.
    DataFormatError
        If no document has a vocabulary word.
    """
    from sklearn.decomposition import LatentDirichletAllocation

    from frugaltext.topics.training import _progress_bar

    if n_topics < 1 or epochs < 1 or batch_size < 1:
        raise ConfigError(f"fit_lda: n_topics ({n_topics}), epochs ({epochs}) and batch_size ({batch_size}) "
                          "must be >= 1")
    bow = sparse.csr_matrix(bow_train, dtype=np.float64)
    docs = np.flatnonzero(_word_counts(bow) > 0)
    if docs.size == 0:
        raise DataFormatError("fit_lda: no training document contains a vocabulary word")
    bow = bow[docs]
    lda = LatentDirichletAllocation(
        n_components=n_topics, learning_method="online", learning_decay=learning_decay,
        learning_offset=learning_offset, batch_size=batch_size, total_samples=bow.shape[0],
        doc_topic_prior=doc_topic_prior, topic_word_prior=topic_word_prior, random_state=seed, n_jobs=1)
    rng = np.random.default_rng(seed)
    history: list[dict[str, float]] = []
    bar = _progress_bar(epochs, "LDA epochs", progress)
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = rng.permutation(bow.shape[0])
        for i in range(0, order.size, batch_size):
            lda.partial_fit(bow[np.sort(order[i:i + batch_size])])
        row = {"epoch": epoch, "duration_s": time.perf_counter() - start}
        history.append(row)
        if log is not None:
            log(row)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return lda, history


def lda_topic_word_scores(lda: Any) -> np.ndarray:
    """Topic-word probabilities ``E_q[beta_k]`` (rows of ``components_`` normalised), shape (K, V): the usual
    LDA ranking of a topic's words."""
    components = np.asarray(lda.components_, dtype=np.float64)
    return components / components.sum(axis=1, keepdims=True)


def lda_document_bounds(lda: Any, bow: Any, chunk_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Negative ELBO ``L_d`` (nats) and word count ``N_d`` of each document with a vocabulary word.

    ``-L_d = sum_w n_dw log sum_k exp(E[log theta_dk] + E[log beta_kw]) + E[log p(theta_d | alpha)]
    - E[log q(theta_d | gamma_d)]``: the document terms of scikit-learn's ``_approx_bound`` (its E-step gives
    ``gamma_d``), without the corpus-level term of the topic-word distributions (see the module docstring).
    Like the NVDM's, it bounds ``-log p(w_d)`` from above.

    Parameters
    ----------
    lda : fitted sklearn.decomposition.LatentDirichletAllocation
    bow : scipy sparse matrix or ndarray of shape (n_docs, vocab_size)
    chunk_size : int
        Documents handled at once (memory: nonzeros of a chunk x K floats).

    Returns
    -------
    nll : ndarray of shape (n_kept,), float64
    n_words : ndarray of shape (n_kept,), float64

    Raises
    ------
    DataFormatError
        If no document has a vocabulary word or the number of columns is not the model's.
    """
    bow = sparse.csr_matrix(bow, dtype=np.float64)
    if bow.shape[1] != lda.components_.shape[1]:
        raise DataFormatError(f"lda_document_bounds: bow has {bow.shape[1]} columns, the LDA "
                              f"{lda.components_.shape[1]} words")
    counts = _word_counts(bow)
    keep = np.flatnonzero(counts > 0)
    if keep.size == 0:
        raise DataFormatError("perplexity: no document contains a vocabulary word; check the texts and "
                              "vocabulary")
    bow = bow[keep]
    gamma = lda.transform(bow, normalize=False)  # (n, K) variational Dirichlet parameters
    e_log_theta = psi(gamma) - psi(gamma.sum(axis=1, keepdims=True))
    components = np.asarray(lda.components_, dtype=np.float64)
    e_log_beta = psi(components) - psi(components.sum(axis=1, keepdims=True))  # (K, V)
    alpha = float(lda.doc_topic_prior_)
    n_topics = components.shape[0]
    loglik = np.zeros(bow.shape[0])
    for start in range(0, bow.shape[0], chunk_size):
        part = bow[start:start + chunk_size].tocoo()
        temp = e_log_theta[start + part.row] + e_log_beta[:, part.col].T  # (nnz, K)
        values = part.data * logsumexp(temp, axis=1)
        loglik[start:start + chunk_size] += np.bincount(part.row, weights=values, minlength=part.shape[0])
    # E[log p(theta | alpha)] - E[log q(theta | gamma)], per document (scikit-learn's _loglikelihood)
    prior = (np.sum((alpha - gamma) * e_log_theta, axis=1) + np.sum(gammaln(gamma) - gammaln(alpha), axis=1)
             + gammaln(alpha * n_topics) - gammaln(gamma.sum(axis=1)))
    return -(loglik + prior), counts[keep]
