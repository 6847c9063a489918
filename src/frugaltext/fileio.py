"""Atomic file writes: readers never see half a file.

This is a bottom-layer module: it imports nothing from frugaltext, so every layer (models, data, reports,
methods, the API and the benchmarks) can use it without an upward import. Each writer writes to a hidden
temporary file next to the target (``.<name>.tmp<pid>``) and renames it over the target with
:func:`os.replace`, which is atomic on POSIX and Windows when both lie on the same file system.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["atomic_write_bytes", "atomic_write_json", "atomic_write_text"]


def _temporary_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and :func:`os.replace`.

    Parameters
    ----------
    path : path-like
        Target file; its directory must exist. An existing file is replaced.
    data : bytes

    Raises
    ------
    OSError
        When the directory does not exist or is not writable; the temporary file is removed.
    """
    path = Path(path)
    tmp = _temporary_path(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` as UTF-8 through a temporary file and :func:`os.replace`, so readers
    never see half a file.

    Parameters
    ----------
    path : path-like
        Target file; its directory must exist. An existing file is replaced.
    text : str
        Written as UTF-8, newlines unchanged (no platform translation).

    Raises
    ------
    OSError
        When the directory does not exist or is not writable; the temporary file is removed.
    """
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2, **dumps_kwargs: Any
                      ) -> None:
    """Write ``obj`` as JSON (UTF-8, a final newline) to ``path`` atomically (see :func:`atomic_write_text`).

    Parameters
    ----------
    path : path-like
    obj : Any
        Anything :func:`json.dumps` accepts with ``dumps_kwargs`` (e.g. ``default=str``).
    indent : int or None, default 2
    **dumps_kwargs
        Passed to :func:`json.dumps`.

    Raises
    ------
    TypeError, ValueError
        When ``obj`` cannot be serialised (nothing is written).
    OSError
        When the file cannot be written.
    """
    atomic_write_text(path, json.dumps(obj, indent=indent, **dumps_kwargs) + "\n")
