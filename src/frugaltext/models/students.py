"""Small student classifiers for knowledge distillation: BiLSTM, BiLSTM with attention, shallow CNN, LSTM_reg.

Architectures
-------------
``"bilstm"``
    One-layer BiLSTM; the final hidden states of both directions are concatenated, dropped out and fed to one
    dense layer that gives the logits (Mangalwedhekar, *Distilling BERT for low complexity network training*,
    §3.2 and §4.3: embedding 64, hidden 64, one dense layer; the code it builds on, pvgladkov/
    knowledge-distillation ``SimpleLSTM``, uses dropout 0.5 before that layer).
``"bilstm_attn"``
    The same BiLSTM with attention pooling over its hidden states (Mangalwedhekar §3.4, eqs. 1-3, after Yang
    et al. 2016): u_j = tanh(W h_j + b), a_j = softmax_j(u_j . u_w) with a learned context vector u_w,
    s = sum_j a_j h_j. Padding positions get weight 0.
``"cnn"``
    Kim (2014) CNN: convolutions of widths ``filter_sizes`` (3, 4, 5) with ``n_filters`` feature maps each,
    ReLU, max-over-time pooling, dropout, one dense layer (Mangalwedhekar §3.3, "Number of kernels = 3"). Only
    windows that start inside the document are pooled, and padded positions are embedded as zero vectors, so
    batch padding never changes a document's output (a document shorter than a filter is zero-padded to its
    width).
``"lstm_reg"``
    LSTM_reg of Adhikari et al. (2019, *Rethinking complex neural network architectures for document
    classification*), the student of DocBERT: a BiLSTM regularised with embedding dropout (whole words
    dropped, Gal & Ghahramani 2016 / Merity et al. 2018 ``embedded_dropout``) and weight dropping (DropConnect
    on the recurrent matrices ``weight_hh``, Merity et al. 2018), then ReLU and max-pooling over time of the
    hidden states, dropout and one dense layer (as hedwig's ``models/reg_lstm/model.py``). Defaults follow
    hedwig's Reuters command: ``embed_dropout=0.2``, ``weight_drop=0.1``, ``dropout=0.5``.

Weight dropping without breaking the LSTM
-----------------------------------------
awd-lstm's ``WeightDrop`` deletes ``weight_hh_l0`` and re-registers a ``weight_hh_l0_raw`` parameter, which
breaks ``flatten_parameters`` and cuDNN on recent PyTorch. We keep the ``nn.LSTM`` untouched and, in training
mode only, call it through ``torch.func.functional_call`` with ``F.dropout(weight_hh)`` substituted for the
recurrent weights (a fresh DropConnect mask per forward pass, shared by all time steps, as Merity et al.). The
parameters stay registered, ``state_dict``/``save_pretrained`` are unchanged, and gradients reach the raw
weights. On CUDA the substituted weights are not in cuDNN's flat buffer, so cuDNN copies them once per forward
and would warn about it; the copy is inherent to DropConnect (the weights change every step), so that one
warning is silenced there.

Padding
-------
The LSTMs read packed sequences (``pack_padded_sequence`` with the lengths from ``attention_mask``), so
padding never enters a recurrence, and pooling ignores padded positions. A document's logits are the same
alone or in a padded batch (tested).

Tokenisation
------------
:class:`WordVocabulary`: lower-cased word tokens from the training split (regex ``[^\\W_]+(?:'[^\\W_]+)*``,
punctuation dropped), ``[PAD]`` = 0, ``[UNK]`` = 1, optional ``min_freq``/``max_size``, saved as JSON. The
mask token of the augmented transfer set (``[MASK]``) maps to ``[UNK]``: Tang et al. (2019, §3.3) read
[MASK] as the unknown token in their non-BERT students. A teacher's WordPiece tokenizer may be used
instead (see :mod:`frugaltext.methods.distill`), with embeddings copied from the teacher by
:func:`embeddings_from_teacher`.

Distillation loss
-----------------
``forward(..., teacher_logits=...)`` computes the configured distillation loss
(:mod:`frugaltext.training.distillation`), so the shared ``Trainer`` needs no subclass (STYLE §2).

FLOPs
-----
Importing this module registers a FLOP formula for PyTorch's fused CPU LSTM kernel
(``aten.mkldnn_rnn_layer`` and its backward), which ``torch.utils.flop_counter`` otherwise counts as 0, so
that :func:`frugaltext.cost.flops.count_flops` counts the students' LSTMs (see
:func:`_register_lstm_flop_formulas`).
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from frugaltext.errors import ConfigError, ModelLoadError
from frugaltext.models.student_common import (
    check_int,
    check_loss_settings,
    check_probability,
    classification_loss,
)

__all__ = [
    "ARCHITECTURES",
    "StudentConfig",
    "StudentForSequenceClassification",
    "StudentOutput",
    "WordVocabulary",
    "embeddings_from_teacher",
]

ARCHITECTURES = ("bilstm", "bilstm_attn", "cnn", "lstm_reg")
#: Per-architecture defaults of embed_dropout / weight_drop (hedwig's LSTM_reg Reuters command for lstm_reg).
_REGULARISATION_DEFAULTS = {"lstm_reg": (0.2, 0.1)}


# ==================================================================================================
# Word vocabulary
# ==================================================================================================
class WordVocabulary:
    """A word-level vocabulary from training texts: lower-cased regex tokens, ``[PAD]`` = 0, ``[UNK]`` = 1.

    Parameters
    ----------
    tokens : sequence of str
        All tokens in id order; the first two must be ``[PAD]`` and ``[UNK]``.
    mask_token : str, default "[MASK]"
        A literal string in texts (the masking augmentation of Tang et al. 2019) read as ``[UNK]``.

    Raises
    ------
    ConfigError
        If ``tokens`` does not start with ``[PAD]``, ``[UNK]`` or holds a token twice.
    """

    PAD = "[PAD]"
    UNK = "[UNK]"
    TOKEN_PATTERN = r"[^\W_]+(?:'[^\W_]+)*"
    FORMAT = "frugaltext-word-vocabulary"
    _token_re = re.compile(TOKEN_PATTERN)

    def __init__(self, tokens: Sequence[str], mask_token: str = "[MASK]") -> None:
        tokens = list(tokens)
        if tokens[:2] != [self.PAD, self.UNK]:
            raise ConfigError(f"WordVocabulary: the first tokens must be {self.PAD!r} and {self.UNK!r}, got "
                              f"{tokens[:2]}")
        if len(set(tokens)) != len(tokens):
            duplicate = next(t for t, n in Counter(tokens).items() if n > 1)
            raise ConfigError(f"WordVocabulary: token {duplicate!r} occurs twice")
        self.tokens = tokens
        self.mask_token = mask_token
        self.index = {t: i for i, t in enumerate(tokens)}

    # ---- construction ---------------------------------------------------------------------------
    @classmethod
    def build(cls, texts: Iterable[str], min_freq: int = 1, max_size: int | None = None,
              mask_token: str = "[MASK]") -> WordVocabulary:
        """Count the words of ``texts`` and keep the frequent ones.

        Parameters
        ----------
        texts : iterable of str
            The training split (never validation or test).
        min_freq : int >= 1, default 1
            Words seen fewer times become ``[UNK]``.
        max_size : int >= 1, optional
            Keep at most this many words (besides ``[PAD]`` and ``[UNK]``), the most frequent; ties broken
            alphabetically so the vocabulary is deterministic. pvgladkov/knowledge-distillation keeps 10,000.
        mask_token : str, default "[MASK]"

        Raises
        ------
        ConfigError
            If ``min_freq`` < 1 or ``max_size`` < 1.
        """
        if int(min_freq) < 1:
            raise ConfigError(f"WordVocabulary.build: min_freq must be >= 1, got {min_freq}")
        if max_size is not None and int(max_size) < 1:
            raise ConfigError(f"WordVocabulary.build: max_size must be >= 1 or None, got {max_size}")
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(cls._words(text, mask_token))
        words = sorted((w for w, n in counts.items() if n >= min_freq), key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[: int(max_size)]
        return cls([cls.PAD, cls.UNK, *words], mask_token=mask_token)

    # ---- tokenisation ---------------------------------------------------------------------------
    @classmethod
    def _words(cls, text: str, mask_token: str) -> list[str]:
        """Lower-cased word tokens; every occurrence of ``mask_token`` becomes the token ``[UNK]``."""
        pieces = text.split(mask_token) if mask_token else [text]
        words: list[str] = []
        for i, piece in enumerate(pieces):
            if i:
                words.append(cls.UNK)
            words.extend(cls._token_re.findall(piece.lower()))
        return words

    def tokenize(self, text: str) -> list[str]:
        """Lower-cased word tokens of ``text`` (punctuation dropped; ``mask_token`` -> ``[UNK]``)."""
        return self._words(text, self.mask_token)

    def encode(self, text: str, max_length: int | None = None) -> list[int]:
        """Token ids of the first ``max_length`` words; a text without any word gives ``[UNK]`` (length 1).

        Returns
        -------
        list of int, length in [1, max_length]
        """
        words = self.tokenize(text)
        if max_length is not None:
            words = words[: int(max_length)]
        unk = self.unk_token_id
        ids = [self.index.get(w, unk) for w in words]
        return ids or [unk]

    def encode_batch(self, texts: Sequence[str], max_length: int | None = None) -> list[list[int]]:
        """:meth:`encode` for each text."""
        return [self.encode(t, max_length) for t in texts]

    # ---- properties -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def pad_token_id(self) -> int:
        """Id of ``[PAD]`` (0)."""
        return 0

    @property
    def unk_token_id(self) -> int:
        """Id of ``[UNK]`` (1)."""
        return 1

    # ---- persistence ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-able content: format tag, token pattern, lower-casing, mask token, the tokens in id order."""
        return {"format": self.FORMAT, "version": 1, "lowercase": True, "token_pattern": self.TOKEN_PATTERN,
                "mask_token": self.mask_token, "tokens": self.tokens}

    def save(self, path: str | Path) -> Path:
        """Write the vocabulary as JSON to ``path``; returns the path."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=0), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> WordVocabulary:
        """Read a vocabulary written by :meth:`save`.

        Raises
        ------
        ModelLoadError
            If the file is missing, not JSON, or not a frugaltext word vocabulary.
        """
        path = Path(path)
        if not path.is_file():
            raise ModelLoadError(f"{path}: word vocabulary file is missing; the model directory is "
                                 "incomplete")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ModelLoadError(f"{path}, line {err.lineno}: invalid JSON ({err.msg})") from err
        if not isinstance(data, dict) or data.get("format") != cls.FORMAT or "tokens" not in data:
            raise ModelLoadError(f"{path}: not a frugaltext word vocabulary (expected format {cls.FORMAT!r})")
        if data.get("token_pattern", cls.TOKEN_PATTERN) != cls.TOKEN_PATTERN:
            raise ModelLoadError(f"{path}: written with token pattern {data['token_pattern']!r}, this "
                                 f"version uses {cls.TOKEN_PATTERN!r}; retrain the model")
        return cls(data["tokens"], mask_token=data.get("mask_token", "[MASK]"))


# ==================================================================================================
# Configuration
# ==================================================================================================
class StudentConfig(PreTrainedConfig):
    r"""Configuration of :class:`StudentForSequenceClassification`.

    Parameters
    ----------
    architecture : {"bilstm", "bilstm_attn", "cnn", "lstm_reg"}, default "bilstm"
        See the module docstring.
    vocab_size : int >= 2, default 2
        Rows of the embedding matrix (word vocabulary or the teacher's WordPiece vocabulary).
    embedding_dim : int, default 64
        Word embedding size (Mangalwedhekar §4.3: 64).
    hidden_size : int, default 64
        LSTM hidden size per direction (Mangalwedhekar §4.3: 64). Unused by the CNN.
    max_length : int, default 128
        Tokens per document (Mangalwedhekar: "maximum sequence/sentence length is kept at 128 words").
        Informative for the model; the tokenizer truncates.
    dropout : float in [0, 1), default 0.5
        Dropout before the dense output layer (pvgladkov/knowledge-distillation and hedwig use 0.5).
    embed_dropout : float in [0, 1), optional
        Probability of dropping a whole word type from the embedding matrix in training (Merity et al. 2018).
        None: 0.2 for ``lstm_reg`` (hedwig's Reuters setting), 0 otherwise.
    weight_drop : float in [0, 1), optional
        DropConnect probability on ``weight_hh`` of the LSTM. None: 0.1 for ``lstm_reg``, 0 otherwise.
    filter_sizes : sequence of int, default (3, 4, 5)
        CNN filter widths (Kim 2014).
    n_filters : int, default 64
        CNN feature maps per width. Mangalwedhekar gives "Hidden dimensions = 64" for the CNN; Kim used 100.
    pad_token_id : int, default 0
        Embedding row that stays zero and receives no gradient.
    distillation_loss : {"mse", "kl"}, default "mse"
        Loss used when ``forward`` receives ``teacher_logits`` (:mod:`frugaltext.training.distillation`).
    alpha : float in [0, 1], default 0.5
        Hard-label weight of the MSE loss (Mangalwedhekar §6: 0.5).
    lam : float >= 0, optional
        Weight of the KL term of the KL loss; None: DocBERT's 4 (single-label) or 1 (multi-label).
    temperature : float > 0, default 1.0
        Softmax temperature of the KL loss.
    num_labels, id2label, label2id, problem_type
        As in transformers; ``problem_type`` must be ``"single_label_classification"`` (softmax + CE) or
        ``"multi_label_classification"`` (sigmoids + BCE); None means single-label.

    Raises
    ------
    ConfigError
        For a value outside the ranges above, naming the field, the value and what is allowed.
    """

    model_type = "frugaltext_student"

    architecture: str = "bilstm"
    vocab_size: int = 2
    embedding_dim: int = 64
    hidden_size: int = 64
    max_length: int = 128
    dropout: float | int = 0.5
    embed_dropout: float | int | None = None
    weight_drop: float | int | None = None
    filter_sizes: list | tuple = (3, 4, 5)
    n_filters: int = 64
    pad_token_id: int | None = 0
    distillation_loss: str = "mse"
    alpha: float | int = 0.5
    lam: float | int | None = None
    temperature: float | int = 1.0

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        if self.problem_type is None:
            self.problem_type = "single_label_classification"
        if self.id2label is not None and not self.label2id:
            self.label2id = {label: int(i) for i, label in self.id2label.items()}
        if self.pad_token_id is None:
            self.pad_token_id = 0
        defaults = _REGULARISATION_DEFAULTS.get(self.architecture, (0.0, 0.0))
        if self.embed_dropout is None:
            self.embed_dropout = defaults[0]
        if self.weight_drop is None:
            self.weight_drop = defaults[1]
        self.filter_sizes = [int(w) for w in self.filter_sizes]
        self._validate()

    def _validate(self) -> None:
        where = "StudentConfig"
        if self.architecture not in ARCHITECTURES:
            raise ConfigError(f"{where}: architecture must be one of {ARCHITECTURES}, got "
                              f"{self.architecture!r}")
        check_int(self, where, ("vocab_size",), 2)
        check_int(self, where, ("embedding_dim", "hidden_size", "max_length", "n_filters"), 1)
        check_probability(self, where, ("dropout", "embed_dropout", "weight_drop"))
        if self.weight_drop and self.architecture == "cnn":
            raise ConfigError(f"{where}: weight_drop applies to the LSTM's recurrent weights; the cnn has "
                              "none (set weight_drop=0)")
        if not self.filter_sizes or any(w < 1 for w in self.filter_sizes):
            raise ConfigError(f"{where}: filter_sizes must be a non-empty list of widths >= 1, got "
                              f"{self.filter_sizes!r}")
        if not 0 <= int(self.pad_token_id) < self.vocab_size:
            raise ConfigError(f"{where}: pad_token_id {self.pad_token_id} is outside the vocabulary "
                              f"(vocab_size {self.vocab_size})")
        check_loss_settings(self, where)

    @property
    def multi_label(self) -> bool:
        """True for ``multi_label_classification``."""
        return self.problem_type == "multi_label_classification"


# ==================================================================================================
# Model
# ==================================================================================================
@dataclass
class StudentOutput(ModelOutput):
    """Output of :class:`StudentForSequenceClassification`.

    Attributes
    ----------
    loss : Tensor of shape (), optional
        Present when ``labels`` or ``teacher_logits`` were given.
    logits : Tensor of shape (batch_size, num_labels)
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None


class AttentionPooling(nn.Module):
    """Tanh attention with a learned context vector over a sequence (Mangalwedhekar eqs. 1-3; Yang 2016).

    Parameters
    ----------
    size : int
        Size of each hidden state (2 x hidden_size for a BiLSTM); W is (size, size), u_w has ``size`` entries.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.proj = nn.Linear(size, size)
        self.context = nn.Parameter(torch.empty(size))

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Pool ``hidden`` (batch_size, seq_len, size) with ``mask`` (batch_size, seq_len) bool; returns
        (batch_size, size). Masked positions get weight exactly 0."""
        scores = torch.tanh(self.proj(hidden)) @ self.context
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        return torch.bmm(weights.unsqueeze(1), hidden).squeeze(1)


class StudentPreTrainedModel(PreTrainedModel):
    """Weight initialisation and the ``from_pretrained`` machinery for the students.

    Initialisation: embeddings uniform(-0.25, 0.25) with a zero [PAD] row (Kim 2014; hedwig's "rand" mode);
    dense and convolution weights Xavier-uniform with zero biases; LSTM weights uniform(-1/sqrt(H), 1/sqrt(H))
    (PyTorch's default); the attention context vector normal(0, 1/sqrt(size)).
    """

    config_class = StudentConfig
    base_model_prefix = "student"
    main_input_name = "input_ids"

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Embedding):
            if not getattr(module.weight, "_is_hf_initialized", False):
                init.uniform_(module.weight, -0.25, 0.25)
                if module.padding_idx is not None:
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, (nn.Linear, nn.Conv1d)):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LSTM):
            bound = 1.0 / math.sqrt(module.hidden_size)
            for param in module.parameters():
                init.uniform_(param, -bound, bound)
        elif isinstance(module, AttentionPooling):
            init.normal_(module.context, mean=0.0, std=1.0 / math.sqrt(module.context.numel()))


