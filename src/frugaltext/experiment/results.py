"""The results of a comparison: ``results.json`` (every field) and ``results.csv`` (flat), one row per run.

The one module that reads and writes result rows; the runner (:mod:`frugaltext.experiment.runner`), the
Python API (:mod:`frugaltext.api`), the reports (:mod:`frugaltext.reports`) and the command line all use it.

Both files are written atomically (temporary file, then ``os.replace``), so an interrupted comparison keeps
every finished run. Several processes may share one output directory (``--first-seed 1 --seeds 1`` in one,
``--first-seed 2 --seeds 1`` in another): rows are added under a file lock after re-reading ``results.json``
(:func:`add_result_row`), so no process loses the rows of another; each run is trained under its own lock
(:func:`run_lock`), so no two processes train the same run at once.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frugaltext.errors import DataFormatError

__all__ = [
    "LOCKS_DIR",
    "RESULTS_CSV",
    "RESULTS_JSON",
    "CompareResult",
    "HashConflict",
    "add_result_row",
    "config_hash_conflicts",
    "lock_holder",
    "read_results",
    "results_lock",
    "run_lock",
    "write_results",
]

#: File names of the results inside an output directory.
RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"


@dataclass
class CompareResult:
    """What :func:`run_compare` did and wrote.

    Attributes
    ----------
    output_dir : Path
    rows : list of dict
        Every row of ``results.json`` after the run (including rows of earlier runs).
    ran, skipped : list of str
        ``"<method>-seed<k>"`` of the runs trained now / skipped because they were already done.
    table_markdown : str
        The content of ``table.md``.
    paths : dict of str to Path
        ``results_json``, ``results_csv``, ``config``, ``table``, ``pareto_png``, ``pareto_svg``, ``log``.
    table : frugaltext.reports.table.ResultsTable
        The table behind ``table.md`` (for printing with :func:`frugaltext.reports.table.render_rich`).
    selection : frugaltext.selection.Selection or None
        The model chosen at the end of the run when the configuration has a ``select`` block.
    """

    output_dir: Path
    rows: list[dict[str, Any]]
    ran: list[str]
    skipped: list[str]
    table_markdown: str
    paths: dict[str, Path]
    table: Any = None
    selection: Any = None


def read_results(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read the rows of a ``results.json`` (an empty list when the file does not exist).

    Raises
    ------
    DataFormatError
        If the file is not a JSON list of objects.
    """
    path = Path(path)
    if not path.exists():
        return []
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataFormatError(
            f"{path}, line {err.lineno}: invalid JSON ({err.msg}); delete or repair the file "
            "(every finished run is one object of the list)"
        ) from err
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise DataFormatError(f"{path}: expected a JSON list of result rows (objects)")
    return rows


