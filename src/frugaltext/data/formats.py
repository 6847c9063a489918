"""File formats: stream the records of a JSON Lines, CSV or TSV file (optionally gzip-compressed).

This is the one place where frugaltext parses document files; the training reader
(:func:`frugaltext.data.load_data`) and the document reader (:func:`frugaltext.data.read_texts`, used to
classify files and for unlabeled transfer sets) both stream through :func:`iter_lines` and
:class:`RecordStream`. One convention holds for every format:

* **Lines** end at ``"\\n"`` (a ``"\\r\\n"`` ending is accepted; a bare ``"\\r"`` is not a line end). Other
  Unicode line breaks (U+2028, U+2029, U+0085, form feed, vertical tab) are ordinary characters, so a JSON
  string or a ``.txt`` line holding one stays one record (:meth:`str.splitlines` would split it).
* **Encoding** is UTF-8; a leading byte-order mark is removed. A bad byte raises
  :class:`~frugaltext.errors.DataFormatError` naming the file, the line and the column.
* **gzip** is recognised by the ``.gz`` ending and decompressed while streaming; a corrupt or truncated
  archive raises :class:`~frugaltext.errors.DataFormatError` naming the file (never ``zlib.error`` or
  ``EOFError``).
* **JSON Lines** (``.jsonl``, ``.json``): one JSON object per line; blank lines are skipped.
* **CSV** (``.csv``): RFC 4180 double-quote quoting (a quoted field may hold commas, quotes and newlines);
  the first non-blank row is the header; blank lines are skipped.
* **TSV** (``.tsv``): no quoting at all (``csv.QUOTE_NONE``, the GLUE / IANA
  ``text/tab-separated-values`` convention): quotes are part of the text, and a field cannot hold a tab or a
  newline. The first non-blank row is the header.
* **Line numbers** are 1-based physical lines of the decompressed file; a record's line is the line where it
  starts (for CSV/TSV the header is line 1).

The standard-library ``json``, ``csv`` and ``gzip`` modules are used instead of pandas so that every record
keeps its line number.
"""

from __future__ import annotations

import csv
import errno
import gzip
import json
import os
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NamedTuple

from frugaltext.errors import DataFormatError, DataNotFoundError

__all__ = [
    "DOCUMENT_EXTENSIONS",
    "SUPPORTED_EXTENSIONS",
    "Record",
    "RecordStream",
    "iter_lines",
    "iter_records",
    "missing_reason",
    "read_records",
    "split_extension",
]

#: File name endings of labelled data files (:func:`frugaltext.data.load_data`), mapped to the format.
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

#: File name endings of document files (:func:`frugaltext.data.read_texts`): the above plus plain text.
DOCUMENT_EXTENSIONS: dict[str, str] = {**SUPPORTED_EXTENSIONS, ".txt": "txt", ".txt.gz": "txt"}

_CSV_FIELD_LIMIT = 2**31 - 1  # documents can be long; the csv module's default limit is 128 KiB


class Record(NamedTuple):
    """One row of a data file.

    Attributes
    ----------
    file : str
        The file as shown in messages.
    line : int
        1-based physical line where the row starts (decompressed file; header = line 1 for CSV/TSV).
    fields : dict of str to Any
        The JSON object, or the CSV/TSV cells by header name (all str).
    """

    file: str
    line: int
    fields: dict[str, Any]

    @property
    def where(self) -> str:
        """``"<file>, line <n>"``, the prefix of every message about this row."""
        return f"{self.file}, line {self.line}"


def split_extension(
    filename: str, extensions: dict[str, str] = SUPPORTED_EXTENSIONS
) -> tuple[str, str] | None:
    """Split ``name.ext[.gz]`` into ``(stem, ext)`` when ``ext`` (lower-cased) is one of ``extensions``.

    Returns None for an unsupported ending or a name that is only an ending (``".jsonl"``).
    """
    lower = filename.lower()
    for ext in sorted(extensions, key=len, reverse=True):
        if lower.endswith(ext) and len(filename) > len(ext):
            return filename[: -len(ext)], ext
    return None


