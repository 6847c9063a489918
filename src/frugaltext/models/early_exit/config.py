"""Configuration of the early-exit model: :class:`EarlyExitConfig`, its choices and their checks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from transformers import (
    AutoConfig,
    PreTrainedConfig,
)
from transformers.configuration_utils import SubConfigSpec

from frugaltext.errors import ConfigError

EXIT_RULES = ("entropy", "patience", "none")
TRAINING_MODES = ("joint", "two_stage")
CLASSIFIER_HEADS = ("linear", "dense_tanh")
PROBLEM_TYPES = ("single_label_classification", "multi_label_classification")
#: Encoder types (``config.model_type``) whose layers early exit runs one by one: embeddings (and ELECTRA's
#: ``embeddings_project``), then ``layer(hidden, attention_mask, **extra)`` for each layer, with MPNet's
#: relative position bias in ``extra``. Each is checked against its plain forward in the tests. Others
#: (DeBERTa, Funnel, Longformer, DistilBERT, ...) need layer inputs or embeddings this model does not build.
SUPPORTED_ENCODERS = ("bert", "roberta", "xlm-roberta", "camembert", "electra", "mpnet")
#: Encoder types whose attention is written out in their own code (scores + relative position bias +
#: additive float mask): only ``attn_implementation="eager"`` (or unset) is valid for them.
EAGER_ONLY_ENCODERS = ("mpnet",)
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
        Configuration of the wrapped encoder, of a type in :data:`SUPPORTED_ENCODERS` (BERT, RoBERTa,
        XLM-R, CamemBERT, ELECTRA, MPNet). A dict needs a ``model_type`` (``"bert"`` when missing). Saved as
        a nested object in ``config.json``.
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
        For a value outside the ranges above, with the field, the value and the allowed values; for an
        unsupported encoder type (:func:`check_encoder_config`).
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
        check_encoder_config(
            self.encoder, getattr(self.encoder, "_attn_implementation", None), where="EarlyExitConfig"
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


def check_encoder_config(
    encoder_config: PreTrainedConfig, attn_implementation: str | None = None, where: str = "early exit"
) -> None:
    """Check that early exit can run the layers of this encoder with this attention implementation.

    Parameters
    ----------
    encoder_config : PreTrainedConfig
        The encoder's config (its ``model_type`` is checked against :data:`SUPPORTED_ENCODERS`).
    attn_implementation : str, optional
        Requested attention implementation; for :data:`EAGER_ONLY_ENCODERS` (MPNet) only ``"eager"`` or None.
    where : str
        Prefix of the error message.

    Raises
    ------
    ConfigError
        For an encoder type outside :data:`SUPPORTED_ENCODERS` (naming it and the supported ones), or an
        attention implementation other than eager for MPNet.
    """
    model_type = getattr(encoder_config, "model_type", None) or "(none)"
    if model_type not in SUPPORTED_ENCODERS:
        raise ConfigError(
            f"{where}: encoder type {model_type!r} is not supported; early exit runs the encoder layer by "
            f"layer and supports the types {', '.join(SUPPORTED_ENCODERS)} (their layers take only the "
            "hidden states, the attention mask and, for mpnet, the relative position bias); use a checkpoint "
            "of one of these types"
        )
    if model_type in EAGER_ONLY_ENCODERS and attn_implementation not in (None, "eager"):
        raise ConfigError(
            f"{where}: encoder type {model_type!r} computes attention in its own code (it adds a relative "
            f"position bias to the scores), so attn_implementation {attn_implementation!r} is not available; "
            "leave attn_implementation empty or set it to 'eager'"
        )


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
