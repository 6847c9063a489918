"""Benchmark of the fast path (issue 12): precision, length-grouped batches, int8 and ONNX, against plain
transformers.

**Training** (phase ``train``), each seed, configurations timed in rotating (interleaved) order so that load
from other processes falls on all alike:

* ``baseline``: ``benchmarks/baseline_run_classification.py``, transformers' ``run_classification.py``
  defaults (every input padded to 128 tokens, fp32, random batches; no frugaltext code);
* ``fp32``: frugaltext ``bert``, fp32, random batches with dynamic padding (the old behaviour);
* ``grouped``: + length-grouped batches (``batching: grouped``, the default: batches of similar length in
  random order);
* ``grouped-megabatch``: length-grouped batches in transformers' ``LengthGroupedSampler`` order (each
  megabatch of 50 batches swept from the longest to the shortest; ``batching: grouped-megabatch``, the
  default until it was seen to cost macro-F1 in one epoch, see :mod:`frugaltext.training.length_grouping`);
* ``bf16``: + mixed precision (``precision: bf16``; forced, whatever ``auto`` would pick here);
* ``grouped+bf16``: both.

The bf16 configurations train only where ``precision: auto`` picks bf16 (``--bf16 auto``, the default;
``--bf16 always`` forces them): on a CPU without ``amx_bf16``/``avx512_bf16`` bf16 is emulated, and a probe on
the 2-core AMD EPYC of this project (32 documents, 1 epoch, 1 thread) took 210 s against 21 s in fp32. The
skipped configurations are listed in the JSON (``skipped``) and in the table.

Every configuration trains with the same epochs, batch size and learning rate (``--epochs``,
``--batch-size``, ``--learning-rate``; the other hyper-parameters are each side's defaults) without a
validation split, and is scored on the test documents. ``speedup`` = baseline training time / this
configuration's (median over seeds), ``retention`` = macro-F1 / baseline macro-F1 in % (mean over seeds).
``padding_ratio`` = tokens computed / real tokens of one epoch's batches (the baseline pads to 128).

**Inference** (phase ``inference``), on the seed-0 ``fp32`` model: torch ``fp32``, ``bf16`` (autocast),
``int8`` (dynamic int8 Linear), ``onnx-fp32`` and ``onnx-int8`` (ONNX Runtime; skipped when it is not
installed), plus the baseline's own prediction (padded to 128), at batch 32 and batch 1: text in, logits out,
tokenisation included, ``--repeats`` rounds in rotating order, the median docs/s kept. ``speedup`` =
docs/s / torch fp32 docs/s at the same batch size, ``retention`` = macro-F1 / fp32 macro-F1 in %, and
``label_agreement`` with fp32.

The JSON (``benchmarks/results/fast_path_<data>.json`` by default, with a Markdown table beside it) records
the CPU model and its flags: bf16 and int8 only pay off on CPUs with ``amx_bf16``/``avx512_bf16`` and
``avx512_vnni``/``amx_int8``; on an AVX2-only CPU bf16 is emulated and slower than fp32.

Example (a smoke run; full runs take hours on 2 cores)::

    .venv/bin/python benchmarks/fast_path.py --data r8 --max-train-docs 300 --max-test-docs 200 --epochs 1 \\
        --seeds 1 --label smoke --output benchmarks/results/fast_path_r8_smoke.json
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _common import (  # noqa: E402  (benchmarks/_common.py, shared by the scripts here)
    command_line,
    dataset_slug,
    load_average,
    machine_info,
    run_interleaved,
)

logger = logging.getLogger("benchmarks.fast_path")

TRAIN_CONFIGS: dict[str, dict[str, str] | None] = {
    "baseline": None,
    "fp32": {"precision": "fp32", "batching": "random"},
    "grouped": {"precision": "fp32", "batching": "grouped"},
    "grouped-megabatch": {"precision": "fp32", "batching": "grouped-megabatch"},
    "bf16": {"precision": "bf16", "batching": "random"},
    "grouped+bf16": {"precision": "bf16", "batching": "grouped"},
}
INFERENCE_VARIANTS = ("fp32", "bf16", "int8", "onnx-fp32", "onnx-int8", "baseline")


# ==================================================================================================
# Pure helpers (unit-tested in tests/benchmarks/test_fast_path_benchmark.py)
# ==================================================================================================
def padding_ratios(lengths: Sequence[int], batch_size: int, max_length: int,
                   seed: int = 0) -> dict[str, float]:
    """Tokens computed / real tokens over one epoch of training batches, for each batching.

    ``fixed``: every input padded to ``max_length`` (the baseline); ``random``: random batches padded to
    their longest; ``grouped``: frugaltext's shuffled length-grouped batches, ``grouped-megabatch``:
    transformers' ``get_length_grouped_indices`` (megabatches of 50 batches, sorted by length; the same
    batches as ``grouped`` in another order), padded to their longest.
    """
    import torch
    from transformers.trainer_pt_utils import get_length_grouped_indices

    from frugaltext.training.length_grouping import shuffled_length_grouped_indices

    lengths = [min(int(n), max_length) for n in lengths]
    real = float(sum(lengths))
    generator = torch.Generator().manual_seed(seed)
    orders = {
        "random": torch.randperm(len(lengths), generator=generator).tolist(),
        "grouped": shuffled_length_grouped_indices(lengths, batch_size,
                                                   generator=torch.Generator().manual_seed(seed)),
        "grouped-megabatch": get_length_grouped_indices(lengths, batch_size,
                                                        generator=torch.Generator().manual_seed(seed)),
    }
    out = {"fixed": max_length * len(lengths) / real}
    for name, order in orders.items():
        computed = sum(max(lengths[i] for i in order[s:s + batch_size]) * len(order[s:s + batch_size])
                       for s in range(0, len(order), batch_size))
        out[name] = computed / real
    return out


def summarize_training(runs: Sequence[Mapping[str, Any]], ratios: Mapping[str, float] | None = None
                       ) -> list[dict[str, Any]]:
    """One row per training configuration (in :data:`TRAIN_CONFIGS` order) from the per-seed runs
    (``config``, ``seed``, ``train_duration_s``, ``macro_f1``): medians of the duration, means of macro-F1,
    ``speedup`` (baseline median duration / this one) and ``retention`` (macro-F1 / baseline's, in %)."""
    by_config: dict[str, list[Mapping[str, Any]]] = {}
    for run in runs:
        by_config.setdefault(run["config"], []).append(run)
    base = by_config.get("baseline", [])
    base_time = statistics.median(r["train_duration_s"] for r in base) if base else None
    base_f1 = statistics.fmean(r["macro_f1"] for r in base) if base else None
    rows = []
    for config in [c for c in TRAIN_CONFIGS if c in by_config]:
        group = by_config[config]
        duration = statistics.median(r["train_duration_s"] for r in group)
        f1 = statistics.fmean(r["macro_f1"] for r in group)
        batching = ("fixed" if config == "baseline"
                    else (TRAIN_CONFIGS.get(config) or {}).get("batching", "random"))
        rows.append({
            "phase": "train",
            "config": config,
            "precision": "bf16" if "bf16" in config else "fp32",
            "batching": batching,
            "seeds": sorted(r["seed"] for r in group),
            "train_duration_s": duration,
            "train_docs_per_s": statistics.median(r["n_train"] / r["train_duration_s"] for r in group),
            "macro_f1": f1,
            "speedup": base_time / duration if base_time else None,
            "retention": 100 * f1 / base_f1 if base_f1 else None,
            "padding_ratio": (ratios or {}).get(batching),
        })
    return rows


def summarize_inference(samples: Mapping[str, Mapping[int, Sequence[float]]],
                        quality: Mapping[str, Mapping[str, float]],
                        references: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """One row per (variant, batch size): median docs/s, ``speedup`` against ``fp32`` at the same batch size,
    ``speedup_vs_baseline`` against the ``baseline`` variant (plain transformers, padded to 128),
    ``retention`` (macro-F1 / the reference variant's, %) and ``label_agreement`` with it, from
    ``quality[variant]``. ``references[variant]`` names the reference (default ``fp32``; the early-exit rows
    use their own model at full depth)."""
    rows = []
    references = references or {}
    for variant, per_batch in samples.items():
        reference = references.get(variant, "fp32")
        base_f1 = quality.get(reference, {}).get("macro_f1")
        for batch_size, values in per_batch.items():
            docs_per_s = statistics.median(values)
            base = samples.get("fp32", {}).get(batch_size)
            plain = samples.get("baseline", {}).get(batch_size)
            f1 = quality.get(variant, {}).get("macro_f1")
            rows.append({
                "phase": "inference",
                "config": variant,
                "batch_size": batch_size,
                "docs_per_s": docs_per_s,
                "docs_per_s_samples": list(values),
                "speedup": docs_per_s / statistics.median(base) if base else None,
                "speedup_vs_baseline": docs_per_s / statistics.median(plain) if plain else None,
                "macro_f1": f1,
                "retention_reference": reference,
                "retention": 100 * f1 / base_f1 if f1 is not None and base_f1 else None,
                "label_agreement": quality.get(variant, {}).get("label_agreement"),
                "mean_exit_layer": quality.get(variant, {}).get("mean_exit_layer"),
            })
    return rows


def _fmt(value: Any, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def markdown(payload: Mapping[str, Any]) -> str:
    """The two tables (training, inference) of a result file, with its label and machine."""
    m = payload["machine"]
    label = f" ({payload['label']})" if payload.get("label") else ""
    flags = ", ".join(m.get("cpu_flags_of_interest", [])) or "none"
    lines = [
        f"# Fast path on {payload['data']}{label}", "",
        f"CPU: {m.get('cpu_model')}; flags: {flags}; threads {m.get('torch_num_threads')}. "
        f"{payload['n_train']} training / {payload['n_test']} test documents, "
        f"{payload['settings']['epochs']} epoch(s), seeds {payload['seeds']}.", "",
        "| training | precision | batching | padding ratio | time (s) | docs/s | speedup | macro-F1 | "
        "retention (%) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in (r for r in payload["rows"] if r["phase"] == "train"):
        lines.append(
            f"| {r['config']} | {r['precision']} | {r['batching']} | {_fmt(r['padding_ratio'], '.2f')} "
            f"| {r['train_duration_s']:.1f} | {r['train_docs_per_s']:.2f} | {_fmt(r['speedup'], '.2f')} "
            f"| {r['macro_f1']:.4f} | {_fmt(r['retention'], '.1f')} |")
    lines += [f"| {c} | – | – | – | not run | – | – | – | – |" for c in payload.get("skipped", {})]
    lines += [f"\nNot run: {c}: {why}." for c, why in payload.get("skipped", {}).items()]
    lines += [f"\nNote: {n}" for n in payload.get("notes", [])]
    lines += ["", "| inference | batch | docs/s | speedup vs fp32 | speedup vs baseline | macro-F1 | "
              "retention (%) | of | label agreement | mean exit layer |", "|---" * 10 + "|"]
    for r in (r for r in payload["rows"] if r["phase"] == "inference"):
        lines.append(
            f"| {r['config']} | {r['batch_size']} | {r['docs_per_s']:.1f} | {_fmt(r['speedup'], '.2f')} "
            f"| {_fmt(r.get('speedup_vs_baseline'), '.2f')} | {_fmt(r['macro_f1'], '.4f')} "
            f"| {_fmt(r['retention'], '.1f')} | {r.get('retention_reference', 'fp32')} "
            f"| {_fmt(r['label_agreement'], '.3f')} | {_fmt(r.get('mean_exit_layer'), '.2f')} |")
    return "\n".join(lines) + "\n"


def resume_runs(work: Path, identity: Mapping[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    """The training runs finished before in ``work`` (``runs.jsonl``), keyed by ``(config, seed)``.

    ``work/identity.json`` holds the data, sizes, model and schedule of the runs kept there; a run with other
    settings refuses to mix with them (:class:`SystemExit` naming the folder and the differing keys). A
    missing folder starts empty and is created.
    """
    work.mkdir(parents=True, exist_ok=True)
    id_file = work / "identity.json"
    wanted = json.loads(json.dumps(identity, default=str))
    if id_file.exists():
        kept = json.loads(id_file.read_text(encoding="utf-8"))
        differ = sorted(k for k in set(kept) | set(wanted) if kept.get(k) != wanted.get(k))
        if differ:
            raise SystemExit(f"{work}: kept runs have other settings ({', '.join(differ)}): pass another "
                             f"--work-dir or remove {work} to start again")
    else:
        id_file.write_text(json.dumps(wanted, indent=2) + "\n", encoding="utf-8")
    done: dict[tuple[str, int], dict[str, Any]] = {}
    runs_file = work / "runs.jsonl"
    if runs_file.exists():
        for line in runs_file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                run = json.loads(line)
                done[run["config"], int(run["seed"])] = run
    return done


def record_run(work: Path, run: Mapping[str, Any]) -> None:
    """Append one finished training run to ``work/runs.jsonl`` (one line, flushed and fsynced)."""
    with open(work / "runs.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(run, default=str) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


# ==================================================================================================
# Measurement
# ==================================================================================================
def _load_baseline() -> Any:
    path = Path(__file__).resolve().parent / "baseline_run_classification.py"
    spec = importlib.util.spec_from_file_location("benchmarks_baseline_run_classification", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _macro_f1(data: Any, logits: np.ndarray) -> float:
    from frugaltext.methods.base import probabilities_to_predictions
    from frugaltext.metrics import classification_metrics
    from frugaltext.training.hf import logits_to_proba

    predicted = probabilities_to_predictions(logits_to_proba(logits, data.multi_label), data.multi_label)
    return float(classification_metrics(data.test.labels, predicted, data.label_names,
                                        data.multi_label)["macro_f1"])


def _agreement(a: np.ndarray, b: np.ndarray, multi_label: bool) -> float:
    if multi_label:
        return float(np.mean(((a >= 0) == (b >= 0)).all(axis=1)))
    return float(np.mean(a.argmax(1) == b.argmax(1)))


def _time_docs_per_s(predict: Callable[[list[str], int], Any], texts: list[str], batch_size: int) -> float:
    started = time.perf_counter()
    if batch_size == 1:
        for text in texts:
            predict([text], 1)
    else:
        predict(texts, batch_size)
    return len(texts) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="r8")
    parser.add_argument("--model-name-or-path", default=None, help="default: the packaged all-MiniLM-L6-v2")
    parser.add_argument("--max-train-docs", type=int, default=None)
    parser.add_argument("--max-test-docs", type=int, default=None)
    parser.add_argument("--inference-docs", type=int, default=None,
                        help="test documents timed at inference (default: all of --max-test-docs); batch 1 "
                        "uses at most 64 of them")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--bf16", choices=("auto", "always", "never"), default="auto",
                        help="train the bf16 configurations: auto = only where precision auto picks bf16 (on "
                        "a CPU without amx_bf16/avx512_bf16 bf16 is emulated, about 10x slower to train); "
                        "bf16 inference is timed unless never")
    parser.add_argument("--note", action="append", default=[], help="a line for the JSON's notes")
    parser.add_argument("--label", default="", help="e.g. 'smoke': written in the JSON and the table title")
    parser.add_argument("--output", default=None)
    parser.add_argument("--early-exit", choices=("on", "off"), default="on",
                        help="also train early-exit (seed 0, grouped fp32, same schedule, calibrated on the "
                        "validation split) and time it stacked on fp32 and int8 inference")
    parser.add_argument("--work-dir", default=None,
                        help="where finished training runs and the seed-0 models are kept so that a killed "
                        "run resumes where it stopped (default: runs/fast_path_<data>[_<label>])")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    logger.setLevel(logging.INFO)  # not the root logger: ONNX Runtime's quantizer logs every node at INFO

    from frugaltext.cost.meter import CostMeter
    from frugaltext.data import load_data
    from frugaltext.data.collate import encode_texts
    from frugaltext.fastpath import resolve_precision, set_threads
    from frugaltext.methods import get_method_class, load_model
    from frugaltext.models.encoders import resolve_encoder_path

    threads = set_threads(args.threads)
    output = Path(args.output or f"benchmarks/results/fast_path_{dataset_slug(args.data)}.json")
    baseline = _load_baseline()
    data = load_data(args.data)
    train, test = data.train, data.test if data.test is not None and len(data.test) else data.validation
    if args.max_train_docs:
        train = train.subset(np.arange(min(args.max_train_docs, len(train))))
    if args.max_test_docs:
        test = test.subset(np.arange(min(args.max_test_docs, len(test))))
    validation = data.validation
    empty = train.subset(np.arange(0))
    data = dataclasses.replace(data, train=train, validation=empty, test=test)
    model_path = str(resolve_encoder_path(args.model_name_or_path))
    schedule = dict(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate)
    names = list(data.label_names)
    if data.multi_label:
        baseline_labels = [[names[j] for j in np.flatnonzero(row)] for row in train.labels]
    else:
        baseline_labels = [names[int(y)] for y in train.labels]

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    lengths = [len(t) for t in encode_texts(tokenizer, list(train.texts), args.max_length)]
    ratios = padding_ratios(lengths, args.batch_size, args.max_length)
    logger.info("padding ratios %s", ratios)

    auto_precision, auto_reason = resolve_precision("auto")
    train_bf16 = args.bf16 == "always" or (args.bf16 == "auto" and auto_precision == "bf16")
    configs = [c for c in TRAIN_CONFIGS if train_bf16 or "bf16" not in c]
    skipped = {c: f"bf16 training not run (--bf16 {args.bf16}; precision auto here: {auto_reason})"
               for c in TRAIN_CONFIGS if c not in configs}
    slug = dataset_slug(args.data) + (f"_{args.label}" if args.label else "")
    work = Path(args.work_dir or f"runs/fast_path_{slug}")
    identity = {"data": args.data, "n_train": len(train), "n_test": len(test), "model": model_path,
                "max_length": args.max_length, **schedule}
    done = resume_runs(work, identity)
    runs: list[dict[str, Any]] = []
    for seed in range(args.seeds):
        def measure(config: str, seed: int = seed) -> dict[str, Any]:
            if (config, seed) in done:
                logger.info("training %s seed %d: done before, kept (%s)", config, seed, work)
                return done[config, seed]
            logger.info("training %s seed %d", config, seed)
            if config == "baseline":
                model, tok, duration = baseline.train_baseline(
                    model_path, list(train.texts), baseline_labels, names, data.multi_label, seed=seed,
                    max_seq_length=args.max_length, **schedule)
                logits = baseline.predict_logits(model, tok, list(test.texts), 32, args.max_length)
                if seed == 0:
                    model.save_pretrained(work / "baseline-seed0")
                    tok.save_pretrained(work / "baseline-seed0")
            else:
                method = get_method_class("bert")(model_name_or_path=model_path, max_length=args.max_length,
                                                  select_best=False, show_progress=False,
                                                  **TRAIN_CONFIGS[config], **schedule)
                started = time.perf_counter()
                method.fit(data, CostMeter(), seed=seed)
                duration = time.perf_counter() - started
                logits = method.predict_logits(list(test.texts))
                if seed == 0 and config == "fp32":
                    method.save(work / "fp32-seed0")
            run = {"config": config, "seed": seed, "train_duration_s": duration, "n_train": len(train),
                   "macro_f1": _macro_f1(data, logits), "load_average": load_average(),
                   "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            record_run(work, run)
            logger.info("%s", run)
            return run

        order = configs[seed % len(configs):] + configs[:seed % len(configs)]
        for config in order:
            runs.append(measure(config))

    early_exit_dir = work / "early-exit-seed0"
    if args.early_exit == "on" and not (early_exit_dir / "early-exit-done").exists():
        logger.info("training early-exit seed 0 (grouped, fp32; calibrated on %d validation docs)",
                    len(validation))
        method = get_method_class("early-exit")(model_name_or_path=model_path, max_length=args.max_length,
                                                select_best=False, show_progress=False, precision="fp32",
                                                batching="grouped", **schedule)
        method.fit(dataclasses.replace(data, validation=validation), CostMeter(), seed=0)
        method.save(early_exit_dir)
        (early_exit_dir / "early-exit-done").write_text("saved\n", encoding="utf-8")

    # ---- inference ------------------------------------------------------------------------------------
    texts = list(test.texts)[: args.inference_docs or len(test)]
    with tempfile.TemporaryDirectory(prefix="fast-path-"):
        directory = work / "fp32-seed0"
        predictors: dict[str, Callable[[list[str], int], np.ndarray]] = {}
        fp32 = load_model(directory)
        predictors["fp32"] = fp32.predict_logits
        if args.bf16 != "never":
            bf16 = load_model(directory)
            bf16.settings = dataclasses.replace(bf16.settings, precision="bf16")
            predictors["bf16"] = bf16.predict_logits
        predictors["int8"] = load_model(directory, quantization="int8").predict_logits
        try:
            from frugaltext.onnx_export import export_onnx, load_onnx_model

            parity = {q or "fp32": export_onnx(directory, quantization=q, max_docs=32)
                      for q in (None, "int8")}
            predictors["onnx-fp32"] = load_onnx_model(directory).predict_logits
            predictors["onnx-int8"] = load_onnx_model(directory, quantization="int8").predict_logits
        except Exception as err:  # noqa: BLE001 - onnxruntime missing: the rows are left out, and said so
            logger.warning("ONNX rows skipped: %s", err)
            parity = {"skipped": str(err)}
        references: dict[str, str] = {}
        if args.early_exit == "on":
            full = load_model(early_exit_dir)
            predictors["early-exit-full-depth"] = (
                lambda t, b, m=full: m.predict_with_exits(t, b, exit_rule="none")[0])
            predictors["early-exit"] = load_model(early_exit_dir).predict_logits
            predictors["early-exit+int8"] = load_model(early_exit_dir, quantization="int8").predict_logits
            references.update(dict.fromkeys(("early-exit", "early-exit+int8"), "early-exit-full-depth"))
        from transformers import AutoModelForSequenceClassification

        base_model = AutoModelForSequenceClassification.from_pretrained(work / "baseline-seed0").eval()
        base_tok = AutoTokenizer.from_pretrained(work / "baseline-seed0")
        predictors["baseline"] = lambda t, b: baseline.predict_logits(base_model, base_tok, t, b,
                                                                       args.max_length)

        test_logits: dict[str, np.ndarray] = {}  # each predictor's test logits, computed once
        quality = {}
        for name, predict in predictors.items():
            test_logits[name] = logits = predict(list(test.texts), 32)
            quality[name] = {"macro_f1": _macro_f1(data, logits)}
            owner = getattr(predict, "__self__", None)
            if getattr(owner, "last_exit_layers", None) is not None:
                quality[name]["mean_exit_layer"] = float(np.mean(owner.last_exit_layers))
        for name in predictors:
            if name != "baseline":
                quality[name]["label_agreement"] = _agreement(
                    test_logits[name], test_logits[references.get(name, "fp32")], data.multi_label)
        samples: dict[str, dict[int, list[float]]] = {name: {} for name in predictors}
        for batch_size in (32, 1):
            docs = texts if batch_size > 1 else texts[:64]
            for predict in predictors.values():  # warm-up
                predict(docs[:batch_size * 2], batch_size)
            measured = run_interleaved(
                lambda name, b=batch_size, d=docs: _time_docs_per_s(predictors[name], d, b),
                list(predictors), args.repeats)
            for name, values in measured.items():
                samples[name][batch_size] = values
                logger.info("inference %s batch %d: %s docs/s", name, batch_size,
                            [round(v, 1) for v in values])

    payload = {
        "benchmark": "fast_path",
        "label": args.label,
        "data": args.data,
        "n_train": len(train),
        "n_test": len(test),
        "n_inference_docs": len(texts),
        "seeds": list(range(args.seeds)),
        "settings": {**schedule, "max_length": args.max_length, "repeats": args.repeats,
                     "model_name_or_path": args.model_name_or_path or "packaged all-MiniLM-L6-v2"},
        "command": command_line(),
        "machine": machine_info(torch_interop_threads=threads["torch_interop_threads"]),
        "padding_ratios": ratios,
        "precision_auto": {"precision": auto_precision, "reason": auto_reason},
        "skipped": skipped,
        "notes": args.note,
        "onnx_parity": parity,
        "rows": summarize_training(runs, ratios) + summarize_inference(samples, quality, references),
        "runs": runs,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp_file = output.with_suffix(".json.tmp")
    tmp_file.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp_file, output)
    output.with_suffix(".md").write_text(markdown(payload), encoding="utf-8")
    print(markdown(payload))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
