"""Declarative validation of settings dataclasses: one converter and one checker for every method.

Constraints are written beside each field with :func:`setting` and checked in one place
(:func:`validate_settings`, run by :class:`ValidatedSettings.__post_init__`)::

    @dataclass(frozen=True)
    class MySettings(ValidatedSettings):
        method: ClassVar[str] = "my-method"
        epochs: float = setting(3.0, gt=0)
        padding: str = setting("dynamic", choices=("dynamic", "max_length"))
        dropout: float | None = setting(None, ge=0, lt=1)

Rules, from the field's type annotation:

* ``bool`` accepts True/False and the strings true/false/yes/no/1/0; a number field never accepts a bool
  (YAML ``C: true`` is an error).
* ``int`` accepts ints (and integral floats such as ``20.0``); ``float`` accepts ints and floats; every number
  must be finite (``nan``/``inf`` are rejected). Strings from the CLI are parsed.
* ``X | None`` accepts None and the strings ``""``/``"none"``/``"null"`` (any case) as None.
* ``tuple[int, ...]`` accepts lists, tuples and comma-separated strings.
* ``gt``/``ge``/``lt``/``le`` bound numbers; ``choices`` lists the allowed values (named in the error).

Subclasses add checks that involve several fields in :meth:`ValidatedSettings._check` (call ``super()``).
A subclass that only changes a default (``teacher: str | None = "auto"``) keeps the parent's constraint.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from frugaltext.errors import ConfigError

__all__ = [
    "Constraint",
    "ValidatedSettings",
    "coerce_value",
    "replace_settings",
    "setting",
    "validate_settings",
]

_META_KEY = "frugaltext_setting"
_NONE_STRINGS = ("", "none", "null")
_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")


@dataclasses.dataclass(frozen=True)
class Constraint:
    """What a setting accepts beyond its type (see :func:`setting`)."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    choices: tuple[Any, ...] | None = None
    convert: Callable[[Any], Any] | None = None

    def describe(self) -> str:
        """Human description of the range, e.g. ``"> 0 and <= 1"``."""
        parts = [f"{op} {bound:g}" for op, bound in
                 ((">", self.gt), (">=", self.ge), ("<", self.lt), ("<=", self.le)) if bound is not None]
        return " and ".join(parts)


def setting(default: Any, *, gt: float | None = None, ge: float | None = None, lt: float | None = None,
            le: float | None = None, choices: Sequence[Any] | None = None,
            convert: Callable[[Any], Any] | None = None) -> Any:
    """A dataclass field with its constraint written beside it.

    Parameters
    ----------
    default : the default value (immutable; tuples for sequences).
    gt, ge, lt, le : float, optional
        Bounds of a number (strict: ``gt``/``lt``). None/Optional values skip them.
    choices : sequence, optional
        Allowed values; the error lists them.
    convert : callable, optional
        Applied to a raw value before the type check (e.g. a YAML list to a comma-separated string).

    Returns
    -------
    dataclasses.Field
    """
    constraint = Constraint(gt, ge, lt, le, tuple(choices) if choices is not None else None, convert)
    return dataclasses.field(default=default, metadata={_META_KEY: constraint})


# --------------------------------------------------------------------------------------------------
# type handling
# --------------------------------------------------------------------------------------------------
def _field_types(cls: type) -> dict[str, Any]:
    cached = cls.__dict__.get("_frugaltext_types")
    if cached is None:
        try:
            cached = typing.get_type_hints(cls)
        except (NameError, TypeError):  # an annotation that does not resolve: fall back to the defaults
            cached = {}
        cls._frugaltext_types = cached
    return cached


def _constraint(cls: type, name: str) -> Constraint:
    """The constraint of field ``name``: from the most derived class that declared one."""
    for klass in cls.__mro__:
        own = klass.__dict__.get("__dataclass_fields__", {})
        if name in own and _META_KEY in own[name].metadata:
            return own[name].metadata[_META_KEY]
    return Constraint()


def _split_optional(kind: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        optional = len(args) < len(typing.get_args(kind))
        return (args[0] if len(args) == 1 else kind), optional
    return kind, False


def _type_name(kind: Any) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        kind, getattr(kind, "__name__", str(kind)))


def _convert(value: Any, kind: Any, where: str) -> Any:
    """Convert ``value`` to ``kind`` (a resolved annotation), raising ConfigError with ``where``."""
    kind, optional = _split_optional(kind)
    if optional and (value is None or (isinstance(value, str) and value.strip().lower() in _NONE_STRINGS)):
        return None
    if value is None:
        raise ConfigError(f"{where}: must be {_type_name(kind)}, got None; this setting has no 'none' value")
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise ConfigError(f"{where}: must be true or false, got {value!r}")
    if kind in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{where}: must be {_type_name(kind)}, got the boolean {value!r}; write a "
                              "number")
        if isinstance(value, str):
            try:
                value = int(value) if kind is int else float(value)
            except ValueError:
                try:
                    number = float(value)
                except ValueError:
                    raise ConfigError(f"{where}: cannot read {value!r} as {kind.__name__}") from None
                value = number
        if not isinstance(value, int | float):
            raise ConfigError(f"{where}: must be {_type_name(kind)}, got {type(value).__name__} {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: must be a finite number, got {value!r}; nan and inf are not "
                              "allowed")
        if kind is int:
            if isinstance(value, float):
                if not value.is_integer():
                    raise ConfigError(f"{where}: must be an integer, got {value!r}")
                value = int(value)
            return int(value)
        return float(value)
    if kind is str:
        if isinstance(value, str):
            return value
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, list | tuple):
            return ",".join(str(v) for v in value)
        raise ConfigError(f"{where}: must be a string, got {type(value).__name__} {value!r}")
    if typing.get_origin(kind) is tuple:
        args = typing.get_args(kind)
        item = args[0] if args else str
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: must be a list, got {type(value).__name__} {value!r}")
        return tuple(_convert(v, item, where) for v in value)
    return value


