"""The shared implementation of every method trained through the transformers ``Trainer``.

:class:`TorchMethod` keeps in one place what ``bert``, ``topicbert``, ``early-exit``, the students and Kim's
``cnn`` have in common, as scikit-learn's ``BaseEstimator`` and transformers' ``PreTrainedModel`` do: the
``fit`` skeleton (seed, labels, training, history, work directory removed on rank 0 only), one batched-logits
path for prediction, the parameter count (:func:`frugaltext.cost.flops.n_parameters`), one FLOPs routine and
save/load through :func:`frugaltext.training.hf.save_checkpoint`. Subclasses supply the model
(:meth:`_build`), the token ids (:meth:`_encode`) and extra inputs, and override only what differs. Settings
that every torch method will share (precision, batching) belong in :meth:`_training_args` and
:meth:`_inference_batches`.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import tempfile
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from frugaltext.data.collate import EncodedDataset, PadCollator, encode_texts, length_sorted_batches
from frugaltext.errors import ConfigError, ModelLoadError
from frugaltext.fastpath import QUANTIZATIONS, autocast, fast_path_details, quantize_int8, resolve_precision
from frugaltext.fileio import atomic_write_text
from frugaltext.methods.base import Method
from frugaltext.training.hf import (
    batched_logits,
    checkpoint_step,
    find_resume_checkpoint,
    is_main_process,
    label_features,
    load_checkpoint,
    logits_to_proba,
    make_compute_metrics,
    make_training_args,
    optimizer_steps_per_epoch,
    save_checkpoint,
    train_with_trainer,
    world_size,
)

logger = logging.getLogger("frugaltext.training")

__all__ = ["DEFAULT_CHECKPOINT_STEPS", "TorchMethod", "encoder_details"]

#: Default of :attr:`TorchMethod.checkpoint_steps`: a full checkpoint every 500 optimisation steps (about
#: 1.5 epochs of R8 at batch 16; a few seconds per save for MiniLM, counted in the training time).
DEFAULT_CHECKPOINT_STEPS = 500
#: File in the work directory recording what its checkpoints were trained with (see :meth:`TorchMethod.fit`).
WORK_FINGERPRINT_FILE = "frugaltext_work.json"


def encoder_details(config: Any) -> dict[str, Any]:
    """Encoder type and size of a transformers config, for :meth:`Method.run_details`."""
    return {"encoder": config.model_type, "num_hidden_layers": config.num_hidden_layers,
            "hidden_size": config.hidden_size}


#: Settings added after the work-folder fingerprint (``frugaltext_work.json``) as earlier versions wrote it,
#: with the default that reproduces their behaviour: left out of the fingerprint at that default, so that an
#: interrupted run's checkpoints stay resumable across the upgrade (the same idea as
#: :data:`frugaltext.experiment.config.NEUTRAL_NEW_SETTINGS` for the config hash; the older settings of that
#: list stay in, because the fingerprints already on disk hold them).
FINGERPRINT_NEUTRAL_SETTINGS: dict[str, Any] = {"int8_keep_fp32_linear": None}


class TorchMethod(Method):
    """A method whose model is a torch module trained by :func:`frugaltext.training.hf.train_with_trainer`.

    Subclasses implement :meth:`_build` (create ``self.model`` and ``self.tokenizer``) and set
    ``model_class`` (loaded with ``from_pretrained``). Hooks with working defaults: :meth:`_encode`,
    :meth:`_features`, :meth:`_train_dataset`, :meth:`_collator`, :meth:`_training_args`, :meth:`_train`,
    :meth:`_after_training`, :meth:`_inference_batches`, :meth:`_flops_inputs`, :meth:`_train_step_inputs`,
    :meth:`_save_model`, :meth:`_load_model`.

    Attributes
    ----------
    model : torch.nn.Module or None
    tokenizer : transformers tokenizer (or a word vocabulary) or None
    train_history : list of dict
        The Trainer's log history (training loss per logging step, validation metrics per epoch).
    details : dict
        Run details reported by :meth:`run_details` and saved in ``details_file`` when it is set.
    checkpoint_steps : int
        Save a full Trainer checkpoint every this many optimisation steps besides the per-epoch ones
        (:class:`frugaltext.training.hf.StepCheckpointCallback`), so that a killed run resumes close to
        where it stopped; 0 = only at epoch ends (when evaluating). Not a hyper-parameter: it does not
        change the trained model, is not saved with it and is not part of the config hash. Default
        :data:`DEFAULT_CHECKPOINT_STEPS`; ``compare`` and ``train`` set it from ``checkpoint_steps``.
    train_steps : int
        Optimisation steps of the last ``fit`` (``trainer.state.global_step``, summed over stages).
    resumed_steps : int
        Of those, the steps restored from checkpoints of an interrupted earlier run (0 when none).
    """

    model_class: ClassVar[Any] = None
    #: files that must exist in a saved directory
    checkpoint_files: ClassVar[tuple[str, ...]] = ("config.json",)
    #: JSON file of ``details`` written beside the model (None: not saved)
    details_file: ClassVar[str | None] = None
    #: count the training step's FLOPs with the model in training mode (else eval mode: no dropout)
    flops_train_mode: ClassVar[bool] = False
    #: count FLOPs on a CPU copy (cuDNN's fused LSTM is invisible to the counter)
    flops_on_cpu: ClassVar[bool] = False
    #: submodules kept in fp32 by int8 inference (:func:`frugaltext.fastpath.quantize_int8`)
    int8_keep_fp32: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: Any = None, **overrides: Any) -> None:
        super().__init__(settings, **overrides)
        self.model: Any = None
        self.tokenizer: Any = None
        self.train_history: list[dict[str, Any]] = []
        self.details: dict[str, Any] = {}
        self.checkpoint_steps: int = DEFAULT_CHECKPOINT_STEPS
        self.train_steps: int = 0
        self.resumed_steps: int = 0
        self._quantized: tuple[Any, Any] | None = None  # (the model it was made from, its int8 copy)

    # ---- what subclasses supply -------------------------------------------------------------------
    @abstractmethod
    def _build(self, data: Any, seed: int) -> None:
        """Create ``self.model`` (and ``self.tokenizer``) for ``data`` (labels already set)."""

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text (special tokens included), cut to ``max_length``."""
        s = self.settings
        return encode_texts(self.tokenizer, texts, s.max_length, getattr(s, "truncation", "head"))

    @property
    def _pad_token_id(self) -> int:
        return int(self.tokenizer.pad_token_id or 0)

    def _pad_length(self) -> int | None:
        """Fixed input length (``padding="max_length"``), or None for dynamic padding."""
        fixed = getattr(self.settings, "padding", "dynamic") == "max_length"
        return self.settings.max_length if fixed else None

    def _collator(self) -> PadCollator:
        return PadCollator(self._pad_token_id, self._pad_length())

    def _features(self, texts: Sequence[str], labels: Any = None,
                  extra: dict[str, Sequence[Any]] | None = None) -> EncodedDataset:
        """One feature dict per document: ``input_ids``, ``labels`` (when given) and the ``extra`` keys."""
        ids = self._encode(texts)
        rows: list[dict[str, Any]] = [{"input_ids": t} for t in ids]
        if labels is not None:
            for row, y in zip(rows, labels if isinstance(labels, list)
                              else label_features(labels, self.multi_label), strict=True):
                row["labels"] = y
        for key, values in (extra or {}).items():
            if values is not None:
                for row, value in zip(rows, values, strict=True):
                    row[key] = value
        return EncodedDataset(rows)

    def _train_dataset(self, data: Any, seed: int) -> Any:
        return self._features(data.train.texts, data.train.labels)

    def _eval_dataset(self, data: Any) -> Any:
        if data.validation is None or not len(data.validation):
            return None
        return self._features(data.validation.texts, data.validation.labels)

    def _compute_metrics(self, eval_ds: Any, data: Any) -> Any:
        return make_compute_metrics(self.label_names, self.multi_label) if eval_ds is not None else None

    def _training_args(self, workdir: Path, seed: int, **overrides: Any) -> Any:
        """``TrainingArguments`` from the settings (one place for options every torch method shares):
        ``precision`` (bf16: the Trainer's mixed precision) and ``batching`` (grouped: length-grouped
        batches, see :meth:`_length_grouping`) of :class:`frugaltext.fastpath.FastPathSettings` included."""
        s = self.settings
        kwargs: dict[str, Any] = dict(
            seed=seed, epochs=s.epochs, batch_size=s.batch_size, eval_batch_size=s.eval_batch_size,
            learning_rate=s.learning_rate, weight_decay=getattr(s, "weight_decay", 0.0),
            warmup_ratio=getattr(s, "warmup_ratio", 0.0), select_best=s.select_best,
            show_progress=s.show_progress,
            group_by_length=self._length_grouping() is not None,
        )
        if self._precision() == "bf16":
            kwargs["bf16"] = True
        kwargs.update(overrides)
        return make_training_args(workdir, **kwargs)

    def _train(self, data: Any, train_ds: Any, eval_ds: Any, workdir: Path, seed: int, meter: Any) -> Any:
        """One Trainer run; returns the trainer. Override for several stages or a custom optimiser."""
        args = self._training_args(workdir, seed, evaluate_each_epoch=eval_ds is not None)
        return self._run_trainer(train_ds, eval_ds, args, meter, self._compute_metrics(eval_ds, data))

    def _length_grouping(self) -> str | None:
        """``FrugalTrainer``'s ``length_grouping`` for the ``batching`` setting: "shuffled" for ``grouped``,
        "megabatch" for ``grouped-megabatch`` (transformers' sweep), None for ``random`` (no grouping)."""
        batching = getattr(self.settings, "batching", "grouped")
        return {"grouped": "shuffled", "grouped-megabatch": "megabatch"}.get(batching)

    def _run_trainer(self, train_ds: Any, eval_ds: Any, args: Any, meter: Any, compute_metrics: Any = None,
                     callbacks: Sequence[Any] = (), optimizers: tuple[Any, Any] = (None, None)) -> Any:
        resumed = checkpoint_step(find_resume_checkpoint(args.output_dir))
        trainer = train_with_trainer(self.model, train_ds, eval_ds, self._collator(), args, meter,
                                     compute_metrics=compute_metrics, callbacks=callbacks,
                                     optimizers=optimizers, checkpoint_steps=self.checkpoint_steps,
                                     length_grouping=self._length_grouping() or "shuffled")
        self.model = trainer.model
        self.train_history += list(trainer.state.log_history)
        self.train_steps += int(trainer.state.global_step)
        self.resumed_steps += resumed
        self.details.update(self._step_details(train_ds, args))
        return trainer

    @staticmethod
    def _step_details(train_ds: Any, args: Any) -> dict[str, Any]:
        """``optimizer_steps_per_epoch`` (:func:`frugaltext.training.hf.optimizer_steps_per_epoch`),
        ``train_batch_size`` (examples per forward pass and process), ``gradient_accumulation_steps`` and
        ``train_examples`` of a Trainer run, for the results row's notes (the last stage's, when a method
        trains in several)."""
        k = int(args.gradient_accumulation_steps)
        return {"optimizer_steps_per_epoch": optimizer_steps_per_epoch(
                    len(train_ds), int(args.per_device_train_batch_size), k, world_size()),
                "train_batch_size": int(args.per_device_train_batch_size),
                "gradient_accumulation_steps": k,
                "train_examples": len(train_ds)}

    def _after_training(self, data: Any, seed: int, trainer: Any) -> None:
        """Work after training (calibration, topic quality...); the model is in eval mode."""

    # ---- training ---------------------------------------------------------------------------------
    def fit(self, data, meter, seed: int = 0, output_dir: Path | None = None) -> TorchMethod:
        """Train on ``data.train`` (epoch chosen by validation macro-F1 where the method selects); returns
        ``self``.

        Checkpoints go to ``output_dir/checkpoints`` (kept, so that a run killed part-way resumes from its
        newest complete checkpoint when ``fit`` is called again with the same ``output_dir``; the caller
        removes the folder after success) or to a temporary directory removed afterwards by rank 0.
        ``output_dir/frugaltext_work.json`` records the settings, seed, labels and a hash of the training
        texts; checkpoints left there by a run with other values are deleted (logged) rather than resumed.
        """
        from transformers import set_seed

        set_seed(seed)
        self.label_names, self.multi_label = data.label_names, data.multi_label
        self.train_history, self.details = [], {}
        self.train_steps = self.resumed_steps = 0
        self._build(data, seed)
        train_ds = self._train_dataset(data, seed)
        eval_ds = self._eval_dataset(data)
        if output_dir:
            workdir = Path(output_dir) / "checkpoints"
            self._claim_work_dir(Path(output_dir), workdir, data, seed)
        else:
            workdir = Path(tempfile.mkdtemp(prefix=f"frugaltext-{self.name}-"))
        trainer = self._train(data, train_ds, eval_ds, workdir, seed, meter)
        self.model.eval()
        if output_dir is None and is_main_process():
            shutil.rmtree(workdir, ignore_errors=True)
        self._after_training(data, seed, trainer)
        return self

    def _work_fingerprint(self, data: Any, seed: int) -> dict[str, Any]:
        import dataclasses
        import hashlib

        texts = hashlib.sha256()
        for text in data.train.texts:
            texts.update(text.encode("utf-8"))
            texts.update(b"\0")
        settings = dataclasses.asdict(self.settings) if dataclasses.is_dataclass(self.settings) else {}
        settings.pop("show_progress", None)
        # settings added since, at the default that reproduces the old behaviour, do not orphan checkpoints
        settings = {k: v for k, v in settings.items()
                    if not (k in FINGERPRINT_NEUTRAL_SETTINGS and v == FINGERPRINT_NEUTRAL_SETTINGS[k])}
        return {"method": self.name, "seed": seed, "settings": settings,
                "label_names": list(self.label_names), "multi_label": self.multi_label,
                "n_train": len(data.train), "train_sha256": texts.hexdigest()}

    def _claim_work_dir(self, output_dir: Path, workdir: Path, data: Any, seed: int) -> None:
        """Keep ``workdir``'s checkpoints only if they were trained with this method, settings, seed and data
        (``frugaltext_work.json``); otherwise delete them (rank 0), then record this run's values."""
        if not is_main_process():
            return
        fingerprint = json.loads(json.dumps(self._work_fingerprint(data, seed), default=str))
        path = output_dir / WORK_FINGERPRINT_FILE
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            stored = None
        if workdir.is_dir() and stored != fingerprint:
            logger.info("%s: checkpoints in %s were trained with other settings or data (%s); deleting them",
                        self.name, workdir, "no record" if stored is None else "record differs")
            shutil.rmtree(workdir, ignore_errors=True)
        output_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(fingerprint, indent=2) + "\n")

    # ---- inference --------------------------------------------------------------------------------
    def _require_model(self) -> None:
        if self.model is None or self.tokenizer is None:
            raise ModelLoadError(f"{self.name}: the model is not trained or loaded; call fit() or load() "
                                 "first")

    def _inference_batches(self, lengths: Sequence[int], batch_size: int) -> list[list[int]]:
        """Document indices of each inference batch (by similar length, to cut padding; the callers put each
        row back at its document's index, so outputs keep the input order)."""
        return length_sorted_batches(lengths, batch_size)

    # ---- fast path: precision and int8 ------------------------------------------------------------
    def _precision(self) -> str:
        """``"fp32"`` or ``"bf16"``: the ``precision`` setting resolved on this machine."""
        return resolve_precision(getattr(self.settings, "precision", "fp32"))[0]

    def quantize(self, quantization: str | None, keep_fp32_linear: Any = ...) -> TorchMethod:
        """Predict with ``quantization`` from now on (``"int8"``: dynamic int8 Linear layers, see
        :func:`frugaltext.fastpath.quantize_int8`; ``"none"``/None: the fp32 model). Returns ``self``.

        ``keep_fp32_linear`` (a regular expression, or None for every Linear layer) replaces the
        ``int8_keep_fp32_linear`` setting; omitted, the setting is kept.

        Raises
        ------
        ConfigError
            If ``quantization`` is not none or int8, or ``keep_fp32_linear`` is not a valid regular
            expression.
        """
        import dataclasses

        value = "none" if quantization is None else str(quantization).lower()
        if value not in QUANTIZATIONS:
            raise ConfigError(f"{self.name}: quantization must be one of {', '.join(QUANTIZATIONS)}, got "
                              f"{quantization!r}")
        if dataclasses.is_dataclass(self.settings) and hasattr(self.settings, "inference_quantization"):
            changes: dict[str, Any] = {"inference_quantization": value}
            if keep_fp32_linear is not ...:
                changes["int8_keep_fp32_linear"] = keep_fp32_linear
            self.settings = dataclasses.replace(self.settings, **changes)
        else:
            raise ConfigError(f"{self.name}: this method's settings have no inference_quantization")
        self._quantized = None
        return self

    def inference_model(self) -> Any:
        """The module that predicts: ``self.model``, or its int8 copy (made once per trained/loaded model)
        when ``inference_quantization`` is int8. ``self.model`` itself stays fp32 (saved and FLOP-counted)."""
        if getattr(self.settings, "inference_quantization", "none") != "int8":
            return self.model
        if self._quantized is None or self._quantized[0] is not self.model:
            self._quantized = (self.model, quantize_int8(
                self.model, self.int8_keep_fp32, getattr(self.settings, "int8_keep_fp32_linear", None)))
        return self._quantized[1]

    def inference_context(self, model: Any = None) -> Any:
        """Context of a forward pass at inference: ``torch.autocast`` in bf16 when the precision resolves to
        bf16 (and the model is not int8-quantized, whose kernels take fp32 activations), else nothing."""
        from contextlib import nullcontext

        if self._precision() != "bf16" or getattr(self.settings, "inference_quantization", "none") == "int8":
            return nullcontext()
        model = model if model is not None else self.model
        return autocast("bf16", next(model.parameters()).device.type)

    def fast_path_details(self) -> dict[str, Any]:
        """Precision used and why, batching and inference quantization (keys of the results row's notes;
        see :func:`frugaltext.fastpath.fast_path_details`)."""
        return fast_path_details(self.settings)

    def _logits(self, token_ids: Sequence[Sequence[int]], batch_size: int,
                extra: dict[str, Any] | None = None) -> np.ndarray:
        model = self.inference_model()
        with self.inference_context(model):
            return batched_logits(model, token_ids, batch_size, self._pad_token_id, extra=extra,
                                  batches=self._inference_batches([len(t) for t in token_ids], batch_size))

    def predict_logits(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Raw logits, shape ``(n_docs, num_labels)`` float32 (distillation teachers use these)."""
        self._require_model()
        texts = list(texts)
        if not texts:
            return np.zeros((0, len(self.label_names)), dtype=np.float32)
        return self._logits(self._encode(texts), batch_size)

    def predict_proba(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Softmax (single-label) or sigmoid (multi-label) probabilities, shape ``(n_docs, num_labels)``."""
        return logits_to_proba(self.predict_logits(texts, batch_size), self.multi_label)

    # ---- cost -------------------------------------------------------------------------------------
    def n_params(self) -> int:
        """All parameters of the model."""
        from frugaltext.cost.flops import n_parameters

        self._require_model()
        return n_parameters(self.model)

    def _flops_inputs(self, texts: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(document index, one-row model inputs)`` for each piece of each document: the document at its
        own length, or at the fixed length with ``padding="max_length"``."""
        pad_to = self._pad_length()
        for i, ids in enumerate(self._encode(texts)):
            if pad_to is not None:
                ids = ids + [self._pad_token_id] * (pad_to - len(ids))
            yield i, {"input_ids": torch.tensor([ids]),
                      "attention_mask": torch.ones(1, len(ids), dtype=torch.long)}

    def _train_step_inputs(self) -> dict[str, torch.Tensor]:
        """Extra inputs of a one-document training step (labels; a teacher's logits for students)."""
        k = len(self.label_names)
        return {"labels": torch.zeros(1, k) if self.multi_label else torch.zeros(1, dtype=torch.long)}

    def flops_per_document(self, texts: Sequence[str]) -> dict[str, float | None]:
        """Mean FLOPs per document of one forward pass and of one training step (forward + backward; the
        optimiser update is not counted), each document alone (:func:`frugaltext.cost.flops.count_flops`,
        attention included); a document read in pieces sums its pieces."""
        from frugaltext.cost.flops import count_flops

        self._require_model()
        texts = list(texts)
        model = self.model
        if self.flops_on_cpu and next(model.parameters()).device.type != "cpu":
            model = copy.deepcopy(model).cpu()
        forward, train = np.zeros(len(texts)), np.zeros(len(texts))
        step = self._train_step_inputs()
        try:
            for doc, inputs in self._flops_inputs(texts):
                model.eval()
                forward[doc] += count_flops(model, inputs)
                model.train(self.flops_train_mode)
                train[doc] += count_flops(model, {**inputs, **step}, train_step=True)
        finally:
            model.eval()
        return {"flops": float(np.mean(forward)), "flops_train_step": float(np.mean(train))}

    def run_details(self) -> dict[str, Any]:
        """The run details collected by ``fit`` (see the subclass) and :meth:`fast_path_details`."""
        return {**self.details, **self.fast_path_details()}

    # ---- persistence ------------------------------------------------------------------------------
    def _save_model(self, directory: Path) -> None:
        save_checkpoint(self.model, self.tokenizer, directory)

    def _load_model(self, directory: Path) -> None:
        self.model, self.tokenizer = load_checkpoint(directory, self.model_class, self.name,
                                                     self.checkpoint_files)

    def _save(self, directory: Path) -> None:
        self._require_model()
        if not is_main_process():
            return
        self._save_model(directory)
        if self.details_file:
            atomic_write_text(directory / self.details_file, json.dumps(self.details, indent=2, default=str))

    def _load(self, directory: Path) -> None:
        self._load_model(directory)
        self.model.eval()
        path = directory / self.details_file if self.details_file else None
        self.details = json.loads(path.read_text(encoding="utf-8")) if path and path.is_file() else {}
