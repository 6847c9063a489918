"""Early exit for any BERT-family encoder: a classifier after every layer, and per-document exits.

The model follows Mei (2020), *How to design a sustainably accurate and fast model for text classification
tasks* (``../shared/papers/early-exit-mei2020.md``): a backbone (embeddings, L Transformer layers, a final
classifier) plus one "student" classifier after each layer (§3.1). It is trained either jointly (every
classifier on the labels, each layer's loss weighted by its depth as in PABEE; Zhou et al. 2020) or in two
stages (the backbone first, then the students by self-distillation towards the final classifier, §3.2; as in
FastBERT, Liu et al. 2020). At inference each document leaves at the first layer whose classifier is
confident enough (entropy rule, Algorithm 1) or whose prediction has stayed the same for ``patience``
consecutive layers (patience rule, Algorithm 2).

Layers are numbered 1..L and ``exit_layer`` is 1-based (STYLE §3). ``entropy_threshold`` and ``patience``
live in the config and can be overridden for one call (``model(**batch, entropy_threshold=0.2)``); they are
never stored on the module. Each document decides its own exit: the forward keeps a tensor of active row
indices and runs the next layer only on those rows, so results do not depend on the batch size
(STYLE §2, §7).

Public API
----------
EarlyExitConfig, EarlyExitForSequenceClassification, EarlyExitOutput
normalized_entropy, predicted_labels, simulate_exits
joint_exit_loss, self_distillation_loss, resolve_layer_loss_weights
encoder_layer_flops, exit_head_flops, document_flops, train_step_flops
collect_exit_logits, calibrate, CalibrationResult, early_exit_curve
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    PreTrainedConfig,
    PreTrainedModel,
)
from transformers import initialization as init
from transformers.configuration_utils import SubConfigSpec
from transformers.masking_utils import create_bidirectional_mask
from transformers.utils import ModelOutput

from frugaltext.errors import ConfigError, ModelLoadError

EXIT_RULES = ("entropy", "patience", "none")
TRAINING_MODES = ("joint", "two_stage")
CLASSIFIER_HEADS = ("linear", "dense_tanh")
PROBLEM_TYPES = ("single_label_classification", "multi_label_classification")
#: Encoders with ``.embeddings`` and ``.encoder.layer`` whose layers need inputs we do not build.
UNSUPPORTED_ENCODERS = ("deberta", "deberta-v2", "sew-d", "funnel", "longformer", "big_bird", "reformer")
#: Calibration grid of the entropy rule: S in {0, 0.05, ..., 1}.
ENTROPY_GRID = tuple(round(0.05 * i, 2) for i in range(21))


# ==================================================================================================
# Configuration
# ==================================================================================================
class EarlyExitConfig(PreTrainedConfig):
    r"""Configuration of :class:`EarlyExitForSequenceClassification`: encoder config plus exit settings.

    Parameters
    ----------
    encoder : dict or PreTrainedConfig, optional
        Configuration of the wrapped encoder (any BERT-family model with ``.embeddings`` and
        ``.encoder.layer``: BERT, RoBERTa, ELECTRA, XLM-R, MPNet, ...). A dict needs a ``model_type``
        (``"bert"`` when missing). Saved as a nested object in ``config.json``.
    exit_rule : {"entropy", "patience", "none"}, default "entropy"
        Inference rule. ``"entropy"``: leave at the first layer whose normalised entropy is below
        ``entropy_threshold`` (Mei 2020, Algorithm 1). ``"patience"``: leave once the predicted label has been
        the same at ``patience`` consecutive layers (Algorithm 2; PABEE). ``"none"``: always run all layers.
    entropy_threshold : float in [0, 1], default 0.0
        S, compared with H(p) / log(num_labels) (STYLE §3). 0 never exits early; 1 exits every document at
        layer 1. The default 0 means "full depth until calibrated". A larger S is faster: Mei (2020) §3.3's
        prose says the opposite, but its Algorithm 1 (leave if uncertainty < S) and Table 2 (S = 0.8 costs
        fewer FLOPs than S = 0.1) agree with this; we follow the algorithm.
    patience : int in [0, L], default 0
        t, the number of consecutive layers (heads) whose predictions must agree. 0 runs all layers (PABEE's
        convention); 1 exits at layer 1; L can only be met at the last layer, so it also runs all layers.
    layer_loss_weights : "linear", "uniform" or list of L floats, default "linear"
        Weights w_i of the per-layer losses in joint training. ``"linear"``: w_i = i, as PABEE
        (``total_loss += loss * (ix + 1)``); ``"uniform"``: w_i = 1.
    training_mode : {"joint", "two_stage"}, default "joint"
        Mei (2020) §3.2.1: train backbone and exits together, or first backbone + final classifier
        (stage 1) and then the exits 1..L-1 by self-distillation with the backbone frozen (stage 2).
    training_stage : {1, 2}, default 1
        Which stage the loss implements when ``training_mode == "two_stage"`` (set by
        :meth:`EarlyExitForSequenceClassification.set_training_stage`). Ignored in joint mode.
    classifier_head : {"linear", "dense_tanh"}, default "linear"
        Exit classifier on the [CLS] hidden state of its layer, without BERT's pooler.
        ``"linear"``: dropout + Linear(hidden, K), PABEE's head and the paper's "Linear + Softmax" (§3.1.2).
        ``"dense_tanh"``: dropout + Linear(hidden, hidden) + tanh + dropout + Linear(hidden, K), a private
        pooler per exit (BERT's pooler shape; DeeBERT's highway exits use the same idea).
    classifier_dropout : float in [0, 1), optional
        Dropout before each exit classifier; ``None`` uses the encoder's ``hidden_dropout_prob`` (or 0.1).
    calibration : dict, optional
        Written by :func:`calibrate`: the grid table, the chosen setting and the full-depth macro-F1.
    num_labels, id2label, label2id, problem_type
        As in transformers. ``problem_type`` must be ``"single_label_classification"`` (softmax + CE) or
        ``"multi_label_classification"`` (sigmoids + BCE); ``None`` means single-label.

    Raises
    ------
    ConfigError
        For a value outside the ranges above, with the field, the value and the allowed values.
    """

    model_type = "early_exit_bert"
    sub_configs_defaults = {"encoder": SubConfigSpec(config_class=AutoConfig, model_type="bert")}

    encoder: dict | PreTrainedConfig | None = None
    exit_rule: str = "entropy"
    entropy_threshold: float | int = 0.0
    patience: int = 0
    layer_loss_weights: str | list = "linear"
    training_mode: str = "joint"
    training_stage: int = 1
    classifier_head: str = "linear"
    classifier_dropout: float | int | None = None
    calibration: dict | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        if self.problem_type is None:
            self.problem_type = "single_label_classification"
        if self.id2label is not None and not self.label2id:
            self.label2id = {label: int(i) for i, label in self.id2label.items()}
        validate_exit_settings(
            self.exit_rule,
            self.entropy_threshold,
            self.patience,
            self.num_hidden_layers,
            where="EarlyExitConfig",
        )
        if self.problem_type not in PROBLEM_TYPES:
            raise ConfigError(
                f"EarlyExitConfig: problem_type {self.problem_type!r} is not supported; "
                f"use one of {PROBLEM_TYPES}"
            )
        if self.training_mode not in TRAINING_MODES:
            raise ConfigError(
                f"EarlyExitConfig: training_mode must be one of {TRAINING_MODES}, got {self.training_mode!r}"
            )
        if self.training_stage not in (1, 2):
            raise ConfigError(f"EarlyExitConfig: training_stage must be 1 or 2, got {self.training_stage!r}")
        if self.classifier_head not in CLASSIFIER_HEADS:
            raise ConfigError(
                f"EarlyExitConfig: classifier_head must be one of {CLASSIFIER_HEADS}, "
                f"got {self.classifier_head!r}"
            )
        if self.classifier_dropout is not None and not 0.0 <= float(self.classifier_dropout) < 1.0:
            raise ConfigError(
                f"EarlyExitConfig: classifier_dropout must be in [0, 1) or None, "
                f"got {self.classifier_dropout!r}"
            )
        resolve_layer_loss_weights(self.layer_loss_weights, self.num_hidden_layers)  # validates
        model_type = getattr(self.encoder, "model_type", "")
        if model_type in UNSUPPORTED_ENCODERS:
            raise ConfigError(
                f"EarlyExitConfig: encoder type {model_type!r} is not supported "
                "(its layers need relative-position "
                "inputs that early exit does not build); use a BERT-family encoder such as bert, roberta, "
                "electra, xlm-roberta or mpnet"
            )
        if getattr(self.encoder, "is_decoder", False):
            raise ConfigError(
                "EarlyExitConfig: the encoder config has is_decoder=True; early exit needs an encoder"
            )

    @property
    def num_hidden_layers(self) -> int:
        """L, the number of encoder layers (and of exits)."""
        return int(self.encoder.num_hidden_layers)

    @property
    def multi_label(self) -> bool:
        """True for ``problem_type == "multi_label_classification"``."""
        return self.problem_type == "multi_label_classification"


def validate_exit_settings(
    exit_rule: str, entropy_threshold: float, patience: int, num_layers: int, where: str = "early exit"
) -> None:
    """Check an exit rule and its thresholds.

    Raises
    ------
    ConfigError
        If ``exit_rule`` is unknown, ``entropy_threshold`` is outside [0, 1], or ``patience`` is not an
        integer in [0, num_layers].
    """
    if exit_rule not in EXIT_RULES:
        raise ConfigError(f"{where}: exit_rule must be one of {EXIT_RULES}, got {exit_rule!r}")
    if (
        isinstance(entropy_threshold, bool)
        or not isinstance(entropy_threshold, int | float)
        or not (0.0 <= float(entropy_threshold) <= 1.0)
    ):
        raise ConfigError(
            f"{where}: entropy_threshold must be a number in [0, 1] "
            "(0 = never exit early, 1 = exit at layer 1), "
            f"got {entropy_threshold!r}"
        )
    if isinstance(patience, bool) or not isinstance(patience, int) or not 0 <= patience <= num_layers:
        raise ConfigError(
            f"{where}: patience must be an integer in [0, {num_layers}] (0 = use all layers), "
            f"got {patience!r}"
        )


def resolve_layer_loss_weights(spec: str | Sequence[float], num_layers: int) -> list[float]:
    """Per-layer loss weights w_1..w_L of joint training.

    Parameters
    ----------
    spec : "linear", "uniform", a comma-separated string of floats, or a sequence of L floats
        ``"linear"`` gives w_i = i (PABEE, ``modeling_pabee_bert.py``); ``"uniform"`` gives w_i = 1.
    num_layers : int
        L.

    Returns
    -------
    list of L floats, all >= 0 with a positive sum.

    Raises
    ------
    ConfigError
        For an unknown name, a list of the wrong length, a negative weight, or weights summing to 0.
    """
    if isinstance(spec, str):
        if spec == "linear":
            return [float(i) for i in range(1, num_layers + 1)]
        if spec == "uniform":
            return [1.0] * num_layers
        try:
            spec = [float(v) for v in spec.split(",")]
        except ValueError as err:
            raise ConfigError(
                f"layer_loss_weights must be 'linear', 'uniform' or {num_layers} comma-separated numbers, "
                f"got {spec!r}"
            ) from err
    weights = [float(v) for v in spec]
    if len(weights) != num_layers:
        raise ConfigError(
            f"layer_loss_weights has {len(weights)} values but the encoder has {num_layers} layers; "
            f"give one weight per layer or use 'linear'/'uniform'"
        )
    if any(w < 0 or not math.isfinite(w) for w in weights) or sum(weights) <= 0:
        raise ConfigError(f"layer_loss_weights must be finite, >= 0 and not all 0, got {weights}")
    return weights


# ==================================================================================================
# Exit rules (shared by the dynamic forward and the offline simulation)
# ==================================================================================================
def normalized_entropy(logits: torch.Tensor, multi_label: bool = False) -> torch.Tensor:
    """Entropy of the predicted distribution divided by its maximum, in [0, 1].

    Single-label: H(p) / log(K) with p = softmax(logits) (Mei 2020, Algorithm 1: "uncertainty").
    Multi-label: the mean over labels of the binary entropy of sigmoid(logit), divided by log 2 (our
    choice: the paper treats single-label tasks only; each label is an independent Bernoulli).
    Computed from ``log_softmax``/``logsigmoid``, never ``exp`` of raw logits, so it cannot overflow
    (STYLE §7, against DeeBERT's ``entropy()``).

    Parameters
    ----------
    logits : Tensor of shape (..., num_labels)

    Returns
    -------
    Tensor of shape (...), float32, clamped to [0, 1].
    """
    z = logits.float()
    num_labels = z.shape[-1]
    if multi_label:
        log_p, log_q = F.logsigmoid(z), F.logsigmoid(-z)
        h = -(log_p.exp() * log_p + log_q.exp() * log_q) / math.log(2.0)
        return h.mean(dim=-1).clamp(0.0, 1.0)
    if num_labels < 2:
        return torch.zeros(z.shape[:-1], dtype=torch.float32, device=z.device)
    log_p = F.log_softmax(z, dim=-1)
    return (-(log_p.exp() * log_p).sum(dim=-1) / math.log(num_labels)).clamp(0.0, 1.0)


def predicted_labels(logits: torch.Tensor, multi_label: bool = False) -> torch.Tensor:
    """Return label ids ``argmax`` (shape (...,)) or, multi-label, the 0/1 set ``logit >= 0`` (..., K)."""
    return (logits >= 0).long() if multi_label else logits.argmax(dim=-1)


@dataclass(frozen=True)
class ExitSettings:
    """A resolved exit rule for one call: the rule and both thresholds (config values unless overridden)."""

    rule: str
    entropy_threshold: float
    patience: int
    num_layers: int

    @property
    def effective_rule(self) -> str:
        """``"none"`` when the rule can never exit before layer L (S = 0, t = 0 or t = L), else the rule.

        With ``"none"`` the intermediate classifiers are not evaluated at inference (nor counted in
        FLOPs).
        """
        if self.rule == "entropy" and self.entropy_threshold <= 0.0:
            return "none"
        if self.rule == "patience" and (self.patience == 0 or self.patience >= self.num_layers):
            return "none"
        return self.rule


class ExitTracker:
    """Per-row state of an exit rule over successive layers (rows may be dropped between layers).

    Shared by the dynamic forward and :func:`simulate_exits`, so both decide exits with the same code.

    Entropy rule: a row exits at layer i when ``normalized_entropy < S``; S >= 1 exits every row
    (H <= 1 always; this makes "1 exits at layer 1" exact even for a uniform prediction).
    Patience rule: ``count_i = count_{i-1} + 1`` if the prediction at layer i equals that at layer i-1,
    else 1 (``count_1 = 1``); the row exits at the first layer with ``count_i >= t``, i.e. when the
    predictions at layers i-t+1..i all agree. This is PABEE's counter (reset on disagreement) counted in
    heads rather than agreements: PABEE's ``patience = p`` (p >= 1) equals our t = p + 1. Mei (2020)'s
    Algorithm 2 keeps ``cnt`` on disagreement instead of resetting it; we follow PABEE, since "the number of
    times the prediction remains unchanged" must be consecutive for the rule to mean agreement. For
    multi-label tasks the "prediction" is the whole 0/1 label set. The last layer always exits.
    """

    def __init__(self, settings: ExitSettings, multi_label: bool) -> None:
        self.settings = settings
        self.multi_label = multi_label
        self.previous: torch.Tensor | None = None
        self.count: torch.Tensor | None = None

    def step(self, logits: torch.Tensor, layer: int) -> torch.Tensor:
        """Decide which rows leave at ``layer`` (1-based) from their ``logits`` (rows, K); bool (rows,)."""
        s = self.settings
        rows = logits.shape[0]
        if layer >= s.num_layers:
            return torch.ones(rows, dtype=torch.bool, device=logits.device)
        rule = s.effective_rule
        if rule == "none":
            return torch.zeros(rows, dtype=torch.bool, device=logits.device)
        if rule == "entropy":
            if s.entropy_threshold >= 1.0:
                return torch.ones(rows, dtype=torch.bool, device=logits.device)
            return normalized_entropy(logits, self.multi_label) < s.entropy_threshold
        prediction = predicted_labels(logits, self.multi_label)
        if self.previous is None:
            self.count = torch.ones(rows, dtype=torch.long, device=logits.device)
        else:
            same = prediction == self.previous
            if self.multi_label:
                same = same.all(dim=-1)
            self.count = torch.where(same, self.count + 1, torch.ones_like(self.count))
        self.previous = prediction
        return self.count >= s.patience

    def keep(self, rows: torch.Tensor) -> None:
        """Drop the state of rows that left: keep only ``rows`` (bool mask over the current rows)."""
        if self.previous is not None:
            self.previous = self.previous[rows]
            self.count = self.count[rows]


def simulate_exits(
    all_logits: torch.Tensor, settings: ExitSettings, multi_label: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply an exit rule offline to the logits of every exit.

    Exact: the exits are deterministic functions of each layer's logits, so this gives the same exit layers
    as running the model with that rule (up to floating-point noise between batch compositions).

    Parameters
    ----------
    all_logits : Tensor of shape (L, n_docs, num_labels)
        Logits of exit 1..L for every document.
    settings : ExitSettings

    Returns
    -------
    exit_layer : Tensor of shape (n_docs,), long, in 1..L
    logits : Tensor of shape (n_docs, num_labels), the logits of each document's exit layer
    """
    num_layers, n_docs = all_logits.shape[0], all_logits.shape[1]
    exit_layer = torch.full((n_docs,), num_layers, dtype=torch.long, device=all_logits.device)
    decided = torch.zeros(n_docs, dtype=torch.bool, device=all_logits.device)
    tracker = ExitTracker(settings, multi_label)
    for i in range(num_layers):
        leave = tracker.step(all_logits[i], i + 1)
        newly = leave & ~decided
        exit_layer[newly] = i + 1
        decided |= leave
    index = (exit_layer - 1).view(1, n_docs, 1).expand(1, n_docs, all_logits.shape[-1])
    return exit_layer, all_logits.gather(0, index).squeeze(0)


# ==================================================================================================
# Losses
# ==================================================================================================
def _layer_loss(logits: torch.Tensor, labels: torch.Tensor, multi_label: bool) -> torch.Tensor:
    if multi_label:
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float())
    return F.cross_entropy(logits.float(), labels.view(-1).long())


