"""Readers that turn a dataset source into a checked :class:`~frugaltext.data.dataset.TextClassificationData`.

A source is one of

* the name of a dataset shipped inside the package (see :func:`embedded_datasets`; currently ``"r8"``);
* a directory holding ``train``, ``validation`` (or ``valid``, ``dev``, ``val``) and ``test`` files in
  JSON Lines (``.jsonl``, ``.json``, ``.jsonl.gz``, ``.json.gz``), CSV (``.csv``, ``.csv.gz``) or TSV
  (``.tsv``, ``.tsv.gz``);
* a single such file (used as the training split; no test split);
* a Hugging Face ``datasets.DatasetDict`` written by ``save_to_disk`` (a directory with
  ``dataset_dict.json``).

Every row is checked where it enters. A problem raises :class:`~frugaltext.errors.DataFormatError` or
:class:`~frugaltext.errors.DataNotFoundError` with the file, the 1-based line (the physical line of the row's
start; for CSV/TSV the header is line 1; for a saved ``datasets`` split, the 1-based row) and the field, and
says how to fix it. Nothing is skipped silently: ``on_invalid="drop"`` drops rows with an empty text or a
missing label and records the count per split in ``TextClassificationData.notes``.

The standard-library ``json``, ``csv`` and ``gzip`` modules are used instead of pandas so that every row keeps
its line number. Reuters-8 (5,485 + 2,189 documents) loads in about 0.1 s, IMDb (50,000) in about 1-2 s.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import os
import re
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from frugaltext.data.dataset import Split, TextClassificationData
from frugaltext.errors import ConfigError, DataFormatError, DataNotFoundError

logger = logging.getLogger("frugaltext.data")

__all__ = ["SPLIT_ALIASES", "SUPPORTED_EXTENSIONS", "embedded_datasets", "load_data"]

#: File stems (and ``DatasetDict`` keys) accepted for each split, in order of preference.
SPLIT_ALIASES: dict[str, tuple[str, ...]] = {
    "train": ("train",),
    "validation": ("validation", "valid", "dev", "val"),
    "test": ("test",),
}

#: File name endings that the readers understand, mapped to the format.
SUPPORTED_EXTENSIONS: dict[str, str] = {
    ".jsonl": "json",
    ".json": "json",
    ".jsonl.gz": "json",
    ".json.gz": "json",
    ".csv": "csv",
    ".csv.gz": "csv",
    ".tsv": "tsv",
    ".tsv.gz": "tsv",
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

_ON_INVALID = ("raise", "drop")
_INT_LABEL = re.compile(r"-?\d+")


# ----------------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------------


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


def load_data(
    source: str | os.PathLike[str] = "r8",
    *,
    text_field: str = "text",
    label_field: str | None = None,
    multi_label: bool | None = None,
    label_delimiter: str = "|",
    validation_fraction: float = 0.1,
    seed: int = 13,
    on_invalid: str = "raise",
) -> TextClassificationData:
    """Read, check and label-encode a text-classification dataset.

    Parameters
    ----------
    source : str or path-like, default "r8"
        An embedded dataset name (see :func:`embedded_datasets`; the name wins over a same-named directory in
        the working directory, write ``./r8`` for the directory), a directory of split files, a single file
        (the training split), or a directory written by ``datasets.DatasetDict.save_to_disk``. Split files are
        named ``train``, ``validation``/``valid``/``dev``/``val`` and ``test`` with one of the endings in
        :data:`SUPPORTED_EXTENSIONS`. ``.json`` files must be JSON Lines. TSV files are read without quoting
        (the GLUE / IANA ``text/tab-separated-values`` convention: quotes are part of the text, and a field
        cannot hold a tab or a newline); CSV files use standard double-quote quoting. Other files in the
        directory are ignored.
    text_field : str, default "text"
        Column (JSON key) holding the document text.
    label_field : str or None, default None
        Column holding the label(s). ``None`` picks ``"label"`` (one label per document) or, when there is no
        such column, ``"labels"`` (a set of labels per document); with ``multi_label=True`` ``"labels"`` is
        preferred.
    multi_label : bool or None, default None
        ``None`` detects it from the training split: multi-label when the label field is ``"labels"`` or any
        of its values is a JSON list. ``True`` forces multi-label (a string label is split on
        ``label_delimiter``). ``False`` forces single-label (a one-element list is unwrapped; longer lists are
        an error).
    label_delimiter : str, default "|"
        Separator of the labels inside a string value in multi-label mode (CSV/TSV cells, or JSON strings).
    validation_fraction : float in (0, 1), default 0.1
        Fraction of the training rows carved out as validation when the source has no validation split. The
        carve uses ``sklearn.model_selection.train_test_split(test_size=validation_fraction,
        random_state=seed, stratify=labels)``; it falls back to an unstratified split when a class has fewer
        than 2 members or a side would hold fewer rows than there are classes, and says so in ``notes``.
        Multi-label data is split by iterative stratification (:func:`iterative_stratified_mask`), so rare
        labels keep their share on both sides. Both parts keep the source order.
    seed : int, default 13
        Random seed of the carve.
    on_invalid : {"raise", "drop"}, default "raise"
        What to do with a row whose text is missing/empty/whitespace or whose label is missing/empty:
        raise :class:`DataFormatError`, or drop the row and record the count per split in ``notes``.
        Structural problems (unreadable file, bad JSON/CSV, missing column, unseen label, empty split)
        always raise.

    Returns
    -------
    TextClassificationData
        ``train.labels`` has shape ``(n_train,)`` and dtype int64 (single-label) or shape
        ``(n_train, num_labels)`` and dtype float32 with 0/1 entries (multi-label); likewise for validation
        and test. ``label_names`` are the labels seen in the training source (before any carve), sorted (as
        integers when every label is an integer, e.g. ``"0"``, ``"1"``, ``"10"``; as strings otherwise).
        ``test`` is ``None`` when the source has no test split.

    Raises
    ------
    DataNotFoundError
        The path does not exist and is not an embedded name, or a directory has no split files or no
        training split.
    DataFormatError
        A file with an unsupported ending, malformed JSON/CSV/gzip, non-UTF-8 bytes, a missing column, an
        empty text or label (with ``on_invalid="raise"``), a validation/test label not seen in training, an
        empty split, or several files for one split.
    ConfigError
        ``on_invalid``, ``validation_fraction`` or ``label_delimiter`` has an invalid value.
    """
    if on_invalid not in _ON_INVALID:
        raise ConfigError(f"on_invalid must be one of {list(_ON_INVALID)}, got {on_invalid!r}")
    if (
        isinstance(validation_fraction, bool)
        or not isinstance(validation_fraction, (int, float))
        or not 0.0 < float(validation_fraction) < 1.0
    ):
        raise ConfigError(
            f"validation_fraction must be strictly between 0 and 1, got {validation_fraction!r}; "
            "it is the share of the training rows carved out as validation when the source has none"
        )
    if not label_delimiter:
        raise ConfigError("label_delimiter must be a non-empty string, e.g. '|'")

    name, tables, notes = _resolve_source(source)
    if "train" not in tables:
        found = ", ".join(t.display for t in tables.values()) or "no split files"
        raise DataNotFoundError(
            f"{source}: there is no training split (found: {found}). frugaltext needs labelled training "
            "data: add a train file (train.jsonl, train.jsonl.gz, train.csv, train.tsv) or pass a source "
            "that has one; a test-only dataset can be used to evaluate a model trained elsewhere"
        )

    for split, table in tables.items():
        if not table.rows:
            raise DataFormatError(
                f"{table.display}: the {split} split is empty (it has no rows); a split needs at least one "
                "document; fill the file or remove it"
            )
    train_table = tables["train"]
    label_field = _pick_label_field(train_table, label_field, multi_label)
    _require_column(train_table, text_field, "text", "--text-field")
    if multi_label is None:
        multi_label = _detect_multi_label(train_table, label_field)
    opts = _ParseOptions(text_field, label_field, bool(multi_label), label_delimiter, on_invalid)

    train = _parse_rows(train_table, "train", opts, known=None)
    label_names = _sort_labels({lab for labs in train.labels for lab in labs})
    known = set(label_names)
    parsed = {"train": train}
    for split in ("validation", "test"):
        if split in tables:
            _require_column(tables[split], text_field, "text", "--text-field")
            _require_column(tables[split], label_field, "label", "--label-field")
            parsed[split] = _parse_rows(tables[split], split, opts, known=known, label_names=label_names)
    for split, rows in parsed.items():
        if rows.dropped:
            detail = ", ".join(f"{n} with {why}" for why, n in sorted(rows.dropped.items()))
            note = (
                f"{split}: dropped {sum(rows.dropped.values())} of {rows.n_read} rows of {rows.display} "
                f"(on_invalid='drop'): {detail}"
            )
            notes.append(note)
            logger.warning(note)

    label2id = {lab: i for i, lab in enumerate(label_names)}
    splits = {s: _encode(rows, s, label2id, opts.multi_label) for s, rows in parsed.items()}
    if "validation" not in splits:
        splits["train"], splits["validation"], note = _carve_validation(
            splits["train"], validation_fraction, seed, opts.multi_label
        )
        notes.append(note)
        logger.info(note)
    if "test" not in splits:
        notes.append(f"{name}: the source has no test split (test is None)")

    return TextClassificationData(
        name=name,
        train=splits["train"],
        validation=splits["validation"],
        test=splits.get("test"),
        label_names=tuple(label_names),
        multi_label=opts.multi_label,
        notes=notes,
    )


# ----------------------------------------------------------------------------------------------------
# Raw tables: one per split file, rows as dicts with their line numbers
# ----------------------------------------------------------------------------------------------------


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
    lower = filename.lower()
    for ext in sorted(SUPPORTED_EXTENSIONS, key=len, reverse=True):
        if lower.endswith(ext) and len(filename) > len(ext):
            return filename[: -len(ext)], ext
    return None


def _resolve_source(source: str | os.PathLike[str]) -> tuple[str, dict[str, _Table], list[str]]:
    """Find the split files of ``source`` and read them; return (dataset name, tables by split, notes)."""
    notes: list[str] = []
    if isinstance(source, str) and source in _EMBEDDED:
        root = resources.files("frugaltext").joinpath("datasets", source)
        tables = {}
        for split in ("train", "validation", "test"):
            entry = root.joinpath(f"{split}.jsonl.gz")
            if entry.is_file():
                tables[split] = _read_file(entry.read_bytes, f"{entry}", ".jsonl.gz")
        return source, tables, notes

    path = Path(source).expanduser()
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
        return stem, {"train": _read_file(path.read_bytes, str(path), ext)}, notes

    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        return path.resolve().name, _read_hf_disk(path, notes), notes

    candidates: dict[str, list[tuple[Path, str]]] = {}
    alias_to_split = {alias: split for split, aliases in SPLIT_ALIASES.items() for alias in aliases}
    for child in sorted(path.iterdir()):
        parts = _split_extension(child.name) if child.is_file() else None
        if parts is None:
            continue
        stem, ext = parts
        split = alias_to_split.get(stem.lower())
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
            tables[split] = _read_file(file.read_bytes, str(file), ext)
    return path.resolve().name, tables, notes


def _read_file(read_bytes: Callable[[], bytes], display: str, ext: str) -> _Table:
    """Read one split file (JSON Lines, CSV or TSV, gzip-compressed when ``ext`` ends in ``.gz``)."""
    try:
        data = read_bytes()
    except OSError as err:
        raise DataNotFoundError(f"{display}: cannot read the file ({err})") from err
    if ext.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise DataFormatError(
                f"{display}: not a valid gzip file ({err}); decompress/re-compress it with gzip, "
                "or drop the .gz ending if it is plain text"
            ) from err
    text = _decode_utf8(data, display)
    fmt = SUPPORTED_EXTENSIONS[ext]
    if fmt == "json":
        return _parse_jsonl(text, display)
    return _parse_delimited(text, display, delimiter="," if fmt == "csv" else "\t", kind=fmt)


def _decode_utf8(data: bytes, display: str) -> str:
    """Decode UTF-8 (an initial byte-order mark is removed); name the line of the first bad byte."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        bad = data[err.start : err.start + 1].hex()
        raise DataFormatError(
            f"{display}, line {line}: byte 0x{bad} at column {column} is not valid UTF-8 ({err.reason}); "
            "re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 in > out`)"
        ) from None


