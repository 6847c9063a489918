"""``topicbert``: TopicBERT (Chaudhary et al. 2020), an NVDM topic model fine-tuned jointly with a BERT
encoder, optionally reading each document in p shorter partitions for efficiency.

Recipe (paper, supplementary A.3): (1) build the bag-of-words vocabulary from the training texts and pretrain
the NVDM (early stopping on the validation perplexity when there is a validation split); (2) load the
pretrained encoder; (3) fine-tune both jointly with ``alpha * CE + (1 - alpha) * L_NVDM``. The NVDM
pretraining runs inside :meth:`TopicBertMethod.fit`, so its time and energy are part of the method's
training cost (``compare`` measures the whole fit); its own wall time is reported in :meth:`cost_notes`.
Partition batching (every partition a training example) and combination (mean of the partitions'
probabilities) follow the authors' code; see :mod:`frugaltext.models.topicbert`.
"""

from __future__ import annotations

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

from frugaltext.errors import ConfigError, DataFormatError, ModelLoadError
from frugaltext.methods.base import Method, atomic_write_text, register
from frugaltext.methods.bert import resolve_encoder_path
from frugaltext.training.hf import (
    batched_logits,
    is_main_process,
    label_features,
    load_checkpoint,
    logits_to_proba,
    make_training_args,
    save_checkpoint,
    train_with_trainer,
)

logger = logging.getLogger("frugaltext.methods.topicbert")

NOTES_FILE = "topicbert_notes.json"


