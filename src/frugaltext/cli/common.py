"""Helpers shared by the thin command modules: errors, consoles, logging, extra ``--key value`` options.

No command holds logic of its own: each parses its options, calls one library function, prints, and turns a
:class:`~frugaltext.errors.FrugalTextError` into a red message and exit code 1 (no traceback), as typer's
docs do (``docs_src/terminating/tutorial002.py``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import typer
from rich.console import Console

from frugaltext.errors import FrugalTextError

#: Extra ``--key value`` arguments are collected into ``ctx.args`` instead of being rejected by click.
EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}

console = Console()
err_console = Console(stderr=True)


@contextlib.contextmanager
def guard() -> Iterator[None]:
    """Turn a FrugalTextError raised inside the block into a red message on stderr and exit code 1."""
    try:
        yield
    except FrugalTextError as err:
        typer.secho(f"Error: {err}", fg="red", err=True)
        raise typer.Exit(code=1) from None


def extra_options(ctx: typer.Context, typed: bool = False) -> dict[str, Any]:
    """Parse the extra ``--key value`` arguments of a command
    (:func:`frugaltext.experiment.config.parse_overrides`).

    With ``typed``, values are read as YAML scalars ("3" -> 3, "0.5" -> 0.5, "true" -> True), for functions
    that take keyword arguments without a settings dataclass to convert them.
    """
    from frugaltext.experiment.config import parse_overrides

    options = parse_overrides(list(ctx.args))
    if typed:
        import yaml

        for key, value in options.items():
            try:
                parsed = yaml.safe_load(value)
            except yaml.YAMLError:
                continue
            if parsed is None or isinstance(parsed, (bool, int, float)):
                options[key] = parsed
    return options


def progress_enabled() -> bool:
    """Show progress bars: stderr is a terminal and neither ``--quiet`` nor a higher log level is set."""
    return err_console.is_terminal and logging.getLogger("frugaltext").getEffectiveLevel() <= logging.INFO


def _console_handler() -> logging.Handler:
    """A RichHandler on stderr that prints a :class:`FrugalTextError` logged with its traceback (e.g.
    ``log.exception`` in a run) without the traceback: the command prints the error as one line, and the
    traceback stays in the run's log file (the record given to other handlers is left unchanged)."""
    import copy

    from rich.logging import RichHandler

    class _Handler(RichHandler):
        def emit(self, record: logging.LogRecord) -> None:
            info = record.exc_info
            if info and isinstance(info[1], FrugalTextError) and not logging.getLogger(
                "frugaltext"
            ).isEnabledFor(logging.DEBUG):
                record = copy.copy(record)
                record.exc_info, record.exc_text = None, None
            super().emit(record)

    return _Handler(console=err_console, show_path=False, rich_tracebacks=False, markup=False)


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    """Log ``frugaltext`` records to stderr through rich (INFO; DEBUG with verbose; WARNING with quiet).

    Tracebacks of :class:`FrugalTextError` records are left out on the console unless ``verbose``."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    package = logging.getLogger("frugaltext")
    package.setLevel(level)
    if not any(getattr(h, "_frugaltext_cli", False) for h in package.handlers):
        handler = _console_handler()
        handler._frugaltext_cli = True  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter("%(message)s"))
        package.addHandler(handler)
    for handler in package.handlers:
        if getattr(handler, "_frugaltext_cli", False):
            handler.setLevel(level)
