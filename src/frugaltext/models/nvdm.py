"""The Neural Variational Document Model (NVDM) that TopicBERT builds on: config, model and output.

The rest of the topic-model code lives in :mod:`frugaltext.topics`: the bag-of-words vocabulary
(:mod:`frugaltext.topics.vocabulary`), perplexity / top words / NPMI (:mod:`frugaltext.topics.metrics`), the
training loop (:mod:`frugaltext.topics.training`) and the ``frugaltext topics`` job
(:mod:`frugaltext.topics.job`). Their names stay importable from this module, as before.

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

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

from frugaltext.errors import ConfigError, DataFormatError
from frugaltext.topics.vocabulary import (  # noqa: F401 - re-exported: old import paths keep working
    BOW_VOCABULARY_FILE,
    TOKEN_PATTERN,
    BowVocabulary,
    _check_texts,
    _rows,
    _word_counts,
    to_bow_tensor,
)

__all__ = [
    "BowVocabulary",
    "NVDM",
    "NVDMConfig",
    "NVDMOutput",
    "to_bow_tensor",
]

_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "softplus": nn.Softplus}


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
# names that moved to frugaltext.topics, still importable from here (loaded on first use, which avoids an
# import cycle: the topics modules import the model from this module)
# ----------------------------------------------------------------------------------------------------
_MOVED = {
    "perplexity": "metrics",
    "top_words": "metrics",
    "npmi_coherence": "metrics",
    "mean_npmi": "metrics",
    "_as_word": "metrics",
    "_npmi": "metrics",
    "pretrain_nvdm": "training",
    "pretrain_topic_model": "training",
    "TopicModelFit": "training",
    "PretrainedTopicModel": "training",
    "TopicsResult": "job",
    "train_topics": "job",
    "write_topics": "job",
}


def __getattr__(name: str) -> Any:
    home = _MOVED.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"frugaltext.topics.{home}"), name)


__all__ += [name for name in _MOVED if not name.startswith("_")]
