"""NVDM against LDA on the same vocabulary (issue 15, item 3): coherence, perplexity, rare-word topics, time.

On one dataset this script builds the bag-of-words vocabulary from the training split (``BowVocabulary``,
min_df 5, at most 5,000 words, as TopicBERT's defaults), then trains

* the NVDM (:func:`frugaltext.topics.training.pretrain_nvdm`: Adam 1e-3, batch 64, early stopping on
  held-out per-document perplexity with patience 5, at most ``--nvdm-epochs``), and
* scikit-learn's LDA (:func:`frugaltext.topics.lda.fit_lda`: online variational Bayes, ``--lda-epochs``
  passes, batch 256, priors 1/K),

both with ``--n-topics`` topics, and reports for each

* held-out perplexity on the validation split, corpus-level ``exp(sum L_d / sum N_d)`` and per-document
  ``exp(mean L_d / N_d)``, both from per-document negative ELBOs computed the same way for the two models
  (for LDA also scikit-learn's own ``perplexity``, which adds a corpus term and is not comparable);
* NPMI of the top-10 words of every topic, strict (a pair that never shares a document scores -1) and
  Lau et al.'s convention (0), against the held-out reference corpus (``--reference``: the test split) and
  the training texts;
* the share of top words found in at least 1% of the reference documents, topic diversity (distinct share of
  all top words) and 5 example topics;

and, for the NVDM, all three rankings of the top words (``decoder`` = the TopicBERT authors',
``standardized``, ``bias_plus_decoder`` with scale 1 and 2; the default is ``bias_plus_decoder``, scale 2).

Example::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/topics.py --data ../shared/data/r8-topicbert \\
        --output benchmarks/results/topics_r8.json
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/topics.py --data ../shared/data/imdb \\
        --max-train-documents 10000 --max-reference-documents 10000 \\
        --output benchmarks/results/topics_imdb.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
from _common import command_line, load_average, machine_info  # noqa: E402  (benchmarks/_common.py)


def _subset(texts: list[str], limit: int | None, seed: int) -> list[str]:
    if limit is None or len(texts) <= limit:
        return texts
    keep = np.sort(np.random.default_rng(seed).permutation(len(texts))[:limit])
    return [texts[i] for i in keep]


def _quality(topics: list[list[str]], vocab: Any, bow_ref: Any, bow_train: Any) -> dict[str, Any]:
    from frugaltext.topics.metrics import mean_npmi, npmi_coherence, top_word_document_share, topic_diversity

    out: dict[str, Any] = {}
    for name, corpus in (("reference", bow_ref), ("train", bow_train)):
        for convention in ("strict", "lau"):
            out[f"npmi_{name}_{convention}"] = mean_npmi(npmi_coherence(topics, corpus, vocab,
                                                                        convention=convention))
    out["top_word_share_1pct"] = top_word_document_share(topics, bow_ref, vocab)
    out["topic_diversity"] = topic_diversity(topics)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the comparison and write the JSON; returns its payload."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="dataset folder or name (load_data)")
    parser.add_argument("--output", required=True, type=Path, help="JSON file to write")
    parser.add_argument("--n-topics", type=int, default=100)
    parser.add_argument("--nvdm-epochs", type=int, default=20)
    parser.add_argument("--lda-epochs", type=int, default=10)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--reference", default="test", choices=("test", "validation", "train"))
    parser.add_argument("--max-train-documents", type=int, default=None)
    parser.add_argument("--max-valid-documents", type=int, default=None)
    parser.add_argument("--max-reference-documents", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: best on a shared 2-core box)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from frugaltext.data import load_data
    from frugaltext.topics.lda import fit_lda, lda_document_bounds, lda_topic_word_scores
    from frugaltext.topics.metrics import (
        document_bounds,
        perplexities_from_bounds,
        top_words,
        top_words_from_scores,
    )
    from frugaltext.topics.training import pretrain_nvdm
    from frugaltext.topics.vocabulary import BowVocabulary

    load_start = load_average()
    data = load_data(args.data)
    train = _subset(list(data.train.texts), args.max_train_documents, args.seed)
    valid = _subset(list(data.validation.texts), args.max_valid_documents, args.seed)
    split = {"test": data.test, "validation": data.validation, "train": data.train}[args.reference]
    reference = _subset(list(split.texts), args.max_reference_documents, args.seed)
    vocab = BowVocabulary(min_df=5, max_size=5000).fit(train)
    bow_train, bow_valid, bow_ref = vocab.transform(train), vocab.transform(valid), vocab.transform(reference)
    print(f"{len(train)} training, {len(valid)} validation, {len(reference)} reference ({args.reference}) "
          f"documents; {len(vocab)} words", flush=True)

    from frugaltext.models.nvdm import NVDMConfig

    start = time.perf_counter()
    model, history = pretrain_nvdm(bow_train, NVDMConfig(vocab_size=len(vocab), n_topics=args.n_topics),
                                   epochs=args.nvdm_epochs, batch_size=64, learning_rate=1e-3,
                                   bow_valid=bow_valid, patience=args.patience, seed=args.seed, progress=True)
    nvdm_s = time.perf_counter() - start
    nvdm_ppl = perplexities_from_bounds(*document_bounds(model, bow_valid, seed=args.seed))
    rankings: dict[str, Any] = {}
    for label, by, scale in (("decoder", "decoder", 2.0), ("standardized", "standardized", 2.0),
                             ("bias_plus_decoder_scale1", "bias_plus_decoder", 1.0),
                             ("bias_plus_decoder_scale2", "bias_plus_decoder", 2.0)):
        topics = top_words(model, vocab, n=10, by=by, scale=scale)
        rankings[label] = {**_quality(topics, vocab, bow_ref, bow_train),
                           "examples": [" ".join(t) for t in topics[:5]]}
    best_epoch = int(min(history, key=lambda r: r["valid_perplexity_per_document"])["epoch"])
    nvdm = {"training_s": nvdm_s, "epochs_run": len(history), "selected_epoch": best_epoch,
            "s_per_epoch": nvdm_s / len(history), "valid_perplexity": nvdm_ppl["corpus"],
            "valid_perplexity_per_document": nvdm_ppl["per_document"], "default_ranking":
            "bias_plus_decoder_scale2", "rankings": rankings,
            "history": [{k: round(v, 3) for k, v in r.items()} for r in history]}

    start = time.perf_counter()
    lda, lda_history = fit_lda(bow_train, args.n_topics, epochs=args.lda_epochs, batch_size=256,
                               seed=args.seed, progress=True)
    lda_s = time.perf_counter() - start
    lda_ppl = perplexities_from_bounds(*lda_document_bounds(lda, bow_valid))
    kept = bow_valid[np.flatnonzero(np.asarray(bow_valid.sum(axis=1)).ravel() > 0)].astype(np.float64)
    lda_topics = top_words_from_scores(lda_topic_word_scores(lda), vocab, n=10)
    lda_row = {"training_s": lda_s, "epochs_run": len(lda_history), "s_per_epoch": lda_s / len(lda_history),
               "valid_perplexity": lda_ppl["corpus"],
               "valid_perplexity_per_document": lda_ppl["per_document"],
               "sklearn_perplexity_not_comparable": float(lda.perplexity(kept)),
               **_quality(lda_topics, vocab, bow_ref, bow_train),
               "examples": [" ".join(t) for t in lda_topics[:5]]}

    payload = {
        "benchmark": "topics",
        "data": args.data,
        "command": command_line(),
        "n_topics": args.n_topics,
        "vocab_size": len(vocab),
        "n_train_documents": len(train),
        "n_valid_documents": len(valid),
        "reference": args.reference,
        "n_reference_documents": len(reference),
        "npmi_note": ("npmi_<corpus>_strict: a top-word pair that never shares a document scores -1 "
                      "(headline); _lau: 0 (Lau et al. 2014). reference = the held-out split named in "
                      "'reference'."),
        "perplexity_note": ("both models: per-document negative ELBO on the validation split; corpus = "
                            "exp(sum L / sum N), per_document = exp(mean L/N). "
                            "sklearn_perplexity_not_comparable adds LDA's corpus-level topic-word term."),
        "nvdm": nvdm,
        "lda": lda_row,
        "machine": machine_info(load_average_start=load_start),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: payload[k] for k in ("n_train_documents", "vocab_size")}), flush=True)
    print(f"NVDM {nvdm_s:.0f} s, LDA {lda_s:.0f} s; wrote {args.output}", flush=True)
    return payload


if __name__ == "__main__":
    main()
