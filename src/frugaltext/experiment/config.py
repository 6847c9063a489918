"""Configuration of a comparison: :class:`CompareConfig`, presets, YAML files, ``--key value`` overrides.

:func:`resolve_config` builds a :class:`CompareConfig` from a preset, a YAML file and ``--key value``
overrides (in that order of precedence, the later winning), converting every value to its field's type and
checking method and cost-meter settings against their ``Settings`` dataclasses.

Presets (``src/frugaltext/presets/<name>.yaml``) and config files have the same layout: the fields of
:class:`CompareConfig` at the top level, method settings under ``settings: {<method>: {<field>: value}}``
and cost-meter settings (:class:`~frugaltext.cost.meter.CostSettings`) under ``cost:``. On the command line
the same keys are written ``--max-train-docs 500``, ``--bert.epochs 3`` and ``--cost.latency-n-docs 16``.

A ``select:`` block (``select: {min_retention: 99, objective: energy, reference: null}``, or ``select: true``
for those defaults) makes the run end with :func:`frugaltext.selection.select`: the cheapest model keeping
that share of the reference's macro-F1 is put into ``<output>/selected/``. On the command line:
``--select``, ``--select.min-retention 95``, ``--select.objective latency`` (any ``select.<key>`` turns it
on; ``--select false`` turns off a block of the config file). It is not part of :func:`config_hash`: choosing
a model does not change a run.

A method may be listed several times under different settings as *variants*, ``<method>@<label>``: the
variant ``topicbert@p2`` runs ``topicbert`` with the settings of ``topicbert`` updated by those of
``topicbert@p2`` (``settings: {topicbert@p2: {n_partitions: 2}}``); its rows, model folders, table rows and
plot points carry the variant name. This is how one comparison holds TopicBERT-N, N/2, N/4 and N/8 (Table 3
of Chaudhary et al. 2020) or ``bert`` with fixed and with dynamic padding.

A *grid* over one setting of a method (``--grid bert.max_length=64,128,256,512``, YAML
``grid: {bert.max_length: [64, 128, 256, 512]}``, API ``grid={"bert.max_length": [64, 128]}``) expands into
one variant per value with :func:`expand_grid`: the method in ``methods`` is replaced by the variants
``bert@max_length-64``, ``bert@max_length-128``, ... (:func:`grid_row_name`), each with the method's settings
and the grid value. Rows, model folders and resume work as for any variant; the rows also record their grid
point (``grid: {method, setting, value}``) for the grid report (:mod:`frugaltext.reports.grid`, DocBERT's
Figure 2: macro-F1 and training time against the setting). One setting per method; several methods may each
have a grid. Every value is checked by the method's ``Settings`` before anything runs.

A variant that differs from another method of the comparison only in inference-time settings
(:data:`INFERENCE_ONLY_SETTINGS`: ``inference_quantization``) trains nothing: ``bert@int8:
{inference_quantization: int8}`` is evaluated and costed with the model ``bert`` trained for the same seed
(:func:`trained_by`; the runner copies bert's training costs into its row and notes ``trained_by: bert``).
``precision`` is not inference-only (bf16 also trains in mixed precision), so ``bert@bf16: {precision: bf16}``
trains its own model; so do early-exit variants of ``exit_rule``/``target_retention`` (calibrated inside
``fit``).

:func:`config_hash` (data identity + method + resolved settings) identifies a finished run, so that
:func:`frugaltext.experiment.runner.run_compare` can resume; its value must never change for the same inputs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from frugaltext.errors import ConfigError, DataNotFoundError
from frugaltext.fastpath import INFERENCE_ONLY_SETTINGS

__all__ = [
    "CompareConfig",
    "GridPoint",
    "INFERENCE_ONLY_SETTINGS",
    "NEUTRAL_NEW_SETTINGS",
    "PRESETS",
    "SELECT_DEFAULTS",
    "VARIANT_SEPARATOR",
    "base_method",
    "check_select",
    "config_hash",
    "expand_grid",
    "grid_row_name",
    "load_preset",
    "method_settings",
    "parse_overrides",
    "resolve_config",
    "resolved_settings",
    "trained_by",
    "write_config",
]

#: Presets shipped in ``frugaltext/presets``.
PRESETS = ("quick", "paper", "table3")

#: Separator between a method and a variant label: ``topicbert@p2``.
VARIANT_SEPARATOR = "@"


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
    select : dict or None, default None
        ``{"min_retention": float, "objective": str, "reference": str or None}``: after the runs, select the
        cheapest model keeping ``min_retention`` % of the reference's macro-F1 by ``objective``
        (:func:`frugaltext.selection.select`). ``reference`` None uses ``reference`` above when it has rows,
        else the method of highest macro-F1. None (the default) selects nothing. ``True`` stands for the
        defaults (99, ``energy``, None).
    keep_checkpoints : bool, default False
        Keep the per-run work directories (folder ``work`` of the output, one ``<method>-seed<k>`` each:
        trainer checkpoints) after a run has finished; by default they are deleted once the model is saved.
    checkpoint_steps : int, default 500
        Neural methods also save a Trainer checkpoint every this many optimisation steps (besides each
        epoch), so that a killed run resumes near where it stopped; 0 = only at epoch ends. Not part of the
        configuration hash (it does not change the model).
    preset : str or None
        Name of the preset the configuration started from (recorded in ``config.yaml``).
    grid : dict of str to list, default {}
        ``{"<method>.<setting>": [value, ...]}``: run the method once per value, as the variants
        ``<method>@<setting>-<value>`` (:func:`expand_grid`); at most one setting per method. Checked (method
        among ``methods``, known setting, values valid for it) by :func:`resolve_config` and
        :func:`expand_grid`.

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
    checkpoint_steps: int = 500
    preset: str | None = None
    select: dict[str, Any] | None = None
    grid: dict[str, list[Any]] = field(default_factory=dict)

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
        if (isinstance(self.checkpoint_steps, bool) or not isinstance(self.checkpoint_steps, int)
                or self.checkpoint_steps < 0):
            raise ConfigError(
                f"compare: checkpoint_steps must be an integer >= 0 (0: checkpoints only at epoch ends), "
                f"got {self.checkpoint_steps!r}"
            )
        if isinstance(self.data_seed, bool) or not isinstance(self.data_seed, int):
            raise ConfigError(f"compare: data_seed must be an integer, got {self.data_seed!r}")
        fraction = self.validation_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not math.isfinite(
            fraction
        ):
            raise ConfigError(f"compare: validation_fraction must be a finite number, got {fraction!r}")
        if self.multi_label is not None and not isinstance(self.multi_label, bool):
            raise ConfigError(f"compare: multi_label must be true, false or null, got {self.multi_label!r}")
        object.__setattr__(self, "select", check_select(self.select, "compare"))
        if self.grid is None:
            object.__setattr__(self, "grid", {})
        if not isinstance(self.grid, Mapping) or not all(
            isinstance(k, str) and isinstance(v, (list, tuple)) for k, v in self.grid.items()
        ):
            raise ConfigError(
                "compare: grid must map '<method>.<setting>' to a list of values, e.g. "
                f"grid: {{bert.max_length: [64, 128, 256, 512]}}, got {self.grid!r}"
            )

    @property
    def seed_values(self) -> list[int]:
        """The seeds that are run: ``[first_seed, ..., first_seed + seeds - 1]``."""
        return list(range(self.first_seed, self.first_seed + self.seeds))

    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML-able dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["methods"] = list(self.methods)
        out["grid"] = {k: [_plain(v) for v in values] for k, values in self.grid.items()}
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
    "checkpoint_steps": "int",
    "preset": "str?",
}
_NESTED = ("settings", "cost", "select", "grid")

#: Keys of the ``select:`` block and their defaults (see :func:`frugaltext.selection.select`).
SELECT_DEFAULTS: dict[str, Any] = {"min_retention": 99.0, "objective": "energy", "reference": None}


def check_select(value: Any, where: str, base: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """Normalise a ``select`` setting: None/false -> None (off); true -> the defaults (or ``base``); a
    mapping -> ``base`` or the defaults, updated by it and checked.

    Parameters
    ----------
    value : None, bool, str or mapping
        A string is read as true/false/null (``--select true``).
    where : str
        Names the source in errors (a file, ``option --select``).
    base : mapping, optional
        The block of an earlier layer (preset, config file) that ``value`` updates.

    Returns
    -------
    dict or None
        ``{"min_retention": float, "objective": str, "reference": str or None}``.

    Raises
    ------
    ConfigError
        For an unknown key (the message lists the valid ones), a min_retention refused by
        :func:`frugaltext.selection.check_min_retention`, an unknown objective (the valid ones are listed)
        or a reference that is not a name.
    """
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _NULLS or lowered in _FALSE:
            return None
        if lowered in _TRUE:
            value = True
    if value is None or value is False:
        return None
    if value is True:
        return dict(base) if base else dict(SELECT_DEFAULTS)
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{where}: select must be true, false or a mapping such as "
            f"select: {{min_retention: 99, objective: energy}}, got {value!r}"
        )
    out = dict(base) if base else dict(SELECT_DEFAULTS)
    for key, item in value.items():
        key = str(key).replace("-", "_")
        if key not in SELECT_DEFAULTS:
            raise ConfigError(
                f"{where}: unknown select setting {key!r}; valid: {', '.join(SELECT_DEFAULTS)}"
            )
        out[key] = item
    from frugaltext.selection import OBJECTIVES, check_min_retention

    out["min_retention"] = check_min_retention(out["min_retention"], f"{where}: select")
    if not isinstance(out["objective"], str) or out["objective"] not in OBJECTIVES:
        raise ConfigError(
            f"{where}: unknown select objective {out['objective']!r}; choose one of {', '.join(OBJECTIVES)}"
        )
    reference = out["reference"]
    if isinstance(reference, str) and reference.strip().lower() in _NULLS:
        reference = None
    if reference is not None and not isinstance(reference, str):
        raise ConfigError(f"{where}: select reference must be a method name or null, got {reference!r}")
    out["reference"] = reference
    return out


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
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(value)
            return number
        return str(value)
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"{where}: {name} must be {_KIND_WORDS[kind]}{' or null' if optional else ''}, got {value!r}"
        ) from err


_KIND_WORDS = {
    "list": "a comma-separated list",
    "bool": "true or false",
    "int": "an integer",
    "float": "a finite number",
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
        elif key == "select":
            base["select"] = check_select(value, where, base.get("select"))
        elif key == "grid":
            base["grid"] = _merge_grid(base["grid"], parse_grid(value, where))
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
        ones), or a value that does not convert; for a grid, see :func:`check_grid`.
    DataNotFoundError
        If ``config_file`` does not exist.
    """
    file_layer = _read_config_file(config_file) if config_file is not None else {}
    chosen = preset or file_layer.get("preset") or "quick"
    merged: dict[str, Any] = {"settings": {}, "cost": {}, "select": None, "grid": {}}
    _merge_layer(merged, load_preset(str(chosen)), f"preset {chosen}.yaml")
    if config_file is not None:
        _merge_layer(merged, file_layer, str(config_file))
    merged["preset"] = str(chosen)
    overrides = dict(overrides or {})
    select_fields = {
        _normalize_key(str(k)).partition(".")[2]: v
        for k, v in overrides.items()
        if _normalize_key(str(k)).startswith("select.")
    }
    if "select" in overrides or select_fields:
        switch = overrides.get("select", True)
        if check_select(switch, "option --select") is None:
            if select_fields:
                raise ConfigError(
                    "option --select false (or --no-select) contradicts "
                    + ", ".join(f"--select.{k.replace('_', '-')}" for k in select_fields)
                    + "; drop one of them"
                )
            merged["select"] = None
        else:
            merged["select"] = check_select(select_fields or True, "option --select", merged["select"])
    for key, value in overrides.items():
        key = _normalize_key(str(key))
        if key == "select" or key.startswith("select."):
            continue
        if key == "grid":
            merged["grid"] = _merge_grid(merged["grid"], parse_grid(value, "option --grid"))
            continue
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
            valid = ", ".join(
                f"--{k.replace('_', '-')}" for k in sorted([*_FIELD_KINDS, "select", "grid"])
                if k != "preset"
            )
            raise ConfigError(
                f"unknown option --{key.replace('_', '-')}; compare options: {valid}; method settings are "
                "written "
                "--<method>.<setting> (e.g. --bert.epochs 3), cost settings --cost.<setting>, selection "
                "settings --select.<setting>"
            )
    merged["settings"] = _check_method_settings(merged["settings"])
    merged["cost"] = _check_cost_settings(merged["cost"])
    config = CompareConfig(**merged)
    # grid values are converted and checked here, before any file is written
    return dataclasses.replace(config, grid=check_grid(config.grid, config.methods, config.settings))


