"""``topicbert``: TopicBERT (Chaudhary et al. 2020), an NVDM topic model fine-tuned jointly with a BERT
encoder, optionally reading each document in p shorter partitions for efficiency.

Recipe (paper, supplementary A.3): (1) build the bag-of-words vocabulary from the training texts and pretrain
the NVDM (early stopping on the validation perplexity when there is a validation split); (2) load the
pretrained encoder; (3) fine-tune both jointly with ``alpha * CE + (1 - alpha) * L_NVDM``. The NVDM
pretraining runs inside :meth:`TopicBertMethod.fit`, so its time and energy are part of the method's
training cost (``compare`` measures the whole fit); its own wall time is reported in :meth:`run_details`.
Partition batching (every partition a training example) and combination (mean of the partitions'
probabilities) follow the authors' code; see :mod:`frugaltext.models.topicbert`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from frugaltext.errors import DataFormatError, ModelLoadError
from frugaltext.fastpath import FastPathSettings
from frugaltext.fileio import atomic_write_text
from frugaltext.methods.base import Method, register
from frugaltext.methods.torch_method import TorchMethod, encoder_details
from frugaltext.models.encoders import check_settings_max_length, parse_encoder_layers, resolve_encoder_path
from frugaltext.settings import ValidatedSettings, setting
from frugaltext.training.hf import label_features, logits_to_proba

logger = logging.getLogger("frugaltext.methods.topicbert")

NOTES_FILE = "topicbert_notes.json"


@dataclass(frozen=True)
class NVDMSettings(ValidatedSettings):
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
        The epoch with the lowest per-document validation perplexity is kept (the authors'
        ``print_ppx_perdoc``); the notes' topics and NPMI rank words by ``c + 2 U_k`` (see docs/topics.md).
    """

    method: ClassVar[str] = "nvdm"

    n_topics: int = setting(100, ge=1)
    nvdm_hidden: int = setting(256, ge=1)
    nvdm_activation: str = setting("sigmoid", choices=("sigmoid", "tanh", "relu", "softplus"))
    nvdm_samples: int = setting(1, ge=1)
    bow_min_df: int = setting(5, ge=1)
    bow_max_df: float = setting(1.0, gt=0, le=1)
    bow_max_size: int = setting(5000, ge=1)
    nvdm_pretrain_epochs: int = setting(50, ge=1)
    nvdm_batch_size: int = setting(64, ge=1)
    nvdm_learning_rate: float = setting(1e-3, gt=0)
    nvdm_patience: int = setting(5, ge=1)

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
class TopicBertSettings(NVDMSettings, FastPathSettings):
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
        (AdamW, linear decay; the same defaults as ``bert``). ``batch_size`` counts partitions (the authors'
        code), so with p > 1 an epoch takes about m times more optimizer steps than BERT-N's at the same
        ``batch_size``, m being the mean partitions per training document (2.03 for p = 4 on Reuters-8 at
        N = 256), unless ``step_matched``.
    step_matched : bool
        Step-matched ablation (issue 15): give an epoch the optimizer steps of BERT-N at the same
        ``batch_size`` by making each optimizer step see the partitions of about ``batch_size`` documents.
        The effective batch is E = round(batch_size x m) partitions, realised with the Trainer's gradient
        accumulation as k = max(1, round(E / batch_size)) micro-batches of ceil(E / k) partitions
        (:func:`step_matched_batches`; e.g. batch 16: m = 2.03 gives 2 x 16, m = 3.77 gives 4 x 15, m = 1.28
        gives 1 x 20). Why this way: the number of epochs (so how often each document is seen, which fewer
        epochs would change), the data order, the learning-rate schedule's shape (warm-up and decay follow
        the steps) and, where m is near an integer, the micro-batch (so the memory and the speed of a
        forward/backward pass, hence T_epoch) stay those of TopicBERT-N/p; the optimizer steps per epoch
        become those of BERT-N (within rounding; ``optimizer_steps_per_epoch`` in the row's notes), so only
        the step count and the partitions per step change. The micro-batch stays within 3/4 and 3/2 of
        ``batch_size``. With p = 1 (m = 1) it changes nothing.
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
    precision, batching, inference_quantization : see :class:`frugaltext.fastpath.FastPathSettings`.
        Length-grouped batches (the default) need evaluation in dataset order, which
        :class:`frugaltext.training.hf.FrugalTrainer` keeps: before 2026-12-02 transformers grouped the
        evaluation batches too, TopicBERT's document-level validation macro-F1 combined permuted partitions
        (0.10-0.14 on Reuters-8, while the model did learn) and the best epoch was picked on noise.
    """

    method: ClassVar[str] = "topicbert"

    model_name_or_path: str | None = None
    max_length: int = setting(128, ge=8)
    n_partitions: int = setting(1, ge=1)
    padding: str = setting("dynamic", choices=("dynamic", "max_length"))
    alpha: float = setting(0.9, ge=0, le=1)
    epochs: float = setting(3.0, gt=0)
    batch_size: int = setting(16, ge=1)
    eval_batch_size: int = setting(64, ge=1)
    learning_rate: float = setting(5e-5, gt=0)
    topic_lr_factor: float = setting(1.0, gt=0)
    weight_decay: float = setting(0.01, ge=0)
    warmup_ratio: float = setting(0.1, ge=0, lt=1)
    max_grad_norm: float = setting(1.0, ge=0)
    step_matched: bool = False
    select_best: bool = True
    dropout: float | None = setting(None, ge=0, le=1)
    projection_activation: str | None = setting(None, choices=("gelu", "tanh", "relu"))
    n_top_words: int = setting(10, ge=1)
    encoder_layers: str | None = None
    show_progress: bool = True

    def _check(self) -> None:
        from frugaltext.models.topicbert import partition_length

        super()._check()
        partition_length(self.n_partitions, self.max_length)
        parse_encoder_layers(self.encoder_layers, "topicbert: encoder_layers")


def step_matched_batches(batch_size: int, mean_partitions: float) -> tuple[int, int]:
    """Micro-batch and gradient accumulation that give each optimizer step the partitions of about
    ``batch_size`` documents (``topicbert``'s ``step_matched``; issue 15's step-matched ablation).

    Parameters
    ----------
    batch_size : int >= 1
        BERT-N's batch size in documents (the ``batch_size`` setting).
    mean_partitions : float >= 1
        m, the mean partitions per training document.

    Returns
    -------
    (micro_batch, gradient_accumulation_steps) : (int, int)
        E = round(batch_size x m) partitions per step (halves rounded up), k = max(1, round(E / batch_size))
        accumulated micro-batches of ceil(E / k) partitions, so that micro_batch x k is E (or up to k - 1
        more) and the micro-batch stays between 3/4 and 3/2 of ``batch_size`` (exactly it when
        batch_size x m is a multiple of batch_size).

    Raises
    ------
    ValueError
        If ``batch_size`` < 1 or ``mean_partitions`` < 1 (or not finite).
    """
    if batch_size < 1 or not (math.isfinite(mean_partitions) and mean_partitions >= 1):
        raise ValueError(f"step_matched_batches: need batch_size >= 1 and mean_partitions >= 1, got "
                         f"{batch_size} and {mean_partitions}")
    effective = max(1, math.floor(batch_size * mean_partitions + 0.5))
    accumulation = max(1, math.floor(effective / batch_size + 0.5))
    return math.ceil(effective / accumulation), accumulation


@register
class TopicBertMethod(TorchMethod):
    """TopicBERT document classifier (Chaudhary et al. 2020, Findings of EMNLP).

    Single-label tasks use softmax + cross-entropy, multi-label tasks sigmoids + binary cross-entropy (a label
    is predicted when its probability, averaged over the partitions, is >= 0.5, as the authors' code).
    Training goes through the shared transformers ``Trainer`` (:mod:`frugaltext.training.hf`), so
    ``torchrun --nproc_per_node K`` scales it; the bag of words is an ordinary batch key (``bow``).
    """

    name = "topicbert"
    int8_keep_fp32 = ("nvdm",)  # the NVDM reads its Linear weights directly; it is small anyway
    Settings = TopicBertSettings
    checkpoint_files = ("config.json", "bow_vocabulary.json")
    details_file = NOTES_FILE
    flops_train_mode = True  # the NVDM decoder and its samples run in training mode only

    def __init__(self, settings: TopicBertSettings | None = None, **overrides: Any) -> None:
        super().__init__(settings, **overrides)
        self.vocab = None
        self.topics: list[list[str]] = []
        self._pretrained: Any = None

    @property
    def model_class(self) -> Any:  # type: ignore[override]
        """:class:`~frugaltext.models.topicbert.TopicBertForSequenceClassification`."""
        from frugaltext.models.topicbert import TopicBertForSequenceClassification

        return TopicBertForSequenceClassification

    @property
    def notes(self) -> dict[str, Any]:
        """Old name of :attr:`details`."""
        return self.details

    # ------------------------------------------------------------------------------------------------
    def _partitions(self, texts: Sequence[str], bow: Any, labels: np.ndarray | None = None):
        from frugaltext.models.topicbert import PartitionDataset, encode_partitions

        s = self.settings
        rows, doc_index = encode_partitions(self.tokenizer, texts, s.n_partitions, s.max_length)
        label_rows = label_features(labels, self.multi_label) if labels is not None else None
        return PartitionDataset(rows, doc_index, bow, label_rows)

    def _pad_length(self) -> int | None:
        s = self.settings
        return s.max_length // s.n_partitions if s.padding == "max_length" else None

    def _compute_metrics(self, dataset: Any, data: Any):
        from frugaltext.metrics import classification_metrics
        from frugaltext.models.topicbert import combine_partitions

        if dataset is None:
            return None
        doc_labels = data.validation.labels
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

    def _build(self, data: Any, seed: int) -> None:
        """(1) Vocabulary and NVDM pretraining, (2) the model from the pretrained encoder and NVDM."""
        from transformers import AutoTokenizer

        from frugaltext.models.nvdm import mean_npmi, npmi_coherence, top_words

        s = self.settings
        check_settings_max_length(s, f"method {self.name!r}")
        path = resolve_encoder_path(s.model_name_or_path)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        pretrained = self._pretrained = s.pretrain(data, seed)
        self.vocab, nvdm = pretrained.vocab, pretrained.model
        self.details.update({
            "n_partitions": s.n_partitions,
            "partition_length": s.max_length // s.n_partitions,
            "alpha": s.alpha,
            "n_topics": s.n_topics,
            "bow_vocab_size": len(self.vocab),
            "nvdm_pretrain_duration_s": pretrained.duration_s,
            "nvdm_pretrain_epochs_run": len(pretrained.history),
            "nvdm_perplexity": pretrained.perplexity,
        })
        pretrained_topics = top_words(nvdm, self.vocab, n=min(s.n_top_words, len(self.vocab)))
        self.details["npmi"] = mean_npmi(npmi_coherence(pretrained_topics, pretrained.bow_train, self.vocab))
        logger.info("NVDM pretrained in %.1f s (%d epochs), perplexity %s", pretrained.duration_s,
                    len(pretrained.history), pretrained.perplexity)
        self.model = self.model_class.from_encoder_and_nvdm(
            path, nvdm, self.vocab,
            alpha=s.alpha, n_partitions=s.n_partitions, max_seq_length=s.max_length,
            topic_lr_factor=s.topic_lr_factor, classifier_dropout=s.dropout,
            projection_activation=s.projection_activation, encoder_layers=s.encoder_layers,
            num_labels=data.num_labels, id2label=data.id2label, label2id=data.label2id,
            problem_type=data.problem_type,
        )

    def _train_dataset(self, data: Any, seed: int) -> Any:
        """(3) Joint fine-tuning, one example per partition."""
        dataset = self._partitions(data.train.texts, self._pretrained.bow_train, data.train.labels)
        self.details["mean_partitions_per_document"] = len(dataset) / max(1, len(data.train))
        return dataset

    def _eval_dataset(self, data: Any) -> Any:
        if self._pretrained.bow_valid is None:
            return None
        return self._partitions(data.validation.texts, self._pretrained.bow_valid, data.validation.labels)

    def _train(self, data: Any, train_ds: Any, eval_ds: Any, workdir: Path, seed: int, meter: Any) -> Any:
        """The joint fine-tuning; with ``step_matched``, in micro-batches with gradient accumulation
        (:func:`step_matched_batches`), recorded in the notes as ``step_matched_batch`` (micro-batch x
        accumulation) and ``step_matched_effective_batch``."""
        s = self.settings
        extra: dict[str, Any] = {}
        if s.step_matched:
            micro, accumulation = step_matched_batches(s.batch_size, len(train_ds) / max(1, len(data.train)))
            extra = {"batch_size": micro, "gradient_accumulation_steps": accumulation}
            self.details.update({"step_matched_batch": f"{micro} x {accumulation}",
                                 "step_matched_effective_batch": micro * accumulation})
            logger.info("step-matched: %d partitions per step (%d accumulated micro-batches of %d)",
                        micro * accumulation, accumulation, micro)
        self.details["step_matched"] = s.step_matched
        args = self._training_args(workdir, seed, evaluate_each_epoch=eval_ds is not None,
                                   max_grad_norm=s.max_grad_norm, **extra)
        return self._run_trainer(train_ds, eval_ds, args, meter, self._compute_metrics(eval_ds, data),
                                 optimizers=(self._optimizer(self.model, args), None))

    def _after_training(self, data: Any, seed: int, trainer: Any) -> None:
        """Topic quality after joint fine-tuning."""
        from frugaltext.models.nvdm import mean_npmi, npmi_coherence, perplexity, top_words

        s, pretrained = self.settings, self._pretrained
        self.model.bow_vocabulary = self.vocab
        self.topics = top_words(self.model.nvdm, self.vocab, n=min(s.n_top_words, len(self.vocab)))
        npmi = npmi_coherence(self.topics, pretrained.bow_train, self.vocab)
        self.details["npmi_finetuned"] = mean_npmi(npmi)
        self.details["nvdm_perplexity_finetuned"] = (
            perplexity(self.model.nvdm, pretrained.bow_valid, seed=seed)
            if pretrained.perplexity is not None else None)
        self.model.eval()
        self._pretrained = None

    # ------------------------------------------------------------------------------------------------
    def _require_model(self) -> None:
        if self.model is None or self.tokenizer is None or self.vocab is None:
            raise ModelLoadError("topicbert: the model is not trained or loaded; call fit() or load() first")

    def predict_partition_logits(self, texts: Sequence[str], batch_size: int = 32):
        """Logits of every partition: ``(logits (n_rows, num_labels) float32, doc_index (n_rows,))``."""
        from frugaltext.models.topicbert import BowRows

        self._require_model()
        dataset = self._partitions(list(texts), self.vocab.transform(list(texts)))
        return self._logits(dataset.rows, batch_size, extra={"bow": BowRows(dataset)}), dataset.doc_index

    def predict_proba(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Probabilities ``(n_docs, num_labels)``: softmax (sigmoids for multi-label) of each partition,
        averaged over the document's partitions (authors' ``--avg_softmax``)."""
        from frugaltext.models.topicbert import combine_partitions

        texts = list(texts)
        if not texts:
            return np.zeros((0, len(self.label_names)), dtype=np.float32)
        logits, doc_index = self.predict_partition_logits(texts, batch_size)
        return combine_partitions(logits_to_proba(logits, self.multi_label), doc_index, len(texts))

    #: document logits derived from the averaged probabilities (partitions have no single logit vector)
    predict_logits = Method.predict_logits

    # ------------------------------------------------------------------------------------------------
    def n_params(self) -> int:
        """Parameters used at inference: encoder, NVDM encoder (up to mu), projection and classifier. The NVDM
        decoder and log-variance layer only serve the training loss (total in ``run_details``)."""
        from frugaltext.cost.flops import n_parameters

        nvdm = self.model.nvdm if self.model is not None else None
        return super().n_params() - sum(n_parameters(m) for m in (nvdm.decoder, nvdm.to_logvar))

    def _flops_inputs(self, texts: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
        """Each partition (at x = N/p tokens with fixed padding) with its document's bag of words."""
        dataset = self._partitions(texts, self.vocab.transform(texts))
        pad_to = self._pad_length()
        for i in range(len(dataset)):
            ids = list(dataset.rows[i])
            if pad_to is not None:
                ids = ids + [self.tokenizer.pad_token_id] * (pad_to - len(ids))
            yield int(dataset.doc_index[i]), {
                "input_ids": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids), dtype=torch.long),
                "bow": torch.from_numpy(dataset.bow_row(i)).unsqueeze(0)}

    def flops_per_document(self, texts: Sequence[str]) -> dict[str, float | None]:
        """Mean FLOPs per document: the model run on each of the document's partitions (encoder at x = N/p
        tokens, attention included, plus the NVDM encoder on the bag of words, head), summed.

        ``flops_train_step`` is the same for a training step (forward + backward, model in training mode, so
        the NVDM decoder and its samples are counted); the optimiser update is not counted. The NVDM's own
        share is reported in :meth:`run_details` (``flops_nvdm_per_document``).
        """
        from frugaltext.cost.flops import count_flops

        counts = super().flops_per_document(texts)
        texts = list(texts)
        nvdm_part = np.zeros(len(texts))
        for doc, inputs in self._flops_inputs(texts):
            nvdm_part[doc] += count_flops(self.model.nvdm, {"bow": inputs["bow"], "compute_loss": False})
        self.details["flops_nvdm_per_document"] = float(nvdm_part.mean()) if len(texts) else None
        return counts

    def run_details(self) -> dict[str, Any]:
        """n_partitions, NVDM held-out perplexity (after pretraining and after joint fine-tuning), mean NPMI
        of the topics' top words on the training texts, NVDM pretraining time (s), vocabulary size, total
        parameters, mean partitions per training document."""
        from frugaltext.cost.flops import n_parameters

        details = {**self.details, **self.fast_path_details()}
        if self.model is not None:
            details.update({**encoder_details(self.model.config.encoder),
                            "n_params_total": n_parameters(self.model)})
        return details

    # ------------------------------------------------------------------------------------------------
    def _save_model(self, directory: Path) -> None:
        self.model.bow_vocabulary = self.vocab
        super()._save_model(directory)
        if self.topics:
            lines = [f"topic {k + 1}: {' '.join(words)}" for k, words in enumerate(self.topics)]
            atomic_write_text(directory / "topics.txt", "\n".join(lines) + "\n")

    def _load_model(self, directory: Path) -> None:
        super()._load_model(directory)
        self.vocab = self.model.bow_vocabulary
        topics_path = directory / "topics.txt"
        lines = topics_path.read_text(encoding="utf-8").splitlines() if topics_path.is_file() else []
        self.topics = [line.split(": ", 1)[1].split() for line in lines if ": " in line]
