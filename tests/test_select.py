"""``frugaltext select`` (:mod:`frugaltext.selection`) on results files written by hand, with tiny fake model
folders; and ``compare --select`` with the fake methods."""

from __future__ import annotations

import json
import math
import os

import pytest
import yaml
from typer.testing import CliRunner

import frugaltext
from frugaltext.cli.app import app
from frugaltext.errors import ConfigError, DataNotFoundError, ModelLoadError
from frugaltext.experiment.config import CompareConfig, resolve_config
from frugaltext.selection import NoCandidateError, check_min_retention, choose, select
from tests.fake_methods import fake_methods  # noqa: F401 - fixture registering test-majority, ...
from tests.test_compare import _toy_dir


def _row(method, seed, f1, energy_kwh_per_doc=3e-7, latency_ms=50.0, throughput=20.0, train_s=100.0,
         n_params=1_000_000, **extra):
    row = {
        "method": method,
        "seed": seed,
        "dataset": "toy",
        "macro_f1": f1,
        "inference_energy_kwh_per_doc": energy_kwh_per_doc,
        "latency_ms": latency_ms,
        "latency_batch_size": 1,
        "throughput_docs_per_s": throughput,
        "throughput_batch_size": 32,
        "train_duration_s": train_s,
        "n_params": n_params,
        "model_dir": f"runs/elsewhere/models/{method}-seed{seed}",  # relative to where compare ran
    }
    row.update(extra)
    return row


def _run(tmp_path, rows, models=True, name="run"):
    """Write RUN/results.json and, for each row, a fake saved model RUN/models/<method>-seed<k>/."""
    run = tmp_path / name
    run.mkdir()
    (run / "results.json").write_text(json.dumps(rows))
    if models:
        for r in rows:
            _model(run, r["method"], r["seed"])
    return run


def _model(run, method, seed):
    folder = run / "models" / f"{method}-seed{seed}"
    folder.mkdir(parents=True)
    (folder / "frugaltext_method.json").write_text(json.dumps({"method": method, "settings": {}}))
    (folder / "weights.bin").write_bytes(f"{method}/{seed}".encode())
    (folder / "sub").mkdir()
    (folder / "sub" / "vocab.txt").write_text("oil\nwheat\n")
    return folder


# A reference ("big", mean macro-F1 0.90) and one method that wins each objective among those keeping 99 %
# of it; "tiny" is the cheapest at everything but keeps 88.9 % only.
ROWS = [
    _row("big", 0, 0.89, 1.0e-6, 50.0, 20.0, 1000.0, 100_000_000),
    _row("big", 1, 0.91, 1.0e-6, 50.0, 20.0, 1000.0, 100_000_000),
    # mean macro-F1 0.895 (99.4 %) although seed 0 alone (0.885) keeps 98.3 %; mean energy 2e-7
    _row("small", 0, 0.885, 1.0e-7, 30.0, 30.0, 300.0, 20_000_000),
    _row("small", 1, 0.905, 3.0e-7, 30.0, 30.0, 300.0, 20_000_000),
    _row("fast", 0, 0.893, 3.0e-7, 5.0, 25.0, 500.0, 30_000_000),
    _row("wide", 0, 0.892, 4.0e-7, 40.0, 200.0, 800.0, 40_000_000),
    _row("cheaptrain", 0, 0.894, 5.0e-7, 45.0, 22.0, 10.0, 50_000_000),
    _row("tiny", 0, 0.80, 1.0e-9, 0.1, 9999.0, 1.0, 1000),
]


@pytest.mark.parametrize(
    ("objective", "pick", "runner_up"),
    [("energy", "small", "fast"), ("latency", "fast", "small"), ("throughput", "wide", "small"),
     ("train-time", "cheaptrain", "small")],
)
def test_the_pick_and_runner_up_for_each_objective(tmp_path, objective, pick, runner_up):
    run = _run(tmp_path, ROWS)
    selection = select(run, min_retention=99, objective=objective, reference="big")
    assert selection.selected.method == pick and selection.runner_up.method == runner_up
    assert selection.reference == "big" and selection.reference_source == "asked"
    assert selection.reference_macro_f1 == pytest.approx(0.90)
    tiny = next(c for c in selection.candidates if c.method == "tiny")
    assert not tiny.eligible and tiny.rank is None and tiny.reason == "retention below 99 %"
    ranks = [c.rank for c in selection.candidates if c.eligible]
    assert ranks == list(range(1, 6))  # big and the four others


