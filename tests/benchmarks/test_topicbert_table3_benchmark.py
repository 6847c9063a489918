"""Helpers of benchmarks/topicbert_table3.py: per-row summary over seeds and the TopicBERT comparisons.

No training and no timing: the rows are made up, the arithmetic is checked.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "topicbert_table3.py"
_spec = importlib.util.spec_from_file_location("benchmarks_topicbert_table3", _PATH)
bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench
_spec.loader.exec_module(bench)


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
