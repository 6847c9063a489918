"""Teacher logits computed once, batched, and cached on disk for distillation.

The key of a cache entry is a SHA-256 of (1) a fingerprint of the teacher: the bytes of every file of a saved
model directory, or the tensors of an in-memory model's ``state_dict`` plus its method name, settings and
labels; (2) the exact texts, in order; (3) ``max_length`` (for Hugging Face checkpoints, whose truncation we
choose). A changed teacher, text, order or length therefore never reuses stale logits. An entry is one
safetensors file ``teacher-logits-<key>.safetensors`` holding the float32 matrix ``logits`` (n_texts,
num_labels), with the teacher's label names and the time it took to compute in its metadata; it is written
through a temporary file and ``os.replace``, so concurrent runs (or torchrun ranks) never read half a file.
The Mangalwedhekar paper keeps BERT's logits in a pickle (§4.3, "Running Simulations"); we avoid pickle.

A teacher is any frugaltext :class:`~frugaltext.methods.base.Method` (its :meth:`predict_logits`), a directory
written by ``Method.save`` (loaded with :func:`~frugaltext.methods.base.load_model`), or a Hugging Face
sequence-classification checkpoint directory (``AutoModelForSequenceClassification`` + ``AutoTokenizer``).
A directory is loaded only when its logits are not cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from frugaltext.errors import ConfigError, ModelLoadError

#: Metadata file of a saved frugaltext model (written by ``frugaltext.methods.base.Method.save``).
METHOD_FILE = "frugaltext_method.json"

__all__ = [
    "HFTeacher",
    "METHOD_FILE",
    "input_embeddings",
    "teacher_columns",
    "teacher_mask_token",
    "tokenizer_source",
    "TeacherLogits",
    "compute_teacher_logits",
    "default_cache_dir",
    "load_teacher",
    "teacher_fingerprint",
    "teacher_label_info",
    "teacher_logits",
]

logger = logging.getLogger("frugaltext.training.teacher_cache")
_FORMAT_VERSION = "1"


def default_cache_dir() -> Path:
    """``$FRUGALTEXT_CACHE_DIR/teacher_logits``, else ``~/.cache/frugaltext/teacher_logits``."""
    root = os.environ.get("FRUGALTEXT_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "frugaltext"
    return base / "teacher_logits"


# ==================================================================================================
# Hugging Face checkpoints as teachers
# ==================================================================================================
class HFTeacher:
    """A Hugging Face sequence-classification checkpoint used as a teacher.

    Parameters
    ----------
    path : str or Path
        Local checkpoint directory with ``config.json``, weights and a tokenizer.
    max_length : int, default 128
        Tokens per document, [CLS] and [SEP] included (head truncation).

    Attributes
    ----------
    model, tokenizer : the loaded model (eval mode) and tokenizer
    label_names : tuple of str
        From ``config.id2label``.
    multi_label : bool
        From ``config.problem_type``.

    Raises
    ------
    ModelLoadError
        If the directory cannot be loaded as a sequence classifier with a tokenizer.
    """

    def __init__(self, path: str | Path, max_length: int = 128) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        import frugaltext.models.students  # noqa: F401  (registers our own model types with the Auto classes)

        self.path = Path(path)
        self.max_length = int(max_length)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path)
            self.model = AutoModelForSequenceClassification.from_pretrained(self.path)
        except (OSError, ValueError, KeyError) as err:
            raise ModelLoadError(f"{self.path}: cannot load a Hugging Face sequence classifier and tokenizer "
                                 f"({err}); pass a frugaltext model directory or a checkpoint folder with "
                                 "config.json, weights and tokenizer files") from err
        self.model.eval()
        config = self.model.config
        self.label_names = tuple(config.id2label[i] for i in range(config.num_labels))
        self.multi_label = config.problem_type == "multi_label_classification"

    def predict_logits(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Logits of shape (n_texts, num_labels), float32, batched by similar length."""
        from frugaltext.data.collate import encode_texts
        from frugaltext.training.hf import batched_logits

        ids = encode_texts(self.tokenizer, texts, self.max_length)
        return batched_logits(self.model, ids, batch_size, self.tokenizer.pad_token_id or 0)


