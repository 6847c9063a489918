"""Benchmark of knowledge distillation (issue 6): students with and without a teacher, against the teacher.

For a dataset and a fine-tuned ``bert`` teacher (reused with ``--teacher-dir``, or trained here and saved
under ``--work-dir``), and for each student architecture (``bilstm``, ``bilstm-attn``, ``cnn``, ``lstm-reg``,
``static``: the model2vec student of :mod:`frugaltext.methods.static`) and seed, this script trains

* the distilled student ``distill-<arch>`` (teacher logits over the transfer set computed once and cached on
  disk by :mod:`frugaltext.training.teacher_cache`, so every later seed / student that uses the same texts
  reads them back instead of running the teacher), and
* its no-teacher control ``scratch-<arch>`` (the same student, hard labels only),

evaluates each on the test split (macro-F1, accuracy), and reports mean +- sample std over seeds,
``retention`` = student macro-F1 / teacher macro-F1 (in %), the parameter ratio (teacher / student), and the
inference throughput of the teacher and of every seed-0 student **measured side by side in one process**:
the same test documents (text in, logits out, tokenisation included), at batch 32 and at batch 1 (one call
per document), repeated ``--repeats`` times in rotating (interleaved) order, the median kept, so that load
from other processes on a shared machine falls on all models alike. ``speedup`` = student throughput /
teacher throughput at batch 32 (and ``speedup_b1`` at batch 1).

Seeds are the outer loop: every architecture gets seed 0 (then the throughput measurement runs) before any
gets seed 1, so an interrupted run still covers all students. Results are written after every student run
(JSON through a temporary file and ``os.replace``, and a markdown table next to it); a rerun with the same
``--output`` skips the runs already there (resume) and refuses to mix runs made with other settings.

Augmented transfer sets (``distill-lstm-reg``, ``distill-static``) are drawn with the run's seed (the
method's rule), so their teacher logits are computed once per seed; the plain transfer sets (the training
split) are computed once for all seeds and students.

Example::

    .venv/bin/python benchmarks/distillation.py --data r8 --teacher-dir runs/quick-r8/models/bert-seed0 \\
        --seeds 3 --epochs 5 --n-copies 1 --max-train-docs 2000
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
import numpy as np
from _common import (  # noqa: E402  (benchmarks/_common.py, shared by the scripts here)
    command_line,
    dataset_slug,
    load_average,
    machine_info,
    run_interleaved,
)

logger = logging.getLogger("benchmarks.distillation")


#: Student architectures, as in the method names ``distill-<arch>`` / ``scratch-<arch>``.
ARCHITECTURES = ("bilstm", "bilstm-attn", "cnn", "lstm-reg", "static")
TEACHER = "teacher"
#: Settings that must agree between a run and the JSON it resumes.
RESUME_KEYS = ("data", "max_train_docs", "max_test_docs", "epochs", "n_copies", "student_max_length",
               "teacher", "student_settings")


# ==================================================================================================
# Pure helpers (unit-tested in tests/benchmarks/test_distillation_benchmark.py)
# ==================================================================================================
def method_names(architecture: str) -> tuple[str, str]:
    """``(distilled, control)`` method names of a student architecture.

    Raises
    ------
    ValueError
        For an unknown architecture.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown student {architecture!r}; choose from {list(ARCHITECTURES)}")
    return f"distill-{architecture}", f"scratch-{architecture}"


