"""Helpers of benchmarks/distillation.py: names, throughput bookkeeping, summaries, targets and the markdown
table.

No timing is asserted: only structure and the deterministic arithmetic of the summary.
"""

from __future__ import annotations

import pytest

from tests.benchmarks import load_benchmark

bench = load_benchmark("distillation")

TEACHER = {"method": "bert", "seed": 0, "macro_f1": 0.80, "accuracy": 0.90, "n_params": 1000}


def _run(method: str, seed: int, f1: float, acc: float = 0.5, n_params: int = 10) -> dict:
    arch = method.split("-", 1)[1]
    return {"method": method, "architecture": arch, "seed": seed, "macro_f1": f1, "accuracy": acc,
            "n_params": n_params}


def _runs() -> dict:
    records = [
        _run("distill-cnn", 0, 0.76), _run("distill-cnn", 1, 0.78),
        _run("scratch-cnn", 0, 0.70), _run("scratch-cnn", 1, 0.74),
        _run("distill-bilstm", 0, 0.60, n_params=20),
        _run("scratch-bilstm", 0, 0.64, n_params=20),
    ]
    return {bench.run_key(r["method"], r["seed"]): r for r in records}


def test_method_names_and_unknown_architecture():
    assert bench.method_names("lstm-reg") == ("distill-lstm-reg", "scratch-lstm-reg")
    assert bench.method_names("static") == ("distill-static", "scratch-static")
    with pytest.raises(ValueError, match="unknown student 'gru'"):
        bench.method_names("gru")


def test_summarize_means_retention_ratio_speedup_and_delta():
    throughput = {"teacher": {"b32": 10.0, "b1": 5.0}, "distill-cnn": {"b32": 300.0, "b1": 50.0},
                  "scratch-cnn": {"b32": 150.0, "b1": 100.0}}
    rows = bench.summarize(_runs(), TEACHER, throughput, ["bilstm", "cnn"])
    assert [r["method"] for r in rows] == ["distill-bilstm", "scratch-bilstm", "distill-cnn", "scratch-cnn"]
    cnn = rows[2]
    assert cnn["n_seeds"] == 2 and cnn["seeds"] == [0, 1]
    assert cnn["macro_f1_mean"] == pytest.approx(0.77)
    assert cnn["macro_f1_std"] == pytest.approx(0.0141421356, rel=1e-6)
    assert cnn["retention_mean"] == pytest.approx(96.25)
    assert cnn["n_params_ratio"] == pytest.approx(100.0)
    assert cnn["speedup"] == pytest.approx(30.0) and cnn["speedup_b1"] == pytest.approx(10.0)
    assert cnn["delta_macro_f1_vs_control"] == pytest.approx(5.0) and cnn["delta_seeds"] == [0, 1]
    bilstm = rows[0]
    assert bilstm["macro_f1_std"] == 0.0 and bilstm["speedup"] is None  # one seed; not timed


def test_delta_is_paired_over_common_seeds():
    runs = _runs()
    runs[bench.run_key("distill-bilstm", 1)] = _run("distill-bilstm", 1, 0.90, n_params=20)
    rows = bench.summarize(runs, TEACHER, None, ["bilstm"])
    assert rows[0]["macro_f1_mean"] == pytest.approx(0.75)
    assert rows[0]["delta_macro_f1_vs_control"] == pytest.approx(-4.0) and rows[0]["delta_seeds"] == [0]


def test_check_targets_reports_shortfalls():
    rows = bench.summarize(_runs(), TEACHER, {"teacher": {"b32": 10.0, "b1": 5.0},
                                               "distill-cnn": {"b32": 150.0, "b1": 1.0}}, ["bilstm", "cnn"])
    targets = bench.check_targets(rows)
    assert targets["distilled_ge_control"]["cnn"]["met"] is True
    assert targets["distilled_ge_control"]["bilstm"]["met"] is False
    assert targets["best_distilled_retention"] == {"method": "distill-cnn", "retention": pytest.approx(96.25),
                                                   "met": True}
    assert targets["speedup_b32_ge_20"]["distill-cnn"] == {"speedup": pytest.approx(15.0), "met": False}
    assert targets["speedup_b32_ge_20"]["scratch-cnn"]["met"] is None


def test_markdown_table_has_teacher_and_student_rows(tmp_path):
    result = {
        "settings": {"data": "r8"}, "command": "python benchmarks/distillation.py --data r8",
        "machine": {"cpu_model": "cpu", "cpu_count": 2, "torch_num_threads": 1, "load_average_start": None},
        "dataset_sizes": {"train": 4, "validation": 2, "test": 2}, "teacher": TEACHER,
        "throughput": {"median": {"teacher": {"b32": 10.0, "b1": 5.0}}}, "runs": _runs(), "status": "running",
    }
    bench.refresh(result, ["bilstm", "cnn"])
    text = bench.markdown_table(result)
    assert "| teacher (bert) | 0 | 80.00 | 90.00 | 100 |" in text
    assert "| distill-cnn | 0,1 | 77.00 ± 1.41 |" in text
    assert "+5.00" in text and "Status: running" in text
    out = tmp_path / "distillation_r8.json"
    bench.write_result(out, result)
    assert out.is_file() and out.with_suffix(".md").read_text(encoding="utf-8") == text


def test_student_settings_parse_yaml_values():
    parsed = bench.parse_student_settings(["tokenizer=wordpiece", "embedding-dim=128", "dropout=0.3"])
    assert parsed == {"tokenizer": "wordpiece", "embedding_dim": 128, "dropout": 0.3}
    with pytest.raises(SystemExit, match="expected KEY=VALUE"):
        bench.parse_student_settings(["tokenizer"])


class _FakeModel:
    """Records its ``predict_logits`` calls (name, number of texts, batch size) in a shared log."""

    def __init__(self, name, log):
        self.name, self.log = name, log

    def predict_logits(self, texts, batch_size):
        self.log.append((self.name, len(texts), batch_size))


def test_measure_throughputs_warms_up_then_times_both_batch_sizes_per_slot_in_rotating_order():
    log = []
    models = {n: _FakeModel(n, log) for n in ("teacher", "distill-cnn", "scratch-cnn")}
    texts_b32, texts_b1 = [f"doc {i}" for i in range(40)], ["a", "b", "c"]
    out = bench.measure_throughputs(models, texts_b32, texts_b1, repeats=2)
    warmup = [call for n in models for call in [(n, 32, 32), (n, 1, 1), (n, 1, 1)]]
    assert log[: len(warmup)] == warmup
    timed = log[len(warmup):]
    slot = 1 + len(texts_b1)  # one batch-32 call over all texts, then one call per single document
    order = [timed[i][0] for i in range(0, len(timed), slot)]
    assert order == ["teacher", "distill-cnn", "scratch-cnn", "distill-cnn", "scratch-cnn", "teacher"]
    for i in range(0, len(timed), slot):
        assert timed[i][1:] == (40, 32) and all(c[1:] == (1, 1) for c in timed[i + 1 : i + slot])
    assert set(out) == {"median", "samples", "n_docs_b32", "n_docs_b1", "repeats", "load_average"}
    assert list(out["samples"]) == list(models) == list(out["median"])
    for name in models:
        assert set(out["samples"][name]) == set(out["median"][name]) == {"b32", "b1"}
        assert all(len(v) == 2 for v in out["samples"][name].values())
    assert (out["n_docs_b32"], out["n_docs_b1"], out["repeats"]) == (40, 3, 2)
