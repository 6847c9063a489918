"""TopicBERT's Table 3 (issue 4): F1, retention and measured training cost of every row, in one comparison.

Chaudhary et al. (2020), *TopicBERT for energy efficient document classification*, Table 3, compare on each
dataset CNN, BERT-Avg, BERT-Avg+DTR, DistilBERT, BERT-N, TopicBERT-N and TopicBERT-N/p (p = 2, 4, 8): macro-F1
(mean ± std over 3 seeds), retention against BERT-N, time per epoch T_epoch, total time T and CO2 (their
equation 1). This script

1. runs (or resumes) ``frugaltext compare`` with the shipped ``table3`` preset (rows as method variants;
   three BERT-N baselines: ``bert@fixed`` pads every input to N as the paper, ``bert@random`` pads each
   batch of random documents to its longest, ``bert`` does so with length-grouped batches; ``topicbert`` is
   TopicBERT-N, ``topicbert@p{2,4,8}`` TopicBERT-N/p, ``topicbert@p{4,8}-steps`` the step-matched ablation
   with BERT-N's optimizer steps per epoch), with the subset and seed options given here, into
   ``--run-dir``; every row is trained, evaluated and costed by the same code as any ``compare`` run
   (energy from codecarbon, CO2 by equation 1, FLOPs/document, latency, throughput);
2. summarises the rows into ``benchmarks/results/topicbert_table3_<data>.json``: per row the mean and sample
   std of macro-F1 over seeds, the mean costs and the optimizer steps per epoch, and one **comparison** per
   TopicBERT row against each BERT-N baseline with its measured ``speedup`` (T_epoch of BERT-N / T_epoch of
   the row) and ``retention`` (100 × macro-F1 / macro-F1 of BERT-N), the per-seed paired differences
   (macro-F1 of the row minus BERT-N's for the same seed, T_epoch ratio per seed) with their mean and std,
   checked against the paper's targets (TopicBERT-N/p: speed-up ≥ 1.4 at retention ≥ 99%; TopicBERT-N:
   macro-F1 ≥ BERT-N's); then each target against all three baselines, BERT-N's seed spread (std < 1.5
   points) and each step-matched row against its unmatched twin (the ablation).

``--summarize-only`` skips step 1 (for a run made with ``frugaltext compare --preset table3 ...`` directly, or
one still running elsewhere).

Example (what docs/topicbert.md reports; a subset, one seed, on 2 CPU cores)::

    .venv/bin/python benchmarks/topicbert_table3.py --data r8 --seeds 1 --max-train-docs 1000 \\
        --max-validation-docs 200 --max-test-docs 600
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import command_line, dataset_slug  # noqa: E402  (benchmarks/_common.py, shared by the scripts here)
from _common import machine_info as _common_machine_info  # noqa: E402

logger = logging.getLogger("benchmarks.topicbert_table3")

#: The BERT-N baselines every TopicBERT row is compared with: batching/padding label -> row. ``fixed``: every
#: input padded to N (the paper); ``random``: dynamic padding, random batches; ``grouped``: dynamic padding,
#: length-grouped batches (the strongest honest baseline).
BASELINES = {"fixed": "bert@fixed", "random": "bert@random", "grouped": "bert"}
#: How each baseline batches, for the target plot's panel titles.
BASELINE_TITLES = {"bert@fixed": "random batches padded to N",
                   "bert@random": "random batches, dynamic padding",
                   "bert": "grouped batches, dynamic padding"}
#: Paper targets (Chaudhary et al. 2020, §3 and Table 3; issues 4 and 15).
MIN_SPEEDUP = 1.4
MIN_RETENTION = 99.0
#: Issue 15: BERT-256's macro-F1 std over seeds must stay below 1.5 points (0.015).
MAX_BASELINE_STD = 0.015


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return statistics.fmean(kept) if kept and len(kept) == len(values) else None


def _stats(values: Sequence[float]) -> tuple[float | None, float | None]:
    """(mean, sample std) of ``values``: (None, None) when empty, std None with one value."""
    values = [float(v) for v in values]
    return (statistics.fmean(values) if values else None,
            statistics.stdev(values) if len(values) > 1 else None)


def optimizer_steps(row: Mapping[str, Any]) -> float | None:
    """Optimizer steps per epoch of a results row: ``notes.optimizer_steps_per_epoch`` (written by every
    torch method since issue 15), else ``train_steps / n_epochs`` when the row has both, else None."""
    notes = row.get("notes") or {}
    value = notes.get("optimizer_steps_per_epoch")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    steps, epochs = row.get("train_steps"), row.get("n_epochs")
    if isinstance(steps, int | float) and isinstance(epochs, int | float) and steps and epochs:
        return float(steps) / float(epochs)
    return None


def summarize_rows(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per method (variant): seeds, mean and sample std of macro-F1 and accuracy, mean costs, optimizer steps
    per epoch (:func:`optimizer_steps`), batching, padding and ``step_matched`` (from the first seed's
    settings and notes).

    A cost missing in any seed gives None (no partial means). ``macro_f1_std`` is None with one seed.
    """
    by_method: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_method.setdefault(str(row["method"]), []).append(row)
    out: dict[str, dict[str, Any]] = {}
    for method, runs in by_method.items():
        f1 = [float(r["macro_f1"]) for r in runs]
        notes = runs[0].get("notes") or {}
        by_seed = sorted(runs, key=lambda r: int(r["seed"]))
        out[method] = {
            "seeds": [int(r["seed"]) for r in by_seed],
            "reconstructed_seeds": [int(r["seed"]) for r in by_seed if r.get("reconstructed")],
            "macro_f1_per_seed": {str(r["seed"]): float(r["macro_f1"]) for r in by_seed},
            "epoch_duration_s_per_seed": {str(r["seed"]): r.get("epoch_duration_s") for r in by_seed},
            "macro_f1": statistics.fmean(f1),
            "macro_f1_std": statistics.stdev(f1) if len(f1) > 1 else None,
            "accuracy": _mean([r.get("accuracy") for r in runs]),
            "epoch_duration_s": _mean([r.get("epoch_duration_s") for r in runs]),
            "train_duration_s": _mean([r.get("train_duration_s") for r in runs]),
            "paper_emissions_kg_co2eq": _mean([r.get("paper_emissions_kg_co2eq") for r in runs]),
            "train_energy_kwh": _mean([r.get("train_energy_kwh") for r in runs]),
            "flops_per_doc": _mean([r.get("flops") for r in runs]),
            "flops_train_step_per_doc": _mean([r.get("flops_train_step") for r in runs]),
            "latency_ms": _mean([r.get("latency_ms") for r in runs]),
            "throughput_docs_per_s": _mean([r.get("throughput_docs_per_s") for r in runs]),
            "n_params": runs[0].get("n_params"),
            "optimizer_steps_per_epoch": _mean([optimizer_steps(r) for r in runs]),
            "gradient_accumulation_steps": notes.get("gradient_accumulation_steps"),
            "train_batch_size": notes.get("train_batch_size"),
            "batching": notes.get("batching") or (runs[0].get("settings") or {}).get("batching"),
            "padding": (runs[0].get("settings") or {}).get("padding"),
            "step_matched": bool(notes.get("step_matched")
                                 or (runs[0].get("settings") or {}).get("step_matched")),
            "n_partitions": notes.get("n_partitions"),
            "nvdm": {k: notes[k] for k in ("nvdm_perplexity", "npmi", "nvdm_perplexity_finetuned",
                                           "npmi_finetuned", "bow_vocab_size", "n_topics") if k in notes}
            or None,
        }
    return out


