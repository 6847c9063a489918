"""``frugaltext compare``: train and evaluate several methods over several seeds, all costs measured alike.

The library side of the main job. :func:`resolve_config` builds a :class:`CompareConfig` from a preset, a
YAML file and ``--key value`` overrides (in that order of precedence, the later winning); :func:`run_compare`
then, for every method and seed,

1. gives the run a fresh :class:`~frugaltext.cost.meter.CostMeter`;
2. trains inside ``meter.track("train")``;
3. predicts the test split (or the validation split when the data has no test split; the row and the table
   say so) and scores it with :func:`frugaltext.metrics.classification_metrics`;
4. measures the model (parameters, FLOPs per document) and inference (latency at batch 1, throughput at
   batch 32) on the evaluation documents;
5. saves the model to ``<output>/models/<method>-seed<k>/`` and the run's log to
   ``<output>/logs/<method>-seed<k>.log``;
6. appends one row to ``results.json`` and ``results.csv`` (written atomically: temporary file, then
   ``os.replace``), so an interrupted comparison keeps every finished run.

Several processes may share one output directory (``--first-seed 1 --seeds 1`` in one, ``--first-seed 2
--seeds 1`` in another): rows are added under a file lock after re-reading ``results.json``
(:func:`add_result_row`), and a run another process has finished is skipped. Two processes given the same
method and seed both train it, and the later row wins.

Running again into the same output directory resumes: a run whose method, seed and configuration hash (data
source and options plus the method's resolved settings) are already in ``results.json`` is skipped. A row
with the same method and seed but another hash (settings changed) is re-run and replaced.

At the end the reports (``table.md``, ``pareto.png``, ``pareto.svg``) are rebuilt from ``results.json`` by
:func:`frugaltext.reports.build_reports`, so they can be remade without training (``frugaltext report DIR``).

Presets (``src/frugaltext/presets/<name>.yaml``) and config files have the same layout: the fields of
:class:`CompareConfig` at the top level, method settings under ``settings: {<method>: {<field>: value}}``
and cost-meter settings (:class:`~frugaltext.cost.meter.CostSettings`) under ``cost:``. On the command line
the same keys are written ``--max-train-docs 500``, ``--bert.epochs 3`` and ``--cost.latency-n-docs 16``.

A method may be listed several times under different settings as *variants*, ``<method>@<label>``: the
variant ``topicbert@p2`` runs ``topicbert`` with the settings of ``topicbert`` updated by those of
``topicbert@p2`` (``settings: {topicbert@p2: {n_partitions: 2}}``); its rows, model folders, table rows and
plot points carry the variant name. This is how one comparison holds TopicBERT-N, N/2, N/4 and N/8 (Table 3
of Chaudhary et al. 2020) or ``bert`` with fixed and with dynamic padding.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import hashlib
import io
import json
import logging
import os
import platform
import shutil
import sys
import time
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from frugaltext.errors import ConfigError, DataFormatError, DataNotFoundError

logger = logging.getLogger("frugaltext.compare")

__all__ = [
    "CompareConfig",
    "CompareResult",
    "base_method",
    "method_settings",
    "PRESETS",
    "config_hash",
    "load_preset",
    "order_methods",
    "parse_overrides",
    "read_results",
    "resolve_config",
    "run_compare",
    "write_results",
    "add_result_row",
    "results_lock",
]

#: Presets shipped in ``frugaltext/presets``.
PRESETS = ("quick", "paper", "table3")

#: Methods whose ``teacher`` setting may be ``"auto"``: the ``bert`` model of the same seed in the same run.
TEACHER_METHOD = "bert"

#: Separator between a method and a variant label: ``topicbert@p2``.
VARIANT_SEPARATOR = "@"

_RESULTS_JSON = "results.json"
_RESULTS_CSV = "results.csv"


# ------------------------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompareConfig:
    """Everything that defines a comparison. Build it with :func:`resolve_config` to get presets and checks.

    Parameters
    ----------
    data : str, default "r8"
        Embedded dataset name or path (see :func:`frugaltext.data.load_data`).
    methods : tuple of str, default ("tfidf-lr", "tfidf-svm", "bert")
        Registered method names, run in this order (``bert`` is moved first when a method needs it as a
        teacher).
    seeds : int, default 1
        Number of seeds per method; the seeds are ``first_seed, first_seed + 1, ...``.
    first_seed : int, default 0
    output : str, default "runs/latest"
        Output directory.
    text_field, label_field, multi_label, validation_fraction, data_seed
        Passed to :func:`frugaltext.data.load_data` (``data_seed`` is its ``seed``: the carve of a missing
        validation split and the document limits below use it, so every method sees the same documents).
    max_train_docs, max_validation_docs, max_test_docs : int or None
        Keep at most this many documents per split (stratified, see
        :meth:`~frugaltext.data.dataset.TextClassificationData.limit`); None keeps the whole split.
    reference : str, default "bert"
        Method whose mean macro-F1 is the 100 % of the retention column.
    settings : dict of str to dict
        Method settings, ``{method name: {field: value}}``; fields of the method's ``Settings`` dataclass.
    cost : dict
        Fields of :class:`~frugaltext.cost.meter.CostSettings` (e.g. ``latency_n_docs``).
    keep_checkpoints : bool, default False
        Keep the per-run work directories (folder ``work`` of the output, one ``<method>-seed<k>`` each:
        trainer checkpoints) after a run has finished; by default they are deleted once the model is saved.
    preset : str or None
        Name of the preset the configuration started from (recorded in ``config.yaml``).

    Raises
    ------
    ConfigError
        If a value has the wrong type or range (checked in ``__post_init__``).
    """

    data: str = "r8"
    methods: tuple[str, ...] = ("tfidf-lr", "tfidf-svm", "bert")
    seeds: int = 1
    first_seed: int = 0
    output: str = "runs/latest"
    text_field: str = "text"
    label_field: str | None = None
    multi_label: bool | None = None
    validation_fraction: float = 0.1
    data_seed: int = 13
    max_train_docs: int | None = None
    max_validation_docs: int | None = None
    max_test_docs: int | None = None
    reference: str = "bert"
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)
    keep_checkpoints: bool = False
    preset: str | None = None

    def __post_init__(self) -> None:
        methods = self.methods
        if isinstance(methods, str):
            methods = _split_list(methods)
        if (
            not isinstance(methods, Sequence)
            or not methods
            or not all(isinstance(m, str) and m for m in methods)
        ):
            raise ConfigError(
                f"compare: methods must be a non-empty list of method names, got {self.methods!r}"
            )
        if len(set(methods)) != len(methods):
            raise ConfigError(f"compare: methods lists a method twice: {list(methods)}")
        for name in methods:
            _check_variant_name(name)
        object.__setattr__(self, "methods", tuple(methods))
        for name in ("seeds",):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"compare: {name} must be an integer >= 1, got {value!r}")
        if isinstance(self.first_seed, bool) or not isinstance(self.first_seed, int) or self.first_seed < 0:
            raise ConfigError(f"compare: first_seed must be an integer >= 0, got {self.first_seed!r}")
        for name in ("max_train_docs", "max_validation_docs", "max_test_docs"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"compare: {name} must be a positive integer or null, got {value!r}")
        if not isinstance(self.data, str) or not self.data:
            raise ConfigError(f"compare: data must be a dataset name or path, got {self.data!r}")
        if not isinstance(self.output, str) or not self.output:
            raise ConfigError(f"compare: output must be a directory path, got {self.output!r}")
        if not isinstance(self.settings, Mapping) or not all(
            isinstance(v, Mapping) for v in self.settings.values()
        ):
            raise ConfigError(
                "compare: settings must map method names to {setting: value} mappings, e.g. "
                "settings: {bert: {epochs: 1}}"
            )
        if not isinstance(self.cost, Mapping):
            raise ConfigError(
                "compare: cost must be a mapping of CostSettings fields, e.g. cost: {latency_n_docs: 16}"
            )
        if self.multi_label is not None and not isinstance(self.multi_label, bool):
            raise ConfigError(f"compare: multi_label must be true, false or null, got {self.multi_label!r}")

    @property
    def seed_values(self) -> list[int]:
        """The seeds that are run: ``[first_seed, ..., first_seed + seeds - 1]``."""
        return list(range(self.first_seed, self.first_seed + self.seeds))

    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML-able dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["methods"] = list(self.methods)
        return out

    def data_identity(self) -> dict[str, Any]:
        """Return what defines the documents every method sees (part of each run's configuration hash)."""
        source = self.data
        if not _is_embedded(source) and Path(source).exists():
            source = str(Path(source).resolve())
        return {
            "source": source,
            "text_field": self.text_field,
            "label_field": self.label_field,
            "multi_label": self.multi_label,
            "validation_fraction": self.validation_fraction,
            "data_seed": self.data_seed,
            "max_train_docs": self.max_train_docs,
            "max_validation_docs": self.max_validation_docs,
            "max_test_docs": self.max_test_docs,
        }


_FIELD_KINDS: dict[str, str] = {
    "data": "str",
    "methods": "list",
    "seeds": "int",
    "first_seed": "int",
    "output": "str",
    "text_field": "str",
    "label_field": "str?",
    "multi_label": "bool?",
    "validation_fraction": "float",
    "data_seed": "int",
    "max_train_docs": "int?",
    "max_validation_docs": "int?",
    "max_test_docs": "int?",
    "reference": "str",
    "keep_checkpoints": "bool",
    "preset": "str?",
}
_NESTED = ("settings", "cost")


def _is_embedded(name: str) -> bool:
    from frugaltext.data import embedded_datasets

    return name in {d["name"] for d in embedded_datasets()}


def _split_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


_NULLS = {"none", "null", "~", ""}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _coerce_field(name: str, value: Any, where: str) -> Any:
    """Convert a CLI string (or YAML value) to the type of the CompareConfig field ``name``."""
    kind = _FIELD_KINDS[name]
    optional = kind.endswith("?")
    kind = kind.rstrip("?")
    if optional and (value is None or (isinstance(value, str) and value.strip().lower() in _NULLS)):
        return None
    try:
        if kind == "list":
            if isinstance(value, str):
                return _split_list(value)
            if isinstance(value, (list, tuple)):
                return [str(v) for v in value]
            raise ValueError(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                return value.strip().lower() in _TRUE
            raise ValueError(value)
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError(value)
            if isinstance(value, int):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            return int(str(value).strip())
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        return str(value)
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"{where}: {name} must be {_KIND_WORDS[kind]}{' or null' if optional else ''}, got {value!r}"
        ) from err


_KIND_WORDS = {
    "list": "a comma-separated list",
    "bool": "true or false",
    "int": "an integer",
    "float": "a number",
    "str": "a string",
}


def _normalize_key(key: str) -> str:
    """Turn dashes into underscores in a setting name, but not in a method name before the dot.

    ``max-train-docs`` -> ``max_train_docs``; ``tfidf-lr.max-iter`` -> ``tfidf-lr.max_iter``.
    """
    scope, dot, name = key.partition(".")
    return f"{scope}.{name.replace('-', '_')}" if dot else key.replace("-", "_")


def parse_overrides(args: Sequence[str]) -> dict[str, Any]:
    """Parse ``--key value`` / ``--key=value`` tokens (the extra CLI arguments) into ``{key: value}``.

    Dashes in keys become underscores (``--max-train-docs`` -> ``max_train_docs``,
    ``--bert.max-length`` -> ``bert.max_length``). A key followed by another ``--key`` or by nothing is a
    flag and gets the value ``"true"`` (``--multi-label``). Values stay strings; :func:`resolve_config`
    converts them to each setting's type.

    Parameters
    ----------
    args : sequence of str
        E.g. ``["--bert.epochs", "3", "--max-train-docs=500", "--multi-label"]``.

    Returns
    -------
    dict of str to str

    Raises
    ------
    ConfigError
        For a token that is not an option (a stray value), or an empty key.
    """
    out: dict[str, Any] = {}
    tokens = list(args)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--") or token == "--":
            raise ConfigError(
                f"unexpected argument {token!r}; settings are written --key value, e.g. "
                "--bert.epochs 3 or --max-train-docs 500"
            )
        key, eq, value = token[2:].partition("=")
        if not eq:
            if i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
                value = tokens[i + 1]
                i += 1
            else:
                value = "true"
        key = _normalize_key(key.strip())
        if not key or key.startswith(".") or key.endswith("."):
            raise ConfigError(f"malformed option {token!r}; write --key value or --method.key value")
        out[key] = value
        i += 1
    return out


def load_preset(name: str) -> dict[str, Any]:
    """Read the packaged preset ``name`` (``quick`` or ``paper``) as a dict.

    Raises
    ------
    ConfigError
        If no preset has that name.
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; available presets: {', '.join(PRESETS)}")
    text = resources.files("frugaltext").joinpath("presets", f"{name}.yaml").read_text(encoding="utf-8")
    data = _parse_yaml(text, f"preset {name}.yaml")
    data["preset"] = name
    return data


def _parse_yaml(text: str, where: str) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{where}{line}: invalid YAML ({getattr(err, 'problem', err)}); fix the file"
        ) from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where}: expected a mapping of settings at the top level, got {type(data).__name__}"
        )
    return data


def _read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"config file {path} does not exist; pass an existing YAML file to --config")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8"
        ) from err
    return _parse_yaml(text, str(path))


def _merge_layer(base: dict[str, Any], layer: Mapping[str, Any], where: str) -> None:
    """Merge one configuration layer (preset, file) into ``base`` in place, checking the keys."""
    for key, value in layer.items():
        key = str(key).replace("-", "_")
        if key == "settings":
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: settings must map method names to mappings, got {value!r}")
            for method, fields in value.items():
                if fields is None:
                    continue
                if not isinstance(fields, Mapping):
                    raise ConfigError(
                        f"{where}: settings.{method} must be a mapping of setting: value, got {fields!r}"
                    )
                target = base["settings"].setdefault(str(method), {})
                for fk, fv in fields.items():
                    target[str(fk).replace("-", "_")] = fv
        elif key == "cost":
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: cost must be a mapping of CostSettings fields, got {value!r}")
            for fk, fv in value.items():
                base["cost"][str(fk).replace("-", "_")] = fv
        elif key in _FIELD_KINDS:
            base[key] = _coerce_field(key, value, where)
        else:
            raise ConfigError(
                f"{where}: unknown setting {key!r}; valid keys: "
                f"{', '.join(sorted([*_FIELD_KINDS, *_NESTED]))} "
                "(method settings go under settings: {<method>: {...}}, cost-meter settings under cost:)"
            )


def resolve_config(
    preset: str | None = None,
    config_file: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> CompareConfig:
    """Build and check a :class:`CompareConfig`: preset < YAML config file < overrides.

    Parameters
    ----------
    preset : {"quick", "paper"} or None
        None uses the config file's ``preset`` key, else ``"quick"``.
    config_file : path, optional
        YAML file with the same layout as a preset.
    overrides : mapping, optional
        Flat keys as parsed by :func:`parse_overrides` (values may be strings or typed values):
        ``max_train_docs``, ``methods`` ... for compare fields, ``<method>.<field>`` for method settings,
        ``cost.<field>`` for cost settings.

    Returns
    -------
    CompareConfig
        With every method setting converted to its field's type and checked against the method's
        ``Settings`` dataclass, and the cost settings checked against ``CostSettings``.

    Raises
    ------
    ConfigError
        For an unknown preset, key, method, method setting or cost setting (the message lists the valid
        ones), or a value that does not convert.
    DataNotFoundError
        If ``config_file`` does not exist.
    """
    file_layer = _read_config_file(config_file) if config_file is not None else {}
    chosen = preset or file_layer.get("preset") or "quick"
    merged: dict[str, Any] = {"settings": {}, "cost": {}}
    _merge_layer(merged, load_preset(str(chosen)), f"preset {chosen}.yaml")
    if config_file is not None:
        _merge_layer(merged, file_layer, str(config_file))
    merged["preset"] = str(chosen)
    for key, value in (overrides or {}).items():
        key = _normalize_key(str(key))
        if "." in key:
            scope, _, name = key.partition(".")
            if not name or "." in name:
                raise ConfigError(f"option --{key}: write --<method>.<setting> value, e.g. --bert.epochs 3")
            if scope == "cost":
                merged["cost"][name] = value
            else:
                merged["settings"].setdefault(scope, {})[name] = value
        elif key in _FIELD_KINDS:
            merged[key] = _coerce_field(key, value, f"option --{key.replace('_', '-')}")
        else:
            valid = ", ".join(f"--{k.replace('_', '-')}" for k in sorted(_FIELD_KINDS) if k != "preset")
            raise ConfigError(
                f"unknown option --{key.replace('_', '-')}; compare options: {valid}; method settings are "
                "written "
                "--<method>.<setting> (e.g. --bert.epochs 3), cost settings --cost.<setting>"
            )
    merged["settings"] = _check_method_settings(merged["settings"])
    merged["cost"] = _check_cost_settings(merged["cost"])
    return CompareConfig(**merged)


def _coerce_setting(value: Any, default: Any) -> Any:
    """Turn a CLI string into a typed value for a settings field whose default is ``default``."""
    if not isinstance(value, str) or isinstance(default, str):
        return value
    if default is None:
        import yaml

        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        return parsed if parsed is None or isinstance(parsed, (int, float, bool)) else value
    return value


def base_method(name: str) -> str:
    """The registered method of a method or variant name: ``"topicbert@p2"`` -> ``"topicbert"``."""
    return name.split(VARIANT_SEPARATOR, 1)[0]


def method_settings(name: str, settings: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Configured settings of a method or variant: the base method's, updated by the variant's own.

    >>> method_settings("topicbert@p2", {"topicbert": {"epochs": 1}, "topicbert@p2": {"n_partitions": 2}})
    {'epochs': 1, 'n_partitions': 2}
    """
    merged = dict(settings.get(base_method(name), {}))
    if name != base_method(name):
        merged.update(settings.get(name, {}))
    return merged


def _check_variant_name(name: str) -> None:
    base, sep, label = name.partition(VARIANT_SEPARATOR)
    if sep and (not base or not label or VARIANT_SEPARATOR in label
                or not all(c.isalnum() or c in "-_." for c in label)):
        raise ConfigError(
            f"compare: bad method variant {name!r}: write <method>@<label> with one '@' and a label of "
            "letters, digits, '-', '_' or '.', e.g. topicbert@p2"
        )


def _check_method_settings(settings: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    from frugaltext.methods.base import available_methods, get_method_class, replace_settings

    out: dict[str, dict[str, Any]] = {}
    for method, fields in settings.items():
        _check_variant_name(method)
        if base_method(method) not in available_methods():
            raise ConfigError(
                f"settings for unknown method {method!r}; available methods: {', '.join(available_methods())}"
            )
        cls = get_method_class(base_method(method))
        defaults = cls.Settings()
        typed = {}
        for key, value in fields.items():
            key = key.replace("-", "_")
            default = getattr(defaults, key, None)
            typed[key] = _coerce_setting(value, default)
        checked = replace_settings(defaults, typed, where=f"method {method!r}")  # unknown keys raise here
        out[method] = {k: _plain(getattr(checked, k)) for k in typed}
    return out


def _check_cost_settings(cost: Mapping[str, Any]) -> dict[str, Any]:
    from frugaltext.cost.meter import CostSettings
    from frugaltext.methods.base import replace_settings

    defaults = CostSettings()
    typed = {
        k.replace("-", "_"): _coerce_setting(v, getattr(defaults, k.replace("-", "_"), None))
        for k, v in cost.items()
    }
    checked = replace_settings(defaults, typed, where="cost settings")
    return {k: _plain(getattr(checked, k)) for k in typed}


def _plain(value: Any) -> Any:
    """Return a YAML/JSON-friendly copy (tuples -> lists)."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


# ------------------------------------------------------------------------------------------------------------
# Running
# ------------------------------------------------------------------------------------------------------------


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
    """

    output_dir: Path
    rows: list[dict[str, Any]]
    ran: list[str]
    skipped: list[str]
    table_markdown: str
    paths: dict[str, Path]
    table: Any = None


def order_methods(methods: Sequence[str], settings: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Run order: as given, but ``bert`` first when another method's ``teacher`` is ``"auto"``.

    Parameters
    ----------
    methods : sequence of str
    settings : mapping
        Resolved settings per method (``teacher`` is read from the method's ``Settings`` defaults when not
        overridden).

    Raises
    ------
    ConfigError
        If a method needs the ``bert`` teacher but ``bert`` is not among ``methods``.
    """
    needing = [m for m in methods if m != TEACHER_METHOD and _teacher_setting(m, settings) == "auto"]
    if not needing:
        return list(methods)
    if TEACHER_METHOD not in methods:
        raise ConfigError(
            f"{', '.join(needing)} {'uses' if len(needing) == 1 else 'use'} teacher 'auto' "
            f"(the {TEACHER_METHOD} model trained in the same run), "
            f"but {TEACHER_METHOD!r} is not among the methods; add it "
            f"(--methods {TEACHER_METHOD},{','.join(methods)}) "
            f"or give a saved model: --{needing[0]}.teacher /path/to/model"
        )
    return [TEACHER_METHOD, *[m for m in methods if m != TEACHER_METHOD]]


def _teacher_setting(method: str, settings: Mapping[str, Mapping[str, Any]]) -> Any:
    configured = method_settings(method, settings)
    if "teacher" in configured:
        return configured["teacher"]
    from frugaltext.methods.base import get_method_class

    return getattr(get_method_class(base_method(method)).Settings(), "teacher", None)


#: Settings introduced after the first results were stored, with the value that means "as before"
#: (``encoder_layers``: keep every layer, added with the Table 3 small-encoder row).
NEUTRAL_NEW_SETTINGS: dict[str, Any] = {"encoder_layers": None}


def config_hash(data_identity: Mapping[str, Any], method: str, settings: Mapping[str, Any]) -> str:
    """Short SHA-256 (16 hex digits) of the data identity, the method name and its full resolved settings.

    Two runs with the same hash (and seed) train the same model on the same documents; ``run_compare``
    skips such a run when resuming. Settings added to a method after rows were written
    (:data:`NEUTRAL_NEW_SETTINGS`) are left out of the hash while they hold the default that reproduces the
    old behaviour, so adding a setting does not invalidate finished runs.
    """
    settings = {k: v for k, v in settings.items()
                if not (k in NEUTRAL_NEW_SETTINGS and v == NEUTRAL_NEW_SETTINGS[k])}
    payload = json.dumps(
        {"data": dict(data_identity), "method": method, "settings": settings},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


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
    from frugaltext.methods.base import atomic_write_text

    output_dir = Path(output_dir)
    json_path, csv_path = output_dir / _RESULTS_JSON, output_dir / _RESULTS_CSV
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
    path = Path(output_dir) / (_RESULTS_JSON + ".lock")
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def add_result_row(row: Mapping[str, Any], output_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Put ``row`` into ``<output_dir>/results.json`` (replacing the row of the same method and seed), under
    :func:`results_lock`, reading the file afresh so that rows written by other processes are kept.

    Returns the rows now in the file. Raises :class:`DataFormatError` if the file is corrupt.
    """
    output_dir = Path(output_dir)
    with results_lock(output_dir):
        rows = read_results(output_dir / _RESULTS_JSON)
        rows = [
            r for r in rows if not (r.get("method") == row.get("method") and r.get("seed") == row.get("seed"))
        ]
        rows.append(dict(row))
        write_results(rows, output_dir)
    return rows


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


def _machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _frugaltext_version() -> str:
    import frugaltext

    return frugaltext.__version__


def _torch_threads() -> int | None:
    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else None


def _labels_for_run(data: Any) -> tuple[Any, str]:
    if data.test is not None:
        return data.test, "test"
    return data.validation, "validation"


class _RunLog:
    """Log to a file for the duration of a ``with`` block.

    A ``logging.FileHandler`` on the root logger, with the ``frugaltext`` logger lowered to INFO so that its
    records reach the file. :meth:`detail` writes to the file only (long settings and cost dumps that would
    clutter the console).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handler: logging.Handler | None = None
        self._old_level = logging.NOTSET

    def __enter__(self) -> _RunLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handler = logging.FileHandler(self.path, mode="a", encoding="utf-8")
        self.handler.setLevel(logging.INFO)
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(self.handler)
        package = logging.getLogger("frugaltext")
        self._old_level = package.level
        if package.getEffectiveLevel() > logging.INFO:
            package.setLevel(logging.INFO)
        return self

    def detail(self, message: str, *args: Any) -> None:
        """Write an INFO record to this log file only."""
        if self.handler is not None:
            record = logging.LogRecord("frugaltext.compare", logging.INFO, __file__, 0, message, args, None)
            self.handler.handle(record)

    def __exit__(self, *exc: Any) -> None:
        logging.getLogger("frugaltext").setLevel(self._old_level)
        if self.handler is not None:
            logging.getLogger().removeHandler(self.handler)
            self.handler.close()


def _load_data(config: CompareConfig) -> Any:
    from frugaltext.data import load_data

    data = load_data(
        config.data,
        text_field=config.text_field,
        label_field=config.label_field,
        multi_label=config.multi_label,
        validation_fraction=config.validation_fraction,
        seed=config.data_seed,
    )
    if any(n is not None for n in (config.max_train_docs, config.max_validation_docs, config.max_test_docs)):
        data = data.limit(
            config.max_train_docs, config.max_validation_docs, config.max_test_docs, seed=config.data_seed
        )
    return data


def _resolved_settings(method: str, config: CompareConfig) -> dict[str, Any]:
    """Full settings of ``method`` (defaults + configured values) as a plain dict."""
    from frugaltext.methods.base import get_method_class, replace_settings

    cls = get_method_class(base_method(method))
    settings = replace_settings(
        cls.Settings(), method_settings(method, config.settings), where=f"method {method!r}"
    )
    return {k: _plain(v) for k, v in dataclasses.asdict(settings).items()}


def run_compare(config: CompareConfig, progress: bool = True) -> CompareResult:
    """Train and evaluate every method of ``config`` over its seeds; write results, reports and models.

    See the module docstring for the steps and the files written into ``config.output``.

    Parameters
    ----------
    config : CompareConfig
        Usually from :func:`resolve_config`.
    progress : bool, default True
        Show a rich progress bar over the runs (on stderr).

    Returns
    -------
    CompareResult

    Raises
    ------
    ConfigError
        Unknown method or setting, a ``teacher: auto`` method without ``bert``, a missing reference.
    DataNotFoundError, DataFormatError
        From :func:`frugaltext.data.load_data`.
    FrugalTextError
        Anything a method raises; rows of the runs finished before stay in ``results.json``.
    """
    from frugaltext.cost.meter import CostSettings
    from frugaltext.methods.base import get_method_class, replace_settings
    from frugaltext.reports import build_reports

    output_dir = Path(config.output)
    output_dir.mkdir(parents=True, exist_ok=True)
    for method in config.methods:
        get_method_class(base_method(method))  # unknown names fail before any training
    order = order_methods(config.methods, config.settings)
    cost_settings = replace_settings(CostSettings(), dict(config.cost), where="cost settings")

    _write_config(config, output_dir / "config.yaml")
    paths = {
        "results_json": output_dir / _RESULTS_JSON,
        "results_csv": output_dir / _RESULTS_CSV,
        "config": output_dir / "config.yaml",
        "log": output_dir / "compare.log",
    }
    with _RunLog(paths["log"]):
        logger.info(
            "compare: methods %s, seeds %s, data %s, output %s",
            order,
            config.seed_values,
            config.data,
            output_dir,
        )
        data = _load_data(config)
        for note in data.notes:
            logger.info("data: %s", note)
        eval_split, eval_name = _labels_for_run(data)
        if eval_name != "test":
            logger.warning(
                "data %s has no test split: methods are evaluated on the validation split", config.data
            )

        rows = read_results(paths["results_json"])
        data_id = config.data_identity()
        other = sorted({r.get("method", "?") for r in rows if r.get("data_identity", data_id) != data_id})
        if other:
            logger.warning(
                "%s holds rows of %s on other data or data options; runs of this comparison replace rows of "
                "the same method and seed, the others stay and appear in the table: use a new --output to "
                "keep comparisons apart",
                paths["results_json"],
                ", ".join(other),
            )
        runs = [(m, s) for m in order for s in config.seed_values]
        ran: list[str] = []
        skipped: list[str] = []
        with _progress(progress, len(runs)) as advance:
            for method, seed in runs:
                run_name = f"{method}-seed{seed}"
                settings = _resolved_settings(method, config)
                chash = config_hash(data_id, method, settings)
                rows = read_results(paths["results_json"])  # another process may have added rows
                done = [r for r in rows if r.get("method") == method and r.get("seed") == seed]
                if any(r.get("config_hash") == chash for r in done):
                    logger.info(
                        "%s: skipping, already done (config hash %s in %s)",
                        run_name,
                        chash,
                        paths["results_json"],
                    )
                    skipped.append(run_name)
                    advance(run_name, skipped=True)
                    continue
                if done:
                    logger.info(
                        "%s: settings changed since the stored row (hash %s -> %s); running again",
                        run_name,
                        done[0].get("config_hash"),
                        chash,
                    )
                advance(run_name, skipped=False, starting=True)
                row = _run_one(
                    config,
                    data,
                    eval_split,
                    eval_name,
                    method,
                    seed,
                    settings,
                    chash,
                    cost_settings,
                    output_dir,
                    order,
                )
                rows = add_result_row(row, output_dir)
                ran.append(run_name)
                advance(run_name, skipped=False)

        rows = read_results(paths["results_json"])
        report = build_reports(paths["results_json"], reference=config.reference)
        logger.info("reports written: %s", ", ".join(str(p) for p in report.paths.values()))
    paths.update(report.paths)
    return CompareResult(
        output_dir=output_dir,
        rows=rows,
        ran=ran,
        skipped=skipped,
        table_markdown=report.markdown,
        paths=paths,
        table=report.table,
    )


def _write_config(config: CompareConfig, path: Path) -> None:
    import yaml

    from frugaltext.methods.base import atomic_write_text

    header = (
        "# Resolved frugaltext compare configuration (preset < config file < command line).\n"
        "# Re-run with: frugaltext compare --config this-file\n"
    )
    atomic_write_text(path, header + yaml.safe_dump(config.to_dict(), sort_keys=False))


class _progress:
    """Context manager giving ``advance(run_name, skipped, starting=False)``; a rich bar when enabled."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled = enabled
        self.total = total
        self._progress = None
        self._task = None

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]compare[/] {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("starting", total=self.total)
        return self.advance

    def advance(self, run_name: str, skipped: bool, starting: bool = False) -> None:
        if self._progress is None:
            return
        if starting:
            self._progress.update(self._task, description=f"training {run_name}")
        else:
            self._progress.update(
                self._task, advance=1, description=f"{run_name} {'skipped (done)' if skipped else 'done'}"
            )

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()


def _run_one(
    config: CompareConfig,
    data: Any,
    eval_split: Any,
    eval_name: str,
    method_name: str,
    seed: int,
    settings: dict[str, Any],
    chash: str,
    cost_settings: Any,
    output_dir: Path,
    order: Sequence[str],
) -> dict[str, Any]:
    """Train, evaluate, measure and save one method with one seed; return its results row."""
    from frugaltext.cost.meter import CostMeter
    from frugaltext.methods.base import get_method_class, probabilities_to_predictions
    from frugaltext.metrics import classification_metrics

    run_name = f"{method_name}-seed{seed}"
    model_dir = output_dir / "models" / run_name
    work_dir = output_dir / "work" / run_name
    run_settings = dict(settings)
    if run_settings.get("teacher") == "auto" and method_name != TEACHER_METHOD:
        teacher_dir = output_dir / "models" / f"{TEACHER_METHOD}-seed{seed}"
        if not teacher_dir.is_dir():
            raise ConfigError(
                f"{run_name}: teacher 'auto' needs the {TEACHER_METHOD} model of seed {seed} at "
                f"{teacher_dir}, which is missing; delete the {TEACHER_METHOD} rows of "
                f"{output_dir / _RESULTS_JSON} so that it is trained again"
            )
        run_settings["teacher"] = str(teacher_dir)

    with _RunLog(output_dir / "logs" / f"{run_name}.log") as run_log:
        log = logging.getLogger(f"frugaltext.compare.{method_name}")
        log.info("%s: start (seed %d, config hash %s)", run_name, seed, chash)
        run_log.detail("%s: settings %s", run_name, json.dumps(run_settings, sort_keys=True, default=str))
        log.info(
            "%s: data %s: %d train / %d validation / %s documents, %d labels (%s)",
            run_name,
            data.name,
            len(data.train),
            len(data.validation),
            f"{len(eval_split)} {eval_name}",
            data.num_labels,
            "multi-label" if data.multi_label else "single-label",
        )
        cls = get_method_class(base_method(method_name))
        method = cls(**{k: v for k, v in run_settings.items()})
        meter = CostMeter(cost_settings)
        work_dir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        try:
            with meter.track("train"):
                method.fit(data, meter, seed=seed, output_dir=work_dir)
            log.info(
                "%s: trained in %.1f s (%d epochs)",
                run_name,
                meter.phases["train"].duration_s,
                len(meter.epoch_durations_s),
            )
            proba = method.predict_proba(eval_split.texts)
            y_pred = probabilities_to_predictions(proba, data.multi_label)
            scores = classification_metrics(eval_split.labels, y_pred, data.label_names, data.multi_label)
            log.info(
                "%s: %s macro_f1 %.4f, micro_f1 %.4f, accuracy %.4f",
                run_name,
                eval_name,
                scores["macro_f1"],
                scores["micro_f1"],
                scores["accuracy"],
            )
            meter.measure_model(method, eval_split.texts)
            meter.measure_inference(method, eval_split.texts)
            method.save(model_dir)
            log.info("%s: model saved to %s", run_name, model_dir)
        except Exception:
            log.exception("%s: failed", run_name)
            raise
        costs = meter.as_dict()
        run_log.detail("%s: costs %s", run_name, json.dumps(costs, sort_keys=True, default=str))
        if not config.keep_checkpoints:
            shutil.rmtree(work_dir, ignore_errors=True)
            with contextlib.suppress(OSError):
                work_dir.parent.rmdir()  # only when empty
        log.info("%s: finished in %.1f s", run_name, time.perf_counter() - started)

    row: dict[str, Any] = {
        "method": method_name,
        "seed": seed,
        "dataset": data.name,
        "data_source": config.data,
        "task": "multi-label" if data.multi_label else "single-label",
        "num_labels": data.num_labels,
        "n_train": len(data.train),
        "n_validation": len(data.validation),
        "n_test": len(data.test) if data.test is not None else 0,
        "eval_split": eval_name,
        "n_eval": len(eval_split),
        "macro_f1": scores["macro_f1"],
        "micro_f1": scores["micro_f1"],
        "accuracy": scores["accuracy"],
        "weighted_f1": scores["weighted_f1"],
        "per_class": scores["per_class"],
    }
    row.update(costs)
    row.update(
        {
            "notes": method.cost_notes(),
            "settings": run_settings,
            "cost_settings": dataclasses.asdict(cost_settings),
            "config_hash": chash,
            "data_identity": config.data_identity(),
            "model_dir": str(model_dir),
            "data_notes": list(data.notes),
            "frugaltext_version": _frugaltext_version(),
            "torch_version": _package_version("torch"),
            "torch_threads": _torch_threads(),
            "machine": _machine(),
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    )
    return copy.deepcopy(row)


class _CallableModule(types.ModuleType):
    """Make ``frugaltext.compare(...)`` call :func:`frugaltext.api.compare`.

    The package attribute ``frugaltext.compare`` is this submodule once it has been imported; making the
    module callable keeps ``frugaltext.compare(...)`` working either way.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> CompareResult:
        from frugaltext.api import compare

        return compare(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