def test_means_over_seeds_decide(tmp_path):
    selection = select(_run(tmp_path, ROWS), min_retention=99, objective="energy", reference="big")
    small = selection.selected
    assert small.seeds == [0, 1] and small.macro_f1 == pytest.approx(0.895)
    assert small.retention_pct == pytest.approx(0.895 / 0.90 * 100)
    assert small.objective_value == pytest.approx(2e-4)  # mean of 1e-7 and 3e-7 kWh/doc, x 1000 docs
    assert small.energy_kwh_per_1000_docs == pytest.approx(2e-4)


def test_ties_go_to_macro_f1_then_fewer_parameters_then_the_name(tmp_path):
    energy = 3e-7
    rows = [
        _row("b-model", 0, 0.96, energy, n_params=20),
        _row("c-model", 0, 0.96, energy * (1 + 1e-13), n_params=10),  # float noise is a tie
        _row("a-model", 0, 0.95, energy, n_params=5),
        _row("d-model", 0, 0.96, energy, n_params=10),
        _row("z-costly", 0, 0.99, energy * 1.01, n_params=1),
    ]
    candidates, _ = choose(rows, min_retention=90, objective="energy", reference="z-costly")
    assert [c.method for c in candidates] == ["c-model", "d-model", "b-model", "a-model", "z-costly"]
    for objective in ("latency", "throughput", "train-time"):  # all equal: the same tie-break
        candidates, _ = choose(rows, min_retention=90, objective=objective, reference="z-costly")
        assert [c.method for c in candidates[:2]] == ["z-costly", "c-model"]
    # the order does not depend on the order of the rows
    candidates, _ = choose(rows[::-1], min_retention=90, objective="energy", reference="z-costly")
    assert [c.method for c in candidates][:4] == ["c-model", "d-model", "b-model", "a-model"]


def test_without_reference_the_best_method_is_the_reference_and_an_absent_one_is_an_error(tmp_path):
    run = _run(tmp_path, ROWS)
    selection = select(run, min_retention=99, objective="energy", copy_model=False)
    assert selection.reference == "big" and selection.reference_source == "best"
    assert selection.requested_reference is None and selection.selected_dir is None
    assert not (run / "selected").exists()
    present = r"methods present: big, small, fast, wide, cheaptrain, tiny"
    with pytest.raises(ConfigError, match=rf"method 'bert' has no rows.*{present}.*leave --reference out"):
        select(run, reference="bert")
    result = _invoke("select", run, "--reference", "bert")
    assert result.exit_code == 1 and "methods present: big, small" in result.stderr
    assert "Traceback" not in result.output


def test_nothing_meeting_the_constraint_gives_the_best_retention_and_exit_code_1(tmp_path):
    run = _run(tmp_path, ROWS)
    with pytest.raises(NoCandidateError) as info:
        select(run, min_retention=105, reference="big")
    assert info.value.best_method == "big" and info.value.best_retention == pytest.approx(100.0)
    rows = [*ROWS, _row("better", 0, 0.918)]  # 102 % of big
    run2 = _run(tmp_path, rows, name="run2")
    result = _invoke("select", run2, "--min-retention", "105", "--reference", "big")
    assert result.exit_code == 1
    assert "no method keeps 105 % of big's mean macro-F1 (0.900)" in result.stderr
    assert "the best retention is 102.0 % (better, macro-F1 0.918)" in result.stderr
    assert "lower --min-retention to 102 or below" in result.stderr
    assert not (run2 / "selected").exists()
    # methods that meet the constraint but lack the objective in one seed: said so
    rows = [_row("big", 0, 0.9, energy_kwh_per_doc=None), _row("big", 1, 0.9)]
    with pytest.raises(NoCandidateError, match="big meets the constraint but lacks inference_energy_kwh_per"):
        select(_run(tmp_path, rows, name="run3"), objective="energy")


