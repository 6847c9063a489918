"""Read unlabelled documents from a file: the input of ``frugaltext predict`` and unlabeled transfer sets.

:func:`iter_texts` streams the documents in chunks (for files larger than memory); :func:`read_texts` reads
them all. Both parse through :mod:`frugaltext.data.formats`, the same code as the training reader, so a file
that trains also predicts, with the same conventions (lines end at ``"\\n"`` only, TSV without quoting,
gzip by the ``.gz`` ending, UTF-8, 1-based line numbers in every message).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, NamedTuple

from frugaltext.data.formats import DOCUMENT_EXTENSIONS, RecordStream, _open_path, iter_lines
from frugaltext.errors import ConfigError, DataFormatError

__all__ = ["Documents", "iter_texts", "read_texts"]


class Documents(NamedTuple):
    """Documents of a file in file order; unpacks as ``texts, ids = read_texts(path)``.

    Attributes
    ----------
    texts : list of str
    ids : list of str
        The ``id`` field/column when present and non-empty, else the 1-based line number as a string.
    """

    texts: list[str]
    ids: list[str]


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _iter_documents(path: str | os.PathLike[str], text_field: str) -> Iterator[tuple[str, str]]:
    """Yield ``(text, id)`` for every document of the file; raise when there is none."""
    file, kind, compressed = _open_path(path, DOCUMENT_EXTENSIONS)
    display = str(file)
    found = False
    if kind == "txt":
        for lineno, line in iter_lines(lambda: file.open("rb"), display, compressed):
            text = line.strip()
            if text:
                found = True
                yield text, str(lineno)
    else:
        with RecordStream(lambda: file.open("rb"), display, kind, compressed) as stream:
            if stream.columns is not None and stream.columns and text_field not in stream.columns:
                raise DataFormatError(
                    f"{display}, line {stream.header_line}: column {text_field!r} not found (columns: "
                    f"{stream.columns}); use --text-field (text_field=...) to name the column that holds the "
                    "text"
                )
            for record in stream:
                fields = record.fields
                if text_field not in fields:
                    raise DataFormatError(
                        f"{record.where}: field {text_field!r} is missing (fields: {list(fields)}); use "
                        "--text-field (text_field=...) to name the field that holds the text"
                    )
                text = fields[text_field]
                if not isinstance(text, str) or not text.strip():
                    raise DataFormatError(
                        f"{record.where}: field {text_field!r} is empty or not text ({_short(text)}); every "
                        "document needs a non-empty text; fix or remove the row"
                    )
                row_id = fields.get("id")
                found = True
                yield text, (str(row_id) if row_id not in (None, "") else str(record.line))
    if not found:
        raise DataFormatError(f"{display}: no documents found; the file is empty (or holds only blank lines)")


def iter_texts(
    path: str | os.PathLike[str], text_field: str = "text", chunk_size: int = 1024
) -> Iterator[Documents]:
    """Stream the documents of a file in chunks of at most ``chunk_size``, in file order.

    Parameters
    ----------
    path : path-like
        By ending (case-insensitive, each optionally ``.gz``):

        * ``.txt``: one document per line. Lines end at ``"\\n"`` (or ``"\\r\\n"``) only; U+2028, U+2029,
          U+0085 and form feeds are part of the line. Surrounding whitespace is stripped and blank lines
          are skipped; the id is the line number.
        * ``.jsonl`` / ``.json``: JSON Lines, one object per line with a ``text_field`` key (blank lines
          skipped).
        * ``.csv`` (double-quote quoting) / ``.tsv`` (no quoting: quotes are text, a field cannot hold a tab
          or newline): a header row naming a ``text_field`` column.

        For JSON/CSV/TSV the text is kept as written (not stripped) and an ``id`` field/column, when present
        and non-empty, gives the id; otherwise the id is the 1-based line where the row starts.
    text_field : str, default "text"
        Field (column) holding the text; ignored for ``.txt``.
    chunk_size : int, default 1024
        Largest number of documents per yielded chunk.

    Yields
    ------
    Documents
        ``(texts, ids)`` of up to ``chunk_size`` documents; only the last chunk may be shorter.

    Raises
    ------
    ConfigError
        ``chunk_size`` is not a positive integer (raised on the first ``next``).
    DataNotFoundError
        The file does not exist or cannot be read.
    DataFormatError
        An unsupported ending; a corrupt or truncated gzip file; non-UTF-8 bytes; malformed JSON/CSV/TSV;
        a missing text column (line of the header) or field; an empty or non-string text (file and line
        named); or a file without any document (raised after the last chunk, i.e. at once for an empty file).
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ConfigError(f"chunk_size must be a positive integer (documents per chunk), got {chunk_size!r}")
    texts: list[str] = []
    ids: list[str] = []
    for text, doc_id in _iter_documents(path, text_field):
        texts.append(text)
        ids.append(doc_id)
        if len(texts) == chunk_size:
            yield Documents(texts, ids)
            texts, ids = [], []
    if texts:
        yield Documents(texts, ids)


def read_texts(path: str | os.PathLike[str], text_field: str = "text") -> Documents:
    """Read all documents of a file: ``texts, ids = read_texts(path)``.

    Same formats, conventions and errors as :func:`iter_texts` (one chunk holding the whole file).

    Returns
    -------
    Documents
        ``texts`` (list of str) and ``ids`` (list of str), one per document, in file order.
    """
    texts: list[str] = []
    ids: list[str] = []
    for text, doc_id in _iter_documents(path, text_field):
        texts.append(text)
        ids.append(doc_id)
    return Documents(texts, ids)
