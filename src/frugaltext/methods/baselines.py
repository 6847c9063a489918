"""The baselines of TopicBERT's Table 3 (Chaudhary et al. 2020, §3 "Baselines"): ``cnn``, ``bert-avg`` and
``bert-avg-dtr``.

``cnn``
    Kim (2014) CNN-rand ("For CNN, we follow the experimental setup of Kim (2014)", supplementary A.3): random
    300-d word embeddings, filters of widths 3, 4, 5 with 100 feature maps each, ReLU, max-over-time pooling,
    dropout 0.5, a dense softmax layer, mini-batches of 50. The network is the ``"cnn"`` student of
    :mod:`frugaltext.models.students` (shared with ``scratch-cnn``/``distill-cnn``, which use Mangalwedhekar's
    smaller sizes), trained on the hard labels (CE; BCE for multi-label) through the shared Trainer. Kim
    trains with Adadelta and a max-norm constraint of 3 on the output weights; we keep the students' Adam
    (1e-3) with StepLR(0.9) per epoch, best validation epoch, early stopping (patience 5), and no max-norm.
    Documents are cut to their first ``max_length`` = 512 words (the paper's BERT reads 512 tokens).
``bert-avg``
    "Logistic classifier over the vector D_B of a document obtained by averaging its contextualized word
    embeddings from BERT": the frozen encoder's last hidden states, averaged over the attended tokens ([CLS]
    and [SEP] included, as sentence-transformers' mean pooling), then scikit-learn ``LogisticRegression``;
    one binary logistic regression per label for multi-label tasks (one-vs-rest). Features are standardised
    (mean 0, variance 1 on the training split) before the solver; the paper does not say, and it puts the
    BERT and topic features of ``bert-avg-dtr`` on one scale.
``bert-avg-dtr``
    "Logistic classifier over concatenation(D_B, DTR) where DTR = h_TM from pre-trained NVDM, i.e., no joint
    fine-tuning": the same features concatenated with the posterior mean of an NVDM pretrained on the training
    split exactly as ``topicbert`` pretrains it (same vocabulary and NVDM settings and defaults).

The two feature baselines have no epochs: the whole fit (feature extraction, NVDM pretraining, solver) is
recorded as one epoch, and ``flops_train_step`` is None (no gradient step).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from frugaltext.errors import ConfigError, ModelLoadError
from frugaltext.fileio import atomic_write_text
from frugaltext.methods.base import Method, register
from frugaltext.methods.distill import StudentMethod, StudentSettings
from frugaltext.methods.topicbert import NVDMSettings
from frugaltext.models.encoders import check_settings_max_length, resolve_encoder_path
from frugaltext.settings import ValidatedSettings, setting

HEAD_FILE = "linear_head.json"
NOTES_FILE = "baseline_notes.json"


# ----------------------------------------------------------------------------------------------------
# cnn
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KimCNNSettings(StudentSettings):
    """``cnn``: the student settings (:class:`frugaltext.methods.distill.StudentSettings`) with Kim's (2014)
    CNN-rand sizes: embedding 300, 100 filters per width (3, 4, 5), dropout 0.5, batch 50, no vocabulary
    limit, 512 words per document."""

    method: ClassVar[str] = "cnn"
    embedding_dim: int = 300
    n_filters: int = 100
    filter_sizes: tuple[int, ...] = (3, 4, 5)
    dropout: float = 0.5
    batch_size: int = 50
    max_vocab_size: int | None = None
    max_length: int = 512


@register
class KimCNNMethod(StudentMethod):
    """Kim (2014) CNN-rand trained from scratch on the hard labels (TopicBERT's ``CNN`` baseline)."""

    name = "cnn"
    Settings = KimCNNSettings
    architecture = "cnn"
    control_name = "distill-cnn"


# ----------------------------------------------------------------------------------------------------
# logistic head
# ----------------------------------------------------------------------------------------------------
class LogisticHead:
    """Standardisation + logistic regression on dense features, stored as JSON (no pickle).

    Single-label: one multinomial ``LogisticRegression`` (lbfgs); probabilities are its softmax (binary tasks:
    the sigmoid pair). Multi-label: one binary ``LogisticRegression`` per label (one-vs-rest); a label that is
    always on (or off) in training gets a constant probability of 1 (or 0).

    Parameters
    ----------
    C : float
        Inverse regularisation strength of scikit-learn's ``LogisticRegression``.
    max_iter : int
        Solver iterations.
    """

    def __init__(self, C: float = 1.0, max_iter: int = 2000) -> None:
        self.C = C
        self.max_iter = max_iter
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self.coef_: np.ndarray | None = None  # (n_outputs, n_features)
        self.intercept_: np.ndarray | None = None  # (n_outputs,)
        self.columns_: list[int] = []  # label column of each output row of coef_
        self.constant_: list[float | None] = []  # multi-label: fixed probability of a constant label
        self.multi_label = False
        self.num_labels = 0

    def fit(self, features: np.ndarray, labels: np.ndarray, num_labels: int, multi_label: bool,
            seed: int = 0) -> LogisticHead:
        """Fit on ``features`` (n_docs, n_features) and ``labels``: ids (n_docs,) or 0/1 (n_docs, num_labels).

        Raises
        ------
        ConfigError
            If a single-label training split has fewer than two classes.
        """
        from sklearn.linear_model import LogisticRegression

        x = np.asarray(features, dtype=np.float64)
        self.mean_ = x.mean(axis=0)
        scale = x.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        z = (x - self.mean_) / self.scale_
        self.multi_label, self.num_labels = bool(multi_label), int(num_labels)
        if multi_label:
            y = np.asarray(labels)
            coefs, intercepts, self.constant_ = [], [], []
            for j in range(num_labels):
                column = y[:, j].astype(int)
                if column.min() == column.max():
                    coefs.append(np.zeros(z.shape[1]))
                    intercepts.append(0.0)
                    self.constant_.append(float(column[0]))
                    continue
                model = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=seed).fit(z, column)
                coefs.append(model.coef_[0])
                intercepts.append(float(model.intercept_[0]))
                self.constant_.append(None)
            self.coef_, self.intercept_ = np.stack(coefs), np.asarray(intercepts)
            self.columns_ = list(range(num_labels))
        else:
            y = np.asarray(labels).astype(int)
            if np.unique(y).size < 2:
                raise ConfigError("logistic regression needs at least 2 classes in the training split, got "
                                  f"{np.unique(y).tolist()}")
            model = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=seed).fit(z, y)
            self.coef_, self.intercept_ = model.coef_, model.intercept_
            self.columns_ = [int(c) for c in model.classes_]
        return self

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Probabilities ``(n_docs, num_labels)`` float32 (softmax, or per-label sigmoids for multi-label)."""
        z = (np.asarray(features, dtype=np.float64) - self.mean_) / self.scale_
        scores = z @ self.coef_.T + self.intercept_
        out = np.zeros((z.shape[0], self.num_labels))
        if self.multi_label:
            out[:] = 1.0 / (1.0 + np.exp(-scores))
            for j, value in enumerate(self.constant_):
                if value is not None:
                    out[:, j] = value
        elif self.coef_.shape[0] == 1:  # binary: sklearn keeps one row, for the second class
            p = 1.0 / (1.0 + np.exp(-scores[:, 0]))
            out[:, self.columns_[0]], out[:, self.columns_[1]] = 1.0 - p, p
        else:
            scores -= scores.max(axis=1, keepdims=True)
            e = np.exp(scores)
            out[:, self.columns_] = e / e.sum(axis=1, keepdims=True)
        return out.astype(np.float32)

    @property
    def n_params(self) -> int:
        """Coefficients + intercepts."""
        return int(self.coef_.size + self.intercept_.size)

    def flops(self) -> float:
        """FLOPs of one document: standardisation (2 per feature) and the dot products (2 per coefficient)."""
        return float(2 * self.coef_.shape[1] + 2 * self.coef_.size)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able parameters."""
        return {"format": "frugaltext-logistic-head", "C": self.C, "max_iter": self.max_iter,
                "multi_label": self.multi_label, "num_labels": self.num_labels, "columns": self.columns_,
                "constant": self.constant_, "mean": self.mean_.tolist(), "scale": self.scale_.tolist(),
                "coef": self.coef_.tolist(), "intercept": self.intercept_.tolist()}

    @classmethod
    def from_dict(cls, payload: dict[str, Any], where: str) -> LogisticHead:
        """Rebuild from :meth:`to_dict`.

        Raises
        ------
        ModelLoadError
            If the payload is not a logistic head.
        """
        if payload.get("format") != "frugaltext-logistic-head":
            raise ModelLoadError(f"{where}: not a frugaltext logistic head")
        self = cls(C=payload["C"], max_iter=payload["max_iter"])
        self.multi_label, self.num_labels = bool(payload["multi_label"]), int(payload["num_labels"])
        self.columns_, self.constant_ = list(payload["columns"]), list(payload["constant"])
        self.mean_, self.scale_ = np.asarray(payload["mean"]), np.asarray(payload["scale"])
        self.coef_, self.intercept_ = np.asarray(payload["coef"]), np.asarray(payload["intercept"])
        return self