@pytest.mark.parametrize("bad", [-1, math.nan, math.inf, 0.99, True, "much"])
def test_min_retention_out_of_range_is_a_clear_error(tmp_path, bad):
    run = _run(tmp_path, ROWS)
    with pytest.raises(ConfigError, match="min_retention"):
        select(run, min_retention=bad)
    assert check_min_retention(0) == 0.0 and check_min_retention("95") == 95.0


def test_min_retention_and_objective_errors_through_the_cli(tmp_path):
    run = _run(tmp_path, ROWS)
    result = _invoke("select", run, "--min-retention=-5")
    assert result.exit_code == 1 and "min_retention must be a percentage" in result.stderr
    result = _invoke("select", run, "--min-retention", "0.95")
    assert result.exit_code == 1 and "write 95 for 95 %" in result.stderr
    result = _invoke("select", run, "--objective", "speed")
    assert result.exit_code == 1 and "choose one of energy, latency, throughput, train-time" in result.stderr
    result = _invoke("select", tmp_path / "nothing")
    assert result.exit_code == 1 and "results.json does not exist" in result.stderr


def test_selected_folder_readme_and_selection_json(tmp_path):
    run = _run(tmp_path, ROWS)
    selection = select(run, min_retention=99, objective="energy", reference="big")
    out = run / "selected"
    assert selection.selected_dir == out and selection.seed == 0  # lower middle of 2 seeds (0.885 < 0.905)
    source = run / "models" / "small-seed0"
    assert selection.source_model_dir == source
    for name in ("frugaltext_method.json", "weights.bin", "sub/vocab.txt"):
        assert (out / name).read_bytes() == (source / name).read_bytes()
    assert selection.transfer == "hardlink"  # tmp_path: one filesystem
    assert os.stat(out / "weights.bin").st_ino == os.stat(source / "weights.bin").st_ino

    readme = (out / "README.md").read_text()
    assert readme.startswith("# Selected model: small (seed 0)")
    assert "at least 99 % of the reference's, i.e. at least 0.8910" in readme
    assert "big (as asked): mean macro-F1 0.9000 over 2 seed(s)" in readme
    assert "energy = mean inference energy (kWh per 1,000 documents; lower is better" in readme
    assert "**Runner-up:** fast:" in readme
    assert "| 1 | small | 2 | 0.895 ± 0.014 | 99.4 | 0.0002 |" in readme
    assert "| – | tiny | 1 | 0.800 ± 0.000 | 88.9 |" in readme and "no: retention below 99 %" in readme
    assert f"frugaltext select {run} --min-retention 99 --objective energy --reference big" in readme
    assert "hard-linked" in readme

    facts = json.loads((out / "selection.json").read_text())
    assert facts["selected"]["method"] == "small" and facts["selected"]["seed"] == 0
    assert facts["selected"]["transfer"] == "hardlink" and facts["selected"]["rank"] == 1
    assert facts["runner_up"]["method"] == "fast"
    assert facts["constraint"] == {"min_retention_pct": 99.0, "metric": "macro_f1",
                                   "threshold_macro_f1": pytest.approx(0.891)}
    assert facts["objective"]["name"] == "energy" and facts["objective"]["better"] == "lower"
    assert facts["objective"]["unit"] == "kWh per 1,000 documents"
    assert facts["reference"] == {"method": "big", "macro_f1": pytest.approx(0.9), "source": "asked",
                                  "requested": "big"}
    assert [c["method"] for c in facts["candidates"]][:2] == ["small", "fast"]
    assert facts["command"] == selection.command and facts["missing_model_dirs"] == []


