"""Helpers shared by the benchmark scripts in this folder (imported by file location, not installed)."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

__all__ = ["command_line"]


def command_line() -> str:
    """This run's command line, with the interpreter's path relative to the working directory when it is
    inside it (``.venv/bin/python ...``), so that recorded commands do not carry this machine's paths."""
    exe = sys.executable
    try:
        exe = os.path.relpath(exe) if Path(exe).absolute().is_relative_to(Path.cwd().absolute()) else exe
    except ValueError:
        pass
    return shlex.join([exe, *sys.argv])
