"""The NVDM training loop: pretrain an NVDM on bags of words (TopicBERT supplementary A.3, step 1).

:func:`pretrain_nvdm` trains a given :class:`~frugaltext.models.nvdm.NVDM` with Adam and early stopping on
held-out perplexity; :func:`pretrain_topic_model` also builds the vocabulary and returns a
:class:`TopicModelFit` (shared by ``topicbert``, ``bert-avg-dtr`` and the ``topics`` job).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import sparse

from frugaltext.errors import ConfigError, DataFormatError
from frugaltext.models.nvdm import NVDM, NVDMConfig
from frugaltext.topics.metrics import perplexities
from frugaltext.topics.vocabulary import BowVocabulary, _rows, _word_counts

__all__ = ["PretrainedTopicModel", "TopicModelFit", "pretrain_nvdm", "pretrain_topic_model"]


def pretrain_nvdm(
    bow_train: Any,
    config: NVDMConfig | None = None,
    *,
    epochs: int = 50,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    bow_valid: Any = None,
    patience: int | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    log: Any = None,
    select_on: str = "per_document",
    progress: bool | None = False,
) -> tuple[NVDM, list[dict[str, float]]]:
    """Pretrain an NVDM on bags of words with Adam (TopicBERT supplementary A.3, step 1).

    Parameters
    ----------
    bow_train : scipy sparse matrix, ndarray or Tensor of shape (n_docs, vocab_size)
        Training word counts. Documents without a vocabulary word are skipped.
    config : NVDMConfig, optional
        Default: ``NVDMConfig(vocab_size=bow_train.shape[1])``.
    epochs : int
        Maximum number of passes over the training documents.
    batch_size : int
        Documents per Adam step (authors: 64).
    learning_rate : float
        Adam learning rate (authors: 1e-3).
    bow_valid : matrix of shape (n_valid, vocab_size), optional
        Held-out documents: their perplexity (corpus and per-document, see
        :func:`~frugaltext.topics.metrics.perplexities`) is computed after each epoch and the weights of the
        epoch with the lowest ``select_on`` one are returned.
    patience : int, optional
        Stop after this many epochs without a lower held-out perplexity (needs ``bow_valid``; the authors
        use 10). None runs all ``epochs``.
    seed : int
        Seed of initialisation, shuffling and sampling.
    device : str or torch.device, optional
        Default CPU.
    log : callable, optional
        Called with each epoch's history row (e.g. ``print``).
    select_on : {"per_document", "corpus"}, default "per_document"
        Held-out perplexity that selects the epoch and drives early stopping: per-document, as the TopicBERT
        authors (``print_ppx_perdoc``), or corpus-level (the choice before issue 15).
    progress : bool or None, default False
        Show a progress bar over the epochs (tqdm, on stderr, with ETA and the last losses); None shows it
        only when stderr is a terminal.

    Returns
    -------
    model : NVDM
        In eval mode.
    history : list of dict
        One row per epoch: ``epoch`` (1-based), ``train_loss`` (mean nats per document), ``duration_s``,
        and when ``bow_valid`` is given ``valid_perplexity`` (corpus-level) and
        ``valid_perplexity_per_document``.

    Raises
    ------
    ConfigError
        If a setting is invalid or ``config.vocab_size`` differs from the number of columns.
    DataFormatError
        If no training document has a vocabulary word.
    """
    n_cols = int(bow_train.shape[1])
    config = config if config is not None else NVDMConfig(vocab_size=n_cols)
    if config.vocab_size != n_cols:
        raise ConfigError(f"pretrain_nvdm: config.vocab_size={config.vocab_size} but the bag-of-words matrix "
                          f"has {n_cols} columns")
    if epochs < 1 or batch_size < 1 or not learning_rate > 0:
        raise ConfigError(f"pretrain_nvdm: epochs ({epochs}) and batch_size ({batch_size}) must be >= 1 and "
                          f"learning_rate ({learning_rate}) > 0")
    if select_on not in ("per_document", "corpus"):
        raise ConfigError(f"pretrain_nvdm: select_on must be 'per_document' or 'corpus', got {select_on!r}")
    if patience is not None and patience < 1:
        raise ConfigError(f"pretrain_nvdm: patience must be >= 1 or None, got {patience}")
    if bow_valid is not None and int(bow_valid.shape[1]) != n_cols:
        raise ConfigError(f"pretrain_nvdm: bow_valid has {bow_valid.shape[1]} columns, bow_train {n_cols}")
    if sparse.issparse(bow_train):
        bow_train = sparse.csr_matrix(bow_train, dtype=np.float32)
    docs = np.flatnonzero(_word_counts(bow_train) > 0)
    if docs.size == 0:
        raise DataFormatError("pretrain_nvdm: no training document contains a vocabulary word")
    has_valid = bow_valid is not None and np.any(_word_counts(bow_valid) > 0)
    device = torch.device(device) if device is not None else torch.device("cpu")

    torch.manual_seed(seed)
    model = NVDM(config).to(device)
    # the fused kernel: one pass over all parameters per step (6x faster on CPU at batch 64, same updates)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate, fused=device.type in ("cpu", "cuda"))
    rng = np.random.default_rng(seed)
    history: list[dict[str, float]] = []
    best_ppl, best_state, waited = math.inf, None, 0
    bar = _progress_bar(epochs, "NVDM epochs", progress)
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.train()
        order = rng.permutation(docs)
        total, n_seen = 0.0, 0
        for i in range(0, order.size, batch_size):
            rows = _rows(bow_train, order[i:i + batch_size]).to(device)
            out = model(rows)
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            optimizer.step()
            total += float(out.loss.detach()) * rows.shape[0]
            n_seen += rows.shape[0]
        row: dict[str, float] = {"epoch": epoch, "train_loss": total / n_seen}
        if has_valid:
            values = perplexities(model, bow_valid, seed=seed)
            row["valid_perplexity"] = values["corpus"]
            row["valid_perplexity_per_document"] = values["per_document"]
            ppl = values[select_on]
            if ppl < best_ppl:
                best_ppl, best_state, waited = ppl, copy.deepcopy(model.state_dict()), 0
            else:
                waited += 1
        row["duration_s"] = time.perf_counter() - start
        history.append(row)
        if log is not None:
            log(row)
        if bar is not None:
            bar.update(1)
            bar.set_postfix({k: f"{row[k]:.1f}" for k in ("train_loss", "valid_perplexity_per_document")
                             if k in row}, refresh=False)
        if has_valid and patience is not None and waited >= patience:
            break
    if bar is not None:
        bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return model, history


@dataclass
class TopicModelFit:
    """What :func:`pretrain_topic_model` produced.

    Attributes
    ----------
    vocab : BowVocabulary
        Built from the training texts.
    model : NVDM
        Pretrained, in eval mode.
    bow_train : scipy.sparse.csr_matrix of shape (n_train, vocab_size)
    bow_valid : scipy.sparse.csr_matrix of shape (n_valid, vocab_size) or None
    history : list of dict
        Per-epoch log of :func:`pretrain_nvdm`.
    perplexity : float or None
        Held-out corpus-level perplexity of the returned model (None without held-out words).
    duration_s : float
        Wall time of vocabulary building and pretraining, in seconds.
    perplexity_per_document : float or None
        Held-out per-document perplexity (the same samples as ``perplexity``; None without held-out words).
    """

    vocab: BowVocabulary
    model: NVDM
    bow_train: sparse.csr_matrix
    bow_valid: sparse.csr_matrix | None
    history: list[dict[str, float]]
    perplexity: float | None
    duration_s: float
    perplexity_per_document: float | None = None


def pretrain_topic_model(
    train_texts: Sequence[str],
    valid_texts: Sequence[str] = (),
    *,
    min_df: int = 5,
    max_df: float = 1.0,
    max_size: int | None = 5000,
    n_topics: int = 100,
    hidden_size: int = 256,
    activation: str = "sigmoid",
    n_samples: int = 1,
    epochs: int = 50,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    patience: int | None = 5,
    seed: int = 0,
    log: Any = None,
    select_on: str = "per_document",
    progress: bool | None = False,
) -> TopicModelFit:
    """Build the vocabulary from ``train_texts`` and pretrain an NVDM on them, with early stopping on the
    perplexity of ``valid_texts`` when there are any (TopicBERT supplementary A.3, step 1). Shared by
    ``topicbert``, ``bert-avg-dtr`` and :func:`train_topics`.

    Parameters
    ----------
    train_texts : sequence of str
    valid_texts : sequence of str, optional
        Held-out texts (the validation split); empty: no early stopping, ``perplexity`` None.
    min_df, max_df, max_size : vocabulary filters (see :class:`BowVocabulary`).
    n_topics, hidden_size, activation, n_samples : NVDM shape (see :class:`NVDMConfig`).
    epochs, batch_size, learning_rate, patience, seed, log, select_on, progress : pretraining (see
        :func:`pretrain_nvdm`).

    Returns
    -------
    TopicModelFit

    Raises
    ------
    ConfigError, DataFormatError
        As :class:`BowVocabulary`, :class:`NVDMConfig` and :func:`pretrain_nvdm`.
    """
    start = time.perf_counter()
    vocab = BowVocabulary(min_df=min_df, max_df=max_df, max_size=max_size).fit(train_texts)
    bow_train = vocab.transform(train_texts)
    bow_valid = vocab.transform(list(valid_texts)) if len(valid_texts) else None
    has_valid = bow_valid is not None and bow_valid.nnz > 0
    config = NVDMConfig(vocab_size=len(vocab), hidden_size=hidden_size, n_topics=n_topics,
                        activation=activation, n_samples=n_samples)
    model, history = pretrain_nvdm(bow_train, config, epochs=epochs, batch_size=batch_size,
                                   learning_rate=learning_rate, bow_valid=bow_valid if has_valid else None,
                                   patience=patience if has_valid else None, seed=seed, log=log,
                                   select_on=select_on, progress=progress)
    ppl = perplexities(model, bow_valid, seed=seed) if has_valid else {}
    duration_s = time.perf_counter() - start
    return TopicModelFit(vocab=vocab, model=model, bow_train=bow_train, bow_valid=bow_valid,
                         history=history, perplexity=ppl.get("corpus"), duration_s=duration_s,
                         perplexity_per_document=ppl.get("per_document"))


#: Old name of :class:`TopicModelFit` (it is a result record, not a model); kept so old code keeps working.
PretrainedTopicModel = TopicModelFit


def _progress_bar(total: int, desc: str, progress: bool | None):
    """A tqdm bar on stderr (None when ``progress`` is False; tqdm's own terminal check when None)."""
    if progress is False:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="epoch", disable=None if progress is None else False,
                dynamic_ncols=True)
