"""Reports from a hand-made results.json: Pareto fronts, the Table 3 layout, its notes and the plot files."""

from __future__ import annotations

import json

import pytest

from frugaltext.errors import DataFormatError, DataNotFoundError
from frugaltext.reports import build_reports
from frugaltext.reports.pareto import pareto_front
from frugaltext.reports.table import build_table, render_markdown, render_rich, summarize

SOURCE = "codecarbon 3.3.2 offline (grid: USA, machine-wide), CPU: TDP estimate (no RAPL)"


def _row(method, seed, f1, t, co2_kg=None, **extra):
    row = {
        "method": method,
        "seed": seed,
        "dataset": "r8",
        "task": "single-label",
        "n_train": 4936,
        "n_validation": 549,
        "n_test": 2189,
        "eval_split": "test",
        "macro_f1": f1,
        "accuracy": f1 + 0.03,
        "micro_f1": f1 + 0.03,
        "weighted_f1": f1 + 0.02,
        "train_duration_s": t,
        "epoch_duration_s": t / 2,
        "train_energy_kwh": t * 1e-5,
        "train_emissions_kg_co2eq": co2_kg if co2_kg is not None else t * 4e-6,
        "paper_emissions_kg_co2eq": 0.07 * t / 3600 * 0.61,
        "energy_source": SOURCE,
        "latency_ms": 1.5,
        "latency_batch_size": 1,
        "throughput_docs_per_s": 12345.0,
        "throughput_batch_size": 32,
        "n_params": 22_700_000,
        "flops": 2.87e9,
        "per_class": {},
    }
    row.update(extra)
    return row


ROWS = [
    _row("tfidf-svm", 0, 0.930, 2.0),
    _row("tfidf-svm", 1, 0.936, 2.2),
    _row("tfidf-lr", 0, 0.920, 9.0),  # dominated: slower and worse than tfidf-svm
    _row("tfidf-lr", 1, 0.922, 9.0),
    _row("bert", 0, 0.910, 600.0),
    _row("bert", 1, 0.918, 620.0),
    _row("topicbert", 0, 0.950, 300.0),  # on the front: better than the svm at a higher cost
    _row("topicbert", 1, 0.952, 310.0),
]


def _write(tmp_path, rows):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(rows))
    return path


def test_pareto_front_excludes_dominated_points():
    costs = [2.0, 9.0, 600.0, 300.0, None]
    scores = [0.93, 0.92, 0.91, 0.95, 0.99]
    assert pareto_front(costs, scores) == [0, 3]  # sorted by cost; the None point takes no part
    assert pareto_front([1.0, 1.0], [0.5, 0.5]) == [0, 1]  # duplicates: neither dominates
    assert pareto_front([1.0, 1.0], [0.5, 0.6]) == [1]  # same cost, better score wins
    assert pareto_front([1.0, 2.0, 3.0], [0.1, 0.2, 0.3]) == [0, 1, 2]
    with pytest.raises(ValueError, match="2 costs but 1 scores"):
        pareto_front([1.0, 2.0], [0.5])


def test_summary_is_mean_and_sample_std_over_seeds():
    by_method = {s.method: s for s in summarize(ROWS)}
    assert list(by_method) == ["tfidf-svm", "tfidf-lr", "bert", "topicbert"]
    assert by_method["bert"].mean("macro_f1") == pytest.approx(0.914)
    assert by_method["bert"].std("macro_f1") == pytest.approx(0.0056569, rel=1e-4)
    assert by_method["bert"].seeds == [0, 1]


def test_table_has_retention_costs_and_the_notes():
    table = build_table(ROWS, reference="bert")
    assert table.headers[:5] == ["Model", "macro-F1 ± std", "Rtn (%) vs bert", "T_epoch (s)", "T (s)"]
    assert table.headers[7:9] == ["latency (ms/doc, batch 1)", "throughput (docs/s, batch 32)"]
    cells = {row[0]: row for row in table.cells}
    assert cells["bert"][1] == "0.914 ± 0.006" and cells["bert"][2] == "100.0"
    assert cells["tfidf-svm"][2] == f"{0.933 / 0.914 * 100:.1f}"  # 102.1
    assert cells["tfidf-svm"][4] == "2.1"  # T (s)
    assert cells["bert"][5] == f"{0.07 * 610 / 3600 * 0.61 * 1000:.3g}"  # CO2 eq.1 in g
    assert cells["bert"][6] == f"{610 * 1e-5 * 1000:.3g}"  # energy in Wh
    assert cells["bert"][8] == "12345" and cells["bert"][9] == "22.7M" and cells["bert"][10] == "2.87G"
    text = render_markdown(table)
    assert text.startswith("| Model | macro-F1 ± std | Rtn (%) vs bert |")
    assert f"Energy (Wh): {SOURCE}." in text
    assert "bert macro-F1 is 1.9 points below tfidf-svm (0.914 vs 0.933)." in text
    assert "not in these results" not in text


