"""Knowledge-distillation losses (defined in :mod:`frugaltext.models.distillation_losses`, re-exported
here) and a ``Trainer`` that mixes hard labels with a teacher's cached logits.

The objectives (Mangalwedhekar's MSE on logits, DocBERT's CE + lambda * KL) and the handling of rows without a
hard label are documented in :mod:`frugaltext.models.distillation_losses`.

Our student models compute these losses inside ``forward`` from a ``teacher_logits`` batch key, so the shared
``frugaltext.training.hf.train_with_trainer`` needs no subclass. :class:`DistillationTrainer` does the same
for any other model (for instance a small Hugging Face encoder as the student): it pops ``teacher_logits``
from the batch and computes the loss itself (STYLE §2: subclassing changes the loss computation).
"""

from __future__ import annotations

from typing import Any

from transformers import Trainer

from frugaltext.errors import ConfigError
from frugaltext.models.distillation_losses import (  # re-exported: the losses' old home
    DISTILLATION_LOSSES,
    IGNORE_LABEL,
    default_lambda,
    distillation_loss,
    hard_label_loss,
    kl_distillation_loss,
    labelled_rows,
    mse_distillation_loss,
)

__all__ = [
    "IGNORE_LABEL",
    "DISTILLATION_LOSSES",
    "DistillationTrainer",
    "default_lambda",
    "distillation_loss",
    "hard_label_loss",
    "kl_distillation_loss",
    "labelled_rows",
    "mse_distillation_loss",
]


class DistillationTrainer(Trainer):
    """A transformers ``Trainer`` whose loss mixes the hard labels with cached teacher logits.

    Each training batch carries ``teacher_logits`` of shape (batch_size, num_labels) (computed once by
    :func:`frugaltext.training.teacher_cache.teacher_logits`) next to ``input_ids``, ``attention_mask`` and
    ``labels``. :meth:`compute_loss` pops both, runs the model on the rest and applies
    :func:`distillation_loss`. Build the ``TrainingArguments`` with ``remove_unused_columns=False``
    (:func:`frugaltext.training.hf.make_training_args` does), or the Trainer drops the ``teacher_logits``
    column because the model's ``forward`` does not name it. Batches without ``teacher_logits`` (evaluation)
    get the plain hard-label loss.

    Frugaltext's own students (:mod:`frugaltext.models.students`) compute the same loss inside ``forward``, so
    they train with the plain ``Trainer``; this class is for students that cannot, e.g. a small
    ``AutoModelForSequenceClassification``.

    Parameters
    ----------
    *args, **kwargs
        As ``transformers.Trainer``.
    distillation : {"mse", "kl"}, default "mse"
    alpha : float in [0, 1], default 0.5
        Hard-label weight of the MSE loss (Mangalwedhekar).
    lam : float, optional
        Distillation weight of the KL loss (DocBERT; None: 4 single-label, 1 multi-label).
    temperature : float > 0, default 1.0
    multi_label : bool, default False

    Raises
    ------
    ConfigError
        If ``remove_unused_columns`` is True or ``distillation`` is unknown.
    """

    def __init__(self, *args: Any, distillation: str = "mse", alpha: float = 0.5, lam: float | None = None,
                 temperature: float = 1.0, multi_label: bool = False, **kwargs: Any) -> None:
        if distillation not in DISTILLATION_LOSSES:
            raise ConfigError(f"DistillationTrainer: distillation must be one of {DISTILLATION_LOSSES}, "
                              f"got {distillation!r}")
        super().__init__(*args, **kwargs)
        if self.args.remove_unused_columns:
            raise ConfigError("DistillationTrainer needs TrainingArguments(remove_unused_columns=False), or "
                              "the Trainer drops the teacher_logits column before compute_loss sees it")
        if not self.label_names:  # a student whose forward takes no labels: evaluation still goes through
            self.label_names = ["labels"]  # compute_loss, which pops them (transformers infers [] otherwise)
        self.distillation = distillation
        self.alpha = alpha
        self.lam = lam
        self.temperature = temperature
        self.multi_label = multi_label

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: D102
        inputs = dict(inputs)
        teacher = inputs.pop("teacher_logits", None)
        labels = inputs.pop("labels", None)
        outputs = model(**inputs)
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs.logits
        if teacher is not None:
            teacher = teacher.to(logits.device)
        if labels is not None:
            labels = labels.to(logits.device)
        loss = distillation_loss(self.distillation, logits, teacher, labels, alpha=self.alpha, lam=self.lam,
                                 temperature=self.temperature, multi_label=self.multi_label)
        return (loss, outputs) if return_outputs else loss
