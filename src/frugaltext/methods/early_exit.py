"""``early-exit``: a classifier after every encoder layer; each document leaves as soon as it is confident.

Mei (2020), *How to design a sustainably accurate and fast model for text classification tasks*; model,
losses, exit rules and calibration in :mod:`frugaltext.models.early_exit`. Training goes through the
transformers ``Trainer`` (:func:`frugaltext.training.hf.train_with_trainer`), so ``torchrun`` scales it.
After training, the exit threshold is calibrated on the validation split: the fastest setting whose macro-F1
keeps ``target_retention`` of the full-depth macro-F1 (:func:`~frugaltext.models.early_exit.calibrate`).
"""

from __future__ import annotations

import gzip
import json
import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from frugaltext.data.collate import EncodedDataset, PadCollator, encode_texts, length_sorted_batches
from frugaltext.errors import ConfigError, DataFormatError, DataNotFoundError, ModelLoadError
from frugaltext.methods.base import Method, register
from frugaltext.methods.bert import resolve_encoder_path
from frugaltext.models.early_exit import (
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
from frugaltext.training.hf import (
    label_features,
    load_checkpoint,
    logits_to_proba,
    make_compute_metrics,
    make_training_args,
    save_checkpoint,
    train_with_trainer,
)

logger = logging.getLogger("frugaltext.methods.early_exit")


@dataclass(frozen=True)
class EarlyExitSettings:
    """Hyper-parameters of ``early-exit``.

    Attributes
    ----------
    model_name_or_path : str or None
        Local checkpoint folder of a BERT-family encoder; None = packaged all-MiniLM-L6-v2 (6 layers).
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
        "eager", "sdpa", ...; None = transformers' default.
    """

    model_name_or_path: str | None = None
    max_length: int = 128
    truncation: str = "head"
    epochs: float = 3.0
    batch_size: int = 16
    eval_batch_size: int = 64
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    select_best: bool = True
    training_mode: str = "joint"
    exit_rule: str = "entropy"
    target_retention: float = 0.99
    layer_loss_weights: str = "linear"
    classifier_head: str = "linear"
    classifier_dropout: float | None = None
    stage2_epochs: float = 3.0
    stage2_learning_rate: float | None = None
    unlabeled_path: str | None = None
    attn_implementation: str | None = None
    show_progress: bool = True

    def __post_init__(self) -> None:
        where = "early-exit"
        # Optional numbers arrive as strings from the CLI (``coerce_value`` cannot type a None default), and
        # YAML may give the loss weights as a list.
        for name in ("classifier_dropout", "stage2_learning_rate"):
            value = getattr(self, name)
            if isinstance(value, str):
                try:
                    object.__setattr__(self, name, None if value.lower() in ("", "none") else float(value))
                except ValueError as err:
                    raise ConfigError(
                        f"{where}: setting {name!r}: cannot read {value!r} as a number"
                    ) from err
        if isinstance(self.layer_loss_weights, list | tuple):
            object.__setattr__(
                self, "layer_loss_weights", ",".join(str(float(w)) for w in self.layer_loss_weights)
            )
        if self.truncation not in ("head", "tail"):
            raise ConfigError(f"{where}: truncation must be 'head' or 'tail', got {self.truncation!r}")
        if self.max_length < 8:
            raise ConfigError(f"{where}: max_length must be at least 8, got {self.max_length}")
        if self.epochs <= 0 or self.batch_size < 1 or self.learning_rate <= 0 or self.eval_batch_size < 1:
            raise ConfigError(
                f"{where}: epochs, batch_size, eval_batch_size and learning_rate must be positive"
            )
        if self.training_mode not in TRAINING_MODES:
            raise ConfigError(
                f"{where}: training_mode must be one of {TRAINING_MODES}, got {self.training_mode!r}"
            )
        if self.exit_rule not in EXIT_RULES:
            raise ConfigError(f"{where}: exit_rule must be one of {EXIT_RULES}, got {self.exit_rule!r}")
        if not 0.0 < self.target_retention <= 1.0:
            raise ConfigError(f"{where}: target_retention must be in (0, 1], got {self.target_retention}")
        if self.training_mode == "two_stage" and self.stage2_epochs <= 0:
            raise ConfigError(f"{where}: stage2_epochs must be positive with training_mode='two_stage'")
        if self.stage2_learning_rate is not None and self.stage2_learning_rate <= 0:
            raise ConfigError(f"{where}: stage2_learning_rate must be positive or None")
        if self.unlabeled_path and self.training_mode != "two_stage":
            raise ConfigError(
                f"{where}: unlabeled_path is used only by self-distillation; set training_mode='two_stage' "
                "or drop unlabeled_path"
            )
        if self.layer_loss_weights not in ("linear", "uniform"):
            resolve_layer_loss_weights(self.layer_loss_weights, len(self.layer_loss_weights.split(",")))


def read_unlabeled_texts(path: str | Path) -> list[str]:
    """Documents of an unlabeled file: .txt (one per non-empty line) or .jsonl/.jsonl.gz (field "text").

    Raises
    ------
    DataNotFoundError
        If the file does not exist.
    DataFormatError
        For a JSON line that does not parse or has no non-empty "text" string (file and line given).
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"unlabeled_path {path} does not exist; pass a .txt or .jsonl(.gz) file")
    opener = gzip.open if path.suffix == ".gz" else open
    texts: list[str] = []
    with opener(path, "rt", encoding="utf-8") as handle:
        is_json = ".jsonl" in path.name or ".json" in path.name
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            if not is_json:
                texts.append(line.strip())
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataFormatError(f"{path}, line {line_no}: invalid JSON ({err.msg})") from err
            text = row.get("text") if isinstance(row, dict) else None
            if not isinstance(text, str) or not text.strip():
                raise DataFormatError(f'{path}, line {line_no}: field "text" is missing or empty')
            texts.append(text)
    return texts


@register
class EarlyExitMethod(Method):
    """Early exit on any BERT-family encoder (Mei 2020; PABEE head layout), calibrated on validation.

    ``fit`` trains (joint or two-stage), then calibrates ``exit_rule`` on the validation split and stores the
    chosen threshold in the model config. ``predict_proba`` runs the calibrated rule batched: each document
    leaves at its own layer, independently of the batch. ``flops_per_document`` counts the layers each
    document actually ran.
    """

    name = "early-exit"
    Settings = EarlyExitSettings

    def __init__(self, settings: EarlyExitSettings | None = None, **overrides: Any) -> None:
        super().__init__(settings, **overrides)
        self.model: EarlyExitForSequenceClassification | None = None
        self.tokenizer = None
        self.last_exit_layers: np.ndarray | None = None

    # ------------------------------------------------------------------------------------------------
    def _build(self, num_labels: int, id2label: dict[int, str], multi_label: bool) -> None:
        from transformers import AutoTokenizer

        s = self.settings
        path = resolve_encoder_path(s.model_name_or_path)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = EarlyExitForSequenceClassification.from_encoder(
            path,
            num_labels=num_labels,
            id2label=id2label,
            problem_type="multi_label_classification" if multi_label else "single_label_classification",
            attn_implementation=s.attn_implementation,
            exit_rule=s.exit_rule,
            training_mode=s.training_mode,
            layer_loss_weights=s.layer_loss_weights,
            classifier_head=s.classifier_head,
            classifier_dropout=s.classifier_dropout,
        )

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        return encode_texts(self.tokenizer, texts, self.settings.max_length, self.settings.truncation)

    def _features(self, texts: Sequence[str], labels: np.ndarray | None) -> EncodedDataset:
        ids = self._encode(texts)
        if labels is None:
            return EncodedDataset([{"input_ids": t} for t in ids])
        return EncodedDataset(
            [
                {"input_ids": t, "labels": y}
                for t, y in zip(ids, label_features(labels, self.multi_label), strict=True)
            ]
        )

    def _collator(self) -> PadCollator:
        return PadCollator(self.tokenizer.pad_token_id or 0)

    def _args(self, workdir: Path, seed: int, *, epochs: float, learning_rate: float, evaluate: bool):
        s = self.settings
        return make_training_args(
            workdir,
            seed=seed,
            epochs=epochs,
            batch_size=s.batch_size,
            eval_batch_size=s.eval_batch_size,
            learning_rate=learning_rate,
            weight_decay=s.weight_decay,
            warmup_ratio=s.warmup_ratio,
            evaluate_each_epoch=evaluate,
            select_best=s.select_best,
            show_progress=s.show_progress,
        )

    def fit(self, data, meter, seed: int = 0, output_dir: Path | None = None) -> EarlyExitMethod:
        """Train on ``data.train``, then calibrate the exit rule on ``data.validation``; returns ``self``.

        Joint mode: one ``Trainer`` run on the weighted loss of all exits, selecting the epoch by the
        final-layer validation macro-F1 (thresholds are 0 during training, so evaluation is full depth).
        Two-stage mode: stage 1 as BERT fine-tuning (``epochs``, with epoch selection); stage 2
        self-distillation of exits 1..L-1 on the training texts (labels unused) plus ``unlabeled_path``
        (``stage2_epochs``, last epoch kept: the final classifier is frozen, so validation macro-F1 at full
        depth cannot select). ``meter.record_epoch`` is called for the epochs of both stages.
        """
        from transformers import set_seed

        s = self.settings
        set_seed(seed)
        self.label_names = data.label_names
        self.multi_label = data.multi_label
        self._build(data.num_labels, data.id2label, data.multi_label)
        train_ds = self._features(data.train.texts, data.train.labels)
        eval_ds = (
            self._features(data.validation.texts, data.validation.labels) if len(data.validation) else None
        )
        workdir = (
            Path(output_dir) / "checkpoints"
            if output_dir
            else Path(tempfile.mkdtemp(prefix="frugaltext-ee-"))
        )
        compute_metrics = make_compute_metrics(self.label_names, self.multi_label)
        collator = self._collator()
        if s.training_mode == "joint":
            args = self._args(
                workdir, seed, epochs=s.epochs, learning_rate=s.learning_rate, evaluate=eval_ds is not None
            )
            trainer = train_with_trainer(
                self.model, train_ds, eval_ds, collator, args, meter, compute_metrics=compute_metrics
            )
            self.model = trainer.model
        else:
            self.model.set_training_stage(1)
            args = self._args(
                workdir / "stage1",
                seed,
                epochs=s.epochs,
                learning_rate=s.learning_rate,
                evaluate=eval_ds is not None,
            )
            trainer = train_with_trainer(
                self.model, train_ds, eval_ds, collator, args, meter, compute_metrics=compute_metrics
            )
            self.model = trainer.model
            self.model.set_training_stage(2)
            texts = list(data.train.texts)
            if s.unlabeled_path:
                extra = read_unlabeled_texts(s.unlabeled_path)
                logger.info(
                    "self-distillation on %d training + %d unlabeled documents", len(texts), len(extra)
                )
                texts += extra
            lr2 = s.stage2_learning_rate if s.stage2_learning_rate is not None else 10 * s.learning_rate
            args2 = self._args(
                workdir / "stage2", seed, epochs=s.stage2_epochs, learning_rate=lr2, evaluate=False
            )
            trainer = train_with_trainer(
                self.model, self._features(texts, None), None, collator, args2, meter
            )
            self.model = trainer.model
        self.model.eval()
        if output_dir is None:
            shutil.rmtree(workdir, ignore_errors=True)
        self._calibrate(data.validation)
        return self

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
    def _require_model(self) -> None:
        if self.model is None:
            raise ModelLoadError("early-exit: the model is not trained or loaded; call fit() or load() first")

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
        device = next(self.model.parameters()).device
        collator = self._collator()
        for index in length_sorted_batches([len(t) for t in ids], batch_size):
            batch = collator([{"input_ids": ids[i]} for i in index])
            out = self.model(
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
        logits, exits, _ = self.predict_with_exits(texts, batch_size)
        self.last_exit_layers = exits
        return logits_to_proba(logits, self.multi_label)

    # ------------------------------------------------------------------------------------------------
    def n_params(self) -> int:
        """All parameters: encoder and the L exit classifiers (all are needed, since any exit may be used)."""
        self._require_model()
        return int(sum(p.numel() for p in self.model.parameters()))

    def flops_per_document(self, texts: Sequence[str]) -> dict[str, float | None]:
        """Mean FLOPs per document of a forward pass and of a training step.

        Forward: the layers and classifiers each document actually ran under the calibrated rule, each at
        its own length. Training step: that of the training mode (two-stage: the stage-1 step; the stage-2
        step is in ``cost_notes``). Analytic counts equal to :func:`frugaltext.cost.flops.count_flops`
        (attention included; checked in the tests).
        """
        self._require_model()
        _, exits, seq_lens = self.predict_with_exits(texts, self.settings.eval_batch_size)
        forward = self.model.flops_per_document(seq_lens, exits)
        stage = 1 if self.model.config.training_mode == "two_stage" else None
        train = train_step_flops(self.model.config, seq_lens, stage)
        return {"flops": float(np.mean(forward)), "flops_train_step": float(np.mean(train))}

    def cost_notes(self) -> dict[str, Any]:
        """Exit rule and threshold, the validation calibration and the exits of the last prediction.

        Calibration: mean exit layer, exit-layer histogram, full-depth macro-F1 and the grid table on the
        validation split. Last ``predict_proba`` call: mean exit layer and histogram.
        """
        if self.model is None:
            return {}
        cfg = self.model.config
        notes: dict[str, Any] = {
            "encoder": cfg.encoder.model_type,
            "num_hidden_layers": cfg.num_hidden_layers,
            "hidden_size": cfg.encoder.hidden_size,
            "training_mode": cfg.training_mode,
            "exit_rule": cfg.exit_rule,
            "entropy_threshold": cfg.entropy_threshold if cfg.exit_rule == "entropy" else None,
            "patience": cfg.patience if cfg.exit_rule == "patience" else None,
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

    # ------------------------------------------------------------------------------------------------
    def _save(self, directory: Path) -> None:
        self._require_model()
        save_checkpoint(self.model, self.tokenizer, directory)

    def _load(self, directory: Path) -> None:
        self.model, self.tokenizer = load_checkpoint(directory, EarlyExitForSequenceClassification,
                                                     "early-exit")
