"""Exit rules (shared by the dynamic forward and the offline simulation) and the training losses.

Entropy rule: Mei (2020) Algorithm 1; patience rule: Algorithm 2 (PABEE, Zhou et al. 2020). Losses: joint
training weights each layer's loss by its depth (PABEE); two-stage training distils the students towards the
final classifier (FastBERT, Liu et al. 2020; Mei 2020 §3.2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


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
class ExitRule:
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



#: The old name of :class:`ExitRule` (kept so that existing imports keep working).
ExitSettings = ExitRule

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

    def __init__(self, settings: ExitRule, multi_label: bool) -> None:
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
    all_logits: torch.Tensor, settings: ExitRule, multi_label: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply an exit rule offline to the logits of every exit.

    Exact: the exits are deterministic functions of each layer's logits, so this gives the same exit layers
    as running the model with that rule (up to floating-point noise between batch compositions).

    Parameters
    ----------
    all_logits : Tensor of shape (L, n_docs, num_labels)
        Logits of exit 1..L for every document.
    settings : ExitRule

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
