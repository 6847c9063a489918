"""The ``topics`` job: train an NVDM topic model on a corpus and write its topics (``frugaltext topics``)."""

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
from frugaltext.topics.metrics import mean_npmi, npmi_coherence, top_words
from frugaltext.topics.training import pretrain_topic_model
from frugaltext.topics.vocabulary import BOW_VOCABULARY_FILE, BowVocabulary, _check_texts

__all__ = ["TopicsResult", "train_topics", "write_topics"]


@dataclass
class TopicsResult:
    """What :func:`train_topics` produced.

    Attributes
    ----------
    topics : list of n_topics lists of str
        Top words of each topic.
    npmi : ndarray of shape (n_topics,)
        Coherence of each topic on the training texts (document co-occurrence NPMI).
    npmi_mean : float or None
        Mean over the topics (None when no topic has two words).
    perplexity : float or None
        Held-out perplexity (None when there was no held-out text).
    model : NVDM
    vocab : BowVocabulary
    history : list of dict
        Per-epoch pretraining log (see :func:`pretrain_nvdm`).
    duration_s : float
        Wall time of vocabulary building and training, in seconds.
    files : dict of str to Path
        ``topics_txt``, ``topics_json``, ``model_dir`` when ``output_dir`` was given.
    """

    topics: list[list[str]]
    npmi: np.ndarray
    npmi_mean: float | None
    perplexity: float | None
    model: NVDM
    vocab: BowVocabulary
    history: list[dict[str, float]]
    duration_s: float
    files: dict[str, Path] = field(default_factory=dict)


def train_topics(
    data: Any,
    n_topics: int = 100,
    output_dir: str | Path | None = None,
    *,
    min_df: int = 5,
    max_df: float = 1.0,
    max_size: int | None = 5000,
    hidden_size: int = 256,
    activation: str = "sigmoid",
    n_samples: int = 1,
    epochs: int = 50,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    patience: int | None = 5,
    n_top_words: int = 10,
    validation_fraction: float = 0.1,
    seed: int = 0,
    log: Any = None,
) -> TopicsResult:
    """Train an NVDM topic model on a corpus and write its topics (the library side of ``frugaltext topics``).

    Builds the vocabulary from the training texts (:class:`BowVocabulary`), pretrains the NVDM with early
    stopping on held-out perplexity (:func:`pretrain_nvdm`), scores each topic's top words by NPMI on the
    training texts (:func:`npmi_coherence`) and, when ``output_dir`` is given, writes:

    - ``topics.txt``: one line per topic, ``topic 7 (npmi 0.213): oil crude barrel ...``;
    - ``topics.json``: ``n_topics``, ``vocab_size``, ``perplexity``, ``npmi_mean``, settings, history and
      ``topics`` (a list of ``{"topic": k, "words": [...], "npmi": x}``, k 1-based);
    - ``nvdm/``: the model (``config.json``, ``model.safetensors``) and ``bow_vocabulary.json``, loadable with
      ``NVDM.from_pretrained`` and ``BowVocabulary.load``.

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
    min_df, max_df, max_size : vocabulary filters (see :class:`BowVocabulary`).
    hidden_size, activation, n_samples : NVDM settings (see :class:`NVDMConfig`).
    epochs, batch_size, learning_rate, patience : pretraining (see :func:`pretrain_nvdm`).
    n_top_words : int
        Words listed (and scored) per topic.
    validation_fraction : float in [0, 1)
        Share of a plain list of texts held out for perplexity and early stopping (0: none).
    seed : int
    log : callable, optional
        Receives each epoch's history row.

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
    if hasattr(data, "train") and hasattr(data, "validation"):
        train_texts = list(data.train.texts)
        valid_texts = list(data.validation.texts) if data.validation is not None else []
    else:
        texts = _check_texts(data, "train_topics")
        if not 0.0 <= validation_fraction < 1.0:
            raise ConfigError(f"train_topics: validation_fraction must be in [0, 1), got "
                              f"{validation_fraction}")
        order = np.random.default_rng(seed).permutation(len(texts))
        n_valid = int(round(validation_fraction * len(texts))) if len(texts) > 1 else 0
        valid_texts = [texts[i] for i in sorted(order[:n_valid])]
        train_texts = [texts[i] for i in sorted(order[n_valid:])]
    pretrained = pretrain_topic_model(train_texts, valid_texts, min_df=min_df, max_df=max_df,
                                      max_size=max_size, n_topics=n_topics, hidden_size=hidden_size,
                                      activation=activation, n_samples=n_samples, epochs=epochs,
                                      batch_size=batch_size, learning_rate=learning_rate, patience=patience,
                                      seed=seed, log=log)
    model, vocab, bow_train = pretrained.model, pretrained.vocab, pretrained.bow_train
    history, ppl = pretrained.history, pretrained.perplexity
    topics = top_words(model, vocab, n=min(n_top_words, len(vocab)))
    scores = npmi_coherence(topics, bow_train, vocab)
    npmi_mean = mean_npmi(scores)
    duration_s = time.perf_counter() - start
    result = TopicsResult(topics=topics, npmi=scores, npmi_mean=npmi_mean, perplexity=ppl, model=model,
                          vocab=vocab, history=history, duration_s=duration_s)
    if output_dir is not None:
        result.files = write_topics(result, output_dir, settings={
            "min_df": min_df, "max_df": max_df, "max_size": max_size, "hidden_size": hidden_size,
            "activation": activation, "n_samples": n_samples, "epochs": epochs, "batch_size": batch_size,
            "learning_rate": learning_rate, "patience": patience, "n_top_words": n_top_words, "seed": seed,
            "n_train_documents": len(train_texts), "n_valid_documents": len(valid_texts)})
    return result


def write_topics(result: TopicsResult, output_dir: str | Path, settings: dict[str, Any] | None = None
                 ) -> dict[str, Path]:
    """Write ``topics.txt``, ``topics.json`` and ``nvdm/`` (model + vocabulary) for a :class:`TopicsResult`.

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
    payload = {
        "n_topics": len(result.topics),
        "vocab_size": len(result.vocab),
        "perplexity": result.perplexity,
        "npmi_mean": result.npmi_mean,
        "duration_s": result.duration_s,
        "settings": settings or {},
        "history": result.history,
        "topics": [{"topic": k + 1, "words": words, "npmi": None if math.isnan(score) else float(score)}
                   for k, (words, score) in enumerate(zip(result.topics, result.npmi, strict=True))],
    }
    atomic_write_text(output_dir / "topics.json", json.dumps(payload, indent=2))
    model_dir = output_dir / "nvdm"
    result.model.save_pretrained(model_dir)
    result.vocab.save(model_dir / BOW_VOCABULARY_FILE)
    return {"topics_txt": output_dir / "topics.txt", "topics_json": output_dir / "topics.json",
            "model_dir": model_dir}
