"""TopicBERT: joint fine-tuning of an NVDM topic model and a BERT encoder (Chaudhary et al. 2020, Findings of
EMNLP, "TopicBERT for energy efficient document classification").

``h_p = (h_TM ⊕ o_CLS) · P`` (concatenation, projection P to the encoder's hidden size), dropout, then a
linear classifier; loss ``alpha * CE + (1 - alpha) * L_NVDM`` (§2.1). For efficiency (§2.2, §3 "Experimental
setup") the first N tokens of a document are split into p partitions of ``x = N / p`` tokens: BERT reads each
partition, while the NVDM always reads the whole document's bag of words. A document is cut to its first
``p * x`` tokens (the paper's N_B = 512 budget, §3); the authors' ``process_data_fine_tune.py`` instead chunks
the whole document without a cap, so their long documents give more partitions. We keep the paper's cap: it
is what makes TopicBERT-N/p's cost per document bounded like BERT-N's.

Partition batching and combination follow the authors' code (github.com/YatinChaudhary/TopicBERT,
``TopicBERT/topic_bert``):

- **Training**: every partition is its own training example, carrying the document's label and the whole
  document's bag of words (``process_data_fine_tune.py``: one ``InputFeatures`` per chunk with the
  document's ``label_id`` and ``doc_id``; ``run_finetuning_spot.py``: ``extract_topic_data(doc_ids, ...)``
  looks the bag of words up by ``doc_id``). Batches mix partitions of different documents, so an epoch has
  about p times more (shorter) examples, as Table 2 of the paper counts (``p × n_b`` batches).
- **Inference**: the class probabilities (softmax, or sigmoids for multi-label) of a document's partitions
  are averaged, then argmax / threshold 0.5 (``run_finetuning_spot.py``, ``predict_softmax`` with
  ``--avg_softmax=True`` as in ``TopicBERT_finetuning.sh``). See :func:`combine_partitions`.

Where the paper and the authors' code differ we follow the paper and say so: the authors' ``joint_model``
weights the loss as ``(1 - alpha) * CE + alpha * gsm_lr_factor * L_NVDM`` and puts a GELU after P; the paper
(§2.1, A.3) has ``alpha * log p(y|D) + (1 - alpha) * L_NVDM`` and a linear P (our default,
``projection_activation=None``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    BertConfig,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.utils import ModelOutput

from frugaltext.errors import ConfigError, DataFormatError
from frugaltext.models.encoders import keep_encoder_layers, parse_encoder_layers
from frugaltext.models.nvdm import NVDM, NVDMConfig
from frugaltext.topics.vocabulary import BOW_VOCABULARY_FILE, BowVocabulary

__all__ = [
    "TopicBertConfig",
    "TopicBertForSequenceClassification",
    "BowRows",
    "PartitionDataset",
    "TopicBertOutput",
    "combine_partitions",
    "encode_partitions",
    "partition_token_ids",
    "special_token_template",
]

_PROJECTION_ACTIVATIONS = {None: nn.Identity, "none": nn.Identity, "gelu": nn.GELU, "tanh": nn.Tanh,
                           "relu": nn.ReLU}


# ----------------------------------------------------------------------------------------------------
# partitions
# ----------------------------------------------------------------------------------------------------
def partition_length(n_partitions: int, max_length: int, n_special: int = 2) -> int:
    """Content tokens per partition: ``max_length // n_partitions - n_special``.

    Raises
    ------
    ConfigError
        If ``n_partitions < 1`` or a partition would hold no content token.
    """
    if isinstance(n_partitions, bool) or not isinstance(n_partitions, int | np.integer) or n_partitions < 1:
        raise ConfigError(f"n_partitions must be a positive integer, got {n_partitions!r}")
    x = int(max_length) // int(n_partitions) - int(n_special)
    if x < 1:
        raise ConfigError(
            f"max_length={max_length} split into n_partitions={n_partitions} leaves "
            f"{max_length // n_partitions} tokens per partition, not enough for {n_special} special tokens "
            "plus text; raise max_length or lower n_partitions")
    return x


def partition_token_ids(token_ids: Sequence[int], n_partitions: int, max_length: int,
                        n_special: int = 2) -> list[list[int]]:
    """Split a document's first tokens into at most ``n_partitions`` partitions (TopicBERT §3, Experimental
    setup: "we split the input sequence D into p equal partitions each of length x = N_B/p ... To avoid
    padding in the last partition, we take the last x tokens of D").

    Each partition holds ``x = max_length // n_partitions - n_special`` content tokens, so that with its
    special tokens ([CLS], [SEP]) it is ``max_length / n_partitions`` tokens long. The document is first cut
    to its first ``n_partitions * x`` tokens (the truncated document). A document of at most x tokens gives
    one partition (itself); a longer one gives ``ceil(n / x)`` partitions: consecutive x-token pieces, the
    last being the last x tokens, which overlaps the one before when n is not a multiple of x (as the
    authors' ``process_data_fine_tune.py`` fills the last chunk from the previous one). So the partitions
    cover the whole truncated document, the last one ends at its end, and none needs padding.
    With ``n_partitions=1`` this is plain head truncation to ``max_length - n_special`` tokens, as BERT's.

    Parameters
    ----------
    token_ids : sequence of int
        Token ids of the document without special tokens.
    n_partitions : int >= 1
        p.
    max_length : int
        N, tokens BERT would read for the whole document, special tokens included.
    n_special : int, default 2
        Special tokens added to each partition ([CLS] and [SEP] for BERT).

    Returns
    -------
    list of list of int
        Between 1 and ``n_partitions`` partitions, each of at most x token ids (without special tokens).

    Raises
    ------
    ConfigError
        If a partition would hold no content token (see :func:`partition_length`).
    """
    x = partition_length(n_partitions, max_length, n_special)
    ids = list(token_ids)[: n_partitions * x]
    if len(ids) <= x:
        return [ids]
    k = math.ceil(len(ids) / x)
    parts = [ids[i * x:(i + 1) * x] for i in range(k - 1)]
    parts.append(ids[-x:])
    return parts


def special_token_template(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after a single sequence (BERT: ``[CLS]`` and ``[SEP]``).

    Found by tokenising a word with and without special tokens, so it works for any Hugging Face
    tokenizer (BERT, RoBERTa, MPNet, ...).

    Raises
    ------
    ConfigError
        If the plain tokens are not found inside the tokens with special tokens.
    """
    with_special = list(tokenizer("word")["input_ids"])
    plain = list(tokenizer("word", add_special_tokens=False)["input_ids"])
    for i in range(len(with_special) - len(plain) + 1):
        if with_special[i:i + len(plain)] == plain:
            return with_special[:i], with_special[i + len(plain):]
    raise ConfigError(f"{type(tokenizer).__name__}: cannot tell which special tokens it adds around a text")


def encode_partitions(tokenizer: Any, texts: Sequence[str], n_partitions: int,
                      max_length: int) -> tuple[list[list[int]], np.ndarray]:
    """Tokenise ``texts`` and split each into partitions with special tokens (:func:`partition_token_ids`).

    Parameters
    ----------
    tokenizer : Hugging Face tokenizer
    texts : sequence of str, length n_docs
    n_partitions, max_length : p and N

    Returns
    -------
    rows : list of n_rows lists of int
        Token ids of every partition, special tokens included, each at most ``max_length // n_partitions``
        long; the partitions of a document are consecutive.
    doc_index : ndarray of shape (n_rows,), int64
        Document of each row (0-based, non-decreasing).
    """
    prefix, suffix = special_token_template(tokenizer)
    n_special = len(prefix) + len(suffix)
    budget = n_partitions * partition_length(n_partitions, max_length, n_special)
    encoded = tokenizer(list(texts), add_special_tokens=False, truncation=True,
                        max_length=budget)["input_ids"]
    rows: list[list[int]] = []
    doc_index: list[int] = []
    for d, ids in enumerate(encoded):
        for part in partition_token_ids(ids, n_partitions, max_length, n_special):
            rows.append(prefix + part + suffix)
            doc_index.append(d)
    return rows, np.asarray(doc_index, dtype=np.int64)


def combine_partitions(values: np.ndarray, doc_index: np.ndarray, n_docs: int) -> np.ndarray:
    """Mean over each document's partitions (the authors' ``--avg_softmax``; apply it to probabilities).

    Parameters
    ----------
    values : ndarray of shape (n_rows, num_labels)
        Per-partition class probabilities.
    doc_index : ndarray of shape (n_rows,)
        Document of each row.
    n_docs : int

    Returns
    -------
    ndarray of shape (n_docs, num_labels), float32

    Raises
    ------
    DataFormatError
        If the lengths differ or a document has no row.
    """
    values = np.asarray(values)
    doc_index = np.asarray(doc_index, dtype=np.int64)
    if values.shape[0] != doc_index.shape[0]:
        raise DataFormatError(f"combine_partitions: {values.shape[0]} rows of values but "
                              f"{doc_index.shape[0]} document indices")
    counts = np.bincount(doc_index, minlength=n_docs).astype(np.float64)
    if counts.shape[0] != n_docs or (counts == 0).any():
        raise DataFormatError(f"combine_partitions: every one of the {n_docs} documents needs at least one "
                              "partition row")
    total = np.zeros((n_docs, values.shape[1]), dtype=np.float64)
    np.add.at(total, doc_index, values.astype(np.float64))
    return (total / counts[:, None]).astype(np.float32)


# ----------------------------------------------------------------------------------------------------
# configuration
# ----------------------------------------------------------------------------------------------------
class TopicBertConfig(PretrainedConfig):
    """Configuration of :class:`TopicBertForSequenceClassification`.

    Parameters
    ----------
    encoder : PretrainedConfig or dict, optional
        Configuration of the BERT-like encoder (a dict needs ``model_type``). Default: read from
        ``encoder_name_or_path``, else ``BertConfig()``.
    nvdm : NVDMConfig or dict, optional
        Configuration of the topic model. Default ``NVDMConfig()``.
    encoder_name_or_path : str, optional
        Local folder the encoder was first loaded from (kept for the record).
    alpha : float in [0, 1], default 0.9
        Weight of the classification loss: ``alpha * CE + (1 - alpha) * L_NVDM`` (paper §2.1, A.3; 0.9 is
        the optimum of Table 7). The paper asks for (0, 1); 1 (pure CE) and 0 are allowed for ablations.
    n_partitions : int, default 1
        p: partitions per document (1: complementary fine-tuning; 2, 4, 8: efficient, §3).
    max_seq_length : int, default 512
        N: tokens per document over all partitions, special tokens included (paper: 512). Named as the
        authors' flag ``max_seq_length``; transformers reserves ``max_length`` for generation.
    topic_lr_factor : float > 0, default 1.0
        Learning rate of the NVDM parameters during joint fine-tuning = encoder learning rate x this factor
        (authors' ``gsm_lr_factor``, default 1.0; they multiply the topic loss instead, which with Adam
        barely changes the NVDM's steps, so we scale the learning rate as the name says).
    classifier_dropout : float, optional
        Dropout on ``h_p`` before the classifier; default the encoder's ``hidden_dropout_prob`` (0.1).
    projection_activation : {None, "gelu", "tanh", "relu"}, default None
        Non-linearity after P. None follows the paper (linear P); "gelu" follows the authors' code.
    **kwargs
        ``num_labels``, ``id2label``, ``label2id``, ``problem_type`` ("single_label_classification" or
        "multi_label_classification") and other ``PretrainedConfig`` fields.

    Raises
    ------
    ConfigError
        For an alpha outside [0, 1], a bad n_partitions / max_seq_length pair, a non-positive topic_lr_factor,
        an unknown projection activation or a regression problem type.
    """

    model_type = "topicbert"
    sub_configs = {"encoder": AutoConfig, "nvdm": NVDMConfig}
    keys_to_ignore_at_inference = ["topic_loss", "ce_loss", "h_tm"]

    def __init__(self, encoder: PretrainedConfig | dict | None = None, nvdm: NVDMConfig | dict | None = None,
                 encoder_name_or_path: str | None = None, alpha: float = 0.9, n_partitions: int = 1,
                 max_seq_length: int = 512, topic_lr_factor: float = 1.0,
                 classifier_dropout: float | None = None, projection_activation: str | None = None,
                 **kwargs: Any) -> None:
        if isinstance(encoder, dict):
            encoder = dict(encoder)
            model_type = encoder.pop("model_type", None)
            if model_type is None:
                raise ConfigError("TopicBertConfig: the encoder config dict has no 'model_type'")
            encoder = AutoConfig.for_model(model_type, **encoder)
        elif encoder is None:
            encoder = (AutoConfig.from_pretrained(encoder_name_or_path) if encoder_name_or_path
                       else BertConfig())
        if isinstance(nvdm, dict):
            nvdm = dict(nvdm)
            nvdm.pop("model_type", None)
            nvdm = NVDMConfig(**nvdm)
        elif nvdm is None:
            nvdm = NVDMConfig()
        if not 0.0 <= float(alpha) <= 1.0:
            raise ConfigError(f"TopicBertConfig: alpha must be in [0, 1] (weight of the classification "
                              f"loss), got {alpha}")
        partition_length(n_partitions, max_seq_length)
        if not float(topic_lr_factor) > 0:
            raise ConfigError(f"TopicBertConfig: topic_lr_factor must be > 0, got {topic_lr_factor}")
        if projection_activation not in _PROJECTION_ACTIVATIONS:
            raise ConfigError(f"TopicBertConfig: projection_activation must be one of None, 'gelu', 'tanh', "
                              f"'relu'; got {projection_activation!r}")
        if kwargs.get("problem_type") == "regression":
            raise ConfigError("TopicBertConfig: problem_type 'regression' is not supported; use "
                              "'single_label_classification' or 'multi_label_classification'")
        # PretrainedConfig.__init__ sets attn_implementation=None on every sub-config present, which would
        # wipe the encoder's own choice, so it runs before the sub-configs are attached.
        super().__init__(**kwargs)
        self.encoder = encoder
        self.nvdm = nvdm
        self.encoder_name_or_path = encoder_name_or_path
        self.alpha = float(alpha)
        self.n_partitions = int(n_partitions)
        self.max_seq_length = int(max_seq_length)
        self.topic_lr_factor = float(topic_lr_factor)
        self.classifier_dropout = classifier_dropout
        self.projection_activation = None if projection_activation == "none" else projection_activation

    @property
    def hidden_size(self) -> int:
        """H_B, the encoder's hidden size (also the size of ``h_p``)."""
        return int(self.encoder.hidden_size)


# ----------------------------------------------------------------------------------------------------
# model
# ----------------------------------------------------------------------------------------------------
@dataclass
class TopicBertOutput(ModelOutput):
    """Output of :meth:`TopicBertForSequenceClassification.forward`.

    Attributes
    ----------
    loss : Tensor of shape (), optional
        ``alpha * ce_loss + (1 - alpha) * topic_loss`` when labels are given.
    logits : Tensor of shape (batch_size, num_labels)
    topic_loss : Tensor of shape (), optional
        NVDM negative ELBO, batch mean, nats per document.
    ce_loss : Tensor of shape (), optional
        Cross-entropy (single-label) or mean binary cross-entropy over labels (multi-label), batch mean.
    h_tm : Tensor of shape (batch_size, n_topics)
        Document-topic representation used for the logits.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    topic_loss: torch.Tensor | None = None
    ce_loss: torch.Tensor | None = None
    h_tm: torch.Tensor | None = None


class TopicBertPreTrainedModel(PreTrainedModel):
    """Base class: configuration class and weight initialisation of TopicBERT models."""

    config_class = TopicBertConfig
    base_model_prefix = "topicbert"
    supports_gradient_checkpointing = False
    _supports_sdpa = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Classifier: normal(0, encoder.initializer_range), zero bias (BERT's head init). Projection P:
        identity on the o_CLS block and zero on the h_TM block, zero bias, so that at initialisation
        h_p = o_CLS and TopicBERT starts from exactly BERT's classifier input; the h_TM block then learns from
        the classification loss. (The paper does not give P's initialisation; the authors' normal(0, 0.02)
        shrinks o_CLS by about 0.02 sqrt(K + H_B) in front of a classifier also at 0.02; on the 8 toy
        documents of the tests, 30 steps reach 8/8 training accuracy with this initialisation and 6/8 with
        theirs.) The encoder and the NVDM initialise themselves."""
        if module is getattr(self, "projection", None):
            n_topics = self.config.nvdm.n_topics
            module.weight.zero_()
            module.weight[:, n_topics:].copy_(torch.eye(module.weight.shape[0], dtype=module.weight.dtype))
            module.bias.zero_()
        elif isinstance(module, nn.Linear):
            std = getattr(self.config.encoder, "initializer_range", 0.02)
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


class TopicBertForSequenceClassification(TopicBertPreTrainedModel):
    """TopicBERT document classifier (Chaudhary et al. 2020, §2.1, Figure 2).

    ``o_CLS`` is the encoder's pooled output when it has a pooler (BERT: tanh layer on [CLS], as the authors'
    ``bert_model.get_pooled_output()`` and transformers' ``BertForSequenceClassification``), else the [CLS]
    hidden state. ``h_TM`` comes from the NVDM on the document's bag of words (sampled in training, the
    posterior mean in eval mode). ``h_p = act((h_TM ⊕ o_CLS) P)`` with ``P ∈ R^{(K + H_B) × H_B}`` (act =
    identity by default), then dropout and ``logits = h_p Q + b``.

    Parameters
    ----------
    config : TopicBertConfig
    encoder : PreTrainedModel, optional
        A loaded encoder to use instead of a randomly initialised one (see :meth:`from_encoder_and_nvdm`).
    nvdm : NVDM, optional
        A (pretrained) NVDM to use instead of a new one.

    Attributes
    ----------
    bow_vocabulary : BowVocabulary or None
        Saved beside the weights by :meth:`save_pretrained` and restored by :meth:`from_pretrained`.
    """

    def __init__(self, config: TopicBertConfig, encoder: PreTrainedModel | None = None,
                 nvdm: NVDM | None = None) -> None:
        super().__init__(config)
        if encoder is not None:
            config.encoder = encoder.config
        if nvdm is not None:
            config.nvdm = nvdm.config
        self.num_labels = config.num_labels
        self.encoder = encoder if encoder is not None else AutoModel.from_config(config.encoder)
        self.nvdm = nvdm if nvdm is not None else NVDM(config.nvdm)
        hidden = config.hidden_size
        self.projection = nn.Linear(config.nvdm.n_topics + hidden, hidden)
        self.projection_activation = _PROJECTION_ACTIVATIONS[config.projection_activation]()
        dropout = config.classifier_dropout
        if dropout is None:
            dropout = getattr(config.encoder, "hidden_dropout_prob", 0.1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, config.num_labels)
        self.bow_vocabulary: BowVocabulary | None = None
        self.post_init()

    @classmethod
    def from_encoder_and_nvdm(cls, encoder_name_or_path: str | Path, nvdm: NVDM,
                              bow_vocabulary: BowVocabulary | None = None,
                              encoder_layers: str | Sequence[int] | None = None,
                              **config_kwargs: Any) -> TopicBertForSequenceClassification:
        """Build TopicBERT from a pretrained encoder checkpoint and a pretrained NVDM (paper A.3, steps 1-2).

        Parameters
        ----------
        encoder_name_or_path : path
            Local Hugging Face checkpoint folder of the encoder.
        nvdm : NVDM
            Pretrained topic model (its weights are copied).
        bow_vocabulary : BowVocabulary, optional
            The vocabulary the NVDM was trained with; must have ``nvdm.config.vocab_size`` words.
        encoder_layers : str or sequence of int, optional
            Keep only these encoder layers (0-based; :func:`frugaltext.models.encoders.keep_encoder_layers`);
            the saved config records the smaller depth.
        **config_kwargs
            Other :class:`TopicBertConfig` arguments (alpha, n_partitions, num_labels, id2label, ...).

        Raises
        ------
        ConfigError
            If the vocabulary size does not match the NVDM.
        """
        if bow_vocabulary is not None and len(bow_vocabulary) != nvdm.config.vocab_size:
            raise ConfigError(f"from_encoder_and_nvdm: the vocabulary has {len(bow_vocabulary)} words but "
                              f"the NVDM expects {nvdm.config.vocab_size}")
        encoder = AutoModel.from_pretrained(str(encoder_name_or_path))
        keep_encoder_layers(encoder, parse_encoder_layers(encoder_layers))
        fresh_nvdm = copy.deepcopy(nvdm)
        config = TopicBertConfig(encoder=encoder.config, nvdm=fresh_nvdm.config,
                                 encoder_name_or_path=str(encoder_name_or_path), **config_kwargs)
        model = cls(config, encoder=encoder, nvdm=fresh_nvdm)
        model.bow_vocabulary = bow_vocabulary
        return model

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, bow: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> TopicBertOutput:
        """Classify a batch of partitions (or whole documents when p = 1).

        Parameters
        ----------
        input_ids, attention_mask : Tensor of shape (batch_size, seq_len), long
            One partition per row, special tokens included.
        labels : Tensor, optional
            Shape ``(batch_size,)`` long for single-label, ``(batch_size, num_labels)`` float 0/1 for
            multi-label. When given, the joint loss is computed.
        bow : Tensor of shape (batch_size, vocab_size), float
            Word counts of the whole document each row belongs to (required).
        token_type_ids : Tensor of shape (batch_size, seq_len), optional

        Returns
        -------
        TopicBertOutput

        Raises
        ------
        DataFormatError
            If ``bow`` is missing or its shape does not fit.
        """
        if bow is None:
            raise DataFormatError(
                "TopicBertForSequenceClassification.forward: bow is required: the bag of words of each row's "
                f"document, shape (batch_size, {self.config.nvdm.vocab_size}); build it with "
                "BowVocabulary.transform")
        if input_ids is not None and bow.shape[0] != input_ids.shape[0]:
            raise DataFormatError(f"TopicBertForSequenceClassification.forward: bow has {bow.shape[0]} rows "
                                  f"but input_ids has {input_ids.shape[0]}; give one bag of words per row")
        encoder_kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            encoder_kwargs["token_type_ids"] = token_type_ids
        encoded = self.encoder(**encoder_kwargs)
        pooled = getattr(encoded, "pooler_output", None)
        o_cls = pooled if pooled is not None else encoded.last_hidden_state[:, 0]
        topic = self.nvdm(bow, compute_loss=labels is not None)
        h_tm = topic.h_tm.to(o_cls.dtype)
        h_p = self.projection_activation(self.projection(torch.cat([h_tm, o_cls], dim=-1)))
        logits = self.classifier(self.dropout(h_p))
        loss = ce_loss = None
        if labels is not None:
            ce_loss = self._classification_loss(logits, labels)
            alpha = self.config.alpha
            loss = alpha * ce_loss + (1.0 - alpha) * topic.loss
        return TopicBertOutput(loss=loss, logits=logits, topic_loss=topic.loss, ce_loss=ce_loss,
                               h_tm=topic.h_tm)

    def _classification_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        problem_type = self.config.problem_type
        if problem_type is None:
            multi = labels.is_floating_point() and labels.shape == logits.shape
            problem_type = "multi_label_classification" if multi else "single_label_classification"
        if problem_type == "multi_label_classification":
            return nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
        return nn.functional.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1).long())

    def nvdm_parameter_names(self) -> set[str]:
        """Names of the NVDM's parameters (they get ``topic_lr_factor`` x the learning rate)."""
        return {name for name, _ in self.named_parameters() if name.startswith("nvdm.")}

    # ---- persistence ------------------------------------------------------------------------------
    def save_pretrained(self, save_directory: str | Path, *args: Any, **kwargs: Any) -> None:
        """``PreTrainedModel.save_pretrained`` (``config.json``, safetensors weights) plus
        ``bow_vocabulary.json`` when a vocabulary is attached."""
        super().save_pretrained(save_directory, *args, **kwargs)
        if self.bow_vocabulary is not None and kwargs.get("is_main_process", True):
            self.bow_vocabulary.save(Path(save_directory) / BOW_VOCABULARY_FILE)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, *args: Any,
                        **kwargs: Any) -> TopicBertForSequenceClassification:
        """``PreTrainedModel.from_pretrained`` that also attaches ``bow_vocabulary.json`` when present."""
        model = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        path = Path(pretrained_model_name_or_path) / BOW_VOCABULARY_FILE
        if path.is_file():
            model.bow_vocabulary = BowVocabulary.load(path)
        return model


