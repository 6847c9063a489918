"""Provenance recorded in every results row: the machine, the package versions and the torch thread count.

Rows measured on different machines or versions are not comparable; these fields say where each one came
from. Nothing here imports torch: :func:`torch_threads` only reads it when a method has imported it.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any

import frugaltext

__all__ = ["frugaltext_version", "machine", "package_version", "torch_threads"]


def machine() -> dict[str, Any]:
    """Describe this machine: ``platform``, ``processor``, ``cpu_model`` (``model name`` in /proc/cpuinfo),
    ``cpu_flags_of_interest`` (the vector, bf16 and int8 units that decide the fast path's speed:
    :func:`frugaltext.fastpath.cpu_flags_of_interest`), ``cpu_count`` and the ``python`` version."""
    from frugaltext.fastpath import cpu_flags_of_interest, cpu_model

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_flags_of_interest": cpu_flags_of_interest(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }


def package_version(name: str) -> str | None:
    """Installed version of the distribution ``name`` (e.g. ``"torch"``), None when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def frugaltext_version() -> str:
    """``frugaltext.__version__``."""
    return frugaltext.__version__


def torch_threads() -> int | None:
    """``torch.get_num_threads()`` when torch is already imported, else None (never imports torch)."""
    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else None
