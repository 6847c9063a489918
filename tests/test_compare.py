"""``frugaltext compare`` (:mod:`frugaltext.experiment`): configuration resolution, overrides, the run loop,
resume and the files written."""

from __future__ import annotations

import csv
import json

import pytest
import yaml

from frugaltext.errors import ConfigError, DataFormatError, DataNotFoundError
from frugaltext.experiment import results as results_module
from frugaltext.experiment import runner as runner_module
from frugaltext.experiment.config import (
    CompareConfig,
    config_hash,
    load_preset,
    method_settings,
    parse_overrides,
    resolve_config,
    resolved_settings,
)
from frugaltext.experiment.results import read_results
from frugaltext.experiment.runner import order_methods, run_compare
from tests.fake_methods import FIT_CALLS, StudentMethod, fake_methods  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("fake_methods")

TOPICS = {
    "earn": "company profit quarter net shares revenue",
    "crude": "oil crude barrel prices opec",
    "grain": "wheat grain tonnes harvest",
}


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _toy_dir(tmp_path, with_test=True, n_per_class=8):
    """Write a directory dataset with 3 separable classes (train: 8 per class, test: 3 per class)."""
    d = tmp_path / "toy"
    d.mkdir()
    words = {k: v.split() for k, v in TOPICS.items()}

    def rows(n, offset):
        out = []
        for label, ws in words.items():
            for i in range(n):
                out.append(
                    {"text": " ".join(ws[(i + offset + j) % len(ws)] for j in range(3)), "label": label}
                )
        return out

    _write_jsonl(d / "train.jsonl", rows(n_per_class, 0))
    _write_jsonl(d / "validation.jsonl", rows(2, 1))
    if with_test:
        _write_jsonl(d / "test.jsonl", rows(3, 2))
    return d


def _config(tmp_path, data, methods="test-majority,test-keyword", **extra):
    overrides = {
        "data": str(data),
        "methods": methods,
        "output": str(tmp_path / "out"),
        "cost.measure_energy": "false",
        "cost.throughput_n_docs": "16",
        "cost.latency_n_docs": "4",
        "cost.min_throughput_duration_s": "0",
        **extra,
    }
    return resolve_config(preset="quick", overrides=overrides)


# ---- overrides and configuration --------------------------------------------------------------------------


def test_parse_overrides_dashes_equals_and_flags():
    parsed = parse_overrides(
        [
            "--bert.max-length",
            "256",
            "--max-train-docs=500",
            "--multi-label",
            "--tfidf-lr.max-iter",
            "9",
            "--seeds",
            "2",
        ]
    )
    assert parsed == {
        "bert.max_length": "256",
        "max_train_docs": "500",
        "multi_label": "true",
        "tfidf-lr.max_iter": "9",
        "seeds": "2",
    }


def test_parse_overrides_rejects_a_stray_value():
    with pytest.raises(ConfigError, match=r"unexpected argument 'oops'; settings are written --key value"):
        parse_overrides(["--seeds", "2", "oops"])


def test_presets_hold_the_documented_values():
    quick, paper = load_preset("quick"), load_preset("paper")
    # one point per family (make demo): tf-idf, static student, CNN distilled from the run's bert, bert, and
    # bert's own model predicting in int8 (no second training)
    assert quick["seeds"] == 1
    assert quick["methods"] == ["tfidf-svm", "static", "distill-cnn", "bert", "bert@int8"]
    assert quick["settings"]["bert@int8"] == {"inference_quantization": "int8"}
    assert quick["reference"] == "bert"
    assert quick["settings"]["bert"] == {"max_length": 128, "epochs": 1, "batch_size": 16,
                                         "learning_rate": 1e-4, "precision": "auto", "batching": "grouped"}
    assert quick["settings"]["static"] == {"max_length": 256}
    assert quick["settings"]["distill-cnn"] == {"teacher": "auto", "epochs": 5}
    assert order_methods(quick["methods"], quick["settings"])[0] == "bert"  # the teacher is trained first
    assert paper["seeds"] == 3 and paper["settings"]["bert"]["max_length"] == 512
    assert paper["settings"]["bert"]["epochs"] == 4
    with pytest.raises(ConfigError, match="unknown preset 'fast'; available presets: quick, paper, table3"):
        load_preset("fast")


