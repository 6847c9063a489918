import numpy as np
import pytest
import torch

from frugaltext.data.collate import PadCollator
from frugaltext.errors import ConfigError, DataFormatError
from frugaltext.models.nvdm import NVDM, BowVocabulary, NVDMConfig
from frugaltext.models.topicbert import (
    PartitionDataset,
    TopicBertConfig,
    TopicBertForSequenceClassification,
    combine_partitions,
    encode_partitions,
    partition_token_ids,
)
from tests.conftest import TOY_TEXTS

LABELS = {0: "crude", 1: "earn", 2: "grain", 3: "interest"}
TOY_Y = [1, 0, 2, 3, 1, 0, 2, 3]


# ---- partitions ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_tokens", [1, 5, 6, 7, 11, 12, 13, 30])
@pytest.mark.parametrize("p", [2, 3, 4])
def test_partitions_cover_the_truncated_document(n_tokens, p):
    max_length = 4 * p + 2 * p  # x = 4 content tokens per partition, plus [CLS] and [SEP]
    ids = list(range(100, 100 + n_tokens))
    parts = partition_token_ids(ids, p, max_length)
    kept = ids[: 4 * p]
    assert 1 <= len(parts) <= p
    assert all(len(part) <= 4 for part in parts)
    assert sorted(set(t for part in parts for t in part)) == kept  # whole truncated document covered
    assert parts[-1][-1] == kept[-1]  # the last partition ends at the document's end
    if len(kept) > 4:
        assert all(len(part) == 4 for part in parts)  # no partition needs padding
        assert parts[-1] == kept[-4:]
        for a, b in zip(parts[:-2], parts[1:-1], strict=True):  # consecutive, non-overlapping before the last
            assert a[-1] + 1 == b[0]


def test_short_documents_give_one_partition_and_p1_is_identity():
    ids = [7, 8, 9]
    assert partition_token_ids(ids, 4, 64) == [ids]
    assert partition_token_ids(ids, 1, 64) == [ids]
    long_ids = list(range(200))
    assert partition_token_ids(long_ids, 1, 64) == [long_ids[:62]]  # head truncation, as BERT's
    assert partition_token_ids([], 2, 16) == [[]]


def test_partition_errors():
    with pytest.raises(ConfigError, match="not enough for 2 special tokens"):
        partition_token_ids([1, 2, 3], 8, 16)
    with pytest.raises(ConfigError, match="n_partitions must be a positive integer"):
        partition_token_ids([1, 2, 3], 0, 16)


def test_encode_partitions_adds_special_tokens(tiny_bert_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    text = "oil crude barrel prices opec wheat grain tonnes trade bank"  # 10 word-level tokens
    rows, doc_index = encode_partitions(tok, [text, "oil"], n_partitions=2, max_length=12)
    assert [len(r) for r in rows] == [6, 6, 3]
    assert doc_index.tolist() == [0, 0, 1]
    assert all(r[0] == tok.cls_token_id and r[-1] == tok.sep_token_id for r in rows)
    words = tok.convert_ids_to_tokens(rows[0][1:-1] + rows[1][1:-1])
    assert words == text.split()[:8]


def test_combine_partitions_is_the_mean():
    values = np.array([[0.2, 0.8], [0.6, 0.4], [1.0, 0.0]])
    np.testing.assert_allclose(combine_partitions(values, np.array([0, 0, 1]), 2), [[0.4, 0.6], [1.0, 0.0]])
    with pytest.raises(DataFormatError, match="at least one partition"):
        combine_partitions(values, np.array([0, 0, 2]), 3)


# ---- model ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vocab():
    return BowVocabulary().fit(TOY_TEXTS)


def build(tiny_bert_dir, vocab, **kwargs):
    torch.manual_seed(0)
    nvdm = NVDM(NVDMConfig(vocab_size=len(vocab), hidden_size=8, n_topics=4))
    defaults = dict(num_labels=4, id2label=LABELS, label2id={v: k for k, v in LABELS.items()},
                    problem_type="single_label_classification", max_seq_length=16)
    return TopicBertForSequenceClassification.from_encoder_and_nvdm(tiny_bert_dir, nvdm, vocab,
                                                                    **{**defaults, **kwargs})


def batch_for(tiny_bert_dir, vocab, n_partitions=1, labels=None, max_length=16):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    rows, doc_index = encode_partitions(tok, TOY_TEXTS, n_partitions, max_length)
    y = labels if labels is not None else TOY_Y
    dataset = PartitionDataset(rows, doc_index, vocab.transform(TOY_TEXTS), list(y))
    return PadCollator(tok.pad_token_id)([dataset[i] for i in range(len(dataset))]), doc_index


def test_forward_shapes_and_joint_loss(tiny_bert_dir, vocab):
    model = build(tiny_bert_dir, vocab, alpha=0.7).eval()
    batch, _ = batch_for(tiny_bert_dir, vocab)
    out = model(**batch)
    assert out.logits.shape == (8, 4) and out.h_tm.shape == (8, 4)
    torch.testing.assert_close(out.loss, 0.7 * out.ce_loss + 0.3 * out.topic_loss)
    torch.testing.assert_close(out.ce_loss, torch.nn.functional.cross_entropy(out.logits, batch["labels"]))
    assert model(**{k: v for k, v in batch.items() if k != "labels"}).loss is None


def test_alpha_one_is_exactly_cross_entropy(tiny_bert_dir, vocab):
    model = build(tiny_bert_dir, vocab, alpha=1.0).eval()
    batch, _ = batch_for(tiny_bert_dir, vocab)
    out = model(**batch)
    assert out.topic_loss > 0
    assert torch.equal(out.loss, out.ce_loss)


def test_bow_is_required(tiny_bert_dir, vocab):
    model = build(tiny_bert_dir, vocab).eval()
    batch, _ = batch_for(tiny_bert_dir, vocab)
    with pytest.raises(DataFormatError, match="bow is required"):
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    with pytest.raises(DataFormatError, match="one bag of words per row"):
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], bow=batch["bow"][:2])


