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

import csv
import gzip
import io
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frugaltext.errors import ConfigError, DataFormatError, DataNotFoundError
from frugaltext.experiment.config import resolve_config
from frugaltext.experiment.results import CompareResult
from frugaltext.experiment.runner import run_compare

logger = logging.getLogger("frugaltext.api")

__all__ = ["compare", "evaluate", "predict", "read_texts", "train"]


def compare(
    data: str | None = None,
    methods: Sequence[str] | str | None = None,
    seeds: int | None = None,
    output: str | os.PathLike[str] | None = None,
    preset: str | None = None,
    config: str | os.PathLike[str] | None = None,
    progress: bool = True,
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
    cfg = resolve_config(preset=preset, config_file=config, overrides=values)
    return run_compare(cfg, progress=progress)


def _load(
    data: str | os.PathLike[str],
    text_field: str,
    label_field: str | None,
    multi_label: bool | None,
    validation_fraction: float = 0.1,
    seed: int = 13,
) -> Any:
    from frugaltext.data import load_data

    return load_data(
        str(data),
        text_field=text_field,
        label_field=label_field,
        multi_label=multi_label,
        validation_fraction=validation_fraction,
        seed=seed,
    )


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
    **settings: Any,
) -> Any:
    """Run ``frugaltext train``: fit one method, save it to ``output`` with ``train_result.json``.

    ``train_result.json`` holds the method, seed, data sizes, validation scores and the training costs
    (:meth:`frugaltext.cost.meter.CostMeter.as_dict`). Under ``torchrun`` every process trains and only
    rank 0 writes files.

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
    **settings
        Fields of the method's ``Settings`` (strings are converted: ``epochs="3"``).

    Returns
    -------
    frugaltext.methods.base.Method
        The fitted method.

    Raises
    ------
    ConfigError
        Unknown method or setting.
    DataNotFoundError, DataFormatError
        From the data loader.
    """
    from frugaltext.cost.meter import CostMeter, CostSettings
    from frugaltext.fileio import atomic_write_text
    from frugaltext.methods.base import get_method_class, probabilities_to_predictions
    from frugaltext.metrics import classification_metrics

    cls = get_method_class(method)
    model = cls(**settings)
    dataset = _load(data, text_field, label_field, multi_label)
    if max_train_docs is not None:
        dataset = dataset.limit(n_train=max_train_docs, seed=13)
    meter = CostMeter(CostSettings(measure_energy=measure_energy))
    output = Path(output)
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
        }
        atomic_write_text(output / "train_result.json", json.dumps(result, indent=2, default=str) + "\n")
        import shutil

        shutil.rmtree(output / "work", ignore_errors=True)
    return model


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
        JSON file for the scores; default ``<model>/eval-<split>.json``.
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
        If ``split`` is not one of the three names or the data has no such split.
    """
    from frugaltext.fileio import atomic_write_text
    from frugaltext.methods.base import load_model, probabilities_to_predictions
    from frugaltext.metrics import classification_metrics

    if split not in ("train", "validation", "test"):
        raise ConfigError(f"split must be 'train', 'validation' or 'test', got {split!r}")
    method = load_model(model)
    dataset = _load(data, text_field, label_field, method.multi_label)
    single_file = Path(str(data)).is_file()
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
    output = Path(output) if output is not None else Path(model) / f"eval-{split_name}.json"
    result = {
        "model": str(model),
        "method": method.name,
        "data": str(data),
        "split": split_name,
        "n_docs": len(chosen),
        **scores,
        "output": str(output),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output, json.dumps(result, indent=2) + "\n")
    return result


def read_texts(path: str | os.PathLike[str], text_field: str = "text") -> tuple[list[str], list[str]]:
    """Read the documents to classify from a file.

    Formats by ending: ``.txt`` (one document per non-empty line), ``.jsonl`` / ``.json`` / ``.jsonl.gz``
    (JSON Lines with a ``text_field`` key), ``.csv`` / ``.tsv`` (with a ``text_field`` column, optionally
    gzipped). An ``id`` field/column, when present, is kept.

    Returns
    -------
    texts : list of str
    ids : list of str
        The ``id`` values, else ``"<line>"`` (1-based line of the file).

    Raises
    ------
    DataNotFoundError
        If the file does not exist.
    DataFormatError
        Unsupported ending, bad JSON, non-UTF-8 bytes, a missing text field, an empty text, or no documents.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(
            f"input file {path} does not exist; pass a .txt, .jsonl or .csv file of documents"
        )
    name = path.name.lower()
    stem = name[:-3] if name.endswith(".gz") else name
    kind = next(
        (
            k
            for e, k in (
                (".txt", "txt"),
                (".jsonl", "json"),
                (".json", "json"),
                (".csv", "csv"),
                (".tsv", "tsv"),
            )
            if stem.endswith(e)
        ),
        None,
    )
    if kind is None:
        raise DataFormatError(
            f"{path}: unsupported file type; use .txt (one document per line), .jsonl "
            "(with a 'text' field) or .csv/.tsv (with a 'text' column), optionally .gz"
        )
    raw = path.read_bytes()
    if name.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except OSError as err:
            raise DataFormatError(f"{path}: not a valid gzip file ({err})") from err
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataFormatError(
            f"{path}, line {line}: not UTF-8 (byte {err.start}); re-save the file as UTF-8"
        ) from err
    texts: list[str] = []
    ids: list[str] = []
    if kind == "txt":
        for lineno, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                texts.append(line.strip())
                ids.append(str(lineno))
    elif kind == "json":
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataFormatError(f"{path}, line {lineno}: invalid JSON ({err.msg})") from err
            if not isinstance(row, dict) or text_field not in row:
                raise DataFormatError(
                    f"{path}, line {lineno}: field {text_field!r} is missing; use --text-field "
                    "to pick another field"
                )
            _append(texts, ids, row[text_field], row.get("id"), lineno, path, text_field)
    else:
        reader = csv.DictReader(io.StringIO(text), delimiter="," if kind == "csv" else "\t")
        if reader.fieldnames is None or text_field not in reader.fieldnames:
            raise DataFormatError(
                f"{path}, line 1: column {text_field!r} is missing (columns: "
                f"{reader.fieldnames}); use --text-field to pick another column"
            )
        for row in reader:
            _append(texts, ids, row[text_field], row.get("id"), reader.line_num, path, text_field)
    if not texts:
        raise DataFormatError(f"{path}: no documents found; the file is empty")
    return texts, ids


