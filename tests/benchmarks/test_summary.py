"""benchmarks/summary.py on small hand-written result files: reference, retention, speed-ups, fronts, picks,
skipped files, and the committed docs/summary.md being current. Nothing is trained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frugaltext.errors import DataFormatError
from tests.benchmarks import BENCHMARKS_DIR, load_benchmark

summary = load_benchmark("summary")

MACHINE = {"platform": "Linux", "processor": "x86_64", "cpu_count": 2, "python": "3.11"}


def row(method, seed=0, macro_f1=0.9, throughput=100.0, train_s=10.0, energy=1e-8, dataset="r8",
        max_train_docs=None):
    return {
        "method": method, "seed": seed, "dataset": dataset, "data_source": dataset, "n_train": 400,
        "n_eval": 200, "n_test": 200, "macro_f1": macro_f1, "throughput_docs_per_s": throughput,
        "train_duration_s": train_s, "inference_energy_kwh_per_doc": energy, "latency_ms": 1.0,
        "n_params": 1000, "machine": MACHINE, "torch_threads": 1, "timestamp": "2026-12-01T00:00:00+00:00",
        "data_identity": {"max_train_docs": max_train_docs, "max_validation_docs": None,
                          "max_test_docs": None},
    }


def write_run(root: Path, name: str, rows) -> Path:
    folder = root / "docs" / "runs" / name
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(rows), encoding="utf-8")
    return folder


def write_bench(root: Path, name: str, payload) -> None:
    folder = root / "benchmarks" / "results"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(payload), encoding="utf-8")


def r8_run(root: Path) -> None:
    # bert: reference (F1 0.90, 10 docs/s, T 400 s); svm: 95.6 % and 500x; static: 99.4 % and 50x;
    # slow-bad: dominated on both fronts
    write_run(root, "r8-demo", [
        row("tfidf-svm", macro_f1=0.86, throughput=5000.0, train_s=2.0, energy=1e-9),
        row("static", macro_f1=0.90, throughput=500.0, train_s=60.0, energy=2e-9),
        row("static", seed=1, macro_f1=0.89, throughput=500.0, train_s=60.0, energy=2e-9),
        row("bert", macro_f1=0.90, throughput=10.0, train_s=400.0, energy=1e-7),
        row("bert", seed=1, macro_f1=0.90, throughput=10.0, train_s=400.0, energy=1e-7),
        row("slow-bad", macro_f1=0.50, throughput=5.0, train_s=500.0, energy=2e-7),
    ])


def dataset(result, key):
    return next(d for d in result["datasets"] if d["key"] == key)


def test_reference_retention_speedups_front_and_picks(tmp_path):
    r8_run(tmp_path)
    src = dataset(summary.build_summary(tmp_path), "r8")["sources"][0]
    assert src["reference"]["method"] == "bert" and src["reference"]["macro_f1"] == pytest.approx(0.90)
    methods = {m["method"]: m for m in src["methods"]}
    assert methods["static"]["n_seeds"] == 2
    assert methods["static"]["retention_pct"] == pytest.approx(99.444, 1e-3)
    assert methods["tfidf-svm"]["speedup_throughput"] == pytest.approx(500.0)
    assert methods["tfidf-svm"]["speedup_train"] == pytest.approx(200.0)
    assert methods["tfidf-svm"]["energy_ratio"] == pytest.approx(100.0)
    assert [m for m, v in methods.items() if v["on_front_throughput"]] == ["tfidf-svm", "static", "bert"]
    assert not methods["slow-bad"]["on_front_throughput"] and not methods["slow-bad"]["on_front_train_time"]
    # 99 %: only static (99.4 %) and bert qualify, static is faster; 95 %: tf-idf (95.6 %) is the fastest
    assert src["picks"]["99"]["method"] == "static"
    assert src["picks"]["99"]["speedup_throughput"] == pytest.approx(50.0)
    assert src["picks"]["95"]["method"] == "tfidf-svm"
    assert not src["subset"] and src["one_seed"]  # tfidf-svm and slow-bad ran one seed


def test_missing_reference_takes_the_best_row_and_says_so(tmp_path):
    write_run(tmp_path, "modapte", [
        row("tfidf-svm", macro_f1=0.40, throughput=2000.0, dataset="reuters21578-modapte90"),
        row("han", macro_f1=0.10, throughput=200.0, dataset="reuters21578-modapte90", max_train_docs=500),
    ])
    result = summary.build_summary(tmp_path)
    src = dataset(result, "reuters21578-modapte90")["sources"][0]
    assert src["reference"]["method"] == "tfidf-svm" and "no bert" in src["reference"]["chosen"]
    assert src["picks"]["99"]["method"] == "tfidf-svm" and src["subset"]
    text = summary.render_markdown(result)
    assert "`tfidf-svm` (0.400), no bert in this source" in text and "**subset**" in text


def test_datasets_without_rows_are_listed_not_invented(tmp_path):
    r8_run(tmp_path)
    result = summary.build_summary(tmp_path)
    assert [d["key"] for d in result["datasets"]] == list(summary.DATASETS)
    assert dataset(result, "sst2")["sources"] == [] and dataset(result, "imdb")["sources"] == []
    text = summary.render_markdown(result)
    assert "| SST-2 | no committed result |" in text and "| ModApte-90 | no committed result |" in text


def test_no_method_reaches_the_retention(tmp_path):
    # the reference itself lacks a throughput: nothing is eligible at 99 % or 95 %; the reason is kept
    write_run(tmp_path, "r", [row("bert", throughput=None), row("cnn", macro_f1=0.5, throughput=50.0)])
    src = dataset(summary.build_summary(tmp_path), "r8")["sources"][0]
    assert src["picks"]["99"]["method"] is None and "no method keeps 99 %" in src["picks"]["99"]["reason"]
    assert "none (" in summary.render_markdown(summary.build_summary(tmp_path))


def test_benchmark_files_distillation_and_early_exit(tmp_path):
    write_bench(tmp_path, "distillation_sst2.json", {
        "status": "finished",
        "settings": {"data": "../shared/data/sst2", "max_train_docs": None, "max_test_docs": None},
        "dataset_sizes": {"train": 100, "test": 50},
        "machine": {"cpu_model": "AMD EPYC", "cpu_count": 2, "torch_num_threads": 1,
                    "cpu_flags_of_interest": ["avx2", "avx512_bf16"]},
        "teacher": {"seed": 0, "macro_f1": 0.80, "n_params": 100, "dir": "runs/t"},
        "teacher_training": {"train_duration_s": 300.0},
        "throughput": {"median": {"teacher": {"b32": 20.0}, "distill-cnn": {"b32": 1000.0}},
                       "load_average": [2.0, 2.1, 2.2]},
        "runs": {"distill-cnn/seed0": {"method": "distill-cnn", "seed": 0, "macro_f1": 0.78, "n_params": 10,
                                       "train_duration_s": 30.0}},
    })
    write_bench(tmp_path, "early_exit_sst2.json", {
        "args": {"data": "../shared/data/sst2", "max_train_docs": 100, "max_test_docs": None},
        "dataset": {"n_train_docs": 100, "n_test_docs": 50},
        "training": {"seed": 0, "train_duration_s": 60.0},
        "model": {"n_params": 100, "num_hidden_layers": 6},
        "comparison": {
            "full_depth": {"rule": "none", "macro_f1": 0.80, "throughput_docs_per_s_batch32": 40.0},
            "calibrated_entropy": {"rule": "entropy", "entropy_threshold": 0.5, "macro_f1": 0.796,
                                   "throughput_docs_per_s_batch32": 80.0},
            "calibrated_entropy@int8": {"rule": "entropy", "entropy_threshold": 0.5, "macro_f1": 0.7,
                                        "inference_quantization": "int8",
                                        "throughput_docs_per_s_batch32": 200.0},
        },
    })
    sources = {s["kind"]: s for s in dataset(summary.build_summary(tmp_path), "sst2")["sources"]}
    distill, early = sources["distillation"], sources["early_exit"]
    assert distill["reference"]["method"] == "teacher (bert)"
    student = distill["methods"][1]
    assert student["speedup_throughput"] == pytest.approx(50.0)
    assert student["speedup_train"] == pytest.approx(10.0)
    assert distill["picks"]["95"]["method"] == "distill-cnn"
    assert distill["picks"]["99"]["method"] == "teacher (bert)"
    assert "load average 2/2.1/2.2" in distill["machine"]
    assert distill["machine"].startswith("AMD EPYC, flags avx2 avx512_bf16, 2 cores")
    assert early["subset"] and early["reference"]["method"] == "full depth"
    assert early["picks"]["99"]["method"] == "early exit, entropy 0.5"
    assert early["picks"]["99"]["speedup_throughput"] == pytest.approx(2.0)
    # a --stack row is named after its base setting; it is the fastest but keeps only 87.5 %
    assert early["picks"]["95"]["method"] == "early exit, entropy 0.5"
    stacked = {m["method"]: m for m in early["methods"]}["early exit, entropy 0.5 + int8"]
    assert stacked["speedup_throughput"] == pytest.approx(5.0)


def test_files_not_read_are_listed_with_a_reason(tmp_path):
    r8_run(tmp_path)
    write_run(tmp_path, "static-r8-smoke", [row("bert")])
    write_bench(tmp_path, "topics_r8.json", {"benchmark": "topics"})
    write_bench(tmp_path, "distillation_r8_x.json", {"status": "running"})
    write_bench(tmp_path, "fast_path_r8.json", {"label": "smoke run: tiny"})
    write_bench(tmp_path, "newthing_r8.json", {})
    reasons = {Path(s["path"]).name: s["reason"] for s in summary.build_summary(tmp_path)["not_read"]}
    assert "smoke" in reasons["results.json"] and "topic models" in reasons["topics_r8.json"]
    assert "unfinished" in reasons["distillation_r8_x.json"] and "smoke" in reasons["fast_path_r8.json"]
    assert reasons["newthing_r8.json"] == "no reader for this benchmark"


def test_malformed_files_name_themselves(tmp_path):
    write_run(tmp_path, "empty", [])
    with pytest.raises(DataFormatError, match=r"docs/runs/empty/results.json: no result rows"):
        summary.build_summary(tmp_path)
    (tmp_path / "docs" / "runs" / "empty" / "results.json").unlink()
    write_bench(tmp_path, "early_exit_r8.json", {"comparison": {}})
    with pytest.raises(DataFormatError, match=r"early_exit_r8.json: no comparison.full_depth"):
        summary.build_summary(tmp_path)
    write_bench(tmp_path, "early_exit_r8.json", ["a list"])
    with pytest.raises(DataFormatError, match=r"early_exit_r8.json: expected a JSON object"):
        summary.build_summary(tmp_path)
    (tmp_path / "benchmarks" / "results" / "early_exit_r8.json").write_text("{", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"early_exit_r8.json, line 1: invalid JSON"):
        summary.build_summary(tmp_path)


def test_main_writes_then_checks(tmp_path, capsys):
    r8_run(tmp_path)
    assert summary.main(["--root", str(tmp_path), "--check"]) == 1  # nothing written yet
    assert summary.main(["--root", str(tmp_path)]) == 0
    text = (tmp_path / "docs" / "summary.md").read_text(encoding="utf-8")
    assert text.startswith("# Cross-dataset summary") and summary.COMMAND in text
    assert json.loads((tmp_path / "docs" / "summary.json").read_text())["datasets"][0]["key"] == "r8"
    assert summary.main(["--root", str(tmp_path), "--check"]) == 0
    write_run(tmp_path, "more", [row("bert", dataset="imdb")])
    assert summary.main(["--root", str(tmp_path), "--check"]) == 1
    write_run(tmp_path, "bad", [])
    assert summary.main(["--root", str(tmp_path)]) == 1
    assert "Error: docs/runs/bad/results.json" in capsys.readouterr().err


def test_committed_summary_is_current():
    """docs/summary.md and docs/summary.json are what the committed results give (rerun the script if not)."""
    assert summary.main(["--root", str(BENCHMARKS_DIR.parent), "--check"]) == 0


def test_a_bert_that_predicted_nothing_is_not_the_reference():
    rows = [{"method": "bert", "macro_f1": 0.0}, {"method": "tfidf-svm", "macro_f1": 0.39}]
    assert summary._compare_reference({"bert", "tfidf-svm"}, rows) is None
    rows[0]["macro_f1"] = 0.5
    assert summary._compare_reference({"bert", "tfidf-svm"}, rows) == "bert"
    assert summary._compare_reference({"tfidf-svm"}, rows[1:]) is None


def test_a_run_split_over_folders_is_one_source_when_part_of_names_it(tmp_path):
    write_run(tmp_path, "imdb-run", [row("bert", dataset="imdb"), row("cnn", macro_f1=0.8, dataset="imdb")])
    part = write_run(tmp_path, "imdb-run-s1", [row("bert", seed=1, macro_f1=0.8, dataset="imdb")])
    assert len(dataset(summary.build_summary(tmp_path), "imdb")["sources"]) == 2  # no PART_OF: two sources
    (part / "PART_OF").write_text("# seed 1, run in another session\nimdb-run\n", encoding="utf-8")
    result = summary.build_summary(tmp_path)
    (src,) = dataset(result, "imdb")["sources"]
    assert src["parts"] == ["docs/runs/imdb-run-s1/results.json"]
    bert = next(m for m in src["methods"] if m["method"] == "bert")
    assert bert["n_seeds"] == 2 and bert["macro_f1"] == pytest.approx(0.85)
    assert "imdb-run-s1/results.json merged in" in summary.render_markdown(result)


@pytest.mark.parametrize("change, message", [
    ({"data_identity": {"max_train_docs": 5, "max_validation_docs": None, "max_test_docs": None}},
     "data_identity differs"),
    ({"config_hash": "other"}, "bert ran with other settings"),
    ({"seed": 0}, "bert seed 0 in both"),
])
def test_a_part_that_is_not_the_same_run_is_refused_by_name(tmp_path, change, message):
    write_run(tmp_path, "imdb-run", [{**row("bert", dataset="imdb"), "config_hash": "h"}])
    part = write_run(tmp_path, "imdb-run-s1", [{**row("bert", seed=1, dataset="imdb"), "config_hash": "h",
                                                 **change}])
    (part / "PART_OF").write_text("imdb-run\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=rf"docs/runs/imdb-run-s1/PART_OF: .*{message}"):
        summary.build_summary(tmp_path)


def test_part_of_naming_no_run_or_a_path_is_an_error(tmp_path):
    write_run(tmp_path, "imdb-run", [row("bert", dataset="imdb")])
    part = write_run(tmp_path, "imdb-run-s1", [row("bert", seed=1, dataset="imdb")])
    (part / "PART_OF").write_text("imdb-rnu\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"s1/PART_OF: names 'imdb-rnu', but docs/runs/imdb-rnu/"):
        summary.build_summary(tmp_path)
    (part / "PART_OF").write_text("docs/runs/imdb-run\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"imdb-run-s1/PART_OF: expected one line with the name"):
        summary.build_summary(tmp_path)


def test_a_hash_conflict_inside_the_main_folder_names_that_folder(tmp_path):
    write_run(tmp_path, "imdb-run", [{**row("bert", dataset="imdb"), "config_hash": "h"},
                                     {**row("bert", seed=1, dataset="imdb"), "config_hash": "g"}])
    part = write_run(tmp_path, "imdb-run-s2", [{**row("bert", seed=2, dataset="imdb"), "config_hash": "h"}])
    (part / "PART_OF").write_text("imdb-run\n", encoding="utf-8")
    main = "docs/runs/imdb-run/results.json"
    with pytest.raises(DataFormatError, match=rf"bert ran with other settings in {main} than in {main} "
                                              rf"\({main}: bert seed 1 has config hash g, but {main} has h"):
        summary.build_summary(tmp_path)