def iter_lines(
    open_binary: Callable[[], IO[bytes]], display: str, compressed: bool
) -> Iterator[tuple[int, str]]:
    """Stream the decoded lines of a file, each with its 1-based number and its ending kept.

    Parameters
    ----------
    open_binary : callable returning a binary file object
        E.g. ``path.open("rb")`` wrapped in a lambda; the file is closed when the iterator is exhausted or
        closed.
    display : str
        File name used in messages.
    compressed : bool
        Decompress gzip while reading.

    Yields
    ------
    (int, str)
        Line number and the line with its ``"\\n"``/``"\\r\\n"`` ending (the last line may have none). Lines
        are split on ``"\\n"`` only; a byte-order mark at the start of the file is removed.

    Raises
    ------
    DataNotFoundError
        The file cannot be opened or read.
    DataFormatError
        A corrupt or truncated gzip archive, or bytes that are not UTF-8 (line and column named).
    """
    try:
        raw = open_binary()
    except OSError as err:
        raise DataNotFoundError(f"{display}: cannot read the file ({err})") from err
    with raw:
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        lineno = 0
        lines = iter(stream)
        while True:
            try:
                data = next(lines)
            except StopIteration:
                return
            except EOFError as err:
                raise DataFormatError(
                    f"{display}: the gzip file is truncated after line {lineno} ({err}); the download or "
                    "copy was cut short: fetch or compress the file again"
                ) from None
            except (OSError, zlib.error) as err:
                if not compressed or isinstance(err, FileNotFoundError | PermissionError):
                    raise DataNotFoundError(f"{display}: cannot read the file ({err})") from err
                raise DataFormatError(
                    f"{display}: not a valid gzip file ({type(err).__name__}: {err}); decompress/re-compress "
                    "it with gzip, or drop the .gz ending if it is plain text"
                ) from None
            lineno += 1
            if lineno == 1 and data.startswith(b"\xef\xbb\xbf"):
                data = data[3:]
            try:
                line = data.decode("utf-8")
            except UnicodeDecodeError as err:
                bad = data[err.start : err.start + 1].hex()
                raise DataFormatError(
                    f"{display}, line {lineno}: byte 0x{bad} at column {err.start + 1} is not valid UTF-8 "
                    f"({err.reason}); re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 in > out`)"
                ) from None
            yield lineno, line


def _strip_ending(line: str) -> str:
    """Remove a trailing ``"\\n"`` or ``"\\r\\n"`` (nothing else)."""
    if line.endswith("\n"):
        line = line[:-2] if line.endswith("\r\n") else line[:-1]
    return line


class RecordStream:
    """Iterator over the :class:`Record` rows of one JSON Lines, CSV or TSV file, read lazily.

    For CSV/TSV the header is read when the stream is created, so :attr:`columns` is known before the first
    row; for JSON Lines :attr:`columns` is None. Use it as a context manager (or exhaust it) to close the
    file.

    Parameters
    ----------
    open_binary : callable returning a binary file object
    display : str
        File name used in messages.
    kind : {"json", "csv", "tsv"}
    compressed : bool
        The file is gzip-compressed.

    Attributes
    ----------
    columns : list of str or None
        CSV/TSV header (cells stripped of surrounding spaces); None for JSON Lines.
    header_line : int or None
        Line of the header (CSV/TSV).

    Raises
    ------
    DataFormatError
        Malformed JSON (or a line that is not an object), a malformed CSV row, a row with another number of
        fields than the header, a header that repeats a column, and the errors of :func:`iter_lines`.
    """

    def __init__(
        self, open_binary: Callable[[], IO[bytes]], display: str, kind: str, compressed: bool
    ) -> None:
        if kind not in ("json", "csv", "tsv"):
            raise ValueError(f"RecordStream: kind must be json, csv or tsv, got {kind!r}")
        self.display = display
        self.kind = kind
        self._lines = iter_lines(open_binary, display, compressed)
        self.columns: list[str] | None = None
        self.header_line: int | None = None
        self._rows: Iterator[Record]
        if kind == "json":
            self._rows = self._json_rows()
        else:
            self._reader = self._csv_reader()
            self._rows = self._delimited_rows()
            self._read_header()

    # -- iteration -------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Record]:
        return self

    def __next__(self) -> Record:
        return next(self._rows)

    def close(self) -> None:
        """Close the underlying file (also done when the stream is exhausted)."""
        self._lines.close()

    def __enter__(self) -> RecordStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- JSON Lines ------------------------------------------------------------------------------------
    def _json_rows(self) -> Iterator[Record]:
        loads, display = json.loads, self.display
        for lineno, line in self._lines:
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
                hint = ""
                if lineno == 1 and isinstance(record, list) and record and isinstance(record[0], dict):
                    hint = " The file looks like one JSON array; write one JSON object per line (JSON Lines)."
                raise DataFormatError(
                    f"{display}, line {lineno}: expected a JSON object, got {type(record).__name__}; each "
                    f'line must be one JSON object such as {{"text": "...", "label": "..."}}.{hint}'
                )
            yield Record(display, lineno, record)

    # -- CSV / TSV -------------------------------------------------------------------------------------
    def _csv_reader(self) -> Any:
        self._line_no = 0

        def lines() -> Iterator[str]:
            for lineno, line in self._lines:
                self._line_no = lineno
                yield line

        if self.kind == "tsv":
            return csv.reader(lines(), delimiter="\t", quoting=csv.QUOTE_NONE, strict=True)
        return csv.reader(lines(), delimiter=",", strict=True)

    def _next_row(self) -> tuple[int, list[str]] | None:
        """Next non-blank row and the line where it starts, or None at the end of the file."""
        while True:
            start = self._line_no + 1
            old_limit = csv.field_size_limit(_CSV_FIELD_LIMIT)
            try:
                row = next(self._reader)
            except StopIteration:
                return None
            except csv.Error as err:
                raise DataFormatError(
                    f"{self.display}, line {start}: malformed {self.kind.upper()} row ({err}); quote fields "
                    'that contain the delimiter, quotes or newlines ("like ""this"""), or fix the row'
                ) from None
            finally:
                csv.field_size_limit(old_limit)
            if row:  # an empty list is a blank physical line
                return start, row

    def _read_header(self) -> None:
        first = self._next_row()
        if first is None:
            self.columns = []
            return
        start, row = first
        header = [h.strip() for h in row]
        dupes = sorted(h for h, n in Counter(header).items() if n > 1)
        if dupes:
            raise DataFormatError(
                f"{self.display}, line {start}: the header repeats the column(s) {dupes}; give every column "
                "a distinct name"
            )
        self.columns, self.header_line = header, start

    def _delimited_rows(self) -> Iterator[Record]:
        header = self.columns or []
        while (item := self._next_row()) is not None:
            start, row = item
            if len(row) != len(header):
                raise DataFormatError(
                    f"{self.display}, line {start}: expected {len(header)} fields as in the header (line "
                    f"{self.header_line}: {header}), found {len(row)}; "
                    + (
                        "a TSV field cannot contain a tab; remove it or convert the file to CSV"
                        if self.kind == "tsv"
                        else "quote fields that contain a comma, quote or newline"
                    )
                )
            yield Record(self.display, start, dict(zip(header, row, strict=True)))