def _append(
    texts: list[str], ids: list[str], value: Any, row_id: Any, lineno: int, path: Path, field: str
) -> None:
    if not isinstance(value, str) or not value.strip():
        raise DataFormatError(
            f"{path}, line {lineno}: field {field!r} is empty or not text; every document "
            "needs a non-empty text"
        )
    texts.append(value)
    ids.append(str(row_id) if row_id not in (None, "") else str(lineno))


def predict(
    model: str | os.PathLike[str],
    texts: Sequence[str] | None = None,
    input: str | os.PathLike[str] | None = None,  # noqa: A002 - mirrors the --input option
    output: str | os.PathLike[str] | None = None,
    text_field: str = "text",
    batch_size: int = 32,
    threshold: float = 0.5,
    quantization: str | None = None,
    backend: str = "torch",
) -> list[dict[str, Any]]:
    """Run ``frugaltext predict``: label documents with a saved model.

    Parameters
    ----------
    model : path
        Directory written by ``frugaltext train`` / ``Method.save``.
    texts : sequence of str, optional
        Documents; or give ``input``.
    input : path, optional
        File of documents (see :func:`read_texts`).
    output : path, optional
        ``.jsonl`` or ``.csv`` file to write the predictions to.
    text_field : str, default "text"
    batch_size : int, default 32
    threshold : float, default 0.5
        Multi-label only: a label is predicted when its probability is at least this.
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
        Neither or both of ``texts`` and ``input``; an output file that is not ``.jsonl`` or ``.csv``.
    ModelLoadError, DataNotFoundError, DataFormatError
    """
    from frugaltext.fileio import atomic_write_text
    from frugaltext.methods.base import load_model

    if (texts is None) == (input is None):
        raise ConfigError("predict: give either texts or an input file (not both)")
    if output is not None and Path(output).suffix.lower() not in (".jsonl", ".csv"):
        raise ConfigError(f"predict: output {output} must end in .jsonl or .csv")
    if texts is not None:
        if isinstance(texts, str):
            raise ConfigError("predict: texts must be a list of strings, not one string")
        texts, ids = list(texts), [str(i + 1) for i in range(len(texts))]
    else:
        texts, ids = read_texts(input, text_field)
    if backend not in ("torch", "onnx"):
        raise ConfigError(f"predict: backend must be torch or onnx, got {backend!r}")
    if backend == "onnx":
        from frugaltext.onnx_export import load_onnx_model

        method = load_onnx_model(model, quantization=quantization)
    else:
        method = load_model(model, quantization=quantization)
    proba = method.predict_proba(texts, batch_size=batch_size)
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
    if output is not None:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(output, _format_predictions(rows, output.suffix.lower(), method.multi_label))
    return rows


def _format_predictions(rows: Sequence[Mapping[str, Any]], suffix: str, multi_label: bool) -> str:
    if suffix == ".jsonl":
        return "".join(json.dumps(row) + "\n" for row in rows)
    buffer = io.StringIO()
    columns = ["id", "labels", "probabilities"] if multi_label else ["id", "label", "probability"]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        if multi_label:
            writer.writerow(
                {
                    "id": row["id"],
                    "labels": "|".join(row["labels"]),
                    "probabilities": "|".join(f"{p:.6g}" for p in row["probabilities"]),
                }
            )
        else:
            writer.writerow(row)
    return buffer.getvalue()
