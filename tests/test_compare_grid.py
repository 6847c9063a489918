"""``compare --grid``: one setting of a method over a list of values (DocBERT's length and epoch analyses).

Expansion into variants and their names, the forms of the grid (CLI, YAML, API), bad grids failing before any
file, the grid report (JSON, CSV, plot, table section, ``frugaltext report``) and resume of grid rows.
"""

from __future__ import annotations

import csv
import json

import pytest
import yaml
from typer.testing import CliRunner

import frugaltext
from frugaltext.cli.app import app
from frugaltext.errors import ConfigError
from frugaltext.experiment.config import (
    CompareConfig,
    expand_grid,
    grid_row_name,
    method_settings,
    resolve_config,
)
from frugaltext.experiment.results import read_results
from frugaltext.experiment.runner import run_compare
from frugaltext.reports import build_reports
from frugaltext.reports.grid import render_grid_section, summarize_grid
from tests.fake_methods import FIT_CALLS, fake_methods  # noqa: F401 - fixture
from tests.test_compare import _config, _toy_dir

pytestmark = pytest.mark.usefixtures("fake_methods")

FAST_COST = {
    "cost.measure_energy": False,
    "cost.throughput_n_docs": 8,
    "cost.latency_n_docs": 2,
    "cost.min_throughput_duration_s": 0,
}


# ---- expansion and naming ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "setting", "value", "name"),
    [
        ("bert", "max_length", 64, "bert@max_length-64"),
        ("bert", "epochs", 2.0, "bert@epochs-2"),
        ("tfidf-lr", "C", 0.1, "tfidf-lr@C-0.1"),
        ("tfidf-lr", "C", 1e20, "tfidf-lr@C-1e20"),
        ("tfidf-lr", "C", 1e-05, "tfidf-lr@C-1e-05"),
        ("x", "shift", -3, "x@shift--3"),
        ("tfidf-lr", "sublinear_tf", False, "tfidf-lr@sublinear_tf-false"),
        ("tfidf-lr", "max_features", None, "tfidf-lr@max_features-none"),
        ("bert", "padding", "max length/x", "bert@padding-max_length_x"),
        ("bert", "encoder_layers", (0, 2, 4), "bert@encoder_layers-0_2_4"),
        ("topicbert@p2", "n_topics", 50, "topicbert@p2.n_topics-50"),
    ],
)
def test_grid_row_names_are_valid_variants_and_safe_folder_names(method, setting, value, name):
    assert grid_row_name(method, setting, value) == name
    CompareConfig(methods=(name,))  # a valid variant name


def test_grid_expands_into_variants_in_place_of_the_method(tmp_path):
    cfg = _config(tmp_path, _toy_dir(tmp_path), methods="test-majority,test-keyword,tfidf-lr",
                  grid="test-keyword.smoothing=0.5,2,10", **{"test-keyword.epochs": "3"})
    assert cfg.grid == {"test-keyword.smoothing": [0.5, 2.0, 10.0]}  # converted by the method's Settings
    expanded, points = expand_grid(cfg)
    assert expanded.methods == ("test-majority", "test-keyword@smoothing-0.5", "test-keyword@smoothing-2",
                                "test-keyword@smoothing-10", "tfidf-lr")
    assert expanded.grid == {}
    assert method_settings("test-keyword@smoothing-2", expanded.settings) == {"epochs": 3, "smoothing": 2.0}
    assert points["test-keyword@smoothing-10"].as_row() == {
        "method": "test-keyword", "setting": "smoothing", "value": 10.0}
    assert expand_grid(expanded) == (expanded, {})


def test_grid_over_a_variant_keeps_the_variants_settings(tmp_path):
    cfg = _config(tmp_path, _toy_dir(tmp_path), methods="test-keyword@rough",
                  grid={"test-keyword@rough.epochs": [1, 4]}, **{"test-keyword@rough.smoothing": "50"})
    expanded, _ = expand_grid(cfg)
    assert expanded.methods == ("test-keyword@rough.epochs-1", "test-keyword@rough.epochs-4")
    settings = method_settings("test-keyword@rough.epochs-4", expanded.settings)
    assert settings == {"smoothing": 50.0, "epochs": 4}