def joint_exit_loss(
    all_logits: torch.Tensor, labels: torch.Tensor, weights: Sequence[float], multi_label: bool = False
) -> torch.Tensor:
    """Weighted mean of the per-layer losses, sum_i w_i loss_i / sum_i w_i (PABEE; Mei 2020 §3.2).

    Parameters
    ----------
    all_logits : Tensor of shape (L, batch_size, num_labels)
    labels : Tensor of shape (batch_size,) long, or (batch_size, num_labels) float 0/1 (multi-label)
    weights : sequence of L floats
    multi_label : bool
        Cross-entropy over softmax (False) or binary cross-entropy over sigmoids (True), each a batch mean.

    Returns
    -------
    Tensor of shape (), in nats.
    """
    total = sum(
        float(w) * _layer_loss(all_logits[i], labels, multi_label) for i, w in enumerate(weights) if w
    )
    return total / float(sum(weights))


def self_distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, multi_label: bool = False
) -> torch.Tensor:
    """Sum over the students of KL(p_teacher || p_student), each a batch mean (Mei 2020 §3.2; FastBERT).

    Mei (2020) writes the sum over the L-1 students of D_KL(p_s, p_t) with the formula copied from FastBERT
    (Liu et al. 2020), which reads as KL(p_s || p_t); FastBERT's released code computes
    ``KLDivLoss(reduction="batchmean")(log_softmax(student), teacher_probs)``, i.e. KL(p_t || p_s), the usual
    distillation direction (Hinton et al. 2015). We follow the code. The teacher is detached. Multi-label:
    per-label Bernoulli KL, summed over labels (the KL of the product distribution), batch mean.

    Parameters
    ----------
    student_logits : Tensor of shape (L - 1, batch_size, num_labels)
    teacher_logits : Tensor of shape (batch_size, num_labels)

    Returns
    -------
    Tensor of shape (), in nats.
    """
    teacher = teacher_logits.detach().float()
    students = student_logits.float()
    if multi_label:
        t_pos, t_neg = F.logsigmoid(teacher), F.logsigmoid(-teacher)
        s_pos, s_neg = F.logsigmoid(students), F.logsigmoid(-students)
        kl = t_pos.exp() * (t_pos - s_pos) + t_neg.exp() * (t_neg - s_neg)  # (L-1, B, K)
        return kl.sum(dim=-1).mean(dim=-1).sum()
    log_t = F.log_softmax(teacher, dim=-1)
    log_s = F.log_softmax(students, dim=-1)
    kl = (log_t.exp() * (log_t - log_s)).sum(dim=-1)  # (L-1, B)
    return kl.mean(dim=-1).sum()


