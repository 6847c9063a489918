"""The common interface every method implements, and the registry that ``compare`` reads.

A method is trained by :meth:`Method.fit` on a :class:`~frugaltext.data.dataset.TextClassificationData`,
predicts probabilities for raw texts, reports its parameter count and FLOPs per document, and saves itself
into a directory that :func:`load_model` restores. ``compare`` treats all methods alike through this class.
"""

from __future__ import annotations

import dataclasses
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from frugaltext.errors import ConfigError, ModelLoadError
from frugaltext.fileio import atomic_write_text  # noqa: F401  (re-exported for old imports)
from frugaltext.settings import coerce_value, replace_settings
from frugaltext.training.teacher_cache import METHOD_FILE  # the saved-model metadata file

__all__ = [
    "METHOD_ALIASES", "METHOD_FILE", "Method", "atomic_write_text", "available_methods", "coerce_value",
    "get_method_class", "load_model", "probabilities_to_predictions", "read_method_meta", "register",
    "replace_settings", "resolve_method_name",
]

if TYPE_CHECKING:
    from frugaltext.cost.meter import CostMeter
    from frugaltext.data.dataset import TextClassificationData

#: Modules imported to fill the registry. Each module registers its classes with ``@register``.
BUILTIN_METHOD_MODULES = (
    "frugaltext.methods.tfidf",
    "frugaltext.methods.bert",
    "frugaltext.methods.topicbert",
    "frugaltext.methods.baselines",
    "frugaltext.methods.early_exit",
    "frugaltext.methods.distill",
    "frugaltext.methods.docbert_baselines",
    "frugaltext.methods.static",
)
_REGISTRY: dict[str, type[Method]] = {}
#: Old method names still accepted (old results rows, saved models, ``--methods``): old name -> new name.
METHOD_ALIASES: dict[str, str] = {
    f"student-{arch}": f"scratch-{arch}" for arch in ("bilstm", "bilstm-attn", "cnn", "lstm-reg")
}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: make ``cls`` available to ``compare``/``train`` under ``cls.name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ConfigError(f"method name {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def available_methods() -> list[str]:
    """Names of all registered methods (imports the built-in method modules first)."""
    _import_builtin_methods()
    return sorted(_REGISTRY)


def resolve_method_name(name: str) -> str:
    """The registered name of ``name``: itself, or the new name of an old alias (``student-cnn`` ->
    ``scratch-cnn``, see :data:`METHOD_ALIASES`)."""
    return METHOD_ALIASES.get(name, name)


def get_method_class(name: str) -> type[Method]:
    """Return the method class registered under ``name`` (or under the new name of an old alias).

    Raises
    ------
    ConfigError
        If no method has that name; the message lists the available ones.
    """
    name = resolve_method_name(name)
    _import_builtin_methods(name)
    if name not in _REGISTRY:
        raise ConfigError(f"unknown method {name!r}; available methods: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


#: Built-in methods whose module does not import torch: looking them up imports only that module, so that
#: loading a tf-idf model and predicting never imports torch or transformers (seconds of start-up).
_LIGHT_METHOD_MODULES: dict[str, str] = {
    "tfidf-lr": "frugaltext.methods.tfidf",
    "tfidf-svm": "frugaltext.methods.tfidf",
}


def _import_builtin_methods(name: str | None = None) -> None:
    """Fill the registry: with ``name`` of a light method (:data:`_LIGHT_METHOD_MODULES`) already or then
    registered, import only its module; otherwise import every built-in method module."""
    import importlib

    if name is not None and name in _REGISTRY:
        return
    if name in _LIGHT_METHOD_MODULES:
        importlib.import_module(_LIGHT_METHOD_MODULES[name])
        if name in _REGISTRY:
            return
    for module in BUILTIN_METHOD_MODULES:
        importlib.import_module(module)


class Method(ABC):
    """A trainable document classifier with a cost profile.

    Subclasses set ``name`` and ``Settings`` (a frozen dataclass of hyper-parameters, with defaults, usually a
    :class:`frugaltext.settings.ValidatedSettings`) and implement :meth:`fit`, :meth:`predict_proba`,
    :meth:`_save`, :meth:`_load`, :meth:`n_params` and :meth:`flops_per_document`. Torch methods get all of
    these from :class:`frugaltext.methods.torch_method.TorchMethod`.

    Parameters
    ----------
    settings : Settings, optional
        Hyper-parameters; defaults when omitted.
    **overrides
        Field values that replace those of ``settings`` (unknown names raise :class:`ConfigError`).

    Attributes
    ----------
    label_names : tuple of str
        Set by ``fit`` (or ``load``) from the training split.
    multi_label : bool
        Set by ``fit`` (or ``load``).
    """

    name: ClassVar[str] = ""
    Settings: ClassVar[type] = object
    #: whether :meth:`save` writes a model that ``compare`` must find (and verify) before it skips a run as
    #: done; every built-in method does. A method without a saved model sets False and is re-run only when
    #: its results row is missing or its settings changed.
    saves_model: ClassVar[bool] = True

    def __init__(self, settings: Any = None, **overrides: Any) -> None:
        settings = settings if settings is not None else self.Settings()
        if overrides:
            settings = replace_settings(settings, overrides, where=f"method {self.name!r}")
        self.settings = settings
        self.label_names: tuple[str, ...] = ()
        self.multi_label: bool = False

    # ---- training -------------------------------------------------------------------------------
    @abstractmethod
    def fit(self, data: TextClassificationData, meter: CostMeter, seed: int = 0,
            output_dir: Path | None = None) -> Method:
        """Train on ``data.train`` (model selection on ``data.validation``); return ``self``.

        Implementations call ``meter.record_epoch(duration_s)`` once per epoch (a single call for methods
        without epochs) and set ``label_names`` and ``multi_label``. ``output_dir``, when given, may hold
        checkpoints so that an interrupted fit can resume.
        """

    # ---- inference ------------------------------------------------------------------------------
    @abstractmethod
    def predict_proba(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Class probabilities, shape ``(n_docs, num_labels)`` float32.

        Softmax over labels for single-label tasks, independent sigmoids for multi-label tasks.
        """

    def predict_logits(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Scores whose softmax (single-label) or sigmoid (multi-label) are the class probabilities, shape
        ``(n_docs, num_labels)`` float32; distillation teachers use them.

        This default derives them from :meth:`predict_proba` (probabilities clipped to [1e-7, 1 - 1e-7]):
        ``log p`` for single-label tasks, which equals the true logits up to a per-document constant (softmax
        is invariant to it, so KL distillation is unchanged, but MSE on logits is not: methods with real
        logits override this, as ``bert`` does); ``log p - log(1 - p)`` (the exact inverse of the sigmoid)
        for multi-label tasks.
        """
        from frugaltext.training.hf import proba_to_logits

        return proba_to_logits(self.predict_proba(texts, batch_size), self.multi_label)

    def predict(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Predicted label ids, shape ``(n_docs,)`` int64; or a 0/1 matrix ``(n_docs, num_labels)``
        for multi-label tasks (probability >= 0.5, as in DocBERT)."""
        return probabilities_to_predictions(self.predict_proba(texts, batch_size), self.multi_label)

    # ---- cost -----------------------------------------------------------------------------------
    @abstractmethod
    def n_params(self) -> int:
        """Number of parameters used at inference (for tf-idf models: the coefficients)."""

    @abstractmethod
    def flops_per_document(self, texts: Sequence[str]) -> dict[str, float | None]:
        """Mean FLOPs per document over ``texts`` for one forward pass (``"flops"``) and one training step
        (``"flops_train_step"``, forward + backward; ``None`` if not applicable).

        Counts must include attention (see ``frugaltext.cost.flops``)."""

    def run_details(self) -> dict[str, Any]:
        """Method-specific details of the run for the results row: model shape, costs not in the FLOPs
        (e.g. teacher-logit time), calibration, mean exit layer, topic quality..."""
        return {}

    def cost_notes(self) -> dict[str, Any]:
        """Old name of :meth:`run_details` (kept for callers such as ``compare``)."""
        return self.run_details()

    # ---- persistence ----------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the model, ``frugaltext_method.json`` (method name, settings, labels) and, last,
        ``frugaltext_manifest.json`` (every file's path, size and SHA-256; :mod:`frugaltext.manifest`) to
        ``directory``.

        A manifest already in ``directory`` is removed first, so a save cut short leaves no manifest and
        ``compare`` does not take the folder for a finished model. Under ``torchrun`` only global rank 0
        writes (the other processes return ``directory`` untouched).

        Returns
        -------
        Path
            ``directory``.
        """
        from frugaltext.manifest import MANIFEST_FILE, write_manifest

        directory = Path(directory)
        if int(os.environ.get("RANK", "0")) != 0:  # as training.hf.is_main_process, without importing torch
            return directory
        directory.mkdir(parents=True, exist_ok=True)
        (directory / MANIFEST_FILE).unlink(missing_ok=True)
        self._save(directory)
        meta = {
            "method": self.name,
            "settings": dataclasses.asdict(self.settings) if dataclasses.is_dataclass(self.settings) else {},
            "label_names": list(self.label_names),
            "multi_label": self.multi_label,
        }
        atomic_write_text(directory / METHOD_FILE, json.dumps(meta, indent=2, default=str))
        write_manifest(directory)
        return directory

    @abstractmethod
    def _save(self, directory: Path) -> None:
        """Write the method's own files into ``directory``."""

    @classmethod
    def load(cls, directory: str | Path) -> Method:
        """Restore a model written by :meth:`save`.

        Raises
        ------
        ModelLoadError
            If ``directory`` has no ``frugaltext_method.json`` or it names another method.
        """
        directory = Path(directory)
        meta = read_method_meta(directory)
        if resolve_method_name(meta["method"]) != cls.name:
            raise ModelLoadError(f"{directory} holds a {meta['method']!r} model, not {cls.name!r}")
        known = (
            {f.name for f in dataclasses.fields(cls.Settings)}
            if dataclasses.is_dataclass(cls.Settings) else set()
        )
        settings = cls.Settings(**{k: v for k, v in meta["settings"].items() if k in known})
        self = cls(settings)
        self.label_names = tuple(meta["label_names"])
        self.multi_label = bool(meta["multi_label"])
        self._load(directory)
        return self

    @abstractmethod
    def _load(self, directory: Path) -> None:
        """Read the method's own files from ``directory`` (settings and labels are already set)."""


_DAMAGED = "the model folder is damaged or incomplete: train the model again or copy the folder again"


def read_method_meta(directory: Path) -> dict[str, Any]:
    """Read ``frugaltext_method.json`` from a saved model directory, with a clear error if absent.

    Raises
    ------
    ModelLoadError
        ``directory`` is missing or not a directory; the file is missing, unreadable, not UTF-8 JSON, or
        lacks the ``method``, ``settings``, ``label_names`` or ``multi_label`` entries.
    """
    directory = Path(directory)
    if not directory.is_dir():
        what = "is a file" if directory.exists() else "does not exist"
        raise ModelLoadError(
            f"{directory} {what}; --model must be a model directory (with {METHOD_FILE}) written by "
            "`frugaltext train` or Method.save()"
        )
    path = directory / METHOD_FILE
    if not path.is_file():
        raise ModelLoadError(
            f"{directory}: no {METHOD_FILE}; pass a directory written by `frugaltext train` or Method.save()"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ModelLoadError(f"{path}, line {err.lineno}: invalid JSON ({err.msg}); {_DAMAGED}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ModelLoadError(f"{path}: cannot read it ({err}); {_DAMAGED}") from None
    expected = {"method": str, "settings": dict, "label_names": list, "multi_label": bool}
    if not isinstance(meta, dict):
        raise ModelLoadError(f"{path}: expected a JSON object, got {type(meta).__name__}; {_DAMAGED}")
    for key, kind in expected.items():
        if not isinstance(meta.get(key), kind):
            raise ModelLoadError(
                f'{path}: field "{key}" is missing or not a {kind.__name__} '
                f"(got {meta.get(key)!r:.60}); {_DAMAGED}"
            )
    return meta


def load_model(directory: str | Path, quantization: str | None = None) -> Method:
    """Load any saved frugaltext model, dispatching on the method name stored beside it.

    Only the module of the stored method is imported when it does not need torch (tf-idf models load and
    predict without importing torch or transformers).

    Parameters
    ----------
    directory : path
        Written by ``frugaltext train`` / :meth:`Method.save`.
    quantization : {None, "none", "int8"}
        ``"int8"``: predict with dynamic int8 Linear layers (torch methods only; the files are unchanged, see
        :func:`frugaltext.fastpath.quantize_int8`). None keeps the saved ``inference_quantization``.

    Raises
    ------
    ModelLoadError
        Not a model directory, an invalid ``frugaltext_method.json``, a method this version does not know, or
        any failure while reading the model's files (truncated weights, invalid JSON, ...): the message names
        the folder and says to retrain or re-copy it.
    ConfigError
        If ``quantization`` is not none/int8, or int8 is asked of a method that is not a torch one.
    """
    from frugaltext.errors import FrugalTextError

    if quantization is not None and str(quantization).lower() not in ("none", "int8"):
        raise ConfigError(f"load_model: quantization must be none or int8, got {quantization!r}")
    meta = read_method_meta(Path(directory))
    try:
        cls = get_method_class(meta["method"])
    except ConfigError as err:
        raise ModelLoadError(
            f"{Path(directory) / METHOD_FILE}: {err}; the model was saved by another frugaltext version or "
            "with a plug-in method that is not imported"
        ) from None
    try:
        method = cls.load(directory)
    except FrugalTextError:
        raise
    except Exception as err:  # noqa: BLE001 - any failure reading the files means a damaged folder
        raise ModelLoadError(
            f"{directory}: cannot load the saved {meta['method']!r} model ({type(err).__name__}: "
            f"{str(err)[:300]}); {_DAMAGED}"
        ) from err
    if quantization is not None:
        if not hasattr(method, "quantize"):
            if str(quantization).lower() == "int8":
                raise ConfigError(f"{directory} holds a {method.name!r} model; int8 quantization applies to "
                                  "the torch methods only (bert, topicbert, early-exit, the students, cnn)")
        else:
            method.quantize(quantization)
    return method


def probabilities_to_predictions(proba: np.ndarray, multi_label: bool, threshold: float = 0.5) -> np.ndarray:
    """Turn ``(n_docs, num_labels)`` probabilities into label ids ``(n_docs,)`` or a 0/1 matrix."""
    if multi_label:
        return (proba >= threshold).astype(np.int64)
    return proba.argmax(axis=1).astype(np.int64)

