"""HAN: sentence splitting, hierarchical encoding, masking (empty sentences, padding), losses, FLOPs."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from frugaltext.cost.flops import count_flops
from frugaltext.errors import ConfigError
from frugaltext.models.han import (
    HANConfig,
    HANForSequenceClassification,
    encode_hierarchical,
    pad_hierarchical,
    split_sentences,
)
from frugaltext.models.students import WordVocabulary
from frugaltext.training.distillation import distillation_loss

K = 3
DOCS = [[[2, 3, 4], [5, 6]], [[7]], [[8, 9, 10, 11], [12], [13, 14]]]  # the middle one: a single word


def make(multi: bool = False, **kwargs) -> HANForSequenceClassification:
    torch.manual_seed(0)
    params = dict(vocab_size=30, embedding_dim=8, word_hidden_size=5, sentence_hidden_size=4, num_labels=K,
                  problem_type="multi_label_classification" if multi else "single_label_classification")
    params.update(kwargs)
    return HANForSequenceClassification(HANConfig(**params))


def test_split_sentences_with_the_rule_based_sentencizer():
    texts = ["Oil prices rose 5 pct. Wheat fell!  Did the bank act?", "", "   ",
             "One sentence without a stop"]
    assert split_sentences(texts) == [["Oil prices rose 5 pct.", "Wheat fell!", "Did the bank act?"], [], [],
                                      ["One sentence without a stop"]]
    assert split_sentences(texts[:1], max_sentences=2) == [["Oil prices rose 5 pct.", "Wheat fell!"]]
    with pytest.raises(ConfigError, match="max_sentences"):
        split_sentences(texts, max_sentences=0)


def test_encode_hierarchical_splits_or_truncates_and_never_gives_an_empty_document():
    vocab = WordVocabulary.build(["oil prices rose", "wheat fell", "the bank said"])
    oil, prices, rose, wheat, fell = (vocab.index[w] for w in ("oil", "prices", "rose", "wheat", "fell"))
    texts = ["Oil prices rose. ... Wheat fell! The bank said so.", "", "!!!"]
    docs = encode_hierarchical(vocab, texts, max_sentences=2, max_words=2, long_sentences="truncate")
    assert docs[0] == [[oil, prices], [wheat, fell]]  # the punctuation-only sentence is skipped
    assert docs[1] == [[vocab.unk_token_id]] and docs[2] == [[vocab.unk_token_id]]
    # split (default): a long sentence becomes pieces of max_words words
    assert encode_hierarchical(vocab, texts[:1], max_sentences=3, max_words=2) == [[[oil, prices], [rose],
                                                                                   [wheat, fell]]]
    # a text without punctuation (as the packaged Reuters-8) is one sentence, cut into pseudo-sentences
    assert encode_hierarchical(vocab, ["oil prices rose wheat fell"], max_words=2) == [[[oil, prices],
                                                                                      [rose, wheat], [fell]]]
    batch = pad_hierarchical(docs)
    assert batch["input_ids"].shape == (3, 2, 2)
    assert batch["attention_mask"].sum(dim=(1, 2)).tolist() == [4, 1, 1]
    with pytest.raises(ConfigError, match="long_sentences"):
        encode_hierarchical(vocab, texts, long_sentences="drop")


@pytest.mark.parametrize("multi", [False, True])
def test_output_shapes_and_loss(multi):
    model = make(multi)
    labels = torch.tensor([[1.0, 0, 1], [0, 1, 0], [0, 0, 0]]) if multi else torch.tensor([0, 2, 1])
    out = model(**pad_hierarchical(DOCS), labels=labels)
    assert out.logits.shape == (3, K)
    expected = (torch.nn.functional.binary_cross_entropy_with_logits(out.logits, labels) if multi
                else torch.nn.functional.cross_entropy(out.logits, labels))
    torch.testing.assert_close(out.loss, expected)
    assert model(**pad_hierarchical(DOCS)).loss is None


def test_padding_never_changes_a_documents_logits():
    model = make().eval()
    together = model(**pad_hierarchical(DOCS)).logits
    for row, doc in enumerate(DOCS):  # alone: no extra sentences, no extra words
        torch.testing.assert_close(model(**pad_hierarchical([doc])).logits[0], together[row],
                                   rtol=1e-5, atol=1e-6)
    batch = pad_hierarchical(DOCS)
    noisy = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, 17)  # garbage under the mask
    torch.testing.assert_close(model(noisy, batch["attention_mask"]).logits, together, rtol=1e-5, atol=1e-6)


def test_empty_sentences_anywhere_are_ignored_and_empty_documents_work():
    model = make().eval()
    reference = model(**pad_hierarchical(DOCS[:1])).logits
    with_gaps = pad_hierarchical([[[], [2, 3, 4], [], [5, 6], []]])
    torch.testing.assert_close(model(**with_gaps).logits, reference, rtol=1e-5, atol=1e-6)
    empty = model(**pad_hierarchical([[], [[]]])).logits
    assert torch.isfinite(empty).all()
    torch.testing.assert_close(empty[0], empty[1])


def test_distillation_loss_falls_on_a_toy_teacher():
    model = make(distillation_loss="kl", lam=1.0)
    batch = pad_hierarchical(DOCS)
    teacher = torch.tensor([[3.0, -1.0, -1.0], [-1.0, 3.0, -1.0], [-1.0, -1.0, 3.0]])
    labels = torch.tensor([0, -100, 2])
    out = model(**batch, labels=labels, teacher_logits=teacher)
    torch.testing.assert_close(out.loss, distillation_loss("kl", out.logits, teacher, labels, lam=1.0))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(25):
        loss = model(**batch, labels=labels, teacher_logits=teacher).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_count_flops_counts_both_grus():
    model = make().eval()
    flops = count_flops(model, pad_hierarchical([DOCS[0]]))
    e, hw, hs = 8, 5, 4
    words, sentences = 5, 2
    grus = 2 * 2 * 3 * hw * (e + hw) * words + 2 * 2 * 3 * hs * (2 * hw + hs) * sentences  # 2 directions
    assert flops >= grus
    assert count_flops(model, pad_hierarchical([DOCS[0]]), train_step=True) > 2 * flops


def test_save_and_load(tmp_path):
    model = make(id2label={0: "a", 1: "b", 2: "c"}).eval()
    batch = pad_hierarchical(DOCS)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, HANForSequenceClassification)
    torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits)


def test_config_validation_and_input_shape():
    with pytest.raises(ConfigError, match="word_hidden_size"):
        HANConfig(word_hidden_size=0)
    with pytest.raises(ConfigError, match="pad_token_id"):
        HANConfig(vocab_size=5, pad_token_id=7)
    with pytest.raises(ConfigError, match="n_sentences"):
        make()(torch.tensor([[2, 3, 4]]))
