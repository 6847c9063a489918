"""Plain transformers text classification, as ``examples/pytorch/text-classification/run_classification.py``
runs it by default: the baseline of ``benchmarks/fast_path.py``. No frugaltext import, on purpose.

Defaults copied from transformers' ``run_classification.py`` (``DataTrainingArguments`` and
``TrainingArguments``):

* ``max_seq_length=128`` and ``pad_to_max_length=True``: every document is tokenised with
  ``padding="max_length", truncation=True`` in ``datasets.map`` and batched by ``default_data_collator``;
* ``shuffle_train_dataset=False`` and no ``group_by_length``: the Trainer's ``RandomSampler``;
* fp32 (``fp16``/``bf16`` off), AdamW, linear schedule, ``warmup_steps=0``, ``weight_decay=0.0``,
  ``learning_rate=5e-5``, ``num_train_epochs=3``, ``per_device_train_batch_size=8`` (``--epochs`` and
  ``--batch-size`` override the last two so that the benchmark compares equal schedules);
* ``AutoModelForSequenceClassification`` on the checkpoint, loss chosen by ``problem_type`` (multi-label:
  ``multi_label_classification``, labels as float vectors).

Run alone::

    python benchmarks/baseline_run_classification.py --model-name-or-path PATH \\
        --train-file src/frugaltext/datasets/r8/train.jsonl.gz \\
        --test-file src/frugaltext/datasets/r8/test.jsonl.gz \\
        --max-train-docs 300 --epochs 1 --output /tmp/baseline.json

``benchmarks/fast_path.py`` imports :func:`train_baseline` and :func:`predict_logits` by file location.
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

MAX_SEQ_LENGTH = 128  # run_classification.py: DataTrainingArguments.max_seq_length


def read_jsonl(path: str | Path, limit: int | None = None) -> tuple[list[str], list[Any]]:
    """Texts and labels (``label``, else ``labels``) of a JSON Lines file (optionally gzipped)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    texts, labels = [], []
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            row = json.loads(line)
            texts.append(row["text"])
            labels.append(row["label"] if "label" in row else row["labels"])
            if limit is not None and len(texts) >= limit:
                break
    return texts, labels


def train_baseline(model_name_or_path: str, texts: Sequence[str], labels: Sequence[Any],
                   label_names: Sequence[str], multi_label: bool, *, epochs: float = 3.0,
                   batch_size: int = 8, learning_rate: float = 5e-5, seed: int = 42,
                   max_seq_length: int = MAX_SEQ_LENGTH) -> tuple[Any, Any, float]:
    """Fine-tune as ``run_classification.py`` does by default; returns ``(model, tokenizer, duration_s)``
    where the duration covers model loading, tokenisation and training (not evaluation)."""
    import datasets
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        Trainer,
        TrainingArguments,
        default_data_collator,
        set_seed,
    )

    started = time.perf_counter()
    set_seed(seed)
    index = {name: i for i, name in enumerate(label_names)}
    if multi_label:
        encoded = [[1.0 if n in set(row) else 0.0 for n in label_names] for row in labels]
    else:
        encoded = [index[y] for y in labels]
    tokenizer = AutoTokenizer.from_pretrained(model_name_or_path)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_name_or_path, num_labels=len(label_names), id2label=dict(enumerate(label_names)),
        label2id=index, problem_type="multi_label_classification" if multi_label
        else "single_label_classification")
    raw = datasets.Dataset.from_dict({"sentence": list(texts), "label": encoded})

    def preprocess(batch: dict[str, list[Any]]) -> dict[str, Any]:
        out = tokenizer(batch["sentence"], padding="max_length", max_length=max_seq_length, truncation=True)
        out["label"] = batch["label"]
        return out

    train_dataset = raw.map(preprocess, batched=True, remove_columns=["sentence"])
    with tempfile.TemporaryDirectory(prefix="baseline-run-classification-") as out:
        args = TrainingArguments(output_dir=out, num_train_epochs=epochs,
                                 per_device_train_batch_size=batch_size, learning_rate=learning_rate,
                                 seed=seed, save_strategy="no", report_to="none", disable_tqdm=True,
                                 use_cpu=True, logging_strategy="no")
        trainer = Trainer(model=model, args=args, train_dataset=train_dataset,
                          data_collator=default_data_collator, processing_class=tokenizer)
        trainer.train()
    model = trainer.model.eval()
    return model, tokenizer, time.perf_counter() - started


def predict_logits(model: Any, tokenizer: Any, texts: Sequence[str], batch_size: int = 8,
                   max_seq_length: int = MAX_SEQ_LENGTH) -> np.ndarray:
    """Logits ``(n_docs, num_labels)`` with every input padded to ``max_seq_length``, in input order."""
    import torch

    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(list(texts[start:start + batch_size]), padding="max_length",
                              max_length=max_seq_length, truncation=True, return_tensors="pt")
            out.append(model(**batch).logits.float().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.config.num_labels), dtype=np.float32)


def main(argv: list[str] | None = None) -> int:
    """Train on ``--train-file``, predict ``--test-file``, write accuracy and timings as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-name-or-path", required=True)
    parser.add_argument("--train-file", required=True)
    parser.add_argument("--test-file", required=True)
    parser.add_argument("--max-train-docs", type=int, default=None)
    parser.add_argument("--max-test-docs", type=int, default=None)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    texts, labels = read_jsonl(args.train_file, args.max_train_docs)
    test_texts, test_labels = read_jsonl(args.test_file, args.max_test_docs)
    multi_label = isinstance(labels[0], list)
    names = sorted({y for row in labels for y in row} if multi_label else set(labels))
    model, tokenizer, duration_s = train_baseline(
        args.model_name_or_path, texts, labels, names, multi_label, epochs=args.epochs,
        batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed)
    started = time.perf_counter()
    logits = predict_logits(model, tokenizer, test_texts, batch_size=32)
    predict_s = time.perf_counter() - started
    result: dict[str, Any] = {"train_duration_s": duration_s, "n_train": len(texts),
                              "n_test": len(test_texts), "predict_duration_s": predict_s}
    if not multi_label:
        from sklearn.metrics import f1_score

        y_true = [names.index(y) if y in names else -1 for y in test_labels]
        result["macro_f1"] = float(f1_score(y_true, logits.argmax(1), average="macro",
                                            labels=list(range(len(names)))))
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