def test_copy_instead_of_hardlink_and_the_median_seed(tmp_path):
    rows = [_row("m", 0, 0.90), _row("m", 1, 0.80), _row("m", 2, 0.85)]
    run = _run(tmp_path, rows)
    selection = select(run, objective="latency", copy=True)
    assert selection.seed == 2 and selection.seed_macro_f1 == 0.85  # the median of 3 seeds
    assert selection.transfer == "copy" and "--copy" in selection.command
    weights = run / "selected" / "weights.bin"
    assert weights.read_bytes() == b"m/2"
    assert os.stat(weights).st_ino != os.stat(run / "models" / "m-seed2" / "weights.bin").st_ino
    assert "copied" in (run / "selected" / "README.md").read_text()


def test_an_older_selection_is_replaced_atomically(tmp_path, monkeypatch):
    run = _run(tmp_path, ROWS)
    old = run / "selected"
    old.mkdir()
    (old / "stale.txt").write_text("from an older selection")
    select(run, objective="latency", reference="big")
    assert not (old / "stale.txt").exists() and (old / "weights.bin").read_bytes() == b"fast/0"
    assert sorted(p.name for p in run.iterdir()) == ["models", "results.json", "selected"]  # no temp folders

    def broken(selection):
        raise OSError("disk full")

    monkeypatch.setattr("frugaltext.selection.render_readme", broken)
    with pytest.raises(OSError, match="disk full"):
        select(run, objective="energy", reference="big")
    assert (old / "weights.bin").read_bytes() == b"fast/0"  # the earlier selection is untouched
    assert sorted(p.name for p in run.iterdir()) == ["models", "results.json", "selected"]
    result = _invoke("select", run, "--reference", "big")
    assert result.exit_code == 1 and "could not write" in result.stderr and "disk full" in result.stderr
    assert "Traceback" not in result.output


