"""The ``topics`` job: train an NVDM (or LDA) topic model on a corpus and write its topics
(``frugaltext topics``)."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from frugaltext.errors import ConfigError
from frugaltext.fileio import atomic_write_text
from frugaltext.models.nvdm import NVDM
from frugaltext.topics.metrics import (
    DEFAULT_TOP_WORDS_BY,
    DEFAULT_TOP_WORDS_SCALE,
    TOP_WORDS_BY,
    mean_npmi,
    npmi_coherence,
    perplexities_from_bounds,
    top_word_document_share,
    top_words,
    top_words_from_scores,
    topic_diversity,
)
from frugaltext.topics.training import pretrain_topic_model
from frugaltext.topics.vocabulary import BOW_VOCABULARY_FILE, BowVocabulary, _check_texts

__all__ = ["NPMI_REFERENCES", "TOPIC_MODELS", "TopicsResult", "train_topics", "write_topics"]


#: Topic models the ``topics`` job can train.
TOPIC_MODELS = ("nvdm", "lda")
#: Reference corpora of the NPMI (see :func:`train_topics`).
NPMI_REFERENCES = ("train", "validation", "test")
#: Epochs and batch size of each model when not given.
_MODEL_DEFAULTS = {"nvdm": {"epochs": 20, "batch_size": 64}, "lda": {"epochs": 10, "batch_size": 256}}


@dataclass
class TopicsResult:
    """What :func:`train_topics` produced.

    Attributes
    ----------
    topics : list of n_topics lists of str
        Top words of each topic.
    npmi : ndarray of shape (n_topics,)
        Coherence of each topic (document co-occurrence NPMI on the reference corpus), strict convention (a
        pair that never co-occurs scores -1): the headline.
    npmi_mean : float or None
        Mean over the topics (None when no topic has two words), strict convention.
    perplexity : float or None
        Held-out corpus-level perplexity ``exp(sum L_d / sum N_d)`` (None when there was no held-out text).
    model : NVDM or sklearn.decomposition.LatentDirichletAllocation
    vocab : BowVocabulary
    history : list of dict
        Per-epoch training log (see :func:`pretrain_nvdm`, :func:`~frugaltext.topics.lda.fit_lda`).
    duration_s : float
        Wall time of vocabulary building, training and scoring, in seconds.
    files : dict of str to Path
        ``topics_txt``, ``topics_json``, ``model_dir`` when ``output_dir`` was given.
    npmi_lau : ndarray of shape (n_topics,) or None
        The same NPMI under Lau et al.'s convention (a pair that never co-occurs scores 0).
    npmi_mean_lau : float or None
    perplexity_per_document : float or None
        Held-out per-document perplexity ``exp(mean_d L_d / N_d)``.
    model_name : {"nvdm", "lda"}
    npmi_reference : str
        The corpus the NPMI counted co-occurrences in (``train``, ``validation`` or ``test``).
    top_word_share : float or None
        Share of the listed top words that occur in at least 1% of the reference documents.
    extra : dict
        Other figures: ``sklearn_perplexity`` for LDA (scikit-learn's own bound, not comparable), the
        ranking of the NVDM's top words, the numbers of documents.
    """

    topics: list[list[str]]
    npmi: np.ndarray
    npmi_mean: float | None
    perplexity: float | None
    model: Any
    vocab: BowVocabulary
    history: list[dict[str, float]]
    duration_s: float
    files: dict[str, Path] = field(default_factory=dict)
    npmi_lau: np.ndarray | None = None
    npmi_mean_lau: float | None = None
    perplexity_per_document: float | None = None
    model_name: str = "nvdm"
    npmi_reference: str = "train"
    top_word_share: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _splits(data: Any, validation_fraction: float, seed: int) -> tuple[list[str], list[str], list[str]]:
    """(train, validation, test) texts of a dataset or of a plain list split at random (test empty)."""
    if hasattr(data, "train") and hasattr(data, "validation"):
        valid = list(data.validation.texts) if data.validation is not None else []
        test = list(data.test.texts) if getattr(data, "test", None) is not None else []
        return list(data.train.texts), valid, test
    texts = _check_texts(data, "train_topics")
    if not 0.0 <= validation_fraction < 1.0:
        raise ConfigError(f"train_topics: validation_fraction must be in [0, 1), got {validation_fraction}")
    order = np.random.default_rng(seed).permutation(len(texts))
    n_valid = int(round(validation_fraction * len(texts))) if len(texts) > 1 else 0
    return ([texts[i] for i in sorted(order[n_valid:])], [texts[i] for i in sorted(order[:n_valid])], [])


def _subset(texts: list[str], limit: int | None, seed: int, name: str) -> list[str]:
    if limit is None or len(texts) <= limit:
        return texts
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigError(f"train_topics: {name} must be a positive integer or None, got {limit!r}")
    keep = np.sort(np.random.default_rng(seed).permutation(len(texts))[:limit])
    return [texts[i] for i in keep]


def train_topics(
    data: Any,
    n_topics: int = 100,
    output_dir: str | Path | None = None,
    *,
    model: str = "nvdm",
    min_df: int = 5,
    max_df: float = 1.0,
    max_size: int | None = 5000,
    hidden_size: int = 256,
    activation: str = "sigmoid",
    n_samples: int = 1,
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float = 1e-3,
    patience: int | None = 5,
    n_top_words: int = 10,
    top_words_by: str = DEFAULT_TOP_WORDS_BY,
    top_words_scale: float = DEFAULT_TOP_WORDS_SCALE,
    npmi_reference: str = "train",
    max_train_documents: int | None = None,
    validation_fraction: float = 0.1,
    seed: int = 0,
    log: Any = None,
    progress: bool | None = None,
) -> TopicsResult:
    """Train an NVDM (or LDA) topic model on a corpus and write its topics (the library side of
    ``frugaltext topics``).

    Builds the vocabulary from the training texts (:class:`BowVocabulary`); trains the NVDM with early
    stopping on held-out per-document perplexity (:func:`pretrain_nvdm`), or scikit-learn's LDA on the same
    vocabulary (:func:`~frugaltext.topics.lda.fit_lda`); computes both models' held-out perplexity the same
    way (corpus and per-document, from per-document bounds); scores each topic's top words by NPMI on the
    reference corpus under both conventions (:func:`npmi_coherence`) and, when ``output_dir`` is given,
    writes:

    - ``topics.txt``: one line per topic, ``topic 7 (npmi 0.213): oil crude barrel ...`` (strict NPMI);
    - ``topics.json``: ``model``, ``n_topics``, ``vocab_size``, ``perplexity``, ``perplexity_per_document``,
      ``npmi_mean`` (strict), ``npmi_mean_lau``, ``npmi_reference``, ``top_word_share``, settings, history
      and ``topics`` (a list of ``{"topic": k, "words": [...], "npmi": x, "npmi_lau": y}``, k 1-based);
    - ``nvdm/``: the NVDM (``config.json``, ``model.safetensors``) and ``bow_vocabulary.json``, loadable with
      ``NVDM.from_pretrained`` and ``BowVocabulary.load``; for LDA ``lda/``: ``lda.npz`` (``components``,
      ``doc_topic_prior``, ``topic_word_prior``) and ``bow_vocabulary.json``.

    Parameters
    ----------
    data : TextClassificationData or sequence of str
        With a ``TextClassificationData``, the training split builds the model and a non-empty validation
        split gives the held-out perplexity; a plain list of texts is split at random, ``validation_fraction``
        held out.
    n_topics : int
        K.
    output_dir : path, optional
        Where to write the files above (created if needed).
    model : {"nvdm", "lda"}
        The topic model.
    min_df, max_df, max_size : vocabulary filters (see :class:`BowVocabulary`). Corpora with e-mail headers
        (``organization``, ``lines``, ``nntp``, ``posting``, ``host`` in most documents) give header topics:
        ``max_df=0.5`` drops every word found in more than half of the training documents.
    hidden_size, activation, n_samples : NVDM settings (see :class:`NVDMConfig`).
    epochs : int, optional
        NVDM: maximum epochs (default 20, early stopping with ``patience``; TopicBERT's pretraining runs up
        to 50), LDA: passes (default 10).
    batch_size : int, optional
        Documents per update (NVDM default 64; LDA default 256).
    learning_rate, patience : NVDM pretraining (see :func:`pretrain_nvdm`).
    n_top_words : int
        Words listed (and scored) per topic.
    top_words_by : {"decoder", "standardized", "bias_plus_decoder"}
        Ranking of the NVDM's words (see :func:`~frugaltext.topics.metrics.topic_word_scores`); ``"decoder"``
        is the TopicBERT authors' ranking. LDA ranks by topic-word probability.
    top_words_scale : float
        ``scale`` of the ``"bias_plus_decoder"`` ranking.
    npmi_reference : {"train", "validation", "test"}
        Corpus whose document co-occurrences the NPMI counts: the training texts (default, as TopicBERT's
        notes), or held-out texts (the validation split, or the held-out part of a plain list; the test
        split of a dataset), which do not reward memorised co-occurrences. Falls back to the training texts
        when the split is empty (recorded in ``npmi_reference``).
    max_train_documents : int, optional
        Train on a random subset of this many training documents (seeded).
    validation_fraction : float in [0, 1)
        Share of a plain list of texts held out for perplexity and early stopping (0: none).
    seed : int
    log : callable, optional
        Receives each epoch's history row.
    progress : bool or None, default None
        Progress bar over the epochs on stderr (None: only when stderr is a terminal).

    Returns
    -------
    TopicsResult

    Raises
    ------
    ConfigError
        For invalid settings (see the functions above).
    DataFormatError
        If there are no texts.
    """
    start = time.perf_counter()
    if model not in TOPIC_MODELS:
        raise ConfigError(f"train_topics: model must be one of {', '.join(TOPIC_MODELS)}, got {model!r}")
    if npmi_reference not in NPMI_REFERENCES:
        raise ConfigError(f"train_topics: npmi_reference must be one of {', '.join(NPMI_REFERENCES)}, got "
                          f"{npmi_reference!r}")
    if top_words_by not in TOP_WORDS_BY:
        raise ConfigError(f"train_topics: top_words_by must be one of {', '.join(TOP_WORDS_BY)}, got "
                          f"{top_words_by!r}")
    epochs = _MODEL_DEFAULTS[model]["epochs"] if epochs is None else epochs
    batch_size = _MODEL_DEFAULTS[model]["batch_size"] if batch_size is None else batch_size
    train_texts, valid_texts, test_texts = _splits(data, validation_fraction, seed)
    train_texts = _subset(train_texts, max_train_documents, seed, "max_train_documents")
    extra: dict[str, Any] = {}
    if model == "nvdm":
        pretrained = pretrain_topic_model(train_texts, valid_texts, min_df=min_df, max_df=max_df,
                                          max_size=max_size, n_topics=n_topics, hidden_size=hidden_size,
                                          activation=activation, n_samples=n_samples, epochs=epochs,
                                          batch_size=batch_size, learning_rate=learning_rate,
                                          patience=patience, seed=seed, log=log, progress=progress)
        fitted, vocab, bow_train = pretrained.model, pretrained.vocab, pretrained.bow_train
        history = pretrained.history
        ppl = {"corpus": pretrained.perplexity, "per_document": pretrained.perplexity_per_document}
        topics = top_words(fitted, vocab, n=min(n_top_words, len(vocab)), by=top_words_by,
                           scale=top_words_scale)
        extra["top_words_by"] = top_words_by
    else:
        from frugaltext.topics.lda import fit_lda, lda_document_bounds, lda_topic_word_scores

        vocab = BowVocabulary(min_df=min_df, max_df=max_df, max_size=max_size).fit(train_texts)
        bow_train = vocab.transform(train_texts)
        fitted, history = fit_lda(bow_train, n_topics, epochs=epochs, batch_size=batch_size, seed=seed,
                                  log=log, progress=progress)
        bow_valid = vocab.transform(valid_texts) if valid_texts else None
        ppl = {"corpus": None, "per_document": None}
        if bow_valid is not None and bow_valid.nnz > 0:
            ppl = perplexities_from_bounds(*lda_document_bounds(fitted, bow_valid))
            kept = bow_valid[np.flatnonzero(np.asarray(bow_valid.sum(axis=1)).ravel() > 0)]
            extra["sklearn_perplexity"] = float(fitted.perplexity(kept.astype(np.float64)))
        topics = top_words_from_scores(lda_topic_word_scores(fitted), vocab, n=min(n_top_words, len(vocab)))
        extra["top_words_by"] = "topic_word_probability"
    references = {"train": train_texts, "validation": valid_texts, "test": test_texts}
    reference = npmi_reference if references[npmi_reference] else "train"
    bow_reference = bow_train if reference == "train" else vocab.transform(references[reference])
    scores = npmi_coherence(topics, bow_reference, vocab)
    scores_lau = npmi_coherence(topics, bow_reference, vocab, convention="lau")
    extra.update(n_train_documents=len(train_texts), n_valid_documents=len(valid_texts),
                 n_reference_documents=int(bow_reference.shape[0]))
    result = TopicsResult(topics=topics, npmi=scores, npmi_mean=mean_npmi(scores), perplexity=ppl["corpus"],
                          model=fitted, vocab=vocab, history=history, duration_s=time.perf_counter() - start,
                          npmi_lau=scores_lau, npmi_mean_lau=mean_npmi(scores_lau),
                          perplexity_per_document=ppl["per_document"], model_name=model,
                          npmi_reference=reference,
                          top_word_share=top_word_document_share(topics, bow_reference, vocab), extra=extra)
    extra["topic_diversity"] = topic_diversity(topics)
    if output_dir is not None:
        result.files = write_topics(result, output_dir, settings={
            "model": model, "min_df": min_df, "max_df": max_df, "max_size": max_size,
            "hidden_size": hidden_size, "activation": activation, "n_samples": n_samples, "epochs": epochs,
            "batch_size": batch_size, "learning_rate": learning_rate, "patience": patience,
            "n_top_words": n_top_words, "top_words_by": top_words_by, "top_words_scale": top_words_scale,
            "npmi_reference": npmi_reference, "max_train_documents": max_train_documents, "seed": seed,
            "n_train_documents": len(train_texts), "n_valid_documents": len(valid_texts)})
    return result


def write_topics(result: TopicsResult, output_dir: str | Path, settings: dict[str, Any] | None = None
                 ) -> dict[str, Path]:
    """Write ``topics.txt``, ``topics.json`` and the model (``nvdm/`` or ``lda/``, with the vocabulary) of a
    :class:`TopicsResult` (see :func:`train_topics` for their contents).

    Returns
    -------
    dict of str to Path
        ``topics_txt``, ``topics_json``, ``model_dir``.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"topic {k + 1} (npmi {score:.3f}): {' '.join(words)}"
             for k, (words, score) in enumerate(zip(result.topics, result.npmi, strict=True))]
    atomic_write_text(output_dir / "topics.txt", "\n".join(lines) + "\n")
    lau = result.npmi_lau if result.npmi_lau is not None else [math.nan] * len(result.topics)
    payload = {
        "model": result.model_name,
        "n_topics": len(result.topics),
        "vocab_size": len(result.vocab),
        "perplexity": result.perplexity,
        "perplexity_per_document": result.perplexity_per_document,
        "npmi_mean": result.npmi_mean,
        "npmi_mean_lau": result.npmi_mean_lau,
        "npmi_convention": "strict: a pair that never co-occurs scores -1 (npmi, the headline); lau: 0",
        "npmi_reference": result.npmi_reference,
        "top_word_share": result.top_word_share,
        **result.extra,
        "duration_s": result.duration_s,
        "settings": settings or {},
        "history": result.history,
        "topics": [{"topic": k + 1, "words": words, "npmi": _finite(score), "npmi_lau": _finite(score_lau)}
                   for k, (words, score, score_lau) in enumerate(zip(result.topics, result.npmi, lau,
                                                                       strict=True))],
    }
    atomic_write_text(output_dir / "topics.json", json.dumps(payload, indent=2))
    if isinstance(result.model, NVDM):
        model_dir = output_dir / "nvdm"
        result.model.save_pretrained(model_dir)
    else:
        model_dir = output_dir / "lda"
        model_dir.mkdir(parents=True, exist_ok=True)
        lda = result.model
        np.savez(model_dir / "lda.npz", components=lda.components_, doc_topic_prior=lda.doc_topic_prior_,
                 topic_word_prior=lda.topic_word_prior_)
    result.vocab.save(model_dir / BOW_VOCABULARY_FILE)
    return {"topics_txt": output_dir / "topics.txt", "topics_json": output_dir / "topics.json",
            "model_dir": model_dir}


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)