def _float_or_none(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None


def _check_finite(value: Any, where: str, shown: Any = None) -> None:
    """Raise :class:`ConfigError` if ``value`` is a NaN or infinite float."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(
            f"{where} must be a finite number, got {shown if shown is not None else value!r}; "
            "NaN and infinity are not valid settings"
        )


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


_GRID_EXAMPLE = "e.g. --grid bert.max_length=64,128,256,512 or grid: {bert.max_length: [64, 128, 256, 512]}"


def parse_grid(value: Any, where: str) -> dict[str, list[Any]]:
    """Read a grid as written on the command line, in YAML or in the API, without checking the values.

    Parameters
    ----------
    value : str, sequence of str, mapping or None
        ``"bert.max_length=64,128"``; a list of such strings (one per method); a mapping
        ``{"bert.max_length": [64, 128]}`` (a value may also be the string ``"64,128"``) or the nested
        ``{"bert": {"max_length": [64, 128]}}``. None (YAML ``grid: null``) is no grid.
    where : str
        Names the source in errors (a file, ``option --grid``).

    Returns
    -------
    dict of str to list
        ``{"<method>.<setting>": [raw value, ...]}``, dashes of setting names turned into underscores.

    Raises
    ------
    ConfigError
        For a string without ``=`` or without ``<method>.<setting>``, or a value of another type.
    """
    if value is None:
        return {}
    out: dict[str, list[Any]] = {}
    if isinstance(value, str) or (
        isinstance(value, Sequence) and all(isinstance(v, str) for v in value)
    ):
        for spec in [value] if isinstance(value, str) else value:
            key, eq, values = str(spec).partition("=")
            if not eq:
                raise ConfigError(
                    f"{where}: grid {spec!r} must be written METHOD.SETTING=v1,v2,..., {_GRID_EXAMPLE}"
                )
            out[_grid_key(key, where)] = _split_list(values)
        return out
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: grid must map METHOD.SETTING to a list of values, {_GRID_EXAMPLE}; "
                          f"got {value!r}")
    for key, values in value.items():
        if isinstance(values, Mapping):  # nested: {bert: {max_length: [...]}}
            for setting, inner in values.items():
                out[_grid_key(f"{key}.{setting}", where)] = _grid_values(inner)
        else:
            out[_grid_key(str(key), where)] = _grid_values(values)
    return out


def _grid_values(values: Any) -> list[Any]:
    if isinstance(values, str):
        return _split_list(values)
    if isinstance(values, (list, tuple)):
        return list(values)
    return [values]


def _grid_key(key: str, where: str) -> str:
    method, dot, name = key.strip().rpartition(".")  # a variant label may hold dots; a setting never does
    if not dot or not method or not name:
        raise ConfigError(
            f"{where}: grid key {key.strip()!r} must be METHOD.SETTING (the method, a dot, one of its "
            f"settings), {_GRID_EXAMPLE}"
        )
    return f"{method}.{name.strip().replace('-', '_')}"


def _merge_grid(base: Mapping[str, list[Any]], layer: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
    """A later layer's grid of a method replaces the earlier layer's grid of the same method."""
    methods = {key.rpartition(".")[0] for key in layer}
    out = {k: v for k, v in base.items() if k.rpartition(".")[0] not in methods}
    out.update(layer)
    return out


def grid_row_name(method: str, setting: str, value: Any) -> str:
    """Name of the variant (row, model folder, table row, plot point) of one grid value.

    ``<method>@<setting>-<value>``: ``grid_row_name("bert", "max_length", 64)`` is ``"bert@max_length-64"``,
    ``("tfidf-lr", "C", 0.1)`` gives ``"tfidf-lr@C-0.1"`` and ``("tfidf-lr", "C", 10.0)`` ``"tfidf-lr@C-10"``.
    A grid over a variant extends its label with a dot: ``("topicbert@p2", "n_topics", 50)`` gives
    ``"topicbert@p2.n_topics-50"``. Booleans and None are written ``true``/``false``/``none``, sequences
    joined by ``_``, and any character other than letters, digits, ``-``, ``_`` and ``.`` becomes ``_``, so
    the name is a valid variant and a safe folder name.
    """
    label = f"{setting}-{_value_label(value)}"
    if VARIANT_SEPARATOR in method:
        return f"{method}.{label}"
    return f"{method}{VARIANT_SEPARATOR}{label}"


def _value_label(value: Any) -> str:
    if value is None:
        text = "none"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = repr(value).replace("+", "")
        text = text[:-2] if text.endswith(".0") else text
    elif isinstance(value, (list, tuple)):
        text = "_".join(_value_label(v) for v in value)
    else:
        text = str(value)
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text) or "_"


@dataclass(frozen=True)
class GridPoint:
    """One value of a grid: the variant ``name`` runs ``method`` with ``setting`` = ``value``."""

    name: str
    method: str
    setting: str
    value: Any

    def as_row(self) -> dict[str, Any]:
        """The ``grid`` field of a results row: ``{"method", "setting", "value"}``."""
        return {"method": self.method, "setting": self.setting, "value": _plain(self.value)}


def check_grid(
    grid: Mapping[str, Sequence[Any]],
    methods: Sequence[str],
    settings: Mapping[str, Mapping[str, Any]],
) -> dict[str, list[Any]]:
    """Check a grid against the methods and convert every value with the method's ``Settings``.

    Parameters
    ----------
    grid : mapping
        ``{"<method>.<setting>": [value, ...]}`` (:func:`parse_grid`).
    methods : sequence of str
        The comparison's methods (before expansion); each gridded method must be one of them.
    settings : mapping
        The comparison's method settings; each value is checked together with them (the same validator as
        every setting, :func:`frugaltext.settings.replace_settings`).

    Returns
    -------
    dict of str to list
        The grid with converted values (``"64"`` -> 64, ``"0.1"`` -> 0.1).

    Raises
    ------
    ConfigError
        Naming the grid, the method, the setting and the bad value: an unknown method or one not among
        ``methods``, two settings of one method, an unknown setting, no values, a value the setting refuses
        (wrong type, out of range, nan), a value listed twice, two values that give the same row name, or a
        row name already among ``methods``.
    """
    from frugaltext.methods.base import (
        available_methods,
        get_method_class,
        replace_settings,
        resolve_method_name,
    )

    out: dict[str, list[Any]] = {}
    seen: dict[str, str] = {}
    for key, values in grid.items():
        method, _, name = _grid_key(key, "grid").rpartition(".")
        where = f"grid {method}.{name}"
        _check_variant_name(method)
        if resolve_method_name(base_method(method)) not in available_methods():
            raise ConfigError(
                f"{where}: unknown method {method!r}; available methods: {', '.join(available_methods())}"
            )
        if method not in methods:
            raise ConfigError(
                f"{where}: method {method!r} is not among the methods ({', '.join(methods)}); add it to "
                f"--methods (its row is replaced by one row per grid value)"
            )
        if method in seen:
            raise ConfigError(
                f"{where}: {method!r} already has a grid over {seen[method]!r}; a grid varies one setting "
                "per method (for a product, list variants <method>@<label> with their own settings)"
            )
        seen[method] = name
        values = list(values) if isinstance(values, (list, tuple)) else [values]
        if not values:
            raise ConfigError(f"{where}: no values; give at least one, {_GRID_EXAMPLE}")
        cls = get_method_class(base_method(method))
        valid = sorted(f.name for f in dataclasses.fields(cls.Settings))
        if name not in valid:
            raise ConfigError(
                f"{where}: unknown setting {name!r} of method {method!r}; valid settings: {', '.join(valid)}"
            )
        configured = method_settings(method, settings)
        converted: list[Any] = []
        names: dict[str, Any] = {}
        for value in values:
            checked = replace_settings(
                cls.Settings(), {**configured, name: value},
                where=f"{where}, value {value!r} (method {method!r})",
            )
            typed = _plain(getattr(checked, name))
            if typed in converted:
                raise ConfigError(f"{where}: value {value!r} is listed twice (as {typed!r}); list each once")
            row = grid_row_name(method, name, typed)
            if row in names:
                raise ConfigError(
                    f"{where}: values {names[row]!r} and {typed!r} both give the row name {row!r}; "
                    "use values that differ in their text"
                )
            if row in methods:
                raise ConfigError(
                    f"{where}: the grid row {row!r} is also listed in methods; drop one of them"
                )
            names[row] = typed
            converted.append(typed)
        out[f"{method}.{name}"] = converted
    return out


def expand_grid(config: CompareConfig) -> tuple[CompareConfig, dict[str, GridPoint]]:
    """Replace each gridded method of ``config`` by one variant per grid value.

    ``methods: [tfidf-svm, bert]`` with ``grid: {bert.max_length: [64, 128]}`` becomes
    ``methods: [tfidf-svm, bert@max_length-64, bert@max_length-128]`` with
    ``settings: {bert@max_length-64: {max_length: 64}, ...}`` (a variant inherits the base method's
    settings; a grid over a variant copies that variant's settings into each new one). Each variant is an
    ordinary method row, so resuming skips the values already done.

    Returns
    -------
    (CompareConfig, dict of str to GridPoint)
        The expanded configuration (``grid`` empty) and the grid point of each new variant, by name. A
        configuration without a grid is returned unchanged with ``{}``.

    Raises
    ------
    ConfigError
        See :func:`check_grid`.
    """
    if not config.grid:
        return config, {}
    grid = check_grid(config.grid, config.methods, config.settings)
    by_method = {key.rpartition(".")[0]: key.rpartition(".")[2] for key in grid}
    methods: list[str] = []
    settings = {k: dict(v) for k, v in config.settings.items()}
    points: dict[str, GridPoint] = {}
    for method in config.methods:
        if method not in by_method:
            methods.append(method)
            continue
        name = by_method[method]
        inherited = dict(config.settings.get(method, {})) if VARIANT_SEPARATOR in method else {}
        for value in grid[f"{method}.{name}"]:
            row = grid_row_name(method, name, value)
            methods.append(row)
            settings[row] = {**inherited, name: value}
            points[row] = GridPoint(row, method, name, value)
    expanded = dataclasses.replace(config, methods=tuple(methods), settings=settings, grid={})
    return expanded, points


def _check_method_settings(settings: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    from frugaltext.methods.base import (
        available_methods,
        get_method_class,
        replace_settings,
        resolve_method_name,
    )

    out: dict[str, dict[str, Any]] = {}
    for method, fields in settings.items():
        _check_variant_name(method)
        if resolve_method_name(base_method(method)) not in available_methods():
            raise ConfigError(
                f"settings for unknown method {method!r}; available methods: {', '.join(available_methods())}"
            )
        cls = get_method_class(base_method(method))
        raw = {key.replace("-", "_"): value for key, value in fields.items()}
        # one validator for CLI, YAML and API (frugaltext.settings): types, ranges, finite numbers, choices
        checked = replace_settings(cls.Settings(), raw, where=f"method {method!r}")
        out[method] = {k: _plain(getattr(checked, k)) for k in raw}
    return out


def _check_cost_settings(cost: Mapping[str, Any]) -> dict[str, Any]:
    from frugaltext.cost.meter import CostSettings
    from frugaltext.methods.base import replace_settings

    typed = {k.replace("-", "_"): v for k, v in cost.items()}
    defaults = CostSettings()
    checked = replace_settings(defaults, typed, where="cost settings")
    return {k: _plain(getattr(checked, k)) for k in typed}


def _plain(value: Any) -> Any:
    """Return a YAML/JSON-friendly copy (tuples -> lists)."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


#: Settings introduced after the first results were stored, with the value that means "as before"
#: (``encoder_layers``: keep every layer, added with the Table 3 small-encoder row; ``step_matched``: the
#: optimizer steps TopicBERT always took, added with the step-matched ablation of issue 15).
NEUTRAL_NEW_SETTINGS: dict[str, Any] = {"encoder_layers": None, "step_matched": False,
                                        "int8_keep_fp32_linear": None}


def trained_by(config: CompareConfig) -> dict[str, str]:
    """Which methods of ``config`` reuse the trained model of another: ``{derived method: training method}``.

    A method is *derived* when its resolved settings (:func:`resolved_settings`) equal those of another
    method of the same registered method (``bert`` for ``bert@int8``) in everything but
    :data:`INFERENCE_ONLY_SETTINGS` (and differ in at least one of those: an exact duplicate still trains),
    that other method trains its own model, and the method saves models (``saves_model``). Plain names are
    considered as trainers first, then variants in the order listed, so ``bert@int8`` reuses ``bert`` even
    when listed before it; of several candidates the first listed wins.

    >>> cfg = CompareConfig(methods=("bert", "bert@int8"),
    ...                     settings={"bert@int8": {"inference_quantization": "int8"}})
    >>> trained_by(cfg)
    {'bert@int8': 'bert'}

    Returns
    -------
    dict of str to str
        Empty when every method trains its own model.

    Raises
    ------
    ConfigError
        For an unknown method or setting (from :func:`resolved_settings`).
    """
    from frugaltext.methods.base import get_method_class

    trainers: list[str] = []
    derived: dict[str, str] = {}
    ordered = sorted(config.methods, key=lambda m: VARIANT_SEPARATOR in m)  # stable: plain names first
    for method in ordered:
        if not get_method_class(base_method(method)).saves_model:
            trainers.append(method)
            continue
        settings = resolved_settings(method, config)
        training = {k: v for k, v in settings.items() if k not in INFERENCE_ONLY_SETTINGS}
        for candidate in trainers:
            if base_method(candidate) != base_method(method):
                continue
            other = resolved_settings(candidate, config)
            same_training = {k: v for k, v in other.items() if k not in INFERENCE_ONLY_SETTINGS} == training
            if same_training and other != settings:
                derived[method] = candidate
                break
        else:
            trainers.append(method)
    return {m: derived[m] for m in config.methods if m in derived}


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


def resolved_settings(method: str, config: CompareConfig) -> dict[str, Any]:
    """Full settings of ``method`` (defaults + configured values) as a plain dict: the input of
    :func:`config_hash` and the ``settings`` of a results row.

    Raises
    ------
    ConfigError
        For an unknown method or setting.
    """
    from frugaltext.methods.base import get_method_class, replace_settings

    cls = get_method_class(base_method(method))
    settings = replace_settings(
        cls.Settings(), method_settings(method, config.settings), where=f"method {method!r}"
    )
    return {k: _plain(v) for k, v in dataclasses.asdict(settings).items()}


def write_config(config: CompareConfig, path: Path) -> None:
    """Write ``config`` as the YAML file ``path`` (``config.yaml`` of a run), atomically; it can be passed
    back to ``frugaltext compare --config``."""
    import yaml

    from frugaltext.fileio import atomic_write_text

    header = (
        "# Resolved frugaltext compare configuration (preset < config file < command line).\n"
        "# Re-run with: frugaltext compare --config this-file\n"
    )
    atomic_write_text(path, header + yaml.safe_dump(config.to_dict(), sort_keys=False))
