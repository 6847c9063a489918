"""XML-CNN (Liu et al. 2017, *Deep learning for extreme multi-label text classification*), a DocBERT baseline
(Adhikari et al. 2019, Table 2).

Architecture
------------
Word embeddings -> 1-D convolutions of several widths (``filter_sizes``, ``n_filters`` feature maps each) with
ReLU -> DYNAMIC max pooling: each feature map is split along time into ``pool_chunks`` chunks and the maximum
of each chunk is kept, so p values per map instead of Kim's one (Liu et al. §3.2) -> concatenation ->
a bottleneck layer (``bottleneck_size`` units, ReLU; Liu et al. §3.3) -> dropout -> the output layer. Loss:
BCE over sigmoids for multi-label tasks (Liu et al. use BCE, §3.4), CE for single-label tasks, or, with
``teacher_logits``, the distillation losses of the other students (:mod:`frugaltext.training.distillation`).

Defaults follow hedwig's ``models/xml_cnn`` (castorini/hedwig, the DocBERT authors' code): widths 2, 4, 8
with 100 maps each, bottleneck 512, dropout 0.5 after the bottleneck, and pool length 8 (hedwig's Reuters
command; its argparse default is 32); embeddings 300-dimensional (word2vec in hedwig).

Chunks and padding
------------------
As in the Kim CNN of :mod:`frugaltext.models.students`, padded positions are embedded as zero vectors and only
windows that START INSIDE the document are pooled; a document shorter than a filter is zero-padded to its
width (one window). A document of length n has ``m = max(n - w + 1, 1)`` windows for width w, and its chunks
are defined on those m positions alone, exactly as ``torch.nn.functional.adaptive_max_pool1d(features, p)``
does on the unpadded document: chunk i covers windows ``floor(i m / p)`` to ``ceil((i + 1) m / p) - 1``.
When m >= p the chunks tile the windows (sizes differing by at most one, neighbours may share one window);
when m < p chunks repeat windows (a one-window document gives p copies of its single maximum), so the feature
size is always ``len(filter_sizes) * n_filters * p``. Because the chunks depend only on the document's own
length, batch padding never changes its logits (tested). hedwig instead pads each convolution by w - 1
("wide" convolution) and pools the padded batch, so its chunks move with the batch's longest document.

FLOPs
-----
Convolutions and linear layers are counted by :func:`frugaltext.cost.flops.count_flops`; pooling is
comparisons (not counted). The convolutions run over the batch's padded length: count single documents.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedConfig, PreTrainedModel
from transformers import initialization as init

from frugaltext.errors import ConfigError
from frugaltext.models.student_common import (
    check_int,
    check_loss_settings,
    check_probability,
    classification_loss,
    finish_config,
)
from frugaltext.models.students import StudentOutput

__all__ = ["XMLCNNConfig", "XMLCNNForSequenceClassification", "dynamic_max_pool"]


def dynamic_max_pool(features: torch.Tensor, n_windows: torch.Tensor, chunks: int) -> torch.Tensor:
    """Per-document dynamic max pooling (Liu et al. 2017 §3.2) over the first ``n_windows`` positions.

    Parameters
    ----------
    features : Tensor of shape (batch_size, channels, length)
        Feature maps; positions >= a document's ``n_windows`` are ignored (any value).
    n_windows : Tensor of shape (batch_size,), long
        Valid positions per document, each in [1, length].
    chunks : int >= 1
        p, the number of chunks per map.

    Returns
    -------
    Tensor of shape (batch_size, channels, chunks)
        Equal, per document, to ``F.adaptive_max_pool1d(features[b:b+1, :, :n_windows[b]], chunks)``.
    """
    length = features.shape[-1]
    positions = torch.arange(length, device=features.device).unsqueeze(0)  # (1, length)
    n = n_windows.to(features.device).unsqueeze(1)  # (batch, 1)
    pooled = []
    for i in range(int(chunks)):
        start = torch.div(i * n, chunks, rounding_mode="floor")
        end = torch.div((i + 1) * n + chunks - 1, chunks, rounding_mode="floor")  # ceil((i + 1) n / p)
        inside = (positions >= start) & (positions < end)  # (batch, length)
        pooled.append(features.masked_fill(~inside.unsqueeze(1), float("-inf")).amax(dim=-1))
    return torch.stack(pooled, dim=-1)


class XMLCNNConfig(PreTrainedConfig):
    r"""Configuration of :class:`XMLCNNForSequenceClassification`.

    Parameters
    ----------
    vocab_size : int >= 2, default 2
    embedding_dim : int, default 300
        Word embedding size (hedwig: 300, word2vec).
    filter_sizes : sequence of int, default (2, 4, 8)
        Convolution widths (hedwig; Liu et al. use 2, 4, 8 as well).
    n_filters : int, default 100
        Feature maps per width (hedwig ``--output-channel 100``).
    pool_chunks : int, default 8
        p of dynamic max pooling (hedwig's ``--dynamic-pool-length 8`` on Reuters).
    bottleneck_size : int, default 512
        Units of the bottleneck layer (hedwig ``--num-bottleneck-hidden 512``).
    dropout : float in [0, 1), default 0.5
        Dropout after the bottleneck (hedwig).
    max_length : int, default 512
        Tokens per document (informative; the tokenizer truncates).
    pad_token_id : int, default 0
    distillation_loss, alpha, lam, temperature
        As in :class:`frugaltext.models.students.StudentConfig`.
    num_labels, id2label, label2id, problem_type
        As in transformers; single-label (CE, default) or ``"multi_label_classification"`` (BCE).

    Raises
    ------
    ConfigError
        For a value outside the ranges above.
    """

    model_type = "frugaltext_xml_cnn"

    vocab_size: int = 2
    embedding_dim: int = 300
    filter_sizes: list | tuple = (2, 4, 8)
    n_filters: int = 100
    pool_chunks: int = 8
    bottleneck_size: int = 512
    dropout: float | int = 0.5
    max_length: int = 512
    pad_token_id: int | None = 0
    distillation_loss: str = "mse"
    alpha: float | int = 0.5
    lam: float | int | None = None
    temperature: float | int = 1.0

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        finish_config(self)
        self.filter_sizes = [int(w) for w in self.filter_sizes]
        self._validate()

    def _validate(self) -> None:
        where = "XMLCNNConfig"
        check_int(self, where, ("vocab_size",), 2)
        check_int(self, where, ("embedding_dim", "n_filters", "pool_chunks", "bottleneck_size",
                                "max_length"), 1)
        check_probability(self, where, ("dropout",))
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


class XMLCNNPreTrainedModel(PreTrainedModel):
    """Initialisation: embeddings uniform(-0.25, 0.25) with a zero [PAD] row (hedwig's "rand" mode);
    convolutions and dense layers Xavier-uniform with zero biases."""

    config_class = XMLCNNConfig
    base_model_prefix = "xml_cnn"
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


class XMLCNNForSequenceClassification(XMLCNNPreTrainedModel):
    """XML-CNN with an optional distillation loss (see the module docstring).

    ``save_pretrained`` writes ``config.json`` and ``model.safetensors``; after ``import
    frugaltext.models.xml_cnn``, ``AutoModelForSequenceClassification.from_pretrained(dir)`` restores it.

    Parameters
    ----------
    config : XMLCNNConfig
    """

    def __init__(self, config: XMLCNNConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_dim,
                                       padding_idx=config.pad_token_id)
        self.convs = nn.ModuleList(
            [nn.Conv1d(config.embedding_dim, config.n_filters, width) for width in config.filter_sizes]
        )
        features = len(config.filter_sizes) * config.n_filters * config.pool_chunks
        self.bottleneck = nn.Linear(features, config.bottleneck_size)
        self.dropout = nn.Dropout(float(config.dropout))
        self.classifier = nn.Linear(config.bottleneck_size, config.num_labels)
        self.post_init()

    def pooled_features(self, input_ids: torch.Tensor,
                        attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Concatenated dynamic-max-pooled feature maps.

        Parameters
        ----------
        input_ids : Tensor of shape (batch_size, seq_len), long
        attention_mask : Tensor of shape (batch_size, seq_len), optional
            1 for tokens, 0 for padding (at the end); all ones when omitted.

        Returns
        -------
        Tensor of shape (batch_size, len(filter_sizes) * n_filters * pool_chunks); for each width, the
        ``n_filters * pool_chunks`` values are map-major (map 0's p chunks first).
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        mask = attention_mask.bool()
        lengths = mask.sum(dim=1).clamp(min=1)
        embedded = self.embeddings(input_ids.masked_fill(~mask, int(self.config.pad_token_id)))
        x = (embedded * mask.unsqueeze(-1).to(embedded.dtype)).transpose(1, 2)  # (batch, E, seq_len)
        widest = max(self.config.filter_sizes)
        if x.shape[-1] < widest:  # documents shorter than a filter: zero vectors fill the window
            x = F.pad(x, (0, widest - x.shape[-1]))
        pooled = []
        for conv, width in zip(self.convs, self.config.filter_sizes, strict=True):
            feature = F.relu(conv(x))  # (batch, n_filters, seq_len - width + 1)
            n_windows = (lengths - width + 1).clamp(min=1)  # windows must start inside the document
            pooled.append(dynamic_max_pool(feature, n_windows, self.config.pool_chunks).flatten(1))
        return torch.cat(pooled, dim=-1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, teacher_logits: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> StudentOutput:
        """Classify a batch and, when ``labels`` or ``teacher_logits`` are given, compute the loss.

        Parameters
        ----------
        input_ids : Tensor of shape (batch_size, seq_len), long
        attention_mask : Tensor of shape (batch_size, seq_len), optional
        labels : Tensor of shape (batch_size,) long, or (batch_size, num_labels) float, optional
            ``-100`` (a row of ``-100`` for multi-label) marks rows without a hard label.
        teacher_logits : Tensor of shape (batch_size, num_labels), optional
            With them the loss is ``config.distillation_loss``; without, plain CE / BCE.
        token_type_ids : ignored

        Returns
        -------
        StudentOutput
            ``logits`` of shape (batch_size, num_labels); ``loss`` of shape () or None.
        """
        hidden = self.dropout(F.relu(self.bottleneck(self.pooled_features(input_ids, attention_mask))))
        logits = self.classifier(hidden)
        return StudentOutput(loss=classification_loss(self.config, logits, labels, teacher_logits),
                             logits=logits)

    def flops_per_document(self, n_tokens: int) -> int:
        """Forward FLOPs of one unpadded document of ``n_tokens`` tokens: each width w convolves
        ``max(n, w_max) - w + 1`` windows at 2 w E C FLOPs, then the bottleneck and output layers (pooling,
        ReLU and look-ups are not counted)."""
        cfg = self.config
        length = max(int(n_tokens), max(cfg.filter_sizes))
        conv = sum(2 * w * cfg.embedding_dim * cfg.n_filters * (length - w + 1) for w in cfg.filter_sizes)
        features = len(cfg.filter_sizes) * cfg.n_filters * cfg.pool_chunks
        return conv + 2 * features * cfg.bottleneck_size + 2 * cfg.bottleneck_size * cfg.num_labels


AutoConfig.register(XMLCNNConfig.model_type, XMLCNNConfig, exist_ok=True)
AutoModelForSequenceClassification.register(XMLCNNConfig, XMLCNNForSequenceClassification, exist_ok=True)
