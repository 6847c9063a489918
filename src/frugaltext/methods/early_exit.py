"""``early-exit``: a classifier after every encoder layer; each document leaves as soon as it is confident.

Mei (2020), *How to design a sustainably accurate and fast model for text classification tasks*; model,
losses, exit rules and calibration in :mod:`frugaltext.models.early_exit`. Training goes through the
transformers ``Trainer`` (:func:`frugaltext.training.hf.train_with_trainer`), so ``torchrun`` scales it.
After training, the exit threshold is calibrated on the validation split: the fastest setting whose macro-F1
keeps ``target_retention`` of the full-depth macro-F1 (:func:`~frugaltext.models.early_exit.calibrate`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from frugaltext.fastpath import FastPathSettings
from frugaltext.methods.base import register
from frugaltext.methods.torch_method import TorchMethod, encoder_details
from frugaltext.models.early_exit import (
    CLASSIFIER_HEADS,
    EXIT_RULES,
    TRAINING_MODES,
    EarlyExitForSequenceClassification,
    calibrate,
    collect_exit_logits,
    early_exit_curve,
    exit_histogram,
    resolve_layer_loss_weights,
    train_step_flops,
)
from frugaltext.models.encoders import check_settings_max_length, resolve_encoder_path
from frugaltext.settings import setting
from frugaltext.training.hf import logits_to_proba

logger = logging.getLogger("frugaltext.methods.early_exit")


def _join_weights(value: Any) -> Any:
    """YAML may give the layer loss weights as a list: ``[1, 2]`` -> ``"1.0,2.0"``."""
    return ",".join(str(float(w)) for w in value) if isinstance(value, list | tuple) else value


@dataclass(frozen=True)
class EarlyExitSettings(FastPathSettings):
    """Hyper-parameters of ``early-exit``.

    Attributes
    ----------
    model_name_or_path : str or None
        Local checkpoint folder of a supported encoder (``SUPPORTED_ENCODERS``: BERT-family or MPNet, e.g.
        all-mpnet-base-v2 from ``scripts/install_mpnet.sh``); None = packaged all-MiniLM-L6-v2 (6 layers).
    max_length : int
        Tokens per document including [CLS]/[SEP].
    truncation : {"head", "tail"}
    epochs, batch_size, learning_rate, weight_decay, warmup_ratio : schedule of joint training or stage 1.
    eval_batch_size : int
        Batch size of validation, calibration and prediction.
    select_best : bool
        Keep the epoch with the best validation macro-F1 of the final classifier (joint and stage 1).
    training_mode : {"joint", "two_stage"}
        Mei (2020) §3.2.1. Joint: every exit on the labels, layer i's loss weighted per
        ``layer_loss_weights``. Two-stage: encoder + final classifier first, then exits 1..L-1 by
        self-distillation with the rest frozen.
    exit_rule : {"entropy", "patience", "none"}
        Rule calibrated after training and used by ``predict_proba``.
    target_retention : float in (0, 1]
        Calibration keeps validation macro-F1 >= target_retention x full-depth macro-F1.
    layer_loss_weights : str
        "linear" (w_i = i, PABEE), "uniform", or L comma-separated numbers.
    classifier_head : {"linear", "dense_tanh"}
        Exit classifier on the [CLS] state (see ``EarlyExitConfig``).
    classifier_dropout : float or None
        Dropout before each exit; None = the encoder's hidden dropout.
    stage2_epochs : float
        Self-distillation epochs (two-stage only).
    stage2_learning_rate : float or None
        Learning rate of stage 2; None = 10 x ``learning_rate`` (FastBERT's released code distils at 10x the
        fine-tuning rate: ``learning_rate*10``).
    unlabeled_path : str or None
        Extra unlabeled documents for stage 2 (Mei 2020 §3.2: "we are free to use an unlimited amount of
        unlabeled data"): a .txt file (one document per line) or .jsonl/.jsonl.gz with a "text" field. The
        training texts are always used too, without their labels.
    attn_implementation : str or None
        "eager", "sdpa", ...; None = transformers' default (MPNet has eager attention only).
    precision, batching, inference_quantization : see :class:`frugaltext.fastpath.FastPathSettings`
        (calibration runs in fp32).
    """

    method: ClassVar[str] = "early-exit"

    model_name_or_path: str | None = None
    max_length: int = setting(128, ge=8)
    truncation: str = setting("head", choices=("head", "tail"))
    epochs: float = setting(3.0, gt=0)
    batch_size: int = setting(16, ge=1)
    eval_batch_size: int = setting(64, ge=1)
    learning_rate: float = setting(5e-5, gt=0)
    weight_decay: float = setting(0.01, ge=0)
    warmup_ratio: float = setting(0.1, ge=0, lt=1)
    select_best: bool = True
    training_mode: str = setting("joint", choices=TRAINING_MODES)
    exit_rule: str = setting("entropy", choices=EXIT_RULES)
    target_retention: float = setting(0.99, gt=0, le=1)
    layer_loss_weights: str = setting("linear", convert=_join_weights)
    classifier_head: str = setting("linear", choices=CLASSIFIER_HEADS)
    classifier_dropout: float | None = setting(None, ge=0, le=1)
    stage2_epochs: float = setting(3.0, gt=0)
    stage2_learning_rate: float | None = setting(None, gt=0)
    unlabeled_path: str | None = None
    attn_implementation: str | None = None
    show_progress: bool = True

    def _check(self) -> None:
        if self.unlabeled_path and self.training_mode != "two_stage":
            raise self._error("unlabeled_path is used only by self-distillation; set "
                              "training_mode='two_stage' or drop unlabeled_path")
        if self.layer_loss_weights not in ("linear", "uniform"):
            resolve_layer_loss_weights(self.layer_loss_weights, len(self.layer_loss_weights.split(",")))


def read_unlabeled_texts(path: str | Path) -> list[str]:
    """Documents of an unlabeled file (the ``unlabeled_path`` setting), read by
    :func:`frugaltext.data.read_texts`, the one document reader (as ``frugaltext predict``): ``.txt`` one
    document per line, ``.jsonl``/``.json`` with a ``"text"`` field, ``.csv``/``.tsv`` with a ``text`` column,
    each optionally ``.gz``.

    Raises
    ------
    DataNotFoundError
        If the file does not exist.
    DataFormatError
        An unsupported ending, a corrupt gzip file, bad UTF-8, malformed JSON/CSV, or a row without a
        non-empty ``"text"`` string (file and line given).
    """
    from frugaltext.data.texts import read_texts

    return read_texts(path).texts


@register
class EarlyExitMethod(TorchMethod):
    """Early exit on a BERT-family or MPNet encoder (Mei 2020; PABEE head layout), calibrated on validation.

    ``fit`` trains (joint or two-stage), then calibrates ``exit_rule`` on the validation split and stores the
    chosen threshold in the model config. ``predict_proba`` runs the calibrated rule batched: each document
    leaves at its own layer, independently of the batch. ``flops_per_document`` counts the layers each
    document actually ran.
    """

    name = "early-exit"
    Settings = EarlyExitSettings
    model_class = EarlyExitForSequenceClassification

    def __init__(self, settings: EarlyExitSettings | None = None, **overrides: Any) -> None:
        super().__init__(settings, **overrides)
        self.last_exit_layers: np.ndarray | None = None

    # ------------------------------------------------------------------------------------------------
    def _build(self, data: Any, seed: int) -> None:
        from transformers import AutoTokenizer

        s = self.settings
        check_settings_max_length(s, f"method {self.name!r}")
        path = resolve_encoder_path(s.model_name_or_path)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = EarlyExitForSequenceClassification.from_encoder(
            path, num_labels=data.num_labels, id2label=data.id2label, problem_type=data.problem_type,
            attn_implementation=s.attn_implementation, exit_rule=s.exit_rule, training_mode=s.training_mode,
            layer_loss_weights=s.layer_loss_weights, classifier_head=s.classifier_head,
            classifier_dropout=s.classifier_dropout,
        )

    def _train(self, data: Any, train_ds: Any, eval_ds: Any, workdir: Path, seed: int, meter: Any) -> Any:
        """Joint mode: one ``Trainer`` run on the weighted loss of all exits, selecting the epoch by the
        final-layer validation macro-F1 (thresholds are 0 during training, so evaluation is full depth).
        Two-stage mode: stage 1 as BERT fine-tuning (``epochs``, with epoch selection); stage 2
        self-distillation of exits 1..L-1 on the training texts (labels unused) plus ``unlabeled_path``
        (``stage2_epochs``, last epoch kept: the final classifier is frozen, so validation macro-F1 at full
        depth cannot select). ``meter.record_epoch`` is called for the epochs of both stages.
        """
        s = self.settings
        if s.training_mode == "joint":
            return super()._train(data, train_ds, eval_ds, workdir, seed, meter)
        self.model.set_training_stage(1)
        super()._train(data, train_ds, eval_ds, workdir / "stage1", seed, meter)
        self.model.set_training_stage(2)
        texts = list(data.train.texts)
        if s.unlabeled_path:
            extra = read_unlabeled_texts(s.unlabeled_path)
            logger.info("self-distillation on %d training + %d unlabeled documents", len(texts), len(extra))
            texts += extra
        lr2 = s.stage2_learning_rate if s.stage2_learning_rate is not None else 10 * s.learning_rate
        args2 = self._training_args(workdir / "stage2", seed, epochs=s.stage2_epochs, learning_rate=lr2,
                                    evaluate_each_epoch=False)
        return self._run_trainer(self._features(texts), None, args2, meter)

    def _after_training(self, data: Any, seed: int, trainer: Any) -> None:
        self._calibrate(data.validation)

    def _calibrate(self, validation) -> None:
        """Calibrate ``exit_rule`` on the validation split (skipped, full depth kept, when it is empty)."""
        s = self.settings
        if not len(validation):
            logger.warning(
                "early-exit: no validation documents; the exit rule stays at full depth (uncalibrated)"
            )
            return
        result = calibrate(
            self.model,
            validation.texts,
            s.exit_rule,
            s.target_retention,
            labels=validation.labels,
            tokenizer=self.tokenizer,
            max_length=s.max_length,
            batch_size=s.eval_batch_size,
            truncation=s.truncation,
        )
        logger.info(
            "early-exit: calibrated %s on %d validation documents: %s (full-depth macro_f1 %.4f)",
            s.exit_rule,
            result.n_docs,
            result.chosen,
            result.full_depth_macro_f1,
        )

    # ------------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def predict_with_exits(
        self, texts: Sequence[str], batch_size: int = 32, **exit_kwargs: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Logits, exit layers and token counts, batched by similar length, in the input order.

        Parameters
        ----------
        texts : sequence of n_docs str
        batch_size : int
        **exit_kwargs
            ``exit_rule``, ``entropy_threshold``, ``patience`` overrides (calibrated config by default).

        Returns
        -------
        logits : ndarray of shape (n_docs, num_labels), float32, of each document's exit layer
        exit_layers : ndarray of shape (n_docs,), int64, 1-based
        seq_lens : ndarray of shape (n_docs,), int64, tokens per document
        """
        self._require_model()
        self.model.eval()
        ids = self._encode(texts)
        n, k = len(ids), self.model.config.num_labels
        logits = np.zeros((n, k), dtype=np.float32)
        exits = np.zeros(n, dtype=np.int64)
        model = self.inference_model()
        device = next(model.parameters()).device
        collator = self._collator()
        for index in self._inference_batches([len(t) for t in ids], batch_size):
            batch = collator([{"input_ids": ids[i]} for i in index])
            with self.inference_context(model):
                out = model(
                    input_ids=batch["input_ids"].to(device),
                    attention_mask=batch["attention_mask"].to(device),
                    **exit_kwargs,
                )
            logits[index] = out.logits.float().cpu().numpy()
            exits[index] = out.exit_layer.cpu().numpy()
        return logits, exits, np.array([len(t) for t in ids], dtype=np.int64)

    def predict_proba(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Probabilities of each document's exit layer, shape ``(n_docs, num_labels)``, float32.

        Softmax for single-label, sigmoids for multi-label tasks; the exit layers are kept in
        ``last_exit_layers``.
        """
        return logits_to_proba(self.predict_logits(texts, batch_size), self.multi_label)

    def predict_logits(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Logits of each document's exit layer, shape ``(n_docs, num_labels)`` float32 (exit layers kept in
        ``last_exit_layers``)."""
        logits, self.last_exit_layers, _ = self.predict_with_exits(texts, batch_size)
        return logits

    # ------------------------------------------------------------------------------------------------
    def flops_per_document(self, texts: Sequence[str]) -> dict[str, float | None]:
        """Mean FLOPs per document of a forward pass and of a training step.

        Forward: the layers and classifiers each document actually ran under the calibrated rule, each at
        its own length. Training step: that of the training mode (two-stage: the stage-1 step; the stage-2
        step is in ``run_details``). Analytic counts equal to :func:`frugaltext.cost.flops.count_flops`
        (attention included; checked in the tests).
        """
        self._require_model()
        _, exits, seq_lens = self.predict_with_exits(texts, self.settings.eval_batch_size)
        forward = self.model.flops_per_document(seq_lens, exits)
        stage = 1 if self.model.config.training_mode == "two_stage" else None
        train = train_step_flops(self.model.config, seq_lens, stage)
        return {"flops": float(np.mean(forward)), "flops_train_step": float(np.mean(train))}

    def run_details(self) -> dict[str, Any]:
        """Exit rule and threshold, the validation calibration and the exits of the last prediction.

        Calibration: mean exit layer, exit-layer histogram, full-depth macro-F1 and the grid table on the
        validation split. Last ``predict_proba`` call: mean exit layer and histogram.
        """
        if self.model is None:
            return {}
        cfg = self.model.config
        notes: dict[str, Any] = {
            **encoder_details(cfg.encoder),
            "num_hidden_layers": cfg.num_hidden_layers,
            "training_mode": cfg.training_mode,
            "exit_rule": cfg.exit_rule,
            "entropy_threshold": cfg.entropy_threshold if cfg.exit_rule == "entropy" else None,
            "patience": cfg.patience if cfg.exit_rule == "patience" else None,
            **self.fast_path_details(),
        }
        calibration = cfg.calibration or {}
        if calibration:
            chosen = calibration.get("chosen", {})
            notes.update(
                {
                    "target_retention": calibration.get("target_retention"),
                    "full_depth_macro_f1_validation": calibration.get("full_depth_macro_f1"),
                    "macro_f1_validation": chosen.get("macro_f1"),
                    "mean_exit_layer_validation": chosen.get("mean_exit_layer"),
                    "exit_layer_histogram_validation": chosen.get("exit_layer_histogram"),
                    "flops_validation": chosen.get("flops"),
                    "calibration_table": calibration.get("table"),
                }
            )
        else:
            notes["calibrated"] = False
        if self.last_exit_layers is not None and len(self.last_exit_layers):
            notes["mean_exit_layer"] = float(self.last_exit_layers.mean())
            notes["exit_layer_histogram"] = exit_histogram(self.last_exit_layers, cfg.num_hidden_layers)
        if cfg.training_mode == "two_stage":
            notes["flops_train_step_stage2_at_max_length"] = float(
                train_step_flops(cfg, self.settings.max_length, stage=2)
            )
        return notes

    def curve(self, texts: Sequence[str], labels: np.ndarray, **kwargs: Any) -> list[dict[str, Any]]:
        """Speed-accuracy sweep on ``texts`` (see :func:`frugaltext.models.early_exit.early_exit_curve`)."""
        self._require_model()
        return early_exit_curve(
            self.model,
            texts,
            labels,
            self.tokenizer,
            max_length=self.settings.max_length,
            truncation=self.settings.truncation,
            **kwargs,
        )

    def exit_logits(self, texts: Sequence[str], labels: np.ndarray | None = None):
        """Logits of every exit, ``(L, n_docs, num_labels)``, with labels and token counts.

        See :func:`~frugaltext.models.early_exit.collect_exit_logits`.
        """
        self._require_model()
        return collect_exit_logits(
            self.model,
            texts,
            labels,
            self.tokenizer,
            self.settings.max_length,
            self.settings.eval_batch_size,
            self.settings.truncation,
        )
