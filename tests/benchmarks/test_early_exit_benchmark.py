"""Helpers of benchmarks/early_exit.py: summaries, merging, and the measured settings' bookkeeping.

No timing is asserted: only structure (which settings ran how often) and the deterministic columns.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.benchmarks import load_benchmark
from tests.conftest import TOY_LABELS, TOY_TEXTS

bench = load_benchmark("early_exit")


def test_summarize_throughputs_takes_median():
    out = bench.summarize_throughputs([10.0, 30.0, 20.0])
    assert out["throughput_docs_per_s"] == 20.0
    assert (out["throughput_docs_per_s_min"], out["throughput_docs_per_s_max"]) == (10.0, 30.0)
    assert out["throughput_docs_per_s_samples"] == [10.0, 30.0, 20.0]
    with pytest.raises(ValueError, match="finite and > 0"):
        bench.summarize_throughputs([1.0, float("inf")])
    with pytest.raises(ValueError):
        bench.summarize_throughputs([])


def test_speedup_and_retention():
    assert bench.speedup_ratio(50.0, 20.0) == pytest.approx(2.5)
    assert bench.retention_percent(0.891, 0.9) == pytest.approx(99.0)
    with pytest.raises(ValueError, match="reference_throughput"):
        bench.speedup_ratio(1.0, 0.0)
    with pytest.raises(ValueError, match="reference macro-F1"):
        bench.retention_percent(0.5, 0.0)


def test_comparison_summary_is_relative_to_full_depth():
    settings = {
        "full_depth": {"macro_f1": 0.9, "flops": 3e9, "throughput_docs_per_s_batch32": 20.0,
                       "throughput_docs_per_s_batch1": 10.0},
        "calibrated_entropy": {"macro_f1": 0.9 * 0.995, "flops": 1e9, "throughput_docs_per_s_batch32": 45.0,
                               "throughput_docs_per_s_batch1": 30.0},
    }
    out = bench.comparison_summary(settings)
    assert out["full_depth"]["speedup"] == 1.0 and out["full_depth"]["retention"] == pytest.approx(100.0)
    cal = out["calibrated_entropy"]
    assert cal["speedup"] == cal["speedup_batch32"] == pytest.approx(2.25)
    assert cal["speedup_batch1"] == pytest.approx(3.0)
    assert cal["retention"] == pytest.approx(99.5)
    assert cal["flops_speedup"] == pytest.approx(3.0)
    assert "speedup" not in settings["calibrated_entropy"]  # inputs are not modified
    with pytest.raises(ValueError, match="reference setting 'full_depth' is missing"):
        bench.comparison_summary({"x": settings["full_depth"]})


def _row(rule, value, **extra):
    return {
        "rule": rule,
        "entropy_threshold": value if rule == "entropy" else None,
        "patience": value if rule == "patience" else None,
        "macro_f1": 0.5,
        "flops": 1e9,
        **extra,
    }


def test_merge_curve_rows_joins_timing_columns():
    a = [
        _row("entropy", 0.0, throughput_docs_per_s_batch32=10.0),
        _row("patience", 2, throughput_docs_per_s_batch32=12.0),
    ]
    b = [
        _row("patience", 2, throughput_docs_per_s_batch1=3.0),
        _row("entropy", 0.0, throughput_docs_per_s_batch1=2.0),
    ]
    merged = bench.merge_curve_rows(a, b)
    assert [r["throughput_docs_per_s_batch1"] for r in merged] == [2.0, 3.0]
    assert [r["throughput_docs_per_s_batch32"] for r in merged] == [10.0, 12.0]


def test_merge_curve_rows_rejects_disagreement():
    with pytest.raises(ValueError, match="same settings"):
        bench.merge_curve_rows([_row("entropy", 0.0)], [_row("entropy", 0.05)])
    other = _row("entropy", 0.0)
    other["macro_f1"] = 0.6
    with pytest.raises(ValueError, match="macro_f1 differs"):
        bench.merge_curve_rows([_row("entropy", 0.0)], [other])


def test_setting_kwargs():
    assert bench.setting_kwargs({"rule": "none"}) == {"exit_rule": "none"}
    assert bench.setting_kwargs(_row("entropy", 0.25)) == {"exit_rule": "entropy", "entropy_threshold": 0.25}
    assert bench.setting_kwargs(_row("patience", 3)) == {"exit_rule": "patience", "patience": 3}


def _toy_early_exit(tiny_bert4_dir):
    """An untrained early-exit model on the toy texts (eval mode) and the toy labels as class indices."""
    from frugaltext.methods.early_exit import EarlyExitMethod
    from tests.helpers import make_data

    method = EarlyExitMethod(model_name_or_path=str(tiny_bert4_dir), max_length=16, show_progress=False)
    names = sorted(set(TOY_LABELS))
    method.label_names, method.multi_label = tuple(names), False
    method._build(make_data(TOY_TEXTS, TOY_LABELS), seed=0)
    method.model.eval()
    return method, np.array([names.index(y) for y in TOY_LABELS])


def test_measure_settings_matches_offline_curve(tiny_bert4_dir):
    """Real batched runs give the exits, macro-F1 and FLOPs of the offline simulation; every setting is
    timed `repeats` times at each batch size; batch 1 uses the stated subset."""
    from frugaltext.models.early_exit import early_exit_curve

    method, labels = _toy_early_exit(tiny_bert4_dir)
    settings = {
        "full_depth": {"rule": "none"},
        "entropy_s1": {"rule": "entropy", "entropy_threshold": 1.0},
        "patience_2": {"rule": "patience", "patience": 2},
    }
    out = bench.measure_settings(method, TOY_TEXTS, labels, settings, batch1_docs=3, repeats=2)
    assert set(out) == set(settings)
    assert out["full_depth"]["exit_layer_histogram"] == [0, 0, 0, 8]
    assert out["entropy_s1"]["exit_layer_histogram"] == [8, 0, 0, 0]
    curve = early_exit_curve(method.model, TOY_TEXTS, labels, method.tokenizer, max_length=16,
                             entropy_grid=[1.0], patience_grid=[2], measure=False)
    simulated = {(r["rule"], r["entropy_threshold"], r["patience"]): r for r in curve}
    for name in ("entropy_s1", "patience_2"):
        row = out[name]
        sim = simulated[(row["rule"], row["entropy_threshold"], row["patience"])]
        assert row["macro_f1"] == pytest.approx(sim["macro_f1"])
        assert row["mean_exit_layer"] == pytest.approx(sim["mean_exit_layer"])
        assert row["flops"] == pytest.approx(sim["flops"])
    for row in out.values():
        assert len(row["throughput_docs_per_s_batch32_samples"]) == 2
        assert len(row["throughput_docs_per_s_batch1_samples"]) == 2
        assert (row["n_timed_docs_batch32"], row["n_timed_docs_batch1"]) == (8, 3)
        assert sum(row["exit_layer_histogram"]) == 8
        assert row["n_exit_mismatch_batch32"] == 0  # the timed dynamic runs exit where simulated
    assert out["entropy_s1"]["flops"] < out["full_depth"]["flops"]


# ---- --stack: early exit with int8 / bf16 inference (issue 16 item 2) -----------------------------------
def test_parse_stack():
    assert bench.parse_stack("int8,bf16") == ("int8", "bf16")
    assert bench.parse_stack(" BF16 ") == ("bf16",)
    assert bench.parse_stack("") == () and bench.parse_stack(None) == ()
    with pytest.raises(ValueError, match="unknown variant.*fp16.*choose from int8, bf16"):
        bench.parse_stack("int8,fp16")
    with pytest.raises(ValueError, match="twice"):
        bench.parse_stack("int8,int8")
    assert bench.parse_args(["--stack", "int8"]).stack == ["int8"]
    assert bench.parse_args([]).stack == []
    assert bench.parse_args(["--batch32-docs", "7"]).batch32_docs == 7
    with pytest.raises(SystemExit):
        bench.parse_args(["--batch32-docs", "0"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--stack", "onnx"])


def test_stack_combination_and_bf16_decision():
    assert bench.stack_combination(None) == {"inference_quantization": "none", "precision": "fp32"}
    assert bench.stack_combination("int8") == {"inference_quantization": "int8", "precision": "fp32"}
    assert bench.stack_combination("bf16") == {"inference_quantization": "none", "precision": "bf16"}
    with pytest.raises(ValueError, match="unknown stack variant"):
        bench.stack_combination("fp16")
    assert bench.bf16_decision(False, ("bf16", "amx_bf16 in /proc/cpuinfo"))[0] is True
    run, why = bench.bf16_decision(False, ("fp32", "no amx_bf16/avx512_bf16"))
    assert run is False and why.startswith("not run") and "no amx_bf16" in why
    assert bench.bf16_decision(True, ("fp32", "no amx_bf16"))[0] is True


def test_stacked_settings_add_named_rows_with_their_combination():
    settings = {"full_depth": {"rule": "none"}, "entropy_s0": _row("entropy", 0.0),
                "calibrated_entropy": _row("entropy", 0.3)}
    out = bench.stacked_settings(settings, ["int8", "bf16"], ["full_depth", "calibrated_entropy"])
    assert list(out) == ["full_depth", "entropy_s0", "calibrated_entropy", "full_depth@int8",
                         "calibrated_entropy@int8", "full_depth@bf16", "calibrated_entropy@bf16"]
    assert out["calibrated_entropy@int8"] == {**_row("entropy", 0.3), "inference_quantization": "int8",
                                              "precision": "fp32", "stack": "int8"}
    assert out["full_depth"]["precision"] == "fp32" and out["full_depth"]["stack"] is None
    assert out["full_depth@bf16"]["precision"] == "bf16"
    assert bench.stacked_settings(settings, [], ["full_depth"]).keys() == settings.keys()
    with pytest.raises(ValueError, match="calibrated_patience not among"):
        bench.stacked_settings(settings, ["int8"], ["calibrated_patience"])


def test_measure_settings_runs_the_int8_and_bf16_combinations(tiny_bert4_dir):
    """int8 rows run the quantized copy (their own all-exit pass), bf16 rows run under autocast; the timed
    dynamic runs exit where that combination's simulation says; speed-up is against fp32 full depth;
    batch 32 is timed on the first ``batch32_docs`` documents while macro-F1 and exits use all of them."""
    method, labels = _toy_early_exit(tiny_bert4_dir)
    plain = {"full_depth": {"rule": "none"}, "calibrated_patience": _row("patience", 2)}
    settings = bench.stacked_settings(plain, ["int8", "bf16"], list(plain))
    out = bench.measure_settings(method, TOY_TEXTS, labels, settings, batch1_docs=2, repeats=1,
                                 batch32_docs=5)
    assert set(out) == set(settings)
    for name, row in out.items():
        assert (row["n_timed_docs_batch32"], row["n_timed_docs_batch1"]) == (5, 2)
        assert (row["inference_quantization"], row["precision"]) == (
            settings[name]["inference_quantization"], settings[name]["precision"])
        assert row["n_exit_mismatch_batch32"] == 0
        assert sum(row["exit_layer_histogram"]) == 8
    assert out["full_depth@int8"]["exit_layer_histogram"] == [0, 0, 0, 8]
    assert out["full_depth@int8"]["flops"] == out["full_depth"]["flops"]
    assert out["calibrated_patience@bf16"]["mean_exit_layer"] <= 4
    summary = bench.comparison_summary(out)
    assert summary["full_depth"]["speedup"] == 1.0
    column = "throughput_docs_per_s_batch32"
    assert summary["full_depth@int8"]["speedup"] == pytest.approx(
        out["full_depth@int8"][column] / out["full_depth"][column])


def test_comparison_markdown_has_one_row_per_setting_and_the_calibration():
    comparison = bench.comparison_summary({
        "full_depth": {"rule": "none", "macro_f1": 0.9, "flops": 4e9, "throughput_docs_per_s_batch32": 10.0,
                       "throughput_docs_per_s_batch1": 5.0},
        "calibrated_entropy@int8": {"rule": "entropy", "entropy_threshold": 0.5, "macro_f1": 0.891,
                                    "inference_quantization": "int8", "flops": 1e9,
                                    "throughput_docs_per_s_batch32": 50.0,
                                    "throughput_docs_per_s_batch1": None},
    })
    text = bench.comparison_markdown({
        "model": {"num_hidden_layers": 12, "training_mode": "joint", "encoder": "all-mpnet-base-v2"},
        "args": {}, "dataset": {"data": "r8"}, "comparison": comparison,
        "calibration": {"entropy": {"n_docs": 9, "full_depth_macro_f1": 0.8,
                                    "chosen": {"entropy_threshold": 0.5, "retention": 0.995,
                                               "mean_exit_layer": 3.0, "exit_layer_histogram": [1, 8]}}},
    })
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| setting")]
    assert len(rows) == 2 and text.startswith("# Early exit: all-mpnet-base-v2 (12 layers, joint), r8")
    assert "| calibrated_entropy@int8 | int8 / fp32 | S = 0.5 | 0.8910 | 99.00 | - | 4.00x |" in rows[1]
    assert rows[1].endswith("| 5.00x | - | - |")  # no batch-1 throughput: shown as missing, not as 0
    assert "S = 0.5 keeps 99.50 % at mean exit layer 3.00; exit layers [1, 8]." in text
