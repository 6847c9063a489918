"""Distilled students and their no-teacher controls.

Methods
-------
``distill-bilstm``, ``distill-bilstm-attn``, ``distill-cnn``
    Mangalwedhekar, *Distilling BERT for low complexity network training*: a BiLSTM, a BiLSTM with attention
    and a shallow CNN (embedding 64, hidden 64, max length 128, batch 32, Adam + StepLR(gamma 0.9), 20 epochs,
    best epoch kept), trained on ``alpha * CE + (1 - alpha) * MSE(student logits, teacher logits)`` with
    alpha = 0.5, from randomly initialised word embeddings and without data augmentation (§1, §4.3, §6).
``distill-lstm-reg``
    DocBERT (Adhikari et al. 2019, §3-4.2): LSTM_reg trained on ``CE + lambda * KL`` (lambda = 4 single-label,
    1 multi-label) over a transfer set augmented by masking and POS-guided swapping (Tang et al. 2019; DocBERT
    names these two, so n-gram sampling is off, ``p_ng = 0``). DocBERT's Reuters transfer set is 3x the
    training split: ``augment_copies = 2`` (with duplicates discarded, up to 2 copies per document). Batch 64
    (DocBERT: 64 single-label, 128 multi-label).
``scratch-bilstm``, ``scratch-bilstm-attn``, ``scratch-cnn``, ``scratch-lstm-reg``
    The same networks trained from scratch on the hard labels only (CE / BCE), the no-teacher controls: the
    "Baseline" column of Mangalwedhekar's Table 2 and DocBERT's LSTM_reg row. Separate names (rather than
    ``teacher=None``) let one ``compare`` run put a control and its distilled version side by side; a
    ``distill-*`` method therefore requires a teacher and a ``scratch-*`` method refuses one. Their old names
    ``student-*`` still work as aliases (old results rows, saved models and ``--methods``).

Teacher
-------
``teacher`` is a directory: a saved frugaltext model (``frugaltext train`` / ``Method.save``) or a Hugging
Face sequence-classification checkpoint. ``"auto"`` (the default of ``distill-*``) is replaced by ``compare``
with the ``bert`` model of the same seed trained in the same run. Its logits over the transfer set are
computed once and cached (:mod:`frugaltext.training.teacher_cache`; ``teacher_cache_dir``, default
``~/.cache/frugaltext`` or ``$FRUGALTEXT_CACHE_DIR``). Computing them is part of ``fit`` and so of the
measured training cost; ``run_details`` reports ``teacher_logits_duration_s`` (this run),
``teacher_logits_cached`` and ``teacher_logits_compute_duration_s`` (what the teacher cost when the entry was
made, so a cached run can be charged it).

Optimisation
------------
Adam (``learning_rate`` 1e-3, PyTorch's default, as the code Mangalwedhekar builds on) with StepLR decaying
the learning rate by ``lr_gamma`` = 0.9 after every epoch (Mangalwedhekar §4.3), gradient clipping at norm 1
(the Trainer's default), at most ``epochs`` = 20 epochs (Mangalwedhekar §5), validation macro-F1 after each
epoch, the best epoch restored at the end and training stopped after ``early_stopping_patience`` = 5 epochs
without improvement (hedwig's default patience; DocBERT trains LSTM_reg with hedwig). Training runs through
:func:`frugaltext.training.hf.train_with_trainer`, so ``torchrun`` works; the distillation loss is computed in
the student's ``forward`` from the ``teacher_logits`` batch key. Not implemented: LSTM_reg's temporal
averaging (hedwig ``--beta-ema``), hedwig's static word2vec embeddings (our embeddings are random or copied
from the teacher, see ``embeddings``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from frugaltext.errors import ConfigError, ModelLoadError
from frugaltext.fastpath import FastPathSettings
from frugaltext.methods.base import load_model, register
from frugaltext.methods.torch_method import TorchMethod
from frugaltext.models.distillation_losses import DISTILLATION_LOSSES, IGNORE_LABEL
from frugaltext.settings import setting
from frugaltext.training.teacher_cache import (  # noqa: F401  (teacher_columns: re-exported, its old home)
    input_embeddings,
    teacher_columns,
    teacher_mask_token,
    tokenizer_source,
)

logger = logging.getLogger("frugaltext.methods.distill")

WORD_VOCAB_FILE = "word_vocab.json"
INFO_FILE = "distill_info.json"
TOKENIZERS = ("word", "wordpiece")
EMBEDDINGS = ("random", "pretrained")


@dataclass(frozen=True)
class StudentSettings(FastPathSettings):
    """Hyper-parameters of the ``scratch-*`` controls (no teacher) and, with other defaults, the ``distill-*``
    methods.

    Attributes
    ----------
    teacher : str or None
        Directory of the teacher (saved frugaltext model or HF checkpoint); ``"auto"``: the ``bert`` model of
        the same seed in a ``compare`` run. None for the ``scratch-*`` controls.
    loss : {"mse", "kl"}
        "mse": alpha * CE + (1 - alpha) * MSE of logits (Mangalwedhekar); "kl": CE + lam * T^2 * KL (DocBERT).
    alpha : float in [0, 1]
        Hard-label weight of the "mse" loss (0.5, Mangalwedhekar §6).
    lam : float >= 0 or None
        Weight of the KL term of the "kl" loss; None: 4 single-label, 1 multi-label (DocBERT §4.2).
    temperature : float > 0
        Temperature of the "kl" loss.
    augment_copies : int >= 0
        Synthetic copies per training document in the transfer set (needs a teacher; Tang et al. 2019).
    p_mask, p_pos, p_ng : float
        Augmentation probabilities (Tang et al.: 0.1, 0.1, 0.25; ``distill-lstm-reg``: p_ng = 0, see its
        settings); ``p_pos > 0`` needs spaCy (``augment_copies > 0`` only).
    tokenizer : {"word", "wordpiece"}
        "word": a word vocabulary of the training split (``min_freq``, ``max_vocab_size``); "wordpiece": the
        WordPiece tokenizer of the teacher (else of ``tokenizer_path``, else the packaged all-MiniLM-L6-v2).
    tokenizer_path : str or None
        Checkpoint whose tokenizer (and embeddings) to use when the teacher has none, or for ``scratch-*``.
    embeddings : {"random", "pretrained"}
        "pretrained" (only with "wordpiece"): copy the input embeddings of the checkpoint that provides the
        tokenizer (the teacher's own by default), PCA-projected to ``embedding_dim``
        (:func:`frugaltext.models.students.embeddings_from_teacher`).
    min_freq, max_vocab_size : int
        Word vocabulary limits (max_vocab_size 10,000 as pvgladkov/knowledge-distillation; None: no limit).
    embedding_dim, hidden_size, n_filters, filter_sizes, dropout, embed_dropout, weight_drop
        See :class:`frugaltext.models.students.StudentConfig`.
    max_length : int
        Student tokens per document (128).
    epochs, batch_size, eval_batch_size, learning_rate, lr_gamma
        Adam with StepLR(gamma=lr_gamma) per epoch.
    early_stopping_patience : int >= 0
        Stop after this many epochs without a better validation macro-F1 (0: never stop early).
    select_best : bool
        Restore the epoch with the best validation macro-F1.
    teacher_batch_size, teacher_max_length : int
        Batch size of the teacher's inference; truncation of an HF checkpoint teacher (a frugaltext teacher
        uses its own ``max_length``).
    teacher_cache_dir : str or None
        Where teacher logits are cached (None: ``$FRUGALTEXT_CACHE_DIR`` or ``~/.cache/frugaltext``, under
        ``teacher_logits``).
    precision, batching, inference_quantization : see :class:`frugaltext.fastpath.FastPathSettings`.
    """

    method: ClassVar[str] = "distillation settings"

    teacher: str | None = None
    loss: str = setting("mse", choices=DISTILLATION_LOSSES)
    alpha: float = setting(0.5, ge=0, le=1)
    lam: float | None = setting(None, ge=0)
    temperature: float = setting(1.0, gt=0)
    augment_copies: int = setting(0, ge=0)
    p_mask: float = setting(0.1, ge=0, le=1)
    p_pos: float = setting(0.1, ge=0, le=1)
    p_ng: float = setting(0.25, ge=0, le=1)
    tokenizer: str = setting("word", choices=TOKENIZERS)
    tokenizer_path: str | None = None
    embeddings: str = setting("random", choices=EMBEDDINGS)
    min_freq: int = setting(1, ge=1)
    max_vocab_size: int | None = setting(10000, ge=1)
    embedding_dim: int = setting(64, ge=1)
    hidden_size: int = setting(64, ge=1)
    n_filters: int = setting(64, ge=1)
    filter_sizes: tuple[int, ...] = (3, 4, 5)
    dropout: float = setting(0.5, ge=0, le=1)
    embed_dropout: float = setting(0.0, ge=0, le=1)
    weight_drop: float = setting(0.0, ge=0, le=1)
    max_length: int = setting(128, ge=1)
    epochs: int = setting(20, ge=1)
    batch_size: int = setting(32, ge=1)
    eval_batch_size: int = setting(64, ge=1)
    learning_rate: float = setting(1e-3, gt=0)
    lr_gamma: float = setting(0.9, gt=0, le=1)
    early_stopping_patience: int = setting(5, ge=0)
    select_best: bool = True
    teacher_batch_size: int = setting(32, ge=1)
    teacher_max_length: int = setting(128, ge=1)
    teacher_cache_dir: str | None = None
    show_progress: bool = True

    def _check(self) -> None:
        if self.embeddings == "pretrained" and self.tokenizer != "wordpiece":
            raise self._error("embeddings='pretrained' copies WordPiece embeddings; set "
                              "tokenizer='wordpiece' too (or embeddings='random')")
        if self.early_stopping_patience and not self.select_best:
            raise self._error("early stopping restores the best epoch; set select_best=True or "
                              "early_stopping_patience=0")
        if self.teacher is None and self.augment_copies:
            raise self._error(f"augment_copies={self.augment_copies} needs a teacher (the copies are "
                              "unlabelled and get only the teacher's soft labels); set augment_copies=0")


@dataclass(frozen=True)
class DistillSettings(StudentSettings):
    """``distill-bilstm`` / ``-bilstm-attn`` / ``-cnn``: Mangalwedhekar's recipe, teacher from ``compare``."""

    teacher: str | None = "auto"


