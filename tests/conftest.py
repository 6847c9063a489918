"""Shared fixtures: tiny random BERT and MPNet checkpoints and toy corpora. No network, no real weights."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

WORDS = (
    "the a of and to in stock shares company profit oil crude barrel prices opec wheat grain tonnes "
    "bank rate interest dollar yen trade deficit ship port vessel good bad great awful movie film plot "
    "acting love hate boring fun quarter net loss revenue said mln dlrs pct year market"
).split()

TOY_TEXTS = [
    "company stock shares profit quarter net",
    "oil crude barrel prices opec",
    "wheat grain tonnes trade",
    "bank rate interest dollar yen",
    "profit revenue net loss quarter company",
    "opec oil prices crude barrel said",
    "grain wheat tonnes year market",
    "interest rate bank dollar pct",
]
TOY_LABELS = ["earn", "crude", "grain", "interest", "earn", "crude", "grain", "interest"]


def write_tiny_bert(directory: Path, num_hidden_layers: int = 2, seed: int = 0) -> Path:
    """Write a tiny random BERT checkpoint (hidden 32, 4 heads) with a word-level vocab.txt to
    ``directory``."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(WORDS))]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    # transformers 5: the argument is ``vocab`` (``vocab_file`` is silently ignored and gives an all-[UNK]
    # tokenizer)
    tokenizer = BertTokenizer.from_pretrained(directory, do_lower_case=True)
    tokenizer.save_pretrained(directory)
    if tokenizer.tokenize("oil crude")[0] != "oil":
        raise RuntimeError("tiny tokenizer is broken: words map to [UNK]")
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(directory)
    return directory


def write_tiny_mpnet(directory: Path, num_hidden_layers: int = 3, seed: int = 0) -> Path:
    """Write a tiny random MPNet checkpoint (hidden 32, 4 heads, relative position bias) with a word-level
    vocab.txt and MPNet's special tokens (``<s>`` 0, ``<pad>`` 1 as MPNet's position numbering expects,
    ``</s>`` 2) to ``directory``."""
    import torch
    from transformers import MPNetConfig, MPNetModel, MPNetTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab = ["<s>", "<pad>", "</s>", "[UNK]", "<mask>", *sorted(set(WORDS))]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = MPNetTokenizer.from_pretrained(directory, do_lower_case=True)
    tokenizer.save_pretrained(directory)
    if tokenizer.tokenize("oil crude")[0] != "oil" or tokenizer.pad_token_id != 1:
        raise RuntimeError("tiny MPNet tokenizer is broken: words map to [UNK] or <pad> is not id 1")
    torch.manual_seed(seed)
    config = MPNetConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=130,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    MPNetModel(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A tiny random 2-layer BERT checkpoint directory (built once per test session)."""
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), num_hidden_layers=2)


@pytest.fixture(scope="session")
def tiny_bert4_dir(tmp_path_factory) -> Path:
    """A tiny random 4-layer BERT checkpoint directory (for early exit)."""
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert4"), num_hidden_layers=4)


@pytest.fixture(scope="session")
def tiny_mpnet_dir(tmp_path_factory) -> Path:
    """A tiny random 3-layer MPNet checkpoint directory (for early exit on MPNet)."""
    return write_tiny_mpnet(tmp_path_factory.mktemp("tiny-mpnet"), num_hidden_layers=3)


@pytest.fixture(autouse=True)
def _few_threads():
    """Keep unit tests on one thread: the machine has 2 cores shared with other work. Reset before every
    test, because CLI commands run in-process set torch's threads (``--threads``, default: the CPUs this
    process may use), and a test that compares weights across processes (resume after SIGKILL) needs the
    same thread count in both."""
    import torch

    torch.set_num_threads(1)
    yield