def run_key(method: str, seed: int) -> str:
    """Key of one student run in the results JSON: ``"<method>/seed<seed>"``."""
    return f"{method}/seed{int(seed)}"


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (ddof=1; 0.0 for one value: report the run count beside it).

    Raises
    ------
    ValueError
        If ``values`` is empty.
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_std: no values")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarize(runs: Mapping[str, Mapping[str, Any]], teacher: Mapping[str, Any],
              throughput: Mapping[str, Mapping[str, float]] | None,
              architectures: Sequence[str]) -> list[dict[str, Any]]:
    """One row per student method (distilled and control) that has at least one finished run.

    Parameters
    ----------
    runs : mapping run_key -> run record (``method``, ``seed``, ``macro_f1``, ``accuracy``, ``n_params``)
    teacher : mapping with ``macro_f1``, ``accuracy``, ``n_params``
    throughput : mapping model name -> ``{"b32": docs/s, "b1": docs/s}`` (the teacher under ``"teacher"``),
        or None when not measured yet.
    architectures : sequence of str

    Returns
    -------
    list of dict
        ``method``, ``architecture``, ``distilled``, ``n_seeds``, ``seeds``, ``macro_f1_mean`` / ``_std``,
        ``accuracy_mean`` / ``_std``, ``retention_mean`` / ``_std`` (in %), ``n_params``,
        ``n_params_ratio`` (teacher / student), ``throughput_b32_docs_per_s``,
        ``throughput_b1_docs_per_s``, ``speedup`` (b32 ratio to the teacher), ``speedup_b1``, and for a
        distilled row ``delta_macro_f1_vs_control``: the mean over the seeds both have (``delta_seeds``) of
        distilled minus control macro-F1, in points (x100).
    """
    rows: list[dict[str, Any]] = []
    by_method: dict[str, list[Mapping[str, Any]]] = {}
    for record in runs.values():
        by_method.setdefault(record["method"], []).append(record)
    t_f1 = float(teacher["macro_f1"])
    for arch in architectures:
        for method in method_names(arch):
            records = sorted(by_method.get(method, []), key=lambda r: r["seed"])
            if not records:
                continue
            f1 = [r["macro_f1"] for r in records]
            acc = [r["accuracy"] for r in records]
            ret = [100.0 * v / t_f1 for v in f1]
            row: dict[str, Any] = {
                "method": method, "architecture": arch, "distilled": method.startswith("distill-"),
                "n_seeds": len(records), "seeds": [r["seed"] for r in records],
            }
            for name, values in (("macro_f1", f1), ("accuracy", acc), ("retention", ret)):
                row[f"{name}_mean"], row[f"{name}_std"] = mean_std(values)
            row["n_params"] = int(records[0]["n_params"])
            row["n_params_ratio"] = float(teacher["n_params"]) / row["n_params"]
            tp = (throughput or {}).get(method)
            tt = (throughput or {}).get(TEACHER)
            row["throughput_b32_docs_per_s"] = tp["b32"] if tp else None
            row["throughput_b1_docs_per_s"] = tp["b1"] if tp else None
            row["speedup"] = tp["b32"] / tt["b32"] if tp and tt else None
            row["speedup_b1"] = tp["b1"] / tt["b1"] if tp and tt else None
            rows.append(row)
    for row in rows:
        if row["distilled"]:
            control_method = method_names(row["architecture"])[1]
            control = {r["seed"]: r["macro_f1"] for r in by_method.get(control_method, [])}
            own = {r["seed"]: r["macro_f1"] for r in by_method[row["method"]]}
            paired = sorted(set(own) & set(control))
            if paired:
                row["delta_macro_f1_vs_control"] = 100.0 * statistics.fmean(
                    own[s] - control[s] for s in paired)
                row["delta_seeds"] = paired
    return rows