def test_partitions_train_with_the_document_bag_of_words(tiny_bert_dir, vocab):
    batch, doc_index = batch_for(tiny_bert_dir, vocab, n_partitions=2, max_length=12)
    assert batch["input_ids"].shape[1] == 6  # x = 12 / 2
    assert len(doc_index) > 8  # some documents have two partitions
    full = torch.from_numpy(vocab.transform(TOY_TEXTS).toarray())
    torch.testing.assert_close(batch["bow"], full[torch.from_numpy(doc_index)])
    torch.testing.assert_close(batch["labels"], torch.tensor(TOY_Y)[torch.from_numpy(doc_index)])


def test_save_load_round_trip_identical_logits(tiny_bert_dir, vocab, tmp_path):
    from transformers import AutoConfig, AutoModelForSequenceClassification

    model = build(tiny_bert_dir, vocab, n_partitions=2, alpha=0.5).eval()
    batch, _ = batch_for(tiny_bert_dir, vocab, n_partitions=2, max_length=12)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "bow_vocabulary.json").is_file()
    assert not list(tmp_path.glob("*.bin"))
    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, TopicBertConfig)
    assert (config.alpha, config.n_partitions, config.nvdm.n_topics) == (0.5, 2, 4)
    assert config.id2label == LABELS
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert type(loaded) is TopicBertForSequenceClassification
    assert loaded.bow_vocabulary.words_ == vocab.words_
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits, rtol=0, atol=0)


def test_multi_label_uses_bce(tiny_bert_dir, vocab):
    model = build(tiny_bert_dir, vocab, problem_type="multi_label_classification", alpha=1.0).eval()
    y = np.zeros((8, 4), dtype=np.float32)
    y[np.arange(8), TOY_Y] = 1.0
    y[2, 3] = 1.0
    batch, _ = batch_for(tiny_bert_dir, vocab, labels=list(y))
    assert batch["labels"].dtype == torch.float32 and batch["labels"].shape == (8, 4)
    out = model(**batch)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(out.logits, batch["labels"])
    torch.testing.assert_close(out.loss, expected)


def test_loss_falls_when_training(tiny_bert_dir, vocab):
    model = build(tiny_bert_dir, vocab, alpha=0.9, classifier_dropout=0.0)
    batch, _ = batch_for(tiny_bert_dir, vocab)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    first = None
    for _ in range(20):
        out = model(**batch)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        first = first if first is not None else float(out.ce_loss.detach())
    model.eval()
    with torch.no_grad():
        assert float(model(**batch).ce_loss) < 0.5 * first


def test_config_validation():
    with pytest.raises(ConfigError, match="alpha must be in"):
        TopicBertConfig(alpha=1.5)
    with pytest.raises(ConfigError, match="not enough for 2 special tokens"):
        TopicBertConfig(n_partitions=8, max_seq_length=16)
    with pytest.raises(ConfigError, match="regression"):
        TopicBertConfig(problem_type="regression")
