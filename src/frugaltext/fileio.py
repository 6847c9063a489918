"""Atomic file writes: readers never see half a file.

This is a bottom-layer module: it imports nothing from frugaltext but :mod:`frugaltext.errors` (itself a
leaf), so every layer (models, data, reports, methods, the API and the benchmarks) can use it without an
upward import. Each writer writes to a hidden temporary file next to the target (``.<name>.tmp<pid>``) and
renames it over the target with :func:`os.replace`, which is atomic on POSIX and Windows when both lie on
the same file system. On any failure the temporary file is removed (and so are the parent directories the
writer created), so a failed command leaves nothing half-written.

:func:`check_output_file` checks an output path before any work starts (so that a command does not train
or predict for minutes and then fail on ``--output``); :func:`atomic_open` streams a large output (e.g.
predictions, written chunk by chunk) into the temporary file and renames it at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from frugaltext.errors import ConfigError

__all__ = [
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_output_dir",
    "check_output_file",
    "remove_if_no_files",
]


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


def _describe_not_a_directory(path: Path) -> str | None:
    """Why ``path`` cannot be created as a file: it is a directory, or an ancestor is a file; else None."""
    if path.is_dir():
        return f"{path} is a directory"
    if path.is_symlink() and not path.exists():
        return f"{path} is a broken symbolic link (or a symbolic link loop)"
    for parent in path.parents:
        if parent.is_dir():
            if not os.access(parent, os.W_OK | os.X_OK):
                return f"the directory {parent} is not writable"
            return None
        if parent.exists() or parent.is_symlink():
            return f"{parent} is a file, not a directory, so {path} cannot be created under it"
    return None  # pragma: no cover - the root always exists


def check_output_file(path: str | os.PathLike[str], option: str = "--output",
                      suffixes: tuple[str, ...] | None = None) -> Path:
    """Check, before any work starts, that ``path`` can be written as a file; create nothing.

    Parameters
    ----------
    path : path-like
        The output file. Missing parent directories are fine (writers create them).
    option : str, default "--output"
        The option or argument named in the message.
    suffixes : tuple of str, optional
        Allowed endings (lower-case, with the dot), e.g. ``(".jsonl", ".csv")``.

    Returns
    -------
    Path
        ``path`` with ``~`` expanded.

    Raises
    ------
    ConfigError
        ``path`` is a directory, lies under a file, is in a directory that is not writable, or has another
        ending than ``suffixes``; the message names the path and how to fix it.
    """
    path = Path(path).expanduser()
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise ConfigError(
            f"{option} {path}: the file must end in {' or '.join(suffixes)}; e.g. {option} "
            f"{path.with_suffix(suffixes[0]).name if path.name else 'out' + suffixes[0]}"
        )
    problem = _describe_not_a_directory(path)
    if problem is not None:
        raise ConfigError(f"{option} {path}: {problem}; give the path of a file in a writable directory "
                          f"(e.g. {option} {Path(path.name or 'out').with_suffix(path.suffix or '.out')})")
    return path


def check_output_dir(path: str | os.PathLike[str], option: str = "--output") -> Path:
    """Check, before any work starts, that ``path`` is or can be created as a writable directory; create
    nothing.

    Returns
    -------
    Path
        ``path`` with ``~`` expanded.

    Raises
    ------
    ConfigError
        ``path`` is a file, lies under a file, is a broken link, or the directory (or its nearest existing
        parent) is not writable.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise ConfigError(f"{option} {path}: the directory is not writable; choose another directory")
        return path
    if path.exists():
        raise ConfigError(f"{option} {path} is a file, not a directory; give a directory path (it is created "
                          "when missing)")
    problem = _describe_not_a_directory(path)
    if problem is not None:
        raise ConfigError(f"{option} {path}: {problem}; give a directory path in a writable place")
    return path


def remove_if_no_files(path: str | os.PathLike[str]) -> bool:
    """Remove the directory ``path`` when it holds no file at any depth (only empty directories); return
    whether it was removed. Used to undo the folders a failed command created, never touching a file."""
    path = Path(path)
    if not path.is_dir() or path.is_symlink():
        return False
    for _, _, files in os.walk(path):
        if files:
            return False
    import shutil

    shutil.rmtree(path, ignore_errors=True)
    return not path.exists()


def _make_parents(path: Path) -> list[Path]:
    """Create the missing parent directories of ``path``; return those created, deepest first."""
    created: list[Path] = []
    for parent in reversed(path.parents):
        if not parent.exists():
            parent.mkdir()
            created.append(parent)
    return created[::-1]


def _remove_empty(dirs: list[Path]) -> None:
    for directory in dirs:  # deepest first
        with contextlib.suppress(OSError):
            directory.rmdir()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], newline: str | None = "") -> Iterator[IO[str]]:
    """Open a hidden temporary file next to ``path`` for writing UTF-8 text; rename it over ``path`` when the
    ``with`` block ends without an exception.

    Missing parent directories are created. On any exception (including KeyboardInterrupt) the temporary
    file and the directories created here are removed, the target is left untouched, and the exception
    propagates.

    Parameters
    ----------
    path : path-like
        Target file; an existing file is replaced at the end.
    newline : str or None, default ""
        As :func:`open`; ``""`` writes newlines unchanged (no platform translation).

    Yields
    ------
    text file object
    """
    path = Path(path)
    created = _make_parents(path)
    tmp = _temporary_path(path)
    try:
        with tmp.open("w", encoding="utf-8", newline=newline) as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        _remove_empty(created)
        raise
