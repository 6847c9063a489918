"""frugaltext: energy-efficient document classification, with every method's cost measured.

The Python API mirrors the command line and is imported lazily, so ``import frugaltext`` stays fast::

    import frugaltext

    frugaltext.compare(data="r8", methods=["tfidf-svm", "bert"], output="runs/demo")
    frugaltext.train(data="r8", method="tfidf-svm", output="runs/svm")
    frugaltext.evaluate(model="runs/svm", data="r8")
    frugaltext.predict(model="runs/svm", texts=["oil prices rose"])
    frugaltext.select("runs/demo", min_retention=99, objective="energy")   # -> runs/demo/selected/
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "compare": ("frugaltext.api", "compare"),
    "train": ("frugaltext.api", "train"),
    "evaluate": ("frugaltext.api", "evaluate"),
    "predict": ("frugaltext.api", "predict"),
    "CompareConfig": ("frugaltext.experiment.config", "CompareConfig"),
    "CompareResult": ("frugaltext.experiment.results", "CompareResult"),
    "resolve_config": ("frugaltext.experiment.config", "resolve_config"),
    "run_compare": ("frugaltext.experiment.runner", "run_compare"),
    "build_reports": ("frugaltext.reports", "build_reports"),
    "select": ("frugaltext.selection", "select"),
    "load_data": ("frugaltext.data", "load_data"),
    "load_model": ("frugaltext.methods", "load_model"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    """Import the public API on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'frugaltext' has no attribute {name!r}")
    import importlib

    module, attr = _LAZY[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