def _annotation(settings_or_cls: Any, name: str, current: Any) -> Any:
    cls = settings_or_cls if isinstance(settings_or_cls, type) else type(settings_or_cls)
    kind = _field_types(cls).get(name)
    if kind is None and current is not None:
        kind = type(current)
    return kind


def coerce_value(value: Any, current_or_type: Any, where: str) -> Any:
    """Convert ``value`` (often a string from the CLI or YAML) to a setting's type.

    Parameters
    ----------
    value : the raw value.
    current_or_type : a type or annotation (``float``, ``int | None``, ``tuple[int, ...]``), or the setting's
        current value whose type is used (None: ``value`` is returned unchanged, the type being unknown).
    where : str
        Prefix of the error message, e.g. ``"method 'bert': setting 'epochs'"``.

    Raises
    ------
    ConfigError
        If ``value`` does not convert (a bool for a number, nan/inf, text for a number, ...).
    """
    is_type = isinstance(current_or_type, type) or typing.get_origin(current_or_type) is not None
    if not is_type:
        if current_or_type is None:
            return value
        current_or_type = type(current_or_type)
    return _convert(value, current_or_type, where)


def _check_field(cls: type, name: str, value: Any, kind: Any, where: str) -> Any:
    constraint = _constraint(cls, name)
    label = f"{where}: setting {name!r}"
    if constraint.convert is not None and value is not None:
        value = constraint.convert(value)
    if kind is not None:
        value = _convert(value, kind, label)
    if value is None:
        return value
    if constraint.choices is not None and value not in constraint.choices:
        allowed = ", ".join(repr(c) for c in constraint.choices)
        raise ConfigError(f"{label}: got {value!r}; choose one of {allowed}")
    bounds = constraint.describe()
    if bounds and isinstance(value, int | float):
        c = constraint
        ok = ((c.gt is None or value > c.gt) and (c.ge is None or value >= c.ge)
              and (c.lt is None or value < c.lt) and (c.le is None or value <= c.le))
        if not ok:
            raise ConfigError(f"{label}: must be {bounds}, got {value!r}; set a value {bounds}")
    return value


def validate_settings(settings: Any, where: str | None = None) -> None:
    """Check every field of the dataclass ``settings`` against its type and :func:`setting` constraint, and
    store the converted values (``"none"`` -> None, ``3`` -> ``3.0`` for a float, list -> tuple).

    Raises
    ------
    ConfigError
        Naming ``where`` (default: the class's ``method``) and the setting, saying what is allowed.
    """
    cls = type(settings)
    where = where or getattr(cls, "method", "") or cls.__name__
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        kind = _annotation(cls, f.name, f.default if f.default is not dataclasses.MISSING else None)
        checked = _check_field(cls, f.name, value, kind, where)
        if checked is not value:
            object.__setattr__(settings, f.name, checked)


class ValidatedSettings:
    """Mixin for settings dataclasses: :func:`validate_settings` runs after ``__init__``, then :meth:`_check`.

    Attributes
    ----------
    method : str (class variable)
        Names the method in error messages.
    """

    method: ClassVar[str] = ""

    def __post_init__(self) -> None:
        validate_settings(self)
        self._check()

    def _check(self) -> None:
        """Checks that involve several fields (subclasses call ``super()._check()``)."""

    def _error(self, message: str) -> ConfigError:
        """A ConfigError prefixed with the method name."""
        return ConfigError(f"{self.method or type(self).__name__}: {message}")


def replace_settings(settings: Any, overrides: dict[str, Any], where: str = "settings") -> Any:
    """Return a copy of the dataclass ``settings`` with ``overrides`` applied, each converted to its field's
    type (so CLI ``--epochs 3`` and YAML values work) and validated.

    Raises
    ------
    ConfigError
        For an unknown field (the message lists the valid ones), a value that does not convert, or one that
        breaks the field's constraint.
    """
    fields = {f.name: f for f in dataclasses.fields(settings)}
    clean: dict[str, Any] = {}
    for key, value in overrides.items():
        key = key.replace("-", "_")
        if key not in fields:
            raise ConfigError(
                f"{where}: unknown setting {key!r}; valid settings: {', '.join(sorted(fields))}")
        kind = _annotation(settings, key, getattr(settings, key))
        clean[key] = _check_field(type(settings), key, value, kind, where)
    return dataclasses.replace(settings, **clean)
