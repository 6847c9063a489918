"""What the student configurations share (``StudentConfig``, ``StaticConfig``, ``HANConfig``,
``XMLCNNConfig``): the checks of their loss and size settings, the loss of their ``forward`` and their
defaults. A bottom-layer module: it imports only the distillation losses, so any student model can use it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedConfig

from frugaltext.errors import ConfigError
from frugaltext.models.distillation_losses import DISTILLATION_LOSSES, distillation_loss

__all__ = [
    "PROBLEM_TYPES",
    "check_int",
    "check_loss_settings",
    "check_probability",
    "classification_loss",
    "finish_config",
]

PROBLEM_TYPES = ("single_label_classification", "multi_label_classification")


def check_loss_settings(config: PreTrainedConfig, where: str) -> None:
    """Validate ``problem_type``, ``distillation_loss``, ``alpha``, ``lam`` and ``temperature`` of ``config``.

    Raises
    ------
    ConfigError
        Naming ``where``, the field, the value and what is allowed.
    """
    if config.problem_type not in PROBLEM_TYPES:
        raise ConfigError(f"{where}: problem_type {config.problem_type!r} is not supported; use one of "
                          f"{PROBLEM_TYPES}")
    if config.distillation_loss not in DISTILLATION_LOSSES:
        raise ConfigError(f"{where}: distillation_loss must be one of {DISTILLATION_LOSSES}, got "
                          f"{config.distillation_loss!r}")
    if not 0.0 <= float(config.alpha) <= 1.0:
        raise ConfigError(f"{where}: alpha must be in [0, 1], got {config.alpha!r}")
    if config.lam is not None and float(config.lam) < 0:
        raise ConfigError(f"{where}: lam must be >= 0 or None, got {config.lam!r}")
    if not float(config.temperature) > 0:
        raise ConfigError(f"{where}: temperature must be > 0, got {config.temperature!r}")


def check_int(config: PreTrainedConfig, where: str, names: Sequence[str], minimum: int) -> None:
    """Raise :class:`ConfigError` unless every field in ``names`` is an integer >= ``minimum``."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"{where}: {name} must be an integer >= {minimum}, got {value!r}")


def check_probability(config: PreTrainedConfig, where: str, names: Sequence[str]) -> None:
    """Raise :class:`ConfigError` unless every field in ``names`` is in [0, 1)."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not 0.0 <= float(value) < 1.0:
            raise ConfigError(f"{where}: {name} must be in [0, 1), got {value!r}")


def classification_loss(config: PreTrainedConfig, logits: torch.Tensor, labels: torch.Tensor | None,
                        teacher_logits: torch.Tensor | None) -> torch.Tensor | None:
    """The loss of a student's ``forward``: None without labels and teacher, else
    :func:`frugaltext.training.distillation.distillation_loss` with the config's settings (plain CE / BCE
    without ``teacher_logits``).

    Parameters
    ----------
    config : StaticConfig, HANConfig or XMLCNNConfig
    logits : Tensor of shape (batch_size, num_labels)
    labels : Tensor of shape (batch_size,) long or (batch_size, num_labels) float, optional
    teacher_logits : Tensor of shape (batch_size, num_labels), optional

    Returns
    -------
    Tensor of shape () or None.
    """
    if labels is None and teacher_logits is None:
        return None
    return distillation_loss(
        config.distillation_loss, logits, teacher_logits, labels, alpha=float(config.alpha),
        lam=None if config.lam is None else float(config.lam), temperature=float(config.temperature),
        multi_label=config.problem_type == "multi_label_classification",
    )


def finish_config(config: PreTrainedConfig) -> None:
    """Defaults shared by the three configurations: single-label when ``problem_type`` is None, ``label2id``
    from ``id2label``, ``pad_token_id`` 0 when None."""
    if config.problem_type is None:
        config.problem_type = "single_label_classification"
    if config.id2label is not None and not config.label2id:
        config.label2id = {label: int(i) for i, label in config.id2label.items()}
    if config.pad_token_id is None:
        config.pad_token_id = 0