# ==================================================================================================
# FLOPs (analytic, matching torch's FlopCounterMode with eager attention)
# ==================================================================================================
def encoder_layer_flops(encoder_config: PreTrainedConfig, seq_len: int | np.ndarray) -> float | np.ndarray:
    """FLOPs of one Transformer encoder layer on one document of ``seq_len`` tokens.

    Counts the matrix products as ``torch.utils.flop_counter.FlopCounterMode`` and
    :func:`frugaltext.cost.flops.count_flops` do (2 FLOPs per multiply-add; bias, softmax, GELU and
    LayerNorm are not counted), attention included: Q, K, V and output projections 8·n·H², attention scores
    and weighted sum 4·n²·H, feed-forward 4·n·H·I, with n = seq_len, H = hidden_size,
    I = intermediate_size. Mei (2020) Table 1 splits a layer the same way (self-attention + feed-forward).

    Parameters
    ----------
    encoder_config : the encoder's config (hidden_size, intermediate_size)
    seq_len : int or ndarray of shape (n_docs,)

    Returns
    -------
    float or ndarray of shape (n_docs,), FLOPs.
    """
    n, h = np.asarray(seq_len, dtype=np.float64), float(encoder_config.hidden_size)
    i = float(getattr(encoder_config, "intermediate_size", 4 * encoder_config.hidden_size))
    flops = 8.0 * n * h * h + 4.0 * n * n * h + 4.0 * n * h * i
    return float(flops) if flops.ndim == 0 else flops


