"""Helpers of benchmarks/fast_path.py: padding ratios, summaries and the table. No timing is asserted."""

from __future__ import annotations

import pytest

from tests.benchmarks import load_benchmark

bench = load_benchmark("fast_path")
baseline = load_benchmark("baseline_run_classification")


def test_padding_ratios_order_fixed_random_grouped():
    lengths = [5 + (7 * i) % 120 for i in range(400)]
    ratios = bench.padding_ratios(lengths, batch_size=16, max_length=128)
    assert ratios["fixed"] == pytest.approx(128 * 400 / sum(lengths))
    assert ratios["fixed"] > ratios["random"] > ratios["grouped"] >= 1.0
    assert ratios["grouped-megabatch"] == pytest.approx(ratios["grouped"])  # same batches, other order


def test_padding_ratio_counts_truncated_lengths():
    assert bench.padding_ratios([200, 200], batch_size=2, max_length=128)["fixed"] == pytest.approx(1.0)


def _run(config, seed, duration, f1):
    return {"config": config, "seed": seed, "train_duration_s": duration, "macro_f1": f1, "n_train": 100}


def test_summarize_training_speedup_and_retention():
    runs = [_run("baseline", 0, 100.0, 0.8), _run("baseline", 1, 120.0, 0.8), _run("grouped", 0, 50.0, 0.8),
            _run("grouped", 1, 60.0, 0.76), _run("bf16", 0, 200.0, 0.4)]
    rows = bench.summarize_training(runs, {"fixed": 1.6, "random": 1.5, "grouped": 1.01})
    assert [r["config"] for r in rows] == ["baseline", "grouped", "bf16"]
    assert all(r["phase"] == "train" for r in rows)
    grouped = rows[1]
    assert grouped["speedup"] == pytest.approx(110 / 55) and grouped["retention"] == pytest.approx(97.5)
    assert grouped["padding_ratio"] == 1.01 and grouped["seeds"] == [0, 1]
    assert rows[0]["batching"] == "fixed" and rows[2]["precision"] == "bf16"


def test_summarize_inference_against_fp32_at_the_same_batch():
    samples = {"fp32": {32: [10.0, 12.0, 11.0], 1: [2.0]}, "int8": {32: [22.0], 1: [3.0]}}
    quality = {"fp32": {"macro_f1": 0.8, "label_agreement": 1.0}, "int8": {"macro_f1": 0.78,
                                                                          "label_agreement": 0.97}}
    rows = bench.summarize_inference(samples, quality)
    int8 = {r["batch_size"]: r for r in rows if r["config"] == "int8"}
    assert int8[32]["speedup"] == pytest.approx(2.0) and int8[1]["speedup"] == pytest.approx(1.5)
    assert int8[32]["retention"] == pytest.approx(97.5) and int8[32]["label_agreement"] == 0.97
    payload = {"data": "r8", "label": "smoke", "n_train": 300, "n_test": 200, "seeds": [0],
               "settings": {"epochs": 1}, "machine": {"cpu_model": "X", "cpu_flags_of_interest": ["avx2"]},
               "rows": bench.summarize_training([_run("baseline", 0, 1.0, 0.5)]) + rows}
    table = bench.markdown(payload)
    assert "(smoke)" in table and "| int8 | 32 | 22.0 | 2.00 |" in table


def test_the_baseline_reads_jsonl(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n\n{"text": "b", "labels": ["y", "z"]}\n')
    assert baseline.read_jsonl(path) == (["a", "b"], ["x", ["y", "z"]])
    assert baseline.read_jsonl(path, limit=1) == (["a"], ["x"])


def test_inference_rows_use_their_reference_and_the_baseline():
    samples = {"fp32": {32: [10.0]}, "baseline": {32: [5.0]}, "early-exit-full-depth": {32: [9.0]},
               "early-exit": {32: [30.0]}}
    quality = {"fp32": {"macro_f1": 0.8}, "baseline": {"macro_f1": 0.8},
               "early-exit-full-depth": {"macro_f1": 0.9}, "early-exit": {"macro_f1": 0.891,
                                                                          "mean_exit_layer": 2.5}}
    rows = bench.summarize_inference(samples, quality, {"early-exit": "early-exit-full-depth"})
    exit_row = next(r for r in rows if r["config"] == "early-exit")
    assert exit_row["retention"] == pytest.approx(99.0)
    assert exit_row["retention_reference"] == "early-exit-full-depth"
    assert exit_row["speedup"] == pytest.approx(3.0) and exit_row["speedup_vs_baseline"] == pytest.approx(6.0)
    assert exit_row["mean_exit_layer"] == 2.5


def test_finished_runs_resume_and_other_settings_are_refused(tmp_path):
    work = tmp_path / "work"
    identity = {"data": "r8", "n_train": 10, "epochs": 1.0}
    assert bench.resume_runs(work, identity) == {}
    bench.record_run(work, _run("grouped", 1, 5.0, 0.7))
    bench.record_run(work, _run("baseline", 0, 9.0, 0.7))
    done = bench.resume_runs(work, identity)
    assert set(done) == {("grouped", 1), ("baseline", 0)} and done["grouped", 1]["train_duration_s"] == 5.0
    with pytest.raises(SystemExit, match="epochs"):
        bench.resume_runs(work, {**identity, "epochs": 2.0})
