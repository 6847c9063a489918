"""Helpers shared by the benchmark scripts in this folder (imported by file location, not installed)."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

__all__ = ["command_line", "cpu_model", "dataset_slug", "load_average"]


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
    """The CPU's "model name" from /proc/cpuinfo (None where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
    except OSError:
        return None
    return names[0] if names else None