def exit_head_flops(config: EarlyExitConfig) -> float:
    """FLOPs of one exit classifier on one [CLS] vector: 2·H·K, plus 2·H² for ``dense_tanh``."""
    h, k = float(config.encoder.hidden_size), float(config.num_labels)
    return 2.0 * h * k + (2.0 * h * h if config.classifier_head == "dense_tanh" else 0.0)


def document_flops(
    config: EarlyExitConfig,
    seq_len: int | np.ndarray,
    exit_layer: int | np.ndarray,
    heads_evaluated: int | np.ndarray | None = None,
) -> float | np.ndarray:
    """Forward FLOPs of a document that ran ``exit_layer`` layers: embeddings + layers + classifiers.

    Embeddings are table look-ups, adds and a LayerNorm: 0 matrix-product FLOPs (as FlopCounterMode counts).
    ``heads_evaluated`` defaults to ``exit_layer`` (one classifier per layer run); a rule that cannot exit
    early evaluates only the final classifier (1). Arrays of shape (n_docs,) give one value per document.
    """
    heads = exit_layer if heads_evaluated is None else heads_evaluated
    flops = np.asarray(exit_layer, dtype=np.float64) * encoder_layer_flops(
        config.encoder, seq_len
    ) + np.asarray(heads, dtype=np.float64) * exit_head_flops(config)
    return float(flops) if np.ndim(flops) == 0 else flops


def train_step_flops(
    config: EarlyExitConfig, seq_len: int | np.ndarray, stage: int | None = None
) -> float | np.ndarray:
    """FLOPs of one training step (forward + backward, no optimizer) on one document of ``seq_len`` tokens.

    Training runs every layer and every exit. The backward of a matrix product costs twice its forward
    (gradients of input and weight; Kaplan et al. 2020 §2.1), so, as
    :func:`frugaltext.cost.flops.count_flops` counts it:

    * joint (``stage=None``): 3 × (L layers + L exits);
    * two-stage, stage 1: forward of L layers + L exits, backward of L layers + the final exit (the other
      exits run without gradient);
    * two-stage, stage 2: forward of L layers + L exits, backward of exits 1..L-1 only, whose inputs need
      no gradient (weight gradients only: 2·H·K each; ``dense_tanh`` adds the gradient into the dense layer,
      2·H·K + 2·H²).

    Returns
    -------
    float or ndarray of shape (n_docs,), FLOPs.
    """
    num_layers = config.num_hidden_layers
    layers = num_layers * encoder_layer_flops(config.encoder, seq_len)
    head = exit_head_flops(config)
    forward = layers + num_layers * head
    if stage is None:
        return 3.0 * forward
    if stage == 1:
        return forward + 2.0 * (layers + head)
    h, k = float(config.encoder.hidden_size), float(config.num_labels)
    student_backward = 2.0 * h * k + (
        (2.0 * h * k + 2.0 * h * h) if config.classifier_head == "dense_tanh" else 0.0
    )
    return forward + (num_layers - 1) * student_backward