# ----------------------------------------------------------------------------------------------------
# bert-avg, bert-avg-dtr
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BertAvgSettings(ValidatedSettings):
    """Settings of ``bert-avg``.

    Attributes
    ----------
    model_name_or_path : str or None
        Local encoder checkpoint; None = the packaged all-MiniLM-L6-v2.
    max_length : int
        Tokens per document, special tokens included (as ``bert``).
    batch_size : int
        Documents per encoder batch when extracting features.
    C, max_iter : logistic regression (scikit-learn).
    """

    method: ClassVar[str] = "bert-avg"

    model_name_or_path: str | None = None
    max_length: int = setting(128, ge=2)
    batch_size: int = setting(32, ge=1)
    C: float = setting(1.0, gt=0)
    max_iter: int = setting(2000, ge=1)


@dataclass(frozen=True)
class BertAvgDtrSettings(BertAvgSettings, NVDMSettings):
    """Settings of ``bert-avg-dtr``: those of ``bert-avg`` plus the NVDM's (:class:`NVDMSettings`, with
    ``topicbert``'s defaults)."""

    method: ClassVar[str] = "bert-avg-dtr"


@torch.no_grad()
def mean_token_embeddings(encoder: torch.nn.Module, token_ids: Sequence[Sequence[int]], batch_size: int = 32,
                          pad_token_id: int = 0) -> np.ndarray:
    """Mask-averaged last hidden states of a frozen encoder: D_B of TopicBERT's BERT-Avg baseline.

    Parameters
    ----------
    encoder : transformers encoder (``AutoModel``), in eval mode
    token_ids : sequence of n_docs token-id lists (special tokens included)
    batch_size : int
        Documents per forward pass, grouped by similar length.
    pad_token_id : int

    Returns
    -------
    ndarray of shape (n_docs, hidden_size), float32
    """
    from frugaltext.data.collate import PadCollator, length_sorted_batches

    encoder.eval()
    collator = PadCollator(pad_token_id)
    device = next(encoder.parameters()).device
    out = np.zeros((len(token_ids), encoder.config.hidden_size), dtype=np.float32)
    for index in length_sorted_batches([len(t) for t in token_ids], batch_size):
        batch = collator([{"input_ids": list(token_ids[i])} for i in index])
        mask = batch["attention_mask"].to(device)
        hidden = encoder(input_ids=batch["input_ids"].to(device), attention_mask=mask).last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        out[index] = mean.float().cpu().numpy()
    return out