def _parse_jsonl(text: str, display: str) -> _Table:
    """Parse JSON Lines: one JSON object per line; blank lines are allowed and skipped."""
    rows: list[tuple[int, dict[str, Any]]] = []
    loads = json.loads
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = loads(line)
        except json.JSONDecodeError as err:
            hint = ""
            if lineno == 1 and line.lstrip().startswith("["):
                hint = " The file looks like one JSON array; write one JSON object per line (JSON Lines)."
            raise DataFormatError(
                f"{display}, line {lineno}: malformed JSON ({err.msg} at column {err.colno}); each line "
                f'must be one JSON object such as {{"text": "...", "label": "..."}}.{hint}'
            ) from None
        if not isinstance(record, dict):
            raise DataFormatError(
                f"{display}, line {lineno}: expected a JSON object, got {type(record).__name__}; each line "
                'must be one JSON object such as {"text": "...", "label": "..."}'
            )
        rows.append((lineno, record))
    return _Table(display=display, kind="json", columns=None, rows=rows, id_prefix=Path(display).name)


def _parse_delimited(text: str, display: str, delimiter: str, kind: str) -> _Table:
    """Parse CSV (double-quote quoting) or TSV (no quoting); the first row is the header (line 1)."""
    if kind == "tsv":
        reader = csv.reader(
            io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE, strict=True
        )
    else:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[tuple[int, dict[str, Any]]] = []
    header: list[str] | None = None
    header_line = 1
    start = 1
    old_limit = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)
    try:
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as err:
                raise DataFormatError(
                    f"{display}, line {start}: malformed {kind.upper()} row ({err}); quote fields that "
                    'contain the delimiter, quotes or newlines ("like ""this"""), or fix the row'
                ) from None
            if not row:  # a blank physical line
                continue
            if header is None:
                header = [h.strip() for h in row]
                header_line = start
                dupes = sorted(h for h, n in Counter(header).items() if n > 1)
                if dupes:
                    raise DataFormatError(
                        f"{display}, line {start}: the header repeats the column(s) {dupes}; give every "
                        "column a distinct name"
                    )
                continue
            if len(row) != len(header):
                raise DataFormatError(
                    f"{display}, line {start}: expected {len(header)} fields as in the header (line "
                    f"{header_line}: {header}), found {len(row)}; "
                    + (
                        "a TSV field cannot contain a tab; remove it or convert the file to CSV"
                        if kind == "tsv"
                        else "quote fields that contain a comma, quote or newline"
                    )
                )
            rows.append((start, dict(zip(header, row, strict=True))))
    finally:
        csv.field_size_limit(old_limit)
    return _Table(display=display, kind=kind, columns=header or [], rows=rows, id_prefix=Path(display).name)


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


