"""The contract every registered method keeps (run over ``available_methods()`` with tiny random models).

fit -> probabilities of the right shape (softmax rows sum to 1; multi-label in [0, 1]) -> save/load gives the
same predictions -> FLOPs keys present and growing with the document length (faster than linearly for
attention models) -> a parameter count checked against one written by hand. A new method fails here until it
gets a tiny configuration in ``CONFIGS``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from frugaltext.cost.meter import CostMeter
from frugaltext.methods import available_methods, get_method_class, load_model
from frugaltext.methods.base import METHOD_FILE
from tests.conftest import TOY_LABELS, TOY_TEXTS
from tests.helpers import make_data
from tests.models.test_static import tiny_static_model

MULTI_LABELS = [["earn"], ["crude"], ["grain", "trade"], ["interest"], ["earn"], ["crude"], ["grain"],
                ["interest", "trade"]]
SHORT = "oil crude"
LONG = ("company stock shares profit quarter net oil crude barrel prices opec wheat grain tonnes bank rate "
        "interest dollar yen trade")  # 20 distinct words

TORCH_FAST = dict(epochs=1, batch_size=4, show_progress=False)
BERT_FAST = dict(TORCH_FAST, max_length=32, warmup_ratio=0.0)
STUDENT_FAST = dict(TORCH_FAST, max_length=32, embedding_dim=8, hidden_size=8, n_filters=4,
                    early_stopping_patience=0)
STATIC_FAST = dict(TORCH_FAST, early_stopping_patience=0)
NVDM_FAST = dict(n_topics=4, nvdm_hidden=8, bow_min_df=1, nvdm_pretrain_epochs=2, nvdm_batch_size=8)
#: methods whose encoder attends over all token pairs: FLOPs grow faster than linearly with the length
ATTENTION = {"bert", "bert-avg", "bert-avg-dtr", "early-exit", "topicbert"}


def _config(name: str, dirs: dict[str, str]) -> dict:
    """Tiny settings of ``name``; ``dirs`` holds the encoder, teacher and cache directories."""
    encoder = dict(model_name_or_path=dirs["bert"])
    configs = {
        "tfidf-lr": {}, "tfidf-svm": {},
        "bert": dict(BERT_FAST, **encoder),
        "early-exit": dict(BERT_FAST, model_name_or_path=dirs["bert4"], exit_rule="none"),
        "topicbert": dict(BERT_FAST, **encoder, **NVDM_FAST, n_top_words=3),
        "bert-avg": dict(encoder, max_length=32),
        "bert-avg-dtr": dict(encoder, max_length=32, **NVDM_FAST),
        "cnn": dict(STUDENT_FAST),
        "xml-cnn": dict(STUDENT_FAST, pool_chunks=2, bottleneck_size=8),
        "han": dict(STUDENT_FAST, max_sentences=4, max_words=8),
        "static": dict(STATIC_FAST, model_name_or_path=dirs["static"]),
        "scratch-static": dict(STATIC_FAST, model_name_or_path=dirs["static"]),
        "distill-static": dict(STATIC_FAST, model_name_or_path=dirs["static"], teacher=dirs["teacher"],
                               augment_copies=0, teacher_cache_dir=dirs["cache"]),
    }
    for arch in ("han", "xml-cnn"):
        configs[f"distill-{arch}"] = dict(configs[arch], teacher=dirs["teacher"], augment_copies=0,
                                          teacher_cache_dir=dirs["cache"])
    for arch in ("bilstm", "bilstm-attn", "cnn", "lstm-reg"):
        configs[f"scratch-{arch}"] = dict(STUDENT_FAST)
        configs[f"distill-{arch}"] = dict(STUDENT_FAST, teacher=dirs["teacher"], augment_copies=0,
                                          teacher_cache_dir=dirs["cache"])
    if name not in configs:
        pytest.fail(f"method {name!r} has no tiny configuration in tests/methods/test_contract.py; add one")
    return configs[name]


@pytest.fixture(scope="module")
def dirs(tiny_bert_dir, tiny_bert4_dir, tmp_path_factory):
    """Encoders, and tf-idf teachers (single- and multi-label) for the distilled students."""
    root = tmp_path_factory.mktemp("contract")
    out = {"bert": str(tiny_bert_dir), "bert4": str(tiny_bert4_dir), "cache": str(root / "cache")}
    tiny_static_model().save_pretrained(root / "static")  # a random model2vec folder: no distillation here
    out["static"] = str(root / "static")
    for multi, labels in ((False, TOY_LABELS), (True, MULTI_LABELS)):
        data = make_data(TOY_TEXTS, labels, multi_label=multi)
        teacher = get_method_class("tfidf-lr")().fit(data, CostMeter())
        out[f"teacher-{multi}"] = str(teacher.save(root / f"teacher-{multi}"))
    return out


@pytest.fixture(scope="module")
def fitted(dirs):
    """``fitted(name, multi_label)``: the method trained once per module on the toy data."""
    cache: dict = {}

    def get(name: str, multi_label: bool):
        if (name, multi_label) not in cache:
            config = _config(name, {**dirs, "teacher": dirs[f"teacher-{multi_label}"]})
            data = make_data(TOY_TEXTS, MULTI_LABELS if multi_label else TOY_LABELS, multi_label=multi_label)
            cache[name, multi_label] = get_method_class(name)(**config).fit(data, CostMeter(), seed=0)
        return cache[name, multi_label]

    return get


@pytest.mark.parametrize("name", available_methods())
def test_probabilities(fitted, name):
    single = fitted(name, False).predict_proba(TOY_TEXTS)
    assert single.shape == (8, 4) and single.dtype == np.float32
    np.testing.assert_allclose(single.sum(axis=1), 1.0, rtol=1e-5)
    multi = fitted(name, True).predict_proba(TOY_TEXTS)
    assert multi.shape == (8, 5) and ((multi >= 0) & (multi <= 1)).all()
    assert fitted(name, True).predict(TOY_TEXTS).shape == (8, 5)


@pytest.mark.parametrize("name", available_methods())
def test_save_load_gives_the_same_predictions(fitted, name, tmp_path):
    method = fitted(name, False)
    loaded = load_model(method.save(tmp_path / name))
    assert type(loaded) is type(method) and loaded.label_names == method.label_names
    np.testing.assert_allclose(loaded.predict_proba(TOY_TEXTS), method.predict_proba(TOY_TEXTS), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_array_equal(loaded.predict(TOY_TEXTS), method.predict(TOY_TEXTS))
    assert loaded.n_params() == method.n_params()
    assert loaded.cost_notes() == loaded.run_details()  # the old name still answers
    json.dumps(method.run_details(), default=str)


@pytest.mark.parametrize("name", available_methods())
def test_flops_grow_with_the_document_length(fitted, name, tiny_bert_dir):
    method = fitted(name, False)
    short, long_ = method.flops_per_document([SHORT]), method.flops_per_document([LONG])
    assert set(short) == {"flops", "flops_train_step"}
    assert short["flops"] > 0 and long_["flops"] > short["flops"]
    if short["flops_train_step"] is not None:
        assert short["flops_train_step"] > short["flops"]
    if name in ATTENTION:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
        ratio = len(tokenizer(LONG)["input_ids"]) / len(tokenizer(SHORT)["input_ids"])  # 22 / 4 tokens
        assert long_["flops"] / short["flops"] > ratio


def test_n_params_of_a_tiny_bert_counted_by_hand(fitted):
    # Tiny BERT of tests/conftest.py: vocabulary 55 (5 special + 50 words), hidden 32, 2 layers, FFN 37,
    # 512 positions, 2 token types, 4 labels.
    # embeddings 55*32 + 512*32 + 2*32 + LayerNorm 2*32                       = 18_272
    # per layer: Q, K, V, O 4*(32*32 + 32) + LN 64 + FFN (32*37 + 37) + (37*32 + 32) + LN 64 = 6_789
    # pooler 32*32 + 32 = 1_056; classifier 32*4 + 4 = 132
    assert fitted("bert", False).n_params() == 18_272 + 2 * 6_789 + 1_056 + 132  # 33_038


def test_old_student_names_resolve_to_the_scratch_controls(fitted, tmp_path):
    scratch = get_method_class("scratch-cnn")
    assert get_method_class("student-cnn") is scratch
    assert "student-cnn" not in available_methods()
    # a folder saved before the rename: its frugaltext_method.json says "student-cnn"
    method = fitted("scratch-cnn", False)
    folder = method.save(tmp_path / "old")
    meta = json.loads((folder / METHOD_FILE).read_text(encoding="utf-8"))
    (folder / METHOD_FILE).write_text(json.dumps({**meta, "method": "student-cnn"}), encoding="utf-8")
    loaded = load_model(folder)
    assert type(loaded) is scratch
    np.testing.assert_array_equal(loaded.predict(TOY_TEXTS), method.predict(TOY_TEXTS))