# ==================================================================================================
# Model
# ==================================================================================================
@dataclass
class EarlyExitOutput(ModelOutput):
    """Output of :class:`EarlyExitForSequenceClassification`.

    Attributes
    ----------
    loss : Tensor of shape (), optional
        Training loss (see :meth:`EarlyExitForSequenceClassification.forward`).
    logits : Tensor of shape (batch_size, num_labels)
        Logits of each document's exit layer.
    exit_layer : Tensor of shape (batch_size,), long
        1-based layer at which each document left.
    all_logits : Tensor of shape (L, batch_size, num_labels), optional
        Logits of every exit, when ``all_exits=True``.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    exit_layer: torch.Tensor | None = None
    all_logits: torch.Tensor | None = None


class ExitClassifier(nn.Module):
    """Classifier of one exit on the [CLS] hidden state (see ``EarlyExitConfig.classifier_head``).

    Input (batch_size, hidden_size) -> logits (batch_size, num_labels).
    """

    def __init__(self, hidden_size: int, num_labels: int, dropout: float, head: str = "linear") -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden_size, hidden_size) if head == "dense_tanh" else None
        self.out = nn.Linear(hidden_size, num_labels)

    def forward(self, cls_hidden: torch.Tensor) -> torch.Tensor:  # noqa: D102
        x = self.dropout(cls_hidden)
        if self.dense is not None:
            x = self.dropout(torch.tanh(self.dense(x)))
        return self.out(x)


class EarlyExitForSequenceClassification(PreTrainedModel):
    """A BERT-family encoder with a classifier after each of its L layers and per-document early exit.

    Build it from a checkpoint with :meth:`from_encoder`; ``save_pretrained``/``from_pretrained`` keep the
    exit rule, thresholds, calibration table and weights (safetensors + ``config.json``). After
    ``import frugaltext.models.early_exit``, ``AutoModelForSequenceClassification.from_pretrained(dir)``
    loads it.

    Parameters
    ----------
    config : EarlyExitConfig

    Notes
    -----
    The encoder's own layers are called directly: embeddings once, then ``layer(hidden, mask)`` for each
    layer, with the attention mask built by transformers' ``create_bidirectional_mask`` from the encoder's
    config, exactly as ``BertModel.forward`` does (transformers 5.23), so eager, sdpa, flash and flex
    attention all work. MPNet's relative position bias is passed when the encoder computes one. The
    pooler is not used (the exits are pooler-free, as PABEE's are) and is not built.
    """

    config_class = EarlyExitConfig
    base_model_prefix = "encoder"
    main_input_name = "input_ids"
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    def __init__(self, config: EarlyExitConfig) -> None:
        super().__init__(config)
        try:
            self.encoder = AutoModel.from_config(config.encoder, add_pooling_layer=False)
        except TypeError:  # an encoder class without a pooler argument
            self.encoder = AutoModel.from_config(config.encoder)
        _check_encoder(self.encoder)
        dropout = config.classifier_dropout
        if dropout is None:
            dropout = getattr(config.encoder, "hidden_dropout_prob", 0.1)
        hidden = config.encoder.hidden_size
        self.classifiers = nn.ModuleList(
            [
                ExitClassifier(hidden, config.num_labels, float(dropout), config.classifier_head)
                for _ in range(config.num_hidden_layers)
            ]
        )
        self.post_init()
        self._apply_stage_freezing()

    # ---- construction ----------------------------------------------------------------------------
    @classmethod
    def from_encoder(
        cls,
        encoder: str | PreTrainedConfig,
        num_labels: int,
        id2label: dict[int, str] | None = None,
        problem_type: str = "single_label_classification",
        attn_implementation: str | None = None,
        **config_kwargs: Any,
    ) -> EarlyExitForSequenceClassification:
        """Wrap a pretrained encoder checkpoint (or a fresh encoder config) with new exit classifiers.

        Parameters
        ----------
        encoder : str or PreTrainedConfig
            A local Hugging Face checkpoint folder (weights are loaded) or an encoder config (random init).
        num_labels : int
        id2label : dict, optional
            Label names; default ``{i: "LABEL_i"}``.
        problem_type : {"single_label_classification", "multi_label_classification"}
        attn_implementation : str, optional
            ``"eager"``, ``"sdpa"``, ...; transformers' default when omitted.
        **config_kwargs
            Other :class:`EarlyExitConfig` fields (exit_rule, entropy_threshold, training_mode, ...).

        Raises
        ------
        ModelLoadError
            If the checkpoint cannot be read.
        ConfigError
            For invalid exit settings or an unsupported encoder.
        """
        kwargs = {} if attn_implementation is None else {"attn_implementation": attn_implementation}
        pretrained = None
        if isinstance(encoder, PreTrainedConfig):
            encoder_config = encoder
            if attn_implementation is not None:
                encoder_config._attn_implementation = attn_implementation
        else:
            try:  # loaded whole (a checkpoint's pooler weights then match); the pooler is dropped below
                pretrained = AutoModel.from_pretrained(str(encoder), **kwargs)
            except (OSError, ValueError) as err:
                raise ModelLoadError(
                    f"cannot load the encoder from {encoder!r} ({err}); "
                    "pass a local Hugging Face checkpoint folder "
                    "with config.json and weights"
                ) from err
            encoder_config = pretrained.config
        id2label = id2label if id2label is not None else {i: f"LABEL_{i}" for i in range(num_labels)}
        config = EarlyExitConfig(
            encoder=encoder_config,
            num_labels=num_labels,
            id2label=dict(id2label),
            label2id={v: int(k) for k, v in dict(id2label).items()},
            problem_type=problem_type,
            **config_kwargs,
        )
        model = cls(config)
        if pretrained is not None:
            state = {k: v for k, v in pretrained.state_dict().items() if not k.startswith("pooler.")}
            missing, unexpected = model.encoder.load_state_dict(state, strict=False)
            if [k for k in missing if not k.startswith("pooler.")] or unexpected:
                raise ModelLoadError(
                    f"{encoder}: encoder weights do not fit "
                    f"(missing {missing[:5]}, unexpected {unexpected[:5]})"
                )
        if attn_implementation is not None:
            model.config._attn_implementation = attn_implementation
        return model

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Exit classifiers: normal(0, encoder initializer_range) weights, zero biases (BERT's init)."""
        if isinstance(module, nn.Linear):
            init.normal_(
                module.weight, mean=0.0, std=float(getattr(self.config.encoder, "initializer_range", 0.02))
            )
            if module.bias is not None:
                init.zeros_(module.bias)

    # ---- two-stage training ----------------------------------------------------------------------
    def set_training_stage(self, stage: int) -> None:
        """Select the stage of two-stage training (Mei 2020 §3.2.1) and freeze parameters accordingly.

        Stage 1 trains embeddings, all layers and the final classifier (exits 1..L-1 frozen); stage 2 freezes
        those and trains exits 1..L-1 by self-distillation. Frozen parameters get ``requires_grad=False``,
        so optimizers and DDP skip them.

        Raises
        ------
        ConfigError
            If ``training_mode`` is not ``"two_stage"`` or ``stage`` is not 1 or 2.
        """
        if self.config.training_mode != "two_stage":
            raise ConfigError(
                f"set_training_stage: training_mode is {self.config.training_mode!r}; stages exist only with "
                "training_mode='two_stage'"
            )
        if stage not in (1, 2):
            raise ConfigError(f"set_training_stage: stage must be 1 or 2, got {stage!r}")
        self.config.training_stage = stage
        self._apply_stage_freezing()
        self.train(self.training)

    def _apply_stage_freezing(self) -> None:
        backbone = [*self.encoder.parameters(), *self.classifiers[-1].parameters()]
        students = [p for head in self.classifiers[:-1] for p in head.parameters()]
        if self.config.training_mode != "two_stage":
            for p in (*backbone, *students):
                p.requires_grad_(True)
            return
        stage = self.config.training_stage
        for p in backbone:
            p.requires_grad_(stage == 1)
        for p in students:
            p.requires_grad_(stage == 2)

    def _stage2(self) -> bool:
        return self.config.training_mode == "two_stage" and self.config.training_stage == 2

    def train(self, mode: bool = True) -> EarlyExitForSequenceClassification:
        """As ``nn.Module.train``; in stage 2 of two-stage training the frozen backbone stays in eval mode.

        So the features and the teacher distribution are those used at inference, without dropout (our
        choice; FastBERT leaves dropout on in the frozen backbone).
        """
        super().train(mode)
        if mode and self._stage2():
            self.encoder.eval()
            self.classifiers[-1].eval()
        return self

    # ---- encoder pieces --------------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        """L."""
        return len(self.encoder.encoder.layer)

    def _embed(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None) -> torch.Tensor:
        if token_type_ids is not None:
            return self.encoder.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        return self.encoder.embeddings(input_ids=input_ids)

    def _layer_inputs(self, hidden: torch.Tensor, mask2d: torch.Tensor) -> tuple[Any, dict[str, Any]]:
        """Build the inputs every layer takes besides the hidden states.

        The attention mask in the format of the encoder's attention implementation (as ``BertModel`` builds
        it), plus MPNet's relative position bias when the encoder has one.
        """
        mask = create_bidirectional_mask(
            config=self.encoder.config, inputs_embeds=hidden, attention_mask=mask2d
        )
        extra: dict[str, Any] = {}
        encoder_stack = self.encoder.encoder
        if hasattr(encoder_stack, "compute_position_bias"):
            extra["position_bias"] = encoder_stack.compute_position_bias(hidden)
        return mask, extra

    def _run_layer(self, index: int, hidden: torch.Tensor, mask: Any, extra: dict[str, Any]) -> torch.Tensor:
        out = self.encoder.encoder.layer[index](hidden, mask, **extra)
        return out[0] if isinstance(out, tuple) else out

    def resolve_exit_settings(
        self,
        exit_rule: str | None = None,
        entropy_threshold: float | None = None,
        patience: int | None = None,
    ) -> ExitSettings:
        """Return the config's exit rule and thresholds with any per-call overrides, validated.

        Raises
        ------
        ConfigError
            For an unknown rule or a threshold out of range.
        """
        rule = self.config.exit_rule if exit_rule is None else exit_rule
        s = self.config.entropy_threshold if entropy_threshold is None else entropy_threshold
        t = self.config.patience if patience is None else patience
        if isinstance(t, float) and t.is_integer():
            t = int(t)
        validate_exit_settings(
            rule, s, t, self.num_layers, where="EarlyExitForSequenceClassification.forward"
        )
        return ExitSettings(
            rule=rule, entropy_threshold=float(s), patience=int(t), num_layers=self.num_layers
        )

    # ---- forward ---------------------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        entropy_threshold: float | None = None,
        patience: int | None = None,
        exit_rule: str | None = None,
        all_exits: bool = False,
        token_type_ids: torch.Tensor | None = None,
    ) -> EarlyExitOutput:
        """Classify a batch, each document leaving at its own layer.

        Parameters
        ----------
        input_ids : Tensor of shape (batch_size, seq_len), long
        attention_mask : Tensor of shape (batch_size, seq_len), optional
            1 for tokens, 0 for padding (right padding, as the BERT tokenizers and our collator produce).
        labels : Tensor of shape (batch_size,) long or (batch_size, num_labels) float 0/1, optional
        entropy_threshold, patience, exit_rule : optional
            Override the config for this call only.
        all_exits : bool
            Also return the logits of every exit (runs all layers for every row).
        token_type_ids : Tensor of shape (batch_size, seq_len), optional

        Returns
        -------
        EarlyExitOutput
            ``logits`` (batch_size, num_labels) of each document's exit layer, ``exit_layer`` (batch_size,),
            ``all_logits`` (L, batch_size, num_labels) when ``all_exits``, and ``loss``:

            * joint: sum_i w_i CE_i / sum_i w_i over the L exits (BCE for multi-label);
            * two_stage, stage 1: CE (BCE) of the final classifier;
            * two_stage, stage 2: sum over exits 1..L-1 of KL(final || exit); computed in training mode even
              without labels, so unlabeled text can be used.

        In training mode, with ``labels`` or with ``all_exits`` every layer runs on every row and the exits
        are applied offline (:func:`simulate_exits`); otherwise only the rows still active run each next
        layer. Both give the same exits.

        Raises
        ------
        ConfigError
            For an invalid override.
        """
        if input_ids is None:
            raise ConfigError("EarlyExitForSequenceClassification.forward: input_ids is required")
        settings = self.resolve_exit_settings(exit_rule, entropy_threshold, patience)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        needs_loss = labels is not None or (self.training and self._stage2())
        if self.training or needs_loss or all_exits:
            return self._forward_all_layers(
                input_ids, attention_mask, token_type_ids, labels, settings, needs_loss, all_exits
            )
        return self._forward_dynamic(input_ids, attention_mask, token_type_ids, settings)

    def _forward_all_layers(
        self, input_ids, attention_mask, token_type_ids, labels, settings, needs_loss, all_exits
    ) -> EarlyExitOutput:
        hidden = self._embed(input_ids, token_type_ids)
        mask, extra = self._layer_inputs(hidden, attention_mask)
        # In two-stage training the loss of each stage uses only some exits (stage 1: the final one;
        # stage 2: exits 1..L-1, with the final one as a detached teacher): the others run without gradient.
        two_stage = self.config.training_mode == "two_stage"
        stage2 = self._stage2()
        per_layer = []
        for i in range(self.num_layers):
            hidden = self._run_layer(i, hidden, mask, extra)
            is_final = i == self.num_layers - 1
            in_loss = not two_stage or (is_final != stage2)
            cls = hidden[:, 0]
            if in_loss:
                per_layer.append(self.classifiers[i](cls))
            else:
                with torch.no_grad():
                    per_layer.append(self.classifiers[i](cls.detach()))
        all_logits = torch.stack(per_layer)  # (L, B, K)
        loss = None
        if needs_loss:
            multi = self.config.multi_label
            if self.config.training_mode == "joint":
                weights = resolve_layer_loss_weights(self.config.layer_loss_weights, self.num_layers)
                loss = joint_exit_loss(all_logits, labels, weights, multi)
            elif self._stage2():
                loss = self_distillation_loss(all_logits[:-1], all_logits[-1], multi)
            else:
                loss = _layer_loss(all_logits[-1], labels, multi)
        with torch.no_grad():
            exit_layer, _ = simulate_exits(all_logits.detach(), settings, self.config.multi_label)
        index = (exit_layer - 1).view(1, -1, 1).expand(1, -1, all_logits.shape[-1])
        logits = all_logits.gather(0, index).squeeze(0)
        return EarlyExitOutput(
            loss=loss, logits=logits, exit_layer=exit_layer, all_logits=all_logits if all_exits else None
        )

    def _forward_dynamic(self, input_ids, attention_mask, token_type_ids, settings) -> EarlyExitOutput:
        batch_size = input_ids.shape[0]
        num_labels = self.config.num_labels
        hidden = self._embed(input_ids, token_type_ids)
        mask2d = attention_mask
        logits_out = hidden.new_zeros((batch_size, num_labels))
        exit_layer = torch.full((batch_size,), self.num_layers, dtype=torch.long, device=hidden.device)
        active = torch.arange(batch_size, device=hidden.device)
        tracker = ExitTracker(settings, self.config.multi_label)
        evaluate_every_head = settings.effective_rule != "none"
        mask, extra = self._layer_inputs(hidden, mask2d)
        for i in range(self.num_layers):
            if active.numel() == 0:
                break
            hidden = self._run_layer(i, hidden, mask, extra)
            layer = i + 1
            if not evaluate_every_head and layer < self.num_layers:
                continue
            logits = self.classifiers[i](hidden[:, 0])
            leave = tracker.step(logits, layer)
            if not bool(leave.any()):
                continue
            rows = active[leave]
            logits_out[rows] = logits[leave].to(logits_out.dtype)
            exit_layer[rows] = layer
            stay = ~leave
            if not bool(stay.any()):
                break
            active, hidden, mask2d = active[stay], hidden[stay], mask2d[stay]
            tracker.keep(stay)
            # Drop trailing columns that are padding for every remaining row: keys there are masked out,
            # so the remaining rows' results are unchanged while later layers cost less.
            columns = mask2d.bool().any(dim=0).nonzero()
            if columns.numel():
                width = int(columns.max()) + 1
                hidden, mask2d = hidden[:, :width], mask2d[:, :width]
            mask, extra = self._layer_inputs(hidden, mask2d)
        return EarlyExitOutput(logits=logits_out, exit_layer=exit_layer)

    # ---- cost ------------------------------------------------------------------------------------
    def flops_per_document(
        self,
        seq_lens: Sequence[int] | np.ndarray,
        exit_layers: Sequence[int] | np.ndarray,
        exit_rule: str | None = None,
        entropy_threshold: float | None = None,
        patience: int | None = None,
    ) -> np.ndarray:
        """Forward FLOPs of each document from the layers it actually ran (:func:`document_flops`).

        Parameters
        ----------
        seq_lens : array of shape (n_docs,)
            Tokens of each document (its own length, padding excluded).
        exit_layers : array of shape (n_docs,)
            1-based exit layers (from ``forward`` or :func:`simulate_exits`).
        exit_rule, entropy_threshold, patience : optional
            The rule that produced ``exit_layers`` (config by default): a rule that cannot exit early
            evaluates only the final classifier.

        Returns
        -------
        ndarray of shape (n_docs,), float64, FLOPs per document.
        """
        settings = self.resolve_exit_settings(exit_rule, entropy_threshold, patience)
        seq_lens, exit_layers = np.asarray(seq_lens), np.asarray(exit_layers)
        if seq_lens.shape != exit_layers.shape:
            raise ConfigError(
                f"flops_per_document: {seq_lens.shape[0]} lengths but {exit_layers.shape[0]} exit layers"
            )
        heads = np.ones_like(exit_layers) if settings.effective_rule == "none" else exit_layers
        return np.asarray(
            document_flops(self.config, seq_lens, exit_layers, heads), dtype=np.float64
        ).reshape(-1)