def test_grid_forms_cli_yaml_and_api_agree_and_config_yaml_round_trips(tmp_path):
    methods = "tfidf-lr,tfidf-svm"
    expected = {"tfidf-lr.C": [0.1, 1.0, 10.0]}
    for grid in ("tfidf-lr.C=0.1,1,10", ["tfidf-lr.C=0.1, 1, 10"], {"tfidf-lr.C": [0.1, 1, 10]},
                 {"tfidf-lr.C": "0.1,1,10"}, {"tfidf-lr": {"C": [0.1, 1, 10]}}):
        assert resolve_config(overrides={"methods": methods, "grid": grid}).grid == expected, grid
    config_file = tmp_path / "c.yaml"
    config_file.write_text(yaml.safe_dump({"methods": ["tfidf-lr", "bert"],
                                           "grid": {"tfidf-lr.C": [0.1, 1, 10], "bert.max-length": [64]}}))
    cfg = resolve_config(config_file=config_file)
    assert cfg.grid == {**expected, "bert.max_length": [64]}
    # the command line replaces the file's grid of the same method, and keeps the others
    cfg = resolve_config(config_file=config_file, overrides={"grid": "tfidf-lr.max_iter=50,100"})
    assert cfg.grid == {"bert.max_length": [64], "tfidf-lr.max_iter": [50, 100]}
    (tmp_path / "out").mkdir()
    from frugaltext.experiment.config import write_config

    write_config(cfg, tmp_path / "out" / "config.yaml")
    assert resolve_config(config_file=tmp_path / "out" / "config.yaml").grid == cfg.grid


# ---- bad grids ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ("tfidf-lr.C=", r"grid tfidf-lr\.C: no values; give at least one"),
        ({"tfidf-lr.C": []}, r"grid tfidf-lr\.C: no values"),
        ("tfidf-lr.C=1,abc", r"grid tfidf-lr\.C, value 'abc' \(method 'tfidf-lr'\): setting 'C': cannot"),
        ("tfidf-lr.C=1,-1", r"grid tfidf-lr\.C, value '-1' .*setting 'C': must be > 0"),
        ("tfidf-lr.C=1,nan", r"value 'nan' .*finite"),
        ({"tfidf-lr.sublinear_tf": [True, "maybe"]}, r"value 'maybe' .*must be true or false"),
        ("tfidf-lr.gamma=1,2", r"grid tfidf-lr\.gamma: unknown setting 'gamma' of method 'tfidf-lr'; valid "
                               r"settings: C, "),
        ("nope.C=1,2", r"grid nope\.C: unknown method 'nope'; available methods: .*tfidf-lr"),
        ("bert.max_length=64,128", r"grid bert\.max_length: method 'bert' is not among the methods "
                                   r"\(tfidf-lr, tfidf-svm\); add it to --methods"),
        ("tfidf-lr.C=1,1.0", r"grid tfidf-lr\.C: value '1\.0' is listed twice"),
        (["tfidf-lr.C=1,2", "tfidf-lr.max_iter=5,9"],
         r"'tfidf-lr' already has a grid over 'C'; a grid varies one setting per method"),
        ("tfidf-lr.C", r"grid 'tfidf-lr\.C' must be written METHOD\.SETTING=v1,v2"),
        ("C=1,2", r"grid key 'C' must be METHOD\.SETTING"),
        (3, r"grid must map METHOD\.SETTING to a list of values"),
    ],
)
def test_bad_grids_fail_before_any_file_naming_method_setting_and_value(tmp_path, grid, message):
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match=message):
        frugaltext.compare(data=str(_toy_dir(tmp_path)), methods="tfidf-lr,tfidf-svm", output=out,
                           progress=False, grid=grid, **FAST_COST)
    assert not out.exists()


def test_a_bad_grid_given_straight_to_run_compare_fails_before_any_file(tmp_path):
    cfg = CompareConfig(data=str(_toy_dir(tmp_path)), methods=("tfidf-lr",), output=str(tmp_path / "out"),
                        grid={"tfidf-lr.C": ["0.5", "zero"]})
    with pytest.raises(ConfigError, match=r"grid tfidf-lr\.C, value 'zero'"):
        run_compare(cfg, progress=False)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="grid must map"):
        CompareConfig(grid={"tfidf-lr.C": 3})


def test_a_grid_row_also_listed_in_methods_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"grid row 'tfidf-lr@C-2' is also listed in methods"):
        resolve_config(overrides={"methods": "tfidf-lr,tfidf-lr@C-2", "grid": "tfidf-lr.C=1,2"})