# ----------------------------------------------------------------------------------------------------
# Field checks
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ParseOptions:
    text_field: str
    label_field: str
    multi_label: bool
    delimiter: str
    on_invalid: str


@dataclass
class _Rows:
    """Checked rows of one split: texts, label name lists, ids."""

    display: str
    texts: list[str] = field(default_factory=list)
    labels: list[list[str]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    n_read: int = 0


def _pick_label_field(table: _Table, label_field: str | None, multi_label: bool | None) -> str:
    """Return the label column: the one asked for, or ``label``/``labels`` when ``label_field`` is None."""
    if label_field is not None:
        _require_column(table, label_field, "label", "--label-field")
        return label_field
    present = table.present_columns()
    order = ("labels", "label") if multi_label else ("label", "labels")
    for name in order:
        if name in present:
            return name
    raise DataFormatError(
        f'{table.display}, {table.where} {table.rows[0][0] if table.rows else 1}: no label field "label" or '
        f'"labels" (columns present: {present}); use --label-field (label_field=...) to name the column '
        "that holds the label(s)"
    )


def _require_column(table: _Table, name: str, role: str, option: str) -> None:
    """Raise when the header (CSV/TSV/arrow) or the first JSON record lacks the column ``name``."""
    present = table.present_columns()
    if name in present:
        return
    where = 1 if table.kind in ("csv", "tsv") else (table.rows[0][0] if table.rows else 1)
    raise DataFormatError(
        f'{table.display}, {table.where} {where}: {role} field "{name}" not found '
        f"(columns present: {present}); use {option} ({role}_field=...) to name the column that holds "
        f"the {role}"
    )


def _detect_multi_label(table: _Table, label_field: str) -> bool:
    """Multi-label when the field is called ``labels`` or any training value is a list."""
    if label_field == "labels":
        return True
    return any(isinstance(rec.get(label_field), list) for _, rec in table.rows)


def _sort_labels(labels: set[str]) -> list[str]:
    """Sort label names; numerically when every name is an integer (so ``"2"`` comes before ``"10"``)."""
    if labels and all(_INT_LABEL.fullmatch(lab) for lab in labels):
        return sorted(labels, key=int)
    return sorted(labels)


def _label_name(value: Any) -> str | None:
    """Return a scalar label as a string (ints are accepted), or None for a non-label type."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _parse_rows(
    table: _Table,
    split: str,
    opts: _ParseOptions,
    known: set[str] | None,
    label_names: list[str] | None = None,
) -> _Rows:
    """Check every row of one split and return its texts, label names and ids.

    ``known`` is the training label set (None while reading the training split itself).
    """
    out = _Rows(display=table.display, n_read=len(table.rows))
    tf, lf, where, display = opts.text_field, opts.label_field, table.where, table.display
    drop = opts.on_invalid == "drop"
    fix_drop = ' or pass on_invalid="drop" (--on-invalid drop) to drop such rows'

    for lineno, rec in table.rows:
        loc = f"{display}, {where} {lineno}"
        # --- text
        text = rec.get(tf)
        if text is None or (isinstance(text, str) and not text.strip()):
            if drop:
                out.dropped["missing or empty text"] += 1
                continue
            what = (
                "is missing" if tf not in rec else ("is null" if text is None else "is empty or whitespace")
            )
            raise DataFormatError(
                f'{loc}: field "{tf}" {what}; every document needs a non-empty text; fix the row{fix_drop}'
            )
        if not isinstance(text, str):
            raise DataFormatError(
                f'{loc}: field "{tf}" must be a string, got {type(text).__name__} ({_short(text)}); '
                "use --text-field to pick the column that holds the text"
            )
        # --- labels
        value = rec.get(lf)
        labels = _labels_of(value, loc, lf, opts)
        if labels is None:
            if drop:
                out.dropped["missing or empty label"] += 1
                continue
            what = "is missing" if lf not in rec else f"is empty ({_short(value)})"
            raise DataFormatError(
                f'{loc}: field "{lf}" {what}; every document needs a label; fix the row{fix_drop}'
            )
        if known is not None:
            for lab in labels:
                if lab not in known:
                    raise DataFormatError(
                        f'{loc}: field "{lf}" has the label {lab!r}, which never occurs in the training '
                        "split; "
                        f"known labels: {label_names}; fix the label, or add training documents with it"
                    )
        rid = rec.get("id")
        out.texts.append(text)
        out.labels.append(labels)
        out.ids.append(str(rid) if rid is not None and rid != "" else f"{table.id_prefix}:{lineno}")

    if not out.texts:
        why = (
            "it has no rows"
            if not table.rows
            else f"all {len(table.rows)} rows were dropped ({dict(out.dropped)})"
        )
        raise DataFormatError(
            f"{display}: the {split} split is empty ({why}); a split needs at least one document with a "
            f'"{tf}" and a "{lf}" field; fill the file or remove it'
        )
    return out


def _labels_of(value: Any, loc: str, lf: str, opts: _ParseOptions) -> list[str] | None:
    """Return the label names of one row, or None when missing/empty (droppable)."""
    if value is None:
        return None
    if isinstance(value, list):
        names = []
        for item in value:
            name = _label_name(item)
            if name is None:
                raise DataFormatError(
                    f'{loc}: field "{lf}" holds {_short(item)} ({type(item).__name__}) in its list; '
                    "labels must be strings or integers"
                )
            if not name:
                return None
            names.append(name)
        if not names:
            return None
        names = sorted(set(names))
        if not opts.multi_label and len(names) > 1:
            raise DataFormatError(
                f'{loc}: field "{lf}" holds {len(names)} labels {names} but the task is single-label '
                "(multi_label=False); pass multi_label=True (--multi-label) or keep one label per document"
            )
        return names
    name = _label_name(value)
    if name is None:
        raise DataFormatError(
            f'{loc}: field "{lf}" must be a string, an integer or a list of them, got {type(value).__name__} '
            f"({_short(value)}); use --label-field to pick the column that holds the label"
        )
    if not name:
        return None
    if not opts.multi_label:
        return [name]
    parts = [p.strip() for p in name.split(opts.delimiter)]
    if any(not p for p in parts):
        raise DataFormatError(
            f'{loc}: field "{lf}" ({_short(value)}) has an empty label between the delimiters '
            f"{opts.delimiter!r}; remove the extra delimiter, or set label_delimiter (--label-delimiter)"
        )
    return sorted(set(parts))


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ----------------------------------------------------------------------------------------------------
# Encoding and the validation carve
# ----------------------------------------------------------------------------------------------------


def _encode(rows: _Rows, split: str, label2id: dict[str, int], multi_label: bool) -> Split:
    """Turn label names into ids: int64 ``(n,)`` or float32 0/1 ``(n, num_labels)``."""
    n = len(rows.texts)
    if multi_label:
        labels = np.zeros((n, len(label2id)), dtype=np.float32)
        for i, names in enumerate(rows.labels):
            labels[i, [label2id[x] for x in names]] = 1.0
    else:
        labels = np.fromiter((label2id[names[0]] for names in rows.labels), dtype=np.int64, count=n)
    return Split(name=split, texts=rows.texts, labels=labels, ids=rows.ids, source=rows.display)


def _carve_validation(
    train: Split, fraction: float, seed: int, multi_label: bool
) -> tuple[Split, Split, str]:
    """Split ``fraction`` of ``train`` off as validation, stratified by label where possible.

    Single-label: ``sklearn.model_selection.train_test_split(test_size=fraction, random_state=seed,
    stratify=...)``; multi-label: :func:`iterative_stratified_mask`. Both parts are returned in source order.
    """
    from sklearn.model_selection import train_test_split

    n = len(train)
    if n < 2:
        raise DataFormatError(
            f"{train.source}: the training split has {n} row, too few to carve a validation split from; "
            "add training documents or provide a validation file"
        )
    indices = np.arange(n)
    reason = None
    if multi_label:
        va_mask = iterative_stratified_mask(np.asarray(train.labels), fraction, seed)
        tr_idx, va_idx = indices[~va_mask], indices[va_mask]
        if len(va_idx) == 0 or len(tr_idx) == 0:
            raise DataFormatError(
                f"{train.source}: validation_fraction={fraction} of {n} rows leaves one side empty; "
                "change validation_fraction or provide a validation file"
            )
        return _carved(train, tr_idx, va_idx, fraction, seed,
                       "multi-label iterative stratification, Sechidis et al. 2011")
    else:
        counts = np.bincount(train.labels)
        present = counts[counts > 0]
        n_val = int(np.ceil(fraction * n))
        if present.min() < 2:
            reason = "a class has fewer than 2 training documents"
        elif n_val < len(present) or n - n_val < len(present):
            reason = f"one side would hold fewer rows than the {len(present)} classes"
    stratify = None if reason else train.labels
    try:
        tr_idx, va_idx = train_test_split(indices, test_size=fraction, random_state=seed, stratify=stratify)
    except ValueError as err:
        if stratify is None:
            raise
        reason = str(err)
        tr_idx, va_idx = train_test_split(indices, test_size=fraction, random_state=seed, stratify=None)
    how = "stratified by label" if reason is None else f"unstratified ({reason})"
    return _carved(train, tr_idx, va_idx, fraction, seed, how)


def _carved(train: Split, tr_idx: np.ndarray, va_idx: np.ndarray, fraction: float, seed: int,
            how: str) -> tuple[Split, Split, str]:
    """The two splits (source order) and the note of a carve."""
    n = len(train)
    tr_idx, va_idx = np.sort(tr_idx), np.sort(va_idx)
    source = f"carved from train (seed {seed})"
    note = (
        f"validation: carved {len(va_idx)} of {n} training rows (validation_fraction={fraction}, "
        f"seed={seed}, {how}); train keeps {len(tr_idx)}"
    )
    new_train = train.subset(tr_idx, source=f"{train.source} [minus {len(va_idx)} carved as validation]")
    validation = Split(
        name="validation",
        texts=[train.texts[i] for i in va_idx],
        labels=train.labels[va_idx],
        ids=[train.ids[i] for i in va_idx],
        source=source,
    )
    return new_train, validation, note


def iterative_stratified_mask(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Choose about ``fraction`` of the rows of a multi-label matrix so that every label keeps about that
    share in the chosen part: iterative stratification (Sechidis, Tsoumakas and Vlahavas 2011, Algorithm 1)
    for two subsets, the algorithm behind ``iterstrat``/``skmultilearn``'s stratified splits.

    Repeatedly take the label with the fewest rows still unassigned (rare labels first, where a random split
    hurts most) and give each of its rows to the subset that still wants most of that label (ties: the subset
    that wants most rows overall, then at random); rows with no label left go to the subset that wants most
    rows. A label with a single row therefore lands on the larger side.

    Parameters
    ----------
    labels : ndarray of shape (n_rows, n_labels), 0/1
    fraction : float in (0, 1)
        Share of the rows for the chosen (validation) part: ``ceil(fraction * n_rows)`` rows are wanted there
        (as ``sklearn.model_selection.train_test_split``), at least one and at most ``n_rows - 1``. Label
        shares come first, so the part's size is approximate (on a 400-row, 12-label toy: 77 to 88 rows for
        80 wanted, every label within one row of its 20%).
    seed : int

    Returns
    -------
    ndarray of bool, shape (n_rows,)
        True for the rows of the chosen part.

    Raises
    ------
    ValueError
        If ``labels`` is not 2-D or ``fraction`` is not in (0, 1).
    """
    y = np.asarray(labels) > 0
    if y.ndim != 2:
        raise ValueError(f"iterative_stratified_mask: labels must be 2-D (rows, labels), got shape {y.shape}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"iterative_stratified_mask: fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    n, _ = y.shape
    # as sklearn's train_test_split: the chosen part has ceil(fraction * n) rows, and each side at least one
    n_chosen = min(max(int(np.ceil(fraction * n)), 1), max(n - 1, 1))
    ratios = np.array([n_chosen / n, 1.0 - n_chosen / n]) if n else np.array([fraction, 1.0 - fraction])
    wanted_rows = ratios * n  # subset 0 = chosen part, 1 = the rest
    wanted_label = np.outer(ratios, y.sum(axis=0)).astype(float)  # (2, n_labels)
    subset = np.full(n, -1)
    remaining = y.copy()
    unassigned = np.ones(n, dtype=bool)

    def assign(row: int, target: int) -> None:
        subset[row] = target
        unassigned[row] = False
        wanted_rows[target] -= 1
        wanted_label[target, y[row]] -= 1
        remaining[row] = False

    while unassigned.any():
        counts = remaining.sum(axis=0)
        if not counts.any():
            break
        candidates = np.flatnonzero(counts == counts[counts > 0].min())
        label = int(candidates[rng.integers(len(candidates))])
        rows = np.flatnonzero(remaining[:, label])
        for row in rng.permutation(rows):
            want = wanted_label[:, label]
            best = np.flatnonzero(want == want.max())
            if len(best) > 1:
                best = best[wanted_rows[best] == wanted_rows[best].max()]
            assign(int(row), int(best[rng.integers(len(best))]))
    for row in rng.permutation(np.flatnonzero(unassigned)):
        best = np.flatnonzero(wanted_rows == wanted_rows.max())
        assign(int(row), int(best[rng.integers(len(best))]))
    return subset == 0
