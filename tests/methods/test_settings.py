"""The declarative settings validator (frugaltext.settings) as the methods use it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest

from frugaltext.errors import ConfigError
from frugaltext.methods import get_method_class
from frugaltext.methods.base import coerce_value as old_coerce_value
from frugaltext.methods.base import replace_settings as old_replace_settings
from frugaltext.settings import ValidatedSettings, coerce_value, replace_settings, setting


@dataclass(frozen=True)
class ToySettings(ValidatedSettings):
    method: ClassVar[str] = "toy"

    epochs: float = setting(3.0, gt=0)
    batch_size: int = setting(16, ge=1)
    padding: str = setting("dynamic", choices=("dynamic", "max_length"))
    dropout: float | None = setting(None, ge=0, le=1)
    sizes: tuple[int, ...] = (3, 4)
    select_best: bool = True


def test_a_bool_is_not_a_number():
    with pytest.raises(ConfigError, match="method 'tfidf-svm': setting 'C': must be a number, got the bool"):
        get_method_class("tfidf-svm")(C=True)  # YAML `C: true`
    with pytest.raises(ConfigError, match="'batch_size': must be an integer, got the boolean"):
        ToySettings(batch_size=False)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", float("nan"), float("inf")])
def test_nan_and_inf_are_rejected(value):
    with pytest.raises(ConfigError, match="method 'bert': setting 'epochs': must be a finite number"):
        get_method_class("bert")(epochs=value)  # --bert.epochs nan


def test_negative_c_is_rejected_before_scikit_learn():
    with pytest.raises(ConfigError, match=r"method 'tfidf-svm': setting 'C': must be > 0, got -1.0; set a"):
        get_method_class("tfidf-svm")(C="-1")
    with pytest.raises(ConfigError, match="tfidf: setting 'C': must be > 0"):
        get_method_class("tfidf-lr").Settings(C=0)


def test_an_unknown_choice_lists_the_choices():
    with pytest.raises(ConfigError, match="toy: setting 'padding': got 'longest'; choose one of 'dynamic', "
                                          "'max_length'"):
        ToySettings(padding="longest")
    with pytest.raises(ConfigError, match="choose one of 'mse', 'kl'"):
        get_method_class("distill-cnn")(loss="ce", teacher="/x")


@pytest.mark.parametrize("text", ["none", "None", "null", ""])
def test_optional_settings_accept_none(text):
    settings = replace_settings(ToySettings(dropout=0.1), {"dropout": text}, where="method 'toy'")
    assert settings.dropout is None
    assert get_method_class("bert")(dropout=text).settings.dropout is None
    with pytest.raises(ConfigError, match="'epochs': must be a number, got None"):
        ToySettings(epochs=None)


def test_strings_from_the_cli_are_converted():
    settings = replace_settings(ToySettings(), {"epochs": "2", "batch-size": "8", "sizes": "3,4,5",
                                                "select_best": "no", "dropout": "0.25"}, where="cli")
    assert settings == ToySettings(epochs=2.0, batch_size=8, sizes=(3, 4, 5), select_best=False, dropout=0.25)
    assert isinstance(ToySettings(epochs=2).epochs, float)  # an int is accepted for a float
    assert ToySettings(sizes=[5, 6]).sizes == (5, 6)  # YAML lists
    with pytest.raises(ConfigError, match="cli: setting 'batch_size': must be an integer, got 2.5"):
        replace_settings(ToySettings(), {"batch_size": 2.5}, where="cli")
    with pytest.raises(ConfigError, match=r"cli: unknown setting 'epoch'; valid settings: batch_size, drop"):
        replace_settings(ToySettings(), {"epoch": 2}, where="cli")


def test_a_subclass_default_keeps_the_parent_constraint():
    settings = get_method_class("scratch-lstm-reg").Settings  # overrides batch_size = 64 with a plain default
    with pytest.raises(ConfigError, match="'batch_size': must be >= 1"):
        settings(batch_size=0)
    with pytest.raises(ConfigError, match="'lam': must be >= 0"):
        get_method_class("distill-lstm-reg")(lam="-1", teacher="/x")


def test_coerce_value_takes_a_type_or_a_current_value():
    assert coerce_value("3", 1.0, "x") == 3.0
    assert coerce_value("none", int | None, "x") is None
    assert coerce_value("anything", None, "x") == "anything"  # unknown type: unchanged
    with pytest.raises(ConfigError, match="x: cannot read 'abc' as float"):
        coerce_value("abc", float, "x")
    assert old_coerce_value is coerce_value and old_replace_settings is replace_settings  # old import path