def test_missing_reference_gives_dashes_and_says_so():
    rows = [r for r in ROWS if r["method"] != "bert"]
    table = build_table(rows, reference="bert")
    assert all(row[2] == "–" for row in table.cells)
    text = render_markdown(table)
    assert "The reference method 'bert' is not in these results, so retention (Rtn) is not computed." in text
    assert "points below" not in text and "points above" not in text


def test_missing_cost_in_one_seed_is_a_dash_not_a_partial_mean():
    rows = [_row("bert", 0, 0.9, 10.0), _row("bert", 1, 0.9, 10.0, train_energy_kwh=None)]
    cells = build_table(rows).cells[0]
    assert cells[6] == "–" and cells[4] == "10"


def test_rich_table_transposes_for_narrow_terminals():
    table = build_table(ROWS)
    wide, narrow = render_rich(table, width=200), render_rich(table, width=80)
    assert len(wide.columns) == 12 and wide.row_count == 4
    assert len(narrow.columns) == 5 and narrow.row_count == 11


def test_build_reports_writes_table_and_plots(tmp_path):
    path = _write(tmp_path, ROWS)
    (tmp_path / "config.yaml").write_text("reference: topicbert\n")
    report = build_reports(path)
    assert report.table.reference == "topicbert"  # read from config.yaml beside the results
    assert (tmp_path / "table.md").read_text() == report.markdown
    assert (tmp_path / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in (tmp_path / "pareto.svg").read_text()
    assert "Rtn (%) vs topicbert" in report.markdown
    assert build_reports(tmp_path, reference="bert", plot=False).table.reference == "bert"


def test_build_reports_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"results.json does not exist; run `frugaltext compare"):
        build_reports(tmp_path)
    _write(tmp_path, [])
    with pytest.raises(DataFormatError, match="holds no result rows"):
        build_reports(tmp_path)
    _write(tmp_path, [{"method": "bert"}])
    with pytest.raises(DataFormatError, match="row 1 lacks seed"):
        build_reports(tmp_path)


def test_topic_section_lists_nvdm_figures_and_saved_topic_words(tmp_path):
    topic_notes = {"nvdm_perplexity": 812.4, "npmi": 0.0512, "npmi_finetuned": 0.0431, "bow_vocab_size": 2000,
                   "n_topics": 50}
    rows = [_row("bert", 0, 0.9, 100.0), _row("topicbert@p2", 0, 0.89, 60.0, notes=topic_notes)]
    path = _write(tmp_path, rows)
    model_dir = tmp_path / "models" / "topicbert@p2-seed0"
    model_dir.mkdir(parents=True)
    (model_dir / "topics.txt").write_text("topic 1: oil crude barrels\ntopic 2: wheat grain tonnes\n")
    text = build_reports(path, plot=False).markdown
    assert "## Topic models (NVDM)" in text
    assert "| topicbert@p2-seed0 | 812.4 | 0.051 | – | 0.043 | 2000 | 50 |" in text
    assert "- topic 2: wheat grain tonnes" in text
    # no NVDM rows: no section
    (tmp_path / "b").mkdir()
    assert "Topic models" not in build_reports(_write(tmp_path / "b", rows[:1]), plot=False).markdown


def test_log_axes_label_ticks_as_plain_numbers():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from frugaltext.reports.pareto import _plain_log_axis

    fig, ax = plt.subplots()
    ax.plot([0.18, 3.4], [0.5, 0.9])
    _plain_log_axis(ax)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert {"0.2", "0.5", "1", "2"} <= set(labels)
    assert all("10^" not in lab and "times" not in lab for lab in labels)
    assert not [t.get_text() for t in ax.get_xminorticklabels() if t.get_text()]
    plt.close(fig)


