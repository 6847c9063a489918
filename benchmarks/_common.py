"""Helpers shared by the benchmark scripts in this folder (imported by file location, not installed)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "command_line",
    "cpu_model",
    "dataset_slug",
    "interleaved_schedule",
    "load_average",
    "machine_info",
    "run_interleaved",
]

T = TypeVar("T")


def command_line() -> str:
    """The command line of this run, with the interpreter's path relative to the working directory when it is
    inside it (``.venv/bin/python ...``), so that recorded commands do not carry this machine's paths."""
    exe = sys.executable
    try:
        exe = os.path.relpath(exe) if Path(exe).absolute().is_relative_to(Path.cwd().absolute()) else exe
    except ValueError:
        pass
    return shlex.join([exe, *sys.argv])


def dataset_slug(data: str) -> str:
    """Short name of a dataset argument for file names (``"../shared/data/sst2"`` -> ``"sst2"``).

    Raises
    ------
    ValueError
        If nothing usable is left (empty string or only separators).
    """
    name = Path(str(data).rstrip("/\\")).name
    slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in name).strip("_").lower()
    if not slug:
        raise ValueError(f"cannot derive a dataset name from --data {data!r}; pass --output explicitly")
    return slug


def load_average() -> list[float] | None:
    """1, 5 and 15-minute load averages (None where the OS has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def cpu_model() -> str | None:
    """The CPU's "model name" (:func:`frugaltext.fastpath.cpu_model`, the one reader of /proc/cpuinfo)."""
    from frugaltext.fastpath import cpu_model as read_cpu_model

    return read_cpu_model() or None


def _package_version(name: str) -> str | None:
    """Installed version of the distribution ``name`` (None where it is not installed)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info(**extra: Any) -> dict[str, Any]:
    """The machine a benchmark ran on, for the ``"machine"`` entry of its JSON.

    Keys: ``platform``, ``processor`` (``platform.processor()``, else ``platform.machine()``), ``python``,
    ``cpu_model`` (:func:`cpu_model`), ``cpu_flags_of_interest``
    (:func:`frugaltext.fastpath.cpu_flags_of_interest`: the bf16/int8 units that decide the fast path),
    ``cpu_count``, ``torch_version``, ``transformers_version`` (None where transformers is not installed),
    ``torch_num_threads`` (this process's), ``device`` (``"cpu"``: the scripts here time on CPU) and
    ``load_average`` (:func:`load_average`, now).

    Parameters
    ----------
    **extra
        Further keys, or overrides of the ones above (e.g. ``torch_num_threads`` of rows trained by another
        process, or a script's own ``load_average_start``); they win over the computed values.
    """
    import torch

    from frugaltext.fastpath import cpu_flags_of_interest

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "cpu_flags_of_interest": cpu_flags_of_interest(),
        "cpu_count": os.cpu_count(),
        "torch_version": torch.__version__,
        "transformers_version": _package_version("transformers"),
        "torch_num_threads": torch.get_num_threads(),
        "device": "cpu",
        "load_average": load_average(),
    }
    info.update(extra)
    return info


def interleaved_schedule(names: Sequence[str], repeats: int) -> list[str]:
    """Order in which configurations are timed: ``repeats`` rounds over ``names``, each round rotated by one.

    Rotation puts every name first, middle and last equally often (for ``repeats`` a multiple of
    ``len(names)``), so a slow start or a burst of load from another process does not fall on one name.

    Parameters
    ----------
    names : sequence of str, unique
    repeats : int >= 1

    Returns
    -------
    list of str of length ``repeats * len(names)``; each name occurs ``repeats`` times; round ``r`` (from 0)
    is ``names[r % k:] + names[:r % k]`` with ``k = len(names)``.

    Raises
    ------
    ValueError
        If ``repeats`` < 1, ``names`` is empty or has duplicates.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if not names or len(set(names)) != len(names):
        raise ValueError(f"names must be non-empty and unique, got {list(names)}")
    k = len(names)
    return [names[(r + i) % k] for r in range(repeats) for i in range(k)]


def run_interleaved(measure: Callable[[str], T], names: Sequence[str], repeats: int) -> dict[str, list[T]]:
    """Call ``measure(name)`` ``repeats`` times for every name, in the rotating order of
    :func:`interleaved_schedule`, and collect what it returns.

    Only the order is decided here: warm-up (before this call, or inside ``measure``) and the statistic
    kept (median, min, max) are the caller's, and ``measure`` does its own timing and logging.

    Parameters
    ----------
    measure : callable str -> T
        One timed run of the named configuration; its return value is one sample (a number, or e.g. a dict
        of several numbers measured in the same slot).
    names : sequence of str, unique
    repeats : int >= 1

    Returns
    -------
    dict name -> list of the ``repeats`` samples of that name in the order they were taken; names in the
    order of ``names``.

    Raises
    ------
    ValueError
        As :func:`interleaved_schedule` (nothing is measured then).
    """
    schedule = interleaved_schedule(list(names), repeats)
    samples: dict[str, list[T]] = {name: [] for name in names}
    for name in schedule:
        samples[name].append(measure(name))
    return samples
