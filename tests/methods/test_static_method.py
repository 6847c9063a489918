"""static / scratch-static / distill-static: model2vec round trip, vectors from an encoder, teacher rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from model2vec import StaticModel

from frugaltext.cost.meter import CostMeter
from frugaltext.errors import ConfigError, ModelLoadError
from frugaltext.methods import get_method_class, load_model
from frugaltext.models.static import STATIC_SUBFOLDER
from tests.conftest import TOY_LABELS, TOY_TEXTS
from tests.helpers import make_data
from tests.models.test_static import tiny_static_model

FAST = dict(epochs=2, batch_size=4, early_stopping_patience=0, show_progress=False)


@pytest.fixture(scope="module")
def static_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("m2v") / "tiny"
    tiny_static_model(dim=6).save_pretrained(folder)
    return str(folder)


def test_saved_vectors_load_in_model2vec_and_encode_as_the_classifier_pools(static_dir, tmp_path):
    data = make_data(TOY_TEXTS, TOY_LABELS)
    method = get_method_class("static")(model_name_or_path=static_dir, **FAST).fit(data, CostMeter())
    folder = method.save(tmp_path / "static")
    embedding = StaticModel.from_pretrained(folder / STATIC_SUBFOLDER, force_download=False)
    with torch.no_grad():
        pooled = method.model.pool(**method.tokenizer(TOY_TEXTS)).numpy()
    np.testing.assert_allclose(embedding.encode(TOY_TEXTS), pooled, rtol=1e-5, atol=1e-6)
    # the vectors were fine-tuned: they differ from the StaticModel we started from
    assert not np.allclose(embedding.encode(TOY_TEXTS),
                           StaticModel.from_pretrained(static_dir, force_download=False).encode(TOY_TEXTS))
    loaded = load_model(folder)
    np.testing.assert_allclose(loaded.predict_proba(TOY_TEXTS), method.predict_proba(TOY_TEXTS), rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("sparse_gradients", [True, False])
def test_sparse_and_dense_training_learn_and_predictions_do_not_depend_on_the_batch(static_dir,
                                                                                    sparse_gradients):
    data = make_data(TOY_TEXTS, TOY_LABELS)
    method = get_method_class("static")(model_name_or_path=static_dir, sparse_gradients=sparse_gradients,
                                        learning_rate=0.05, **dict(FAST, epochs=8))
    method.fit(data, CostMeter())
    assert method.model.config.sparse_gradients is sparse_gradients
    losses = [row["loss"] for row in method.train_history if "loss" in row]
    assert losses[-1] < losses[0]
    texts = TOY_TEXTS + ["", "zzz unknown words only", TOY_TEXTS[0] + " " + TOY_TEXTS[1]]
    logits = method.predict_logits(texts, batch_size=32)
    for batch_size in (1, 2, 5):
        np.testing.assert_allclose(method.predict_logits(texts, batch_size=batch_size), logits, rtol=1e-5,
                                   atol=1e-6)
    with torch.no_grad():  # the flat fast path = the padded forward the Trainer runs
        padded = method.model(**method.tokenizer(texts)).logits.numpy()
    np.testing.assert_allclose(logits, padded, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logits[len(TOY_TEXTS)], method.model.classifier.bias.detach().numpy(),
                               rtol=1e-5, atol=1e-6)  # no token: the bias
    assert method.predict_logits([], batch_size=4).shape == (0, len(method.label_names))
    with pytest.raises(ConfigError, match="batch_size"):
        method.predict_logits(texts, batch_size=0)


def test_frozen_vectors_stay_those_of_the_static_model(static_dir):
    data = make_data(TOY_TEXTS, TOY_LABELS)
    method = get_method_class("static")(model_name_or_path=static_dir, freeze_embeddings=True,
                                        **FAST).fit(data, CostMeter())
    start = StaticModel.from_pretrained(static_dir, force_download=False)
    np.testing.assert_allclose(method.model.to_static_model().encode(TOY_TEXTS), start.encode(TOY_TEXTS),
                               rtol=1e-5, atol=1e-6)


def test_vectors_are_distilled_from_a_local_encoder_and_cached(tiny_bert_dir, tmp_path):
    data = make_data(TOY_TEXTS, TOY_LABELS)
    settings = dict(model_name_or_path=str(tiny_bert_dir), pca_dims=8, static_cache_dir=str(tmp_path), **FAST)
    first = get_method_class("static")(**settings).fit(data, CostMeter())
    assert first.model.config.embedding_dim == 8
    assert first.run_details()["static_from_cache"] is False
    assert first.run_details()["static_distill_duration_s"] > 0
    second = get_method_class("static")(**settings).fit(data, CostMeter())
    assert second.run_details()["static_from_cache"] is True
    duration = first.run_details()["static_distill_duration_s"]
    assert second.run_details()["static_distill_duration_s"] == duration


def test_a_missing_vector_source_is_a_clear_error(tmp_path):
    data = make_data(TOY_TEXTS, TOY_LABELS)
    with pytest.raises(ModelLoadError, match="not a directory"):
        method = get_method_class("static")(model_name_or_path=str(tmp_path / "nowhere"), **FAST)
        method.fit(data, CostMeter())


def test_teacher_rules_and_settings_validation(static_dir):
    with pytest.raises(ConfigError, match="distill-static"):
        get_method_class("scratch-static")(teacher="/some/teacher")
    with pytest.raises(ConfigError, match="scratch-static"):
        get_method_class("distill-static")(teacher=None, augment_copies=0)
    with pytest.raises(ConfigError, match="augment_copies"):
        get_method_class("static")(augment_copies=2)
    with pytest.raises(ConfigError, match="pca_dims"):
        get_method_class("static")(pca_dims=0)
    assert get_method_class("distill-static").Settings().loss == "kl"


def test_distill_static_reads_the_teachers_logits_over_an_augmented_transfer_set(static_dir, tmp_path):
    data = make_data(TOY_TEXTS, TOY_LABELS)
    teacher = get_method_class("tfidf-lr")().fit(data, CostMeter()).save(tmp_path / "teacher")
    method = get_method_class("distill-static")(
        model_name_or_path=static_dir, teacher=str(teacher), augment_copies=1, p_pos=0.0,
        teacher_cache_dir=str(tmp_path / "cache"), **FAST).fit(data, CostMeter())
    details = method.run_details()
    assert details["n_transfer_docs"] > len(TOY_TEXTS)
    assert details["teacher_logits_cached"] is False and details["distillation_loss"] == "kl"
    assert method.flops_per_document(TOY_TEXTS[:2])["flops_train_step"] > 0


@pytest.mark.slow
def test_static_from_the_packaged_minilm(tmp_path):
    """Real distillation of the packaged all-MiniLM-L6-v2 (~1-3 min on 2 CPU cores, or the on-disk cache)."""
    data = make_data(TOY_TEXTS, TOY_LABELS)
    method = get_method_class("static")(epochs=1, batch_size=4, early_stopping_patience=0,
                                        show_progress=False).fit(data, CostMeter())
    assert method.model.config.embedding_dim == 256 and method.model.config.vocab_size > 29_000
    folder = method.save(tmp_path / "static")
    embedding = StaticModel.from_pretrained(folder / STATIC_SUBFOLDER, force_download=False)
    assert embedding.encode(TOY_TEXTS).shape == (len(TOY_TEXTS), 256)
    np.testing.assert_allclose(load_model(folder).predict_proba(TOY_TEXTS), method.predict_proba(TOY_TEXTS),
                               rtol=1e-5, atol=1e-6)