def load_teacher(path: str | Path, max_length: int = 128, loader: Callable[[Path], Any] | None = None) -> Any:
    """Load a teacher from a directory: a frugaltext model (``frugaltext_method.json``, read by ``loader``,
    usually :func:`frugaltext.methods.load_model`, passed in so that this layer does not import the methods)
    or an HF checkpoint.

    Raises
    ------
    ConfigError
        If ``path`` is not a directory, or holds a frugaltext model and no ``loader`` is given.
    ModelLoadError
        If it cannot be loaded.
    """
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"teacher {str(path)!r} is not a directory; pass a model directory written by "
                          "`frugaltext train` / Method.save(), or a Hugging Face sequence-classification "
                          "checkpoint")
    if (path / METHOD_FILE).is_file():
        if loader is None:
            raise ConfigError(f"teacher {str(path)!r} is a saved frugaltext model; pass "
                              "loader=frugaltext.methods.load_model to load it")
        return loader(path)
    if (path / "config.json").is_file():
        return HFTeacher(path, max_length)
    raise ModelLoadError(f"{path}: neither {METHOD_FILE} nor config.json found; it is not a saved model")


def teacher_label_info(teacher: Any) -> tuple[tuple[str, ...], bool | None]:
    """The teacher's label names (in logit-column order) and whether it is multi-label, read without loading
    weights when ``teacher`` is a directory. ``(), None`` when unknown.

    Raises
    ------
    ModelLoadError
        If a directory's metadata file is not valid JSON.
    """
    if isinstance(teacher, (str, Path)):
        path = Path(teacher)
        if (path / METHOD_FILE).is_file():
            meta_path = path / METHOD_FILE
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as err:
                raise ModelLoadError(f"{meta_path}, line {err.lineno}: invalid JSON ({err.msg})") from err
            return tuple(meta.get("label_names", ())), bool(meta.get("multi_label", False))
        config_path = path / "config.json"
        if config_path.is_file():
            try:
                config = json.loads(config_path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as err:
                raise ModelLoadError(f"{config_path}, line {err.lineno}: invalid JSON ({err.msg})") from err
            id2label = config.get("id2label") or {}
            names = tuple(id2label[k] for k in sorted(id2label, key=int))
            return names, config.get("problem_type") == "multi_label_classification"
        return (), None
    names = tuple(getattr(teacher, "label_names", ()) or ())
    multi = getattr(teacher, "multi_label", None)
    return names, (None if multi is None else bool(multi))


# ==================================================================================================
# Fingerprints
# ==================================================================================================
def _hash_directory(path: Path, digest: Any) -> None:
    if not path.is_dir():
        raise ConfigError(f"teacher {str(path)!r} is not a directory; pass a model directory written by "
                          "`frugaltext train` / Method.save(), or a Hugging Face sequence-classification "
                          "checkpoint")
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise ModelLoadError(f"{path}: the teacher directory has no files")
    for file in files:
        digest.update(str(file.relative_to(path)).encode("utf-8") + b"\0")
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")


def _hash_state_dict(module: Any, digest: Any) -> None:
    import torch

    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode() + b"\0")
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())


