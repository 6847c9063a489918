"""Markdown rows of the Table 3 tables in docs/topicbert.md, from a benchmarks/topicbert_table3.py summary.

Per row: seeds, macro-F1 mean ± std with the per-seed values, optimizer steps per epoch (a step-matched row
adds ``(micro-batch × accumulation)``), T_epoch, and against each BERT-N baseline the speed-up (mean T_epoch
of the baseline / the row's) and retention (100 × mean macro-F1 / the baseline's), both over the seeds the
two rows share; bold where a TopicBERT-N/p row reaches the paper's target (≥ 1.4× at ≥ 99 %).

With ``--against OTHER.json`` (e.g. the N = 256 summary beside the N = 512 one) the rows are compared with
this summary's grouped ``bert`` and with OTHER's grouped ``bert`` instead (the "vs BERT-256" column)::

    python benchmarks/table3_doc_rows.py benchmarks/results/topicbert_table3_imdb_5k_bf16.json
    python benchmarks/table3_doc_rows.py benchmarks/results/topicbert_table3_imdb_5k_bf16_512.json --n 512 \\
        --against benchmarks/results/topicbert_table3_imdb_5k_bf16.json

Arithmetic on the committed summary only: nothing is trained or timed.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

BASELINES = ("bert@fixed", "bert@random", "bert")
MIN_SPEEDUP, MIN_RETENTION = 1.4, 99.0


def names(n: int) -> dict[str, str]:
    """Row method -> the paper's name at sequence length ``n`` (the order of the docs tables)."""
    return {"bert@fixed": f"BERT-{n}, the paper's", "bert@random": f"BERT-{n}", "bert": f"BERT-{n}",
            "topicbert": f"TopicBERT-{n}", "topicbert@p2": f"TopicBERT-{n}/2",
            "topicbert@p4": f"TopicBERT-{n}/4",
            "topicbert@p4-steps": "/4, BERT-N's steps", "topicbert@p8": f"TopicBERT-{n}/8",
            "topicbert@p8-steps": "/8, BERT-N's steps", "cnn": "CNN", "bert-avg": "BERT-Avg",
            "bert-avg-dtr": "BERT-Avg+DTR"}


def versus(row: Mapping[str, Any], base: Mapping[str, Any]) -> tuple[float, float, list[int]] | None:
    """(speed-up, retention %, shared seeds) of ``row`` against ``base`` over their shared seeds, or None when
    they share none or the row has no T_epoch."""
    shared = [s for s in row["seeds"] if s in base["seeds"]]
    if not shared or row.get("epoch_duration_s") is None:
        return None

    def mean(r: Mapping[str, Any], key: str) -> float:
        return statistics.fmean(r[key][str(s)] for s in shared)
    return (mean(base, "epoch_duration_s_per_seed") / mean(row, "epoch_duration_s_per_seed"),
            100 * mean(row, "macro_f1_per_seed") / mean(base, "macro_f1_per_seed"), shared)


def _cell(method: str, vs: tuple[float, float, list[int]] | None, seeds_note: bool = False) -> str:
    if vs is None:
        return "–"
    speedup, retention, shared = vs
    cell = f"{speedup:.2f}×, {retention:.1f} %"
    if seeds_note:
        cell += f" (seeds {','.join(map(str, shared))})"
    met = method.startswith("topicbert@p") and speedup >= MIN_SPEEDUP and retention >= MIN_RETENTION
    return f"**{cell}**" if met else cell


def doc_rows(result: Mapping[str, Any], n: int = 256, against: Mapping[str, Any] | None = None) -> list[str]:
    """The Markdown table rows (no header) of ``result`` (a summary JSON); see the module docstring.

    Raises
    ------
    KeyError
        ``against`` is given but has no ``bert`` row.
    """
    rows = result["rows"]
    labels = names(n)
    out = []
    for method in [m for m in labels if m in rows] + [m for m in rows if m not in labels]:
        r = rows[method]
        seeds = r["seeds"]
        f1s = ", ".join(f"{r['macro_f1_per_seed'][str(s)]:.3f}" for s in seeds)
        f1 = f"{r['macro_f1']:.3f}"
        if len(seeds) > 1:
            f1 += f" ± {r['macro_f1_std']:.3f} ({f1s})"
        steps = r.get("optimizer_steps_per_epoch")
        st = "–" if steps is None else f"{steps:.0f}"
        if r.get("step_matched"):
            st += f" ({r['train_batch_size']} × {r['gradient_accumulation_steps']})"
        batching = "random, fixed" if method == "bert@fixed" else r.get("batching") or "–"
        te = r.get("epoch_duration_s")
        te_cell = "–" if te is None else f"{te:.0f}"
        if against is None:
            cells = ["–" if b not in rows else "1.00×, 100 %" if b == method
                     else _cell(method, versus(r, rows[b])) for b in BASELINES]
        else:
            te_cell += " (" + ", ".join(f"{r['epoch_duration_s_per_seed'][str(s)]:.0f}" for s in seeds) + ")"
            own = "1.00×, 100 %" if method == "bert" else (
                _cell(method, versus(r, rows["bert"]), True) if "bert" in rows else "–")
            cells = [own, _cell(method, versus(r, against["rows"]["bert"]), True)]
        out.append(f"| `{method}` ({labels.get(method, method)}) | {batching} | "
                   f"{','.join(map(str, seeds))} | {f1} | {st} | {te_cell} | " + " | ".join(cells) + " |")
    return out


def main(argv: Sequence[str] | None = None) -> list[str]:
    """Print the rows of the summary given on the command line; returns them."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("summary", type=Path, help="a benchmarks/topicbert_table3.py summary JSON")
    p.add_argument("--n", type=int, default=256, help="the sequence length N, for the row names")
    p.add_argument("--against", type=Path, default=None,
                   help="another summary whose grouped bert is the last column (e.g. N = 256 beside N = 512)")
    args = p.parse_args(argv)
    result = json.loads(args.summary.read_text(encoding="utf-8"))
    against = None if args.against is None else json.loads(args.against.read_text(encoding="utf-8"))
    lines = doc_rows(result, args.n, against)
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