@dataclass(frozen=True)
class RegLSTMStudentSettings(StudentSettings):
    """``scratch-lstm-reg``: LSTM_reg with hedwig's Reuters regularisation (embedding dropout 0.2, weight drop
    0.1, dropout 0.5) and DocBERT's single-label batch size 64.

    Multi-label (ModApte, 90 labels): with these defaults (the students' Adam 1e-3, 64-d random embeddings,
    64 hidden units, 128 words) the model is far from converged after 1-5 epochs: every sigmoid stays below
    0.5, so micro-F1 is ~0 (docs/runs/docbert-modapte90: 0.000 after 1 epoch, 0.001 after 5, where ``earn``
    is predicted with precision 1.0 on 2 of its 1,087 test documents and the validation micro-F1 only starts
    to rise at epoch 5). The loss (BCE over independent sigmoids), the targets (0/1 rows in
    ``data.label_names`` order) and the decision (sigmoid >= 0.5 in both the Trainer's metrics and
    ``predict``) were read and match DocBERT's; no multi-label bug was found, so the ~0 is undertraining
    (not confirmed by a longer run yet). hedwig trains LSTM_reg for up to 30 epochs on word2vec vectors;
    raise ``epochs`` (and try ``learning_rate``) for ModApte.
    """

    loss: str = "kl"
    embed_dropout: float = 0.2
    weight_drop: float = 0.1
    batch_size: int = 64


