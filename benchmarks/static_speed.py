"""Static models (issue 14): training time with dense Adam against sparse gradients + lazy Adam, and inference
throughput of the padded path against the flat fast path, side by side in one process.

Training
    ``static`` (or ``--method``) is fitted on the same subset (``TextClassificationData.limit``, stratified,
    seed 13) with every setting equal except ``sparse_gradients``: ``dense`` (False: Adam over the whole
    29,525 x 256 table at every step, the first recipe) and ``sparse`` (True: the table's gradient holds only
    the batch's rows, :class:`frugaltext.training.lazy_adam.LazyAdam`). ``--epochs`` epochs, no early
    stopping, the two configurations alternated ``--repeats`` times (:func:`_common.run_interleaved`).
    Reported per run: ``fit_duration_s`` (all of ``fit``: vectors loaded, tokenisation, training,
    evaluations, checkpoints), the epoch times of the cost meter, validation macro-F1 per epoch and test
    macro-F1 / accuracy; per configuration the medians, and ``speedup`` = dense / sparse.
Inference
    On the last ``sparse`` model: documents per second at ``--batch-size`` over ``--infer-docs`` test
    documents for ``padded`` (the generic ``TorchMethod.predict_logits``: token-id lists, ``PadCollator``,
    the padded ``forward``), ``flat`` (the static fast path: one batched tokenizer call, one
    ``embedding_bag`` per batch) and ``tokenize`` (the tokenizer alone, the ceiling), alternated
    ``--repeats`` times after a warm-up, median kept.
Threads
    ``--threads`` sets torch's threads and ``RAYON_NUM_THREADS`` (the Rust tokenizer's thread pool, fixed
    when ``tokenizers`` first runs), so run the script once per thread count.

Example::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/static_speed.py --data r8 --train-docs 1000 --epochs 2 \\
        --repeats 2 --threads 1 --output benchmarks/results/static_speed_r8_1000docs_1thread.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import command_line, load_average, machine_info, run_interleaved  # noqa: E402  (benchmarks/_common.py, shared by the scripts here)

CONFIGS = {"dense": False, "sparse": True}
INFERENCE_PATHS = ("padded", "flat", "tokenize")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="r8")
    parser.add_argument("--method", default="static", choices=("static", "scratch-static"))
    parser.add_argument("--model-name-or-path", default=None,
                        help="encoder or model2vec folder of the vectors (default: the packaged MiniLM)")
    parser.add_argument("--train-docs", type=int, default=1000)
    parser.add_argument("--validation-docs", type=int, default=None)
    parser.add_argument("--test-docs", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32, help="inference batch size")
    parser.add_argument("--infer-docs", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-training", action="store_true",
                        help="fit only the sparse model once (1 epoch) and measure inference")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    for name in ("train_docs", "epochs", "repeats", "batch_size", "infer_docs", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def train_once(data: Any, args: argparse.Namespace, sparse: bool, epochs: int) -> tuple[Any, dict[str, Any]]:
    """Fit one model; returns it and its measurements."""
    from frugaltext.cost.meter import CostMeter
    from frugaltext.methods import get_method_class
    from frugaltext.metrics import classification_metrics

    method = get_method_class(args.method)(model_name_or_path=args.model_name_or_path, epochs=epochs,
                                           early_stopping_patience=0, sparse_gradients=sparse,
                                           show_progress=False)
    meter = CostMeter()
    start = time.perf_counter()
    method.fit(data, meter)
    fit_duration_s = time.perf_counter() - start
    predicted = method.predict(list(data.test.texts))
    test = classification_metrics(data.test.labels, predicted, data.label_names, data.multi_label)
    validation = [row["eval_macro_f1"] for row in method.train_history if "eval_macro_f1" in row]
    return method, {"fit_duration_s": fit_duration_s, "epoch_durations_s": list(meter.epoch_durations_s),
                    "validation_macro_f1": validation, "test_macro_f1": test["macro_f1"],
                    "test_accuracy": test["accuracy"], "load_average": load_average()}


def measure_inference(method: Any, texts: list[str], batch_size: int, repeats: int) -> dict[str, Any]:
    """Docs/s of the padded path, the flat fast path and the tokenizer alone (median of ``repeats``)."""
    from frugaltext.methods.torch_method import TorchMethod

    calls = {
        "padded": lambda: TorchMethod.predict_logits(method, texts, batch_size),
        "flat": lambda: method.predict_logits(texts, batch_size),
        "tokenize": lambda: method.tokenizer.encode_flat(texts),
    }
    for call in calls.values():  # warm-up
        call()

    def measure(name: str) -> float:
        start = time.perf_counter()
        calls[name]()
        return len(texts) / (time.perf_counter() - start)

    samples = run_interleaved(measure, INFERENCE_PATHS, repeats)
    return {name: {"docs_per_s": _median(values), "samples": values} for name, values in samples.items()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; write and return the JSON report."""
    args = parse_args(argv)
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)  # before tokenizers starts its pool
    import torch

    torch.set_num_threads(args.threads)
    from frugaltext.data import load_data
    from frugaltext.fileio import atomic_write_text

    load_start = load_average()
    data = load_data(args.data).limit(args.train_docs, args.validation_docs, args.test_docs, seed=13)
    runs: dict[str, list[dict[str, Any]]] = {}
    last: dict[str, Any] = {}

    def measure(name: str) -> dict[str, Any]:
        method, result = train_once(data, args, CONFIGS[name], args.epochs)
        last[name] = method
        print(f"{name}: fit {result['fit_duration_s']:.2f} s, epochs "
              f"{[round(t, 2) for t in result['epoch_durations_s']]}, test macro-F1 "
              f"{result['test_macro_f1']:.4f}", file=sys.stderr)
        return result

    if args.skip_training:
        last["sparse"] = train_once(data, args, True, 1)[0]
    else:
        runs = run_interleaved(measure, list(CONFIGS), args.repeats)
    training = {}
    for name, results in runs.items():
        training[name] = {
            "sparse_gradients": CONFIGS[name],
            "fit_duration_s": _median([r["fit_duration_s"] for r in results]),
            "epoch_duration_s": _median([t for r in results for t in r["epoch_durations_s"]]),
            "test_macro_f1": _median([r["test_macro_f1"] for r in results]),
            "runs": results,
        }
    if training:
        dense, sparse = training["dense"], training["sparse"]
        training["speedup"] = {key: dense[key] / sparse[key]
                               for key in ("fit_duration_s", "epoch_duration_s")}
    texts = list(data.test.texts)[: args.infer_docs]
    inference = measure_inference(last["sparse"], texts, args.batch_size, max(args.repeats, 3))
    flat, padded = inference["flat"]["docs_per_s"], inference["padded"]["docs_per_s"]
    inference["speedup_flat_over_padded"] = flat / padded
    report = {
        "benchmark": "static_speed",
        "command": command_line(),
        "data": args.data,
        "method": args.method,
        "n_train": len(data.train),
        "n_validation": len(data.validation) if data.validation is not None else 0,
        "n_test": len(data.test),
        "epochs": args.epochs,
        "threads": {"torch": torch.get_num_threads(), "rayon": args.threads},
        "training": training,
        "inference": {"batch_size": args.batch_size, "n_docs": len(texts), **inference},
        "machine": machine_info(load_average_start=load_start, load_average_end=load_average()),
    }
    text = json.dumps(report, indent=2)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.output, text + "\n")
    print(text)
    return report


if __name__ == "__main__":
    main()
