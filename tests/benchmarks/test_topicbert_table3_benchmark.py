"""Helpers of benchmarks/topicbert_table3.py: per-row summary over seeds and the TopicBERT comparisons.

No training and no timing: the rows are made up, the arithmetic is checked.
"""

from __future__ import annotations

import pytest

from tests.benchmarks import load_benchmark

bench = load_benchmark("topicbert_table3")


def _row(method, seed, f1, epoch_s, p=None, steps=None, **notes):
    notes = {**({"n_partitions": p} if p else {}), **notes}
    if steps is not None:
        notes["optimizer_steps_per_epoch"] = steps
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
    assert len(comps) == 6  # 3 TopicBERT rows x 2 baselines present, nothing for bert or cnn


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


def _three_baselines():
    """Two seeds of the three BERT-N baselines, TopicBERT-N/4 and its step-matched twin (made-up values)."""
    return [
        _row("bert@fixed", 0, 0.90, 120.0, steps=309, batching="random"),
        _row("bert@fixed", 1, 0.88, 110.0, steps=309, batching="random"),
        _row("bert@random", 0, 0.90, 100.0, steps=309, batching="random"),
        _row("bert@random", 1, 0.90, 100.0, steps=309, batching="random"),
        _row("bert", 0, 0.92, 80.0, steps=309, batching="grouped"),
        _row("bert", 1, 0.90, 60.0, steps=309, batching="grouped"),
        _row("topicbert@p4", 0, 0.93, 40.0, p=4, steps=627, batching="grouped"),
        _row("topicbert@p4", 1, 0.92, 40.0, p=4, steps=627, batching="grouped"),
        _row("topicbert@p4-steps", 0, 0.91, 38.0, p=4, steps=314, batching="grouped", step_matched=True,
             gradient_accumulation_steps=2, train_batch_size=16),
        _row("topicbert@p4-steps", 1, 0.89, 38.0, p=4, steps=314, batching="grouped", step_matched=True,
             gradient_accumulation_steps=2, train_batch_size=16),
    ]


def test_three_baselines_give_paired_per_seed_differences_with_mean_and_std():
    summary = bench.summarize_rows(_three_baselines())
    assert summary["bert"]["optimizer_steps_per_epoch"] == 309
    assert summary["topicbert@p4-steps"]["step_matched"] is True
    assert summary["topicbert@p4"]["step_matched"] is False
    comps = bench.compare_rows(summary)
    assert [c["baseline"] for c in comps if c["method"] == "topicbert@p4"] == ["bert@fixed", "bert@random",
                                                                              "bert"]
    by = {(c["method"], c["baseline"]): c for c in comps}
    fixed = by[("topicbert@p4", "bert@fixed")]
    assert fixed["baseline_batching"] == "fixed"
    assert fixed["macro_f1_diff_per_seed"] == pytest.approx({"0": 0.03, "1": 0.04})
    assert fixed["macro_f1_diff_mean"] == pytest.approx(0.035)
    assert fixed["macro_f1_diff_std"] == pytest.approx(0.0070711, rel=1e-4)
    assert fixed["speedup_per_seed"] == pytest.approx({"0": 3.0, "1": 2.75})
    assert fixed["speedup_per_seed_mean"] == pytest.approx(2.875)
    assert fixed["speedup_per_seed_std"] == pytest.approx(0.1767767, rel=1e-4)
    grouped = by[("topicbert@p4", "bert")]
    assert grouped["speedup"] == pytest.approx(70.0 / 40.0)  # ratio of the paired seeds' mean T_epoch
    assert grouped["speedup_per_seed"] == pytest.approx({"0": 2.0, "1": 1.5})
    assert grouped["optimizer_steps_ratio"] == pytest.approx(627 / 309)
    assert by[("topicbert@p4-steps", "bert")]["optimizer_steps_ratio"] == pytest.approx(314 / 309)