@dataclass(frozen=True)
class RegLSTMDistillSettings(RegLSTMStudentSettings):
    """``distill-lstm-reg``: DocBERT's KD-LSTM_reg: KL loss with lambda by task, a transfer set 3x the
    training split made by masking and POS-guided swapping only (DocBERT §4.2 names these two; Tang et al.'s
    n-gram sampling, which keeps 1-5 words of a whole document, is off: ``p_ng=0``)."""

    teacher: str | None = "auto"
    augment_copies: int = 2
    p_ng: float = 0.0


# ==================================================================================================
# The methods
# ==================================================================================================
class StudentMethod(TorchMethod):
    """Shared implementation of the ``scratch-*`` and ``distill-*`` methods and Kim's ``cnn`` (see the module
    docstring). ``tokenizer`` is a :class:`~frugaltext.models.students.WordVocabulary` or a WordPiece
    tokenizer."""

    architecture: ClassVar[str] = "bilstm"
    needs_teacher: ClassVar[bool] = False
    control_name: ClassVar[str] = ""
    details_file = INFO_FILE
    flops_on_cpu = True  # on CPU the packed LSTM runs as matrix products that the counter sees

    def __init__(self, settings: StudentSettings | None = None, **overrides: Any) -> None:
        super().__init__(settings, **overrides)
        teacher = self.settings.teacher
        if self.needs_teacher and teacher is None:
            raise ConfigError(f"{self.name}: needs a teacher (a saved model directory, or 'auto' in "
                              f"compare); to train the student without one use the method "
                              f"{self.control_name!r}")
        if not self.needs_teacher and teacher is not None:
            raise ConfigError(f"{self.name} is the no-teacher control and takes no teacher (got "
                              f"{teacher!r}); use the method {self.control_name!r} to distill")
        self._transfer: Any = None

    @property
    def vocabulary(self) -> Any:
        """The student's tokenizer (old name)."""
        return self.tokenizer

    # ---- tokenisation ---------------------------------------------------------------------------
    def _build_tokenizer(self, texts: Sequence[str], mask_token: str) -> None:
        from frugaltext.models.students import WordVocabulary

        s = self.settings
        if s.tokenizer == "word":
            self.tokenizer = WordVocabulary.build(texts, min_freq=s.min_freq, max_size=s.max_vocab_size,
                                                  mask_token=mask_token)
        else:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_source(s.teacher, s.tokenizer_path))

    @property
    def _pad_token_id(self) -> int:
        if self.settings.tokenizer == "word":
            return self.tokenizer.pad_token_id
        return int(self.tokenizer.pad_token_id or 0)

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids (at most ``max_length``, at least one) of each text, without special tokens."""
        s = self.settings
        if s.tokenizer == "word":
            return self.tokenizer.encode_batch(texts, s.max_length)
        encoded = self.tokenizer(list(texts), add_special_tokens=False, truncation=True,
                                 max_length=s.max_length, padding=False)["input_ids"]
        unk = self.tokenizer.unk_token_id if self.tokenizer.unk_token_id is not None else self._pad_token_id
        return [ids or [unk] for ids in encoded]

    # ---- training -------------------------------------------------------------------------------
    def _resolve_teacher(self) -> str | None:
        teacher = self.settings.teacher
        if teacher is None:
            return None
        if teacher == "auto":
            raise ConfigError(f"{self.name}: teacher 'auto' means the bert model trained in the same "
                              "`frugaltext compare` run; outside compare pass a directory: "
                              "teacher=/path/to/model")
        if not Path(teacher).is_dir():
            raise ConfigError(f"{self.name}: teacher {teacher!r} is not a directory; pass a model directory "
                              "written by `frugaltext train` / Method.save() or a Hugging Face checkpoint")
        return teacher

    def _transfer_set(self, data: Any, teacher: str | None, seed: int, mask_token: str
                      ) -> tuple[list[str], list[Any], np.ndarray | None]:
        """Texts, hard labels (``IGNORE_LABEL`` for augmented copies) and teacher logits (or None)."""
        from frugaltext.data.augment import augment_texts
        from frugaltext.training.hf import label_features
        from frugaltext.training.teacher_cache import (
            compute_teacher_logits,
            default_cache_dir,
            teacher_label_info,
        )

        s = self.settings
        texts = list(data.train.texts)
        labels = label_features(data.train.labels, data.multi_label)
        if teacher is None:
            return texts, labels, None
        names, multi = teacher_label_info(teacher)
        columns = teacher_columns(names, multi, data.label_names, data.multi_label, self.name)
        if s.augment_copies:
            started = time.perf_counter()
            augmented = augment_texts(texts, n_copies=s.augment_copies, p_mask=s.p_mask, p_pos=s.p_pos,
                                      p_ng=s.p_ng, seed=seed, mask_token=mask_token)
            self.details["augment_duration_s"] = time.perf_counter() - started
            self.details["n_augmented_docs"] = len(augmented)
            unlabelled: Any = (np.full(data.num_labels, IGNORE_LABEL, dtype=np.float32) if data.multi_label
                               else IGNORE_LABEL)
            texts += augmented.texts
            labels += [unlabelled] * len(augmented)
        cache_dir = s.teacher_cache_dir if s.teacher_cache_dir is not None else default_cache_dir()
        result = compute_teacher_logits(teacher, texts, cache_dir, s.teacher_batch_size, s.teacher_max_length,
                                        loader=load_model)
        if result.logits.shape[1] != data.num_labels:
            raise ConfigError(f"{self.name}: the teacher gives {result.logits.shape[1]} logits per document "
                              f"but the data has {data.num_labels} labels; use a teacher trained on the same "
                              "labels")
        self.details.update({
            "teacher_logits_duration_s": result.duration_s,
            "teacher_logits_cached": result.cached,
            "teacher_logits_compute_duration_s": result.compute_duration_s,
            "teacher_logits_cache_file": None if result.path is None else str(result.path),
        })
        return texts, labels, result.logits[:, columns]

    def _build_model(self, data: Any) -> None:
        from frugaltext.models.students import StudentConfig, StudentForSequenceClassification

        s = self.settings
        config = StudentConfig(
            architecture=self.architecture, vocab_size=len(self.tokenizer), embedding_dim=s.embedding_dim,
            hidden_size=s.hidden_size, max_length=s.max_length, dropout=s.dropout,
            embed_dropout=s.embed_dropout, weight_drop=s.weight_drop, filter_sizes=list(s.filter_sizes),
            n_filters=s.n_filters, pad_token_id=self._pad_token_id, distillation_loss=s.loss, alpha=s.alpha,
            lam=s.lam, temperature=s.temperature, num_labels=data.num_labels, id2label=data.id2label,
            label2id=data.label2id, problem_type=data.problem_type,
        )
        self.model = StudentForSequenceClassification(config)
        self._init_embeddings(self.model.embeddings, config.pad_token_id)

    def _init_embeddings(self, embeddings: torch.nn.Embedding, pad_token_id: int) -> None:
        """With ``embeddings="pretrained"``: copy the input embeddings of the checkpoint that provides the
        WordPiece tokenizer into ``embeddings`` (PCA-projected to its width,
        :func:`frugaltext.models.students.embeddings_from_teacher`); otherwise leave the random ones.

        Raises
        ------
        ConfigError
            If the checkpoint's embedding matrix and the tokenizer disagree on the vocabulary size.
        """
        from frugaltext.models.students import embeddings_from_teacher

        s = self.settings
        if s.embeddings != "pretrained":
            return
        source = tokenizer_source(s.teacher, s.tokenizer_path)
        teacher_weight = input_embeddings(source)
        if teacher_weight.shape[0] != embeddings.num_embeddings:
            raise ConfigError(f"{self.name}: the embeddings of {source} have {teacher_weight.shape[0]} "
                              f"rows but its tokenizer has {embeddings.num_embeddings} tokens")
        with torch.no_grad():
            embeddings.weight.copy_(embeddings_from_teacher(
                teacher_weight, embeddings.embedding_dim, pad_token_id, fill=embeddings.weight))
        self.details["embeddings_from"] = source

    def _build(self, data: Any, seed: int) -> None:
        """Transfer set and teacher logits, then the tokenizer and the student."""
        from transformers import set_seed

        s = self.settings
        self.details = {"architecture": self.architecture, "teacher": s.teacher,
                        "distillation_loss": s.loss if s.teacher else None, "tokenizer": s.tokenizer}
        teacher = self._resolve_teacher()
        mask_token = teacher_mask_token(teacher)
        self._transfer = self._transfer_set(data, teacher, seed, mask_token)
        self.details["n_transfer_docs"] = len(self._transfer[0])
        self._build_tokenizer(data.train.texts, mask_token)
        self.details["vocab_size"] = len(self.tokenizer)
        set_seed(seed)  # the same initial weights whatever the teacher step drew
        self._build_model(data)

    def _train_dataset(self, data: Any, seed: int) -> Any:
        texts, labels, logits = self._transfer
        self._transfer = None
        return self._features(texts, labels, extra={"teacher_logits": logits})

    def _train(self, data: Any, train_ds: Any, eval_ds: Any, workdir: Path, seed: int, meter: Any) -> Any:
        """Adam with StepLR per epoch, early stopping on validation macro-F1."""
        from transformers import EarlyStoppingCallback

        from frugaltext.training.hf import world_size

        s = self.settings
        evaluate = eval_ds is not None
        args = self._training_args(workdir, seed, evaluate_each_epoch=evaluate)
        optimizer = self._make_optimizer()
        steps_per_epoch = max(1, math.ceil(math.ceil(len(train_ds) / world_size()) / s.batch_size))
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=steps_per_epoch, gamma=s.lr_gamma)
        callbacks = []
        if evaluate and s.early_stopping_patience:
            callbacks.append(EarlyStoppingCallback(early_stopping_patience=s.early_stopping_patience))
        trainer = self._run_trainer(train_ds, eval_ds, args, meter, self._compute_metrics(eval_ds, data),
                                    callbacks=callbacks, optimizers=(optimizer, scheduler))
        self.details["epochs_run"] = int(math.ceil(trainer.state.epoch or 0))
        if trainer.state.best_model_checkpoint:
            self.details["best_checkpoint_step"] = int(trainer.state.best_model_checkpoint.rsplit("-", 1)[-1])
        return trainer

    def _make_optimizer(self) -> torch.optim.Optimizer:
        """Adam (``learning_rate``) over the model's parameters; the Trainer clips gradients at norm 1."""
        return torch.optim.Adam(self.model.parameters(), lr=self.settings.learning_rate)

    # ---- cost -----------------------------------------------------------------------------------
    def _train_step_inputs(self) -> dict[str, torch.Tensor]:
        """Labels, and the teacher-logit input of a distilled student (the teacher's own cost is in
        ``run_details``)."""
        extra = super()._train_step_inputs()
        if self.settings.teacher is not None:
            extra["teacher_logits"] = torch.zeros(1, len(self.label_names))
        return extra

    # ---- persistence ----------------------------------------------------------------------------
    def _save_model(self, directory: Path) -> None:
        self.model.save_pretrained(directory)
        if self.settings.tokenizer == "word":
            self.tokenizer.save(directory / WORD_VOCAB_FILE)
        else:
            self.tokenizer.save_pretrained(directory)

    def _load_model(self, directory: Path) -> None:
        from frugaltext.models.students import StudentForSequenceClassification

        if not (directory / "config.json").is_file():
            raise ModelLoadError(f"{directory}: config.json is missing; this is not a saved {self.name} "
                                 "model")
        self.model = StudentForSequenceClassification.from_pretrained(directory)
        if self.model.config.architecture != self.architecture:
            raise ModelLoadError(f"{directory}: holds a {self.model.config.architecture!r} student, not "
                                 f"{self.architecture!r}")
        self._load_tokenizer(directory)

    def _load_tokenizer(self, directory: Path) -> None:
        """Restore the word vocabulary or the WordPiece tokenizer written by :meth:`_save_model`."""
        from frugaltext.models.students import WordVocabulary

        if self.settings.tokenizer == "word":
            self.tokenizer = WordVocabulary.load(directory / WORD_VOCAB_FILE)
        else:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(directory)