class PartitionDataset(torch.utils.data.Dataset):
    """Training/evaluation examples of TopicBERT: one per partition, each with its document's bag of words
    (dense row made on access, so a corpus of long documents never holds p dense copies) and label.

    Parameters
    ----------
    rows : list of n_rows lists of int
        Partition token ids with special tokens (from :func:`encode_partitions`).
    doc_index : ndarray of shape (n_rows,)
        Document of each row.
    bow : scipy sparse matrix of shape (n_docs, vocab_size)
        Word counts of each document.
    labels : sequence of length n_docs, optional
        Per-document label feature (int id, or float 0/1 vector for multi-label); copied to each partition.

    Returns (on indexing)
    ---------------------
    dict with ``input_ids`` (list of int), ``bow`` (ndarray (vocab_size,) float32) and ``labels`` if given.
    """

    def __init__(self, rows: list[list[int]], doc_index: np.ndarray, bow: Any,
                 labels: Sequence[Any] | None = None) -> None:
        if len(rows) != len(doc_index):
            raise DataFormatError(f"PartitionDataset: {len(rows)} rows but {len(doc_index)} document indices")
        if labels is not None and len(labels) != bow.shape[0]:
            raise DataFormatError(f"PartitionDataset: {len(labels)} labels for {bow.shape[0]} documents")
        self.rows = rows
        self.doc_index = np.asarray(doc_index, dtype=np.int64)
        self.bow = bow
        self.labels = labels

    def __len__(self) -> int:
        return len(self.rows)

    def bow_row(self, index: int) -> np.ndarray:
        """Dense bag of words ``(vocab_size,)`` float32 of row ``index``'s document."""
        row = self.bow[int(self.doc_index[index])]
        dense = row.toarray()[0] if hasattr(row, "toarray") else np.asarray(row)
        return dense.astype(np.float32, copy=False)

    def __getitem__(self, index: int) -> dict[str, Any]:
        feature: dict[str, Any] = {"input_ids": self.rows[index], "bow": self.bow_row(index)}
        if self.labels is not None:
            feature["labels"] = self.labels[int(self.doc_index[index])]
        return feature


class BowRows:
    """``bow_rows[i]`` = dense bag of words of row i's document; the ``extra`` mapping that
    :func:`frugaltext.training.hf.batched_logits` slices per row."""

    def __init__(self, dataset: PartitionDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.dataset.bow_row(index)


AutoConfig.register("topicbert", TopicBertConfig, exist_ok=True)
AutoModelForSequenceClassification.register(TopicBertConfig, TopicBertForSequenceClassification,
                                            exist_ok=True)