def _check_encoder(encoder: nn.Module) -> None:
    stack = getattr(encoder, "encoder", None)
    if not hasattr(encoder, "embeddings") or not isinstance(getattr(stack, "layer", None), nn.ModuleList):
        raise ConfigError(
            f"early exit needs a BERT-family encoder with .embeddings and .encoder.layer "
            "(BERT, RoBERTa, ELECTRA, "
            f"XLM-R, MPNet, ...); {type(encoder).__name__} has not"
        )


# ==================================================================================================
# Offline exits: all-exit logits, calibration, speed-accuracy curve
# ==================================================================================================
def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, multi_label: bool, num_labels: int) -> float:
    """Macro-F1 as :func:`frugaltext.metrics.classification_metrics` computes it (one definition).

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_docs,) (label ids) or (n_docs, num_labels) (0/1, multi-label)
    """
    from frugaltext.metrics import classification_metrics

    names = [str(i) for i in range(num_labels)]
    return float(
        classification_metrics(np.asarray(y_true), np.asarray(y_pred), names, multi_label)["macro_f1"]
    )


def _text_batches(
    texts: Sequence[str], tokenizer: Any, max_length: int, batch_size: int, truncation: str = "head"
) -> tuple[list[np.ndarray], list[dict[str, torch.Tensor]]]:
    """Tokenise and cut ``texts`` into length-sorted padded batches; returns (index arrays, batches)."""
    from frugaltext.data.collate import PadCollator, encode_texts, length_sorted_batches

    if tokenizer is None:
        raise ConfigError("texts were given without a tokenizer: pass tokenizer= (the encoder's tokenizer)")
    ids = encode_texts(tokenizer, texts, max_length, truncation)
    collator = PadCollator(tokenizer.pad_token_id or 0)
    order = length_sorted_batches([len(t) for t in ids], batch_size)
    return order, [collator([{"input_ids": ids[i]} for i in index]) for index in order]


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def collect_exit_logits(
    model: EarlyExitForSequenceClassification,
    data: Iterable[dict[str, torch.Tensor]] | Sequence[str],
    labels: np.ndarray | None = None,
    tokenizer: Any = None,
    max_length: int = 128,
    batch_size: int = 32,
    truncation: str = "head",
) -> tuple[torch.Tensor, np.ndarray | None, np.ndarray]:
    """Logits of every exit for every document, computed once (one full-depth pass per batch).

    Parameters
    ----------
    model : EarlyExitForSequenceClassification
    data : iterable of batch dicts or sequence of str
        Batches with ``input_ids``, ``attention_mask`` (and optionally ``labels``), e.g. a DataLoader over
        the shared collator; or raw texts (then ``tokenizer`` is required).
    labels : ndarray, optional
        Labels of the texts, (n,) int or (n, K) 0/1; ignored for batches (their ``labels`` key is used).
    tokenizer, max_length, batch_size, truncation
        Used for raw texts only.

    Returns
    -------
    all_logits : Tensor of shape (L, n_docs, num_labels), float32, on CPU, in input order
    labels : ndarray of shape (n_docs,) or (n_docs, K), or None when none were given
    seq_lens : ndarray of shape (n_docs,), int64, tokens per document (padding excluded)
    """
    model.eval()
    device = _device_of(model)
    if isinstance(data, Sequence) and (len(data) == 0 or isinstance(data[0], str)):
        order, batches = _text_batches(data, tokenizer, max_length, batch_size, truncation)
        chunks, lens = [], []
        for batch in batches:
            out = model(
                input_ids=batch["input_ids"].to(device),
                attention_mask=batch["attention_mask"].to(device),
                all_exits=True,
            )
            chunks.append(out.all_logits.float().cpu())
            lens.append(batch["attention_mask"].sum(dim=1).cpu())
        n = len(data)
        num_layers, num_labels = model.num_layers, model.config.num_labels
        all_logits = torch.zeros((num_layers, n, num_labels), dtype=torch.float32)
        seq_lens = np.zeros(n, dtype=np.int64)
        for index, chunk, length in zip(order, chunks, lens, strict=True):
            all_logits[:, torch.as_tensor(index)] = chunk
            seq_lens[index] = length.numpy()
        return all_logits, (None if labels is None else np.asarray(labels)), seq_lens
    chunks, lens, label_chunks = [], [], []
    for batch in data:
        mask = batch.get("attention_mask")
        input_ids = batch["input_ids"].to(device)
        mask = torch.ones_like(input_ids) if mask is None else mask.to(device)
        out = model(
            input_ids=input_ids,
            attention_mask=mask,
            all_exits=True,
            token_type_ids=batch["token_type_ids"].to(device) if "token_type_ids" in batch else None,
        )
        chunks.append(out.all_logits.float().cpu())
        lens.append(mask.sum(dim=1).cpu().numpy())
        if "labels" in batch:
            label_chunks.append(np.asarray(batch["labels"].cpu()))
    if not chunks:
        raise ConfigError("collect_exit_logits: no documents were given")
    found = np.concatenate(label_chunks) if label_chunks and len(label_chunks) == len(chunks) else None
    return torch.cat(chunks, dim=1), found, np.concatenate(lens).astype(np.int64)


