"""Helpers of benchmarks/topicbert_table3.py: per-row summary over seeds and the TopicBERT comparisons.

No training and no timing: the rows are made up, the arithmetic is checked.
"""

from __future__ import annotations

import pytest

from tests.benchmarks import load_benchmark

bench = load_benchmark("topicbert_table3")


def _row(method, seed, f1, epoch_s, p=None):
    notes = {"n_partitions": p} if p else {}
    return {"method": method, "seed": seed, "macro_f1": f1, "accuracy": f1, "epoch_duration_s": epoch_s,
            "train_duration_s": 3 * epoch_s, "flops": 100.0 / (p or 1), "notes": notes}


def test_summary_is_mean_and_sample_std_over_seeds():
    rows = [_row("bert", 0, 0.90, 100.0), _row("bert", 1, 0.92, 110.0), _row("cnn", 0, 0.5, 1.0)]
    summary = bench.summarize_rows(rows)
    assert summary["bert"]["seeds"] == [0, 1]
    assert summary["bert"]["macro_f1"] == pytest.approx(0.91)
    assert summary["bert"]["macro_f1_std"] == pytest.approx(0.0141421, rel=1e-4)
    assert summary["bert"]["epoch_duration_s"] == pytest.approx(105.0)
    assert summary["cnn"]["macro_f1_std"] is None  # one seed: undefined, not 0


def test_comparisons_give_speedup_retention_and_the_paper_targets():
    rows = [_row("bert", 0, 0.90, 100.0), _row("bert@fixed", 0, 0.90, 120.0),
            _row("topicbert", 0, 0.91, 100.0, p=1), _row("topicbert@p4", 0, 0.895, 50.0, p=4),
            _row("topicbert@p8", 0, 0.80, 40.0, p=8)]
    comps = {(c["method"], c["baseline"]): c for c in bench.compare_rows(bench.summarize_rows(rows))}
    p4 = comps[("topicbert@p4", "bert")]
    assert p4["speedup"] == pytest.approx(2.0) and p4["retention"] == pytest.approx(99.444, rel=1e-4)
    assert p4["meets_target"] is True
    assert comps[("topicbert@p4", "bert@fixed")]["speedup"] == pytest.approx(2.4)
    assert comps[("topicbert@p8", "bert")]["meets_target"] is False  # fast but 88.9% retention
    assert comps[("topicbert", "bert")]["meets_target"] is True  # p = 1: F1 at or above BERT-N
    assert comps[("topicbert", "bert")]["target"].startswith("macro-F1 >= BERT-N")
    assert len(comps) == 6  # 3 TopicBERT rows x 2 baselines, nothing for bert or cnn


def test_paired_per_seed_ratios_and_the_small_encoder_row():
    rows = [_row("bert", 0, 0.90, 100.0), _row("bert", 1, 0.80, 100.0), _row("bert", 2, 0.85, 90.0),
            _row("topicbert@p2", 0, 0.90, 50.0, p=2), _row("topicbert@p2", 1, 0.88, 40.0, p=2),
            _row("bert@small", 0, 0.70, 50.0)]
    comps = {(c["method"], c["baseline"]): c for c in bench.compare_rows(bench.summarize_rows(rows))}
    p2 = comps[("topicbert@p2", "bert")]
    assert p2["paired_seeds"] == ["0", "1"]  # seed 2 has no TopicBERT run
    assert p2["retention_per_seed"] == pytest.approx({"0": 100.0, "1": 110.0})
    assert p2["speedup_per_seed"] == pytest.approx({"0": 2.0, "1": 2.5})
    assert p2["macro_f1_diff_mean"] == pytest.approx(0.04)
    assert p2["macro_f1_diff_std"] == pytest.approx(0.05657, rel=1e-3)
    small = comps[("bert@small", "bert")]
    assert small["meets_target"] is None and small["target"] is None
    assert small["speedup"] == pytest.approx(2.0)  # bert's seed 0 only: the seed both rows have
    assert small["seeds_compared"] == [0]
    # headline ratios over the paired seeds 0 and 1, not bert's seed 2
    assert p2["speedup"] == pytest.approx(100.0 / 45.0) and p2["seeds_compared"] == [0, 1]
    assert p2["retention"] == pytest.approx(100.0 * 0.89 / 0.85)
    assert small["macro_f1_diff_std"] is None  # one paired seed


def test_markdown_has_the_paper_rows_and_the_verdicts():
    rows = [_row("bert", 0, 0.90, 100.0), _row("bert", 1, 0.80, 100.0), _row("cnn", 0, 0.5, 1.0),
            _row("topicbert@p4", 0, 0.895, 50.0, p=4), _row("topicbert@p4", 1, 0.70, 50.0, p=4)]
    summary = bench.summarize_rows(rows)
    result = {"rows": summary, "comparisons": bench.compare_rows(summary), "command": "python x.py",
              "run_dir": "runs/x", "machine": {"cpu_model": "CPU", "cpu_count": 2, "torch_num_threads": 1},
              "data": {"dataset": "r8", "n_train": 10, "n_validation": 2, "n_test": 4, "eval_split": "test",
                       "task": "single-label"}}
    text = bench.render_markdown(result)
    lines = text.splitlines()
    table = [ln for ln in lines if ln.startswith("| ") and "`" in ln]
    assert [ln.split("|")[1].strip() for ln in table[:3]] == ["CNN", "BERT-N (dynamic padding)",
                                                             "TopicBERT-N/4"]
    assert "0.850 ± 0.071" in table[1]  # bert over seeds 0 and 1
    verdict = next(ln for ln in lines if ln.startswith("| `topicbert@p4` | `bert`"))
    assert "2.00×" in verdict and "**no**" in verdict and "99.4, 87.5" in verdict


def test_machine_info_takes_torch_threads_from_the_rows_when_they_agree():
    import torch

    agree = [{"torch_threads": 17}, {"torch_threads": 17}, {"torch_threads": None}, {}]
    info = bench.machine_info(agree)
    assert info["torch_num_threads"] == 17 != torch.get_num_threads()
    keys_before = {"platform", "python", "cpu_model", "cpu_count", "torch_version", "device", "load_average"}
    assert keys_before <= set(info)
    assert bench.machine_info([{"torch_threads": 1}, {"torch_threads": 2}])["torch_num_threads"] == (
        torch.get_num_threads()
    )
    assert bench.machine_info()["torch_num_threads"] == torch.get_num_threads()


def test_default_output_is_named_after_the_rows_dataset():
    rows = [dict(_row("bert", 0, 0.9, 100.0), dataset="imdb")]
    assert bench.default_output(rows, "r8") == "benchmarks/results/topicbert_table3_imdb.json"
    no_name = [_row("bert", 0, 0.9, 100.0)]
    assert bench.default_output(no_name, "r8") == "benchmarks/results/topicbert_table3_r8.json"
