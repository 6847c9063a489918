"""Static-embedding classifier: pooling as model2vec, padding, model2vec-format save/load, distillation."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from model2vec import StaticModel
from safetensors import safe_open
from safetensors.torch import load_file
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.normalizers import Lowercase
from tokenizers.pre_tokenizers import Whitespace
from transformers import AutoModelForSequenceClassification

from frugaltext.cost.flops import count_flops
from frugaltext.errors import ConfigError, ModelLoadError
from frugaltext.models.static import (
    STATIC_SUBFOLDER,
    StaticConfig,
    StaticForSequenceClassification,
    StaticTokenizer,
    distill_static_embeddings,
    static_vectors,
)
from frugaltext.training.distillation import distillation_loss
from frugaltext.training.lazy_adam import LazyAdam
from tests.conftest import TOY_LABELS, TOY_TEXTS, WORDS, write_tiny_bert

K = 3
TEXTS = ["Oil crude barrel", "wheat", "", "bank rate interest dollar yen qwerty", "zzz unknown"]


def tiny_static_model(dim: int = 6, seed: int = 0) -> StaticModel:
    """A word-level StaticModel over the toy vocabulary with random vectors (no distillation)."""
    vocab = ["[PAD]", "[UNK]", *sorted(set(WORDS))]
    tokenizer = Tokenizer(WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tokenizer.normalizer = Lowercase()
    tokenizer.pre_tokenizer = Whitespace()
    vectors = np.random.RandomState(seed).randn(len(vocab), dim).astype(np.float32)
    return StaticModel(vectors=vectors, tokenizer=tokenizer, normalize=True)


def make(multi: bool = False, **kwargs) -> StaticForSequenceClassification:
    torch.manual_seed(0)
    problem = "multi_label_classification" if multi else "single_label_classification"
    return StaticForSequenceClassification.from_static_model(tiny_static_model(), num_labels=K,
                                                             problem_type=problem, **kwargs)


def test_frozen_pooling_is_model2vecs_encode_and_unknown_words_are_dropped():
    static = tiny_static_model()
    model = StaticForSequenceClassification.from_static_model(static, num_labels=K).eval()
    tokenizer = model.get_tokenizer()
    assert tokenizer.encode_batch(TEXTS) == static.tokenize(TEXTS)
    batch = tokenizer(TEXTS)
    assert batch["input_ids"].shape[0] == len(TEXTS)
    assert batch["attention_mask"][2].sum() == 0 and batch["attention_mask"][4].sum() == 0  # no known token
    assert batch["attention_mask"][3].sum() == 5  # "qwerty" ([UNK]) dropped, as model2vec does
    with torch.no_grad():
        pooled = model.pool(**batch).numpy()
    np.testing.assert_allclose(pooled, static.encode(TEXTS), rtol=1e-5, atol=1e-6)
    # a document without tokens is the zero vector: its logits are the bias
    logits = model(**batch).logits
    torch.testing.assert_close(logits[2], model.classifier.bias)


def test_padding_and_batch_composition_never_change_a_documents_logits():
    model = make(hidden_size=5).eval()
    tokenizer = model.get_tokenizer()
    together = model(**tokenizer(TEXTS)).logits
    for row, text in enumerate(TEXTS):
        torch.testing.assert_close(model(**tokenizer([text])).logits[0], together[row], rtol=1e-5, atol=1e-6)
    batch = tokenizer(TEXTS)
    noisy = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, 7)
    torch.testing.assert_close(model(noisy, batch["attention_mask"]).logits, together, rtol=1e-5, atol=1e-6)


def test_truncation_keeps_the_first_max_length_tokens():
    tokenizer = StaticTokenizer(tiny_static_model().tokenizer, max_length=2)
    assert tokenizer.encode_batch(["oil crude barrel prices"]) == tokenizer.encode_batch(["oil crude"])
    assert tokenizer.encode_batch([]) == [] and tokenizer([])["input_ids"].shape == (0, 1)
    with pytest.raises(ConfigError, match="max_length"):
        StaticTokenizer(tiny_static_model().tokenizer, max_length=0)


@pytest.mark.parametrize("multi", [False, True])
def test_losses_single_and_multi_label(multi):
    model = make(multi).eval()
    batch = model.get_tokenizer()(TEXTS[:3])
    labels = torch.tensor([[1.0, 0, 1], [0, 1, 0], [0, 0, 0]]) if multi else torch.tensor([0, 2, 1])
    out = model(**batch, labels=labels)
    expected = (torch.nn.functional.binary_cross_entropy_with_logits(out.logits, labels) if multi
                else torch.nn.functional.cross_entropy(out.logits, labels))
    torch.testing.assert_close(out.loss, expected)
    assert model(**batch).loss is None
    teacher = torch.randn(3, K)
    kl = make(multi, distillation_loss="kl", lam=2.0, temperature=3.0).eval()
    out = kl(**batch, labels=labels, teacher_logits=teacher)
    torch.testing.assert_close(out.loss, distillation_loss("kl", out.logits, teacher, labels, lam=2.0,
                                                           temperature=3.0, multi_label=multi))


def test_distillation_loss_falls_on_a_toy_teacher():
    model = make(hidden_size=8)
    tokenizer = model.get_tokenizer()
    batch = tokenizer(TOY_TEXTS)
    names = sorted(set(TOY_LABELS))
    labels = torch.tensor([names.index(y) for y in TOY_LABELS]) % K
    teacher = 4.0 * torch.nn.functional.one_hot(labels, K).float() - 2.0
    unlabelled = labels.clone()
    unlabelled[::2] = -100  # augmented copies: teacher only
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(30):
        loss = model(**batch, labels=unlabelled, teacher_logits=teacher).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_sparse_gradients_hold_only_the_batch_rows_equal_the_dense_ones_and_the_loss_falls():
    sparse, dense = make(sparse_gradients=True), make()
    batch = sparse.get_tokenizer()(TOY_TEXTS)
    names = sorted(set(TOY_LABELS))
    labels = torch.tensor([names.index(y) for y in TOY_LABELS]) % K
    for model in (sparse, dense):
        model(**batch, labels=labels).loss.backward()
    grad = sparse.embeddings.weight.grad
    assert grad.is_sparse and not dense.embeddings.weight.grad.is_sparse
    used = set(batch["input_ids"][batch["attention_mask"].bool()].tolist())
    assert set(grad.coalesce().indices()[0].tolist()) == used  # no pad row, no unused row
    torch.testing.assert_close(grad.to_dense(), dense.embeddings.weight.grad)
    torch.testing.assert_close(sparse.classifier.weight.grad, dense.classifier.weight.grad)
    model = make(sparse_gradients=True)
    optimizer = LazyAdam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(30):
        loss = model(**batch, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_flat_batches_give_the_padded_forwards_logits():
    model = make(hidden_size=5).eval()
    tokenizer = model.get_tokenizer()
    expected = model(**tokenizer(TEXTS)).logits
    ids, lengths = tokenizer.encode_flat(TEXTS)
    offsets = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)[:-1]]))
    torch.testing.assert_close(model.logits_flat(torch.from_numpy(ids), offsets), expected)
    with pytest.raises(ConfigError, match="vectors of shape"):
        StaticForSequenceClassification(model.config, vectors=torch.zeros(2, 2))


def test_freeze_embeddings_trains_the_head_only():
    model = make(freeze_embeddings=True)
    before = model.embeddings.weight.detach().clone()
    batch = model.get_tokenizer()(TEXTS[:2])
    model(**batch, labels=torch.tensor([0, 1])).loss.backward()
    assert model.embeddings.weight.grad is None and model.classifier.weight.grad is not None
    torch.testing.assert_close(model.embeddings.weight, before)
    assert make().embeddings.weight.requires_grad  # fine-tuned by default


def test_save_load_round_trip_in_model2vec_format(tmp_path):
    model = make(hidden_size=4, id2label={0: "a", 1: "b", 2: "c"})
    with torch.no_grad():  # as if fine-tuned: the saved vectors must be the current ones
        model.embeddings.weight.mul_(2.0)
    model.eval()
    batch = model.get_tokenizer()(TEXTS)
    expected = model(**batch).logits
    model.save_pretrained(tmp_path)
    assert (tmp_path / STATIC_SUBFOLDER / "tokenizer.json").is_file()
    with safe_open(tmp_path / "model.safetensors", "pt") as f:
        assert "embeddings.weight" not in f.keys()  # the vectors are stored once, in model2vec's format
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, StaticForSequenceClassification)
    assert loaded.config.id2label == {0: "a", 1: "b", 2: "c"} and loaded.config.hidden_size == 4
    torch.testing.assert_close(loaded(**StaticTokenizer.from_pretrained(tmp_path)(TEXTS)).logits, expected)
    static = StaticModel.from_pretrained(tmp_path / STATIC_SUBFOLDER)
    torch.testing.assert_close(static_vectors(static), model.embeddings.weight.detach())
    np.testing.assert_allclose(static.encode(TEXTS), model.pool(**batch).detach().numpy(), rtol=1e-5,
                               atol=1e-6)


def test_trainer_checkpoints_keep_the_vectors_so_the_best_one_restores_them(tmp_path):
    model = make()
    best = {k: v.clone() for k, v in model.state_dict().items()}
    model.save_pretrained(tmp_path, state_dict=model.state_dict())  # as Trainer._save does
    assert not (tmp_path / STATIC_SUBFOLDER).exists()
    with torch.no_grad():  # later epochs change the vectors
        model.embeddings.weight.add_(1.0)
    model.load_state_dict(load_file(tmp_path / "model.safetensors"), False)  # as Trainer._load_best_model
    torch.testing.assert_close(model.embeddings.weight, best["embeddings.weight"])
    loaded = StaticForSequenceClassification.from_pretrained(tmp_path)
    torch.testing.assert_close(loaded.embeddings.weight, best["embeddings.weight"])


def test_loading_without_the_vectors_fails_clearly(tmp_path):
    make().save_pretrained(tmp_path)
    shutil.rmtree(tmp_path / STATIC_SUBFOLDER)
    with pytest.raises(ModelLoadError, match="token vectors are missing"):
        StaticForSequenceClassification.from_pretrained(tmp_path)


def test_a_model_without_tokenizer_saves_its_vectors_like_any_transformers_model(tmp_path):
    torch.manual_seed(0)
    model = StaticForSequenceClassification(StaticConfig(vocab_size=20, embedding_dim=4, num_labels=2)).eval()
    ids = torch.tensor([[3, 4, 5]])
    model.save_pretrained(tmp_path)
    assert not (tmp_path / STATIC_SUBFOLDER).exists()
    loaded = StaticForSequenceClassification.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(loaded(ids).logits, model(ids).logits)
    with pytest.raises(ConfigError, match="tokenizer"):
        model.get_tokenizer()


def test_flops_per_document_match_count_flops():
    for hidden in (0, 5):
        model = make(hidden_size=hidden).eval()
        batch = model.get_tokenizer()(["oil crude barrel prices"])
        assert count_flops(model, batch) == model.flops_per_document(4)
        assert model.flops_per_document(4) == 2 * 4 * 6 + (2 * 6 * 5 + 2 * 5 * K if hidden else 2 * 6 * K)


def test_config_validation():
    with pytest.raises(ConfigError, match="hidden_size"):
        StaticConfig(hidden_size=-1)
    with pytest.raises(ConfigError, match="dropout"):
        StaticConfig(dropout=1.0)
    with pytest.raises(ConfigError, match="problem_type"):
        StaticConfig(problem_type="regression")
    with pytest.raises(ConfigError, match="distillation_loss"):
        StaticConfig(distillation_loss="cosine")


def test_distillation_from_a_local_encoder_is_cached(tmp_path):
    bert = write_tiny_bert(tmp_path / "bert")
    first = distill_static_embeddings(bert, pca_dims=8, cache_dir=tmp_path / "cache")
    assert first.embedding.shape[1] == 8 and first.embedding.dtype == np.float32
    assert first.config["frugaltext"]["from_cache"] is False
    second = distill_static_embeddings(bert, pca_dims=8, cache_dir=tmp_path / "cache")
    assert second.config["frugaltext"]["from_cache"] is True
    np.testing.assert_array_equal(second.embedding, first.embedding)
    assert second.tokenize(["oil crude"]) == first.tokenize(["oil crude"])
    other = distill_static_embeddings(bert, pca_dims=4, cache_dir=tmp_path / "cache")  # other settings
    assert other.config["frugaltext"]["from_cache"] is False and other.embedding.shape[1] == 4
    entries = [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]
    assert len(entries) == 2
    info = json.loads((entries[0] / "frugaltext_cache.json").read_text())
    assert info["encoder_path"] == str(bert.resolve()) and info["distill_duration_s"] > 0


def test_distillation_needs_a_local_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="config.json"):
        distill_static_embeddings(tmp_path / "missing", cache_dir=tmp_path / "cache")
    with pytest.raises(ConfigError, match="pca_dims"):
        distill_static_embeddings(write_tiny_bert(tmp_path / "bert"), pca_dims=0, cache_dir=tmp_path)


@pytest.mark.slow
def test_packaged_minilm_distils_to_a_256_dim_table(tmp_path):
    static = distill_static_embeddings(pca_dims=256, cache_dir=tmp_path)
    assert static.embedding.shape == (29525, 256)
    model = StaticForSequenceClassification.from_static_model(static, num_labels=2).eval()
    batch = model.get_tokenizer()(["Crude oil prices rose sharply.", "The bank raised its rate."])
    np.testing.assert_allclose(model.pool(**batch).detach().numpy(),
                               static.encode(["Crude oil prices rose sharply.", "The bank raised its rate."]),
                               rtol=1e-4, atol=1e-5)