def missing_reason(path: Path) -> str:
    """Why ``path`` is not a readable file, for messages (``f"{path} {missing_reason(path)}"``): a symbolic
    link loop, a broken symbolic link, a directory, or ``"does not exist"``."""
    if path.is_symlink():
        try:
            path.resolve(strict=True)
        except RuntimeError:  # Python < 3.13 reports a loop this way
            return "is a symbolic link loop (it points back to itself); replace it with the real file"
        except OSError as err:
            if err.errno == errno.ELOOP:
                return "is a symbolic link loop (it points back to itself); replace it with the real file"
            return f"is a broken symbolic link (to {os.readlink(path)!r}); point it at an existing file"
    if path.is_dir():
        return "is a directory, not a file"
    if not path.exists():
        try:
            path.stat()
        except OSError as err:
            if err.errno == errno.ELOOP:
                return "lies under a symbolic link loop; replace the link with the real directory"
        return "does not exist"
    return "is not a regular file"


def _open_path(path: str | os.PathLike[str], extensions: dict[str, str]) -> tuple[Path, str, bool]:
    """Check that ``path`` is a file with a known ending; return (path, format, compressed)."""
    path = Path(path).expanduser()
    parts = split_extension(path.name, extensions)
    if parts is None:
        raise DataFormatError(
            f"{path}: unsupported file type; use one of {sorted(extensions)} "
            "(JSON Lines, CSV or TSV" + (", or plain text with one document per line" if ".txt" in extensions
                                        else "") + ", optionally gzip-compressed)"
        )
    if not path.is_file():
        raise DataNotFoundError(
            f"{path} {missing_reason(path)}; pass an existing file ending in one of {sorted(extensions)}"
        )
    return path, extensions[parts[1]], parts[1].endswith(".gz")


def iter_records(path: str | os.PathLike[str]) -> RecordStream:
    """Stream the rows of a JSON Lines, CSV or TSV file (optionally ``.gz``), chosen by its ending.

    Parameters
    ----------
    path : path-like
        A file ending in one of :data:`SUPPORTED_EXTENSIONS`; see the module docstring for the conventions.

    Returns
    -------
    RecordStream
        Iterator of :class:`Record` (file, line, fields); ``.columns`` holds the CSV/TSV header.

    Raises
    ------
    DataNotFoundError
        The file does not exist or cannot be read.
    DataFormatError
        An unsupported ending, or (while iterating) malformed content; see :class:`RecordStream`.
    """
    file, kind, compressed = _open_path(path, SUPPORTED_EXTENSIONS)
    return RecordStream(lambda: file.open("rb"), str(file), kind, compressed)


def read_records(path: str | os.PathLike[str]) -> list[Record]:
    """Read every row of a JSON Lines, CSV or TSV file into memory; see :func:`iter_records`."""
    with iter_records(path) as stream:
        return list(stream)
