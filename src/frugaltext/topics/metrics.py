"""Quality of a topic model: held-out perplexity, top words per topic and NPMI topic coherence.

Sources: perplexity as Miao, Yu and Blunsom (2016, §4.1: per document; their code's ``print_ppx``: corpus
level; both are computed, see :func:`perplexities`); NPMI coherence as Lau, Newman and Baldwin (2014) with
document co-occurrence counts, under two conventions for pairs that never co-occur (see
:func:`npmi_coherence`); top words ranked three ways (see :func:`topic_word_scores`). ``docs/topics.md``
compares the choices on Reuters-8 and IMDB.
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

__all__ = [
    "DEFAULT_TOP_WORDS_BY",
    "DEFAULT_TOP_WORDS_SCALE",
    "NPMI_CONVENTIONS",
    "TOP_WORDS_BY",
    "document_bounds",
    "mean_npmi",
    "npmi_coherence",
    "perplexities",
    "perplexities_from_bounds",
    "perplexity",
    "top_word_document_share",
    "topic_diversity",
    "top_words",
    "top_words_from_scores",
    "topic_word_scores",
]


#: Ways of ranking a topic's words (see :func:`topic_word_scores`).
TOP_WORDS_BY = ("decoder", "standardized", "bias_plus_decoder")
#: Default ranking of :func:`top_words` (see :func:`topic_word_scores` for why it is not the raw decoder).
DEFAULT_TOP_WORDS_BY = "bias_plus_decoder"
#: Default ``scale`` of the ``"bias_plus_decoder"`` ranking.
DEFAULT_TOP_WORDS_SCALE = 2.0
#: Scores of a word pair that never shares a reference document (see :func:`npmi_coherence`).
NPMI_CONVENTIONS = ("strict", "lau")


@torch.no_grad()
def document_bounds(model: NVDM, bow: Any, batch_size: int = 512, n_samples: int = 1, seed: int = 0
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Negative ELBO ``L_d`` (nats) and word count ``N_d`` of every document that has a vocabulary word.

    ``L_d`` is the reconstruction term from ``n_samples`` posterior samples of ``h_TM`` plus the KL term:
    an upper bound on ``-log p(V_d)`` in expectation over the noise.

    Parameters
    ----------
    model : NVDM
    bow : scipy sparse matrix, ndarray or Tensor of shape (n_docs, vocab_size)
    batch_size : int
    n_samples : int, default 1
        Posterior samples averaged in the reconstruction term (Miao et al. evaluate with 1).
    seed : int
        Seed of the noise, so the values are reproducible.

    Returns
    -------
    nll : ndarray of shape (n_kept,), float64
        ``L_d`` in nats, for the documents with at least one vocabulary word, in their order.
    n_words : ndarray of shape (n_kept,), float64
        ``N_d``, their numbers of vocabulary words.

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
    nll = np.empty(keep.size, dtype=np.float64)
    try:
        for start in range(0, keep.size, batch_size):
            rows = _rows(bow, keep[start:start + batch_size]).to(device)
            out = model(rows, sample=True, n_samples=n_samples, generator=generator)
            nll[start:start + rows.shape[0]] = (out.recon + out.kl).double().cpu().numpy()
    finally:
        model.train(was_training)
    return nll, counts[keep]


def perplexities_from_bounds(nll: np.ndarray, n_words: np.ndarray) -> dict[str, float]:
    """Corpus and per-document perplexity from per-document negative log-likelihoods (or bounds on them).

    ``corpus = exp(sum_d L_d / sum_d N_d)`` (Miao's ``print_ppx``: every word weighs the same);
    ``per_document = exp(mean_d (L_d / N_d))`` (Miao et al. 2016, §4.1, and the TopicBERT authors'
    ``print_ppx_perdoc``: every document weighs the same, so short documents count more).

    Parameters
    ----------
    nll : array of shape (n_docs,)
        ``L_d`` in nats.
    n_words : array of shape (n_docs,)
        ``N_d`` > 0.

    Returns
    -------
    dict
        ``{"corpus": float, "per_document": float}``.

    Raises
    ------
    DataFormatError
        If the arrays are empty, differ in length, or a count is not positive.
    """
    nll = np.asarray(nll, dtype=np.float64)
    n_words = np.asarray(n_words, dtype=np.float64)
    if nll.size == 0 or nll.shape != n_words.shape or not np.all(n_words > 0):
        raise DataFormatError(f"perplexities_from_bounds: need equal-length, non-empty arrays with positive "
                              f"word counts; got {nll.shape} and {n_words.shape}")
    return {"corpus": float(math.exp(nll.sum() / n_words.sum())),
            "per_document": float(math.exp(np.mean(nll / n_words)))}


@torch.no_grad()
def perplexities(model: NVDM, bow: Any, batch_size: int = 512, n_samples: int = 1, seed: int = 0
                 ) -> dict[str, float]:
    """Corpus and per-document perplexity of an NVDM on ``bow`` (see :func:`perplexities_from_bounds` and
    :func:`document_bounds`; the same noise gives both).

    Returns
    -------
    dict
        ``{"corpus": float, "per_document": float}`` (>= 1 for a proper model; lower is better).

    Raises
    ------
    DataFormatError
        If no document has a vocabulary word.
    """
    return perplexities_from_bounds(*document_bounds(model, bow, batch_size, n_samples, seed))


@torch.no_grad()
def perplexity(model: NVDM, bow: Any, batch_size: int = 512, n_samples: int = 1, seed: int = 0,
               per_document: bool = False) -> float:
    """Held-out perplexity of an NVDM: corpus-level ``exp(sum_d L_d / sum_d N_d)`` (Miao's ``print_ppx``) by
    default, or per-document ``exp(mean_d L_d / N_d)`` (Miao et al. 2016, §4.1; ``print_ppx_perdoc``).

    ``L_d`` is the negative ELBO of document d (nats; reconstruction from sampled ``h_TM`` + KL) and
    ``N_d`` its number of vocabulary words. Documents without a vocabulary word are left out (their
    ELBO would add nats for no word). :func:`perplexities` returns both values at once.

    Parameters
    ----------
    model : NVDM
    bow : scipy sparse matrix, ndarray or Tensor of shape (n_docs, vocab_size)
    batch_size : int
    n_samples : int, default 1
        Posterior samples averaged in the reconstruction term (Miao et al. evaluate with 1).
    seed : int
        Seed of the noise, so the value is reproducible.
    per_document : bool, default False
        Average the per-word bound over documents instead of over words.

    Returns
    -------
    float
        Perplexity (>= 1 for a proper model; lower is better).

    Raises
    ------
    DataFormatError
        If no document has a vocabulary word.
    """
    values = perplexities(model, bow, batch_size=batch_size, n_samples=n_samples, seed=seed)
    return values["per_document" if per_document else "corpus"]


@torch.no_grad()
def topic_word_scores(model: NVDM, by: str = DEFAULT_TOP_WORDS_BY,
                      scale: float = DEFAULT_TOP_WORDS_SCALE) -> torch.Tensor:
    """Score of every word for every topic, by which :func:`top_words` ranks them.

    - ``"decoder"``: the decoder row ``U_k`` as it is (the TopicBERT authors' ``topic_coherence.py``). The
      decoder's largest weights belong to rare words (the word bias ``c`` makes them rare overall, so
      their weights can be large in every topic), so the top words of every topic tend to be rare names.
    - ``"standardized"``: each word's weights standardised over the topics,
      ``(U_kw - mean_j U_jw) / std_j U_jw``: how much topic k singles word w out, relative to that word's own
      spread. (It did not help on Reuters-8; see ``docs/topics.md``.)
    - ``"bias_plus_decoder"`` (default): ``c_w + scale * U_kw``, the logit of word w when ``h_TM`` is
      ``scale`` along topic k and 0 elsewhere (``scale`` in prior standard deviations), i.e. the ranking by
      ``p(w | h_TM = scale * e_k)``. It is also the relevance of Sievert and Shirley (2014),
      ``lambda log p(w | k) + (1 - lambda) log(p(w | k) / p(w))``, with ``p(w | k) = p(w | h_TM = e_k)``,
      ``p(w) = p(w | h_TM = 0)`` and ``lambda = 1 / scale``. Smaller ``scale`` favours frequent words:
      higher NPMI, less distinct topics.

    Parameters
    ----------
    model : NVDM
    by : {"decoder", "standardized", "bias_plus_decoder"}
    scale : float > 0, default 2.0
        Only for ``"bias_plus_decoder"``.

    Returns
    -------
    Tensor of shape (n_topics, vocab_size), float32, on the CPU

    Raises
    ------
    ConfigError
        If ``by`` is not one of the rankings or ``scale`` is not positive.
    """
    if by not in TOP_WORDS_BY:
        raise ConfigError(f"top_words_by must be one of {', '.join(TOP_WORDS_BY)}, got {by!r}")
    if not scale > 0:
        raise ConfigError(f"topic_word_scores: scale must be > 0, got {scale}")
    matrix = model.topic_word_matrix.detach().float().cpu()  # (K, V)
    if by == "decoder":
        return matrix.clone()
    if by == "standardized":
        if matrix.shape[0] < 2:
            return matrix.clone()
        spread = matrix.std(dim=0, keepdim=True).clamp_min(1e-12)
        return (matrix - matrix.mean(dim=0, keepdim=True)) / spread
    bias = model.decoder.bias.detach().float().cpu()  # (V,)
    return bias.unsqueeze(0) + scale * matrix


def top_words_from_scores(scores: Any, vocab: BowVocabulary, n: int = 10) -> list[list[str]]:
    """The ``n`` highest-scoring words of each row of a topic-word score matrix.

    Parameters
    ----------
    scores : Tensor or ndarray of shape (n_topics, vocab_size)
    vocab : BowVocabulary
    n : int in [1, vocab_size]

    Returns
    -------
    list of n_topics lists of n str

    Raises
    ------
    ConfigError
        If the vocabulary size differs from the number of columns or ``n`` is out of range.
    """
    scores = np.asarray(scores.numpy() if isinstance(scores, torch.Tensor) else scores)
    if scores.ndim != 2 or scores.shape[1] != len(vocab):
        raise ConfigError(f"top_words: the vocabulary has {len(vocab)} words but the topic-word matrix has "
                          f"shape {scores.shape}; pass the vocabulary the model was trained with")
    if not 1 <= n <= len(vocab):
        raise ConfigError(f"top_words: n must be in [1, {len(vocab)}], got {n}")
    order = np.argsort(-scores, axis=1, kind="stable")[:, :n]
    words = vocab.words_ or []
    return [[words[j] for j in row] for row in order]


@torch.no_grad()
def top_words(model: NVDM, vocab: BowVocabulary, n: int = 10, by: str = DEFAULT_TOP_WORDS_BY,
              scale: float = DEFAULT_TOP_WORDS_SCALE) -> list[list[str]]:
    """The ``n`` highest-scoring words of each topic (ranked as :func:`topic_word_scores` says).

    ``by="decoder"`` ranks the raw decoder row ``U_k``, as the TopicBERT authors' ``topic_coherence.py``
    does (the ranking before issue 15, whose top words are mostly rare names); the default
    ``"bias_plus_decoder"`` ranks by ``c + scale * U_k``, which lets frequent words of the topic in.

    Returns
    -------
    list of n_topics lists of n str
        Shape ``(n_topics, n)``.

    Raises
    ------
    ConfigError
        If the vocabulary size differs from the model's, ``n`` is not in [1, vocab_size] or ``by`` is
        unknown.
    """
    if len(vocab) != model.config.vocab_size:
        raise ConfigError(f"top_words: the vocabulary has {len(vocab)} words but the NVDM was built for "
                          f"{model.config.vocab_size}; pass the vocabulary it was trained with")
    return top_words_from_scores(topic_word_scores(model, by=by, scale=scale), vocab, n)


def npmi_coherence(top_words: Sequence[Sequence[str | int]], texts_or_bow: Any,
                   vocab: BowVocabulary | None = None, convention: str = "strict") -> np.ndarray:
    """Topic coherence: mean normalised pointwise mutual information over the pairs of each topic's words,
    with document co-occurrence on a reference corpus (Bouma 2009; Lau, Newman and Baldwin 2014).

    ``NPMI(w_i, w_j) = log(P(w_i, w_j) / (P(w_i) P(w_j))) / -log P(w_i, w_j)``, where ``P(w)`` is the share
    of documents containing w and ``P(w_i, w_j)`` the share containing both (no smoothing). Pairs found in
    every document score 1. A pair that never shares a document has no finite NPMI; the two conventions:

    - ``"strict"`` (default): -1, the limit of NPMI as ``P(w_i, w_j) -> 0`` (Bouma 2009);
    - ``"lau"``: 0, as the scorer of Lau et al. (2014, ``ComputeObservedCoherence.py``, which the TopicBERT
      authors' ``topic_coherence.py`` calls) does.

    On sparse reference corpora many top-word pairs never co-occur (51% on Reuters-8's test set for the
    NVDM's raw decoder ranking), so the two can differ by 0.5; report both, and compare models under the
    same one.

    Parameters
    ----------
    top_words : sequence of n_topics sequences of str (words) or int (vocabulary columns)
    texts_or_bow : sequence of str, or matrix of shape (n_docs, vocab_size)
        The reference corpus: the ``topics`` job and TopicBERT's notes use the training texts by default;
        the TopicBERT authors score against an external corpus, and ``frugaltext topics --npmi-reference
        test`` uses held-out texts. Texts are tokenised with ``vocab``'s analyzer (lower-cased, stop words
        removed), or with the same rules when ``vocab`` is None.
    vocab : BowVocabulary, optional
        Needed to map words to columns when the corpus is a bag-of-words matrix, or columns to words when
        ``top_words`` holds ints and the corpus is texts.
    convention : {"strict", "lau"}, default "strict"
        Score of a pair that never co-occurs: -1 or 0 (see above).

    Returns
    -------
    ndarray of shape (n_topics,), float64
        Coherence of each topic, in [-1, 1]. Topics with fewer than two words score NaN.

    Raises
    ------
    ConfigError
        If a bag-of-words corpus is given with word strings but no ``vocab``, a column is out of range or
        the convention is unknown.
    DataFormatError
        If the corpus is empty.
    """
    if convention not in NPMI_CONVENTIONS:
        raise ConfigError(f"npmi_coherence: convention must be one of {', '.join(NPMI_CONVENTIONS)}, got "
                          f"{convention!r}")
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
                values.append(_npmi(co[i, j], marginal[i], marginal[j], convention))
        if values:
            scores[k] = float(np.mean(values))
    return scores


def _as_word(word: str | int, vocab: BowVocabulary | None) -> str:
    if isinstance(word, str):
        return word
    if vocab is None or vocab.words_ is None:
        raise ConfigError("npmi_coherence: top_words are column numbers; pass vocab= to map them to words")
    return vocab.words_[int(word)]


def _npmi(p_ij: float, p_i: float, p_j: float, convention: str = "strict") -> float:
    if p_ij <= 0.0:
        return 0.0 if convention == "lau" else -1.0
    if p_ij >= 1.0:
        return 1.0
    value = math.log(p_ij / (p_i * p_j)) / -math.log(p_ij)
    return float(min(1.0, max(-1.0, value)))


def mean_npmi(scores: np.ndarray) -> float | None:
    """Mean of per-topic NPMI scores, ignoring NaN (topics with one word); None when there is none."""
    finite = np.asarray(scores, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(finite.mean()) if finite.size else None


def top_word_document_share(top_words: Sequence[Sequence[str]], bow: Any, vocab: BowVocabulary,
                            min_share: float = 0.01) -> float | None:
    """Share of the listed top words (over all topics, with repeats) that occur in at least ``min_share`` of
    the documents of ``bow``: a check that topics are not lists of rare names.

    Parameters
    ----------
    top_words : sequence of n_topics sequences of str
    bow : matrix of shape (n_docs, vocab_size)
        Reference corpus over ``vocab``.
    vocab : BowVocabulary
    min_share : float in (0, 1], default 0.01

    Returns
    -------
    float in [0, 1], or None when no word is listed

    Raises
    ------
    ConfigError
        If a word is not in the vocabulary.
    """
    matrix = sparse.csc_matrix(bow)
    if matrix.shape[0] == 0:
        return None
    doc_share = np.asarray((matrix > 0).sum(axis=0)).ravel() / matrix.shape[0]
    index = vocab.index
    hits, total = 0, 0
    for topic in top_words:
        for word in topic:
            if word not in index:
                raise ConfigError(f"top_word_document_share: word {word!r} is not in the vocabulary")
            hits += int(doc_share[index[word]] >= min_share)
            total += 1
    return hits / total if total else None


def topic_diversity(top_words: Sequence[Sequence[str]]) -> float | None:
    """Share of distinct words among all listed top words (Dieng, Ruiz and Blei 2020): 1 when no word is
    listed twice, low when the same frequent words top every topic. None when no word is listed."""
    words = [w for topic in top_words for w in topic]
    return len(set(words)) / len(words) if words else None
