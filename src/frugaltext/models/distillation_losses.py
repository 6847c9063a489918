"""Knowledge-distillation losses (pure torch): the student models compute them in ``forward``, and
:class:`frugaltext.training.distillation.DistillationTrainer` in ``compute_loss``.

Two objectives are provided, one per paper we follow:

* :func:`mse_distillation_loss`: ``alpha * CE + (1 - alpha) * MSE(student logits, teacher logits)``, the loss
  of Mangalwedhekar, *Distilling BERT for low complexity network training* (§3.5, with alpha = 0.5 in §6),
  which follows Tang et al. 2019, *Distilling task-specific knowledge from BERT into simple neural networks*
  (logit matching, after Ba & Caruana 2014).
* :func:`kl_distillation_loss`: ``CE + lam * T^2 * KL`` of DocBERT (Adhikari et al. 2019, eq. 1: L = L_cls +
  lambda * L_distill; lambda = 4 for single-label and 1 for multi-label tasks, §4.2), with Hinton et al.'s
  (2015) temperature and T^2 scaling.

Rows whose hard label is unknown (augmented copies of the transfer set, Tang et al. 2019 §3.3) carry the label
``-100`` (single-label; the ``ignore_index`` convention of ``CrossEntropyLoss``) or a row of ``-100``
(multi-label): they get the soft term only. The hard term is the mean over labelled rows, the soft term the
mean over all rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from frugaltext.errors import ConfigError

__all__ = [
    "IGNORE_LABEL",
    "DISTILLATION_LOSSES",
    "default_lambda",
    "distillation_loss",
    "hard_label_loss",
    "kl_distillation_loss",
    "labelled_rows",
    "mse_distillation_loss",
]

#: Label value of a row without a hard label (augmented, teacher-labelled only).
IGNORE_LABEL = -100
DISTILLATION_LOSSES = ("mse", "kl")


def default_lambda(multi_label: bool) -> float:
    """DocBERT's weight of the distillation term: 1 for multi-label, 4 for single-label tasks (Adhikari et al.
    2019, §4.2)."""
    return 1.0 if multi_label else 4.0


def labelled_rows(labels: torch.Tensor | None, batch_size: int, multi_label: bool) -> torch.Tensor:
    """Boolean mask of the rows that carry a hard label.

    Parameters
    ----------
    labels : Tensor of shape (batch_size,) long, or (batch_size, num_labels) float, or None
        ``-100`` (a whole row of ``-100`` for multi-label) marks a row without a label.
    batch_size : int
    multi_label : bool

    Returns
    -------
    Tensor of shape (batch_size,), dtype bool. All False when ``labels`` is None.
    """
    if labels is None:
        return torch.zeros(batch_size, dtype=torch.bool)
    if multi_label:
        return ~(labels < 0).any(dim=-1)
    return labels != IGNORE_LABEL


def hard_label_loss(logits: torch.Tensor, labels: torch.Tensor | None, multi_label: bool) -> torch.Tensor:
    """Cross-entropy (single-label) or binary cross-entropy over independent sigmoids (multi-label, mean over
    labels), averaged over the labelled rows only; 0 when no row has a label.

    Parameters
    ----------
    logits : Tensor of shape (batch_size, num_labels)
    labels : Tensor of shape (batch_size,) long, or (batch_size, num_labels) float 0/1, or None
        ``-100`` marks an unlabelled row (see :func:`labelled_rows`).
    multi_label : bool

    Returns
    -------
    Tensor of shape (), in nats.
    """
    mask = labelled_rows(labels, logits.shape[0], multi_label).to(logits.device)
    if labels is None or not bool(mask.any()):
        return logits.sum() * 0.0  # keeps the graph (DDP needs every parameter in the backward)
    if multi_label:
        return F.binary_cross_entropy_with_logits(logits[mask].float(), labels[mask].float())
    return F.cross_entropy(logits[mask].float(), labels[mask].long())


def _check(student_logits: torch.Tensor, teacher_logits: torch.Tensor, name: str) -> None:
    if student_logits.dim() != 2 or student_logits.shape != teacher_logits.shape:
        raise ConfigError(
            f"{name}: student_logits {tuple(student_logits.shape)} and teacher_logits "
            f"{tuple(teacher_logits.shape)} must both have shape (batch_size, num_labels); check that the "
            "teacher was trained on the same labels"
        )


def mse_distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                          labels: torch.Tensor | None, alpha: float,
                          multi_label: bool = False) -> torch.Tensor:
    """``alpha * CE + (1 - alpha) * MSE(logits)``: Mangalwedhekar (§3.5) after Tang et al. (2019).

    The soft term is the mean squared error between raw logits, averaged over rows and labels
    (``torch.nn.MSELoss()``, as in the code Mangalwedhekar builds on, pvgladkov/knowledge-distillation; Tang
    et al. write the squared L2 norm, i.e. this value times ``num_labels``). The hard term is cross-entropy,
    or BCE for multi-label tasks, over the labelled rows (see :func:`hard_label_loss`). The teacher is
    detached.

    Parameters
    ----------
    student_logits : Tensor of shape (batch_size, num_labels)
    teacher_logits : Tensor of shape (batch_size, num_labels)
    labels : Tensor of shape (batch_size,) long, or (batch_size, num_labels) float, or None
        ``-100`` marks rows without a hard label (they get the soft term only).
    alpha : float in [0, 1]
        Weight of the hard-label term (STYLE §3); 1 ignores the teacher, 0 ignores the labels.
    multi_label : bool, default False

    Returns
    -------
    Tensor of shape ().

    Raises
    ------
    ConfigError
        If alpha is outside [0, 1] or the shapes differ.
    """
    if not 0.0 <= float(alpha) <= 1.0:
        raise ConfigError(f"mse_distillation_loss: alpha must be in [0, 1], got {alpha}")
    _check(student_logits, teacher_logits, "mse_distillation_loss")
    hard = hard_label_loss(student_logits, labels, multi_label)
    if float(alpha) == 1.0:
        return hard
    soft = F.mse_loss(student_logits.float(), teacher_logits.detach().float())
    return alpha * hard + (1.0 - alpha) * soft


def _kl_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float,
                   multi_label: bool) -> torch.Tensor:
    """KL(p_teacher || p_student) at temperature T, batch mean; multi-label: per-label Bernoulli KL, mean over
    rows and labels."""
    s = student_logits.float() / temperature
    t = teacher_logits.detach().float() / temperature
    if multi_label:
        t_pos, t_neg = F.logsigmoid(t), F.logsigmoid(-t)
        s_pos, s_neg = F.logsigmoid(s), F.logsigmoid(-s)
        kl = t_pos.exp() * (t_pos - s_pos) + t_neg.exp() * (t_neg - s_neg)
        return kl.mean()
    log_t = F.log_softmax(t, dim=-1)
    log_s = F.log_softmax(s, dim=-1)
    return (log_t.exp() * (log_t - log_s)).sum(dim=-1).mean()


def kl_distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                         labels: torch.Tensor | None, lam: float | None = None, temperature: float = 1.0,
                         multi_label: bool = False) -> torch.Tensor:
    """``CE + lam * T^2 * KL(p_teacher || p_student)``: DocBERT's objective (Adhikari et al. 2019, eq. 1).

    DocBERT writes KL(p || q) "where p and q are the class probabilities produced by the student and the
    teacher", which reads as KL(student || teacher); we use KL(teacher || student), the direction of Hinton et
    al. (2015), whose gradient is the familiar cross-entropy with soft targets (and which DocBERT cites for
    the objective). DocBERT does not state a temperature; ``temperature`` is Hinton's T (softmax / sigmoid of
    logits / T), and the KL term is multiplied by T^2 so its gradients keep their size (Hinton §2; STYLE §3).
    Multi-label tasks use BCE for the hard term and a Bernoulli KL per label, averaged over labels and rows
    (the same averaging as ``BCEWithLogitsLoss``), so lambda = 1 weighs the two terms alike.

    Parameters
    ----------
    student_logits : Tensor of shape (batch_size, num_labels)
    teacher_logits : Tensor of shape (batch_size, num_labels)
    labels : Tensor of shape (batch_size,) long, or (batch_size, num_labels) float, or None
        ``-100`` marks rows without a hard label (soft term only).
    lam : float >= 0, optional
        Weight of the distillation term; None gives DocBERT's 4 (single-label) or 1 (multi-label).
    temperature : float > 0, default 1.0
    multi_label : bool, default False

    Returns
    -------
    Tensor of shape (), in nats.

    Raises
    ------
    ConfigError
        If lam < 0, temperature <= 0 or the shapes differ.
    """
    lam = default_lambda(multi_label) if lam is None else float(lam)
    if lam < 0:
        raise ConfigError(f"kl_distillation_loss: lam must be >= 0, got {lam}")
    if not float(temperature) > 0:
        raise ConfigError(f"kl_distillation_loss: temperature must be > 0, got {temperature}")
    _check(student_logits, teacher_logits, "kl_distillation_loss")
    hard = hard_label_loss(student_logits, labels, multi_label)
    soft = _kl_divergence(student_logits, teacher_logits, float(temperature), multi_label)
    return hard + lam * float(temperature) ** 2 * soft


def distillation_loss(kind: str, student_logits: torch.Tensor, teacher_logits: torch.Tensor | None,
                      labels: torch.Tensor | None, *, alpha: float = 0.5, lam: float | None = None,
                      temperature: float = 1.0, multi_label: bool = False) -> torch.Tensor:
    """Dispatch to :func:`mse_distillation_loss` (``kind="mse"``) or :func:`kl_distillation_loss` (``"kl"``);
    without ``teacher_logits`` it is the plain hard-label loss (CE or BCE), the no-teacher control.

    Raises
    ------
    ConfigError
        For an unknown ``kind`` (or the errors of the two losses).
    """
    if kind not in DISTILLATION_LOSSES:
        raise ConfigError(f"distillation loss must be one of {DISTILLATION_LOSSES}, got {kind!r}")
    if teacher_logits is None:
        return hard_label_loss(student_logits, labels, multi_label)
    if kind == "mse":
        return mse_distillation_loss(student_logits, teacher_logits, labels, alpha, multi_label)
    return kl_distillation_loss(student_logits, teacher_logits, labels, lam, temperature, multi_label)