class _BertAvgMethod(Method):
    """Shared implementation of ``bert-avg`` and ``bert-avg-dtr``."""

    use_dtr = False
    Settings = BertAvgSettings

    def __init__(
        self, settings: BertAvgSettings | BertAvgDtrSettings | None = None, **overrides: Any
    ) -> None:
        super().__init__(settings, **overrides)
        self.encoder = None
        self.tokenizer = None
        self.head: LogisticHead | None = None
        self.nvdm = None
        self.vocab = None
        self.notes: dict[str, Any] = {}

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        from frugaltext.data.collate import encode_texts

        return encode_texts(self.tokenizer, texts, self.settings.max_length)

    def _features(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        feats = mean_token_embeddings(self.encoder, self._encode(texts), self.settings.batch_size,
                                      self.tokenizer.pad_token_id)
        if self.use_dtr:
            feats = np.concatenate([feats, self._dtr(texts)], axis=1)
        return feats

    @torch.no_grad()
    def _dtr(self, texts: Sequence[str]) -> np.ndarray:
        from frugaltext.models.nvdm import to_bow_tensor

        self.nvdm.eval()
        bow = self.vocab.transform(list(texts))
        out = []
        for start in range(0, bow.shape[0], 512):
            out.append(self.nvdm(to_bow_tensor(bow[start:start + 512]), compute_loss=False).h_tm.numpy())
        if not out:
            return np.zeros((0, self.nvdm.config.n_topics), np.float32)
        return np.concatenate(out).astype(np.float32)

    def fit(self, data, meter, seed: int = 0, output_dir: Path | None = None) -> _BertAvgMethod:
        """Extract features of the training split (and pretrain the NVDM for ``-dtr``), fit the logistic
        regression; the whole fit is recorded as one epoch."""
        from transformers import AutoModel, AutoTokenizer, set_seed

        s = self.settings
        set_seed(seed)
        self.label_names, self.multi_label = data.label_names, data.multi_label
        start = time.perf_counter()
        check_settings_max_length(s, f"method {self.name!r}")
        path = resolve_encoder_path(s.model_name_or_path)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.encoder = AutoModel.from_pretrained(path).eval()
        if self.use_dtr:
            pretrained = s.pretrain(data, seed)
            self.vocab, self.nvdm = pretrained.vocab, pretrained.model
            self.notes.update({
                "nvdm_pretrain_duration_s": pretrained.duration_s,
                "nvdm_pretrain_epochs_run": len(pretrained.history),
                "nvdm_perplexity": pretrained.perplexity,
                "bow_vocab_size": len(self.vocab),
                "n_topics": s.n_topics,
            })
        features = self._features(data.train.texts)
        self.head = LogisticHead(C=s.C, max_iter=s.max_iter).fit(features, data.train.labels, data.num_labels,
                                                                 data.multi_label, seed=seed)
        self.notes["n_features"] = int(features.shape[1])
        meter.record_epoch(time.perf_counter() - start)
        return self

    def _require(self) -> None:
        if self.head is None or self.encoder is None:
            raise ModelLoadError(f"{self.name}: the model is not trained or loaded; call fit() or load() "
                                 "first")

    def predict_proba(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Probabilities ``(n_docs, num_labels)`` of the logistic regression on the document features."""
        self._require()
        texts = list(texts)
        if not texts:
            return np.zeros((0, len(self.label_names)), dtype=np.float32)
        return self.head.predict_proba(self._features(texts))

    def n_params(self) -> int:
        """Encoder + logistic regression (+ the NVDM encoder up to mu for ``-dtr``)."""
        from frugaltext.cost.flops import n_parameters

        self._require()
        total = n_parameters(self.encoder) + self.head.n_params
        if self.use_dtr:
            total += n_parameters(self.nvdm.encoder) + n_parameters(self.nvdm.to_mu)
        return int(total)

    def flops_per_document(self, texts: Sequence[str]) -> dict[str, float | None]:
        """Mean FLOPs of the encoder on each document alone (attention included), plus the NVDM encoder for
        ``-dtr`` and the logistic regression. No training-step FLOPs: no gradient step is taken."""
        from frugaltext.cost.flops import count_flops
        from frugaltext.models.nvdm import to_bow_tensor

        self._require()
        texts = list(texts)
        counts = []
        bow = self.vocab.transform(texts) if self.use_dtr else None
        for i, ids in enumerate(self._encode(texts)):
            inputs = {"input_ids": torch.tensor([ids]),
                      "attention_mask": torch.ones(1, len(ids), dtype=torch.long)}
            flops = count_flops(self.encoder, inputs) + self.head.flops()
            if self.use_dtr:
                flops += count_flops(self.nvdm, {"bow": to_bow_tensor(bow[i]), "compute_loss": False})
            counts.append(flops)
        return {"flops": float(np.mean(counts)), "flops_train_step": None}

    def run_details(self) -> dict[str, Any]:
        """Feature size; for ``-dtr`` also NVDM pretraining time (s), held-out perplexity, vocabulary size."""
        return dict(self.notes)

    def _save(self, directory: Path) -> None:
        from frugaltext.models.nvdm import BOW_VOCABULARY_FILE
        from frugaltext.training.hf import is_main_process

        self._require()
        if not is_main_process():
            return
        self.encoder.save_pretrained(directory / "encoder")
        self.tokenizer.save_pretrained(directory / "encoder")
        atomic_write_text(directory / HEAD_FILE, json.dumps(self.head.to_dict()))
        atomic_write_text(directory / NOTES_FILE, json.dumps(self.notes, indent=2, default=str))
        if self.use_dtr:
            self.nvdm.save_pretrained(directory / "nvdm")
            self.vocab.save(directory / "nvdm" / BOW_VOCABULARY_FILE)

    def _load(self, directory: Path) -> None:
        from transformers import AutoModel, AutoTokenizer

        for name in ("encoder/config.json", HEAD_FILE) + (("nvdm/config.json",) if self.use_dtr else ()):
            if not (directory / name).is_file():
                raise ModelLoadError(f"{directory}: {name} is missing; this is not a saved {self.name} model")
        self.tokenizer = AutoTokenizer.from_pretrained(directory / "encoder")
        self.encoder = AutoModel.from_pretrained(directory / "encoder").eval()
        head_path = directory / HEAD_FILE
        self.head = LogisticHead.from_dict(json.loads(head_path.read_text(encoding="utf-8")), str(head_path))
        notes = directory / NOTES_FILE
        self.notes = json.loads(notes.read_text(encoding="utf-8")) if notes.is_file() else {}
        if self.use_dtr:
            from frugaltext.models.nvdm import NVDM, BowVocabulary

            self.nvdm = NVDM.from_pretrained(directory / "nvdm").eval()
            self.vocab = BowVocabulary.load(directory / "nvdm")


@register
class BertAvgMethod(_BertAvgMethod):
    """BERT-Avg: logistic regression on the mask-averaged token embeddings of a frozen encoder."""

    name = "bert-avg"


@register
class BertAvgDtrMethod(_BertAvgMethod):
    """BERT-Avg + DTR: logistic regression on [averaged token embeddings, h_TM of a pretrained NVDM]."""

    name = "bert-avg-dtr"
    Settings = BertAvgDtrSettings
    use_dtr = True
