"""Quality of a topic model: held-out perplexity, top words per topic and NPMI topic coherence.

Sources: perplexity as Miao, Yu and Blunsom (2016, §4.1); NPMI coherence as Lau, Newman and Baldwin (2014)
with document co-occurrence counts (see :func:`npmi_coherence`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy import sparse

from frugaltext.errors import ConfigError, DataFormatError
from frugaltext.models.nvdm import NVDM
from frugaltext.topics.vocabulary import BowVocabulary, _check_texts, _rows, _word_counts

__all__ = ["mean_npmi", "npmi_coherence", "perplexity", "top_words"]


@torch.no_grad()
def perplexity(model: NVDM, bow: Any, batch_size: int = 512, n_samples: int = 1, seed: int = 0) -> float:
    """Corpus perplexity ``exp(sum_d L_d / sum_d N_d)`` (Miao et al. 2016, eq. in §4.1; their ``print_ppx``).

    ``L_d`` is the negative ELBO of document d (nats; reconstruction from sampled ``h_TM`` + KL) and
    ``N_d`` its number of vocabulary words. Documents without a vocabulary word are left out (their
    ELBO would add nats for no word).

    Parameters
    ----------
    model : NVDM
    bow : scipy sparse matrix, ndarray or Tensor of shape (n_docs, vocab_size)
    batch_size : int
    n_samples : int, default 1
        Posterior samples averaged in the reconstruction term (Miao et al. evaluate with 1).
    seed : int
        Seed of the noise, so the value is reproducible.

    Returns
    -------
    float
        Perplexity (>= 1 for a proper model; lower is better).

    Raises
    ------
    DataFormatError
        If no document has a vocabulary word.
    """
    counts = _word_counts(bow)
    keep = np.flatnonzero(counts > 0)
    if keep.size == 0:
        raise DataFormatError("perplexity: no document contains a vocabulary word; check the texts and "
                              "vocabulary")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    total = 0.0
    try:
        for start in range(0, keep.size, batch_size):
            rows = _rows(bow, keep[start:start + batch_size]).to(device)
            out = model(rows, sample=True, n_samples=n_samples, generator=generator)
            total += float((out.recon + out.kl).double().sum())
    finally:
        model.train(was_training)
    return float(math.exp(total / counts[keep].sum()))


@torch.no_grad()
def top_words(model: NVDM, vocab: BowVocabulary, n: int = 10) -> list[list[str]]:
    """The ``n`` highest-scoring words of each topic, from the decoder matrix U (row k, sorted descending),
    as the authors' ``topic_coherence.py`` does.

    Returns
    -------
    list of n_topics lists of n str
        Shape ``(n_topics, n)``.

    Raises
    ------
    ConfigError
        If the vocabulary size differs from the model's or ``n`` is not in [1, vocab_size].
    """
    if len(vocab) != model.config.vocab_size:
        raise ConfigError(f"top_words: the vocabulary has {len(vocab)} words but the NVDM was built for "
                          f"{model.config.vocab_size}; pass the vocabulary it was trained with")
    if not 1 <= n <= len(vocab):
        raise ConfigError(f"top_words: n must be in [1, {len(vocab)}], got {n}")
    matrix = model.topic_word_matrix.detach().float().cpu()
    order = torch.argsort(matrix, dim=1, descending=True)[:, :n].numpy()
    words = vocab.words_ or []
    return [[words[j] for j in row] for row in order]


def npmi_coherence(top_words: Sequence[Sequence[str | int]], texts_or_bow: Any,
                   vocab: BowVocabulary | None = None) -> np.ndarray:
    """Topic coherence: mean normalised pointwise mutual information over the pairs of each topic's words,
    with document co-occurrence on a reference corpus (Bouma 2009; Lau, Newman and Baldwin 2014).

    ``NPMI(w_i, w_j) = log(P(w_i, w_j) / (P(w_i) P(w_j))) / -log P(w_i, w_j)``, where ``P(w)`` is the share
    of documents containing w and ``P(w_i, w_j)`` the share containing both. Pairs that never co-occur
    score -1 (the limit); pairs found in every document score 1.

    Parameters
    ----------
    top_words : sequence of n_topics sequences of str (words) or int (vocabulary columns)
    texts_or_bow : sequence of str, or matrix of shape (n_docs, vocab_size)
        The reference corpus (TopicBERT: the training texts). Texts are tokenised with ``vocab``'s analyzer
        (lower-cased, stop words removed), or with the same rules when ``vocab`` is None.
    vocab : BowVocabulary, optional
        Needed to map words to columns when the corpus is a bag-of-words matrix, or columns to words when
        ``top_words`` holds ints and the corpus is texts.

    Returns
    -------
    ndarray of shape (n_topics,), float64
        Coherence of each topic, in [-1, 1]. Topics with fewer than two words score NaN.

    Raises
    ------
    ConfigError
        If a bag-of-words corpus is given with word strings but no ``vocab``, or a column is out of range.
    DataFormatError
        If the corpus is empty.
    """
    topics = [list(t) for t in top_words]
    is_text_corpus = isinstance(texts_or_bow, list | tuple) and (
        not texts_or_bow or isinstance(texts_or_bow[0], str))
    if is_text_corpus:
        texts = _check_texts(texts_or_bow, "npmi_coherence")
        analyzer = vocab._require().build_analyzer() if vocab is not None else \
            BowVocabulary._make_vectorizer().build_analyzer()
        words_needed = {_as_word(w, vocab) for t in topics for w in t}
        doc_sets = [set(analyzer(text)) & words_needed for text in texts]
        columns = {w: i for i, w in enumerate(sorted(words_needed))}
        indicator = sparse.lil_matrix((len(texts), len(columns)), dtype=np.float64)
        for r, present in enumerate(doc_sets):
            for w in present:
                indicator[r, columns[w]] = 1.0
        indicator = indicator.tocsc()
        topic_cols = [[columns[_as_word(w, vocab)] for w in t] for t in topics]
    else:
        matrix = texts_or_bow
        if isinstance(matrix, torch.Tensor):
            matrix = (matrix.to_dense() if matrix.is_sparse else matrix).cpu().numpy()
        matrix = sparse.csc_matrix(matrix)
        n_cols = matrix.shape[1]
        index = vocab.index if vocab is not None else None
        topic_cols = []
        for t in topics:
            cols = []
            for w in t:
                if isinstance(w, str):
                    if index is None:
                        raise ConfigError("npmi_coherence: top_words are strings but the corpus is a "
                                          "bag-of-words matrix; pass vocab= to map words to columns")
                    if w not in index:
                        raise ConfigError(f"npmi_coherence: word {w!r} is not in the vocabulary")
                    cols.append(index[w])
                else:
                    if not 0 <= int(w) < n_cols:
                        raise ConfigError(f"npmi_coherence: column {w} is outside [0, {n_cols})")
                    cols.append(int(w))
            topic_cols.append(cols)
        indicator = (matrix > 0).astype(np.float64).tocsc()
    n_docs = indicator.shape[0]
    if n_docs == 0:
        raise DataFormatError("npmi_coherence: the reference corpus has no documents")
    used = sorted({c for cols in topic_cols for c in cols})
    position = {c: i for i, c in enumerate(used)}
    sub = indicator[:, used]
    # (n_used, n_used) joint probabilities; the diagonal holds the marginals
    co = np.asarray((sub.T @ sub).todense(), dtype=np.float64) / n_docs
    marginal = np.diag(co).copy()
    scores = np.full(len(topic_cols), np.nan)
    for k, cols in enumerate(topic_cols):
        values = []
        for a in range(len(cols)):
            for b in range(a + 1, len(cols)):
                i, j = position[cols[a]], position[cols[b]]
                values.append(_npmi(co[i, j], marginal[i], marginal[j]))
        if values:
            scores[k] = float(np.mean(values))
    return scores


def _as_word(word: str | int, vocab: BowVocabulary | None) -> str:
    if isinstance(word, str):
        return word
    if vocab is None or vocab.words_ is None:
        raise ConfigError("npmi_coherence: top_words are column numbers; pass vocab= to map them to words")
    return vocab.words_[int(word)]


def _npmi(p_ij: float, p_i: float, p_j: float) -> float:
    if p_ij <= 0.0:
        return -1.0
    if p_ij >= 1.0:
        return 1.0
    value = math.log(p_ij / (p_i * p_j)) / -math.log(p_ij)
    return float(min(1.0, max(-1.0, value)))


def mean_npmi(scores: np.ndarray) -> float | None:
    """Mean of per-topic NPMI scores, ignoring NaN (topics with one word); None when there is none."""
    finite = np.asarray(scores, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(finite.mean()) if finite.size else None