class StudentForSequenceClassification(StudentPreTrainedModel):
    """A small document classifier (BiLSTM, BiLSTM + attention, Kim CNN or LSTM_reg) with an optional
    distillation loss.

    ``save_pretrained`` writes ``config.json`` and ``model.safetensors``; after ``import
    frugaltext.models.students``, ``AutoModelForSequenceClassification.from_pretrained(dir)`` restores it.

    Parameters
    ----------
    config : StudentConfig
    """

    def __init__(self, config: StudentConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        arch = config.architecture
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_dim,
                                       padding_idx=config.pad_token_id)
        if arch == "cnn":
            self.convs = nn.ModuleList(
                [nn.Conv1d(config.embedding_dim, config.n_filters, width) for width in config.filter_sizes]
            )
            features = config.n_filters * len(config.filter_sizes)
        else:
            self.lstm = nn.LSTM(config.embedding_dim, config.hidden_size, num_layers=1, batch_first=True,
                                bidirectional=True)
            features = 2 * config.hidden_size
            if arch == "bilstm_attn":
                self.attention = AttentionPooling(features)
        self.dropout = nn.Dropout(float(config.dropout))
        self.classifier = nn.Linear(features, config.num_labels)
        self.post_init()

    # ---- pieces ---------------------------------------------------------------------------------
    def _embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Look up embeddings, dropping whole word types in training (Merity et al. 2018 ``embedded_dropout``:
        a Bernoulli mask over vocabulary rows, scaled by 1 / (1 - p))."""
        p = float(self.config.embed_dropout)
        weight = self.embeddings.weight
        if self.training and p > 0:
            keep = weight.new_empty((weight.shape[0], 1)).bernoulli_(1.0 - p) / (1.0 - p)
            weight = weight * keep
        return F.embedding(input_ids, weight, padding_idx=self.embeddings.padding_idx)

    def _run_lstm(self, embedded: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the BiLSTM on packed sequences; returns the padded outputs (batch, seq_len, 2H) and the final
        hidden states (2, batch, H). In training with ``weight_drop`` > 0, ``weight_hh`` of both directions is
        replaced by a DropConnect-ed copy through ``functional_call`` (see the module docstring)."""
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        p = float(self.config.weight_drop)
        if self.training and p > 0:
            params = dict(self.lstm.named_parameters())
            for name in ("weight_hh_l0", "weight_hh_l0_reverse"):
                params[name] = F.dropout(params[name], p=p, training=True)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*not part of single contiguous chunk of memory.*")
                output, (h_n, _) = torch.func.functional_call(self.lstm, params, (packed,))
        else:
            output, (h_n, _) = self.lstm(packed)
        padded, _ = pad_packed_sequence(output, batch_first=True, total_length=embedded.shape[1])
        return padded, h_n

    def _cnn_features(self, embedded: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Kim (2014): ReLU(conv) of each width, max over the window starts inside the document."""
        x = embedded.transpose(1, 2)  # (batch, E, seq_len)
        widest = max(self.config.filter_sizes)
        if x.shape[-1] < widest:  # documents shorter than a filter: zero vectors fill the window
            x = F.pad(x, (0, widest - x.shape[-1]))
        pooled = []
        for conv, width in zip(self.convs, self.config.filter_sizes, strict=True):
            feature = F.relu(conv(x))  # (batch, n_filters, seq_len - width + 1)
            starts = torch.arange(feature.shape[-1], device=feature.device)
            last_start = (lengths - width).clamp(min=0)  # a window must start inside the document
            valid = starts.unsqueeze(0) <= last_start.unsqueeze(1)
            feature = feature.masked_fill(~valid.unsqueeze(1), float("-inf"))
            pooled.append(feature.max(dim=-1).values)
        return torch.cat(pooled, dim=-1)

    # ---- forward --------------------------------------------------------------------------------
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, teacher_logits: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> StudentOutput:
        """Classify a batch and, when ``labels`` or ``teacher_logits`` are given, compute the loss.

        Parameters
        ----------
        input_ids : Tensor of shape (batch_size, seq_len), long
        attention_mask : Tensor of shape (batch_size, seq_len), optional
            1 for tokens, 0 for padding; padding must be at the end. All ones when omitted.
        labels : Tensor of shape (batch_size,) long, or (batch_size, num_labels) float, optional
            ``-100`` (a row of ``-100`` for multi-label) marks rows without a hard label (augmented copies).
        teacher_logits : Tensor of shape (batch_size, num_labels), optional
            Cached teacher logits; with them the loss is ``config.distillation_loss`` ("mse": alpha * CE +
            (1 - alpha) * MSE; "kl": CE + lam * T^2 * KL), without them plain CE / BCE.
        token_type_ids : ignored
            Accepted so that a BERT tokenizer's output can be passed whole.

        Returns
        -------
        StudentOutput
            ``logits`` of shape (batch_size, num_labels); ``loss`` of shape () or None.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        mask = attention_mask.bool()
        lengths = mask.sum(dim=1).clamp(min=1)
        embedded = self._embed(input_ids) * mask.unsqueeze(-1).to(self.embeddings.weight.dtype)
        arch = self.config.architecture
        if arch == "cnn":
            features = self._cnn_features(embedded, lengths)
        else:
            outputs, h_n = self._run_lstm(embedded, lengths)
            if arch == "bilstm":
                features = torch.cat([h_n[0], h_n[1]], dim=-1)
            else:
                positions = torch.arange(outputs.shape[1], device=outputs.device).unsqueeze(0)
                valid = positions < lengths.unsqueeze(1)  # (batch, seq_len)
                if arch == "bilstm_attn":
                    features = self.attention(outputs, valid)
                else:  # lstm_reg: ReLU, then max over the document's positions (hedwig reg_lstm)
                    pooled = F.relu(outputs).masked_fill(~valid.unsqueeze(-1), float("-inf"))
                    features = pooled.max(dim=1).values
        logits = self.classifier(self.dropout(features))
        return StudentOutput(loss=classification_loss(self.config, logits, labels, teacher_logits),
                             logits=logits)


# ==================================================================================================
# Embeddings from a teacher
# ==================================================================================================
@torch.no_grad()
def embeddings_from_teacher(teacher_embeddings: torch.Tensor, embedding_dim: int,
                            pad_token_id: int | None = 0, fill: torch.Tensor | None = None) -> torch.Tensor:
    """Student input embeddings (vocab_size, embedding_dim) from a teacher's (vocab_size, teacher_dim) matrix.

    When ``teacher_dim == embedding_dim`` the matrix is copied. When it is larger, it is projected by a fixed
    linear map onto its first ``embedding_dim`` principal directions (PCA of the centred rows, via SVD), the
    linear map that keeps the most of the rows' variance; the projection is then rescaled so that its
    entries have the teacher's standard deviation. Computed once at initialisation, so the student keeps
    ``vocab_size * embedding_dim`` embedding parameters and no projection layer. When ``teacher_dim`` is
    smaller, the teacher's vectors fill the first ``teacher_dim`` columns and the rest keep the values of
    ``fill`` (the student's random initialisation). The ``pad_token_id`` row is set to zero (the students'
    [PAD] is the zero vector). No paper prescribes this; Tang et al. (2019) initialise from word2vec instead.

    Parameters
    ----------
    teacher_embeddings : Tensor of shape (vocab_size, teacher_dim)
    embedding_dim : int
    pad_token_id : int, optional
    fill : Tensor of shape (vocab_size, embedding_dim), optional
        Values of the columns the teacher cannot fill (zeros when omitted).

    Returns
    -------
    Tensor of shape (vocab_size, embedding_dim), float32.
    """
    weight = teacher_embeddings.detach().float().cpu()
    vocab_size, teacher_dim = weight.shape
    if teacher_dim == embedding_dim:
        out = weight.clone()
    elif teacher_dim > embedding_dim:
        centred = weight - weight.mean(dim=0, keepdim=True)
        _, _, vh = torch.linalg.svd(centred, full_matrices=False)
        out = centred @ vh[:embedding_dim].T
        out = out * (weight.std() / out.std().clamp(min=1e-12))
    else:
        out = (fill.detach().float().cpu().clone() if fill is not None
               else torch.zeros(vocab_size, embedding_dim))
        out[:, :teacher_dim] = weight
    if pad_token_id is not None:
        out[pad_token_id] = 0.0
    return out


# ==================================================================================================
# FLOPs of the fused CPU LSTM kernel
# ==================================================================================================
def _lstm_layer_flops(input_shape: Sequence[int], w_ih_shape: Sequence[int],
                      w_hh_shape: Sequence[int]) -> int:
    """2 x tokens x (4H x E + 4H x H): the input and recurrent matrix products of one LSTM layer and direction
    over all ``input_shape[0] * input_shape[1]`` (padded) positions; gate nonlinearities are not counted (the
    convention of :mod:`frugaltext.cost.flops`)."""
    tokens = int(input_shape[0]) * int(input_shape[1]) if len(input_shape) == 3 else int(input_shape[0])
    return 2 * tokens * (int(w_ih_shape[0]) * int(w_ih_shape[1]) + int(w_hh_shape[0]) * int(w_hh_shape[1]))


def _register_lstm_flop_formulas() -> None:
    """Teach ``torch.utils.flop_counter`` the fused CPU LSTM kernel.

    On CPU, an LSTM whose sequences all have the same length (always the case for one document) runs as
    ``aten.mkldnn_rnn_layer``, for which FlopCounterMode (torch 2.13) has no formula and counts 0; batches of
    unequal lengths run as counted matrix products instead. We register the formula with torch's public
    ``register_flop_formula`` so that :func:`frugaltext.cost.flops.count_flops` counts both paths alike: the
    forward is :func:`_lstm_layer_flops` per layer and direction, the backward twice that (gradients of the
    inputs and of the weights). cuDNN's kernel (``aten._cudnn_rnn``) is not registered: count on a CPU copy.
    """
    from torch.utils.flop_counter import flop_registry, register_flop_formula

    aten = torch.ops.aten
    if hasattr(aten, "mkldnn_rnn_layer") and aten.mkldnn_rnn_layer not in flop_registry:
        @register_flop_formula(aten.mkldnn_rnn_layer)
        def _mkldnn_rnn_layer_flop(input_shape, w_ih_shape, w_hh_shape, *args, out_shape=None,
                                   **kwargs) -> int:
            return _lstm_layer_flops(input_shape, w_ih_shape, w_hh_shape)

    if hasattr(aten, "mkldnn_rnn_layer_backward") and aten.mkldnn_rnn_layer_backward not in flop_registry:
        @register_flop_formula(aten.mkldnn_rnn_layer_backward)
        def _mkldnn_rnn_layer_backward_flop(input_shape, w_ih_shape, w_hh_shape, *args, out_shape=None,
                                            **kwargs) -> int:
            return 2 * _lstm_layer_flops(input_shape, w_ih_shape, w_hh_shape)


_register_lstm_flop_formulas()
AutoConfig.register(StudentConfig.model_type, StudentConfig, exist_ok=True)
AutoModelForSequenceClassification.register(StudentConfig, StudentForSequenceClassification, exist_ok=True)
