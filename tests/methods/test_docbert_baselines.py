"""han / xml-cnn methods: 3-D collation, WordPiece and pretrained embeddings, batch independence, loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from frugaltext.cost.meter import CostMeter
from frugaltext.errors import ModelLoadError
from frugaltext.methods import get_method_class, load_model
from frugaltext.methods.docbert_baselines import HierarchicalCollator
from tests.conftest import TOY_LABELS, TOY_TEXTS
from tests.helpers import make_data

FAST = dict(epochs=1, batch_size=4, embedding_dim=8, hidden_size=8, n_filters=4, early_stopping_patience=0,
            show_progress=False)
HAN_FAST = dict(FAST, max_sentences=3, max_words=4)
XML_FAST = dict(FAST, pool_chunks=2, bottleneck_size=8)


def test_hierarchical_collator_pads_sentences_and_words_and_stacks_labels():
    batch = HierarchicalCollator(0)([
        {"input_ids": [[5, 6], [7]], "labels": 1, "teacher_logits": np.array([0.5, 1.0], np.float32)},
        {"input_ids": [[8, 9, 10]], "labels": 0, "teacher_logits": np.array([1.5, 2.0], np.float32)},
    ])
    assert batch["input_ids"].shape == (2, 2, 3) and batch["attention_mask"].sum().item() == 6
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == [1, 0]
    assert batch["teacher_logits"].dtype == torch.float32 and batch["teacher_logits"].shape == (2, 2)


def test_han_reads_long_unpunctuated_texts_as_several_sentences_and_predicts_by_document():
    data = make_data(TOY_TEXTS, TOY_LABELS)
    method = get_method_class("han")(**HAN_FAST).fit(data, CostMeter())
    docs = method._encode(["a b c d e f g h i j"])  # no punctuation: pieces of max_words
    assert [len(s) for s in docs[0]] == [4, 4, 2]
    together = method.predict_proba(TOY_TEXTS, batch_size=8)
    alone = np.concatenate([method.predict_proba([t]) for t in TOY_TEXTS])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,settings", [("han", HAN_FAST), ("xml-cnn", XML_FAST)])
def test_wordpiece_tokens_with_pretrained_embeddings(name, settings, tiny_bert_dir, tmp_path):
    data = make_data(TOY_TEXTS, TOY_LABELS)
    method = get_method_class(name)(tokenizer="wordpiece", embeddings="pretrained",
                                    tokenizer_path=str(tiny_bert_dir), **settings).fit(data, CostMeter())
    assert method.run_details()["embeddings_from"] == str(tiny_bert_dir)
    assert method.model.config.vocab_size == len(method.tokenizer)
    loaded = load_model(method.save(tmp_path / name))
    np.testing.assert_allclose(loaded.predict_proba(TOY_TEXTS), method.predict_proba(TOY_TEXTS), rtol=1e-5,
                               atol=1e-6)


def test_loading_another_models_folder_names_it(tmp_path):
    data = make_data(TOY_TEXTS, TOY_LABELS)
    folder = get_method_class("xml-cnn")(**XML_FAST).fit(data, CostMeter()).save(tmp_path / "xml")
    with pytest.raises(ModelLoadError, match="frugaltext_xml_cnn"):
        get_method_class("han")._load_model(get_method_class("han")(), folder)


def test_xml_cnn_flops_match_the_hand_count(tmp_path):
    data = make_data(TOY_TEXTS, TOY_LABELS)
    method = get_method_class("xml-cnn")(**XML_FAST).fit(data, CostMeter())
    text = TOY_TEXTS[0]
    n_tokens = len(method._encode([text])[0])
    assert method.flops_per_document([text])["flops"] == method.model.flops_per_document(n_tokens)


def test_han_predicts_through_the_fast_path(tmp_path):
    """int8 and bf16 reach HAN's own batching (it overrides ``_logits``): the quantized module predicts."""
    data = make_data(TOY_TEXTS, TOY_LABELS)
    directory = get_method_class("han")(**HAN_FAST).fit(data, CostMeter()).save(tmp_path / "han")
    fp32 = load_model(directory)
    int8 = load_model(directory, quantization="int8")
    calls = []
    quantized = int8.inference_model()
    assert quantized is not int8.model
    quantized.register_forward_hook(lambda module, args, out: calls.append(1))
    logits = int8.predict_logits(TOY_TEXTS)
    assert calls, "the int8 module was not used"
    np.testing.assert_allclose(logits, fp32.predict_logits(TOY_TEXTS), atol=0.1)
    fp32.settings = type(fp32.settings)(**{**fp32.settings.__dict__, "precision": "bf16"})
    np.testing.assert_allclose(fp32.predict_logits(TOY_TEXTS), logits, atol=0.1)