def test_resolution_order_preset_then_file_then_cli(tmp_path):
    config_file = tmp_path / "c.yaml"
    config_file.write_text(
        yaml.safe_dump(
            {"seeds": 2, "max_train_docs": 300, "settings": {"bert": {"epochs": 2, "max_length": 64}}}
        )
    )
    cfg = resolve_config(
        config_file=config_file,
        overrides={"bert.max-length": "96", "max-train-docs": "50", "multi_label": "true"},
    )
    assert cfg.preset == "quick"
    assert cfg.seeds == 2  # file over preset
    assert cfg.max_train_docs == 50  # CLI over file, converted to int
    assert cfg.multi_label is True
    assert cfg.settings["bert"] == {"max_length": 96, "epochs": 2.0, "batch_size": 16, "learning_rate": 1e-4,
                                    "precision": "auto", "batching": "grouped"}  # typed, merged w/ preset
    cfg = resolve_config(preset="paper", overrides={"methods": "tfidf-svm,bert"})
    assert cfg.seeds == 3 and cfg.methods == ("tfidf-svm", "bert")


def test_unknown_override_keys_are_clear_errors():
    with pytest.raises(
        ConfigError, match=r"unknown option --max-trian-docs; compare options: .*--max-train-docs"
    ):
        resolve_config(overrides={"max-trian-docs": "5"})
    with pytest.raises(
        ConfigError,
        match=r"method 'test-keyword': unknown setting 'nope'; valid settings: "
        r"epochs, smoothing",
    ):
        resolve_config(overrides={"test-keyword.nope": "1"})
    with pytest.raises(ConfigError, match=r"settings for unknown method 'nobert'; available methods: .*bert"):
        resolve_config(overrides={"nobert.epochs": "1"})
    with pytest.raises(ConfigError, match=r"cost settings: unknown setting 'watts'"):
        resolve_config(overrides={"cost.watts": "1"})
    with pytest.raises(ConfigError, match=r"option --seeds: seeds must be an integer, got 'two'"):
        resolve_config(overrides={"seeds": "two"})
    with pytest.raises(
        ConfigError, match=r"method 'test-keyword': setting 'smoothing': cannot read 'x' as float"
    ):
        resolve_config(overrides={"test-keyword.smoothing": "x"})


