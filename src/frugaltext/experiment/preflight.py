"""Checks ``frugaltext compare`` runs before it creates any file, and the undo of a comparison that fails.

:func:`check_compare` validates everything that can be validated without training: the output directory
(not a file, not under a file, writable), every method name and its resolved settings (the same validator as
training), the ``teacher: auto`` order, the cost-meter settings, ``max_length`` against each encoder's
positions, and the data itself (read and checked in full, with at least two labels in the training split).
Only then does :func:`~frugaltext.experiment.runner.run_compare` create ``config.yaml``, ``compare.log`` and
the run folders.

:func:`undo_on_failure` wraps the comparison: when a :class:`~frugaltext.errors.FrugalTextError` is raised
after files were created (bad input found only while training), it removes what this invocation created, so
the folder does not look like a run. Rows and models of runs that finished (in this invocation or earlier)
are never touched, nor are work folders that hold files (checkpoints to resume from).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from frugaltext.errors import FrugalTextError
from frugaltext.experiment.config import CompareConfig, base_method, resolved_settings

__all__ = ["CheckedCompare", "check_compare", "undo_on_failure"]

#: Entries of a comparison folder that are results of finished runs: never removed by the undo.
_RESULT_FILES = ("results.json", "results.csv")


@dataclass
class CheckedCompare:
    """What :func:`check_compare` found: the loaded data and the state of the output folder before the run.

    Attributes
    ----------
    data : TextClassificationData
        Loaded, checked and limited as the runs use it (``max_*_docs``).
    output_dir : Path
    existed : bool
        The output directory existed before this invocation.
    entries : dict of str to set of str
        Names present before, in the output directory (key ``""``) and in its ``logs``, ``models``,
        ``work`` and ``locks`` folders.
    config_yaml : bytes or None
        The old ``config.yaml`` (restored when a failed run rewrote it).
    """

    data: Any
    output_dir: Path
    existed: bool
    entries: dict[str, set[str]] = field(default_factory=dict)
    config_yaml: bytes | None = None


_SUBFOLDERS = ("", "logs", "models", "work", "locks")


def _snapshot(output_dir: Path) -> dict[str, set[str]]:
    entries: dict[str, set[str]] = {}
    for sub in _SUBFOLDERS:
        folder = output_dir / sub if sub else output_dir
        entries[sub] = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    return entries


def _load_checked_data(config: CompareConfig) -> Any:
    from frugaltext.data import load_data

    data = load_data(
        config.data,
        text_field=config.text_field,
        label_field=config.label_field,
        multi_label=config.multi_label,
        validation_fraction=config.validation_fraction,
        seed=config.data_seed,
        min_train_labels=2,
    )
    if any(n is not None for n in (config.max_train_docs, config.max_validation_docs, config.max_test_docs)):
        data = data.limit(
            config.max_train_docs, config.max_validation_docs, config.max_test_docs, seed=config.data_seed
        )
    return data


def check_compare(config: CompareConfig, order_methods: Callable[..., Any] | None = None) -> CheckedCompare:
    """Validate a comparison before any file is created; return the loaded data and the folder's state.

    Parameters
    ----------
    config : CompareConfig
    order_methods : callable, optional
        :func:`frugaltext.experiment.runner.order_methods`, called as ``order_methods(methods, settings)``
        to check the ``teacher: auto`` order (passed in by the runner: this module does not import it).

    Returns
    -------
    CheckedCompare

    Raises
    ------
    ConfigError
        An output that is a file, lies under a file or is not writable; an unknown method or setting, a bad
        value (wrong type, bool for a number, nan/inf, out of range, unknown choice); a ``teacher: auto``
        method without ``bert``; bad cost settings; ``max_length`` beyond an encoder's positions.
    DataNotFoundError, DataFormatError
        From :func:`frugaltext.data.load_data`, including a training split with a single label.
    """
    from frugaltext.cost.meter import CostSettings
    from frugaltext.fileio import check_output_dir
    from frugaltext.methods.base import get_method_class, replace_settings

    output_dir = check_output_dir(config.output, "--output")
    for method in config.methods:
        get_method_class(base_method(method))
    if order_methods is not None:
        order_methods(config.methods, config.settings)
    replace_settings(CostSettings(), dict(config.cost), where="cost settings")
    for method in config.methods:
        settings = get_method_class(base_method(method))(**resolved_settings(method, config)).settings
        if hasattr(settings, "max_length") and hasattr(settings, "model_name_or_path"):
            from frugaltext.models.encoders import check_settings_max_length

            check_settings_max_length(settings, f"method {method!r}")
    data = _load_checked_data(config)
    config_yaml = output_dir / "config.yaml"
    return CheckedCompare(
        data=data,
        output_dir=output_dir,
        existed=output_dir.is_dir(),
        entries=_snapshot(output_dir),
        config_yaml=config_yaml.read_bytes() if config_yaml.is_file() else None,
    )


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _undo(checked: CheckedCompare) -> None:
    """Remove what this invocation created in ``checked.output_dir`` (see the module docstring)."""
    from frugaltext.fileio import remove_if_no_files

    out = checked.output_dir
    if not out.is_dir():
        return
    before = checked.entries
    finished = any((out / name).exists() for name in _RESULT_FILES)
    work = out / "work"
    if work.is_dir():
        for name in {p.name for p in work.iterdir()} - before["work"]:
            remove_if_no_files(work / name)  # a work folder with files holds checkpoints: kept
    if "work" not in before[""]:
        remove_if_no_files(work)
    if finished:
        return  # a folder with results: the logs and models of the finished runs stay, as does its log
    for sub in ("logs", "models", "locks"):
        folder = out / sub
        if not folder.is_dir():
            continue
        for name in {p.name for p in folder.iterdir()} - before[sub]:
            _remove(folder / name)
        if sub not in before[""]:
            remove_if_no_files(folder)
    for name in ("compare.log", "config.yaml"):
        if name not in before[""]:
            _remove(out / name)
    if checked.config_yaml is not None:
        (out / "config.yaml").write_bytes(checked.config_yaml)
    if not checked.existed:
        remove_if_no_files(out)


@contextlib.contextmanager
def undo_on_failure(checked: CheckedCompare) -> Iterator[None]:
    """Run the comparison; on a :class:`FrugalTextError`, remove what it created (see the module docstring)
    and re-raise."""
    try:
        yield
    except FrugalTextError:
        with contextlib.suppress(OSError):
            _undo(checked)
        raise