def teacher_fingerprint(teacher: Any) -> str:
    """SHA-256 hex digest identifying the teacher's weights and files.

    * A directory: every file's relative path and bytes (hidden files skipped).
    * An :class:`HFTeacher`: its checkpoint directory plus ``max_length``.
    * A Method with a torch ``model`` attribute: the method name, settings, labels, every tensor of
      ``model.state_dict()`` and the vocabulary of its ``tokenizer`` / ``vocabulary`` attribute, if any.
    * Any other Method: the files it writes with ``save`` to a temporary directory.

    Raises
    ------
    ConfigError
        If a path is not a directory.
    ModelLoadError
        If a directory is empty.
    """
    import dataclasses

    import torch

    digest = hashlib.sha256(f"frugaltext-teacher-v{_FORMAT_VERSION}".encode())
    if isinstance(teacher, (str, Path)):
        _hash_directory(Path(teacher), digest)
        return digest.hexdigest()
    if isinstance(teacher, HFTeacher):
        _hash_directory(teacher.path, digest)
        digest.update(f"max_length={teacher.max_length}".encode())
        return digest.hexdigest()
    settings = getattr(teacher, "settings", None)
    meta = {
        "class": f"{type(teacher).__module__}.{type(teacher).__qualname__}",
        "name": getattr(teacher, "name", ""),
        "settings": dataclasses.asdict(settings) if dataclasses.is_dataclass(settings) else repr(settings),
        "label_names": list(getattr(teacher, "label_names", ()) or ()),
        "multi_label": bool(getattr(teacher, "multi_label", False)),
    }
    digest.update(json.dumps(meta, sort_keys=True, default=str).encode("utf-8"))
    model = getattr(teacher, "model", None)
    if isinstance(model, torch.nn.Module):
        _hash_state_dict(model, digest)
        for attribute in ("tokenizer", "vocabulary"):
            vocab = getattr(teacher, attribute, None)
            if hasattr(vocab, "get_vocab"):  # a transformers tokenizer
                digest.update(json.dumps(sorted(vocab.get_vocab().items())).encode("utf-8"))
            elif hasattr(vocab, "to_dict"):  # frugaltext's WordVocabulary
                digest.update(json.dumps(vocab.to_dict(), sort_keys=True).encode("utf-8"))
        return digest.hexdigest()
    with tempfile.TemporaryDirectory(prefix="frugaltext-teacher-") as tmp:
        teacher.save(tmp)
        _hash_directory(Path(tmp), digest)
    return digest.hexdigest()


def _texts_digest(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        encoded = text.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    return digest.hexdigest()


# ==================================================================================================
# The cache
# ==================================================================================================
@dataclass(frozen=True)
class TeacherLogits:
    """Teacher logits and how they were obtained.

    Attributes
    ----------
    logits : ndarray of shape (n_texts, num_labels), float32
    cached : bool
        True when read from the cache (the teacher was not run).
    duration_s : float
        Wall time of this call, in seconds (cache read, or teacher load + inference + write).
    compute_duration_s : float
        Wall time the teacher took when the entry was computed (equals ``duration_s`` on a miss), in seconds:
        the teacher's share of a student's training cost.
    label_names : tuple of str
        The teacher's labels, in column order (empty when unknown).
    key : str
        The cache key (SHA-256 hex).
    path : Path or None
        The cache file (None without a cache directory).
    """

    logits: np.ndarray
    cached: bool
    duration_s: float
    compute_duration_s: float
    label_names: tuple[str, ...]
    key: str
    path: Path | None


def _read_entry(path: Path, n_texts: int) -> tuple[np.ndarray, dict[str, str]] | None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="np") as handle:
            metadata = handle.metadata() or {}
            logits = handle.get_tensor("logits")
    except Exception as err:  # noqa: BLE001 - a corrupt entry is recomputed, never trusted
        logger.warning("teacher cache %s is unreadable (%s); recomputing", path, err)
        return None
    if logits.ndim != 2 or logits.shape[0] != n_texts:
        logger.warning("teacher cache %s has shape %s, expected %d rows; recomputing", path, logits.shape,
                       n_texts)
        return None
    return logits.astype(np.float32, copy=False), metadata