def _evaluate_setting(
    model: EarlyExitForSequenceClassification,
    all_logits: torch.Tensor,
    labels: np.ndarray,
    seq_lens: np.ndarray,
    rule: str,
    value: float | int,
) -> tuple[dict[str, Any], np.ndarray]:
    """One row of a calibration table / curve: macro-F1, mean exit layer and mean FLOPs under one setting."""
    kwargs = (
        {"entropy_threshold": float(value)}
        if rule == "entropy"
        else ({"patience": int(value)} if rule == "patience" else {})
    )
    settings = model.resolve_exit_settings(rule, **kwargs)
    multi = model.config.multi_label
    exit_layer, logits = simulate_exits(all_logits, settings, multi)
    predicted = predicted_labels(logits, multi).numpy()
    exits = exit_layer.numpy()
    flops = model.flops_per_document(seq_lens, exits, rule, **kwargs)
    row = {
        "rule": rule,
        "entropy_threshold": float(value) if rule == "entropy" else None,
        "patience": int(value) if rule == "patience" else None,
        "macro_f1": macro_f1(labels, predicted, multi, model.config.num_labels),
        "mean_exit_layer": float(exits.mean()),
        "flops": float(flops.mean()),
    }
    return row, exits


def exit_histogram(exit_layers: np.ndarray, num_layers: int) -> list[int]:
    """Count the documents that left at each layer 1..L (list of L ints)."""
    return (
        np.bincount(np.asarray(exit_layers, dtype=np.int64), minlength=num_layers + 1)[1:]
        .astype(int)
        .tolist()
    )


