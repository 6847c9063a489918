"""Early exit for BERT-family and MPNet encoders: a classifier after every layer, and per-document exits.

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

Where things live (all names below are importable from this package, as before the split):

- :mod:`~frugaltext.models.early_exit.config`: ``EarlyExitConfig``, the option tuples and their checks;
- :mod:`~frugaltext.models.early_exit.exits`: exit rules (entropy, patience) and the training losses;
- :mod:`~frugaltext.models.early_exit.flops`: analytic FLOPs per layer, head, document and training step;
- :mod:`~frugaltext.models.early_exit.model`: ``EarlyExitForSequenceClassification`` and its output
  (registered with the ``Auto*`` classes on import);
- :mod:`~frugaltext.models.early_exit.calibration`: all-exit logits, calibration, throughput, curves.

Public API
----------
EarlyExitConfig, EarlyExitForSequenceClassification, EarlyExitOutput
SUPPORTED_ENCODERS, EAGER_ONLY_ENCODERS, check_encoder_config
normalized_entropy, predicted_labels, simulate_exits
joint_exit_loss, self_distillation_loss, resolve_layer_loss_weights
embedding_flops, encoder_layer_flops, exit_head_flops, document_flops, train_step_flops
collect_exit_logits, calibrate, CalibrationResult, early_exit_curve, measure_throughput, exit_histogram
"""

from frugaltext.models.early_exit.calibration import (
    CalibrationResult,
    _device_of,
    _evaluate_setting,
    _text_batches,
    calibrate,
    collect_exit_logits,
    early_exit_curve,
    exit_histogram,
    macro_f1,
    measure_throughput,
)
from frugaltext.models.early_exit.config import (
    CLASSIFIER_HEADS,
    EAGER_ONLY_ENCODERS,
    ENTROPY_GRID,
    EXIT_RULES,
    PROBLEM_TYPES,
    SUPPORTED_ENCODERS,
    TRAINING_MODES,
    EarlyExitConfig,
    check_encoder_config,
    resolve_layer_loss_weights,
    validate_exit_settings,
)
from frugaltext.models.early_exit.exits import (
    ExitRule,
    ExitSettings,
    ExitTracker,
    _layer_loss,
    joint_exit_loss,
    normalized_entropy,
    predicted_labels,
    self_distillation_loss,
    simulate_exits,
)
from frugaltext.models.early_exit.flops import (
    document_flops,
    embedding_flops,
    encoder_layer_flops,
    exit_head_flops,
    train_step_flops,
)
from frugaltext.models.early_exit.model import (
    EarlyExitForSequenceClassification,
    EarlyExitOutput,
    ExitClassifier,
    _check_encoder,
)

__all__ = [
    "CLASSIFIER_HEADS",
    "EAGER_ONLY_ENCODERS",
    "ENTROPY_GRID",
    "EXIT_RULES",
    "PROBLEM_TYPES",
    "SUPPORTED_ENCODERS",
    "TRAINING_MODES",
    "CalibrationResult",
    "EarlyExitConfig",
    "EarlyExitForSequenceClassification",
    "EarlyExitOutput",
    "ExitClassifier",
    "ExitRule",
    "ExitSettings",
    "ExitTracker",
    "calibrate",
    "check_encoder_config",
    "collect_exit_logits",
    "document_flops",
    "early_exit_curve",
    "embedding_flops",
    "encoder_layer_flops",
    "exit_head_flops",
    "exit_histogram",
    "joint_exit_loss",
    "macro_f1",
    "measure_throughput",
    "normalized_entropy",
    "predicted_labels",
    "resolve_layer_loss_weights",
    "self_distillation_loss",
    "simulate_exits",
    "train_step_flops",
    "validate_exit_settings",
]

# private helpers that were importable from the single module before the split
_PRIVATE = (_check_encoder, _device_of, _evaluate_setting, _layer_loss, _text_batches)