def check_targets(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The issue-6 targets, checked against the summary rows (nothing is tuned to pass them).

    Returns
    -------
    dict
        ``distilled_ge_control``: per architecture, the distilled and control mean macro-F1 and whether the
        distilled one is >= (None when one side is missing); ``best_distilled_retention``: the best distilled
        student, its retention (%) and whether it is >= 95; ``speedup_b32_ge_20``: per student method, its
        speedup and whether it is >= 20.
    """
    means = {r["method"]: r for r in rows}
    ge_control: dict[str, Any] = {}
    for arch in dict.fromkeys(r["architecture"] for r in rows):
        distilled, control = method_names(arch)
        d, c = means.get(distilled), means.get(control)
        ge_control[arch] = {
            "distilled_macro_f1": d["macro_f1_mean"] if d else None,
            "control_macro_f1": c["macro_f1_mean"] if c else None,
            "met": (d["macro_f1_mean"] >= c["macro_f1_mean"]) if d and c else None,
        }
    distilled_rows = [r for r in rows if r["distilled"]]
    best = max(distilled_rows, key=lambda r: r["retention_mean"]) if distilled_rows else None
    return {
        "distilled_ge_control": ge_control,
        "best_distilled_retention": {
            "method": best["method"] if best else None,
            "retention": best["retention_mean"] if best else None,
            "met": (best["retention_mean"] >= 95.0) if best else None,
        },
        "speedup_b32_ge_20": {
            r["method"]: {"speedup": r["speedup"],
                          "met": None if r["speedup"] is None else r["speedup"] >= 20}
            for r in rows
        },
    }


def _fmt(value: float | None, digits: int = 2, scale: float = 1.0) -> str:
    return "n/a" if value is None else f"{value * scale:.{digits}f}"


def markdown_table(result: Mapping[str, Any]) -> str:
    """The markdown report: the teacher's row, then each student with and without distillation."""
    teacher = result.get("teacher") or {}
    tp = (result.get("throughput") or {}).get("median") or {}
    lines = [
        f"# Distillation benchmark: {result['settings']['data']}",
        "",
        f"Command: `{result['command']}`  ",
        f"Machine: {result['machine'].get('cpu_model')}, {result['machine'].get('cpu_count')} cores, "
        f"torch threads {result['machine'].get('torch_num_threads')}, shared (load average at start "
        f"{result['machine'].get('load_average_start')}).  ",
        f"Train / validation / test documents: {result['dataset_sizes']}.  ",
        "Macro-F1 and accuracy in %, mean ± sample std over the seeds listed; retention = student macro-F1 / "
        "teacher macro-F1 (%); params ratio = teacher / student; throughput in documents/s (text in, logits "
        "out), median of interleaved repeats; speedup = student / teacher throughput at batch 32; "
        "Δ vs control = distilled minus control macro-F1 in points, averaged over the seeds both have.",
        "",
        "| model | seeds | macro-F1 | accuracy | retention % | Δ vs control (pts) | params | params ratio "
        "| docs/s b32 | docs/s b1 | speedup b32 | speedup b1 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    if teacher:
        tt = tp.get(TEACHER) or {}
        lines.append(
            f"| teacher ({teacher.get('method', 'bert')}) | {teacher.get('seed', 0)} | "
            f"{_fmt(teacher['macro_f1'], 2, 100)} | {_fmt(teacher['accuracy'], 2, 100)} | 100 | | "
            f"{teacher['n_params'] / 1e6:.2f}M | 1 | {_fmt(tt.get('b32'), 1)} | "
            f"{_fmt(tt.get('b1'), 1)} | 1 | 1 |")
    for row in result.get("summary") or []:
        delta = row.get("delta_macro_f1_vs_control")
        lines.append(
            f"| {row['method']} | {','.join(str(s) for s in row['seeds'])} | "
            f"{row['macro_f1_mean'] * 100:.2f} ± {row['macro_f1_std'] * 100:.2f} | "
            f"{row['accuracy_mean'] * 100:.2f} ± {row['accuracy_std'] * 100:.2f} | "
            f"{row['retention_mean']:.1f} ± {row['retention_std']:.1f} | "
            f"{'' if delta is None else f'{delta:+.2f}'} | {row['n_params'] / 1e6:.3f}M | "
            f"{row['n_params_ratio']:.1f} | {_fmt(row['throughput_b32_docs_per_s'], 1)} | "
            f"{_fmt(row['throughput_b1_docs_per_s'], 1)} | {_fmt(row['speedup'], 1)} | "
            f"{_fmt(row['speedup_b1'], 1)} |")
    targets = result.get("targets")
    if targets:
        lines += ["", "Targets (issue 6):", ""]
        for arch, t in targets["distilled_ge_control"].items():
            lines.append(f"- distill-{arch} >= scratch-{arch}: {t['met']} "
                         f"({_fmt(t['distilled_macro_f1'], 2, 100)} vs "
                         f"{_fmt(t['control_macro_f1'], 2, 100)})")
        b = targets["best_distilled_retention"]
        lines.append(f"- best distilled retention >= 95% (the issue states it for Reuters-8): {b['met']} "
                     f"({b['method']}: {_fmt(b['retention'], 1)}%)")
        for method, t in targets["speedup_b32_ge_20"].items():
            lines.append(f"- {method} speedup at batch 32 >= 20x: {t['met']} ({_fmt(t['speedup'], 1)}x)")
    status = result.get("status")
    if status:
        lines += ["", f"Status: {status}"]
    return "\n".join(lines) + "\n"


# ==================================================================================================
# Machine, I/O
# ==================================================================================================
def write_result(output: Path, result: dict[str, Any]) -> None:
    """Write the JSON (atomically) and the markdown table ``<stem>.md`` next to it."""
    from frugaltext.fileio import atomic_write_text

    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output, json.dumps(result, indent=2, default=float))
    atomic_write_text(output.with_suffix(".md"), markdown_table(result))


def refresh(result: dict[str, Any], architectures: Sequence[str]) -> None:
    """Recompute ``summary`` and ``targets`` from the runs, the teacher and the throughput."""
    if not result.get("teacher"):
        return
    median = (result.get("throughput") or {}).get("median")
    result["summary"] = summarize(result["runs"], result["teacher"], median, architectures)
    result["targets"] = check_targets(result["summary"])


def evaluate(model: Any, texts: Sequence[str], labels: np.ndarray, label_names: Sequence[str],
             multi_label: bool) -> dict[str, float]:
    """Test accuracy, macro- and micro-F1 of ``model.predict_logits`` (batch 64)."""
    from frugaltext.methods.base import probabilities_to_predictions
    from frugaltext.metrics import classification_metrics
    from frugaltext.training.hf import logits_to_proba

    proba = logits_to_proba(model.predict_logits(list(texts), batch_size=64), multi_label)
    scores = classification_metrics(labels, probabilities_to_predictions(proba, multi_label), label_names,
                                    multi_label)
    return {k: scores[k] for k in ("accuracy", "macro_f1", "micro_f1")}


def measure_throughputs(models: Mapping[str, Any], texts_b32: Sequence[str], texts_b1: Sequence[str],
                        repeats: int) -> dict[str, Any]:
    """Throughput (documents/s) of every model at batch 32 and batch 1, timed interleaved.

    Each model is warmed up once (one batch of 32, two single documents). Then, in the rotating order of
    ``_common.run_interleaved``, a model runs ``predict_logits(texts_b32, batch_size=32)`` and then one
    ``predict_logits([doc], batch_size=1)`` call per document of ``texts_b1``; each timing is one sample.

    Returns
    -------
    dict
        ``median``: name -> {"b32", "b1"} (docs/s); ``samples``: name -> {"b32": [...], "b1": [...]};
        ``n_docs_b32``, ``n_docs_b1``, ``repeats``, ``load_average``.
    """
    texts_b32, texts_b1 = list(texts_b32), list(texts_b1)
    for model in models.values():
        model.predict_logits(texts_b32[:32], batch_size=32)
        for doc in texts_b1[:2]:
            model.predict_logits([doc], batch_size=1)

    def measure(name: str) -> dict[str, float]:
        model = models[name]
        started = time.perf_counter()
        model.predict_logits(texts_b32, batch_size=32)
        b32 = len(texts_b32) / (time.perf_counter() - started)
        started = time.perf_counter()
        for doc in texts_b1:
            model.predict_logits([doc], batch_size=1)
        b1 = len(texts_b1) / (time.perf_counter() - started)
        logger.info("throughput %s: b32 %.1f, b1 %.1f docs/s", name, b32, b1)
        return {"b32": b32, "b1": b1}

    timed = run_interleaved(measure, list(models), repeats)
    samples = {n: {k: [s[k] for s in runs] for k in ("b32", "b1")} for n, runs in timed.items()}
    return {
        "median": {n: {k: statistics.median(v) for k, v in s.items()} for n, s in samples.items()},
        "samples": samples, "n_docs_b32": len(texts_b32), "n_docs_b1": len(texts_b1), "repeats": repeats,
        "load_average": load_average(),
    }


# ==================================================================================================
# Main
# ==================================================================================================
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", required=True, help="embedded dataset name (r8) or dataset directory")
    p.add_argument("--teacher-dir", default=None,
                   help="trained teacher to reuse (a saved `bert` model or HF checkpoint); "
                        "else one is trained")
    p.add_argument("--teacher-epochs", type=float, default=1.0, help="epochs of the teacher trained here")
    p.add_argument("--teacher-max-length", type=int, default=128, help="tokens of the teacher trained here")
    p.add_argument("--teacher-batch-size", type=int, default=16,
                   help="batch size of the teacher trained here")
    p.add_argument("--students", nargs="+", default=list(ARCHITECTURES), choices=ARCHITECTURES)
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (first-seed, first-seed + 1, ...)")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None, help="student epochs (default: the method's, 20)")
    p.add_argument("--n-copies", type=int, default=None,
                   help="augmentation copies per document for distill-lstm-reg (default: the method's, 2)")
    p.add_argument("--student-max-length", type=int, default=None, help="student tokens (default 128)")
    p.add_argument("--max-train-docs", type=int, default=None, help="stratified training subset (seed 0)")
    p.add_argument("--max-test-docs", type=int, default=None, help="stratified test subset (seed 0)")
    p.add_argument("--b32-docs", type=int, default=256, help="test documents timed at batch 32")
    p.add_argument("--b1-docs", type=int, default=64, help="test documents timed at batch 1")
    p.add_argument("--repeats", type=int, default=3, help="interleaved throughput repeats (median kept)")
    p.add_argument("--student-setting", action="append", default=[], metavar="KEY=VALUE",
                   help="a student setting for every student and control, e.g. tokenizer=wordpiece "
                        "embeddings=pretrained (value parsed as YAML); repeat for several")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--work-dir", default=None,
                   help="trained teacher, seed-0 students and teacher-logit cache "
                        "(default runs/distillation/<data>)")
    p.add_argument("--output", default=None, help="default benchmarks/results/distillation_<data>.json")
    return p.parse_args(argv)


def parse_student_settings(pairs: Sequence[str]) -> dict[str, Any]:
    """``["tokenizer=wordpiece", "epochs=10"]`` -> ``{"tokenizer": "wordpiece", "epochs": 10}``.

    Raises
    ------
    SystemExit
        A pair without ``=`` or with an empty key.
    """
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--student-setting {pair!r}: expected KEY=VALUE, e.g. tokenizer=wordpiece")
        out[key.strip().replace("-", "_")] = yaml.safe_load(value)
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run (or resume) the benchmark; returns the result dict that was written."""
    args = parse_args(argv)
    student_settings = parse_student_settings(args.student_setting)
    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from frugaltext.cost.meter import CostMeter, CostSettings
    from frugaltext.data import load_data
    from frugaltext.methods.base import get_method_class, load_model
    from frugaltext.training.teacher_cache import load_teacher

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("transformers", "codecarbon", "frugaltext.training"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    slug = dataset_slug(args.data)
    output = Path(args.output or f"benchmarks/results/distillation_{slug}.json")
    work = Path(args.work_dir or f"runs/distillation/{slug}")
    cache_dir = work / "teacher_cache"
    teacher_dir = Path(args.teacher_dir) if args.teacher_dir else work / "teacher-bert-seed0"

    data = load_data(args.data)
    full_sizes = {"train": len(data.train), "validation": len(data.validation), "test": len(data.test)}
    data = data.limit(n_train=args.max_train_docs, n_test=args.max_test_docs, seed=0)
    settings = {
        "data": args.data, "max_train_docs": args.max_train_docs, "max_test_docs": args.max_test_docs,
        "epochs": args.epochs, "n_copies": args.n_copies, "student_max_length": args.student_max_length,
        "teacher": str(teacher_dir), "teacher_trained_here": args.teacher_dir is None,
        "teacher_epochs": args.teacher_epochs if args.teacher_dir is None else None,
        "teacher_max_length": args.teacher_max_length if args.teacher_dir is None else None,
        "teacher_batch_size": args.teacher_batch_size if args.teacher_dir is None else None,
        "students": list(args.students), "seeds": list(range(args.first_seed, args.first_seed + args.seeds)),
        "b32_docs": args.b32_docs, "b1_docs": args.b1_docs, "repeats": args.repeats,
        "threads": args.threads, "teacher_cache_dir": str(cache_dir), "work_dir": str(work),
        "student_settings": student_settings,
        "student_defaults": "method defaults (embedding 64, hidden 64, Adam 1e-3, StepLR 0.9, best epoch "
                            "by validation macro-F1, early stopping patience 5) except the overrides above",
    }
    if output.is_file():
        result = json.loads(output.read_text(encoding="utf-8"))
        old = result.get("settings", {})
        old.setdefault("student_settings", {})
        differ = {k: (old.get(k), settings[k]) for k in RESUME_KEYS if old.get(k) != settings[k]}
        if differ:
            raise SystemExit(f"{output} holds runs made with other settings {differ}; pass another --output "
                             "or delete it to start over")
        result["settings"].update(settings)
        result.setdefault("commands", []).append(command_line())
        logger.info("resuming %s: %d runs done", output, len(result.get("runs", {})))
    else:
        result = {"benchmark": "distillation (issue 6)", "runs": {}, "settings": settings,
                  "commands": [command_line()]}
    result["command"] = command_line()
    result["machine"] = machine_info(load_average_start=load_average())
    result["dataset_sizes"] = {"train": len(data.train), "validation": len(data.validation),
                               "test": len(data.test), "full": full_sizes, "num_labels": data.num_labels,
                               "multi_label": data.multi_label, "notes": list(data.notes)}
    result["status"] = "running"
    write_result(output, result)

    # ---- teacher --------------------------------------------------------------------------------
    if args.teacher_dir is None and not (teacher_dir / "config.json").is_file():
        logger.info("training the bert teacher (%s epochs, max_length %d)", args.teacher_epochs,
                    args.teacher_max_length)
        bert = get_method_class("bert")(epochs=args.teacher_epochs, max_length=args.teacher_max_length,
                                        batch_size=args.teacher_batch_size, show_progress=False)
        meter = CostMeter(CostSettings(measure_energy=False))
        with meter.track("train"):
            bert.fit(data, meter, seed=0)
        bert.save(teacher_dir)
        result["teacher_training"] = {"train_duration_s": meter.phases["train"].duration_s,
                                      "epoch_durations_s": meter.epoch_durations_s}
        write_result(output, result)
    teacher = load_teacher(teacher_dir, args.teacher_max_length, loader=load_model)
    if not result.get("teacher"):
        logger.info("evaluating the teacher on %d test documents", len(data.test))
        started = time.perf_counter()
        scores = evaluate(teacher, data.test.texts, data.test.labels, data.label_names, data.multi_label)
        n_params = int(sum(p.numel() for p in teacher.model.parameters()))
        result["teacher"] = {"method": getattr(teacher, "name", "hf-checkpoint"), "dir": str(teacher_dir),
                             "seed": 0, **scores, "n_params": n_params,
                             "test_duration_s": time.perf_counter() - started,
                             "settings": getattr(getattr(teacher, "settings", None), "__dict__", None)}
        write_result(output, result)
    logger.info("teacher: macro_f1 %.4f accuracy %.4f", result["teacher"]["macro_f1"],
                result["teacher"]["accuracy"])

    # ---- students -------------------------------------------------------------------------------
    seed0 = settings["seeds"][0]
    seed0_models: dict[str, Any] = {}
    for seed in settings["seeds"]:
        for arch in args.students:
            for method in method_names(arch):
                key = run_key(method, seed)
                model_dir = work / "models" / f"{method}-seed{seed}"
                if key in result["runs"]:
                    if seed == seed0 and (model_dir / "config.json").is_file():
                        seed0_models[method] = load_model(model_dir)
                    continue
                overrides: dict[str, Any] = {"show_progress": False, "teacher_cache_dir": str(cache_dir),
                                             **student_settings}
                if method.startswith("distill-"):
                    overrides["teacher"] = str(teacher_dir)
                    if arch == "lstm-reg" and args.n_copies is not None:
                        overrides["augment_copies"] = args.n_copies
                if args.epochs is not None:
                    overrides["epochs"] = args.epochs
                if args.student_max_length is not None:
                    overrides["max_length"] = args.student_max_length
                logger.info("training %s (seed %d) %s", method, seed, overrides)
                student = get_method_class(method)(**overrides)
                meter = CostMeter(CostSettings(measure_energy=False))
                load_start = load_average()
                with meter.track("train"):
                    student.fit(data, meter, seed=seed)
                scores = evaluate(student, data.test.texts, data.test.labels, data.label_names,
                                  data.multi_label)
                notes = student.cost_notes()
                result["runs"][key] = {
                    "method": method, "architecture": arch, "seed": seed, **scores,
                    "n_params": student.n_params(), "train_duration_s": meter.phases["train"].duration_s,
                    "epoch_durations_s": meter.epoch_durations_s, "settings_overrides": overrides,
                    "cost_notes": notes, "load_average_before": load_start,
                    "load_average_after": load_average(),
                }
                logger.info("%s seed %d: macro_f1 %.4f accuracy %.4f (%.0f s)", method, seed,
                            scores["macro_f1"], scores["accuracy"], meter.phases["train"].duration_s)
                if seed == seed0:
                    student.save(model_dir)
                    seed0_models[method] = student
                refresh(result, args.students)
                write_result(output, result)
        if seed == seed0:
            names = [m for arch in args.students for m in method_names(arch)]
            measured = (result.get("throughput") or {}).get("median") or {}
            if not all(n in measured for n in [TEACHER, *names]):
                logger.info("measuring throughput of the teacher and %d students, interleaved", len(names))
                texts = list(data.test.texts)
                models = {TEACHER: teacher, **{n: seed0_models[n] for n in names}}
                result["throughput"] = measure_throughputs(models, texts[:args.b32_docs],
                                                           texts[:args.b1_docs], args.repeats)
                refresh(result, args.students)
                write_result(output, result)
            seed0_models.clear()
    result["status"] = "finished"
    result["machine"]["load_average_end"] = load_average()
    refresh(result, args.students)
    write_result(output, result)
    return result


if __name__ == "__main__":
    main()
