import json

import numpy as np
import pytest
import torch

from frugaltext.cost.meter import CostMeter
from frugaltext.errors import ConfigError, ModelLoadError
from frugaltext.methods import get_method_class, load_model
from frugaltext.methods.baselines import LogisticHead, mean_token_embeddings
from tests.conftest import TOY_LABELS, TOY_TEXTS
from tests.helpers import make_data

MULTI = [["earn"], ["crude"], ["grain", "trade"], ["interest"], ["earn"], ["crude"], ["grain"],
         ["interest", "trade"]]
NVDM_FAST = dict(n_topics=4, nvdm_hidden=8, bow_min_df=1, nvdm_pretrain_epochs=3, nvdm_batch_size=8)


# ---- cnn ------------------------------------------------------------------------------------------------
def test_cnn_has_kim_sizes_and_learns(tmp_path):
    data = make_data(TOY_TEXTS, TOY_LABELS)
    meter = CostMeter()
    method = get_method_class("cnn")(epochs=15, batch_size=8, learning_rate=1e-2, early_stopping_patience=0,
                                     show_progress=False).fit(data, meter, seed=0)
    config = method.model.config
    assert (config.architecture, config.embedding_dim, config.n_filters, list(config.filter_sizes)) == \
        ("cnn", 300, 100, [3, 4, 5])
    assert config.dropout == 0.5 and method.settings.batch_size == 8
    assert len(meter.epoch_durations_s) == 15
    assert (method.predict(TOY_TEXTS) == data.train.labels).mean() >= 0.75
    method.save(tmp_path / "cnn")
    loaded = load_model(tmp_path / "cnn")
    assert type(loaded) is type(method)
    np.testing.assert_array_equal(loaded.predict_proba(TOY_TEXTS), method.predict_proba(TOY_TEXTS))
    flops = method.flops_per_document(TOY_TEXTS)
    assert flops["flops"] > 0 and flops["flops_train_step"] > 2 * flops["flops"]


def test_cnn_refuses_a_teacher():
    with pytest.raises(ConfigError, match="takes no teacher"):
        get_method_class("cnn")(teacher="/some/dir")


# ---- logistic head --------------------------------------------------------------------------------------
def test_logistic_head_matches_sklearn_and_round_trips():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5))
    y = rng.integers(0, 3, size=40)
    head = LogisticHead(C=0.5).fit(x, y, num_labels=4, multi_label=False)  # label 3 never seen in training
    z = (x - x.mean(0)) / x.std(0)
    expected = LogisticRegression(C=0.5, max_iter=2000, random_state=0).fit(z, y).predict_proba(z)
    proba = head.predict_proba(x)
    np.testing.assert_allclose(proba[:, :3], expected, rtol=1e-5, atol=1e-6)
    assert (proba[:, 3] == 0).all()
    again = LogisticHead.from_dict(json.loads(json.dumps(head.to_dict())), "test")
    np.testing.assert_array_equal(again.predict_proba(x), proba)


def test_logistic_head_binary_and_multi_label():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 4))
    y = (x[:, 0] > 0).astype(int)
    proba = LogisticHead().fit(x, y, num_labels=2, multi_label=False).predict_proba(x)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    assert (proba.argmax(1) == y).mean() > 0.9
    ym = np.stack([y, 1 - y, np.ones(30, dtype=int)], axis=1)  # the third label is always on
    head = LogisticHead().fit(x, ym, num_labels=3, multi_label=True)
    pm = head.predict_proba(x)
    assert pm.shape == (30, 3) and (pm[:, 2] == 1.0).all()
    assert ((pm[:, :2] >= 0.5).astype(int) == ym[:, :2]).mean() > 0.9
    with pytest.raises(ConfigError, match="at least 2 classes"):
        LogisticHead().fit(x, np.zeros(30, dtype=int), num_labels=2, multi_label=False)


