"""Benchmark of ``early-exit`` (issue 5): measured speed-up at the calibrated threshold against full depth.

Trains the ``early-exit`` method (packaged all-MiniLM-L6-v2 unless ``--model-name-or-path``) on a dataset, or
loads one saved by an earlier run (``--model-dir``), calibrates the exit rule(s) on the validation split
(:func:`frugaltext.models.early_exit.calibrate`, the same function ``fit`` uses) and then, on the test split,
measures in one process and **interleaved**:

* full depth (rule ``none``: every layer, final classifier only; and entropy S = 0: every layer, every exit
  classifier evaluated), and each calibrated setting;
* throughput at batch 32 (all timed test documents) and at batch 1 (a stated subset), repeated
  ``--repeats`` times in rotating order, the median kept; so that load from other processes on a shared
  machine hits every setting alike;
* macro-F1 of the real (dynamic, batched) predictions, ``retention`` = calibrated / full-depth macro-F1 in %,
  mean exit layer, FLOPs per document (the layers each document actually ran), exit-layer histogram;
* the speed-accuracy curve over S in {0, 0.05, ..., 1} and t in {1..L}
  (:func:`frugaltext.models.early_exit.early_exit_curve`), with throughput at batch 32 and batch 1 on stated
  subsets.

With ``--stack int8,bf16`` (issue 16 item 2) the full-depth and calibrated settings are also timed stacked
with the fast path's inference options, interleaved with the others: ``<setting>@int8`` predicts with the
dynamic int8 copy of the model (:func:`frugaltext.fastpath.quantize_int8`, what
``load_model(dir, quantization="int8")`` uses) and ``<setting>@bf16`` under ``torch.autocast`` bf16 (the
``precision: bf16`` inference path). bf16 rows run only where ``resolve_precision("auto")`` picks bf16 (a CPU
with ``amx_bf16``/``avx512_bf16`` or a CUDA device with bf16), unless ``--stack-force-bf16``; elsewhere bf16
is emulated and the JSON says why it was left out. Every row carries ``inference_quantization`` and
``precision``; its macro-F1, exits and FLOPs come from an all-exit pass of that combination, and its speed-up
and retention are against the float32 full-depth row of the same run.

Writes ``--output`` (JSON, atomically) and, next to it, ``<stem>_curve.png``, ``<stem>_curve_throughput.png``
and ``<stem>_hist_<rule>.png``. Speed-up follows Mei (2020), *How to design a sustainably accurate and fast
model for text classification tasks*, Table 2, where it is a FLOPs ratio (``flops_speedup`` here); the
headline ``speedup`` of this benchmark is measured time (throughput) of the same model at full depth vs
with exits, which the FLOPs ratio is reported beside.

Example::

    .venv/bin/python benchmarks/early_exit.py --data r8 --max-length 128 --epochs 2
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
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

logger = logging.getLogger("benchmarks.early_exit")


#: Name of the full-depth reference setting (rule "none": all layers, final classifier only).
FULL_DEPTH = "full_depth"

#: Inference variants ``--stack`` can add: int8 dynamic quantization and bf16 autocast (issue 16 item 2).
STACK_VARIANTS = ("int8", "bf16")


# ==================================================================================================
# Pure helpers (unit-tested in tests/benchmarks/test_early_exit_benchmark.py)
# ==================================================================================================
def summarize_throughputs(samples: Sequence[float]) -> dict[str, Any]:
    """Median, min, max and all samples of repeated throughput measurements (documents/s).

    Raises
    ------
    ValueError
        If ``samples`` is empty or holds a value that is not finite and > 0.
    """
    values = [float(v) for v in samples]
    if not values or any(not np.isfinite(v) or v <= 0 for v in values):
        raise ValueError(f"throughput samples must be finite and > 0, got {values}")
    return {
        "throughput_docs_per_s": statistics.median(values),
        "throughput_docs_per_s_min": min(values),
        "throughput_docs_per_s_max": max(values),
        "throughput_docs_per_s_samples": values,
    }


def retention_percent(macro_f1: float, reference_macro_f1: float) -> float:
    """``100 * macro_f1 / reference_macro_f1`` (the STYLE guide's retention, in %).

    Raises
    ------
    ValueError
        If the reference is not > 0.
    """
    if not reference_macro_f1 > 0:
        raise ValueError(f"reference macro-F1 must be > 0 to compute a retention, got {reference_macro_f1}")
    return 100.0 * float(macro_f1) / float(reference_macro_f1)


def speedup_ratio(throughput: float, reference_throughput: float) -> float:
    """Measured speed-up: ``throughput / reference_throughput`` (both documents/s at the same batch size).

    Raises
    ------
    ValueError
        If either value is not finite and > 0.
    """
    for name, value in (("throughput", throughput), ("reference_throughput", reference_throughput)):
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be finite and > 0, got {value}")
    return float(throughput) / float(reference_throughput)


def merge_curve_rows(
    rows_a: Sequence[Mapping[str, Any]], rows_b: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Join two ``early_exit_curve`` results over the same settings (e.g. one timed at batch 32, one at 1).

    Rows are matched on (rule, entropy_threshold, patience); keys of ``rows_b`` are added to those of
    ``rows_a``. Keys present in both must agree (macro-F1, exit layers and FLOPs are deterministic), except
    the throughput and mismatch columns, which ``rows_b`` fills only for its own batch sizes.

    Raises
    ------
    ValueError
        If the settings differ, or a shared non-timing key disagrees.
    """

    def key(row: Mapping[str, Any]) -> tuple[Any, Any, Any]:
        return (row.get("rule"), row.get("entropy_threshold"), row.get("patience"))

    index_b = {key(r): r for r in rows_b}
    if len(index_b) != len(rows_b) or {key(r) for r in rows_a} != set(index_b):
        raise ValueError("merge_curve_rows: the two curves do not cover the same settings")
    merged = []
    for row in rows_a:
        out = dict(row)
        for name, value in index_b[key(row)].items():
            if name in out and not name.startswith(("throughput_", "n_exit_mismatch_")):
                same = (
                    np.isclose(out[name], value, rtol=1e-9, atol=1e-12)
                    if isinstance(value, float) and isinstance(out[name], float)
                    else out[name] == value
                )
                if not same:
                    raise ValueError(
                        f"merge_curve_rows: {name} differs for {key(row)}: {out[name]!r} vs {value!r}"
                    )
            out[name] = value
        merged.append(out)
    return merged


def comparison_summary(
    settings: Mapping[str, Mapping[str, Any]], reference: str = FULL_DEPTH
) -> dict[str, dict[str, Any]]:
    """Add ``speedup_batch{b}`` and ``retention`` (in %) to each setting, relative to ``reference``.

    Parameters
    ----------
    settings : mapping name -> dict
        Each with ``macro_f1`` and ``throughput_docs_per_s_batch32`` / ``..._batch1`` (medians).

    Returns
    -------
    dict name -> copy of the setting with ``speedup_batch32``, ``speedup_batch1`` (None when a throughput is
    missing), ``retention``, ``speedup`` (= ``speedup_batch32``, the issue's headline number) and, when both
    have ``flops``, ``flops_speedup`` = reference FLOPs / setting FLOPs (the "speedup" of Mei 2020, Table 2,
    which is a FLOPs ratio, not a measured time).

    Raises
    ------
    ValueError
        If ``reference`` is missing.
    """
    if reference not in settings:
        raise ValueError(f"comparison_summary: reference setting {reference!r} is missing")
    ref = settings[reference]
    out = {}
    for name, row in settings.items():
        row = dict(row)
        for b in (32, 1):
            col = f"throughput_docs_per_s_batch{b}"
            row[f"speedup_batch{b}"] = (
                speedup_ratio(row[col], ref[col])
                if row.get(col) is not None and ref.get(col) is not None
                else None
            )
        row["speedup"] = row["speedup_batch32"]
        row["retention"] = retention_percent(row["macro_f1"], ref["macro_f1"])
        if row.get("flops") and ref.get("flops"):
            row["flops_speedup"] = float(ref["flops"]) / float(row["flops"])
        out[name] = row
    return out


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _ratio(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _threshold(row: Mapping[str, Any]) -> str:
    if row.get("entropy_threshold") is not None:
        return f"S = {row['entropy_threshold']:g}"
    if row.get("patience") is not None:
        return f"t = {row['patience']}"
    return "-"


def comparison_markdown(result: Mapping[str, Any]) -> str:
    """The side-by-side comparison of a result (what ``main`` returns) as a Markdown table with its context.

    One row per timed setting: its combination (quantization / precision), threshold, test macro-F1,
    retention and FLOPs ratio against float32 full depth, mean exit layer, and median throughput (min-max)
    with its speed-up at batch 32 and batch 1; then each rule's calibration on validation. Written next to
    the JSON by ``main``; ``--markdown-only`` rebuilds it from a saved JSON.
    """
    model = result.get("model") or {}
    data = result.get("dataset") or {}
    timing = result.get("timing_protocol") or {}
    machine = result.get("machine") or {}
    flags = ", ".join(machine.get("cpu_flags_of_interest") or []) or "-"
    train_s = (result.get("training") or {}).get("train_duration_s")
    path = (result.get("args") or {}).get("model_name_or_path")
    encoder = model.get("encoder") or (Path(path).name if path else "MiniLM-L6")
    lines = [
        f"# Early exit: {encoder} ({model.get('num_hidden_layers')} layers, "
        f"{model.get('training_mode')}), {data.get('data')}",
        "",
        f"Command: `{result.get('command')}`",
        "",
        f"Data: {data.get('n_train_docs')} training / {data.get('n_validation_docs')} validation / "
        f"{data.get('n_test_docs')} test documents (of {data.get('n_train_docs_available')} training and "
        f"{data.get('n_test_docs_available')} test available); max length {model.get('max_length')}; "
        f"training {_fmt(train_s, '.0f')} s.",
        f"Machine: {machine.get('cpu_model')} ({flags}), {machine.get('cpu_count')} cores, "
        f"{machine.get('torch_num_threads')} torch thread(s); load average "
        f"{result.get('load_average_before_timing')} before the timing, "
        f"{result.get('load_average_after_timing')} after.",
        f"Timing: median of {timing.get('repeats')} interleaved repeats; batch 32 on the first "
        f"{timing.get('batch32_docs')} test documents, batch 1 on the first {timing.get('batch1_docs')}; "
        "macro-F1, exit layers and FLOPs on every test document. Retention, FLOPs ratio and speed-ups are "
        "against `full_depth` (float32, every layer)."
        + (f" int8 rows keep the Linear layers matching `{keep}` in fp32."
           if (keep := (result.get("stack") or {}).get("int8_keep_fp32_linear")) else ""),
        "",
        "| setting | int8 / precision | threshold | macro-F1 | retention (%) | mean exit layer | FLOPs ratio "
        "| docs/s b32 (min-max) | speed-up b32 | docs/s b1 | speed-up b1 |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in (result.get("comparison") or {}).items():
        b32 = (f"{_fmt(row.get('throughput_docs_per_s_batch32'), '.1f')} "
               f"({_fmt(row.get('throughput_docs_per_s_batch32_min'), '.1f')}-"
               f"{_fmt(row.get('throughput_docs_per_s_batch32_max'), '.1f')})")
        cells = [
            name, f"{row.get('inference_quantization', 'none')} / {row.get('precision', 'fp32')}",
            _threshold(row), _fmt(row.get("macro_f1"), ".4f"), _fmt(row.get("retention"), ".2f"),
            _fmt(row.get("mean_exit_layer"), ".2f"), _ratio(row.get("flops_speedup")), b32,
            _ratio(row.get("speedup_batch32")),
            _fmt(row.get("throughput_docs_per_s_batch1"), ".1f"),
            _ratio(row.get("speedup_batch1")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    for rule, cal in (result.get("calibration") or {}).items():
        chosen = cal.get("chosen") or {}
        kept = chosen.get("retention")
        lines += ["", (
            f"Calibration ({rule}, validation, {cal.get('n_docs')} documents, full-depth macro-F1 "
            f"{_fmt(cal.get('full_depth_macro_f1'), '.4f')}): {_threshold(chosen)} keeps "
            f"{_fmt(None if kept is None else 100 * kept, '.2f')} % at mean exit layer "
            f"{_fmt(chosen.get('mean_exit_layer'), '.2f')}; exit layers {chosen.get('exit_layer_histogram')}."
        )]
    return "\n".join(lines) + "\n"


def parse_stack(text: str | None) -> tuple[str, ...]:
    """The variants of ``--stack``: ``"int8,bf16"`` -> ``("int8", "bf16")``; None or ``""`` -> ``()``.

    Raises
    ------
    ValueError
        For a name not in :data:`STACK_VARIANTS` or one given twice.
    """
    names = [part.strip().lower() for part in (text or "").split(",") if part.strip()]
    unknown = [n for n in names if n not in STACK_VARIANTS]
    if unknown:
        raise ValueError(f"--stack: unknown variant(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(STACK_VARIANTS)}, comma-separated (e.g. --stack int8,bf16)")
    if len(set(names)) != len(names):
        raise ValueError(f"--stack lists a variant twice: {text!r}")
    return tuple(names)


def stack_combination(variant: str | None) -> dict[str, str]:
    """``inference_quantization`` and ``precision`` of a row: None (the plain row) is ``none``/``fp32``,
    ``"int8"`` is ``int8``/``fp32`` (int8 kernels take fp32 activations), ``"bf16"`` is ``none``/``bf16``."""
    if variant not in (None, *STACK_VARIANTS):
        raise ValueError(f"unknown stack variant {variant!r}; choose from {', '.join(STACK_VARIANTS)}")
    return {"inference_quantization": "int8" if variant == "int8" else "none",
            "precision": "bf16" if variant == "bf16" else "fp32"}


def bf16_decision(force: bool, auto_precision: tuple[str, str]) -> tuple[bool, str]:
    """Whether ``--stack bf16`` rows are timed, and why.

    Parameters
    ----------
    force : bool
        ``--stack-force-bf16``: time them even where bf16 is emulated.
    auto_precision : (str, str)
        :func:`frugaltext.fastpath.resolve_precision` of ``"auto"`` on this machine (precision, reason).
    """
    precision, reason = auto_precision
    if precision == "bf16":
        return True, f"precision auto picks bf16 here ({reason})"
    if force:
        return True, f"--stack-force-bf16, although precision auto keeps fp32 here ({reason})"
    return False, (f"not run: precision auto keeps fp32 here ({reason}); bf16 would be emulated and slower "
                   "(--stack-force-bf16 times it anyway)")


def stacked_settings(
    settings: Mapping[str, Mapping[str, Any]], variants: Sequence[str], stacked: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Every setting with its inference combination, plus ``<name>@<variant>`` copies of those in ``stacked``.

    Parameters
    ----------
    settings : mapping name -> setting
        ``{"rule": ..., "entropy_threshold": ..., "patience": ...}`` each.
    variants : sequence of str
        From :data:`STACK_VARIANTS`, in the order the rows are added.
    stacked : sequence of str
        Names of ``settings`` to stack (the full-depth and calibrated ones).

    Returns
    -------
    dict name -> setting with ``inference_quantization`` and ``precision`` (:func:`stack_combination`) and
    ``stack`` (the variant, None for the plain rows).

    Raises
    ------
    ValueError
        If a name of ``stacked`` is not in ``settings`` or a variant is unknown.
    """
    missing = [n for n in stacked if n not in settings]
    if missing:
        raise ValueError(f"stacked_settings: {', '.join(missing)} not among the settings")
    out = {name: {**setting, **stack_combination(None), "stack": None} for name, setting in settings.items()}
    for variant in variants:
        for name in stacked:
            out[f"{name}@{variant}"] = {**settings[name], **stack_combination(variant), "stack": variant}
    return out


# ==================================================================================================
# Measurement
# ==================================================================================================
def make_batches(method: Any, texts: Sequence[str], batch_size: int) -> tuple[np.ndarray, list[dict]]:
    """Pre-tokenised, length-sorted padded batches as ``predict_with_exits`` builds them (untimed)."""
    from frugaltext.data.collate import PadCollator, encode_texts, length_sorted_batches

    s = method.settings
    ids = encode_texts(method.tokenizer, texts, s.max_length, s.truncation)
    collator = PadCollator(method.tokenizer.pad_token_id or 0)
    order = length_sorted_batches([len(t) for t in ids], batch_size)
    batches = [collator([{"input_ids": ids[i]} for i in index]) for index in order]
    return np.concatenate(order), batches


def setting_kwargs(setting: Mapping[str, Any]) -> dict[str, Any]:
    """Forward-call overrides of one setting (``exit_rule`` plus its threshold)."""
    rule = setting["rule"]
    if rule == "entropy":
        return {"exit_rule": "entropy", "entropy_threshold": float(setting["entropy_threshold"])}
    if rule == "patience":
        return {"exit_rule": "patience", "patience": int(setting["patience"])}
    return {"exit_rule": "none"}


def train_or_load(args: argparse.Namespace, data: Any, model_dir: Path) -> tuple[Any, dict[str, Any]]:
    """Load the saved model in ``model_dir``, or train ``early-exit`` there (and save it)."""
    from frugaltext.cost.meter import CostMeter, CostSettings
    from frugaltext.methods.base import METHOD_FILE, get_method_class, load_model

    if (model_dir / METHOD_FILE).is_file():
        logger.info("loading the trained model from %s (no training)", model_dir)
        method = load_model(model_dir)
        info_path = model_dir / "benchmark_training.json"
        info = json.loads(info_path.read_text()) if info_path.is_file() else {}
        info["loaded_from"] = str(model_dir)
        return method, info
    cls = get_method_class("early-exit")
    method = cls(
        model_name_or_path=args.model_name_or_path,
        max_length=args.max_length,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        training_mode=args.training_mode,
        precision=args.precision,
        **({} if args.stage2_epochs is None else {"stage2_epochs": args.stage2_epochs}),
        exit_rule="patience" if args.rule == "patience" else "entropy",
        target_retention=args.target_retention,
        show_progress=False,
    )
    meter = CostMeter(CostSettings(measure_energy=args.measure_energy))
    logger.info("training early-exit (%s, %s epochs) on %d documents", args.training_mode, args.epochs,
                len(data.train))
    start = time.perf_counter()
    with meter.track("train"):
        method.fit(data, meter, seed=args.seed, output_dir=model_dir / "work")
    duration_s = time.perf_counter() - start
    method.save(model_dir)
    costs = meter.as_dict()
    info = {
        "trained_in_this_run": True,
        "train_duration_s": duration_s,
        "epoch_durations_s": costs.get("epoch_durations_s"),
        "train_energy_kwh": costs.get("train_energy_kwh"),
        "energy_source": costs.get("energy_source"),
        "energy_error": costs.get("energy_error"),
        "load_average_after_training": load_average(),
        "settings": json.loads(json.dumps(dataclasses.asdict(method.settings), default=str)),
        "seed": args.seed,
        "n_train_docs": len(data.train),
        "n_validation_docs": len(data.validation),
    }
    from frugaltext.fileio import atomic_write_text

    atomic_write_text(model_dir / "benchmark_training.json", json.dumps(info, indent=2))
    import shutil

    shutil.rmtree(model_dir / "work", ignore_errors=True)
    return method, info


def measure_settings(
    method: Any,
    texts: Sequence[str],
    labels: np.ndarray,
    settings: Mapping[str, Mapping[str, Any]],
    *,
    batch1_docs: int,
    repeats: int,
    batch32_docs: int | None = None,
    exit_logits_out: dict[tuple[str, str], Any] | None = None,
    int8_keep_fp32_linear: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Interleaved throughput (batch 32 and 1) and the macro-F1, exits and FLOPs of each named setting.

    macro-F1, exit layers and FLOPs come from one all-exit pass simulated offline
    (:func:`~frugaltext.models.early_exit.simulate_exits`, exact); the exit layers of every timed batch-32
    run are compared with the simulated ones and the count of differences is recorded as
    ``n_exit_mismatch_batch32`` (0 expected).

    Returns
    -------
    dict name -> dict with rule, threshold, ``macro_f1``, ``mean_exit_layer``, ``flops`` (per document),
    ``exit_layer_histogram``, ``throughput_docs_per_s_batch{32,1}`` (median) with min, max and samples,
    ``latency_ms_batch{32,1}`` (per document), ``n_timed_docs_batch{32,1}``, ``inference_quantization`` and
    ``precision``. A setting with ``inference_quantization: int8`` runs the int8 copy of the model
    (:func:`frugaltext.fastpath.quantize_int8`), one with ``precision: bf16`` runs under bf16 autocast; each
    combination gets its own all-exit pass (its macro-F1 and exits are its own), FLOPs are counted on the
    layers run. ``exit_logits_out``, when given, receives the :func:`collect_exit_logits` output of each
    (quantization, precision) combination, e.g. ``("none", "fp32")``, for reuse (the curve).
    """
    from frugaltext.fastpath import autocast, quantize_int8
    from frugaltext.models.early_exit import (
        collect_exit_logits,
        exit_histogram,
        macro_f1,
        measure_throughput,
        predicted_labels,
        simulate_exits,
    )

    model = method.model
    s = method.settings
    num_layers = model.num_layers
    multi = model.config.multi_label
    device_type = next(model.parameters()).device.type
    texts = list(texts)
    labels = np.asarray(labels)
    b1_texts = texts[: min(batch1_docs, len(texts))]
    b32_texts = texts[: min(batch32_docs or len(texts), len(texts))]
    batches = {32: make_batches(method, b32_texts, 32), 1: make_batches(method, b1_texts, 1)}
    n_docs = {32: len(b32_texts), 1: len(b1_texts)}

    def combination(setting: Mapping[str, Any]) -> tuple[str, str]:
        return (setting.get("inference_quantization", "none"), setting.get("precision", "fp32"))

    models: dict[str, Any] = {"none": model}
    if any(combination(x)[0] == "int8" for x in settings.values()):
        models["int8"] = quantize_int8(model, getattr(method, "int8_keep_fp32", ()),
                                       keep_fp32_linear=int8_keep_fp32_linear)
    exit_logits: dict[tuple[str, str], Any] = {}
    seq_lens = None
    for combo in dict.fromkeys(combination(x) for x in settings.values()):
        with autocast(combo[1], device_type):
            collected = collect_exit_logits(
                models[combo[0]], texts, labels, method.tokenizer, s.max_length, 32, s.truncation
            )
        exit_logits[combo], _, seq_lens = collected
        if exit_logits_out is not None:
            exit_logits_out[combo] = collected
    out: dict[str, dict[str, Any]] = {}
    for name, setting in settings.items():
        kwargs = setting_kwargs(setting)
        all_logits = exit_logits[combination(setting)]
        exit_layer, logits = simulate_exits(all_logits, model.resolve_exit_settings(**kwargs), multi)
        exits = exit_layer.numpy()
        predicted = predicted_labels(logits, multi).numpy()
        quantization, precision = combination(setting)
        out[name] = {
            **{k: setting.get(k) for k in ("rule", "entropy_threshold", "patience")},
            "inference_quantization": quantization,
            "precision": precision,
            "macro_f1": macro_f1(labels, predicted, multi, model.config.num_labels),
            "mean_exit_layer": float(exits.mean()),
            "flops": float(model.flops_per_document(seq_lens, exits, **kwargs).mean()),
            "exit_layer_histogram": exit_histogram(exits, num_layers),
            "n_exit_mismatch_batch32": 0,
        }

    def measure(b: int, name: str) -> float:
        order, bs = batches[b]
        kwargs = setting_kwargs(settings[name])
        quantization, precision = combination(settings[name])
        with autocast(precision, device_type):
            throughput, real_exits = measure_throughput(models[quantization], bs, n_docs[b], **kwargs)
        if b == 32:
            all_logits = exit_logits[(quantization, precision)]
            simulated = simulate_exits(all_logits[:, torch_index(order)],
                                       model.resolve_exit_settings(**kwargs), multi)[0].numpy()
            out[name]["n_exit_mismatch_batch32"] = max(
                out[name]["n_exit_mismatch_batch32"], int((real_exits != simulated).sum())
            )
        logger.info("  batch %d %-22s %.1f docs/s", b, name, throughput)
        return throughput

    samples: dict[tuple[str, int], list[float]] = {}
    for b in (32, 1):  # all batch-32 rounds, then all batch-1 rounds
        for name, values in run_interleaved(functools.partial(measure, b), list(settings), repeats).items():
            samples[(name, b)] = values
    for name, row in out.items():
        for b in (32, 1):
            summary = summarize_throughputs(samples[(name, b)])
            for key, value in summary.items():
                row[key.replace("throughput_docs_per_s", f"throughput_docs_per_s_batch{b}")] = value
            row[f"latency_ms_batch{b}"] = 1000.0 / summary["throughput_docs_per_s"]
            row[f"n_timed_docs_batch{b}"] = n_docs[b]
    return out


def torch_index(order: np.ndarray) -> Any:
    """``order`` as a long tensor (to index the document axis of all-exit logits)."""
    import torch

    return torch.as_tensor(np.asarray(order), dtype=torch.long)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line arguments (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="r8", help="dataset: embedded name or folder (load_data)")
    p.add_argument("--max-train-docs", type=int, default=None, help="stratified training subset")
    p.add_argument("--max-test-docs", type=int, default=None, help="stratified test subset")
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=16, help="training batch size")
    p.add_argument("--learning-rate", type=float, default=5e-5)
    p.add_argument("--training-mode", choices=("joint", "two_stage"), default="joint")
    p.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="fp32",
                   help="training arithmetic (the method's precision setting; bf16 = mixed precision). The "
                        "timed rows keep their own combination: full depth and the plain rules are fp32")
    p.add_argument("--stage2-epochs", type=float, default=None,
                   help="two-stage only: self-distillation epochs of stage 2 (default: the method's, 3)")
    p.add_argument("--rule", choices=("entropy", "patience", "both"), default="both")
    p.add_argument("--target-retention", type=float, default=0.99)
    p.add_argument("--model-name-or-path", default=None, help="encoder; default packaged MiniLM")
    p.add_argument("--output", default=None,
                   help="JSON path; default benchmarks/results/early_exit_<data>.json")
    p.add_argument("--model-dir", default=None,
                   help="saved model to reuse, or where to save the trained one; "
                        "default runs/early_exit_<data>_<training-mode>")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads for training and timing (default: torch's, = cores)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved timing repeats (median kept)")
    p.add_argument("--batch1-docs", type=int, default=200, help="test documents timed at batch 1")
    p.add_argument("--batch32-docs", type=int, default=None,
                   help="test documents timed at batch 32 (the first N; default: all). macro-F1, exits and "
                        "FLOPs always use every test document")
    p.add_argument("--curve-batch32-docs", type=int, default=None,
                   help="test documents timed at batch 32 for each curve point (default: all)")
    p.add_argument("--curve-batch1-docs", type=int, default=100,
                   help="test documents timed at batch 1 for each curve point")
    p.add_argument("--no-curve-timing", action="store_true", help="curve without throughput columns")
    p.add_argument("--measure-energy", action="store_true", help="codecarbon during training (estimate)")
    p.add_argument("--stack", default="",
                   help="also time full depth and the calibrated rules under int8 and/or bf16 inference, "
                        "comma-separated: int8,bf16 (bf16 only where precision auto picks it)")
    p.add_argument("--int8-keep-fp32-linear", metavar="REGEX", default=None,
                   help="--stack int8: Linear layers whose name matches stay fp32 (quantize_int8's "
                        "keep_fp32_linear), e.g. 'output\\.dense$' for the FFN output projections")
    p.add_argument("--markdown-only", metavar="JSON", default=None,
                   help="only rebuild the Markdown table (JSON path with .md) from a saved result, then exit")
    p.add_argument("--stack-force-bf16", action="store_true",
                   help="time the --stack bf16 rows even where bf16 is emulated (no amx_bf16/avx512_bf16)")
    args = p.parse_args(argv)
    try:
        args.stack = list(parse_stack(args.stack))
    except ValueError as err:
        p.error(str(err))
    if not 0 < args.target_retention <= 1:
        p.error(f"--target-retention must be in (0, 1], got {args.target_retention}")
    for name in ("repeats", "batch1_docs", "curve_batch1_docs", "batch32_docs"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the JSON-ready result (also written to ``--output``)."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.markdown_only:
        from frugaltext.fileio import atomic_write_text

        source = Path(args.markdown_only)
        result = json.loads(source.read_text(encoding="utf-8"))
        atomic_write_text(source.with_suffix(".md"), comparison_markdown(result))
        logger.info("wrote %s", source.with_suffix(".md"))
        return result
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    from frugaltext.data import load_data
    from frugaltext.fileio import atomic_write_text
    from frugaltext.models.early_exit import calibrate, collect_exit_logits, early_exit_curve
    from frugaltext.reports.early_exit import plot_early_exit_curve, plot_exit_histogram

    torch.manual_seed(args.seed)
    slug = dataset_slug(args.data)
    output = Path(args.output or f"benchmarks/results/early_exit_{slug}.json")
    model_dir = Path(args.model_dir or f"runs/early_exit_{slug}_{args.training_mode}")
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")

    full = load_data(args.data)
    data = full.limit(n_train=args.max_train_docs, n_test=args.max_test_docs, seed=args.seed)
    method, training = train_or_load(args, data, model_dir)
    model = method.model
    s = method.settings
    num_layers = model.num_layers
    rules = ["entropy", "patience"] if args.rule == "both" else [args.rule]

    # Calibration on validation (same function and grid as fit; one all-exit pass shared by the rules).
    logger.info("calibrating %s on %d validation documents", rules, len(data.validation))
    val_logits = collect_exit_logits(model, list(data.validation.texts), data.validation.labels,
                                     method.tokenizer, s.max_length, s.eval_batch_size, s.truncation)
    calibrations = {
        rule: calibrate(model, None, rule, args.target_retention, exit_logits=val_logits, save=False)
        for rule in rules
    }

    test_texts, test_labels = list(data.test.texts), np.asarray(data.test.labels)
    settings: dict[str, dict[str, Any]] = {
        FULL_DEPTH: {"rule": "none"},
        "entropy_s0": {"rule": "entropy", "entropy_threshold": 0.0},
    }
    for rule, cal in calibrations.items():
        settings[f"calibrated_{rule}"] = {k: cal.chosen[k] for k in ("rule", "entropy_threshold", "patience")}
    from frugaltext.fastpath import resolve_precision

    stack_run, stack_not_run = [], {}
    for variant in args.stack:
        if variant == "bf16":
            run_bf16, why = bf16_decision(args.stack_force_bf16, resolve_precision("auto"))
            if not run_bf16:
                stack_not_run[variant] = why
                logger.info("--stack bf16: %s", why)
                continue
        stack_run.append(variant)
    settings = stacked_settings(settings, stack_run, [FULL_DEPTH, *(f"calibrated_{r}" for r in rules)])
    load_before = load_average()
    test_exit_logits: dict[tuple[str, str], Any] = {}
    logger.info("side-by-side timing of %s (load %s)", list(settings), load_before)
    t0 = time.perf_counter()
    measured = measure_settings(method, test_texts, test_labels, settings,
                                batch1_docs=args.batch1_docs, repeats=args.repeats,
                                batch32_docs=args.batch32_docs, exit_logits_out=test_exit_logits,
                                int8_keep_fp32_linear=args.int8_keep_fp32_linear)
    comparison = comparison_summary(measured)
    comparison_duration_s = time.perf_counter() - t0
    load_after = load_average()

    logger.info("speed-accuracy curve on %d test documents", len(test_texts))
    t0 = time.perf_counter()
    timing = not args.no_curve_timing
    curve = early_exit_curve(
        model, test_texts, test_labels, method.tokenizer, max_length=s.max_length, truncation=s.truncation,
        batch_sizes=(32,), measure=timing, max_timing_docs=args.curve_batch32_docs,
        exit_logits=test_exit_logits.get(("none", "fp32")),
    )
    if timing:
        curve_b1 = early_exit_curve(
            model, test_texts, test_labels, method.tokenizer, max_length=s.max_length,
            truncation=s.truncation, batch_sizes=(1,), measure=True, max_timing_docs=args.curve_batch1_docs,
            exit_logits=test_exit_logits.get(("none", "fp32")),
        )
        curve = merge_curve_rows(curve, curve_b1)
    curve_duration_s = time.perf_counter() - t0
    full_f1 = comparison[FULL_DEPTH]["macro_f1"]
    for row in curve:
        row["retention"] = retention_percent(row["macro_f1"], full_f1)

    # Plots next to the JSON.
    output.parent.mkdir(parents=True, exist_ok=True)
    stem = output.with_suffix("")
    encoder = Path(args.model_name_or_path).name if args.model_name_or_path else "MiniLM-L6"
    title = f"early exit, {encoder} ({num_layers} layers), {slug} test ({len(test_texts)} docs)"
    plots = {}
    plots["curve_flops"] = str(plot_early_exit_curve(curve, f"{stem}_curve.png", x="flops",
                                                     full_depth_macro_f1=full_f1, title=title)[0])
    if timing:
        plots["curve_throughput_batch32"] = str(plot_early_exit_curve(
            curve, f"{stem}_curve_throughput.png", x="throughput_docs_per_s_batch32",
            full_depth_macro_f1=full_f1, title=title + ", batch 32")[0])
    for rule in rules:
        row = comparison[f"calibrated_{rule}"]
        value = f"S={row['entropy_threshold']:g}" if rule == "entropy" else f"t={row['patience']}"
        plots[f"histogram_{rule}"] = str(plot_exit_histogram(
            row["exit_layer_histogram"], num_layers, f"{stem}_hist_{rule}.png", is_histogram=True,
            title=f"exit layers, {slug} test, calibrated {rule} ({value})",
        )[0])

    headline_rule = rules[0]
    head = comparison[f"calibrated_{headline_rule}"]
    result = {
        "benchmark": "early_exit",
        "issue": 5,
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": command_line(),
        "args": vars(args),
        "machine": machine_info(),
        "load_average_before_timing": load_before,
        "load_average_after_timing": load_after,
        "shared_machine_note": (
            "Timings were taken on a machine shared with other processes; settings are timed interleaved "
            "(rotating order) and the median of the repeats is kept, so load falls on all settings alike."
        ),
        "dataset": {
            "data": args.data,
            "n_train_docs": len(data.train),
            "n_validation_docs": len(data.validation),
            "n_test_docs": len(data.test),
            "n_train_docs_available": len(full.train),
            "n_test_docs_available": len(full.test),
            "num_labels": data.num_labels,
            "multi_label": data.multi_label,
            "notes": list(getattr(data, "notes", []) or []),
        },
        "training": training,
        "model": {
            "model_dir": str(model_dir),
            "num_hidden_layers": num_layers,
            "max_length": s.max_length,
            "training_mode": model.config.training_mode,
            "encoder": encoder,
            "n_params": method.n_params(),
        },
        "target_retention": args.target_retention,
        "calibration": {rule: cal.to_dict() for rule, cal in calibrations.items()},
        "headline_rule": headline_rule,
        "speedup": head["speedup"],
        "retention": head["retention"],
        "speedup_definition": (
            "throughput (docs/s) at batch 32 of the calibrated setting / throughput at batch 32 of the same "
            "model at full depth (rule 'none': all layers, final classifier only), median of interleaved "
            "repeats, on the same test documents"
        ),
        "retention_definition": "100 * macro-F1 (calibrated) / macro-F1 (full depth), test split, in %",
        "comparison": comparison,
        "comparison_duration_s": comparison_duration_s,
        "stack": {
            "requested": list(args.stack),
            "run": stack_run,
            "int8_keep_fp32_linear": args.int8_keep_fp32_linear,
            "not_run": stack_not_run,
            "definition": (
                "<setting>@int8: the dynamic int8 copy of the model (quantize_int8, as load_model(dir, "
                "quantization='int8')); <setting>@bf16: torch.autocast bf16 (precision bf16 inference); each "
                "row's inference_quantization and precision name its combination; speed-up and retention are "
                f"against {FULL_DEPTH!r} (float32, every layer) of this run"
            ),
        },
        "timing_protocol": {
            "repeats": args.repeats,
            "order": "interleaved, each round rotated by one setting; median kept",
            "batch32_docs": min(args.batch32_docs or len(test_texts), len(test_texts)),
            "batch1_docs": min(args.batch1_docs, len(test_texts)),
            "warmup_batches": 1,
            "tokenisation": "excluded (pre-tokenised, length-sorted batches, dynamic padding)",
        },
        "curve": curve,
        "curve_duration_s": curve_duration_s,
        "curve_timing": None if not timing else {
            "batch32_docs": min(args.curve_batch32_docs or len(test_texts), len(test_texts)),
            "batch1_docs": min(args.curve_batch1_docs, len(test_texts)),
            "note": "one timed pass per setting (no repeats); macro-F1, exit layers and FLOPs use all test "
                    "documents; throughput at batch 32 / batch 1 uses the first batch32_docs / batch1_docs "
                    "test documents",
        },
        "plots": plots,
    }
    atomic_write_text(output, json.dumps(result, indent=2, default=float))
    atomic_write_text(output.with_suffix(".md"), comparison_markdown(result))
    logger.info("wrote %s and its .md", output)
    for name, row in comparison.items():
        logger.info(
            "%-20s macro_f1=%.4f retention=%.2f%% exit=%.2f GFLOPs=%.3f b32=%.1f/s (x%.2f) b1=%.1f/s (x%.2f)",
            name, row["macro_f1"], row["retention"], row["mean_exit_layer"], row["flops"] / 1e9,
            row["throughput_docs_per_s_batch32"], row["speedup_batch32"],
            row["throughput_docs_per_s_batch1"], row["speedup_batch1"],
        )
    return result


if __name__ == "__main__":
    main()