#: old private name
_StudentMethod = StudentMethod


@register
class ScratchBiLSTMMethod(StudentMethod):
    """BiLSTM (final states of both directions -> dense), hard labels only; control of ``distill-bilstm``."""

    name = "scratch-bilstm"
    Settings = StudentSettings
    architecture = "bilstm"
    control_name = "distill-bilstm"


@register
class DistillBiLSTMMethod(StudentMethod):
    """BiLSTM distilled with Mangalwedhekar's MSE loss; control: ``scratch-bilstm``."""

    name = "distill-bilstm"
    Settings = DistillSettings
    architecture = "bilstm"
    needs_teacher = True
    control_name = "scratch-bilstm"


@register
class ScratchBiLSTMAttnMethod(StudentMethod):
    """BiLSTM with attention on the hard labels only; control of ``distill-bilstm-attn``."""

    name = "scratch-bilstm-attn"
    Settings = StudentSettings
    architecture = "bilstm_attn"
    control_name = "distill-bilstm-attn"


@register
class DistillBiLSTMAttnMethod(StudentMethod):
    """BiLSTM with attention distilled with Mangalwedhekar's MSE loss; control: ``scratch-bilstm-attn``."""

    name = "distill-bilstm-attn"
    Settings = DistillSettings
    architecture = "bilstm_attn"
    needs_teacher = True
    control_name = "scratch-bilstm-attn"