@dataclass
class CalibrationResult:
    """Outcome of :func:`calibrate`.

    Attributes
    ----------
    rule : str
    table : list of dict
        One row per setting: ``rule``, ``entropy_threshold`` or ``patience``, ``macro_f1``,
        ``mean_exit_layer``, ``flops`` (mean per document).
    chosen : dict
        The chosen row, plus ``exit_layer_histogram`` (documents per layer 1..L).
    full_depth_macro_f1 : float
        Macro-F1 of the final classifier on every document.
    target_retention : float
    """

    rule: str
    table: list[dict[str, Any]]
    chosen: dict[str, Any]
    full_depth_macro_f1: float
    target_retention: float
    n_docs: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (stored as ``config.calibration``)."""
        return {
            "rule": self.rule,
            "target_retention": self.target_retention,
            "full_depth_macro_f1": self.full_depth_macro_f1,
            "n_docs": self.n_docs,
            "chosen": self.chosen,
            "table": self.table,
        }


def calibrate(
    model: EarlyExitForSequenceClassification,
    data: Iterable[dict[str, torch.Tensor]] | Sequence[str],
    rule: str = "entropy",
    target_retention: float = 0.99,
    *,
    labels: np.ndarray | None = None,
    tokenizer: Any = None,
    max_length: int = 128,
    batch_size: int = 32,
    truncation: str = "head",
    grid: Sequence[float] | None = None,
    save: bool = True,
    exit_logits: tuple[torch.Tensor, np.ndarray, np.ndarray] | None = None,
) -> CalibrationResult:
    """Pick the fastest exit setting whose validation macro-F1 keeps ``target_retention`` of full depth.

    The logits of every exit are computed once (:func:`collect_exit_logits`) and each setting is simulated
    offline (:func:`simulate_exits`), which is exact because exits are deterministic. Candidates: S in
    {0, 0.05, ..., 1} for the entropy rule, t in {1, ..., L} for the patience rule. The chosen setting has
    the lowest mean FLOPs per document among those with ``macro_f1 >= target_retention * full_depth_macro_f1``
    (ties: lower mean exit layer, then higher macro-F1). S = 0 and t = L run full depth, so a setting always
    qualifies. Mei (2020) tunes S and t by hand (Table 2); the retention target is ours.

    Parameters
    ----------
    model : EarlyExitForSequenceClassification
    data : iterable of batch dicts (with ``labels``) or sequence of str (then ``labels`` and ``tokenizer``)
    rule : {"entropy", "patience", "none"}
    target_retention : float in (0, 1]
    grid : sequence of numbers, optional
        Replaces the default candidates.
    save : bool
        Write the chosen rule and threshold, and ``calibration`` (this result), into ``model.config``.
    exit_logits : tuple, optional
        Output of :func:`collect_exit_logits` for the same documents, to skip the model pass.

    Returns
    -------
    CalibrationResult

    Raises
    ------
    ConfigError
        For an unknown rule, a target outside (0, 1], a grid value out of range, or data without labels.
    """
    if rule not in EXIT_RULES:
        raise ConfigError(f"calibrate: rule must be one of {EXIT_RULES}, got {rule!r}")
    if not 0.0 < float(target_retention) <= 1.0:
        raise ConfigError(f"calibrate: target_retention must be in (0, 1], got {target_retention!r}")
    if exit_logits is None:
        exit_logits = collect_exit_logits(model, data, labels, tokenizer, max_length, batch_size, truncation)
    all_logits, found_labels, seq_lens = exit_logits
    if found_labels is None:
        raise ConfigError(
            "calibrate: the data has no labels; pass labels= with texts, or batches with 'labels'"
        )
    num_layers = model.num_layers
    if grid is None:
        grid = (
            ENTROPY_GRID if rule == "entropy" else (range(1, num_layers + 1) if rule == "patience" else [0])
        )
    full_row, _ = _evaluate_setting(model, all_logits, found_labels, seq_lens, "none", 0)
    full = full_row["macro_f1"]
    table, exits_of = [], []
    for value in grid:
        row, exits = _evaluate_setting(model, all_logits, found_labels, seq_lens, rule, value)
        row["retention"] = row["macro_f1"] / full if full > 0 else 1.0
        table.append(row)
        exits_of.append(exits)
    feasible = [i for i, row in enumerate(table) if row["macro_f1"] >= float(target_retention) * full - 1e-12]
    if not feasible:  # only when the grid has no full-depth setting
        feasible = [max(range(len(table)), key=lambda i: table[i]["macro_f1"])]
    best = min(
        feasible, key=lambda i: (table[i]["flops"], table[i]["mean_exit_layer"], -table[i]["macro_f1"])
    )
    chosen = dict(table[best], exit_layer_histogram=exit_histogram(exits_of[best], num_layers))
    result = CalibrationResult(
        rule=rule,
        table=table,
        chosen=chosen,
        full_depth_macro_f1=full,
        target_retention=float(target_retention),
        n_docs=int(len(seq_lens)),
    )
    if save:
        model.config.exit_rule = rule
        if rule == "entropy":
            model.config.entropy_threshold = float(chosen["entropy_threshold"])
        elif rule == "patience":
            model.config.patience = int(chosen["patience"])
        model.config.calibration = result.to_dict()
    return result


@torch.inference_mode()
def measure_throughput(
    model: EarlyExitForSequenceClassification,
    batches: Sequence[dict[str, torch.Tensor]],
    n_docs: int,
    warmup_batches: int = 1,
    **exit_kwargs: Any,
) -> tuple[float, np.ndarray]:
    """Time real dynamic early-exit runs over pre-tokenised ``batches``.

    Returns
    -------
    throughput_docs_per_s : float
        ``n_docs`` divided by the wall time of all batches (tokenisation excluded; warm-up batches excluded).
    exit_layers : ndarray of shape (n_docs,) in batch order
    """
    model.eval()
    device = _device_of(model)
    moved = [{k: v.to(device) for k, v in b.items() if k in ("input_ids", "attention_mask")} for b in batches]
    for batch in moved[:warmup_batches]:
        model(**batch, **exit_kwargs)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    exits = []
    start = time.perf_counter()
    for batch in moved:
        exits.append(model(**batch, **exit_kwargs).exit_layer)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    duration_s = time.perf_counter() - start
    return n_docs / duration_s if duration_s > 0 else float("inf"), torch.cat(exits).cpu().numpy()


def early_exit_curve(
    model: EarlyExitForSequenceClassification,
    texts: Sequence[str],
    labels: np.ndarray,
    tokenizer: Any,
    *,
    max_length: int = 128,
    truncation: str = "head",
    entropy_grid: Sequence[float] = ENTROPY_GRID,
    patience_grid: Sequence[int] | None = None,
    batch_sizes: Sequence[int] = (32, 1),
    measure: bool = True,
    max_timing_docs: int | None = None,
) -> list[dict[str, Any]]:
    """Speed-accuracy sweep over S in ``entropy_grid`` and t in ``patience_grid`` (default 1..L).

    macro-F1, mean exit layer and FLOPs per document come from one all-exit pass simulated offline (exact).
    With ``measure``, each setting is also run for real, batched and dynamic, at each batch size, and
    ``throughput_docs_per_s_batch{b}`` is recorded (tokenisation excluded; one warm-up batch), together
    with ``n_exit_mismatch_batch{b}``, the number of documents whose real exit layer differs from the
    simulated one (0 expected; non-zero only from float noise at a threshold). Timings are for benchmarks;
    unit tests must not assert them.

    Parameters
    ----------
    model : EarlyExitForSequenceClassification
    texts : sequence of n_docs str
    labels : ndarray of shape (n_docs,) or (n_docs, K)
    tokenizer : the encoder's tokenizer
    max_timing_docs : int, optional
        Time only the first this many documents (all by default).

    Returns
    -------
    list of dict, one per setting: rule, entropy_threshold, patience, macro_f1, mean_exit_layer, flops, and
    the throughput columns when measured.
    """
    all_logits, _, seq_lens = collect_exit_logits(model, texts, labels, tokenizer, max_length, 32, truncation)
    labels = np.asarray(labels)
    patience_grid = range(1, model.num_layers + 1) if patience_grid is None else patience_grid
    settings = [("entropy", s) for s in entropy_grid] + [("patience", t) for t in patience_grid]
    timing_texts = list(texts) if max_timing_docs is None else list(texts)[:max_timing_docs]
    timing = {}
    if measure and timing_texts:
        for b in batch_sizes:
            timing[b] = _text_batches(timing_texts, tokenizer, max_length, int(b), truncation)
    rows = []
    for rule, value in settings:
        row, exits = _evaluate_setting(model, all_logits, labels, seq_lens, rule, value)
        if measure and timing_texts:
            kwargs = {"exit_rule": rule, ("entropy_threshold" if rule == "entropy" else "patience"): value}
            for b, (order, batches) in timing.items():
                throughput, real_exits = measure_throughput(model, batches, len(timing_texts), **kwargs)
                simulated = exits[np.concatenate(order)]
                row[f"throughput_docs_per_s_batch{b}"] = float(throughput)
                row[f"n_exit_mismatch_batch{b}"] = int((real_exits != simulated).sum())
        rows.append(row)
    return rows


# ==================================================================================================
# Auto registration: AutoModelForSequenceClassification.from_pretrained(dir) loads a saved model
# ==================================================================================================
AutoConfig.register(EarlyExitConfig.model_type, EarlyExitConfig, exist_ok=True)
AutoModelForSequenceClassification.register(
    EarlyExitConfig, EarlyExitForSequenceClassification, exist_ok=True
)
