"""Field checks and label parsing: turn the raw rows of a split into texts, label names and ids, then ids.

Label values may be strings, integers or lists of them; in multi-label mode a string is split on the label
delimiter. Every problem names the file, the line (or row) and the field.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from frugaltext.data.dataset import Split
from frugaltext.data.sources import _Table
from frugaltext.errors import DataFormatError

_ON_INVALID = ("raise", "drop")
_INT_LABEL = re.compile(r"-?\d+")

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