def test_targets_are_checked_against_all_three_baselines_and_the_baseline_spread():
    rows = _three_baselines()
    summary = bench.summarize_rows(rows)
    targets = {t["row"]: t for t in bench.check_targets(summary, bench.compare_rows(summary))}
    p4 = targets["topicbert@p4"]
    assert p4["per_baseline"] == {"bert@fixed": True, "bert@random": True, "bert": True}
    assert p4["met"] is True and p4["missing_baselines"] == []
    # the step-matched row keeps 98.9% of the grouped baseline's F1: met against two, not against all three
    steps = targets["topicbert@p4-steps"]
    assert steps["per_baseline"]["bert"] is False and steps["met"] is False
    # BERT-N's spread over seeds: fixed std 0.0141 < 0.015, grouped 0.0141, random 0
    assert targets["bert@fixed"]["met"] is True and targets["bert@random"]["value"] == pytest.approx(0.0)
    wide = [dict(r, macro_f1=0.80) if (r["method"], r["seed"]) == ("bert", 1) else r for r in rows]
    summary = bench.summarize_rows(wide)
    targets = {t["row"]: t for t in bench.check_targets(summary, bench.compare_rows(summary))}
    assert targets["bert"]["met"] is False  # 0.92 and 0.80: std 8.5 points
    # a missing baseline leaves the verdict open unless another already failed
    partial = [r for r in rows if r["method"] != "bert@random"]
    summary = bench.summarize_rows(partial)
    targets = {t["row"]: t for t in bench.check_targets(summary, bench.compare_rows(summary))}
    assert targets["topicbert@p4"]["met"] is None
    assert targets["topicbert@p4"]["missing_baselines"] == ["bert@random"]
    assert targets["topicbert@p4-steps"]["met"] is False


def test_step_ablation_pairs_each_step_matched_row_with_its_twin():
    ablations = bench.step_ablations(bench.summarize_rows(_three_baselines()))
    assert len(ablations) == 1
    a = ablations[0]
    assert (a["method"], a["twin"], a["n_partitions"]) == ("topicbert@p4-steps", "topicbert@p4", 4)
    assert (a["optimizer_steps_per_epoch"], a["twin_optimizer_steps_per_epoch"]) == (314, 627)
    assert a["macro_f1_diff_per_seed"] == pytest.approx({"0": -0.02, "1": -0.03})
    assert a["macro_f1_diff_mean"] == pytest.approx(-0.025)
    assert a["speedup_per_seed"] == pytest.approx({"0": 40 / 38, "1": 40 / 38})


def test_optimizer_steps_fall_back_to_train_steps_over_epochs():
    assert bench.optimizer_steps({"notes": {"optimizer_steps_per_epoch": 309}}) == 309
    assert bench.optimizer_steps({"notes": {}, "train_steps": 927, "n_epochs": 3}) == 309
    assert bench.optimizer_steps({"notes": {}}) is None  # rows written before issue 15


def test_markdown_shows_steps_batching_targets_and_the_ablation():
    lines = bench.render_markdown(_result(_three_baselines())).splitlines()
    row = next(ln for ln in lines if ln.startswith("| TopicBERT-N/4, BERT-N's steps"))
    assert "| grouped |" in row and "| 314 (16 × 2) |" in row
    assert "| random |" in next(ln for ln in lines if ln.startswith("| BERT-N (fixed padding"))
    grouped = next(ln for ln in lines if ln.startswith("| BERT-N (dynamic padding, length-grouped"))
    assert "| grouped |" in grouped
    verdict = next(ln for ln in lines if ln.startswith("| `topicbert@p4` | `bert@fixed` (fixed)"))
    assert "+0.030, +0.040" in verdict and "+0.035 ± 0.007" in verdict
    assert "3.00, 2.75 (2.88 ± 0.18)" in verdict
    assert "| 2.03 |" in verdict  # optimizer steps ratio 627 / 309
    target = next(ln for ln in lines if ln.startswith("| `topicbert@p4-steps` | speedup"))
    assert "`bert`: **no**" in target and target.endswith("| **no** |")
    ablation = next(ln for ln in lines if ln.startswith("| `topicbert@p4-steps` | `topicbert@p4` |"))
    assert "314, 627" in ablation and "-0.025 ± 0.007" in ablation


