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
