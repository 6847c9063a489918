"""``bert``: fine-tuned encoder with [CLS] + linear head (DocBERT; Adhikari et al. 2019).

The model stays a plain ``AutoModelForSequenceClassification`` with ``id2label``/``label2id`` and an explicit
``problem_type`` (softmax + cross-entropy for single-label, sigmoid + BCE for multi-label, as DocBERT), so the
saved directory is a standard transformers checkpoint: ``pipeline("text-classification", model=DIR)`` loads
it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from frugaltext.fastpath import FastPathSettings
from frugaltext.methods.base import register
from frugaltext.methods.torch_method import TorchMethod, encoder_details
from frugaltext.models.encoders import (  # noqa: F401  (re-exported: their old home)
    check_settings_max_length,
    default_encoder_path,
    keep_encoder_layers,
    parse_encoder_layers,
    resolve_encoder_path,
)
from frugaltext.settings import setting

TRUNCATIONS = ("head", "tail")
PADDINGS = ("dynamic", "max_length")


@dataclass(frozen=True)
class BertSettings(FastPathSettings):
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
    precision, batching, inference_quantization : see :class:`frugaltext.fastpath.FastPathSettings`.
    """

    method: ClassVar[str] = "bert"

    model_name_or_path: str | None = None
    max_length: int = setting(128, ge=8)
    truncation: str = setting("head", choices=TRUNCATIONS)
    padding: str = setting("dynamic", choices=PADDINGS)
    epochs: float = setting(3.0, gt=0)
    batch_size: int = setting(16, ge=1)
    eval_batch_size: int = setting(64, ge=1)
    learning_rate: float = setting(5e-5, gt=0)
    weight_decay: float = setting(0.01, ge=0)
    warmup_ratio: float = setting(0.1, ge=0, lt=1)
    select_best: bool = True
    dropout: float | None = setting(None, ge=0, le=1)
    encoder_layers: str | None = None
    show_progress: bool = True

    def _check(self) -> None:
        parse_encoder_layers(self.encoder_layers, "bert: encoder_layers")


@register
class BertMethod(TorchMethod):
    """Fine-tune a Hugging Face encoder with a [CLS] + linear head (DocBERT; Adhikari et al. 2019).

    The loss is chosen by ``problem_type``: cross-entropy over softmax for single-label tasks, BCE over
    independent sigmoids for multi-label tasks (a label is predicted when its probability >= 0.5).
    Training runs through the transformers ``Trainer`` (see :mod:`frugaltext.training.hf`), so
    ``torchrun --nproc_per_node K -m frugaltext train --method bert ...`` scales it to K processes.
    """

    name = "bert"
    Settings = BertSettings

    @property
    def model_class(self) -> Any:  # type: ignore[override]
        """``AutoModelForSequenceClassification`` (imported when needed)."""
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification

    def _build(self, data: Any, seed: int) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        s = self.settings
        check_settings_max_length(s, f"method {self.name!r}")
        path = resolve_encoder_path(s.model_name_or_path)
        kwargs: dict[str, Any] = dict(num_labels=data.num_labels, id2label=data.id2label,
                                      label2id=data.label2id, problem_type=data.problem_type)
        if s.dropout is not None:
            kwargs["classifier_dropout"] = s.dropout
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForSequenceClassification.from_pretrained(path, **kwargs)
        keep_encoder_layers(self.model, parse_encoder_layers(s.encoder_layers))

    def run_details(self) -> dict[str, Any]:
        """The encoder and its size; precision, batching and quantization (:meth:`fast_path_details`); after
        ``fit``, the optimizer steps per epoch, batch size and gradient accumulation of the training."""
        if self.model is None:
            return {}
        return {**self.details, **encoder_details(self.model.config), **self.fast_path_details()}
