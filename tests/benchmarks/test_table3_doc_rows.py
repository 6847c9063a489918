"""benchmarks/table3_doc_rows.py: the docs table rows from a Table 3 summary (arithmetic only)."""

from __future__ import annotations

from tests.benchmarks import load_benchmark

bench = load_benchmark("topicbert_table3")
rows_script = load_benchmark("table3_doc_rows")


def _row(method, seed, f1, epoch_s, p=None, **notes):
    notes = {**({"n_partitions": p} if p else {}), **notes}
    return {"method": method, "seed": seed, "macro_f1": f1, "accuracy": f1, "epoch_duration_s": epoch_s,
            "train_duration_s": 3 * epoch_s, "flops": 1.0, "notes": notes}


def _summary(rows):
    return {"rows": bench.summarize_rows(rows)}


def test_rows_give_speedup_and_retention_over_shared_seeds_and_bold_the_target():
    result = _summary([_row("bert", 0, 0.90, 300.0, batching="grouped"),
                       _row("bert", 1, 0.90, 300.0, batching="grouped"),
                       _row("topicbert@p4", 0, 0.90, 200.0, p=4),
                       _row("topicbert@p2", 0, 0.80, 100.0, p=2)])
    lines = {ln.split(" | ")[0]: ln for ln in rows_script.doc_rows(result)}
    bert, p4, p2 = lines["| `bert` (BERT-256)"], lines["| `topicbert@p4` (TopicBERT-256/4)"], \
        lines["| `topicbert@p2` (TopicBERT-256/2)"]
    assert "| 0,1 | 0.900 ± 0.000 (0.900, 0.900) |" in bert and bert.endswith("| – | – | 1.00×, 100 % |")
    assert p4.endswith("| – | – | **1.50×, 100.0 %** |")  # 300 / 200 on seed 0 only, target met
    assert p2.endswith("| – | – | 3.00×, 88.9 % |")  # fast but below 99 %: not bold


def test_against_another_summary_compares_with_its_grouped_bert_and_lists_seeds():
    n512 = _summary([_row("bert", 0, 0.90, 900.0, batching="grouped"),
                     _row("topicbert@p4", 0, 0.91, 600.0, p=4)])
    n256 = _summary([_row("bert", 0, 0.88, 500.0, batching="grouped")])
    lines = rows_script.doc_rows(n512, n=512, against=n256)
    p4 = next(ln for ln in lines if ln.startswith("| `topicbert@p4` (TopicBERT-512/4)"))
    assert "| 600 (600) |" in p4
    assert p4.endswith("| **1.50×, 101.1 % (seeds 0)** | 0.83×, 103.4 % (seeds 0) |")
