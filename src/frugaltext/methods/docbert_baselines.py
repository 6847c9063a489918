"""DocBERT's neural baselines as methods: ``xml-cnn`` and ``han``, and their distilled versions.

DocBERT (Adhikari et al. 2019, *DocBERT: BERT for Document Classification*, Table 2) compares BERT with
XML-CNN (Liu et al. 2017), HAN (Yang et al. 2016) and LSTM_reg, all trained with the authors' hedwig code
(castorini/hedwig). The networks are :mod:`frugaltext.models.xml_cnn` and :mod:`frugaltext.models.han`; the
methods reuse everything of the students (:class:`frugaltext.methods.distill.StudentMethod`): the word
vocabulary of the training split or a teacher's WordPiece tokenizer (``tokenizer``), random or pretrained
(PCA-projected) input embeddings (``embeddings``), Adam with StepLR per epoch, validation macro-F1 after each
epoch with the best epoch restored and early stopping, CE (single-label) or BCE (multi-label) losses, the same
cost measurement (FLOPs of single documents on CPU, parameters, throughput, latency).

Methods
-------
``xml-cnn``
    Hard labels only. hedwig's XML-CNN sizes (:class:`frugaltext.models.xml_cnn.XMLCNNConfig`): 300-d word
    embeddings, widths 2, 4, 8 with 100 maps each, dynamic max pooling into 8 chunks, bottleneck 512, dropout
    0.5; batch 32; documents cut to their first 512 words; no vocabulary limit. Adam at 1e-3 (the students'
    rate). Not as hedwig: our embeddings are random (or a teacher's), not word2vec (no download here).
``han``
    Hard labels only. hedwig's HAN sizes (:class:`frugaltext.models.han.HANConfig`): 300-d word embeddings,
    50 GRU units per direction at both levels, no dropout; Adam at 1e-2 and batch 32 (hedwig's HAN README
    command for Reuters: ``--batch-size 32 --lr 0.01 --epochs 30``); at most 30 epochs, patience 5. Sentences
    come from spaCy's rule-based sentencizer (part of the inference cost: it runs on every predicted text);
    long sentences (and unpunctuated documents such as the packaged Reuters-8) are cut into pieces of
    ``max_words`` words; at most ``max_sentences`` sentences (32 x 64 words: whole Reuters documents).
    ``max_length`` is not used by HAN.
``distill-xml-cnn``, ``distill-han``
    The same networks trained on a teacher's logits (``teacher``: a saved model, or ``auto`` in ``compare``)
    with DocBERT's knowledge-distillation loss, ``CE + lambda * KL`` (lambda 4 single-label, 1 multi-label,
    ``loss="kl"``; DocBERT §4.2). Unlike ``distill-lstm-reg`` the transfer set is NOT augmented by default
    (``augment_copies=0``): one HAN/XML-CNN epoch costs minutes on a CPU, and DocBERT distils only LSTM_reg.
    Their no-teacher controls are ``xml-cnn`` and ``han``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from frugaltext.errors import ModelLoadError
from frugaltext.methods.base import register
from frugaltext.methods.distill import StudentMethod, StudentSettings
from frugaltext.settings import setting

__all__ = [
    "DistillHANMethod",
    "DistillHANSettings",
    "DistillXMLCNNMethod",
    "DistillXMLCNNSettings",
    "HANMethod",
    "HANSettings",
    "HierarchicalCollator",
    "XMLCNNMethod",
    "XMLCNNSettings",
]


# ==================================================================================================
# Settings
# ==================================================================================================
@dataclass(frozen=True)
class XMLCNNSettings(StudentSettings):
    """``xml-cnn``: the student settings (:class:`frugaltext.methods.distill.StudentSettings`) with hedwig's
    XML-CNN sizes.

    Attributes (beyond the students')
    ---------------------------------
    pool_chunks : int >= 1
        p of dynamic max pooling (hedwig's Reuters command: 8).
    bottleneck_size : int >= 1
        Units of the bottleneck layer (512).

    ``embedding_dim`` 300, ``n_filters`` 100, ``filter_sizes`` (2, 4, 8), ``dropout`` 0.5 (after the
    bottleneck), ``max_length`` 512 words, ``max_vocab_size`` None, ``batch_size`` 32; ``hidden_size``,
    ``embed_dropout`` and ``weight_drop`` are not used.
    """

    method: ClassVar[str] = "xml-cnn"
    embedding_dim: int = 300
    n_filters: int = 100
    filter_sizes: tuple[int, ...] = (2, 4, 8)
    pool_chunks: int = setting(8, ge=1)
    bottleneck_size: int = setting(512, ge=1)
    dropout: float = setting(0.5, ge=0, lt=1)
    max_length: int = 512
    max_vocab_size: int | None = None
    batch_size: int = 32


@dataclass(frozen=True)
class DistillXMLCNNSettings(XMLCNNSettings):
    """``distill-xml-cnn``: XML-CNN on a teacher's logits with DocBERT's ``CE + lambda * KL`` loss."""

    method: ClassVar[str] = "distill-xml-cnn"
    teacher: str | None = "auto"
    loss: str = "kl"


@dataclass(frozen=True)
class HANSettings(StudentSettings):
    """``han``: the student settings with hedwig's HAN sizes and optimiser.

    Attributes (beyond the students')
    ---------------------------------
    hidden_size : int
        GRU units per direction at the word and the sentence level (50).
    max_sentences, max_words : int >= 1
        Sentences per document and words per sentence (32 and 64; longer sentences are cut into pieces).

    ``embedding_dim`` 300, ``dropout`` 0 (hedwig's HAN has none), ``learning_rate`` 0.01, ``batch_size`` 32,
    ``epochs`` 30, ``max_vocab_size`` None; ``max_length``, ``n_filters``, ``filter_sizes``, ``embed_dropout``
    and ``weight_drop`` are not used.
    """

    method: ClassVar[str] = "han"
    embedding_dim: int = 300
    hidden_size: int = 50
    dropout: float = setting(0.0, ge=0, lt=1)
    max_sentences: int = setting(32, ge=1)
    max_words: int = setting(64, ge=1)
    learning_rate: float = 1e-2
    batch_size: int = 32
    epochs: int = 30
    max_vocab_size: int | None = None


@dataclass(frozen=True)
class DistillHANSettings(HANSettings):
    """``distill-han``: HAN on a teacher's logits with DocBERT's ``CE + lambda * KL`` loss."""

    method: ClassVar[str] = "distill-han"
    teacher: str | None = "auto"
    loss: str = "kl"


# ==================================================================================================
# XML-CNN
# ==================================================================================================
class _XMLCNNBase(StudentMethod):
    """Shared implementation of ``xml-cnn`` and ``distill-xml-cnn``."""

    architecture = "xml_cnn"

    def _build_model(self, data: Any) -> None:
        from frugaltext.models.xml_cnn import XMLCNNConfig, XMLCNNForSequenceClassification

        s = self.settings
        config = XMLCNNConfig(
            vocab_size=len(self.tokenizer), embedding_dim=s.embedding_dim, filter_sizes=list(s.filter_sizes),
            n_filters=s.n_filters, pool_chunks=s.pool_chunks, bottleneck_size=s.bottleneck_size,
            dropout=s.dropout, max_length=s.max_length, pad_token_id=self._pad_token_id,
            distillation_loss=s.loss, alpha=s.alpha, lam=s.lam, temperature=s.temperature,
            num_labels=data.num_labels, id2label=data.id2label, label2id=data.label2id,
            problem_type=data.problem_type,
        )
        self.model = XMLCNNForSequenceClassification(config)
        self._init_embeddings(self.model.embeddings, config.pad_token_id)

    def _load_model(self, directory: Path) -> None:
        from frugaltext.models.xml_cnn import XMLCNNConfig, XMLCNNForSequenceClassification

        _check_saved(directory, self.name, XMLCNNConfig.model_type)
        self.model = XMLCNNForSequenceClassification.from_pretrained(directory)
        self._load_tokenizer(directory)


@register
class XMLCNNMethod(_XMLCNNBase):
    """XML-CNN (Liu et al. 2017) on the hard labels: DocBERT's XML-CNN row; control of ``distill-xml-cnn``."""

    name = "xml-cnn"
    Settings = XMLCNNSettings
    control_name = "distill-xml-cnn"


@register
class DistillXMLCNNMethod(_XMLCNNBase):
    """XML-CNN distilled from a teacher (CE + lambda KL); control: ``xml-cnn``."""

    name = "distill-xml-cnn"
    Settings = DistillXMLCNNSettings
    needs_teacher = True
    control_name = "xml-cnn"


# ==================================================================================================
# HAN
# ==================================================================================================
class HierarchicalCollator:
    """Collate documents of nested word ids (sentences x words) for the HAN.

    ``input_ids`` are padded by :func:`frugaltext.models.han.pad_hierarchical` into ``input_ids`` and
    ``attention_mask`` of shape (batch_size, n_sentences, n_words); ``labels`` are stacked as long
    (batch_size,) or, for multi-label rows, float (batch_size, num_labels); other keys (``teacher_logits``)
    as float32 or long arrays, as :class:`frugaltext.data.collate.PadCollator` does.

    Parameters
    ----------
    pad_token_id : int
    """

    def __init__(self, pad_token_id: int = 0) -> None:
        self.pad_token_id = int(pad_token_id)

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Collate ``features`` (one dict per document) into a batch (see the class docstring)."""
        from frugaltext.models.han import pad_hierarchical

        batch = pad_hierarchical([f["input_ids"] for f in features], self.pad_token_id)
        for key in features[0]:
            if key in ("input_ids", "attention_mask"):
                continue
            values = [f[key] for f in features]
            if isinstance(values[0], torch.Tensor):
                batch[key] = torch.stack(values)
                continue
            array = np.asarray(values)
            floating = array.dtype.kind == "f" or (key == "labels" and array.ndim == 2)
            batch[key] = torch.as_tensor(array, dtype=torch.float32 if floating else torch.long)
        return batch


class _HANBase(StudentMethod):
    """Shared implementation of ``han`` and ``distill-han``: nested (sentence, word) inputs."""

    architecture = "han"

    def _encode(self, texts: Sequence[str]) -> list[list[list[int]]]:
        """Word ids per sentence per text (1 to ``max_sentences`` sentences of 1 to ``max_words`` ids).

        Word vocabulary: :func:`frugaltext.models.han.encode_hierarchical`. WordPiece: the same sentences
        (:func:`frugaltext.models.han.split_sentences`), each tokenised without special tokens and cut into
        pieces of ``max_words`` tokens; a text without tokens is one sentence ``[[UNK]]``.
        """
        from frugaltext.models.han import encode_hierarchical, split_sentences

        s = self.settings
        if s.tokenizer == "word":
            return encode_hierarchical(self.tokenizer, texts, s.max_sentences, s.max_words)
        sentences = split_sentences(texts)
        flat = [sentence for doc in sentences for sentence in doc]
        encoded = self.tokenizer(flat, add_special_tokens=False, padding=False)["input_ids"] if flat else []
        unk = self.tokenizer.unk_token_id if self.tokenizer.unk_token_id is not None else self._pad_token_id
        out, position = [], 0
        for doc in sentences:
            pieces: list[list[int]] = []
            for ids in encoded[position:position + len(doc)]:
                pieces.extend(ids[i:i + s.max_words] for i in range(0, len(ids), s.max_words))
            position += len(doc)
            out.append(pieces[: s.max_sentences] or [[unk]])
        return out

    def _collator(self) -> HierarchicalCollator:
        return HierarchicalCollator(self._pad_token_id)

    def _build_model(self, data: Any) -> None:
        from frugaltext.models.han import HANConfig, HANForSequenceClassification

        s = self.settings
        config = HANConfig(
            vocab_size=len(self.tokenizer), embedding_dim=s.embedding_dim, word_hidden_size=s.hidden_size,
            sentence_hidden_size=s.hidden_size, max_sentences=s.max_sentences, max_words=s.max_words,
            dropout=s.dropout, pad_token_id=self._pad_token_id, distillation_loss=s.loss, alpha=s.alpha,
            lam=s.lam, temperature=s.temperature, num_labels=data.num_labels, id2label=data.id2label,
            label2id=data.label2id, problem_type=data.problem_type,
        )
        self.model = HANForSequenceClassification(config)
        self._init_embeddings(self.model.embeddings, config.pad_token_id)

    def _load_model(self, directory: Path) -> None:
        from frugaltext.models.han import HANConfig, HANForSequenceClassification

        _check_saved(directory, self.name, HANConfig.model_type)
        self.model = HANForSequenceClassification.from_pretrained(directory)
        self._load_tokenizer(directory)

    # ---- inference and cost: 3-D inputs -----------------------------------------------------------
    def _logits(self, token_ids: Sequence[Sequence[Sequence[int]]], batch_size: int,
                extra: dict[str, Any] | None = None) -> np.ndarray:
        """Logits (n_docs, num_labels) float32, documents batched by similar word count, through the fast
        path like every torch method (:meth:`inference_model`: int8 when ``inference_quantization`` is int8;
        :meth:`inference_context`: bf16 autocast when the precision resolves to bf16)."""
        self.model.eval()
        model = self.inference_model()
        device = next(self.model.parameters()).device
        collator = self._collator()
        lengths = [sum(len(sentence) for sentence in doc) for doc in token_ids]
        out = np.zeros((len(token_ids), self.model.config.num_labels), dtype=np.float32)
        with torch.no_grad(), self.inference_context(model):
            for index in self._inference_batches(lengths, batch_size):
                batch = collator([{"input_ids": token_ids[i]} for i in index])
                logits = model(**{k: v.to(device) for k, v in batch.items()}).logits
                out[np.asarray(index)] = logits.float().cpu().numpy()
        return out

    def _flops_inputs(self, texts: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
        """Each document alone, as a (1, n_sentences, n_words) batch."""
        from frugaltext.models.han import pad_hierarchical

        for i, doc in enumerate(self._encode(texts)):
            yield i, pad_hierarchical([doc], self._pad_token_id)


@register
class HANMethod(_HANBase):
    """Hierarchical Attention Network (Yang et al. 2016) on the hard labels: DocBERT's HAN row; control of
    ``distill-han``."""

    name = "han"
    Settings = HANSettings
    control_name = "distill-han"


@register
class DistillHANMethod(_HANBase):
    """HAN distilled from a teacher (CE + lambda KL); control: ``han``."""

    name = "distill-han"
    Settings = DistillHANSettings
    needs_teacher = True
    control_name = "han"


def _check_saved(directory: Path, name: str, model_type: str) -> None:
    """Raise :class:`ModelLoadError` unless ``directory/config.json`` is a ``model_type`` model."""
    import json

    path = directory / "config.json"
    if not path.is_file():
        raise ModelLoadError(f"{directory}: config.json is missing; this is not a saved {name} model")
    found = json.loads(path.read_text(encoding="utf-8")).get("model_type")
    if found != model_type:
        raise ModelLoadError(f"{path}: model_type is {found!r}, not {model_type!r}; this is not a saved "
                             f"{name} model")