def test_missing_model_folders_count_but_the_picks_must_exist(tmp_path):
    run = _run(tmp_path, ROWS)
    for name in ("tiny-seed0", "wide-seed0"):
        for path in sorted((run / "models" / name).rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
        (run / "models" / name).rmdir()
    selection = select(run, objective="energy", reference="big")
    assert selection.selected.method == "small"
    assert selection.missing_model_dirs == ["wide-seed0", "tiny-seed0"]
    assert "Model folders not found (their rows still count): wide-seed0, tiny-seed0." in (
        run / "selected" / "README.md").read_text()
    with pytest.raises(ModelLoadError, match=r"the pick is wide, whose median-macro-F1 seed 0 has no model "
                                             r"folder \(looked at .*wide-seed0.*--no-copy"):
        select(run, objective="throughput", reference="big")
    assert select(run, objective="throughput", reference="big", copy_model=False).selected.method == "wide"


def test_model_folders_are_found_in_the_run_before_the_stored_path(tmp_path):
    elsewhere = tmp_path / "old-place"
    stored = _model(elsewhere, "m", 0)
    (stored / "weights.bin").write_bytes(b"another run's model")
    rows = [_row("m", 0, 0.9, model_dir=str(stored))]
    run = _run(tmp_path, rows)  # a moved run: its own models/ wins over the stored absolute path
    assert select(run).source_model_dir == run / "models" / "m-seed0"
    (run / "models" / "m-seed0" / "frugaltext_method.json").unlink()
    with pytest.raises(ModelLoadError, match="no frugaltext_method.json, so it is not a saved model"):
        select(run)
    run2 = _run(tmp_path, rows, models=False, name="run2")  # only the stored path exists
    assert select(run2).source_model_dir == stored


def test_missing_results_and_the_python_api_export(tmp_path):
    with pytest.raises(DataNotFoundError, match="results.json does not exist"):
        select(tmp_path)
    run = _run(tmp_path, ROWS)
    assert frugaltext.select is select
    selection = frugaltext.select(run / "results.json", min_retention=99, objective="energy", reference="big")
    assert selection.run_dir == run and selection.selected.method == "small"


def test_cli_prints_the_pick_runner_up_and_candidates(tmp_path):
    run = _run(tmp_path, ROWS)
    result = _invoke("select", run, "--min-retention", "99", "--objective", "energy", "--reference", "big")
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "Selected: small: macro-F1 0.8950 (99.4 % of big)" in text
    assert "Runner-up: fast:" in text and "tiny" in text and "cheaptrain" in text
    assert "mean over the method's seeds" in text
    assert (run / "selected" / "selection.json").is_file()
    dry = _invoke("select", run, "--objective", "latency", "--no-copy")
    assert dry.exit_code == 0 and "nothing written (--no-copy)" in " ".join(dry.stdout.split())
    assert json.loads((run / "selected" / "selection.json").read_text())["objective"]["name"] == "energy"


# ---- the select block of compare ------------------------------------------------------------------------


def test_select_block_in_yaml_and_on_the_command_line(tmp_path):
    assert resolve_config().select is None
    path = tmp_path / "c.yaml"
    path.write_text("select: {min_retention: 95, objective: latency}\n")
    assert resolve_config(config_file=path).select == {"min_retention": 95.0, "objective": "latency",
                                                       "reference": None}
    cfg = resolve_config(config_file=path, overrides={"select.objective": "throughput"})
    assert cfg.select == {"min_retention": 95.0, "objective": "throughput", "reference": None}
    assert resolve_config(config_file=path, overrides={"select": "false"}).select is None
    assert resolve_config(overrides={"select": "true"}).select["objective"] == "energy"
    assert resolve_config(overrides={"select.min-retention": "90"}).select["min_retention"] == 90.0
    assert CompareConfig(select=True).select == {"min_retention": 99.0, "objective": "energy",
                                                 "reference": None}
    with pytest.raises(ConfigError, match="unknown select setting 'goal'; valid: min_retention, objective"):
        resolve_config(overrides={"select.goal": "energy"})
    with pytest.raises(ConfigError, match="contradicts --select.objective"):
        resolve_config(overrides={"select": False, "select.objective": "energy"})
    path.write_text("select: {min_retention: 0.9}\n")
    with pytest.raises(ConfigError, match=r"c.yaml: select: min_retention is in percent"):
        resolve_config(config_file=path)
    path.write_text("select: {objective: co2}\n")
    with pytest.raises(ConfigError, match="unknown select objective 'co2'"):
        resolve_config(config_file=path)
    path.write_text("select: {objective: [energy, latency]}\n")
    with pytest.raises(ConfigError, match="unknown select objective"):
        resolve_config(config_file=path)
    path.write_text("select: 95\n")
    with pytest.raises(ConfigError, match="select must be true, false or a mapping"):
        resolve_config(config_file=path)


FAST_COST = ("--cost.measure-energy", "false", "--cost.throughput-n-docs", "8", "--cost.latency-n-docs", "2",
             "--cost.min-throughput-duration-s", "0")


def test_compare_select_ends_the_run_with_a_selection(tmp_path, fake_methods):  # noqa: F811
    data = _toy_dir(tmp_path)
    out = tmp_path / "out"
    result = _invoke("compare", "--data", data, "--methods", "test-majority,test-keyword", "--output", out,
                     "--no-progress", "--select", "--select-min-retention", "50", "--select-objective",
                     "latency", *FAST_COST)
    assert result.exit_code == 0, result.output
    facts = json.loads((out / "selected" / "selection.json").read_text())
    assert facts["objective"]["name"] == "latency" and facts["constraint"]["min_retention_pct"] == 50.0
    # the comparison's reference (bert) has no rows: the best method is the reference
    assert facts["reference"]["source"] == "best" and facts["reference"]["method"] == "test-keyword"
    assert "Selected:" in result.stdout
    assert frugaltext.load_model(out / "selected").name == facts["selected"]["method"]
    assert yaml.safe_load((out / "config.yaml").read_text())["select"]["objective"] == "latency"
    assert "select: " in (out / "compare.log").read_text()
    assert (out / "pareto_inference.png").is_file()

    # --reference names the reference when it has rows; nothing keeping 150 % of it: exit 1, results kept
    again = _invoke("compare", "--data", data, "--methods", "test-majority,test-keyword", "--output", out,
                    "--no-progress", "--reference", "test-keyword", "--select-min-retention", "150",
                    *FAST_COST)
    assert again.exit_code == 1
    assert "no method keeps 150 % of test-keyword's mean macro-F1" in again.stderr
    assert (out / "results.json").is_file() and (out / "table.md").is_file()


def _invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])
