"""Topic modelling around the NVDM (Miao et al. 2016) that TopicBERT builds on.

Where things live:

- :mod:`frugaltext.topics.vocabulary`: :class:`BowVocabulary` (tokenising, stop words, document-frequency
  filters) and the bag-of-words tensor helpers;
- :mod:`frugaltext.models.nvdm`: the model itself (:class:`~frugaltext.models.nvdm.NVDM`, its config and
  output);
- :mod:`frugaltext.topics.metrics`: perplexity (corpus and per-document), top words per topic (three
  rankings), NPMI coherence (two conventions), topic diversity;
- :mod:`frugaltext.topics.lda`: scikit-learn's LDA as a peer, on the same vocabulary and bounds;
- :mod:`frugaltext.topics.training`: the training loop (:func:`pretrain_nvdm`, :func:`pretrain_topic_model`
  returning a :class:`TopicModelFit`);
- :mod:`frugaltext.topics.job`: the ``frugaltext topics`` job (:func:`train_topics`, :func:`write_topics`,
  :class:`TopicsResult`).

The names below are importable from this package too; they load lazily, so ``import frugaltext.topics``
does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "BOW_VOCABULARY_FILE": "vocabulary",
    "TOKEN_PATTERN": "vocabulary",
    "BowVocabulary": "vocabulary",
    "to_bow_tensor": "vocabulary",
    "DEFAULT_TOP_WORDS_BY": "metrics",
    "NPMI_CONVENTIONS": "metrics",
    "TOP_WORDS_BY": "metrics",
    "document_bounds": "metrics",
    "perplexities": "metrics",
    "perplexities_from_bounds": "metrics",
    "top_word_document_share": "metrics",
    "top_words_from_scores": "metrics",
    "topic_diversity": "metrics",
    "topic_word_scores": "metrics",
    "fit_lda": "lda",
    "lda_document_bounds": "lda",
    "lda_topic_word_scores": "lda",
    "mean_npmi": "metrics",
    "npmi_coherence": "metrics",
    "perplexity": "metrics",
    "top_words": "metrics",
    "PretrainedTopicModel": "training",
    "TopicModelFit": "training",
    "pretrain_nvdm": "training",
    "pretrain_topic_model": "training",
    "TopicsResult": "job",
    "train_topics": "job",
    "write_topics": "job",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'frugaltext.topics' has no attribute {name!r}")
    return getattr(importlib.import_module(f"frugaltext.topics.{home}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
