"""Errors that frugaltext raises. Every one names what was wrong, where, and how to fix it.

Each type subclasses :class:`FrugalTextError` and the matching built-in, so callers may catch either
(``except ValueError`` keeps working). The CLI turns any ``FrugalTextError`` into a red message and
exit code 1, without a traceback.
"""

from __future__ import annotations


class FrugalTextError(Exception):
    """Base class of every error frugaltext raises on purpose."""


class DataFormatError(FrugalTextError, ValueError):
    """A data file is malformed: bad JSON/CSV, missing field, empty text, unknown label, bad encoding."""


class DataNotFoundError(FrugalTextError, FileNotFoundError):
    """A data file, directory or embedded dataset name does not exist."""


class ConfigError(FrugalTextError, ValueError):
    """A setting has an invalid value, or an unknown method or option was requested."""


class ModelLoadError(FrugalTextError, ValueError):
    """A saved model directory is missing files or was written by another method."""


class CostMeasurementError(FrugalTextError, RuntimeError):
    """A cost (energy, FLOPs, time) could not be measured as asked."""