@register
class ScratchCNNMethod(StudentMethod):
    """Kim CNN on the hard labels only; control of ``distill-cnn``."""

    name = "scratch-cnn"
    Settings = StudentSettings
    architecture = "cnn"
    control_name = "distill-cnn"


@register
class DistillCNNMethod(StudentMethod):
    """Kim CNN distilled with Mangalwedhekar's MSE loss; control: ``scratch-cnn``."""

    name = "distill-cnn"
    Settings = DistillSettings
    architecture = "cnn"
    needs_teacher = True
    control_name = "scratch-cnn"


@register
class ScratchLSTMRegMethod(StudentMethod):
    """LSTM_reg (Adhikari et al. 2019) on the hard labels only; control of ``distill-lstm-reg``."""

    name = "scratch-lstm-reg"
    Settings = RegLSTMStudentSettings
    architecture = "lstm_reg"
    control_name = "distill-lstm-reg"


@register
class DistillLSTMRegMethod(StudentMethod):
    """DocBERT's KD-LSTM_reg: KL loss over an augmented transfer set; control: ``scratch-lstm-reg``."""

    name = "distill-lstm-reg"
    Settings = RegLSTMDistillSettings
    architecture = "lstm_reg"
    needs_teacher = True
    control_name = "scratch-lstm-reg"


# old class names of the no-teacher controls
StudentBiLSTMMethod, StudentBiLSTMAttnMethod = ScratchBiLSTMMethod, ScratchBiLSTMAttnMethod
StudentCNNMethod, StudentLSTMRegMethod = ScratchCNNMethod, ScratchLSTMRegMethod

__all__ = [
    "DistillBiLSTMAttnMethod",
    "DistillBiLSTMMethod",
    "DistillCNNMethod",
    "DistillLSTMRegMethod",
    "DistillSettings",
    "RegLSTMDistillSettings",
    "RegLSTMStudentSettings",
    "ScratchBiLSTMAttnMethod",
    "ScratchBiLSTMMethod",
    "ScratchCNNMethod",
    "ScratchLSTMRegMethod",
    "StudentMethod",
    "StudentSettings",
    "teacher_columns",
]