def test_markdown_names_rows_rebuilt_from_a_summary_and_only_those():
    rows = _three_baselines()
    plain = bench.render_markdown(_result(rows))
    assert "Rebuilt rows" not in plain
    rows[1]["reconstructed"] = "rebuilt from a summary"
    summary = bench.summarize_rows(rows)
    assert summary[rows[1]["method"]]["reconstructed_seeds"] == [rows[1]["seed"]]
    lines = bench.render_markdown(_result(rows)).splitlines()
    note = next(ln for ln in lines if ln.startswith("Rebuilt rows"))
    assert note.endswith(f"`{rows[1]['method']}` seed {rows[1]['seed']}.")


def _result(rows):
    summary = bench.summarize_rows(rows)
    comps = bench.compare_rows(summary)
    return {"rows": summary, "comparisons": comps, "targets": bench.check_targets(summary, comps),
            "ablations": bench.step_ablations(summary), "command": "python x.py", "run_dir": "runs/x",
            "data": {"dataset": "r8"}}


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
    # rows without a recorded batching (written before the grouped default) keep the old name
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


def test_target_plot_has_one_panel_per_baseline_and_is_linked_from_the_markdown(tmp_path):
    summary = bench.summarize_rows(_three_baselines())
    comps = bench.compare_rows(summary)
    result = {"rows": summary, "comparisons": comps, "data": {"dataset": "r8", "n_train": 10},
              "command": "python x.py", "run_dir": "runs/x"}
    written = bench.render_target_plot(result, tmp_path / "t3_targets.png")
    assert written == tmp_path / "t3_targets.png"
    assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = (tmp_path / "t3_targets.svg").read_text()
    for base in ("bert@fixed", "bert@random", "bert"):  # one panel title per baseline present
        assert f"<!-- against {base} -->" in svg
        assert f"<!-- ({bench.BASELINE_TITLES[base]}) -->" in svg
    assert "topicbert@p4-steps" in svg and "topicbert@p4 (" in svg
    result["target_plot"] = written.name
    assert bench.render_markdown(result).rstrip().endswith("(t3_targets.png)")

    # no TopicBERT-N/p row: nothing to draw, nothing written
    only_p1 = bench.summarize_rows([_row("bert", 0, 0.9, 100.0), _row("topicbert", 0, 0.91, 100.0, p=1)])
    empty = {"rows": only_p1, "comparisons": bench.compare_rows(only_p1), "data": {}}
    assert bench.render_target_plot(empty, tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_merge_rows_adds_other_files_rows_and_keeps_the_first_of_a_seed():
    run = [{**_row("bert", 0, 0.80, 10.0), "config_hash": "h"}]
    earlier = [{**_row("bert", 0, 0.10, 99.0), "config_hash": "h"},
               {**_row("bert", 1, 0.82, 11.0), "config_hash": "h"}]
    merged = bench.merge_rows(run, [("docs/runs/x/results.json", earlier)])
    assert [(r["seed"], r["macro_f1"]) for r in merged] == [(0, 0.80), (1, 0.82)]


def test_merge_rows_refuses_a_method_trained_with_other_settings():
    run = [{**_row("bert", 0, 0.80, 10.0), "config_hash": "h"}]
    earlier = [{**_row("bert", 1, 0.82, 11.0), "config_hash": "other"}]
    with pytest.raises(ValueError, match=r"docs/runs/x/results.json: bert seed 1 has config hash other, but "
                                         r"the run folder has h"):
        bench.merge_rows(run, [("docs/runs/x/results.json", earlier)])


def test_target_plot_with_one_baseline_is_wide_enough_for_its_title(tmp_path):
    import struct

    rows = [_row("bert", 0, 0.89, 900.0, batching="grouped"), _row("topicbert@p4", 0, 0.90, 570.0, p=4)]
    summary = bench.summarize_rows(rows)
    result = {"rows": summary, "comparisons": bench.compare_rows(summary),
              "data": {"dataset": "imdb", "n_train": 5000}}
    written = bench.render_target_plot(result, tmp_path / "one.png")
    svg = (tmp_path / "one.svg").read_text()
    assert "<!-- against bert -->" in svg and "<!-- against bert@random -->" not in svg
    width, height = struct.unpack(">II", written.read_bytes()[16:24])  # PNG IHDR
    assert width >= 6.4 * 150 * 0.95 and width > height  # one 4.2-inch panel clipped the title before