# ---- bert-avg ------------------------------------------------------------------------------------------
def test_mean_token_embeddings_ignores_padding(tiny_bert_dir):
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(tiny_bert_dir).eval()
    ids = [[2, 10, 11, 12, 3], [2, 13, 3]]
    together = mean_token_embeddings(encoder, ids, batch_size=2)
    alone = np.concatenate([mean_token_embeddings(encoder, [t], batch_size=1) for t in ids])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        hidden = encoder(input_ids=torch.tensor([ids[1]])).last_hidden_state[0]
    np.testing.assert_allclose(alone[1], hidden.mean(0).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["bert-avg", "bert-avg-dtr"])
def test_bert_avg_fit_predict_save_load(name, tiny_bert_dir, tmp_path):
    data = make_data(TOY_TEXTS, TOY_LABELS)
    meter = CostMeter()
    nvdm_settings = NVDM_FAST if name == "bert-avg-dtr" else {}
    method = get_method_class(name)(model_name_or_path=str(tiny_bert_dir), max_length=16, C=100.0,
                                    **nvdm_settings).fit(data, meter)
    assert len(meter.epoch_durations_s) == 1
    proba = method.predict_proba(TOY_TEXTS)
    assert proba.shape == (8, 4)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    assert (method.predict(TOY_TEXTS) == data.train.labels).mean() >= 0.75
    hidden = method.encoder.config.hidden_size
    assert method.notes["n_features"] == hidden + (4 if name == "bert-avg-dtr" else 0)
    method.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict_proba(TOY_TEXTS), proba, rtol=0, atol=0)
    flops = method.flops_per_document(TOY_TEXTS)
    assert flops["flops"] > 0 and flops["flops_train_step"] is None
    n_encoder = sum(p.numel() for p in method.encoder.parameters())
    assert method.n_params() > n_encoder
    from frugaltext.cost.flops import count_flops

    encoder_flops = np.mean([count_flops(method.encoder, {"input_ids": torch.tensor([ids])})
                             for ids in method._encode(TOY_TEXTS)])
    nvdm_flops = flops["flops"] - encoder_flops - method.head.flops()
    if name == "bert-avg-dtr":
        assert nvdm_flops > 0  # the NVDM encoder is counted
        notes = method.cost_notes()
        assert notes["nvdm_pretrain_epochs_run"] == 3 and notes["nvdm_perplexity"] > 1
    else:
        assert nvdm_flops == pytest.approx(0.0, abs=1e-6)


def test_bert_avg_multi_label(tiny_bert_dir):
    data = make_data(TOY_TEXTS, MULTI, multi_label=True)
    method = get_method_class("bert-avg-dtr")(model_name_or_path=str(tiny_bert_dir), max_length=16,
                                              **NVDM_FAST).fit(data, CostMeter())
    proba = method.predict_proba(TOY_TEXTS)
    assert proba.shape == (8, 5) and ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_array_equal(method.predict(TOY_TEXTS), (proba >= 0.5).astype(int))


def test_settings_errors():
    with pytest.raises(ConfigError, match="unknown setting 'n_topics'"):
        get_method_class("bert-avg")(n_topics=5)  # only bert-avg-dtr has a topic model
    with pytest.raises(ConfigError, match="method 'bert-avg-dtr': setting 'n_topics': must be >= 1"):
        get_method_class("bert-avg-dtr")(n_topics=0)
    with pytest.raises(ConfigError, match="'C': must be > 0"):
        get_method_class("bert-avg")(C=0.0)


def test_load_errors(tmp_path, tiny_bert_dir):
    data = make_data(TOY_TEXTS, TOY_LABELS)
    method = get_method_class("bert-avg")(model_name_or_path=str(tiny_bert_dir), max_length=16)
    method.fit(data, CostMeter())
    method.save(tmp_path / "m")
    (tmp_path / "m" / "linear_head.json").unlink()
    with pytest.raises(ModelLoadError, match="linear_head.json is missing"):
        load_model(tmp_path / "m")