@dataclass(frozen=True)
class NVDMSettings:
    """The topic model's settings, shared by ``topicbert`` and ``bert-avg-dtr``.

    Attributes
    ----------
    n_topics, nvdm_hidden, nvdm_activation : NVDM shape (paper Table 5: 100, 256, sigmoid).
    nvdm_samples : int
        Samples of h_TM per document in training: 1, as Miao et al. (2016); the paper's search had 3 and 10.
    bow_min_df, bow_max_df, bow_max_size : bag-of-words vocabulary filters (see
        :class:`~frugaltext.models.nvdm.BowVocabulary`). min_df = 5 gives 4,727 words on Reuters-8 (paper:
        4,813).
    nvdm_pretrain_epochs, nvdm_batch_size, nvdm_learning_rate, nvdm_patience : NVDM pretraining (authors:
        Adam 1e-3, batch 64, patience 10 on validation perplexity; about 50 epochs, 1 s each, on Reuters-8).
    """

    n_topics: int = 100
    nvdm_hidden: int = 256
    nvdm_activation: str = "sigmoid"
    nvdm_samples: int = 1
    bow_min_df: int = 5
    bow_max_df: float = 1.0
    bow_max_size: int = 5000
    nvdm_pretrain_epochs: int = 50
    nvdm_batch_size: int = 64
    nvdm_learning_rate: float = 1e-3
    nvdm_patience: int = 5

    def __post_init__(self) -> None:
        for name in ("n_topics", "nvdm_hidden", "nvdm_samples", "bow_min_df", "bow_max_size",
                     "nvdm_pretrain_epochs", "nvdm_batch_size", "nvdm_patience"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.nvdm_learning_rate > 0 or not 0.0 < self.bow_max_df <= 1.0:
            raise ConfigError(f"nvdm_learning_rate must be > 0 and bow_max_df in (0, 1]; got "
                              f"{self.nvdm_learning_rate} and {self.bow_max_df}")

    def pretrain(self, data: Any, seed: int):
        """Vocabulary and NVDM from ``data.train`` (early stopping on ``data.validation`` when it has texts);
        see :func:`frugaltext.models.nvdm.pretrain_topic_model`."""
        from frugaltext.models.nvdm import pretrain_topic_model

        valid = list(data.validation.texts) if data.validation is not None else []
        return pretrain_topic_model(
            data.train.texts, valid, min_df=self.bow_min_df, max_df=self.bow_max_df,
            max_size=self.bow_max_size, n_topics=self.n_topics, hidden_size=self.nvdm_hidden,
            activation=self.nvdm_activation, n_samples=self.nvdm_samples, epochs=self.nvdm_pretrain_epochs,
            batch_size=self.nvdm_batch_size, learning_rate=self.nvdm_learning_rate,
            patience=self.nvdm_patience, seed=seed)


@dataclass(frozen=True)
class TopicBertSettings(NVDMSettings):
    """Hyper-parameters of ``topicbert`` (and the NVDM's, see :class:`NVDMSettings`).

    Attributes
    ----------
    model_name_or_path : str or None
        Local encoder checkpoint folder; None = the packaged all-MiniLM-L6-v2.
    max_length : int
        N: tokens per document over all partitions, special tokens included (paper 512; 128 here by default,
        as ``bert``, so the two compare at the same N).
    n_partitions : int
        p: 1 = complementary fine-tuning (TopicBERT-N); 2, 4, 8 = efficient fine-tuning (TopicBERT-N/p).
    padding : {"dynamic", "max_length"}
        Pad each batch to its longest partition, or every partition to ``max_length // n_partitions``.
    alpha : float in [0, 1]
        Weight of the classification loss (paper optimum 0.9, Table 7).
    epochs, batch_size, eval_batch_size, learning_rate, weight_decay, warmup_ratio : joint fine-tuning
        (AdamW, linear decay; the same defaults as ``bert``). ``batch_size`` counts partitions.
    topic_lr_factor : float > 0
        NVDM learning rate during joint fine-tuning = ``learning_rate`` x this (authors' ``gsm_lr_factor``).
    max_grad_norm : float
        Gradient clipping of the joint fine-tuning (Trainer default 1.0, as ``bert``; 0 disables it). The
        NVDM loss is a sum over a document's words, so its gradient dominates the global norm (on Reuters-8
        with MiniLM at the start of fine-tuning: 4.6 for 0.1 x L_NVDM against 2.0 for 0.9 x CE); AdamW's
        steps barely depend on that common scale.
    select_best : bool
        Keep the epoch with the best validation macro-F1 (document level: partitions combined).
    dropout : float or None
        Dropout on h_p (None: the encoder's hidden dropout).
    projection_activation : str or None
        None = linear P (paper); "gelu" = the authors' code.
    n_top_words : int
        Words per topic in the saved topics and the NPMI.
    encoder_layers : str or None
        Keep only these encoder layers, as ``bert``'s setting (``"0,2,4"`` on MiniLM: a TopicDistilBERT
        stand-in, see :mod:`frugaltext.models.encoders`).
    """

    model_name_or_path: str | None = None
    max_length: int = 128
    n_partitions: int = 1
    padding: str = "dynamic"
    alpha: float = 0.9
    epochs: float = 3.0
    batch_size: int = 16
    eval_batch_size: int = 64
    learning_rate: float = 5e-5
    topic_lr_factor: float = 1.0
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    select_best: bool = True
    dropout: float | None = None
    projection_activation: str | None = None
    n_top_words: int = 10
    encoder_layers: str | None = None
    show_progress: bool = True

    def __post_init__(self) -> None:
        from frugaltext.models.encoders import parse_encoder_layers
        from frugaltext.models.topicbert import partition_length

        try:
            super().__post_init__()
        except ConfigError as err:
            raise ConfigError(f"topicbert: {err}") from err
        if self.padding not in ("dynamic", "max_length"):
            raise ConfigError(f"topicbert: padding must be 'dynamic' or 'max_length', got {self.padding!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"topicbert: alpha must be in [0, 1] (weight of the classification loss), got "
                              f"{self.alpha}")
        partition_length(self.n_partitions, self.max_length)
        parse_encoder_layers(self.encoder_layers, "topicbert: encoder_layers")
        for name in ("batch_size", "eval_batch_size", "n_top_words"):
            if getattr(self, name) < 1:
                raise ConfigError(f"topicbert: {name} must be >= 1, got {getattr(self, name)}")
        if min(self.epochs, self.learning_rate, self.topic_lr_factor) <= 0:
            raise ConfigError("topicbert: epochs, learning_rate and topic_lr_factor must be positive")
        if self.max_grad_norm < 0:
            raise ConfigError(f"topicbert: max_grad_norm must be >= 0 (0 disables clipping), got "
                              f"{self.max_grad_norm}")


@register
class TopicBertMethod(Method):
    """TopicBERT document classifier (Chaudhary et al. 2020, Findings of EMNLP).

    Single-label tasks use softmax + cross-entropy, multi-label tasks sigmoids + binary cross-entropy (a label
    is predicted when its probability, averaged over the partitions, is >= 0.5, as the authors' code).
    Training goes through the shared transformers ``Trainer`` (:mod:`frugaltext.training.hf`), so
    ``torchrun --nproc_per_node K`` scales it; the bag of words is an ordinary batch key (``bow``).
    """

    name = "topicbert"
    Settings = TopicBertSettings

    def __init__(self, settings: TopicBertSettings | None = None, **overrides: Any) -> None:
        super().__init__(settings, **overrides)
        self.model = None
        self.tokenizer = None
        self.vocab = None
        self.notes: dict[str, Any] = {}
        self.topics: list[list[str]] = []

    # ------------------------------------------------------------------------------------------------
    def _partitions(self, texts: Sequence[str], bow: Any, labels: np.ndarray | None = None):
        from frugaltext.models.topicbert import PartitionDataset, encode_partitions

        s = self.settings
        rows, doc_index = encode_partitions(self.tokenizer, texts, s.n_partitions, s.max_length)
        label_rows = label_features(labels, self.multi_label) if labels is not None else None
        return PartitionDataset(rows, doc_index, bow, label_rows)

    def _compute_metrics(self, dataset, doc_labels: np.ndarray):
        from frugaltext.metrics import classification_metrics
        from frugaltext.models.topicbert import combine_partitions

        n_docs = int(doc_labels.shape[0])

        def compute(prediction: Any) -> dict[str, float]:
            logits = prediction.predictions
            if isinstance(logits, tuple):
                logits = logits[0]
            if logits.shape[0] != len(dataset):
                raise DataFormatError(f"topicbert: evaluation returned {logits.shape[0]} rows for "
                                      f"{len(dataset)} partitions; the evaluation order must be kept")
            proba = combine_partitions(logits_to_proba(logits, self.multi_label), dataset.doc_index, n_docs)
            predicted = (proba >= 0.5).astype(np.int64) if self.multi_label else proba.argmax(axis=1)
            metrics = classification_metrics(doc_labels, predicted, self.label_names, self.multi_label)
            return {k: v for k, v in metrics.items() if isinstance(v, float | int)}

        return compute

    def _optimizer(self, model: torch.nn.Module, args: Any):
        """AdamW with the NVDM parameters at ``learning_rate * topic_lr_factor`` (None: the Trainer's default
        optimizer, when the factor is 1). Weight decay groups as the Trainer's (none on biases and norms)."""
        s = self.settings
        if s.topic_lr_factor == 1.0:
            return None
        from transformers import Trainer

        decay = set(Trainer.get_decay_parameter_names(None, model))
        nvdm = model.nvdm_parameter_names()
        groups = []
        for is_nvdm in (False, True):
            for with_decay in (True, False):
                params = [p for n, p in model.named_parameters()
                          if p.requires_grad and (n in nvdm) == is_nvdm and (n in decay) == with_decay]
                if params:
                    groups.append({"params": params, "weight_decay": s.weight_decay if with_decay else 0.0,
                                   "lr": s.learning_rate * (s.topic_lr_factor if is_nvdm else 1.0)})
        return torch.optim.AdamW(groups, lr=s.learning_rate, betas=(args.adam_beta1, args.adam_beta2),
                                 eps=args.adam_epsilon)

    def fit(self, data, meter, seed: int = 0, output_dir: Path | None = None) -> TopicBertMethod:
        """Pretrain the NVDM, then fine-tune TopicBERT on ``data.train`` (epoch chosen by validation
        macro-F1, partitions combined per document)."""
        from transformers import AutoTokenizer, set_seed

        from frugaltext.models.nvdm import mean_npmi, npmi_coherence, perplexity, top_words
        from frugaltext.models.topicbert import TopicBertForSequenceClassification

        s = self.settings
        set_seed(seed)
        self.label_names = data.label_names
        self.multi_label = data.multi_label
        path = resolve_encoder_path(s.model_name_or_path)
        self.tokenizer = AutoTokenizer.from_pretrained(path)

        # (1) vocabulary and NVDM pretraining
        pretrained = s.pretrain(data, seed)
        self.vocab, nvdm = pretrained.vocab, pretrained.model
        bow_train, bow_valid = pretrained.bow_train, pretrained.bow_valid
        has_valid = bow_valid is not None
        notes: dict[str, Any] = {
            "n_partitions": s.n_partitions,
            "partition_length": s.max_length // s.n_partitions,
            "alpha": s.alpha,
            "n_topics": s.n_topics,
            "bow_vocab_size": len(self.vocab),
            "nvdm_pretrain_duration_s": pretrained.duration_s,
            "nvdm_pretrain_epochs_run": len(pretrained.history),
            "nvdm_perplexity": pretrained.perplexity,
        }
        pretrained_topics = top_words(nvdm, self.vocab, n=min(s.n_top_words, len(self.vocab)))
        notes["npmi"] = mean_npmi(npmi_coherence(pretrained_topics, bow_train, self.vocab))
        logger.info("NVDM pretrained in %.1f s (%d epochs), perplexity %s", pretrained.duration_s,
                    len(pretrained.history), pretrained.perplexity)

        # (2) model from the pretrained encoder and NVDM
        self.model = TopicBertForSequenceClassification.from_encoder_and_nvdm(
            path, nvdm, self.vocab,
            alpha=s.alpha, n_partitions=s.n_partitions, max_seq_length=s.max_length,
            topic_lr_factor=s.topic_lr_factor, classifier_dropout=s.dropout,
            projection_activation=s.projection_activation, encoder_layers=s.encoder_layers,
            num_labels=data.num_labels, id2label=data.id2label, label2id=data.label2id,
            problem_type=data.problem_type,
        )

        # (3) joint fine-tuning, one example per partition
        train_ds = self._partitions(data.train.texts, bow_train, data.train.labels)
        eval_ds = (self._partitions(data.validation.texts, bow_valid, data.validation.labels) if has_valid
                   else None)
        notes["mean_partitions_per_document"] = len(train_ds) / max(1, len(data.train))
        workdir = (Path(output_dir) / "checkpoints" if output_dir
                   else Path(tempfile.mkdtemp(prefix="frugaltext-tb-")))
        args = make_training_args(
            workdir, seed=seed, epochs=s.epochs, batch_size=s.batch_size, eval_batch_size=s.eval_batch_size,
            learning_rate=s.learning_rate, weight_decay=s.weight_decay, warmup_ratio=s.warmup_ratio,
            evaluate_each_epoch=eval_ds is not None, select_best=s.select_best, show_progress=s.show_progress,
            max_grad_norm=s.max_grad_norm,
        )
        from frugaltext.data.collate import PadCollator

        pad_to = s.max_length // s.n_partitions if s.padding == "max_length" else None
        collator = PadCollator(self.tokenizer.pad_token_id, pad_to)
        compute_metrics = (self._compute_metrics(eval_ds, data.validation.labels) if eval_ds is not None
                           else None)
        trainer = train_with_trainer(self.model, train_ds, eval_ds, collator, args, meter,
                                     compute_metrics=compute_metrics,
                                     optimizers=(self._optimizer(self.model, args), None))
        self.model = trainer.model
        self.model.bow_vocabulary = self.vocab
        self.model.eval()
        if output_dir is None and is_main_process():
            shutil.rmtree(workdir, ignore_errors=True)

        # topic quality after joint fine-tuning
        self.topics = top_words(self.model.nvdm, self.vocab, n=min(s.n_top_words, len(self.vocab)))
        notes["npmi_finetuned"] = mean_npmi(npmi_coherence(self.topics, bow_train, self.vocab))
        notes["nvdm_perplexity_finetuned"] = (perplexity(self.model.nvdm, bow_valid, seed=seed)
                                              if pretrained.perplexity is not None else None)
        self.model.eval()
        self.notes = notes
        return self

    # ------------------------------------------------------------------------------------------------
    def _require_model(self) -> None:
        if self.model is None or self.tokenizer is None or self.vocab is None:
            raise ModelLoadError("topicbert: the model is not trained or loaded; call fit() or load() first")

    def predict_partition_logits(self, texts: Sequence[str], batch_size: int = 32):
        """Logits of every partition: ``(logits (n_rows, num_labels) float32, doc_index (n_rows,))``."""
        from frugaltext.models.topicbert import BowRows

        self._require_model()
        dataset = self._partitions(list(texts), self.vocab.transform(list(texts)))
        logits = batched_logits(self.model, dataset.rows, batch_size, self.tokenizer.pad_token_id,
                                extra={"bow": BowRows(dataset)})
        return logits, dataset.doc_index

    def predict_proba(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Probabilities ``(n_docs, num_labels)``: softmax (sigmoids for multi-label) of each partition,
        averaged over the document's partitions (authors' ``--avg_softmax``)."""
        from frugaltext.models.topicbert import combine_partitions

        texts = list(texts)
        if not texts:
            return np.zeros((0, len(self.label_names)), dtype=np.float32)
        logits, doc_index = self.predict_partition_logits(texts, batch_size)
        return combine_partitions(logits_to_proba(logits, self.multi_label), doc_index, len(texts))

    # ------------------------------------------------------------------------------------------------
    def _unused_at_inference(self) -> int:
        nvdm = self.model.nvdm
        return int(sum(p.numel() for m in (nvdm.decoder, nvdm.to_logvar) for p in m.parameters()))

    def n_params(self) -> int:
        """Parameters used at inference: encoder, NVDM encoder (up to mu), projection and classifier. The NVDM
        decoder and log-variance layer only serve the training loss (total in ``cost_notes``)."""
        self._require_model()
        return int(sum(p.numel() for p in self.model.parameters())) - self._unused_at_inference()

    def flops_per_document(self, texts: Sequence[str]) -> dict[str, float | None]:
        """Mean FLOPs per document: the model run on each of the document's partitions (encoder at x = N/p
        tokens, attention included, plus the NVDM encoder on the bag of words, head), summed.

        ``flops_train_step`` is the same for a training step (forward + backward, model in training mode, so
        the NVDM decoder and its samples are counted); the optimiser update is not counted. The NVDM's own
        share is reported in :meth:`cost_notes` (``flops_nvdm_per_document``).
        """
        from frugaltext.cost.flops import count_flops

        self._require_model()
        texts = list(texts)
        dataset = self._partitions(texts, self.vocab.transform(texts))
        pad_to = self.settings.max_length // self.settings.n_partitions
        forward = np.zeros(len(texts))
        train = np.zeros(len(texts))
        nvdm_part = np.zeros(len(texts))
        n_labels = len(self.label_names)
        try:
            for i in range(len(dataset)):
                ids = list(dataset.rows[i])
                if self.settings.padding == "max_length":
                    ids = ids + [self.tokenizer.pad_token_id] * (pad_to - len(ids))
                d = int(dataset.doc_index[i])
                bow = torch.from_numpy(dataset.bow_row(i)).unsqueeze(0)
                inputs = {"input_ids": torch.tensor([ids]),
                          "attention_mask": torch.ones(1, len(ids), dtype=torch.long), "bow": bow}
                self.model.eval()
                forward[d] += count_flops(self.model, inputs)
                nvdm_part[d] += count_flops(self.model.nvdm, {"bow": bow, "compute_loss": False})
                label = torch.zeros(1, n_labels) if self.multi_label else torch.zeros(1, dtype=torch.long)
                self.model.train()
                train[d] += count_flops(self.model, {**inputs, "labels": label}, train_step=True)
        finally:
            self.model.eval()
        self.notes["flops_nvdm_per_document"] = float(nvdm_part.mean()) if len(texts) else None
        return {"flops": float(forward.mean()), "flops_train_step": float(train.mean())}

    def cost_notes(self) -> dict[str, Any]:
        """n_partitions, NVDM held-out perplexity (after pretraining and after joint fine-tuning), mean NPMI
        of the topics' top words on the training texts, NVDM pretraining time (s), vocabulary size, total
        parameters, mean partitions per training document."""
        if self.model is None:
            return dict(self.notes)
        cfg = self.model.config.encoder
        notes = dict(self.notes)
        notes.update({"encoder": cfg.model_type, "num_hidden_layers": cfg.num_hidden_layers,
                      "hidden_size": cfg.hidden_size,
                      "n_params_total": int(sum(p.numel() for p in self.model.parameters()))})
        return notes

    # ------------------------------------------------------------------------------------------------
    def _save(self, directory: Path) -> None:
        self._require_model()
        if not is_main_process():
            return
        self.model.bow_vocabulary = self.vocab
        save_checkpoint(self.model, self.tokenizer, directory)
        atomic_write_text(directory / NOTES_FILE, json.dumps(self.notes, indent=2, default=str))
        if self.topics:
            lines = [f"topic {k + 1}: {' '.join(words)}" for k, words in enumerate(self.topics)]
            atomic_write_text(directory / "topics.txt", "\n".join(lines) + "\n")

    def _load(self, directory: Path) -> None:
        from frugaltext.models.topicbert import TopicBertForSequenceClassification

        self.model, self.tokenizer = load_checkpoint(
            directory, TopicBertForSequenceClassification, "topicbert",
            required=("config.json", "bow_vocabulary.json"),
        )
        self.vocab = self.model.bow_vocabulary
        notes_path = directory / NOTES_FILE
        self.notes = json.loads(notes_path.read_text(encoding="utf-8")) if notes_path.is_file() else {}
        topics_path = directory / "topics.txt"
        lines = topics_path.read_text(encoding="utf-8").splitlines() if topics_path.is_file() else []
        self.topics = [line.split(": ", 1)[1].split() for line in lines if ": " in line]
