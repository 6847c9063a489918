import numpy as np
import pytest

from frugaltext.cost.meter import CostMeter
from frugaltext.errors import ConfigError
from frugaltext.methods import get_method_class, load_model
from tests.conftest import TOY_LABELS, TOY_TEXTS
from tests.helpers import make_data

FAST = dict(epochs=30, batch_size=8, learning_rate=1e-2, warmup_ratio=0.0, max_length=16, show_progress=False)


@pytest.fixture(scope="module")
def trained(tiny_bert_dir, tmp_path_factory):
    data = make_data(TOY_TEXTS, TOY_LABELS)
    meter = CostMeter()
    out = tmp_path_factory.mktemp("bert-run")
    method = get_method_class("bert")(model_name_or_path=str(tiny_bert_dir), **FAST).fit(data, meter, seed=1,
                                                                                        output_dir=out)
    return method, meter, data


def test_fit_records_epochs_and_learns(trained):
    method, meter, data = trained
    assert len(meter.epoch_durations_s) == 30
    assert all(d > 0 for d in meter.epoch_durations_s)
    losses = [h["loss"] for h in method.train_history if "loss" in h]
    assert sum(losses[-3:]) / 3 < losses[0] - 0.2  # the training loss falls
    assert (method.predict(TOY_TEXTS) == data.train.labels).mean() >= 0.5  # chance is 0.25
    proba = method.predict_proba(TOY_TEXTS)
    assert proba.shape == (8, 4)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    assert method.model.config.problem_type == "single_label_classification"
    assert method.model.config.id2label == {0: "crude", 1: "earn", 2: "grain", 3: "interest"}


def test_batching_does_not_change_predictions(trained):
    method, _, _ = trained
    np.testing.assert_allclose(method.predict_proba(TOY_TEXTS, batch_size=1),
                               method.predict_proba(TOY_TEXTS, batch_size=8), rtol=1e-4, atol=1e-5)


def test_save_load_and_pipeline(trained, tmp_path):
    from transformers import AutoModelForSequenceClassification, pipeline

    method, _, _ = trained
    method.save(tmp_path / "bert")
    loaded = load_model(tmp_path / "bert")
    np.testing.assert_allclose(loaded.predict_proba(TOY_TEXTS), method.predict_proba(TOY_TEXTS), rtol=1e-5)
    hf = AutoModelForSequenceClassification.from_pretrained(tmp_path / "bert")
    assert type(hf).__name__ == "BertForSequenceClassification"
    classifier = pipeline("text-classification", model=str(tmp_path / "bert"), device="cpu")
    out = classifier(TOY_TEXTS[:3])
    expected = [method.label_names[i] for i in method.predict(TOY_TEXTS[:3])]
    assert [o["label"] for o in out] == expected
    assert np.allclose([o["score"] for o in out], method.predict_proba(TOY_TEXTS[:3]).max(1), atol=1e-5)


def test_flops_grow_superlinearly_and_params(trained):
    method, _, _ = trained
    short, long_ = "stock " * 5, "stock " * 14  # 7 and 16 tokens (max_length 16)
    f_short = method.flops_per_document([short])["flops"]
    f_long = method.flops_per_document([long_])["flops"]
    assert f_long > f_short * (16 / 7)  # more than linear in tokens: attention is counted
    flops = method.flops_per_document(TOY_TEXTS)
    assert flops["flops_train_step"] > 2 * flops["flops"]


def test_multi_label_uses_bce(tiny_bert_dir):
    labels = [["earn"], ["crude"], ["grain", "trade"], ["interest"], ["earn"], ["crude"], ["grain"],
              ["interest", "trade"]]
    data = make_data(TOY_TEXTS, labels, multi_label=True)
    method = get_method_class("bert")(model_name_or_path=str(tiny_bert_dir), **{**FAST, "epochs": 2}).fit(
        data, CostMeter())
    assert method.model.config.problem_type == "multi_label_classification"
    proba = method.predict_proba(TOY_TEXTS)
    assert proba.shape == (8, 5) and ((proba >= 0) & (proba <= 1)).all()
    assert not np.allclose(proba.sum(1), 1.0)
    pred = method.predict(TOY_TEXTS)
    np.testing.assert_array_equal(pred, (proba >= 0.5).astype(int))


def test_head_and_tail_truncation(tiny_bert_dir):
    method = get_method_class("bert")(model_name_or_path=str(tiny_bert_dir), max_length=8, truncation="tail")
    from transformers import AutoTokenizer

    method.tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    text = "the a of and to in stock shares company profit oil"
    tail = method._encode([text])[0]
    head = get_method_class("bert")(model_name_or_path=str(tiny_bert_dir), max_length=8)
    head.tokenizer = method.tokenizer
    head_ids = head._encode([text])[0]
    vocab = method.tokenizer.convert_ids_to_tokens
    assert len(tail) == len(head_ids) == 8
    assert vocab(tail)[-2] == "oil" and vocab(head_ids)[1] == "the"


def test_bad_settings(tmp_path):
    with pytest.raises(ConfigError, match="truncation"):
        get_method_class("bert")(truncation="middle")
    with pytest.raises(ConfigError, match="not a local directory"):
        get_method_class("bert")(model_name_or_path="bert-base-uncased").fit(
            make_data(TOY_TEXTS, TOY_LABELS), CostMeter())


def test_encoder_layers_gives_a_shallower_model_that_round_trips(tiny_bert4_dir, tmp_path):
    data = make_data(TOY_TEXTS, TOY_LABELS)
    settings = dict(FAST, epochs=2)
    small = get_method_class("bert")(model_name_or_path=str(tiny_bert4_dir), encoder_layers="0,2", **settings)
    small.fit(data, CostMeter(), seed=0)
    full = get_method_class("bert")(model_name_or_path=str(tiny_bert4_dir), **settings).fit(data, CostMeter(),
                                                                                           seed=0)
    assert small.model.config.num_hidden_layers == 2 and len(small.model.bert.encoder.layer) == 2
    assert small.n_params() < full.n_params()
    assert small.flops_per_document(TOY_TEXTS[:2])["flops"] < \
        full.flops_per_document(TOY_TEXTS[:2])["flops"]
    small.save(tmp_path / "small")
    loaded = load_model(tmp_path / "small")
    assert loaded.model.config.num_hidden_layers == 2
    np.testing.assert_allclose(loaded.predict_proba(TOY_TEXTS), small.predict_proba(TOY_TEXTS), rtol=1e-5)
    with pytest.raises(ConfigError, match="encoder_layers"):
        get_method_class("bert")(encoder_layers="2,1")
