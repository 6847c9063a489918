"""Python API mirroring the command line: :func:`compare`, :func:`train`, :func:`evaluate`, :func:`predict`.

Each function does what the command of the same name does and returns what it prints::

    import frugaltext

    result = frugaltext.compare(data="r8", methods=["tfidf-svm", "bert"], preset="quick",
                                output="runs/demo", **{"bert.epochs": 1})
    model = frugaltext.train(data="r8", method="tfidf-svm", output="runs/svm")
    scores = frugaltext.evaluate(model="runs/svm", data="r8", split="test")
    rows = frugaltext.predict(model="runs/svm", texts=["oil prices rose", "net profit up"])
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frugaltext.data.texts import Documents
from frugaltext.errors import ConfigError, DataFormatError
from frugaltext.experiment.config import resolve_config
from frugaltext.experiment.results import CompareResult
from frugaltext.experiment.runner import run_compare

logger = logging.getLogger("frugaltext.api")

__all__ = ["compare", "evaluate", "iter_predictions", "predict", "predict_file", "read_texts", "train"]


def compare(
    data: str | None = None,
    methods: Sequence[str] | str | None = None,
    seeds: int | None = None,
    output: str | os.PathLike[str] | None = None,
    preset: str | None = None,
    config: str | os.PathLike[str] | None = None,
    progress: bool = True,
    grid: Mapping[str, Sequence[Any] | str] | Sequence[str] | str | None = None,
    **overrides: Any,
) -> CompareResult:
    """Run ``frugaltext compare``: train and evaluate ``methods`` over ``seeds`` and write the reports.

    Parameters
    ----------
    data, methods, seeds, output : optional
        As ``--data``, ``--methods``, ``--seeds``, ``--output``; None keeps the preset's / config's value.
    preset : {"quick", "paper"}, optional
    config : path, optional
        YAML file (same layout as a preset).
    progress : bool, default True
    grid : mapping, str or list of str, optional
        As ``--grid``: ``{"bert.max_length": [64, 128, 256, 512]}`` or ``"bert.max_length=64,128,256,512"``
        runs ``bert`` once per value (variants ``bert@max_length-64``, ...) and writes
        ``grid_bert_max_length.json``/``.csv``/``.png``/``.svg``; replaces the config file's grid of the same
        method (see :func:`frugaltext.experiment.config.expand_grid`).
    **overrides
        Any other setting, keyed as on the command line without dashes: ``max_train_docs=500``,
        ``**{"bert.epochs": 1, "cost.latency_n_docs": 16}``.

    Returns
    -------
    frugaltext.experiment.results.CompareResult

    Raises
    ------
    ConfigError, DataNotFoundError, DataFormatError
        See :func:`frugaltext.experiment.config.resolve_config` and
        :func:`frugaltext.experiment.runner.run_compare`.
    """
    values: dict[str, Any] = dict(overrides)
    if data is not None:
        values["data"] = str(data)
    if methods is not None:
        values["methods"] = methods if isinstance(methods, str) else list(methods)
    if seeds is not None:
        values["seeds"] = seeds
    if output is not None:
        values["output"] = str(output)
    if grid is not None:
        values["grid"] = grid
    cfg = resolve_config(preset=preset, config_file=config, overrides=values)
    return run_compare(cfg, progress=progress)


def _load(
    data: str | os.PathLike[str],
    text_field: str,
    label_field: str | None,
    multi_label: bool | None,
    validation_fraction: float = 0.1,
    seed: int = 13,
    **options: Any,
) -> Any:
    from frugaltext.data import load_data

    return load_data(
        str(data),
        text_field=text_field,
        label_field=label_field,
        multi_label=multi_label,
        validation_fraction=validation_fraction,
        seed=seed,
        **options,
    )


def check_encoder_settings(method: Any) -> None:
    """Check a method's settings against its encoder before training (``max_length`` within the encoder's
    positions, see :func:`frugaltext.models.encoders.check_settings_max_length`); methods without an encoder
    are left alone and nothing heavy is imported for them."""
    settings = method.settings
    if hasattr(settings, "max_length") and hasattr(settings, "model_name_or_path"):
        from frugaltext.models.encoders import check_settings_max_length

        check_settings_max_length(settings, f"method {method.name!r}")


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def train(
    data: str | os.PathLike[str],
    method: str,
    output: str | os.PathLike[str],
    seed: int = 0,
    text_field: str = "text",
    label_field: str | None = None,
    multi_label: bool | None = None,
    max_train_docs: int | None = None,
    measure_energy: bool = True,
    checkpoint_steps: int = 500,
    **settings: Any,
) -> Any:
    """Run ``frugaltext train``: fit one method, save it to ``output`` with ``train_result.json``.

    ``train_result.json`` holds the method, seed, data sizes, validation scores, the training costs
    (:meth:`frugaltext.cost.meter.CostMeter.as_dict`) and, for neural methods, ``train_steps`` and
    ``resumed_from_step``. Under ``torchrun`` every process trains and only rank 0 writes files.

    Neural methods keep Trainer checkpoints in ``checkpoints`` under ``output/work`` while they train: run the
    same command again after a kill and training resumes from the newest complete checkpoint (``resuming from
    checkpoint-N`` in the log). The folder is deleted before the model is saved.

    Parameters
    ----------
    data : str or path
        Embedded name or path (see :func:`frugaltext.data.load_data`).
    method : str
        Registered method name (``tfidf-lr``, ``bert``, ...).
    output : path
        Directory of the saved model.
    seed : int, default 0
    text_field, label_field, multi_label
        As :func:`frugaltext.data.load_data`.
    max_train_docs : int, optional
        Train on at most this many documents (stratified subset, seed 13).
    measure_energy : bool, default True
        Run codecarbon during training.
    checkpoint_steps : int, default 500
        Neural methods save a checkpoint every this many optimisation steps (and each epoch); 0 = only at
        epoch ends. See :attr:`frugaltext.methods.torch_method.TorchMethod.checkpoint_steps`.
    **settings
        Fields of the method's ``Settings`` (strings are converted: ``epochs="3"``).

    Returns
    -------
    frugaltext.methods.base.Method
        The fitted method.

    Raises
    ------
    ConfigError
        Unknown method or setting, ``max_length`` beyond the encoder's positions, an ``output`` that is a
        file or lies under one (all checked before training).
    DataNotFoundError, DataFormatError
        From the data loader; also a training split with a single label.
    """
    from frugaltext.cost.meter import CostMeter, CostSettings
    from frugaltext.errors import FrugalTextError
    from frugaltext.fileio import check_output_dir, remove_if_no_files
    from frugaltext.methods.base import get_method_class

    cls = get_method_class(method)
    model = cls(**settings)
    if hasattr(model, "checkpoint_steps"):
        model.checkpoint_steps = int(checkpoint_steps)
    check_encoder_settings(model)
    output = check_output_dir(output)
    dataset = _load(data, text_field, label_field, multi_label, min_train_labels=2)
    if max_train_docs is not None:
        dataset = dataset.limit(n_train=max_train_docs, seed=13)
    meter = CostMeter(CostSettings(measure_energy=measure_energy))
    created = not output.exists()
    try:
        _fit_and_save(model, dataset, meter, output, method, seed, data)
    except FrugalTextError:
        # undo the folders this call created when nothing was written into them (checkpoints stay)
        remove_if_no_files(output / "work")
        if created:
            remove_if_no_files(output)
        raise
    return model


def _fit_and_save(model: Any, dataset: Any, meter: Any, output: Path, method: str, seed: int, data: Any
                  ) -> None:
    from frugaltext.fileio import atomic_write_text
    from frugaltext.methods.base import probabilities_to_predictions
    from frugaltext.metrics import classification_metrics

    logger.info(
        "train: %s on %s (%d train / %d validation documents), seed %d",
        method,
        dataset.name,
        len(dataset.train),
        len(dataset.validation),
        seed,
    )
    with meter.track("train"):
        model.fit(dataset, meter, seed=seed, output_dir=output / "work")
    _remove_work_dir(output / "work")
    model.save(output)
    if _is_main_process():
        proba = model.predict_proba(dataset.validation.texts)
        scores = classification_metrics(
            dataset.validation.labels,
            probabilities_to_predictions(proba, dataset.multi_label),
            dataset.label_names,
            dataset.multi_label,
        )
        result = {
            "method": method,
            "seed": seed,
            "data": str(data),
            "n_train": len(dataset.train),
            "n_validation": len(dataset.validation),
            "validation": scores,
            "costs": meter.as_dict(),
            "data_notes": list(dataset.notes),
            "train_steps": getattr(model, "train_steps", None),
            "resumed_from_step": getattr(model, "resumed_steps", None),
        }
        atomic_write_text(output / "train_result.json", json.dumps(result, indent=2, default=str) + "\n")


def _remove_work_dir(work: Path) -> None:
    """Delete the checkpoints of a finished training (rank 0, after every process has left the Trainer), so
    that the saved model folder and its manifest hold only the model."""
    import shutil
    import sys

    if "torch" in sys.modules:  # a process group exists only if torch was used
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.barrier()
    if _is_main_process():
        shutil.rmtree(work, ignore_errors=True)


def _to_model_ids(
    split: Any, data_names: Sequence[str], model_names: Sequence[str], multi_label: bool, where: str
) -> np.ndarray:
    """Re-index a split's labels (ids into ``data_names``) into the model's label ids."""
    index = {name: i for i, name in enumerate(model_names)}
    unknown = sorted(set(data_names) - set(index))
    if multi_label:
        used = [data_names[j] for j in np.flatnonzero(split.labels.sum(axis=0) > 0)]
    else:
        used = [data_names[j] for j in np.unique(split.labels)]
    unseen = [name for name in used if name in unknown]
    if unseen:
        raise DataFormatError(
            f"{where}: labels {unseen} were never seen by the model, which knows "
            f"{list(model_names)}; evaluate on data with the model's label set"
        )
    if multi_label:
        out = np.zeros((len(split), len(model_names)), dtype=np.int64)
        for j, name in enumerate(data_names):
            if name in index:
                out[:, index[name]] = split.labels[:, j].astype(np.int64)
        return out
    mapping = np.array([index.get(name, -1) for name in data_names], dtype=np.int64)
    return mapping[split.labels]


def evaluate(
    model: str | os.PathLike[str],
    data: str | os.PathLike[str],
    split: str = "test",
    output: str | os.PathLike[str] | None = None,
    text_field: str = "text",
    label_field: str | None = None,
    batch_size: int = 32,
) -> dict[str, Any]:
    """Run ``frugaltext evaluate``: score a saved model on one split of a dataset; write the scores as JSON.

    Parameters
    ----------
    model : path
        Directory written by ``frugaltext train`` / ``Method.save``.
    data : str or path
        Embedded name, directory or single file. A single file has only a training split; it is then
        evaluated whole, whatever ``split`` says (the loader's carved validation part is put back).
    split : {"test", "validation", "train"}, default "test"
    output : path, optional
        JSON file for the scores (parent directories are created); default
        ``<model>/eval-<split>.json``. Checked before the model loads.
    text_field, label_field
        As :func:`frugaltext.data.load_data`.
    batch_size : int, default 32

    Returns
    -------
    dict
        ``accuracy``, ``macro_f1``, ``micro_f1``, ``weighted_f1``, ``per_class``, plus ``split``,
        ``n_docs``, ``model``, ``data`` and ``output``.

    Raises
    ------
    ModelLoadError
        If ``model`` is not a saved frugaltext model.
    DataFormatError
        If the data's labels are not among the model's, or the task type differs.
    ConfigError
        If ``split`` is not one of the three names or the data has no such split, or ``output`` is a
        directory or lies under a file.
    """
    from frugaltext.fileio import atomic_open, check_output_file
    from frugaltext.methods.base import load_model, probabilities_to_predictions
    from frugaltext.metrics import classification_metrics

    if split not in ("train", "validation", "test"):
        raise ConfigError(f"split must be 'train', 'validation' or 'test', got {split!r}")
    if output is not None:
        output = check_output_file(output, "--output")
    method = load_model(model)
    single_file = Path(str(data)).is_file()
    dataset = _load(data, text_field, label_field, method.multi_label, carve_validation=not single_file)
    if single_file:
        from frugaltext.data.dataset import Split

        parts = [dataset.train, dataset.validation]
        labels = np.concatenate([p.labels for p in parts], axis=0)
        chosen = Split(
            name="all",
            texts=[t for p in parts for t in p.texts],
            labels=labels,
            ids=[i for p in parts for i in p.ids],
            source=str(data),
        )
        split_name = "all"
    else:
        chosen = getattr(dataset, split)
        split_name = split
        if chosen is None:
            raise ConfigError(
                f"{data} has no {split} split; use --split validation (or give a directory with "
                f"a {split} file)"
            )
    y_true = _to_model_ids(chosen, dataset.label_names, method.label_names, method.multi_label, str(data))
    proba = method.predict_proba(chosen.texts, batch_size=batch_size)
    y_pred = probabilities_to_predictions(proba, method.multi_label)
    scores = classification_metrics(y_true, y_pred, method.label_names, method.multi_label)
    if output is None:
        output = check_output_file(Path(model) / f"eval-{split_name}.json", "--output")
    result = {
        "model": str(model),
        "method": method.name,
        "data": str(data),
        "split": split_name,
        "n_docs": len(chosen),
        **scores,
        "output": str(output),
    }
    with atomic_open(output) as handle:
        handle.write(json.dumps(result, indent=2) + "\n")
    return result


def read_texts(path: str | os.PathLike[str], text_field: str = "text") -> Documents:
    """Read the documents to classify from a file: :func:`frugaltext.data.read_texts` (the one reader of
    train, evaluate, predict and compare; kept here for old imports)."""
    from frugaltext.data.texts import read_texts as _read

    return _read(path, text_field)


#: Documents per prediction chunk of :func:`iter_predictions` (memory stays constant in the input size).
PREDICT_CHUNK_SIZE = 1000


def _check_threshold(threshold: Any) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"predict: threshold must be a number in [0, 1], got {threshold!r}")
    return float(threshold)


def _check_positive(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"predict: {name} must be a positive integer, got {value!r}")
    return value


def _rows_of(method: Any, ids: Sequence[str], proba: np.ndarray, threshold: float) -> list[dict[str, Any]]:
    names = list(method.label_names)
    rows: list[dict[str, Any]] = []
    for doc_id, p in zip(ids, proba, strict=True):
        if method.multi_label:
            chosen = [j for j in np.argsort(-p) if p[j] >= threshold]
            rows.append(
                {
                    "id": doc_id,
                    "labels": [names[j] for j in chosen],
                    "probabilities": [round(float(p[j]), 6) for j in chosen],
                }
            )
        else:
            j = int(np.argmax(p))
            rows.append({"id": doc_id, "label": names[j], "probability": round(float(p[j]), 6)})
    return rows


def _document_chunks(
    texts: Sequence[str] | None, input: str | os.PathLike[str] | None, text_field: str, chunk_size: int  # noqa: A002
) -> Iterator[Documents]:
    if texts is not None:
        for start in range(0, len(texts), chunk_size):
            part = list(texts[start : start + chunk_size])
            yield Documents(part, [str(start + i + 1) for i in range(len(part))])
        return
    from frugaltext.data.texts import iter_texts

    yield from iter_texts(input, text_field, chunk_size=chunk_size)


def _check_predict_args(texts: Any, input: Any, output: Any) -> Path | None:  # noqa: A002
    from frugaltext.fileio import check_output_file

    if (texts is None) == (input is None):
        raise ConfigError("predict: give either texts or an input file (not both)")
    if texts is not None:
        if isinstance(texts, str):
            raise ConfigError("predict: texts must be a list of strings, not one string")
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise DataFormatError(
                    f"predict: text {i + 1} is empty or not a string ({text!r:.60}); every document needs a "
                    "non-empty text"
                )
    else:
        from frugaltext.data.formats import DOCUMENT_EXTENSIONS, _open_path

        _open_path(input, DOCUMENT_EXTENSIONS)  # a missing file or unknown ending fails before loading
    if output is None:
        return None
    return check_output_file(output, "--output", suffixes=(".jsonl", ".csv"))


def iter_predictions(
    model: str | os.PathLike[str] | Any,
    texts: Sequence[str] | None = None,
    input: str | os.PathLike[str] | None = None,  # noqa: A002 - mirrors the --input option
    text_field: str = "text",
    batch_size: int = 32,
    threshold: float = 0.5,
    chunk_size: int = PREDICT_CHUNK_SIZE,
    quantization: str | None = None,
    backend: str = "torch",
) -> Iterator[list[dict[str, Any]]]:
    """Stream predictions: read ``chunk_size`` documents, predict them, yield their rows, and so on.

    Memory stays constant in the size of ``input`` (one chunk of documents and probabilities at a time).

    Parameters
    ----------
    model : path or Method
        Directory written by ``frugaltext train`` / ``Method.save``, or a loaded method.
    texts, input, text_field, batch_size, threshold, quantization, backend
        As :func:`predict` (``quantization`` and ``backend`` apply when ``model`` is a path).
    chunk_size : int, default 1000
        Documents per chunk.

    Yields
    ------
    list of dict
        The rows of one chunk (see :func:`predict`), in input order.

    Raises
    ------
    ConfigError, ModelLoadError, DataNotFoundError, DataFormatError
        As :func:`predict`; a malformed row further down the input is raised when its chunk is read (the rows
        of earlier chunks have been yielded).
    """
    threshold = _check_threshold(threshold)
    _check_positive(batch_size, "batch_size")
    _check_positive(chunk_size, "chunk_size")
    _check_predict_args(texts, input, None)
    method = _load_predictor(model, quantization, backend) if isinstance(model, str | os.PathLike) else model
    for chunk in _document_chunks(texts, input, text_field, chunk_size):
        proba = method.predict_proba(chunk.texts, batch_size=batch_size)
        yield _rows_of(method, chunk.ids, np.asarray(proba), threshold)


class _PredictionWriter:
    """Write prediction rows as JSON Lines or CSV to an open text file, row by row."""

    def __init__(self, handle: Any, suffix: str, multi_label: bool) -> None:
        self.handle, self.multi_label, self.n_rows = handle, multi_label, 0
        self.writer = None
        if suffix == ".csv":
            columns = ["id", "labels", "probabilities"] if multi_label else ["id", "label", "probability"]
            self.writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
            self.writer.writeheader()

    def write(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if self.writer is None:
            self.handle.write("".join(json.dumps(row) + "\n" for row in rows))
        else:
            for row in rows:
                self.writer.writerow(_csv_row(row, self.multi_label))
        self.n_rows += len(rows)


def _csv_row(row: Mapping[str, Any], multi_label: bool) -> Mapping[str, Any]:
    if not multi_label:
        return row
    return {
        "id": row["id"],
        "labels": "|".join(row["labels"]),
        "probabilities": "|".join(f"{p:.6g}" for p in row["probabilities"]),
    }


def _progress_bar(enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=None, unit=" docs", desc="predict", disable=not enabled, file=sys.stderr, leave=False)


def predict(
    model: str | os.PathLike[str],
    texts: Sequence[str] | None = None,
    input: str | os.PathLike[str] | None = None,  # noqa: A002 - mirrors the --input option
    output: str | os.PathLike[str] | None = None,
    text_field: str = "text",
    batch_size: int = 32,
    threshold: float = 0.5,
    chunk_size: int = PREDICT_CHUNK_SIZE,
    progress: bool = False,
    return_rows: bool = True,
    quantization: str | None = None,
    backend: str = "torch",
) -> list[dict[str, Any]]:
    """Run ``frugaltext predict``: label documents with a saved model.

    The input is read, predicted and written in chunks of ``chunk_size`` documents (memory constant in the
    input size, with ``return_rows=False``); the output goes to a hidden temporary file renamed over
    ``output`` at the end, so a failure leaves no half-written file. Everything that can be checked (the
    output path, the input file, the threshold, the model) is checked before the first document is read.

    Parameters
    ----------
    model : path
        Directory written by ``frugaltext train`` / ``Method.save``.
    texts : sequence of str, optional
        Documents; or give ``input``.
    input : path, optional
        File of documents, read by :func:`frugaltext.data.iter_texts` (the same reader as training:
        ``.txt`` one document per line, ``.jsonl``/``.json`` with a ``text_field`` key, ``.csv``/``.tsv`` with
        a ``text_field`` column, each optionally ``.gz``; an ``id`` field is kept).
    output : path, optional
        ``.jsonl`` or ``.csv`` file to write the predictions to (parent directories are created).
    text_field : str, default "text"
    batch_size : int, default 32
    threshold : float in [0, 1], default 0.5
        Multi-label only: a label is predicted when its probability is at least this.
    chunk_size : int, default 1000
        Documents read and predicted at a time.
    progress : bool, default False
        Show a progress bar (documents done, rate) on stderr.
    return_rows : bool, default True
        Return the rows; False returns an empty list and keeps memory constant (see also
        :func:`predict_file`, which returns the count).
    quantization : {None, "none", "int8"}
        int8: dynamic int8 Linear layers (torch methods, :func:`frugaltext.methods.base.load_model`), or the
        int8 ONNX file with ``backend="onnx"``. None: the model's own setting (fp32 ONNX file).
    backend : {"torch", "onnx"}
        onnx: ONNX Runtime on ``<model>/model.onnx`` (``model.int8.onnx``), written by ``frugaltext export``
        (:func:`frugaltext.onnx_export.load_onnx_model`).

    Returns
    -------
    list of dict, one per document, in input order
        Single-label: ``{"id", "label", "probability"}`` (the arg-max label and its probability).
        Multi-label: ``{"id", "labels", "probabilities"}`` (the labels at or above ``threshold``, and their
        probabilities in the same order).

    Raises
    ------
    ConfigError
        Neither or both of ``texts`` and ``input``; an output that is not ``.jsonl``/``.csv``, is a
        directory or lies under a file; a threshold outside [0, 1]; a batch or chunk size below 1.
    ModelLoadError, DataNotFoundError, DataFormatError
        A damaged model folder; a missing, corrupt or malformed input (file and line named).
    """
    collected: list[dict[str, Any]] = []
    _predict_stream(model, texts, input, output, text_field, batch_size, threshold, chunk_size, progress,
                    collected if return_rows else None, quantization, backend)
    return collected


def predict_file(
    model: str | os.PathLike[str],
    input: str | os.PathLike[str],  # noqa: A002 - mirrors the --input option
    output: str | os.PathLike[str],
    text_field: str = "text",
    batch_size: int = 32,
    threshold: float = 0.5,
    chunk_size: int = PREDICT_CHUNK_SIZE,
    progress: bool = False,
    quantization: str | None = None,
    backend: str = "torch",
) -> int:
    """Label the documents of ``input`` and write them to ``output`` in chunks, in constant memory (what
    ``frugaltext predict`` runs); see :func:`predict` for the arguments and errors.

    Returns
    -------
    int
        Number of predictions written.
    """
    return _predict_stream(model, None, input, output, text_field, batch_size, threshold, chunk_size,
                           progress, None, quantization, backend)


def _load_predictor(model: Any, quantization: str | None, backend: str) -> Any:
    """The saved model at ``model``, loaded for prediction by the torch/sklearn ``backend`` (with optional
    int8 quantization) or by ONNX Runtime (``backend="onnx"``)."""
    if backend not in ("torch", "onnx"):
        raise ConfigError(f"predict: backend must be torch or onnx, got {backend!r}")
    if backend == "onnx":
        from frugaltext.onnx_export import load_onnx_model

        return load_onnx_model(model, quantization=quantization)
    from frugaltext.methods.base import load_model

    return load_model(model, quantization=quantization)


def _predict_stream(model: Any, texts: Any, input: Any, output: Any, text_field: str,  # noqa: A002
                    batch_size: int, threshold: float, chunk_size: int, progress: bool,
                    collected: list[dict[str, Any]] | None, quantization: str | None = None,
                    backend: str = "torch") -> int:
    """Check everything, load the model, then predict chunk by chunk into ``output`` (atomically) and/or
    ``collected``; return the number of documents."""
    from frugaltext.fileio import atomic_open

    threshold = _check_threshold(threshold)
    _check_positive(batch_size, "batch_size")
    _check_positive(chunk_size, "chunk_size")
    out_path = _check_predict_args(texts, input, output)
    method = _load_predictor(model, quantization, backend)
    chunks = iter_predictions(method, texts, input, text_field, batch_size, threshold, chunk_size)
    n_docs = 0
    with _progress_bar(progress) as bar, contextlib.ExitStack() as stack:
        writer = None
        if out_path is not None:
            handle = stack.enter_context(atomic_open(out_path))
            writer = _PredictionWriter(handle, out_path.suffix.lower(), method.multi_label)
        for rows in chunks:
            if writer is not None:
                writer.write(rows)
            if collected is not None:
                collected.extend(rows)
            n_docs += len(rows)
            bar.update(len(rows))
    return n_docs
