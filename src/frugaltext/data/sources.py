"""Dataset sources: embedded datasets, directories of split files, single files and saved ``DatasetDict``s.

:func:`_resolve_source` finds the split files of a source and reads each into a :class:`_Table` (rows as dicts
with their 1-based line) through :class:`frugaltext.data.formats.RecordStream`; field checks live in
:mod:`frugaltext.data.labels`, the validation carve in :mod:`frugaltext.data.splits`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import IO, Any

from frugaltext.data.formats import SUPPORTED_EXTENSIONS, RecordStream, missing_reason, split_extension
from frugaltext.errors import DataFormatError, DataNotFoundError

__all__ = ["SPLIT_ALIASES", "embedded_datasets"]

#: File stems (and ``DatasetDict`` keys) accepted for each split, in order of preference.
SPLIT_ALIASES: dict[str, tuple[str, ...]] = {
    "train": ("train",),
    "validation": ("validation", "valid", "dev", "val"),
    "test": ("test",),
}

_EMBEDDED: dict[str, dict[str, Any]] = {
    "r8": {
        "name": "r8",
        "description": (
            "Reuters-8 (R8): the 8 most frequent single-label categories of Reuters-21578 ModApte, "
            "Cachopo (2007) all-terms preprocessing (lower-cased, punctuation and digits removed); "
            "split of Yao et al. (2019, TextGCN)"
        ),
        "task": "single-label",
        "num_labels": 8,
        "label_names": ["acq", "crude", "earn", "grain", "interest", "money-fx", "ship", "trade"],
        "splits": {"train": 5485, "test": 2189},
        "source": (
            "yao8839836/text_gcn @ 96222365 (data/R8/train.txt, data/R8/test.txt); "
            "original: Reuters-21578, Distribution 1.0 (Lewis 1997)"
        ),
        "terms": (
            "Reuters-21578: free distribution for research purposes only (Reuters Ltd., Carnegie Group); "
            'acknowledge as "Reuters-21578, Distribution 1.0"'
        ),
        "citation": (
            "Lewis, D. D. (1997). Reuters-21578 text categorization test collection, Distribution 1.0. "
            "Cardoso-Cachopo, A. (2007). Improving Methods for Single-label Text Categorization. PhD thesis, "
            "IST Lisbon. Yao, L., Mao, C., Luo, Y. (2019). Graph Convolutional Networks for Text "
            "Classification. AAAI."
        ),
    },
}


def embedded_datasets() -> list[dict[str, Any]]:
    """Describe the datasets shipped inside the package (used by ``frugaltext datasets``).

    Returns
    -------
    list of dict
        One dict per dataset, sorted by name, with keys ``name`` (str, pass it to :func:`load_data`),
        ``description``, ``task`` (``"single-label"`` or ``"multi-label"``), ``num_labels`` (int),
        ``label_names`` (list of str), ``splits`` (dict split name -> number of documents, before any
        validation split is carved), ``source`` (repository, commit and original collection), ``terms`` (terms
        of use) and ``citation``. The figures are those of the shipped files; the tests check them.
    """
    return [
        {**meta, "label_names": list(meta["label_names"]), "splits": dict(meta["splits"])}
        for _, meta in sorted(_EMBEDDED.items())
    ]


@dataclass
class _Table:
    """Rows of one split as read from its file, before any field is checked."""

    display: str  # file name shown in messages
    kind: str  # "json", "csv", "tsv" or "arrow"
    columns: list[str] | None  # header (csv/tsv/arrow); None for JSON until present_columns() runs
    rows: list[tuple[int, dict[str, Any]]]  # (1-based line or row, record)
    id_prefix: str = ""  # used for ids when a row has no "id" field

    @property
    def where(self) -> str:
        """Word for a position in messages: ``"row"`` for saved datasets, ``"line"`` for files."""
        return "row" if self.kind == "arrow" else "line"

    def present_columns(self) -> list[str]:
        """Return the header, or for JSON the keys of all records in order of first appearance."""
        if self.columns is None:
            seen: dict[str, None] = {}
            for _, record in self.rows:
                if any(k not in seen for k in record):
                    seen.update(dict.fromkeys(record))
            self.columns = list(seen)
        return list(self.columns)



def _split_extension(filename: str) -> tuple[str, str] | None:
    """Split ``name.ext[.gz]`` into (stem, extension) when the extension is supported."""
    return split_extension(filename, SUPPORTED_EXTENSIONS)


def _resolve_source(source: str | os.PathLike[str]) -> tuple[str, dict[str, _Table], list[str]]:
    """Find the split files of ``source`` and read them; return (dataset name, tables by split, notes)."""
    notes: list[str] = []
    if isinstance(source, str) and source in _EMBEDDED:
        root = resources.files("frugaltext").joinpath("datasets", source)
        tables = {}
        for split in ("train", "validation", "test"):
            entry = root.joinpath(f"{split}.jsonl.gz")
            if entry.is_file():
                tables[split] = _read_file(lambda entry=entry: entry.open("rb"), f"{entry}", ".jsonl.gz")
        return source, tables, notes

    path = Path(source).expanduser()
    if path.is_symlink() and not path.exists():
        raise DataNotFoundError(f"{source}: {path} {missing_reason(path)}")
    if not path.exists():
        embedded = ", ".join(sorted(_EMBEDDED))
        raise DataNotFoundError(
            f"{source}: no such file or directory, and not an embedded dataset name (embedded: {embedded}); "
            "pass an existing path (a directory of train/validation/test files, a single file, or a saved "
            "datasets.DatasetDict) or one of the embedded names"
        )
    if path.is_file():
        parts = _split_extension(path.name)
        if parts is None:
            raise DataFormatError(
                f"{path}: unsupported file type; use one of {sorted(SUPPORTED_EXTENSIONS)} "
                "(JSON Lines, CSV or TSV, optionally gzip-compressed)"
            )
        stem, ext = parts
        notes.append(f"{path}: single file used as the training split")
        return stem, {"train": _read_file(lambda: path.open("rb"), str(path), ext)}, notes

    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        return path.resolve().name, _read_hf_disk(path, notes), notes

    candidates: dict[str, list[tuple[Path, str]]] = {}
    alias_to_split = {alias: split for split, aliases in SPLIT_ALIASES.items() for alias in aliases}
    for child in sorted(path.iterdir()):
        parts = _split_extension(child.name)
        if parts is None:
            continue
        stem, ext = parts
        split = alias_to_split.get(stem.lower())
        if split is not None and not child.is_file():
            raise DataNotFoundError(
                f"{child} {missing_reason(child)}; the {split} split of {path} must be a readable file"
            )
        if not child.is_file():
            continue
        if split is None:
            notes.append(f"{child}: ignored (not a train/validation/test file name)")
            continue
        candidates.setdefault(split, []).append((child, ext))
    if not candidates:
        present = sorted(p.name for p in path.iterdir())[:20]
        raise DataNotFoundError(
            f"{path}: no split files found (directory holds {present}); expected files named "
            f"{sorted(alias_to_split)} with one of the endings {sorted(SUPPORTED_EXTENSIONS)}, "
            "or a directory written by datasets.DatasetDict.save_to_disk"
        )
    tables = {}
    for split in ("train", "validation", "test"):
        found = candidates.get(split, [])
        if len(found) > 1:
            raise DataFormatError(
                f"{path}: several files for the {split} split: {[p.name for p, _ in found]}; "
                "keep exactly one (move or rename the others)"
            )
        if found:
            file, ext = found[0]
            tables[split] = _read_file(lambda file=file: file.open("rb"), str(file), ext)
    return path.resolve().name, tables, notes


def _read_file(open_binary: Callable[[], IO[bytes]], display: str, ext: str) -> _Table:
    """Read one split file (JSON Lines, CSV or TSV, gzip-compressed when ``ext`` ends in ``.gz``)."""
    kind = SUPPORTED_EXTENSIONS[ext]
    with RecordStream(open_binary, display, kind, compressed=ext.endswith(".gz")) as stream:
        rows = [(record.line, record.fields) for record in stream]
    return _Table(display=display, kind=kind, columns=stream.columns, rows=rows, id_prefix=Path(display).name)


def _read_hf_disk(path: Path, notes: list[str]) -> dict[str, _Table]:
    """Read a ``DatasetDict`` (or a single ``Dataset``) written by ``save_to_disk``."""
    try:
        import datasets
    except ImportError as err:  # pragma: no cover - datasets is a dependency
        raise DataFormatError(f"{path}: reading a saved DatasetDict needs the `datasets` package") from err
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as err:  # noqa: BLE001 - any failure here is a broken directory
        raise DataFormatError(
            f"{path}: cannot read it as a dataset saved with save_to_disk ({type(err).__name__}: {err}); "
            "save it again with DatasetDict.save_to_disk or export the splits to JSON Lines"
        ) from err
    if isinstance(loaded, datasets.Dataset):
        notes.append(f"{path}: single saved Dataset used as the training split")
        return {"train": _arrow_table(loaded, str(path), "train")}
    alias_to_split = {alias: split for split, aliases in SPLIT_ALIASES.items() for alias in aliases}
    tables: dict[str, _Table] = {}
    for key in loaded:
        split = alias_to_split.get(key.lower())
        if split is None:
            notes.append(f"{path}: split {key!r} ignored (not train/validation/test)")
            continue
        if split in tables:
            raise DataFormatError(
                f"{path}: several splits map to {split}: {tables[split].display} and {path / key}; "
                "keep exactly one"
            )
        tables[split] = _arrow_table(loaded[key], str(path / key), key)
    return tables


def _arrow_table(ds: Any, display: str, split_key: str) -> _Table:
    """Turn one saved ``datasets.Dataset`` into rows; ``ClassLabel`` ids become their names."""
    import datasets

    columns = list(ds.column_names)
    data = {}
    for col in columns:
        values = ds[col]
        if not isinstance(values, list):
            values = list(values)
        feat = ds.features.get(col)
        if isinstance(feat, datasets.ClassLabel):
            # -1 is datasets' "no label": it becomes a missing label
            values = [_class_name(feat, v) for v in values]
        else:
            inner = getattr(feat, "feature", None)
            if isinstance(feat, (datasets.Sequence, datasets.List)) and isinstance(
                inner, datasets.ClassLabel
            ):
                values = [[_class_name(inner, x) for x in v] if isinstance(v, list) else v for v in values]
        data[col] = values
    n = ds.num_rows
    rows = [(i + 1, {c: data[c][i] for c in columns}) for i in range(n)]
    return _Table(display=display, kind="arrow", columns=columns, rows=rows, id_prefix=split_key)


def _class_name(feature: Any, value: Any) -> Any:
    """Name of a ``ClassLabel`` id; None for datasets' "no label" id -1; other values unchanged."""
    if isinstance(value, int) and not isinstance(value, bool):
        return feature.int2str(value) if value >= 0 else None
    return value

