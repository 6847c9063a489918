"""Bag-of-words vocabulary and the Neural Variational Document Model (NVDM) that TopicBERT builds on.

NVDM (Miao, Yu and Blunsom 2016, "Neural variational inference for text processing", §3.1) is a variational
auto-encoder of a document's bag of words: an MLP encoder gives the mean and log-variance of a Gaussian
posterior over a K-dimensional document representation ``h_TM`` (TopicBERT's "document-topic representation",
DTR), and a softmax decoder over the vocabulary reconstructs the words. TopicBERT (Chaudhary et al. 2020,
§2.1) pretrains it and then fine-tunes it jointly with BERT (:mod:`frugaltext.models.topicbert`).

Choices where the papers leave room, with their sources:

- **Vocabulary** (paper, supplementary A.2): tokenise, lower-case, remove English stop words, drop rare
  words. We use scikit-learn's ``ENGLISH_STOP_WORDS`` (NLTK's list cannot be downloaded here, see ENV.md),
  keep tokens of two or more letters (the authors' preprocessing also drops symbols and numbers), and drop
  words found in fewer than ``min_df`` training documents (the paper's F_min counts occurrences; document
  frequency is less sensitive to one long document repeating a word). ``max_size`` keeps the most frequent
  words (the paper's vocabularies have Z = 4,138 to 6,823 words).
- **Encoder**: one hidden layer of ``hidden_size`` units with a sigmoid (the authors' ``model_NVDM.py``:
  ``utils.mlp(self.x, [self.n_hidden], tf.nn.sigmoid)``; paper Table 5: H = 256, g = sigmoid). The
  log-variance layer starts at zero (so sigma = 1), as the authors' ``logsigm`` layer does.
- **Samples**: the reconstruction term is averaged over ``n_samples`` reparameterised samples and
  ``h_TM`` is the mean of those samples during training (authors' code, ``n_sample > 1`` branch). At eval
  time (``model.eval()``) ``h_TM`` is the posterior mean ``mu``, so predictions are deterministic; the
  authors sample at test time too.
- **Optimiser**: plain Adam on all parameters at once (authors' pretraining: learning rate 1e-3, batch 64);
  Miao et al. alternate encoder and decoder updates, which we do not.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import sparse
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

from frugaltext.errors import ConfigError, DataFormatError, ModelLoadError

__all__ = [
    "BowVocabulary",
    "NVDM",
    "NVDMConfig",
    "NVDMOutput",
    "PretrainedTopicModel",
    "TopicsResult",
    "mean_npmi",
    "npmi_coherence",
    "perplexity",
    "pretrain_nvdm",
    "pretrain_topic_model",
    "to_bow_tensor",
    "top_words",
    "train_topics",
]

BOW_VOCABULARY_FILE = "bow_vocabulary.json"
#: Tokens of two or more letters (no digits, no underscore); the text is lower-cased first.
TOKEN_PATTERN = r"(?u)\b[^\W\d_]{2,}\b"
_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "softplus": nn.Softplus}


# ----------------------------------------------------------------------------------------------------
# vocabulary
# ----------------------------------------------------------------------------------------------------
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
        from frugaltext.methods.base import atomic_write_text

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


# ----------------------------------------------------------------------------------------------------
# model
# ----------------------------------------------------------------------------------------------------
class NVDMConfig(PretrainedConfig):
    """Configuration of :class:`NVDM` (Miao et al. 2016; TopicBERT, Chaudhary et al. 2020, Table 5).

    Parameters
    ----------
    vocab_size : int, default 2000
        Z, the number of words of the bag-of-words vocabulary.
    hidden_size : int, default 256
        H, units of the encoder MLP (paper Table 5: 256).
    n_topics : int, default 100
        K, dimension of ``h_TM`` (paper Table 5: 100).
    activation : {"sigmoid", "tanh", "relu", "softplus"}, default "sigmoid"
        Non-linearity g of the encoder (paper Table 5: sigmoid).
    n_samples : int, default 1
        Reparameterised samples of ``h_TM`` per document during training (paper Table 5 "sampling
        frequency": 3 or 10; Miao et al. 2016 train with 1). The reconstruction loss and ``h_TM`` are
        averaged over the samples.

    Raises
    ------
    ConfigError
        If a size is not a positive integer or the activation is unknown.
    """

    model_type = "nvdm"

    def __init__(self, vocab_size: int = 2000, hidden_size: int = 256, n_topics: int = 100,
                 activation: str = "sigmoid", n_samples: int = 1, **kwargs: Any) -> None:
        for name, value in (("vocab_size", vocab_size), ("hidden_size", hidden_size), ("n_topics", n_topics),
                            ("n_samples", n_samples)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ConfigError(f"NVDMConfig: {name} must be a positive integer, got {value!r}")
        if activation not in _ACTIVATIONS:
            raise ConfigError(f"NVDMConfig: activation must be one of {sorted(_ACTIVATIONS)}, got "
                              f"{activation!r}")
        self.vocab_size = int(vocab_size)
        self.hidden_size = int(hidden_size)
        self.n_topics = int(n_topics)
        self.activation = activation
        self.n_samples = int(n_samples)
        super().__init__(**kwargs)


@dataclass
class NVDMOutput(ModelOutput):
    """Output of :meth:`NVDM.forward`.

    Attributes
    ----------
    loss : Tensor of shape (), optional
        Batch mean of ``recon + kl``: the negative evidence lower bound per document, in nats.
    recon : Tensor of shape (batch_size,), optional
        Reconstruction term ``-E_q[log p(V | h_TM)]`` of each document, in nats.
    kl : Tensor of shape (batch_size,), optional
        ``KL(q(h_TM | V) || N(0, I))`` of each document, in nats.
    h_tm : Tensor of shape (batch_size, n_topics)
        Document-topic representation: mean of the samples in training, ``mu`` at eval time.
    mu, logvar : Tensor of shape (batch_size, n_topics)
        Posterior mean and log-variance.
    """

    loss: torch.Tensor | None = None
    recon: torch.Tensor | None = None
    kl: torch.Tensor | None = None
    h_tm: torch.Tensor | None = None
    mu: torch.Tensor | None = None
    logvar: torch.Tensor | None = None


class NVDM(PreTrainedModel):
    """Neural Variational Document Model (Miao et al. 2016), the topic model of TopicBERT (§2.1).

    ``pi = g(W_1 V + b_1)``; ``mu = l_1(pi)``, ``logvar = l_2(pi)``; ``h_TM = mu + exp(logvar / 2) * eps``
    with ``eps ~ N(0, I)``; ``p(v_i | h_TM) = softmax(U^T h_TM + c)_i``. The loss is the negative ELBO
    ``-sum_i V_i log p(v_i | h_TM) + KL(q || N(0, I))`` per document (nats), averaged over the batch.

    Parameters
    ----------
    config : NVDMConfig

    Notes
    -----
    In training mode ``h_TM`` is sampled (the mean of ``config.n_samples`` reparameterised samples, as in
    the authors' code); in eval mode it is ``mu``, so classification is deterministic and the decoder is
    skipped when no loss is asked for (``compute_loss=False``).
    """

    config_class = NVDMConfig
    base_model_prefix = "nvdm"
    main_input_name = "bow"

    def __init__(self, config: NVDMConfig) -> None:
        super().__init__(config)
        self.encoder = nn.Linear(config.vocab_size, config.hidden_size)
        self.activation = _ACTIVATIONS[config.activation]()
        self.to_mu = nn.Linear(config.hidden_size, config.n_topics)
        self.to_logvar = nn.Linear(config.hidden_size, config.n_topics)
        self.decoder = nn.Linear(config.n_topics, config.vocab_size)
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Glorot-uniform weights and zero biases (authors' ``nvdm_linear``); the log-variance layer starts
        at zero so that sigma = 1 (authors' ``logsigm`` with ``matrix_start_zero=True``)."""
        if isinstance(module, nn.Linear):
            if module is self.to_logvar:
                nn.init.zeros_(module.weight)
            else:
                nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)

    @property
    def topic_word_matrix(self) -> torch.Tensor:
        """U, shape ``(n_topics, vocab_size)``: row k scores every word for topic k."""
        return self.decoder.weight.t()

    def encode(self, bow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters ``(mu, logvar)``, each of shape ``(batch_size, n_topics)``."""
        hidden = self.activation(self.encoder(bow))
        return self.to_mu(hidden), self.to_logvar(hidden)

    def forward(self, bow: torch.Tensor, sample: bool | None = None, n_samples: int | None = None,
                compute_loss: bool = True, generator: torch.Generator | None = None) -> NVDMOutput:
        """Encode a batch of bags of words, and score their reconstruction.

        Parameters
        ----------
        bow : Tensor of shape (batch_size, vocab_size)
            Word counts (float).
        sample : bool, optional
            Draw ``h_TM`` from the posterior (default: in training mode only) or use ``mu``.
        n_samples : int, optional
            Samples per document when sampling (default ``config.n_samples``).
        compute_loss : bool, default True
            Compute ``loss``, ``recon`` and ``kl``; False skips the decoder.
        generator : torch.Generator, optional
            Source of the noise ``eps`` (for reproducible evaluation).

        Returns
        -------
        NVDMOutput

        Raises
        ------
        DataFormatError
            If ``bow`` is not 2-D with ``vocab_size`` columns.
        """
        if bow.dim() != 2 or bow.shape[1] != self.config.vocab_size:
            raise DataFormatError(
                f"NVDM.forward: bow must have shape (batch_size, {self.config.vocab_size}) (one column per "
                f"word of the bag-of-words vocabulary), got {tuple(bow.shape)}; build it with the vocabulary "
                "the NVDM was trained with (BowVocabulary.transform)")
        bow = bow.to(self.encoder.weight.dtype)
        mu, logvar = self.encode(bow)
        sample = self.training if sample is None else sample
        if sample:
            s = int(n_samples or self.config.n_samples)
            eps = torch.randn((s, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype) \
                if generator is not None else torch.randn((s, *mu.shape), device=mu.device, dtype=mu.dtype)
            h = mu.unsqueeze(0) + torch.exp(0.5 * logvar).unsqueeze(0) * eps  # (s, batch, K)
            h_tm = h.mean(0)
        else:
            h = mu.unsqueeze(0)
            h_tm = mu
        if not compute_loss:
            return NVDMOutput(h_tm=h_tm, mu=mu, logvar=logvar)
        log_probs = torch.log_softmax(self.decoder(h), dim=-1)  # (s, batch, V)
        recon = -(log_probs * bow.unsqueeze(0)).sum(-1).mean(0)
        kl = -0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp()).sum(-1)
        loss = (recon + kl).mean()
        return NVDMOutput(loss=loss, recon=recon, kl=kl, h_tm=h_tm, mu=mu, logvar=logvar)


AutoConfig.register("nvdm", NVDMConfig, exist_ok=True)
AutoModel.register(NVDMConfig, NVDM, exist_ok=True)


# ----------------------------------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------------
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
        Held-out documents: their perplexity is computed after each epoch and the weights of the epoch with
        the lowest one are returned.
    patience : int, optional
        Stop after this many epochs without a lower held-out perplexity (needs ``bow_valid``; the authors
        use 10). None runs all ``epochs``.
    seed : int
        Seed of initialisation, shuffling and sampling.
    device : str or torch.device, optional
        Default CPU.
    log : callable, optional
        Called with each epoch's history row (e.g. ``print``).

    Returns
    -------
    model : NVDM
        In eval mode.
    history : list of dict
        One row per epoch: ``epoch`` (1-based), ``train_loss`` (mean nats per document), ``duration_s``,
        and ``valid_perplexity`` when ``bow_valid`` is given.

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
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    rng = np.random.default_rng(seed)
    history: list[dict[str, float]] = []
    best_ppl, best_state, waited = math.inf, None, 0
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
            ppl = perplexity(model, bow_valid, seed=seed)
            row["valid_perplexity"] = ppl
            if ppl < best_ppl:
                best_ppl, best_state, waited = ppl, copy.deepcopy(model.state_dict()), 0
            else:
                waited += 1
        row["duration_s"] = time.perf_counter() - start
        history.append(row)
        if log is not None:
            log(row)
        if has_valid and patience is not None and waited >= patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return model, history


@dataclass
class PretrainedTopicModel:
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
        Held-out perplexity of the returned model (None without held-out words).
    duration_s : float
        Wall time of vocabulary building and pretraining, in seconds.
    """

    vocab: BowVocabulary
    model: NVDM
    bow_train: sparse.csr_matrix
    bow_valid: sparse.csr_matrix | None
    history: list[dict[str, float]]
    perplexity: float | None
    duration_s: float


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
) -> PretrainedTopicModel:
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
    epochs, batch_size, learning_rate, patience, seed, log : pretraining (see :func:`pretrain_nvdm`).

    Returns
    -------
    PretrainedTopicModel

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
                                   patience=patience if has_valid else None, seed=seed, log=log)
    ppl = perplexity(model, bow_valid, seed=seed) if has_valid else None
    return PretrainedTopicModel(vocab=vocab, model=model, bow_train=bow_train, bow_valid=bow_valid,
                                history=history, perplexity=ppl, duration_s=time.perf_counter() - start)


def mean_npmi(scores: np.ndarray) -> float | None:
    """Mean of per-topic NPMI scores, ignoring NaN (topics with one word); None when there is none."""
    finite = np.asarray(scores, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(finite.mean()) if finite.size else None


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
    from frugaltext.methods.base import atomic_write_text

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