def _write_entry(path: Path, logits: np.ndarray, metadata: dict[str, str]) -> None:
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    save_file({"logits": np.ascontiguousarray(logits, dtype=np.float32)}, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def compute_teacher_logits(teacher: Any, texts: Sequence[str], cache_dir: str | Path | None,
                           batch_size: int = 32, max_length: int = 128,
                           loader: Callable[[Path], Any] | None = None) -> TeacherLogits:
    """Teacher logits for ``texts``, read from ``cache_dir`` when an entry with the same key exists, else
    computed in batches of ``batch_size`` and stored there.

    Parameters
    ----------
    teacher : Method, HFTeacher, or str / Path of a model directory
        A frugaltext Method (its ``predict_logits``; :meth:`Method.predict_logits` falls back to log
        probabilities), a directory written by ``Method.save``, or a Hugging Face sequence-classification
        checkpoint directory. A directory is loaded only on a cache miss.
    texts : sequence of str, length n_texts
    cache_dir : str or Path or None
        Where entries live; None disables caching (always computes, writes nothing).
    batch_size : int, default 32
        Teacher batch size (documents).
    max_length : int, default 128
        Truncation of Hugging Face checkpoints (a frugaltext Method uses its own settings); part of the key.
    loader : callable, optional
        Loads a saved frugaltext model directory (see :func:`load_teacher`).

    Returns
    -------
    TeacherLogits
        ``logits`` of shape (n_texts, num_labels), float32.

    Raises
    ------
    ConfigError
        If ``texts`` is empty, ``batch_size`` < 1, the teacher has no ``predict_logits``/``predict_proba`` or
        returns a matrix of the wrong shape or with non-finite values.
    ModelLoadError
        If a teacher directory cannot be loaded.
    """
    texts = list(texts)
    if not texts:
        raise ConfigError("teacher_logits: no texts given")
    if int(batch_size) < 1:
        raise ConfigError(f"teacher_logits: batch_size must be >= 1, got {batch_size}")
    started = time.perf_counter()
    fingerprint = teacher_fingerprint(teacher)
    key = hashlib.sha256(
        f"{fingerprint}|{_texts_digest(texts)}|n={len(texts)}|max_length={int(max_length)}".encode()
    ).hexdigest()
    path = Path(cache_dir) / f"teacher-logits-{key}.safetensors" if cache_dir is not None else None
    if path is not None and path.is_file():
        entry = _read_entry(path, len(texts))
        if entry is not None:
            logits, metadata = entry
            names = tuple(json.loads(metadata.get("label_names", "[]")))
            duration = time.perf_counter() - started
            compute = float(metadata.get("compute_duration_s", "nan"))
            logger.info("teacher logits for %d texts read from %s", len(texts), path)
            return TeacherLogits(logits, True, duration, compute, names, key, path)

    model = load_teacher(teacher, max_length, loader) if isinstance(teacher, (str, Path)) else teacher
    if hasattr(model, "predict_logits"):
        logits = model.predict_logits(texts, batch_size=int(batch_size))
    elif hasattr(model, "predict_proba"):
        from frugaltext.training.hf import proba_to_logits

        logits = proba_to_logits(model.predict_proba(texts, batch_size=int(batch_size)),
                                 bool(getattr(model, "multi_label", False)))
    else:
        raise ConfigError(f"teacher {type(model).__name__} has neither predict_logits nor predict_proba")
    logits = np.asarray(logits, dtype=np.float32)
    if logits.ndim != 2 or logits.shape[0] != len(texts):
        raise ConfigError(f"teacher returned logits of shape {logits.shape}, expected ({len(texts)}, "
                          "num_labels)")
    if not np.isfinite(logits).all():
        raise ConfigError("teacher returned non-finite logits (NaN or inf); check the teacher model")
    names, multi = teacher_label_info(model)
    duration = time.perf_counter() - started
    if path is not None:
        _write_entry(path, logits, {
            "format_version": _FORMAT_VERSION,
            "teacher_fingerprint": fingerprint,
            "n_texts": str(len(texts)),
            "max_length": str(int(max_length)),
            "label_names": json.dumps(list(names)),
            "multi_label": json.dumps(multi),
            "compute_duration_s": repr(duration),
        })
        logger.info("teacher logits for %d texts computed in %.1f s and cached at %s", len(texts), duration,
                    path)
    return TeacherLogits(logits, False, duration, duration, names, key, path)


def teacher_logits(teacher: Any, texts: Sequence[str], cache_dir: str | Path | None,
                   batch_size: int = 32, max_length: int = 128) -> np.ndarray:
    """Teacher logits of shape (n_texts, num_labels), float32, cached on disk (see
    :func:`compute_teacher_logits` for the arguments, the cache key and the errors)."""
    return compute_teacher_logits(teacher, texts, cache_dir, batch_size, max_length).logits


# --------------------------------------------------------------------------------------------------
# Teachers of the students (frugaltext.methods.distill)
# --------------------------------------------------------------------------------------------------
def teacher_columns(teacher_names: Sequence[str], teacher_multi: bool | None, label_names: Sequence[str],
                    multi_label: bool, where: str) -> list[int]:
    """Column order that maps the teacher's logits onto ``label_names``.

    Returns
    -------
    list of int, length num_labels
        ``teacher_logits[:, columns]`` follows ``label_names``.

    Raises
    ------
    ConfigError
        If the teacher is single-label for a multi-label task (or vice versa), or its labels differ.
    """
    if teacher_multi is not None and teacher_multi != multi_label:
        task = "multi-label" if multi_label else "single-label"
        kind = "multi" if teacher_multi else "single"
        raise ConfigError(f"{where}: the teacher is {kind}-label but the data is {task}; train the "
                          "teacher on the same data")
    names = list(teacher_names)
    if not names:
        return list(range(len(label_names)))
    if names == list(label_names):
        return list(range(len(names)))
    if sorted(names) != sorted(label_names):
        missing = sorted(set(label_names) - set(names))
        extra = sorted(set(names) - set(label_names))
        raise ConfigError(f"{where}: the teacher's labels differ from the data's (missing {missing[:10]}, "
                          f"extra {extra[:10]}); use a teacher trained on the same labels")
    return [names.index(n) for n in label_names]


def tokenizer_source(teacher: str | None, tokenizer_path: str | None) -> str:
    """Checkpoint whose WordPiece tokenizer (and embeddings) the student uses: the teacher's when it has
    one, else ``tokenizer_path`` (default: the packaged encoder)."""
    from frugaltext.models.encoders import resolve_encoder_path

    if teacher is not None and (Path(teacher) / "tokenizer_config.json").is_file():
        return str(teacher)
    return resolve_encoder_path(tokenizer_path)


def teacher_mask_token(teacher: str | None) -> str:
    """The teacher tokenizer's mask token (read from its ``tokenizer_config.json``), else ``[MASK]``."""
    if teacher is None:
        return "[MASK]"
    path = Path(teacher) / "tokenizer_config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except json.JSONDecodeError:
        config = {}
    token = config.get("mask_token")
    if isinstance(token, dict):
        token = token.get("content")
    return token if isinstance(token, str) and token else "[MASK]"


def input_embeddings(path: str) -> Any:
    """Input embedding matrix, a float tensor of shape (vocab_size, hidden), of a checkpoint.

    Raises
    ------
    ModelLoadError
        If the checkpoint has no loadable input embeddings.
    """
    from transformers import AutoModel, AutoModelForSequenceClassification

    import frugaltext.models.students  # noqa: F401

    errors = []
    for cls in (AutoModel, AutoModelForSequenceClassification):
        try:
            model = cls.from_pretrained(path)
            return model.get_input_embeddings().weight.detach().clone()
        except (OSError, ValueError, KeyError, AttributeError, NotImplementedError) as err:
            errors.append(f"{cls.__name__}: {err}")
    raise ModelLoadError(f"{path}: cannot read input embeddings ({'; '.join(errors)}); use "
                         "embeddings='random'")