# ---- the run and its report --------------------------------------------------------------------------------


def test_grid_run_writes_rows_json_csv_plot_and_table_section(tmp_path):
    data = _toy_dir(tmp_path)
    out = tmp_path / "out"
    result = frugaltext.compare(data=str(data), methods=["tfidf-lr", "test-majority"], seeds=2, output=out,
                                progress=False, grid={"tfidf-lr.C": [10, 0.01, 1]}, **FAST_COST)
    names = ["tfidf-lr@C-10", "tfidf-lr@C-0.01", "tfidf-lr@C-1", "test-majority"]
    assert result.ran == [f"{n}-seed{s}" for n in names for s in (0, 1)]
    rows = read_results(out / "results.json")
    by_name = {(r["method"], r["seed"]): r for r in rows}
    low = by_name[("tfidf-lr@C-0.01", 1)]
    assert low["settings"]["C"] == 0.01
    assert low["grid"] == {"method": "tfidf-lr", "setting": "C", "value": 0.01}
    assert "grid" not in by_name[("test-majority", 0)]
    assert (out / "models" / "tfidf-lr@C-0.01-seed1").is_dir()

    summary = json.loads((out / "grid_tfidf-lr_C.json").read_text())
    assert (summary["method"], summary["setting"]) == ("tfidf-lr", "C")
    assert summary["datasets"] == ["toy"] and summary["eval_splits"] == ["test"]
    points = summary["points"]
    assert [p["value"] for p in points] == [0.01, 1.0, 10.0]  # sorted by value, not run order
    for p in points:
        seeds = [by_name[(p["row"], s)] for s in (0, 1)]
        assert p["seeds"] == [0, 1] and p["n_seeds"] == 2
        assert p["macro_f1_mean"] == pytest.approx(sum(r["macro_f1"] for r in seeds) / 2)
        assert p["micro_f1_mean"] == pytest.approx(sum(r["micro_f1"] for r in seeds) / 2)
        assert p["train_duration_s_mean"] == pytest.approx(sum(r["train_duration_s"] for r in seeds) / 2)
        assert p["train_duration_s_mean"] > 0 and p["macro_f1_std"] >= 0
        assert p["epoch_durations_s"] == [r["epoch_durations_s"] for r in seeds]
        assert "epoch_duration_s_mean" in p and "n_epochs_mean" in p
    assert points[2]["macro_f1_mean"] >= points[0]["macro_f1_mean"]  # weaker regularisation fits better

    with open(out / "grid_tfidf-lr_C.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [float(r["value"]) for r in table] == [0.01, 1.0, 10.0]
    assert float(table[1]["macro_f1_mean"]) == pytest.approx(points[1]["macro_f1_mean"])
    assert table[0]["row"] == "tfidf-lr@C-0.01" and table[0]["seeds"] == "[0, 1]"

    assert (out / "grid_tfidf-lr_C.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (out / "grid_tfidf-lr_C.svg").read_bytes()[:500]
    assert result.paths["grid_tfidf-lr_C_png"] == out / "grid_tfidf-lr_C.png"
    markdown = (out / "table.md").read_text()
    assert "### tfidf-lr over C (toy, test split)" in markdown and "| 0.01 | 2 |" in markdown
    assert yaml.safe_load((out / "config.yaml").read_text())["grid"] == {"tfidf-lr.C": [10.0, 0.01, 1.0]}
    assert yaml.safe_load((out / "config.yaml").read_text())["methods"] == ["tfidf-lr", "test-majority"]

    # `frugaltext report DIR` remakes them from results.json alone
    for suffix in ("json", "csv", "png", "svg"):
        (out / f"grid_tfidf-lr_C.{suffix}").unlink()
    report = build_reports(out)
    assert json.loads((out / "grid_tfidf-lr_C.json").read_text()) == summary
    assert report.paths["grid_tfidf-lr_C_svg"].is_file() and (out / "grid_tfidf-lr_C.png").is_file()


def test_grid_rows_resume_and_a_new_value_trains_only_itself(tmp_path):
    data = _toy_dir(tmp_path)
    FIT_CALLS.clear()
    cfg = _config(tmp_path, data, methods="test-keyword", grid="test-keyword.smoothing=0.5,1,2")
    first = run_compare(cfg, progress=False)
    assert len(first.ran) == 3 and sum(FIT_CALLS.values()) == 3
    again = run_compare(cfg, progress=False)
    assert again.ran == [] and len(again.skipped) == 3 and sum(FIT_CALLS.values()) == 3
    wider = _config(tmp_path, data, methods="test-keyword", grid="test-keyword.smoothing=0.5,1,2,4")
    third = run_compare(wider, progress=False)
    assert third.ran == ["test-keyword@smoothing-4-seed0"] and sum(FIT_CALLS.values()) == 4
    summary = json.loads((tmp_path / "out" / "grid_test-keyword_smoothing.json").read_text())
    assert [p["value"] for p in summary["points"]] == [0.5, 1.0, 2.0, 4.0]
    assert all(p["n_epochs_mean"] == 2 for p in summary["points"])  # the fake records 2 epochs


def test_cli_grid_option_runs_and_lists_the_grid_files(tmp_path):
    data = _toy_dir(tmp_path)
    out = tmp_path / "out"
    args = ["compare", "--data", data, "--methods", "test-majority,test-keyword", "--output", out,
            "--no-progress", "--grid", "test-keyword.smoothing=0.5,2", "--cost.measure-energy", "false",
            "--cost.throughput-n-docs", "8", "--cost.latency-n-docs", "2",
            "--cost.min-throughput-duration-s", "0"]
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert "3 run(s) trained" in result.stdout and "grid_test-keyword_smoothing.png" in result.stdout
    assert {r["method"] for r in read_results(out / "results.json")} == {
        "test-majority", "test-keyword@smoothing-0.5", "test-keyword@smoothing-2"}
    bad = CliRunner().invoke(app, [str(a) for a in [*args[:-8], "--grid", "test-keyword.smoothing=1,x"]])
    assert bad.exit_code == 1 and "grid test-keyword.smoothing, value 'x'" in bad.stderr


def test_summary_of_hand_made_rows_keeps_text_values_in_order_and_missing_costs_as_none(tmp_path):
    def row(value, seed, f1, duration):
        return {"method": f"bert@padding-{value}", "seed": seed, "macro_f1": f1, "micro_f1": f1,
                "accuracy": f1, "train_duration_s": duration, "epoch_duration_s": None, "n_epochs": 0,
                "dataset": "r8", "eval_split": "test",
                "grid": {"method": "bert", "setting": "padding", "value": value}}

    rows = [row("max_length", 0, 0.5, 10.0), row("dynamic", 0, 0.7, None), row("max_length", 1, 0.7, 12.0),
            {"method": "tfidf-svm", "seed": 0, "macro_f1": 0.9}]
    summary = summarize_grid(rows, "bert", "padding")
    fixed, dynamic = summary["points"]
    assert (fixed["value"], dynamic["value"]) == ("max_length", "dynamic")  # first appearance
    assert fixed["macro_f1_mean"] == pytest.approx(0.6)
    assert fixed["macro_f1_std"] == pytest.approx(0.1414, 1e-3)
    assert fixed["train_duration_s_mean"] == pytest.approx(11.0)
    assert dynamic["train_duration_s_mean"] is None and dynamic["macro_f1_std"] == 0.0
    (tmp_path / "results.json").write_text(json.dumps(rows))
    report = build_reports(tmp_path / "results.json", reference="tfidf-svm")
    assert report.paths["grid_bert_padding_png"].is_file()
    assert "| dynamic | 1 | 0.700 ± 0.000 | 0.700 | – | – |" in report.markdown


def test_grid_section_writes_long_times_as_whole_seconds():
    def row(value, duration, epoch):
        return {"method": f"bert@max_length-{value}", "seed": 0, "macro_f1": 0.9, "micro_f1": 0.95,
                "accuracy": 0.95, "train_duration_s": duration, "epoch_duration_s": epoch, "n_epochs": 3,
                "dataset": "r8", "eval_split": "test",
                "grid": {"method": "bert", "setting": "max_length", "value": value}}

    summary = summarize_grid([row(64, 268.0, 86.1), row(512, 1100.49, 327.9)], "bert", "max_length")
    section = render_grid_section([summary])
    assert "| 512 | 1 | 0.900 ± 0.000 | 0.950 | 1100 | 328 |" in section
    assert "| 64 | 1 | 0.900 ± 0.000 | 0.950 | 268 | 86.1 |" in section
    assert "e+" not in section
