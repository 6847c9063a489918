"""distill-* and scratch-* methods: toy fits with a fake teacher, the teacher cache, persistence, errors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from frugaltext.cost.meter import CostMeter, CostSettings
from frugaltext.errors import ConfigError
from frugaltext.methods import get_method_class, load_model
from frugaltext.methods.base import Method, register
from tests.conftest import TOY_LABELS, TOY_TEXTS
from tests.helpers import make_data

KEYWORDS = {"crude": {"oil", "crude", "opec", "barrel"}, "earn": {"profit", "net", "quarter", "revenue"},
            "grain": {"wheat", "grain", "tonnes"}, "interest": {"bank", "rate", "interest", "dollar"}}
FAST = dict(batch_size=4, learning_rate=1e-2, max_length=16, early_stopping_patience=0, show_progress=False)


@dataclass(frozen=True)
class KeywordSettings:
    """Settings of the keyword teacher."""

    strength: float = 1.0


@register
class KeywordTeacher(Method):
    """A fake teacher: logit of a label = strength x (its keywords in the text) - 1; counts predict calls."""

    name = "test-keyword-teacher"
    Settings = KeywordSettings
    calls = 0

    def fit(self, data, meter, seed=0, output_dir=None):
        self.label_names, self.multi_label = data.label_names, data.multi_label
        return self

    def predict_logits(self, texts, batch_size=32):
        type(self).calls += 1
        return np.array([[self.settings.strength * len(KEYWORDS[name] & set(t.split())) - 1.0
                          for name in self.label_names] for t in texts], dtype=np.float32)

    def predict_proba(self, texts, batch_size=32):
        z = torch.as_tensor(self.predict_logits(texts, batch_size))
        return (torch.sigmoid(z) if self.multi_label else torch.softmax(z, -1)).numpy()

    def n_params(self):
        return 0

    def flops_per_document(self, texts):
        return {"flops": 0.0, "flops_train_step": None}

    def _save(self, directory: Path) -> None:
        (directory / "keywords.json").write_text(json.dumps({k: sorted(v) for k, v in KEYWORDS.items()}))

    def _load(self, directory: Path) -> None:
        pass


def meter():
    return CostMeter(CostSettings(measure_energy=False))


@pytest.fixture(scope="module")
def data():
    return make_data(TOY_TEXTS, TOY_LABELS)


@pytest.fixture(scope="module")
def teacher_dir(data, tmp_path_factory):
    return str(KeywordTeacher().fit(data, None).save(tmp_path_factory.mktemp("keyword-teacher")))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("teacher-cache"))


@pytest.fixture(scope="module")
def distilled(data, teacher_dir, cache_dir):
    KeywordTeacher.calls = 0
    m = meter()
    method = get_method_class("distill-bilstm")(teacher=teacher_dir, teacher_cache_dir=cache_dir, epochs=10,
                                                **FAST)
    return method.fit(data, m, seed=0), m


def test_distilled_bilstm_learns_from_teacher_and_labels(distilled, data):
    method, m = distilled
    assert len(m.epoch_durations_s) == 10
    losses = [h["loss"] for h in method.train_history if "loss" in h]
    assert np.mean(losses[-3:]) < 0.5 * losses[0]
    assert (method.predict(TOY_TEXTS) == data.train.labels).mean() >= 0.75
    proba = method.predict_proba(TOY_TEXTS)
    assert proba.shape == (8, 4)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    notes = method.cost_notes()
    assert notes["architecture"] == "bilstm" and notes["distillation_loss"] == "mse"
    assert notes["teacher_logits_cached"] is False and notes["teacher_logits_duration_s"] > 0
    assert notes["n_transfer_docs"] == 8 and notes["teacher"].endswith("keyword-teacher0")
    json.dumps(notes)  # JSON-able for the results row
    assert KeywordTeacher.calls == 1


def test_second_student_reads_the_cached_teacher_logits(distilled, data, teacher_dir, cache_dir):
    calls = KeywordTeacher.calls
    method = get_method_class("distill-cnn")(teacher=teacher_dir, teacher_cache_dir=cache_dir, epochs=1,
                                             **FAST)
    method.fit(data, meter(), seed=0)
    notes = method.cost_notes()
    assert KeywordTeacher.calls == calls  # the teacher was not run again
    assert notes["teacher_logits_cached"] is True
    assert notes["teacher_logits_compute_duration_s"] == pytest.approx(
        distilled[0].cost_notes()["teacher_logits_compute_duration_s"])


def test_save_load_round_trip_and_batching(distilled, tmp_path):
    method, _ = distilled
    method.save(tmp_path / "student")
    assert (tmp_path / "student" / "model.safetensors").is_file()
    assert (tmp_path / "student" / "word_vocab.json").is_file()
    loaded = load_model(tmp_path / "student")
    assert type(loaded) is type(method) and loaded.label_names == method.label_names
    np.testing.assert_array_equal(loaded.predict_logits(TOY_TEXTS), method.predict_logits(TOY_TEXTS))
    np.testing.assert_allclose(method.predict_proba(TOY_TEXTS, batch_size=1), method.predict_proba(TOY_TEXTS),
                               rtol=1e-5, atol=1e-6)
    assert loaded.cost_notes()["teacher_logits_cached"] is False


def test_cost_measures(distilled):
    method, _ = distilled
    flops = method.flops_per_document(TOY_TEXTS[:2])
    # 6 and 5 tokens: BiLSTM (E = H = 64) over 5.5 tokens on average, plus the head
    expected = 5.5 * 2 * 2 * 4 * 64 * (64 + 64) + 2 * 128 * 4
    assert flops["flops"] == expected and flops["flops_train_step"] == 3 * expected


def test_lstm_reg_multi_label_with_an_augmented_transfer_set(tmp_path):
    sets = [["earn"], ["crude"], ["grain"], ["interest"], ["earn"], ["crude", "earn"], ["grain"],
            ["interest"]]
    data = make_data(TOY_TEXTS, sets, multi_label=True)
    teacher = str(KeywordTeacher().fit(data, None).save(tmp_path / "teacher"))
    method = get_method_class("distill-lstm-reg")(teacher=teacher, teacher_cache_dir=str(tmp_path / "cache"),
                                                  augment_copies=3, p_pos=0.0, epochs=3, **FAST)
    method.fit(data, meter(), seed=0)
    notes = method.cost_notes()
    assert notes["distillation_loss"] == "kl" and notes["n_augmented_docs"] > 8
    assert notes["n_transfer_docs"] == 8 + notes["n_augmented_docs"] and notes["augment_duration_s"] >= 0
    proba = method.predict_proba(TOY_TEXTS)
    assert proba.shape == (8, 4) and ((proba > 0) & (proba < 1)).all()
    assert method.model.config.problem_type == "multi_label_classification"
    assert method.model.config.weight_drop == 0.1 and method.model.config.embed_dropout == 0.2
    method.save(tmp_path / "saved")
    np.testing.assert_array_equal(load_model(tmp_path / "saved").predict_proba(TOY_TEXTS), proba)


def test_wordpiece_student_with_pretrained_embeddings(tiny_bert_dir, data, tmp_path):
    from transformers import AutoModel

    method = get_method_class("scratch-cnn")(tokenizer="wordpiece", embeddings="pretrained",
                                             tokenizer_path=str(tiny_bert_dir), epochs=1, **FAST)
    method.fit(data, meter(), seed=0)
    bert = AutoModel.from_pretrained(tiny_bert_dir)
    assert method.model.config.vocab_size == bert.config.vocab_size
    assert method.cost_notes()["embeddings_from"] == str(tiny_bert_dir)
    assert method._encode(["oil crude zebra"])[0][:2] == [method.vocabulary.vocab["oil"],
                                                          method.vocabulary.vocab["crude"]]
    method.save(tmp_path / "wp")
    assert (tmp_path / "wp" / "tokenizer_config.json").is_file()
    np.testing.assert_array_equal(load_model(tmp_path / "wp").predict_logits(TOY_TEXTS),
                                  method.predict_logits(TOY_TEXTS))


def test_student_without_teacher_is_plain_cross_entropy(data):
    method = get_method_class("scratch-bilstm-attn")(epochs=10, **FAST).fit(data, meter(), seed=0)
    notes = method.cost_notes()
    assert notes["teacher"] is None and "teacher_logits_duration_s" not in notes
    assert (method.predict(TOY_TEXTS) == data.train.labels).mean() >= 0.75


def test_errors_are_explicit(data, tmp_path, teacher_dir):
    with pytest.raises(ConfigError, match=r"distill-bilstm: needs a teacher.*the method 'scratch-bilstm'"):
        get_method_class("distill-bilstm")(teacher=None)
    with pytest.raises(ConfigError, match=r"scratch-cnn is the no-teacher control.*the method 'distill-cnn'"):
        get_method_class("scratch-cnn")(teacher=teacher_dir)
    with pytest.raises(ConfigError, match="teacher 'auto' means the bert model trained in the same"):
        get_method_class("distill-cnn")(epochs=1).fit(data, meter())
    with pytest.raises(ConfigError, match="augment_copies=2 needs a teacher"):
        get_method_class("scratch-lstm-reg")(augment_copies=2)
    with pytest.raises(ConfigError, match="embeddings='pretrained' copies WordPiece embeddings"):
        get_method_class("scratch-cnn")(embeddings="pretrained")
    other = make_data(TOY_TEXTS, ["a", "b", "c", "d", "a", "b", "c", "d"])
    wrong = str(KeywordTeacher().fit(data, None).save(tmp_path / "t"))
    student = get_method_class("distill-bilstm")(teacher=wrong, teacher_cache_dir=str(tmp_path / "c"))
    with pytest.raises(ConfigError, match=r"the teacher's labels differ from the data's \(missing \['a', "):
        student.fit(other, meter())
    parsed = get_method_class("distill-lstm-reg")(lam="none", teacher="/x", max_vocab_size=None).settings
    assert parsed.lam is None and parsed.max_vocab_size is None
    assert get_method_class("distill-lstm-reg")(lam="2.5", teacher="/x").settings.lam == 2.5  # CLI strings


def test_compare_puts_bert_first_for_teacher_auto():
    from frugaltext.experiment.runner import order_methods

    assert get_method_class("distill-cnn").Settings().teacher == "auto"
    assert get_method_class("scratch-cnn").Settings().teacher is None
    assert order_methods(["scratch-cnn", "distill-cnn", "bert"], {}) == ["bert", "scratch-cnn", "distill-cnn"]
    assert order_methods(["scratch-cnn", "tfidf-lr"], {}) == ["scratch-cnn", "tfidf-lr"]
    with pytest.raises(ConfigError, match=r"distill-lstm-reg uses? teacher 'auto'.*'bert' is not among"):
        order_methods(["distill-lstm-reg"], {})


def test_frugaltext_bert_directory_as_teacher(tiny_bert_dir, data, tmp_path):
    """A saved ``bert`` model (what compare's teacher 'auto' points to): its real logits, labels and
    tokenizer."""
    bert = get_method_class("bert")(model_name_or_path=str(tiny_bert_dir), max_length=16)
    bert.label_names, bert.multi_label = data.label_names, False
    bert._build(data, seed=0)  # an untrained tiny classifier is teacher enough here
    teacher = str(bert.save(tmp_path / "bert"))
    method = get_method_class("distill-bilstm")(teacher=teacher, teacher_cache_dir=str(tmp_path / "cache"),
                                                tokenizer="wordpiece", embeddings="pretrained", epochs=1,
                                                **FAST)
    method.fit(data, meter(), seed=0)
    cached = method.cost_notes()["teacher_logits_cache_file"]
    from safetensors.numpy import load_file

    np.testing.assert_allclose(load_file(cached)["logits"], bert.predict_logits(TOY_TEXTS),
                               rtol=1e-5, atol=1e-6)
    assert method.cost_notes()["embeddings_from"] == teacher  # tokenizer and embeddings of the teacher
    assert method.model.config.vocab_size == len(bert.tokenizer)


def test_an_in_memory_student_can_teach_and_its_weights_key_the_cache(distilled, tmp_path):
    from frugaltext.training.teacher_cache import compute_teacher_logits, teacher_fingerprint

    method, _ = distilled
    got = compute_teacher_logits(method, TOY_TEXTS, tmp_path)
    np.testing.assert_array_equal(got.logits, method.predict_logits(TOY_TEXTS))
    before = teacher_fingerprint(method)
    copy = load_model(method.save(tmp_path / "copy"))
    assert teacher_fingerprint(copy) == before  # same weights, settings and vocabulary
    with torch.no_grad():
        copy.model.classifier.bias[0] += 1e-3
    assert teacher_fingerprint(copy) != before
    assert not compute_teacher_logits(copy, TOY_TEXTS, tmp_path).cached