def write_results(rows: Sequence[Mapping[str, Any]], output_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``results.json`` and ``results.csv`` atomically into ``output_dir``.

    ``results.json`` keeps every field. ``results.csv`` is flat: nested dicts become ``a.b`` columns, lists
    JSON text, and ``per_class`` is left out. Returns the two paths.
    """
    from frugaltext.fileio import atomic_write_text

    output_dir = Path(output_dir)
    json_path, csv_path = output_dir / RESULTS_JSON, output_dir / RESULTS_CSV
    atomic_write_text(json_path, json.dumps(list(rows), indent=2, default=_json_default) + "\n")
    flat_rows = [_flatten({k: v for k, v in row.items() if k != "per_class"}) for row in rows]
    columns: list[str] = []
    for row in flat_rows:
        columns.extend(k for k in row if k not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in flat_rows:
        writer.writerow({k: _csv_cell(v) for k, v in row.items()})
    atomic_write_text(csv_path, buffer.getvalue())
    return json_path, csv_path


@contextlib.contextmanager
def results_lock(output_dir: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on ``<output_dir>/results.json.lock`` for a read-modify-write of the results.

    Several ``compare`` processes may share one output directory (say one per seed, to use every core or
    GPU): each re-reads ``results.json`` under this lock before it adds its row, so no process overwrites the
    rows another one wrote in the meantime. POSIX ``fcntl.flock``; where ``fcntl`` is missing (Windows) the
    lock is a no-op and one process per output directory is the rule.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path = Path(output_dir) / (RESULTS_JSON + ".lock")
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


#: Folder of the per-run lock files inside an output directory.
LOCKS_DIR = "locks"


@contextlib.contextmanager
def run_lock(output_dir: str | os.PathLike[str], run_name: str, blocking: bool = False) -> Iterator[bool]:
    """Hold the lock of one run (``<output_dir>/locks/<run_name>.lock``) while it is checked and trained.

    Two ``compare`` processes sharing an output directory never train the same run at once: the one that
    gets the lock trains, the other is told so and moves on. POSIX ``fcntl.flock``, exclusive: the kernel
    releases it when its holder exits or is killed, so a dead process never blocks a later one (the lock
    file itself stays; its content, the holder's ``pid`` and ``host``, is informative only). Where
    ``fcntl`` is missing (Windows) every lock is granted and one process per output directory is the rule.

    Parameters
    ----------
    output_dir : path-like
        The comparison's output directory (``locks/`` is created in it).
    run_name : str
        ``"<method>-seed<k>"``.
    blocking : bool, default False
        Wait for the holder to finish instead of giving up at once.

    Yields
    ------
    bool
        True when this process holds the lock; False (only when not ``blocking``) when another process does.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield True
        return
    import socket

    directory = Path(output_dir) / LOCKS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f"{run_name}.lock", "a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}) + "\n")
            handle.flush()
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def lock_holder(output_dir: str | os.PathLike[str], run_name: str) -> str:
    """``"pid N on HOST"`` of the last holder of a run lock (for messages), or ``"another process"``."""
    try:
        info = json.loads((Path(output_dir) / LOCKS_DIR / f"{run_name}.lock").read_text(encoding="utf-8"))
        return f"pid {int(info['pid'])} on {info['host']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def add_result_row(row: Mapping[str, Any], output_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Put ``row`` into ``<output_dir>/results.json`` (replacing the row of the same method and seed), under
    :func:`results_lock`, reading the file afresh so that rows written by other processes are kept.

    Returns the rows now in the file. Raises :class:`DataFormatError` if the file is corrupt.
    """
    output_dir = Path(output_dir)
    with results_lock(output_dir):
        rows = read_results(output_dir / RESULTS_JSON)
        rows = [
            r for r in rows if not (r.get("method") == row.get("method") and r.get("seed") == row.get("seed"))
        ]
        rows.append(dict(row))
        write_results(rows, output_dir)
    return rows


@dataclass(frozen=True)
class HashConflict:
    """A row whose method ran with other settings or data than an earlier row of that method
    (:func:`config_hash_conflicts`).

    Attributes
    ----------
    method, seed:
        The row's method and seed.
    source, config_hash:
        Where the row was read (a file or folder name, for messages) and its ``config_hash``.
    first_source, first_config_hash:
        Where the method's first row was read and its ``config_hash``.
    """

    method: str
    seed: Any
    source: str
    config_hash: str | None
    first_source: str
    first_config_hash: str | None

    def message(self) -> str:
        """``"<source>: bert seed 1 has config hash X, but <first source> has Y (other ...)"``."""
        return (f"{self.source}: {self.method} seed {self.seed} has config hash {self.config_hash}, but "
                f"{self.first_source} has {self.first_config_hash} (other settings or data)")


def config_hash_conflicts(sources: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]) -> list[HashConflict]:
    """The rows that may not be merged with the rows before them: one method, another ``config_hash``.

    Rows of one comparison split over several output folders or sessions (seeds or rows run apart, then
    summarised together) must share one configuration hash per method
    (:func:`~frugaltext.experiment.config.config_hash`: the data identity and the method's resolved
    settings); a seed trained with other settings or on other documents would otherwise be averaged as if
    it were the same row. Used by the summaries that merge such rows (``benchmarks/summary.py``,
    ``benchmarks/topicbert_table3.py --add-results``).

    Parameters
    ----------
    sources:
        ``(name, rows)`` pairs in order; ``name`` (a file or folder, for messages) is where ``rows`` were
        read. A row without ``config_hash`` counts as hash ``None``.

    Returns
    -------
    list[HashConflict]
        Every row whose ``config_hash`` differs from the first row of its method in ``sources`` order,
        in that order; empty when the rows may be merged. Nothing is raised: the callers word the error
        and its fix.
    """
    first: dict[str, tuple[Any, str]] = {}
    conflicts = []
    for name, rows in sources:
        for row in rows:
            method, chash = str(row.get("method")), row.get("config_hash")
            known = first.setdefault(method, (chash, name))
            if known[0] != chash:
                conflicts.append(HashConflict(method, row.get("seed"), name, chash, known[1], known[0]))
    return conflicts


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def _flatten(row: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value), default=_json_default)
    return value