def test_pareto_column_marks_the_fronts_of_a_hand_made_table():
    rows = [
        # cheap and good at training; slow at inference
        _row("a", 0, 0.90, 10.0, latency_ms=50.0, throughput_docs_per_s=10.0),
        # dominated everywhere by "a" on training and by "c" at inference: worse and no cheaper
        _row("b", 0, 0.85, 20.0, latency_ms=60.0, throughput_docs_per_s=9.0),
        # the best score: on every front
        _row("c", 0, 0.95, 100.0, latency_ms=40.0, throughput_docs_per_s=30.0),
        # fastest at inference, worst score: on the latency and throughput fronts only
        _row("d", 0, 0.70, 200.0, latency_ms=1.0, throughput_docs_per_s=900.0),
        # latency not measured: on no latency front, and equal to "a" on training (duplicates both kept)
        _row("e", 0, 0.90, 10.0, latency_ms=None, throughput_docs_per_s=5.0),
    ]
    table = build_table(rows, reference="a")
    assert table.headers[-1] == "Pareto (F1 vs)"
    assert table.pareto == {
        "a": ["T", "energy"],
        "b": [],
        "c": ["T", "energy", "latency", "throughput"],
        "d": ["latency", "throughput"],
        "e": ["T", "energy"],
    }
    cells = {row[0]: row[-1] for row in table.cells}
    assert cells == {"a": "T, energy", "b": "–", "c": "T, energy, latency, throughput",
                     "d": "latency, throughput", "e": "T, energy"}
    lines = {line.split(" | ")[0]: line for line in render_markdown(table).splitlines()}
    assert lines["| b"].endswith("| 22.7M | 2.87G | – |")
    assert lines["| d"].endswith("| 22.7M | 2.87G | latency, throughput |")


def test_build_reports_writes_the_inference_pareto_plot(tmp_path):
    rows = [dict(r, inference_energy_kwh_per_doc=1e-7 * (i + 1)) for i, r in enumerate(ROWS)]
    report = build_reports(_write(tmp_path, rows))
    assert report.paths["pareto_inference_png"] == tmp_path / "pareto_inference.png"
    assert (tmp_path / "pareto_inference.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = (tmp_path / "pareto_inference.svg").read_text()
    assert "<svg" in svg and "inference energy (kWh per 1,000 documents" in svg
    assert "latency (ms per document, batch 1" in svg
    assert (tmp_path / "pareto.png").is_file() and (tmp_path / "pareto.svg").is_file()  # the old files stay


def test_report_on_the_stored_table3_run_only_gains_the_pareto_column(tmp_path):
    import shutil
    from pathlib import Path

    stored = Path(__file__).resolve().parents[2] / "docs" / "runs" / "table3-r8"
    run = tmp_path / "table3-r8"
    shutil.copytree(stored, run)
    for topics in (run / "topics").glob("*.txt"):  # the run's models/ were not kept; their topic words were
        folder = run / "models" / topics.stem
        folder.mkdir(parents=True)
        shutil.copy(topics, folder / "topics.txt")
    old = (stored / "table.md").read_text(encoding="utf-8").splitlines()
    new = build_reports(run, plot=False).markdown.splitlines()
    assert len(new) == len(old)
    assert new[0].endswith("| FLOPs/doc | Pareto (F1 vs) |")
    for i, (before, after) in enumerate(zip(old, new, strict=True)):
        if i < 12:  # header, separator and the 10 method rows: the old line plus a last cell
            assert after.rsplit("|", 2)[0] + "|" == before, i
        elif before.startswith("Perplexity: "):  # the topic-table footnote now names the ranking and NPMI
            assert after.startswith("Perplexity: held-out validation documents"), i  # convention (issue 15)
        else:  # notes, NVDM table, topic words: unchanged
            assert after == before, i
    marks = {line.split(" | ")[0][2:]: line.split(" | ")[-1].rstrip(" |") for line in new[2:12]}
    assert marks["topicbert@p4"] == "T, energy, latency, throughput"  # best macro-F1: on every front
    assert marks["bert"] == "–"  # dominated by topicbert@p4 (better and cheaper in each cost)
    assert marks["bert-avg"] == "T, energy"
