"""Students: shapes, padding independence, weight drop, persistence, vocabulary, teacher embeddings, FLOPs."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from frugaltext.cost.flops import count_flops
from frugaltext.errors import ConfigError, ModelLoadError
from frugaltext.models.students import (
    ARCHITECTURES,
    StudentConfig,
    StudentForSequenceClassification,
    WordVocabulary,
    embeddings_from_teacher,
)
from frugaltext.training.distillation import distillation_loss
from tests.conftest import TOY_LABELS, TOY_TEXTS

K = 3
LABELS = {0: "a", 1: "b", 2: "c"}


def make(arch: str, multi: bool = False, **kwargs) -> StudentForSequenceClassification:
    torch.manual_seed(0)
    params = dict(architecture=arch, vocab_size=30, embedding_dim=8, hidden_size=6, n_filters=5, num_labels=K,
                  id2label=LABELS,
                  problem_type="multi_label_classification" if multi else "single_label_classification")
    params.update(kwargs)
    return StudentForSequenceClassification(StudentConfig(**params))


def batch():
    """Three documents of lengths 7, 2 and 1, right-padded with [PAD] = 0."""
    ids = torch.tensor([[2, 3, 4, 5, 6, 7, 8], [9, 10, 0, 0, 0, 0, 0], [11, 0, 0, 0, 0, 0, 0]])
    return ids, (ids != 0).long()


@pytest.mark.parametrize("multi", [False, True])
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_output_shapes_and_loss(arch, multi):
    model = make(arch, multi)
    ids, mask = batch()
    labels = torch.tensor([[1.0, 0, 1], [0, 1, 0], [0, 0, 0]]) if multi else torch.tensor([0, 2, 1])
    out = model(ids, mask, labels=labels)
    assert out.logits.shape == (3, K)
    assert out.loss.shape == () and torch.isfinite(out.loss)
    assert model(ids, mask).loss is None
    expected = (torch.nn.functional.binary_cross_entropy_with_logits(out.logits, labels) if multi
                else torch.nn.functional.cross_entropy(out.logits, labels))
    torch.testing.assert_close(out.loss, expected)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_padding_never_changes_a_documents_logits(arch):
    model = make(arch).eval()
    ids, mask = batch()
    together = model(ids, mask).logits
    for row, n in enumerate(mask.sum(1).tolist()):
        alone = model(ids[row:row + 1, :n], mask[row:row + 1, :n]).logits
        torch.testing.assert_close(alone[0], together[row], rtol=1e-5, atol=1e-6)
    # garbage in padded positions does not matter either
    noisy = ids.masked_fill(mask == 0, 17)
    torch.testing.assert_close(model(noisy, mask).logits, together, rtol=1e-5, atol=1e-6)


def test_forward_with_teacher_logits_uses_the_configured_loss():
    ids, mask = batch()
    labels = torch.tensor([0, -100, 1])  # the middle row is an unlabelled augmented copy
    teacher = torch.randn(3, K)
    for kind, extra in (("mse", {"alpha": 0.3}), ("kl", {"lam": 2.0, "temperature": 2.0})):
        model = make("bilstm", distillation_loss=kind, dropout=0.0, **extra).eval()
        out = model(ids, mask, labels=labels, teacher_logits=teacher)
        expected = distillation_loss(kind, out.logits, teacher, labels, alpha=extra.get("alpha", 0.5),
                                     lam=extra.get("lam"), temperature=extra.get("temperature", 1.0))
        torch.testing.assert_close(out.loss, expected)


def test_weight_drop_is_dropconnect_on_recurrent_weights_only_in_training():
    model = make("lstm_reg", dropout=0.0, embed_dropout=0.0, weight_drop=0.5)
    plain_keys = set(make("bilstm").state_dict())
    lstm_keys = {k for k in model.state_dict() if k.startswith("lstm.")}
    assert lstm_keys == {k for k in plain_keys if k.startswith("lstm.")}  # the parameters stay registered
    ids, mask = batch()
    model.train()
    torch.manual_seed(1)
    first = model(ids, mask).logits
    torch.manual_seed(2)
    second = model(ids, mask).logits
    assert not torch.allclose(first, second)  # a fresh mask per forward pass
    model.eval()
    torch.testing.assert_close(model(ids, mask).logits, model(ids, mask).logits)
    model.train()
    model(ids, mask, labels=torch.tensor([0, 1, 2])).loss.backward()
    assert model.lstm.weight_hh_l0.grad is not None and model.lstm.weight_hh_l0.grad.abs().sum() > 0
    assert model.lstm.weight_hh_l0_reverse.grad.abs().sum() > 0
    # no weight drop: training and eval agree when every dropout is 0
    plain = make("lstm_reg", dropout=0.0, embed_dropout=0.0, weight_drop=0.0)
    torch.testing.assert_close(plain.train()(ids, mask).logits, plain.eval()(ids, mask).logits)


def test_embedding_dropout_drops_whole_word_types():
    model = make("lstm_reg", embed_dropout=0.5).train()
    ids = torch.tensor([[3, 4, 3, 4, 3, 4, 5, 6, 7, 8, 9, 10]])
    torch.manual_seed(0)
    embedded = model._embed(ids)[0]
    weight = model.embeddings.weight
    for position, token in enumerate(ids[0].tolist()):
        row = embedded[position]
        assert torch.allclose(row, torch.zeros_like(row)) or torch.allclose(row, weight[token] * 2.0)
    # every occurrence of a word type gets the same fate
    torch.testing.assert_close(embedded[0], embedded[2])
    torch.testing.assert_close(embedded[1], embedded[3])


def test_regularisation_defaults_by_architecture_and_validation():
    reg = StudentConfig(architecture="lstm_reg")
    assert (reg.embed_dropout, reg.weight_drop) == (0.2, 0.1)
    assert StudentConfig(architecture="bilstm").embed_dropout == 0
    assert StudentConfig(architecture="cnn").weight_drop == 0
    with pytest.raises(ConfigError, match=r"architecture must be one of .*'bilstm'.*got 'gru'"):
        StudentConfig(architecture="gru")
    with pytest.raises(ConfigError, match=r"dropout must be in \[0, 1\), got 1.0"):
        StudentConfig(dropout=1.0)
    with pytest.raises(ConfigError, match="weight_drop applies to the LSTM's recurrent weights; the cnn has"):
        StudentConfig(architecture="cnn", weight_drop=0.1)
    with pytest.raises(ConfigError, match="distillation_loss must be one of"):
        StudentConfig(distillation_loss="cosine")
    with pytest.raises(ConfigError, match="pad_token_id 5 is outside the vocabulary"):
        StudentConfig(vocab_size=5, pad_token_id=5)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_save_pretrained_round_trip_gives_identical_logits(arch, tmp_path):
    model = make(arch, multi=arch == "cnn").eval()
    ids, mask = batch()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "frugaltext_student"
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert type(loaded) is StudentForSequenceClassification
    assert loaded.config.architecture == arch and loaded.config.id2label == LABELS
    torch.testing.assert_close(loaded(ids, mask).logits, model(ids, mask).logits, rtol=0, atol=0)


def test_training_loss_falls():
    vocab = WordVocabulary.build(TOY_TEXTS)
    ids = [vocab.encode(t) for t in TOY_TEXTS]
    n = max(map(len, ids))
    input_ids = torch.tensor([t + [0] * (n - len(t)) for t in ids])
    mask = (input_ids != 0).long()
    names = sorted(set(TOY_LABELS))
    labels = torch.tensor([names.index(y) for y in TOY_LABELS])
    torch.manual_seed(0)
    model = StudentForSequenceClassification(StudentConfig(
        architecture="bilstm_attn", vocab_size=len(vocab), embedding_dim=16, hidden_size=16, num_labels=4))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        loss = model(input_ids, mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# ---- word vocabulary ------------------------------------------------------------------------------
def test_word_vocabulary_build_encode_and_limits(tmp_path):
    texts = ["Oil oil OIL prices, prices!", "wheat oil", "U.S. wheat"]
    vocab = WordVocabulary.build(texts)
    assert vocab.tokens[:4] == ["[PAD]", "[UNK]", "oil", "prices"]  # by frequency, then alphabetically
    assert vocab.tokenize("Oil-prices [MASK] can't") == ["oil", "prices", "[UNK]", "can't"]
    assert vocab.encode("oil [MASK] zebra", max_length=2) == [vocab.index["oil"], 1]
    assert vocab.encode("!!!") == [1]  # never empty
    assert WordVocabulary.build(texts, min_freq=2).tokens == ["[PAD]", "[UNK]", "oil", "prices", "wheat"]
    assert WordVocabulary.build(texts, max_size=1).tokens == ["[PAD]", "[UNK]", "oil"]
    path = vocab.save(tmp_path / "vocab.json")
    loaded = WordVocabulary.load(path)
    assert loaded.tokens == vocab.tokens and loaded.encode_batch(texts) == vocab.encode_batch(texts)
    (tmp_path / "bad.json").write_text('{"tokens": ["a"]}')
    with pytest.raises(ModelLoadError, match="not a frugaltext word vocabulary"):
        WordVocabulary.load(tmp_path / "bad.json")
    with pytest.raises(ModelLoadError, match="word vocabulary file is missing"):
        WordVocabulary.load(tmp_path / "absent.json")
    with pytest.raises(ConfigError, match="min_freq must be >= 1"):
        WordVocabulary.build(texts, min_freq=0)


# ---- embeddings from a teacher -----------------------------------------------------------------------
def test_embeddings_from_teacher_copy_project_and_pad():
    torch.manual_seed(0)
    same = torch.randn(10, 4)
    out = embeddings_from_teacher(same, 4, pad_token_id=0)
    assert torch.equal(out[1:], same[1:]) and torch.equal(out[0], torch.zeros(4))
    # rows that lie in a 3-d subspace of a 12-d space: the projection keeps their geometry up to one scale
    basis = torch.linalg.qr(torch.randn(12, 3)).Q.T  # (3, 12), orthonormal rows
    teacher = torch.randn(20, 3) @ basis + 0.5
    projected = embeddings_from_teacher(teacher, 3, pad_token_id=None)
    assert projected.shape == (20, 3)
    ratio = torch.cdist(projected, projected)[~torch.eye(20, dtype=bool)] / torch.cdist(teacher, teacher)[
        ~torch.eye(20, dtype=bool)]
    torch.testing.assert_close(ratio, torch.full_like(ratio, ratio.mean().item()), rtol=1e-3, atol=1e-4)
    assert projected.std().item() == pytest.approx(teacher.std().item(), rel=1e-4)
    fill = torch.ones(10, 6)
    widened = embeddings_from_teacher(same, 6, pad_token_id=0, fill=fill)
    assert torch.equal(widened[1:, :4], same[1:]) and torch.equal(widened[1:, 4:], fill[1:, 4:])


# ---- FLOPs ----------------------------------------------------------------------------------------
def test_flops_of_the_lstm_are_counted_for_single_documents_and_batches():
    model = make("bilstm").eval()  # E = 8, H = 6, K = 3
    lstm_per_token = 2 * 2 * 4 * 6 * (8 + 6)  # two directions, input and recurrent products
    head = 2 * 12 * K
    ids, mask = batch()
    assert count_flops(model, {"input_ids": ids[:1], "attention_mask": mask[:1]}) == 7 * lstm_per_token + head
    # a batch of unequal lengths runs as plain matrix products: only real tokens are computed and counted
    assert count_flops(model, {"input_ids": ids, "attention_mask": mask}) == 10 * lstm_per_token + 3 * head
    one = {"input_ids": ids[:1], "attention_mask": mask[:1], "labels": torch.tensor([0])}
    assert count_flops(model, one, train_step=True) == 3 * (7 * lstm_per_token + head)
    cnn = make("cnn").eval()  # widths 3, 4, 5 with 5 maps over 7 tokens
    expected = sum(2 * (7 - w + 1) * 5 * 8 * w for w in (3, 4, 5)) + 2 * 15 * K
    assert count_flops(cnn, {"input_ids": ids[:1], "attention_mask": mask[:1]}) == expected