def test_bad_config_file(tmp_path):
    with pytest.raises(DataNotFoundError, match="config file .*missing.yaml does not exist"):
        resolve_config(config_file=tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("seeds: [1,\n")
    with pytest.raises(ConfigError, match=r"bad.yaml, line \d+: invalid YAML"):
        resolve_config(config_file=bad)
    bad.write_text("sedes: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown setting 'sedes'"):
        resolve_config(config_file=bad)


def test_config_checks_values():
    with pytest.raises(ConfigError, match="seeds must be an integer >= 1, got 0"):
        CompareConfig(seeds=0)
    with pytest.raises(ConfigError, match="methods lists a method twice"):
        CompareConfig(methods=("bert", "bert"))
    assert CompareConfig(seeds=3, first_seed=2).seed_values == [2, 3, 4]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"validation_fraction": "nan"}, r"--validation-fraction: validation_fraction must be a finite"),
        ({"validation_fraction": "-inf"}, r"validation_fraction must be a finite number, got '-inf'"),
        ({"validation_fraction": True}, r"validation_fraction must be a finite number, got True"),
        ({"data_seed": True}, r"option --data-seed: data_seed must be an integer, got True"),
        ({"test-keyword.smoothing": "nan"}, r"method 'test-keyword': setting 'smoothing':? must be a finite"),
        ({"test-keyword.smoothing": float("inf")}, r"setting 'smoothing':? must be a finite number, got inf"),
        ({"test-keyword.epochs": True},
         r"'test-keyword': setting 'epochs':? must be an? \w+, got (the boolean )?True"),
        ({"test-keyword.smoothing": False},
         r"setting 'smoothing':? must be an? \w+( number)?, got (the boolean )?False"),
        ({"cost.min_throughput_duration_s": "inf"},
         r"setting 'min_throughput_duration_s':? must be a finite"),
        ({"cost.latency_n_docs": True}, r"cost settings: setting 'latency_n_docs':? must be an? \w+"),
    ],
)
def test_bools_are_not_numbers_and_nan_or_inf_are_rejected(overrides, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config(overrides=overrides)


def test_yaml_bools_and_infinities_name_the_file_and_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("validation_fraction: .inf\n")
    with pytest.raises(ConfigError, match=r"c.yaml: validation_fraction must be a finite number, got inf"):
        resolve_config(config_file=path)
    path.write_text("settings:\n  test-keyword:\n    epochs: true\n")
    with pytest.raises(ConfigError, match=r"setting 'epochs':? must be an? \w+, got (the boolean )?True"):
        resolve_config(config_file=path)
    path.write_text("settings:\n  test-keyword:\n    smoothing: .nan\n")
    with pytest.raises(ConfigError, match=r"setting 'smoothing':? must be a finite number, got nan"):
        resolve_config(config_file=path)
    path.write_text("settings:\n  test-keyword:\n    smoothing: 0.5\n    epochs: 3\n")  # numbers still pass
    assert resolve_config(config_file=path).settings["test-keyword"] == {"smoothing": 0.5, "epochs": 3}


def test_config_rejects_non_finite_or_bool_numbers_given_directly():
    with pytest.raises(ConfigError, match="validation_fraction must be a finite number, got nan"):
        CompareConfig(validation_fraction=float("nan"))
    with pytest.raises(ConfigError, match="data_seed must be an integer, got True"):
        CompareConfig(data_seed=True)
    assert CompareConfig(validation_fraction=0.2, data_seed=7).validation_fraction == 0.2


def test_config_hash_of_stored_rows_is_unchanged(tmp_path):
    """The rows of a kept run (docs/runs/table3-r8) still hash to their stored config_hash: they resume."""
    from pathlib import Path

    rows = read_results(Path(__file__).resolve().parents[1] / "docs" / "runs" / "table3-r8" / "results.json")
    assert rows
    for row in rows:
        assert config_hash(row["data_identity"], row["method"], row["settings"]) == row["config_hash"]


def test_teacher_auto_moves_bert_first_or_fails_clearly():
    settings = {"test-student": {"teacher": "auto"}}
    assert order_methods(["tfidf-lr", "test-student", "bert"], settings) == [
        "bert",
        "tfidf-lr",
        "test-student",
    ]
    assert order_methods(["tfidf-lr", "bert"], {}) == ["tfidf-lr", "bert"]
    with pytest.raises(
        ConfigError, match=r"test-student uses teacher 'auto'.*'bert' is not among the methods"
    ):
        order_methods(["test-student"], settings)
    assert order_methods(["test-student"], {"test-student": {"teacher": "/models/bert"}}) == ["test-student"]


def test_step_matched_false_keeps_the_hash_of_rows_written_before_it():
    old = config_hash({"source": "r8"}, "topicbert@p4", {"n_partitions": 4})
    assert config_hash({"source": "r8"}, "topicbert@p4", {"n_partitions": 4, "step_matched": False}) == old
    assert config_hash({"source": "r8"}, "topicbert@p4", {"n_partitions": 4, "step_matched": True}) != old


def test_config_hash_depends_on_data_and_settings():
    a = config_hash({"source": "r8"}, "bert", {"epochs": 1})
    assert a == config_hash({"source": "r8"}, "bert", {"epochs": 1}) and len(a) == 16
    assert a != config_hash({"source": "r8"}, "bert", {"epochs": 2})
    assert a != config_hash({"source": "r8", "max_train_docs": 5}, "bert", {"epochs": 1})
    # a setting added later keeps old hashes while it holds its "as before" value
    assert a == config_hash({"source": "r8"}, "bert", {"epochs": 1, "encoder_layers": None})
    assert a != config_hash({"source": "r8"}, "bert", {"epochs": 1, "encoder_layers": "0,2,4"})


# ---- the run loop ------------------------------------------------------------------------------------------


def test_compare_end_to_end_with_tfidf_on_an_r8_slice(tmp_path):
    cfg = _config(
        tmp_path,
        "r8",
        methods="tfidf-lr,test-majority",
        max_train_docs="120",
        max_validation_docs="40",
        max_test_docs="60",
        **{"tfidf-lr.C": "10"},
    )
    result = run_compare(cfg, progress=False)
    out = tmp_path / "out"
    for name in (
        "results.json",
        "results.csv",
        "table.md",
        "pareto.png",
        "pareto.svg",
        "config.yaml",
        "logs/tfidf-lr-seed0.log",
        "logs/test-majority-seed0.log",
        "models/tfidf-lr-seed0/tfidf.json",
    ):
        assert (out / name).is_file(), name
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = read_results(out / "results.json")
    assert [(r["method"], r["seed"]) for r in rows] == [("tfidf-lr", 0), ("test-majority", 0)]
    lr, majority = rows
    assert (lr["n_train"], lr["n_validation"], lr["n_test"], lr["eval_split"]) == (120, 40, 60, "test")
    assert lr["settings"]["C"] == 10.0  # the override reached the method
    assert lr["macro_f1"] > majority["macro_f1"]
    for key in (
        "micro_f1",
        "accuracy",
        "weighted_f1",
        "per_class",
        "train_duration_s",
        "epoch_duration_s",
        "latency_ms",
        "throughput_docs_per_s",
        "n_params",
        "flops",
        "paper_emissions_kg_co2eq",
        "config_hash",
        "frugaltext_version",
        "torch_version",
        "machine",
        "timestamp",
        "notes",
    ):
        assert key in lr, key
    assert lr["train_energy_kwh"] is None and "measure_energy=False" in lr["energy_error"]
    assert majority["notes"] == {"fake": True}
    assert set(lr["per_class"]) == {"acq", "crude", "earn", "grain", "interest", "money-fx", "ship", "trade"}
    with open(out / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 2 and "per_class" not in table[0] and "settings.C" in table[0]
    assert float(table[0]["macro_f1"]) == pytest.approx(lr["macro_f1"])
    assert "tfidf-lr" in result.table_markdown and "| Model | macro-F1 ± std |" in result.table_markdown
    assert "The reference method 'bert' is not in these results" in result.table_markdown
    assert yaml.safe_load((out / "config.yaml").read_text())["max_train_docs"] == 120
    log = (out / "logs" / "tfidf-lr-seed0.log").read_text()
    assert "tfidf-lr-seed0: test macro_f1" in log and "model saved to" in log
    assert not (out / "work").exists()  # checkpoints removed after success


def test_resume_skips_done_runs_and_reruns_changed_settings(tmp_path):
    data = _toy_dir(tmp_path)
    FIT_CALLS.clear()
    cfg = _config(tmp_path, data, seeds="2")
    first = run_compare(cfg, progress=False)
    assert first.ran == [
        "test-majority-seed0",
        "test-majority-seed1",
        "test-keyword-seed0",
        "test-keyword-seed1",
    ]
    assert sum(FIT_CALLS.values()) == 4
    rows = read_results(tmp_path / "out" / "results.json")
    keyword = [r for r in rows if r["method"] == "test-keyword"]
    assert all(r["macro_f1"] == 1.0 for r in keyword)  # separable toy data
    assert keyword[0]["n_epochs"] == 2

    again = run_compare(cfg, progress=False)
    assert again.ran == [] and len(again.skipped) == 4
    assert sum(FIT_CALLS.values()) == 4
    assert "skipping, already done" in (tmp_path / "out" / "compare.log").read_text()

    changed = _config(tmp_path, data, seeds="2", **{"test-keyword.smoothing": "0.5"})
    third = run_compare(changed, progress=False)
    assert third.ran == ["test-keyword-seed0", "test-keyword-seed1"]
    rows = read_results(tmp_path / "out" / "results.json")
    assert len(rows) == 4  # replaced, not duplicated
    assert {r["settings"].get("smoothing") for r in rows if r["method"] == "test-keyword"} == {0.5}


def test_rows_written_by_another_process_during_a_run_are_kept_and_skipped(tmp_path, monkeypatch):
    """Two compare processes sharing one output directory: neither loses the other's rows."""
    data = _toy_dir(tmp_path)
    out = tmp_path / "out"
    # The row another process will have written: test-keyword, seed 0, same data and settings.
    other = run_compare(_config(tmp_path, data, methods="test-keyword"), progress=False).rows
    foreign = [dict(r) for r in other] + [dict(other[0], method="test-elsewhere")]
    (out / "results.json").unlink()

    real_run_one = runner_module._run_one

    def run_one_while_another_process_writes(*args, **kwargs):
        row = real_run_one(*args, **kwargs)
        results_module.write_results(foreign, out)  # lands between this process's read and its write
        return row

    monkeypatch.setattr(runner_module, "_run_one", run_one_while_another_process_writes)
    FIT_CALLS.clear()
    result = run_compare(_config(tmp_path, data, methods="test-majority,test-keyword"), progress=False)
    assert result.ran == ["test-majority-seed0"]  # test-keyword-seed0 was finished by the other process
    assert result.skipped == ["test-keyword-seed0"]
    methods = sorted(r["method"] for r in read_results(out / "results.json"))
    assert methods == ["test-elsewhere", "test-keyword", "test-majority"]
    assert sorted(r["method"] for r in result.rows) == methods
    assert (out / "results.json.lock").exists()


def test_data_without_test_split_is_evaluated_on_validation(tmp_path):
    data = _toy_dir(tmp_path, with_test=False)
    result = run_compare(_config(tmp_path, data, methods="test-keyword"), progress=False)
    row = result.rows[0]
    assert row["eval_split"] == "validation" and row["n_test"] == 0 and row["n_eval"] == 6
    assert "scores are on the validation split" in result.table_markdown


def test_teacher_auto_gets_the_saved_teacher_of_the_same_seed(tmp_path, monkeypatch):
    monkeypatch.setattr(runner_module, "TEACHER_METHOD", "test-keyword")
    StudentMethod.TEACHERS.clear()
    data = _toy_dir(tmp_path)
    result = run_compare(_config(tmp_path, data, methods="test-student,test-keyword"), progress=False)
    assert result.ran == ["test-keyword-seed0", "test-student-seed0"]
    assert StudentMethod.TEACHERS == [str(tmp_path / "out" / "models" / "test-keyword-seed0")]
    student = next(r for r in result.rows if r["method"] == "test-student")
    assert student["settings"]["teacher"] == StudentMethod.TEACHERS[0]


def test_unknown_method_and_missing_data_fail_before_training(tmp_path):
    with pytest.raises(ConfigError, match="unknown method 'nope'"):
        run_compare(_config(tmp_path, "r8", methods="nope"), progress=False)
    with pytest.raises(DataNotFoundError):
        run_compare(_config(tmp_path, tmp_path / "missing-dir", methods="test-majority"), progress=False)


def test_corrupt_results_json_is_reported(tmp_path):
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(DataFormatError, match=r"results.json, line 1: invalid JSON"):
        read_results(tmp_path / "results.json")


def test_frugaltext_compare_is_the_api_function_and_not_a_module(tmp_path):
    import frugaltext
    import frugaltext.api

    assert frugaltext.compare is frugaltext.api.compare
    with pytest.raises(ModuleNotFoundError):
        import frugaltext.compare  # noqa: F401 - the old module is gone; nothing may shadow the function
    import frugaltext.experiment.runner  # noqa: F401 - importing the package's modules changes nothing

    assert frugaltext.compare is frugaltext.api.compare
    data = _toy_dir(tmp_path)
    result = frugaltext.compare(
        data=str(data),
        methods=["test-majority"],
        output=tmp_path / "api",
        progress=False,
        **{"cost.measure_energy": False, "cost.throughput_n_docs": 8, "cost.min_throughput_duration_s": 0},
    )
    assert result.ran == ["test-majority-seed0"] and (tmp_path / "api" / "table.md").is_file()
    assert frugaltext.CompareConfig is CompareConfig


def test_method_variants_run_with_merged_settings_and_their_own_rows(tmp_path):
    data = _toy_dir(tmp_path)
    FIT_CALLS.clear()
    cfg = _config(tmp_path, data, methods="test-keyword,test-keyword@rough",
                  **{"test-keyword.epochs": "3", "test-keyword@rough.smoothing": "50"})
    assert method_settings("test-keyword@rough", cfg.settings) == {"epochs": 3, "smoothing": 50.0}
    result = run_compare(cfg, progress=False)
    assert result.ran == ["test-keyword-seed0", "test-keyword@rough-seed0"]
    rows = {r["method"]: r for r in read_results(tmp_path / "out" / "results.json")}
    assert rows["test-keyword"]["settings"]["smoothing"] == 1.0
    assert rows["test-keyword@rough"]["settings"]["smoothing"] == 50.0
    assert rows["test-keyword@rough"]["settings"]["epochs"] == 3  # inherited from the base method
    assert (tmp_path / "out" / "models" / "test-keyword@rough-seed0").is_dir()
    assert "test-keyword@rough" in (tmp_path / "out" / "table.md").read_text()


@pytest.mark.parametrize("bad", ["test-keyword@", "@rough", "test-keyword@a@b", "test-keyword@a b"])
def test_bad_variant_names_are_clear_errors(tmp_path, bad):
    with pytest.raises(ConfigError, match="bad method variant"):
        _config(tmp_path, _toy_dir(tmp_path), methods=bad)


def test_table3_preset_lists_the_paper_rows_as_variants():
    cfg = resolve_config(preset="table3")
    assert cfg.methods[-6:] == ("topicbert", "topicbert@p2", "topicbert@p4", "topicbert@p8",
                                "topicbert@p4-steps", "topicbert@p8-steps")
    p4 = method_settings("topicbert@p4", cfg.settings)
    assert p4["n_partitions"] == 4 and p4["max_length"] == 256 and p4["alpha"] == 0.9
    assert not p4.get("step_matched") and method_settings("topicbert@p4-steps", cfg.settings)["step_matched"]
    # three BERT-N baselines (issue 15): fixed padding, dynamic with random batches, dynamic with grouped ones
    baselines = {m: resolved_settings(m, cfg) for m in ("bert@fixed", "bert@random", "bert")}
    assert {m: (s["padding"], s["batching"]) for m, s in baselines.items()} == {
        "bert@fixed": ("max_length", "random"), "bert@random": ("dynamic", "random"),
        "bert": ("dynamic", "grouped")}
    # every fine-tuned row: the same precision, epochs, batch size and N; every TopicBERT row in random
    # batches (as the full-scale run of 2026-12-02 was made; bert@random is their batching-matched baseline)
    tuned = [m for m in cfg.methods if m.split("@")[0] in ("bert", "topicbert")]
    assert {(s["precision"], s["epochs"], s["batch_size"], s["max_length"])
            for s in (resolved_settings(m, cfg) for m in tuned)} == {("fp32", 3.0, 16, 256)}
    assert {resolved_settings(m, cfg)["batching"] for m in tuned if m.startswith("topicbert")} == {"random"}
    small = method_settings("bert@small", cfg.settings)  # DistilBERT's row: every second MiniLM layer
    assert small["encoder_layers"] == "0,2,4" and small["max_length"] == 256