def _paired(row: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    """Per-seed paired values for the seeds both rows have (same seed = same data subset, NVDM/head
    initialisation and sampler seed): ``macro_f1_diff_per_seed`` (row minus base), ``speedup_per_seed``
    (T_epoch of base / T_epoch of row), ``retention_per_seed``, and the mean and sample std of the first two
    over the paired seeds (std None with one seed)."""
    seeds = [s for s in row.get("macro_f1_per_seed", {}) if s in base.get("macro_f1_per_seed", {})]
    retention = {s: 100.0 * row["macro_f1_per_seed"][s] / base["macro_f1_per_seed"][s]
                 for s in seeds if base["macro_f1_per_seed"][s]}
    speedup = {}
    for s in seeds:
        t_row = row.get("epoch_duration_s_per_seed", {}).get(s)
        t_base = base.get("epoch_duration_s_per_seed", {}).get(s)
        if t_row and t_base:
            speedup[s] = t_base / t_row
    f1_diff = {s: row["macro_f1_per_seed"][s] - base["macro_f1_per_seed"][s] for s in seeds}
    diff_mean, diff_std = _stats(list(f1_diff.values()))
    speed_mean, speed_std = _stats(list(speedup.values()))
    return {
        "paired_seeds": seeds,
        "retention_per_seed": retention,
        "speedup_per_seed": speedup,
        "macro_f1_diff_per_seed": f1_diff,
        "macro_f1_diff_mean": diff_mean,
        "macro_f1_diff_std": diff_std,
        "speedup_per_seed_mean": speed_mean,
        "speedup_per_seed_std": speed_std,
    }


def compare_rows(summary: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One comparison per TopicBERT row (and the small-encoder row ``bert@small``) and BERT baseline present:
    ``speedup`` and ``retention``.

    ``speedup`` = baseline T_epoch / row T_epoch (measured, per epoch) and ``retention`` = 100 × row
    macro-F1 / baseline macro-F1, each from means over the seeds both rows have (``seeds_compared``; all
    seeds of each when they share none), so a row run with fewer seeds is not set against a mean that
    includes seeds it lacks. Per-seed ratios (``speedup_per_seed``,
    ``retention_per_seed``) and the mean ± std of the paired macro-F1 difference show how much of a gap is
    seed noise. ``meets_target``: for p > 1, speed-up ≥ 1.4 and retention ≥ 99; for p = 1 (TopicBERT-N,
    complementary mode), macro-F1 ≥ the baseline's (retention ≥ 100); None for ``bert@small`` (no target).
    Baselines in :data:`BASELINES` order (fixed, random, grouped); ``optimizer_steps_ratio`` = the row's
    optimizer steps per epoch / the baseline's.
    """
    out = []
    for method, row in summary.items():
        if not (method.startswith("topicbert") or method == "bert@small"):
            continue
        p = row.get("n_partitions") or 1
        for batching, base_name in BASELINES.items():
            base = summary.get(base_name)
            if base is None:
                continue
            paired = _paired(row, base)
            seeds = paired["paired_seeds"]
            if seeds:
                t_row = _mean([row["epoch_duration_s_per_seed"].get(s) for s in seeds])
                t_base = _mean([base["epoch_duration_s_per_seed"].get(s) for s in seeds])
                f1_row = statistics.fmean(row["macro_f1_per_seed"][s] for s in seeds)
                f1_base = statistics.fmean(base["macro_f1_per_seed"][s] for s in seeds)
            else:
                t_row, t_base = row.get("epoch_duration_s"), base.get("epoch_duration_s")
                f1_row, f1_base = row["macro_f1"], base["macro_f1"]
            speedup = t_base / t_row if t_base and t_row else None
            retention = 100.0 * f1_row / f1_base if f1_base else None
            if method == "bert@small":
                target, meets = None, None
            elif p > 1:
                target = f"speedup >= {MIN_SPEEDUP} and retention >= {MIN_RETENTION}%"
                meets = (speedup is not None and retention is not None
                         and speedup >= MIN_SPEEDUP and retention >= MIN_RETENTION)
            else:
                target = "macro-F1 >= BERT-N (retention >= 100%)"
                meets = retention is not None and retention >= 100.0
            out.append({"method": method, "n_partitions": p, "baseline": base_name,
                        "baseline_batching": batching, "speedup": speedup, "retention": retention,
                        "target": target, "meets_target": meets,
                        "seeds_compared": ([int(s) for s in seeds] if seeds else
                                           sorted(set(row.get("seeds", [])) | set(base.get("seeds", [])))),
                        "flops_ratio": (base["flops_per_doc"] / row["flops_per_doc"]
                                        if base.get("flops_per_doc") and row.get("flops_per_doc") else None),
                        "optimizer_steps_ratio": (
                            row["optimizer_steps_per_epoch"] / base["optimizer_steps_per_epoch"]
                            if row.get("optimizer_steps_per_epoch") and base.get("optimizer_steps_per_epoch")
                            else None),
                        **paired})
    return out


def check_targets(summary: Mapping[str, Mapping[str, Any]],
                  comparisons: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Issue 15's targets, each against all three baselines of :data:`BASELINES`.

    * one entry per TopicBERT row: ``met`` = the row meets its target (see :func:`compare_rows`) against
      every baseline, None when a baseline is missing (``missing_baselines``) or a comparison has no value;
    * one per BERT-N baseline: macro-F1 std over seeds < :data:`MAX_BASELINE_STD` (None with < 2 seeds).
    """
    out: list[dict[str, Any]] = []
    by_row: dict[str, dict[str, Any]] = {}
    for c in comparisons:
        if c.get("target") is not None:
            by_row.setdefault(c["method"], {"target": c["target"], "verdicts": {}})["verdicts"][
                c["baseline"]] = c.get("meets_target")
    for method, entry in by_row.items():
        missing = [b for b in BASELINES.values() if b not in entry["verdicts"]]
        verdicts = list(entry["verdicts"].values())
        if False in verdicts:
            met = False
        elif missing or None in verdicts:
            met = None
        else:
            met = True
        out.append({"row": method, "target": entry["target"] + " against every BERT-N baseline",
                    "per_baseline": entry["verdicts"], "missing_baselines": missing, "met": met})
    for base_name in BASELINES.values():
        base = summary.get(base_name)
        if base is None:
            continue
        std = base.get("macro_f1_std")
        out.append({"row": base_name, "target": f"macro-F1 std over seeds < {MAX_BASELINE_STD}",
                    "value": std, "met": None if std is None else std < MAX_BASELINE_STD})
    return out


def step_ablations(summary: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each step-matched TopicBERT row against its twin with the same p and the authors' step count (the
    TopicBERT row of that p without ``step_matched``): paired per-seed macro-F1 differences (step-matched
    minus twin) with mean and std, T_epoch ratio (twin / step-matched), and both rows' optimizer steps per
    epoch. A gain of the twin over BERT-N that the step-matched row keeps is not due to the extra steps."""
    out = []
    for method, row in summary.items():
        if not (method.startswith("topicbert") and row.get("step_matched")):
            continue
        p = row.get("n_partitions") or 1
        twins = [m for m, r in summary.items() if m.startswith("topicbert") and not r.get("step_matched")
                 and (r.get("n_partitions") or 1) == p]
        if not twins:
            continue
        twin = min(twins, key=len)
        paired = _paired(row, summary[twin])
        out.append({"method": method, "twin": twin, "n_partitions": p,
                    "optimizer_steps_per_epoch": row.get("optimizer_steps_per_epoch"),
                    "twin_optimizer_steps_per_epoch": summary[twin].get("optimizer_steps_per_epoch"),
                    **paired})
    return out


#: Table 3 row order and names (the paper's, with this project's method variants).
ROW_NAMES = {
    "cnn": "CNN", "bert-avg": "BERT-Avg", "bert-avg-dtr": "BERT-Avg+DTR",
    "bert@small": "small encoder (DistilBERT's role)", "bert@fixed": "BERT-N (fixed padding, as the paper)",
    "bert@random": "BERT-N (dynamic padding, random batches)",
    "bert": "BERT-N (dynamic padding, length-grouped batches)", "topicbert": "TopicBERT-N",
    "topicbert@p2": "TopicBERT-N/2", "topicbert@p4": "TopicBERT-N/4", "topicbert@p8": "TopicBERT-N/8",
    "topicbert@p4-steps": "TopicBERT-N/4, BERT-N's steps",
    "topicbert@p8-steps": "TopicBERT-N/8, BERT-N's steps",
}


def _fmt(value: float | None, spec: str = ".3g", scale: float = 1.0) -> str:
    return "–" if value is None else format(value * scale, spec)


def _si(value: float | None) -> str:
    if value is None:
        return "–"
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"


def _pm(mean: float | None, std: float | None, spec: str, signed: bool = False) -> str:
    if mean is None:
        return "–"
    text = format(mean, ("+" if signed else "") + spec)
    return text + (f" ± {format(std, spec)}" if std is not None else "")


def _reconstructed_note(rows: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """A paragraph naming the (method, seed) rows rebuilt from an earlier summary (a results row with a
    ``reconstructed`` field, e.g. ``docs/runs/table3-imdb-5k-bf16-s1/reconstruct.py``), or nothing."""
    rebuilt = [f"`{m}` seed {s}" for m, r in rows.items() for s in r.get("reconstructed_seeds") or []]
    if not rebuilt:
        return []
    return [f"Rebuilt rows (run folder lost; macro-F1 and T_epoch exact, other costs from the means of the "
            f"summary that survived; per-class scores and NVDM NPMI not recovered): {', '.join(rebuilt)}.",
            ""]


def render_markdown(result: Mapping[str, Any]) -> str:
    """Table 3 (one line per row: batching, macro-F1 ± std, Rtn vs BERT-N with length-grouped batches,
    optimizer steps per epoch, T_epoch, T, CO2 by equation 1, codecarbon energy, FLOPs/document, latency,
    parameters), the comparisons against the paper's targets with their per-seed paired values, the targets
    against all three baselines and the step-matched ablation, as Markdown (written beside the JSON)."""
    rows, comps = result["rows"], result["comparisons"]
    data = result.get("data") or {}
    machine = result.get("machine") or {}
    split = data.get("eval_split", "test")
    bert = rows.get("bert") or {}
    lines = [
        f"# TopicBERT Table 3: {data.get('dataset')}",
        "",
        f"Command: `{result.get('command')}`  ",
        f"Run folder: `{result.get('run_dir')}`; machine: {machine.get('cpu_model', '?')}, "
        f"{machine.get('cpu_count', '?')} cores, torch threads {machine.get('torch_num_threads', '?')}.  ",
        f"Documents: {data.get('n_train')} train / {data.get('n_validation')} validation / "
        f"{data.get('n_test')} {split} ({data.get('task')}). macro-F1 on the {split} split, mean ± sample "
        "std over the seeds listed; Rtn = 100 × macro-F1 / macro-F1 of BERT-N with dynamic padding and "
        "length-grouped batches (`bert`); batching = training batch order (random or length-grouped) and "
        "padding (fixed to N or dynamic); steps = optimizer steps per epoch (a step-matched row accumulates "
        "micro-batches: steps × micro-batch × accumulation); T_epoch and T measured (training only); CO2 by "
        "equation 1 of the paper (0.07 kW × T × 0.61 kg CO2eq/kWh); energy by codecarbon (an estimate "
        "without RAPL); FLOPs per document and latency (batch 1) at inference.",
        "",
        *_reconstructed_note(rows),
        "| row | method | batching | seeds | macro-F1 | Rtn % | steps/epoch | T_epoch (s) | T (s) "
        "| CO2 eq. 1 (g) | energy (Wh) | FLOPs/doc | latency (ms) | params |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    order = [m for m in ROW_NAMES if m in rows] + sorted(m for m in rows if m not in ROW_NAMES)
    for method in order:
        row = rows[method]
        std = row.get("macro_f1_std")
        f1 = f"{row['macro_f1']:.3f}" + (f" ± {std:.3f}" if std is not None else "")
        rtn = (100.0 * row["macro_f1"] / bert["macro_f1"]) if bert.get("macro_f1") else None
        seeds = ",".join(map(str, row.get("seeds", [])))
        padding = {"max_length": "fixed", "dynamic": "dynamic"}.get(row.get("padding") or "")
        batching = ", ".join(v for v in (row.get("batching"), padding) if v) or "–"
        steps = _fmt(row.get("optimizer_steps_per_epoch"), ".0f")
        if row.get("gradient_accumulation_steps") and row["gradient_accumulation_steps"] > 1:
            steps += f" ({row.get('train_batch_size')} × {row['gradient_accumulation_steps']})"
        name = ROW_NAMES.get(method, method)
        if method == "bert" and row.get("batching") != "grouped":  # rows from before the grouped default
            name = "BERT-N (dynamic padding)"
        lines.append(
            f"| {name} | `{method}` | {batching} | {seeds} | {f1} "
            f"| {_fmt(rtn, '.1f')} | {steps} | {_fmt(row.get('epoch_duration_s'), '.0f')} "
            f"| {_fmt(row.get('train_duration_s'), '.0f')} "
            f"| {_fmt(row.get('paper_emissions_kg_co2eq'), '.3g', 1e3)} "
            f"| {_fmt(row.get('train_energy_kwh'), '.3g', 1e3)} | {_si(row.get('flops_per_doc'))} "
            f"| {_fmt(row.get('latency_ms'), '.3g')} | {_si(row.get('n_params'))} |"
        )
    lines += [
        "",
        "Against the paper's targets (speed-up = T_epoch of the baseline / T_epoch of the row, over the "
        "paired seeds' means; retention = 100 × macro-F1 / the baseline's; per seed: the same seed of both "
        "rows; Δ macro-F1 = row minus baseline per seed, then mean ± sample std over the paired seeds; steps "
        "ratio = the row's optimizer steps per epoch / the baseline's):",
        "",
        "| row | baseline | speed-up | speed-up per seed (mean ± std) | retention % | retention % per seed "
        "| Δ macro-F1 per seed | Δ macro-F1 | steps ratio | inference FLOPs ratio | target | met |",
        "|---|---|---:|---|---:|---|---|---|---:|---:|---|---|",
    ]
    for c in comps:
        per_speed = ", ".join(f"{v:.2f}" for v in c.get("speedup_per_seed", {}).values()) or "–"
        if c.get("speedup_per_seed_mean") is not None:
            per_speed += f" ({_pm(c['speedup_per_seed_mean'], c.get('speedup_per_seed_std'), '.2f')})"
        per_rtn = ", ".join(f"{v:.1f}" for v in c.get("retention_per_seed", {}).values()) or "–"
        per_diff = ", ".join(f"{v:+.3f}" for v in c.get("macro_f1_diff_per_seed", {}).values()) or "–"
        delta = _pm(c.get("macro_f1_diff_mean"), c.get("macro_f1_diff_std"), ".3f", signed=True)
        met = {True: "yes", False: "**no**", None: "–"}[c.get("meets_target")]
        lines.append(
            f"| `{c['method']}` | `{c['baseline']}` ({c['baseline_batching']}) "
            f"| {_fmt(c.get('speedup'), '.2f')}× | {per_speed} | {_fmt(c.get('retention'), '.1f')} "
            f"| {per_rtn} | {per_diff} | {delta} | {_fmt(c.get('optimizer_steps_ratio'), '.2f')} "
            f"| {_fmt(c.get('flops_ratio'), '.2f')} | {c.get('target') or '–'} | {met} |"
        )
    verdict = {True: "yes", False: "**no**", None: "not shown"}
    targets = result.get("targets") or []
    if targets:
        lines += ["", "Issue 15's targets against all three BERT-N baselines "
                  f"({', '.join(f'`{b}`' for b in BASELINES.values())}):", "",
                  "| row | target | per baseline | met |", "|---|---|---|---|"]
        for t in targets:
            if "per_baseline" in t:
                detail = ", ".join(f"`{b}`: {verdict[v]}" for b, v in t["per_baseline"].items())
                if t.get("missing_baselines"):
                    detail += "; missing: " + ", ".join(f"`{b}`" for b in t["missing_baselines"])
            else:
                detail = f"std {_fmt(t.get('value'), '.4f')}"
            lines.append(f"| `{t['row']}` | {t['target']} | {detail} | {verdict[t.get('met')]} |")
    ablations = result.get("ablations") or []
    if ablations:
        lines += ["", "Step-matched ablation (each step-matched row against the row with the same p and the "
                  "authors' step count; Δ macro-F1 = step-matched minus twin per seed; T_epoch ratio = "
                  "twin / step-matched per seed):", "",
                  "| row | twin | steps/epoch (row, twin) | Δ macro-F1 per seed | Δ macro-F1 "
                  "| T_epoch ratio per seed |", "|---|---|---|---|---|---|"]
        for a in ablations:
            per_diff = ", ".join(f"{v:+.3f}" for v in a.get("macro_f1_diff_per_seed", {}).values()) or "–"
            per_speed = ", ".join(f"{v:.2f}" for v in a.get("speedup_per_seed", {}).values()) or "–"
            lines.append(
                f"| `{a['method']}` | `{a['twin']}` | {_fmt(a.get('optimizer_steps_per_epoch'), '.0f')}, "
                f"{_fmt(a.get('twin_optimizer_steps_per_epoch'), '.0f')} | {per_diff} "
                f"| {_pm(a.get('macro_f1_diff_mean'), a.get('macro_f1_diff_std'), '.3f', signed=True)} "
                f"| {per_speed} |")
    if result.get("target_plot"):
        lines += ["", f"![speed-up and retention of each TopicBERT-N/p row against each BERT-N baseline]"
                      f"({result['target_plot']})"]
    return "\n".join(lines) + "\n"


def render_target_plot(result: Mapping[str, Any], png_path: str | Path) -> Path | None:
    """The paper's target as a picture: one panel per BERT-N baseline present (fixed, random, grouped), each
    TopicBERT-N/p row at (speed-up per epoch, macro-F1 retention %) against it, the mean over the paired
    seeds as a large marker and each seed as a small one, the target region (speed-up ≥ 1.4, retention ≥ 99 %)
    shaded. TopicBERT-N (p = 1) and ``bert@small`` are left out (their targets are not this region). Written
    atomically as PNG and, beside it, SVG; returns the PNG path, or None (nothing written) when there is no
    TopicBERT-N/p comparison."""
    import io

    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from frugaltext.fileio import atomic_write_bytes

    comparisons = [c for c in result.get("comparisons", [])
                   if (c.get("n_partitions") or 1) > 1 and c.get("speedup") and c.get("retention")]
    baselines = [b for b in BASELINES.values() if any(c["baseline"] == b for c in comparisons)]
    if not baselines:
        return None
    methods = sorted({c["method"] for c in comparisons})
    colors = {m: f"C{i % 10}" for i, m in enumerate(methods)}
    # at least 6.4 inches wide, so that one panel (a run with one baseline) still shows its title and labels
    fig, axes = plt.subplots(1, len(baselines), figsize=(max(6.4, 4.2 * len(baselines)), 4.6), sharey=True,
                             constrained_layout=True, squeeze=False)
    speeds = [c["speedup"] for c in comparisons] + [v for c in comparisons
                                                     for v in c.get("speedup_per_seed", {}).values()]
    rets = [c["retention"] for c in comparisons] + [v for c in comparisons
                                                    for v in c.get("retention_per_seed", {}).values()]
    x_lo, x_hi = min(0.9, min(speeds) * 0.9), max(MIN_SPEEDUP * 1.3, max(speeds) * 1.1)
    y_lo, y_hi = min(MIN_RETENTION - 1.0, min(rets) - 0.5), max(101.0, max(rets) + 0.5)
    for ax, base in zip(axes[0], baselines, strict=True):
        ax.axvspan(MIN_SPEEDUP, x_hi, ymin=(MIN_RETENTION - y_lo) / (y_hi - y_lo), ymax=1.0,
                   color="tab:green", alpha=0.12)
        ax.axvline(1.0, color="grey", lw=0.8, ls=":")
        ax.axhline(100.0, color="grey", lw=0.8, ls=":")
        for c in (c for c in comparisons if c["baseline"] == base):
            color = colors[c["method"]]
            seeds = [s for s in c.get("speedup_per_seed", {}) if s in c.get("retention_per_seed", {})]
            ax.scatter([c["speedup_per_seed"][s] for s in seeds], [c["retention_per_seed"][s] for s in seeds],
                       s=14, color=color, alpha=0.5)
            ax.scatter([c["speedup"]], [c["retention"]], s=70, color=color, edgecolor="black")
        ax.set_title(f"against {base}\n({BASELINE_TITLES[base]})", fontsize=10)
        ax.set_xlim(x_lo, x_hi)
        ax.set_ylim(y_lo, y_hi)
        ax.set_xlabel("speed-up per epoch (T_epoch of BERT-N / the row's)")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("macro-F1 retention (%)")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    rows = result.get("rows") or {}
    handles = [Patch(color="tab:green", alpha=0.12, label=f"target: ≥ {MIN_SPEEDUP}×, ≥ {MIN_RETENTION:g} %")]
    for m in methods:
        n = len((rows.get(m) or {}).get("seeds") or [])
        handles.append(Line2D([], [], ls="", marker="o", markersize=8, color=colors[m],
                              markeredgecolor="black", label=f"{m} ({n} seed{'s' if n != 1 else ''})"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(4, len(handles)), fontsize=8)
    data = result.get("data") or {}
    fig.suptitle(f"TopicBERT-N/p against BERT-N: {data.get('dataset', '?')}, {data.get('n_train', '?')} "
                 "training documents\n(large: mean over paired seeds, small: one seed)", fontsize=10)
    png_path = Path(png_path)
    try:
        for path in (png_path, png_path.with_suffix(".svg")):
            buffer = io.BytesIO()
            fig.savefig(buffer, dpi=150, format=path.suffix.lstrip("."))
            atomic_write_bytes(path, buffer.getvalue())
    finally:
        plt.close(fig)
    return png_path


def machine_info(rows: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """:func:`_common.machine_info` (load average now), with ``torch_num_threads`` the torch threads the rows
    were trained with when they all agree, else this process's (the rows may come from other processes)."""
    threads = {r.get("torch_threads") for r in rows if r.get("torch_threads") is not None}
    return _common_machine_info(**({"torch_num_threads": threads.pop()} if len(threads) == 1 else {}))


def default_output(rows: Sequence[Mapping[str, Any]], data: str) -> str:
    """``benchmarks/results/topicbert_table3_<dataset>.json``, the dataset taken from the rows (``data`` when
    they do not name one)."""
    names = {str(r["dataset"]) for r in rows if r.get("dataset")}
    slug = dataset_slug(names.pop()) if len(names) == 1 else dataset_slug(data)
    return f"benchmarks/results/topicbert_table3_{slug}.json"


def merge_rows(rows: Sequence[Mapping[str, Any]], extra: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]
               ) -> list[dict[str, Any]]:
    """The run folder's ``rows`` plus the rows of earlier result files (``extra``: (file name, rows) pairs),
    e.g. a committed ``docs/runs/<run>/results.json`` of a session whose run folder is gone.

    A (method, seed) already present (in ``rows`` or an earlier file) keeps that first row. Rows of one
    method must share their ``config_hash`` (the same settings and data): seeds trained with other settings
    would be averaged as if they were one row.

    Raises
    ------
    ValueError
        Naming the file, the method and seed and both hashes, when a method's rows carry different config
        hashes (:func:`frugaltext.experiment.results.config_hash_conflicts`, also within the run folder).
    """
    from frugaltext.experiment.results import config_hash_conflicts

    sources = [("the run folder", rows), *extra]
    conflicts = config_hash_conflicts(sources)
    if conflicts:
        raise ValueError(f"{conflicts[0].message()}: do not merge these rows (run the missing seeds with the "
                         "same settings, or summarise the files separately)")
    merged: list[dict[str, Any]] = []
    seen: set[tuple[Any, Any]] = set()
    for _, source_rows in sources:
        for row in source_rows:
            key = (row.get("method"), row.get("seed"))
            if key not in seen:
                seen.add(key)
                merged.append(dict(row))
    return merged


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default="r8", help="embedded dataset name or dataset directory")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--max-train-docs", type=int, default=None)
    p.add_argument("--max-validation-docs", type=int, default=None)
    p.add_argument("--max-test-docs", type=int, default=None)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="further compare overrides, e.g. topicbert.epochs=2 (repeatable)")
    p.add_argument("--run-dir", default=None, help="compare output (default runs/table3-<data>)")
    p.add_argument("--output", default=None,
                   help="default benchmarks/results/topicbert_table3_<dataset of the rows>.json")
    p.add_argument("--summarize-only", action="store_true", help="do not train; summarise --run-dir")
    p.add_argument("--add-results", action="append", default=[], metavar="RESULTS_JSON",
                   help="also summarise the rows of this results.json (repeatable), e.g. an earlier "
                        "session's committed docs/runs/<run>/results.json; the run folder's row wins for a "
                        "(method, seed) present in both; rows of one method must share their config hash")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run (or resume) the comparison, then write the summary JSON; returns it."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from frugaltext.experiment.config import resolve_config
    from frugaltext.experiment.results import read_results
    from frugaltext.experiment.runner import run_compare
    from frugaltext.fileio import atomic_write_text

    slug = dataset_slug(args.data)
    run_dir = Path(args.run_dir or f"runs/table3-{slug}")
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    if not args.summarize_only:
        overrides: dict[str, Any] = {"data": args.data, "output": str(run_dir), "seeds": str(args.seeds)}
        for name in ("max_train_docs", "max_validation_docs", "max_test_docs"):
            if getattr(args, name) is not None:
                overrides[name] = str(getattr(args, name))
        for pair in args.set:
            key, sep, value = pair.partition("=")
            if not sep:
                raise SystemExit(f"--set {pair!r}: expected KEY=VALUE, e.g. topicbert.epochs=2")
            overrides[key] = value
        run_compare(resolve_config(preset="table3", overrides=overrides))
    rows = read_results(run_dir / "results.json")
    missing = [name for name in args.add_results if not Path(name).is_file()]
    if missing:
        raise SystemExit(f"--add-results: no such file: {', '.join(missing)}")
    try:
        rows = merge_rows(rows, [(name, read_results(Path(name))) for name in args.add_results])
    except ValueError as err:
        raise SystemExit(str(err)) from None
    if not rows:
        raise SystemExit(f"{run_dir / 'results.json'} has no rows; run without --summarize-only first")
    # named after the rows' dataset, so that --summarize-only --run-dir runs/table3-imdb never overwrites r8's
    output = Path(args.output or default_output(rows, args.data))
    summary = summarize_rows(rows)
    comparisons = compare_rows(summary)
    targets = check_targets(summary, comparisons)
    ablations = step_ablations(summary)
    config_path = run_dir / "config.yaml"
    result = {
        "benchmark": "TopicBERT Table 3 (issue 4)",
        "started": started,
        "command": command_line(),
        "run_dir": str(run_dir),
        "added_results": list(args.add_results),
        "config": config_path.read_text(encoding="utf-8") if config_path.is_file() else None,
        "machine": machine_info(rows),
        "data": {k: rows[0].get(k) for k in ("dataset", "task", "n_train", "n_validation", "n_test",
                                              "eval_split")},
        "rows": summary,
        "comparisons": comparisons,
        "targets": targets,
        "ablations": ablations,
        "speedup_definition": "T_epoch of BERT-N / T_epoch of the row (training time per epoch, measured)",
        "retention_definition": "100 x macro-F1 of the row / macro-F1 of BERT-N (test split)",
        "complete": all(m in summary for m in (*BASELINES.values(), "topicbert", "topicbert@p2",
                                               "topicbert@p4", "topicbert@p8", "topicbert@p4-steps",
                                               "topicbert@p8-steps")),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    plot = render_target_plot(result, output.with_name(output.stem + "_targets.png"))
    result["target_plot"] = plot.name if plot else None
    atomic_write_text(output, json.dumps(result, indent=2, default=str))
    atomic_write_text(output.with_suffix(".md"), render_markdown(result))
    for c in comparisons:
        logger.info("%-18s vs %-11s speedup %s retention %s -> %s", c["method"], c["baseline"],
                    f"{c['speedup']:.2f}x" if c["speedup"] else "n/a",
                    f"{c['retention']:.2f}%" if c["retention"] else "n/a",
                    {True: "meets target", False: "below target", None: "no target"}[c["meets_target"]])
    logger.info("wrote %s", output)
    return result


if __name__ == "__main__":
    main()
