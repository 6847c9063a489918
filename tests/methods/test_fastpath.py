"""The fast path: precision (fp32/bf16/auto), int8 inference, length-grouped batches, threads, ONNX export."""

import json

import numpy as np
import pytest
import torch

from frugaltext import fastpath
from frugaltext.cost.meter import CostMeter
from frugaltext.data.collate import EncodedDataset
from frugaltext.errors import ConfigError, ModelLoadError
from frugaltext.methods import get_method_class, load_model
from frugaltext.training.hf import batched_logits, make_training_args
from tests.conftest import TOY_LABELS, TOY_TEXTS
from tests.helpers import make_data

FAST = dict(epochs=20, batch_size=8, learning_rate=1e-2, warmup_ratio=0.0, max_length=16, show_progress=False)
LONGER = [t + " " + " ".join(["market"] * k) for k, t in enumerate(TOY_TEXTS)]  # lengths differ
MULTI_LABELS = [["earn"], ["crude"], ["grain"], ["interest"], ["earn", "crude"], ["crude"],
                ["grain", "interest"], ["interest"]]


@pytest.fixture(scope="module")
def bert(tiny_bert_dir, tmp_path_factory):
    data = make_data(TOY_TEXTS, TOY_LABELS)
    method = get_method_class("bert")(model_name_or_path=str(tiny_bert_dir), **FAST)
    method.fit(data, CostMeter(), seed=1)
    directory = method.save(tmp_path_factory.mktemp("fast-bert") / "bert")
    return method, directory


@pytest.fixture(scope="module")
def bert_multi(tiny_bert_dir, tmp_path_factory):
    data = make_data(TOY_TEXTS, MULTI_LABELS, multi_label=True)
    method = get_method_class("bert")(model_name_or_path=str(tiny_bert_dir), **FAST)
    method.fit(data, CostMeter(), seed=1)
    directory = method.save(tmp_path_factory.mktemp("fast-bert-multi") / "bert")
    return method, directory


# ---- precision ----------------------------------------------------------------------------------------
def test_auto_picks_fp32_without_bf16_flags_and_bf16_with_them(monkeypatch):
    monkeypatch.setattr(fastpath, "_cuda_bf16", lambda: False)
    monkeypatch.setattr(fastpath, "cpu_flags", lambda path=None: frozenset({"avx", "avx2", "fma"}))
    precision, reason = fastpath.resolve_precision("auto")
    assert precision == "fp32" and "amx_bf16" in reason
    monkeypatch.setattr(fastpath, "cpu_flags", lambda path=None: frozenset({"avx2", "amx_bf16", "amx_int8"}))
    precision, reason = fastpath.resolve_precision("auto")
    assert precision == "bf16" and "amx_bf16" in reason
    monkeypatch.setattr(fastpath, "cpu_flags", lambda path=None: frozenset({"avx512f", "avx512_bf16"}))
    assert fastpath.resolve_precision("auto")[0] == "bf16"
    assert fastpath.resolve_precision("fp32") == ("fp32", "set")
    assert fastpath.resolve_precision("bf16") == ("bf16", "set")


def test_cpu_flags_reads_the_first_processor(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu avx2 amx_bf16\n\n"
                    "processor\t: 1\nmodel name\t: Other\nflags\t\t: fpu\n")
    assert fastpath.cpu_flags(info) == {"fpu", "avx2", "amx_bf16"}
    assert fastpath.cpu_model(info) == "Test CPU"
    assert fastpath.cpu_flags(tmp_path / "missing") == frozenset()
    assert fastpath.cpu_flags_of_interest(info) == ["avx2", "amx_bf16"]  # in FLAGS_OF_INTEREST's order
    assert fastpath.cpu_flags_of_interest(tmp_path / "missing") == []


def test_results_rows_record_the_cpu_model_and_flags(monkeypatch):
    from frugaltext.experiment.provenance import machine

    monkeypatch.setattr(fastpath, "cpu_model", lambda path=None: "Test CPU")
    monkeypatch.setattr(fastpath, "cpu_flags", lambda path=None: frozenset({"fpu", "avx512_bf16", "avx2"}))
    info = machine()
    assert info["cpu_model"] == "Test CPU"
    assert info["cpu_flags_of_interest"] == ["avx2", "avx512_bf16"]
    assert info["cpu_count"] >= 1


def test_precision_setting_is_validated(tiny_bert_dir):
    with pytest.raises(ConfigError, match="precision"):
        get_method_class("bert")(precision="fp16")
    with pytest.raises(ConfigError, match="batching"):
        get_method_class("cnn")(batching="sorted")


def test_fp32_leaves_logits_bit_identical(bert):
    method, _ = bert
    assert method.settings.precision == "fp32"
    ids = method._encode(LONGER)
    before = batched_logits(method.model, ids, 3, method._pad_token_id)  # the path used before the setting
    assert np.array_equal(method.predict_logits(LONGER, batch_size=3), before)


def test_bf16_logits_are_close_to_fp32(bert):
    method, _ = bert
    fp32 = method.predict_logits(LONGER)
    method.settings = method.settings.__class__(**{**vars(method.settings), "precision": "bf16"})
    try:
        bf16 = method.predict_logits(LONGER)
    finally:
        method.settings = method.settings.__class__(**{**vars(method.settings), "precision": "fp32"})
    assert not np.array_equal(bf16, fp32)  # autocast did run
    # bf16 keeps 8 bits of mantissa (relative error ~4e-3 per product); through 2 layers the logits of
    # this tiny model (|logit| < 10) move by well under 0.1
    np.testing.assert_allclose(bf16, fp32, atol=0.1)
    assert (bf16.argmax(1) == fp32.argmax(1)).mean() >= 0.75


def test_bf16_training_runs_and_the_row_says_why(tiny_bert_dir, monkeypatch):
    monkeypatch.setattr(fastpath, "_cuda_bf16", lambda: False)
    monkeypatch.setattr(fastpath, "cpu_flags", lambda path=None: frozenset({"amx_bf16"}))
    method = get_method_class("bert")(model_name_or_path=str(tiny_bert_dir), precision="auto",
                                      **{**FAST, "epochs": 1})
    args = method._training_args("unused", seed=0)
    assert args.bf16
    method.fit(make_data(TOY_TEXTS, TOY_LABELS), CostMeter(), seed=0)
    details = method.run_details()
    assert details["precision"] == "bf16" and details["precision_setting"] == "auto"
    assert "amx_bf16" in details["precision_reason"]
    assert method.predict_proba(TOY_TEXTS).shape == (8, 4)


def test_after_bf16_training_inference_follows_the_setting_and_int8_works(tiny_bert_dir):
    """accelerate's bf16 autocast wrapper on model.forward is removed after training: predictions in fp32
    are bit-identical to the saved model's, and an int8 copy predicts (it failed with "expected scalar type
    Float but found BFloat16" while the wrapper stayed)."""
    method = get_method_class("bert")(model_name_or_path=str(tiny_bert_dir), precision="bf16",
                                      **{**FAST, "epochs": 1})
    method.fit(make_data(TOY_TEXTS, TOY_LABELS), CostMeter(), seed=0)
    assert "_original_forward" not in method.model.__dict__
    method.settings = method.settings.__class__(**{**vars(method.settings), "precision": "fp32"})
    fresh = method.model.__class__(method.model.config)
    fresh.load_state_dict(method.model.state_dict())
    ids = method._encode(LONGER)
    assert np.array_equal(method.predict_logits(LONGER, batch_size=3),
                          batched_logits(fresh.eval(), ids, 3, method._pad_token_id))
    assert method.quantize("int8").predict_proba(LONGER).shape == (len(LONGER), 4)


def test_auto_on_a_machine_without_flags_trains_in_fp32(tiny_bert_dir, monkeypatch):
    monkeypatch.setattr(fastpath, "_cuda_bf16", lambda: False)
    monkeypatch.setattr(fastpath, "cpu_flags", lambda path=None: frozenset({"avx2"}))
    method = get_method_class("bert")(model_name_or_path=str(tiny_bert_dir), precision="auto", **FAST)
    assert not method._training_args("unused", seed=0).bf16
    assert method.fast_path_details()["precision"] == "fp32"


# ---- inference order ----------------------------------------------------------------------------------
def test_sorted_inference_returns_rows_in_input_order(bert):
    method, _ = bert
    one_by_one = np.concatenate([method.predict_logits([t], batch_size=1) for t in LONGER])
    batches = method._inference_batches([len(t) for t in method._encode(LONGER)], 3)
    assert [int(i) for b in batches for i in b] != list(range(len(LONGER)))  # really reordered
    np.testing.assert_allclose(method.predict_logits(LONGER, batch_size=3), one_by_one, atol=1e-5)


# ---- grouped batches ----------------------------------------------------------------------------------
def _trainer_order(tiny_bert_dir, tmp_path, seed, grouped, n=64, length_grouping="shuffled"):
    from transformers import AutoModelForSequenceClassification

    from frugaltext.data.collate import PadCollator

    rng = np.random.default_rng(0)
    rows = [{"input_ids": [2] + [5] * int(rng.integers(1, 60)) + [3], "labels": 0, "doc": i}
            for i in range(n)]
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=2)
    args = make_training_args(tmp_path / f"g{seed}{grouped}", seed=seed, epochs=1, batch_size=4,
                              learning_rate=1e-3, evaluate_each_epoch=False, group_by_length=grouped,
                              show_progress=False)
    from frugaltext.training.hf import FrugalTrainer

    trainer = FrugalTrainer(model=model, args=args, train_dataset=EncodedDataset(rows),
                            data_collator=PadCollator(0), length_grouping=length_grouping)
    docs, padded, real = [], 0, 0
    for batch in trainer.get_train_dataloader():
        docs += batch["doc"].tolist()
        padded += batch["input_ids"].numel()
        real += int(batch["attention_mask"].sum())
    return docs, padded / real


def test_grouped_batches_cover_every_example_once_seeded_and_pad_less(tiny_bert_dir, tmp_path):
    grouped, grouped_ratio = _trainer_order(tiny_bert_dir, tmp_path, seed=3, grouped=True)
    again, _ = _trainer_order(tiny_bert_dir, tmp_path, seed=3, grouped=True)
    other, _ = _trainer_order(tiny_bert_dir, tmp_path, seed=4, grouped=True)
    shuffled, random_ratio = _trainer_order(tiny_bert_dir, tmp_path, seed=3, grouped=False)
    assert sorted(grouped) == list(range(64))  # every example exactly once per epoch
    assert grouped == again  # seeded
    assert grouped != other  # still stochastic
    assert grouped_ratio < random_ratio
    # transformers' own order: the same batches (same padding), swept from long to short in each megabatch
    sweep, sweep_ratio = _trainer_order(tiny_bert_dir, tmp_path, seed=3, grouped=True,
                                        length_grouping="megabatch")
    assert sorted(sweep) == list(range(64)) and sweep != grouped
    assert sweep_ratio == pytest.approx(grouped_ratio)


def test_frugal_trainer_refuses_an_unknown_length_grouping(tiny_bert_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification

    from frugaltext.training.hf import FrugalTrainer

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=2)
    args = make_training_args(tmp_path, seed=0, epochs=1, batch_size=4, learning_rate=1e-3,
                              evaluate_each_epoch=False, group_by_length=True, show_progress=False)
    with pytest.raises(ValueError, match="length_grouping"):
        FrugalTrainer(model=model, args=args, length_grouping="sorted")


def test_batching_setting_reaches_the_trainer(tiny_bert_dir):
    method = get_method_class("bert")(model_name_or_path=str(tiny_bert_dir), **FAST)  # grouped by default
    assert method.settings.batching == "grouped"
    assert method._training_args("unused", seed=0).train_sampling_strategy == "group_by_length"
    assert method._length_grouping() == "shuffled"
    method = get_method_class("bert")(model_name_or_path=str(tiny_bert_dir), batching="grouped-megabatch",
                                      **FAST)
    assert method._training_args("unused", seed=0).train_sampling_strategy == "group_by_length"
    assert method._length_grouping() == "megabatch"
    method = get_method_class("bert")(model_name_or_path=str(tiny_bert_dir), batching="random", **FAST)
    assert method._training_args("unused", seed=0).train_sampling_strategy == "random"


@pytest.mark.parametrize("name", ["bert", "early-exit", "topicbert", "distill-cnn", "scratch-lstm-reg", "han",
                                  "xml-cnn", "static"])
def test_every_torch_method_groups_batches_by_default(name):
    assert get_method_class(name)().settings.batching == "grouped"


def test_grouped_training_fits(tiny_bert_dir, tmp_path):
    data = make_data(LONGER, TOY_LABELS)
    method = get_method_class("bert")(model_name_or_path=str(tiny_bert_dir), batching="grouped",
                                      **{**FAST, "epochs": 2, "batch_size": 2})
    meter = CostMeter()
    method.fit(data, meter, seed=0)
    assert len(meter.epoch_durations_s) == 2
    assert method.run_details()["batching"] == "grouped"
    assert method.predict_proba(LONGER).shape == (8, 4)


# ---- int8 ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["bert", "bert_multi"])
def test_int8_agrees_with_fp32_on_labels(which, request):
    method, directory = request.getfixturevalue(which)
    fp32 = load_model(directory)
    int8 = load_model(directory, quantization="int8")
    assert int8.settings.inference_quantization == "int8"
    assert any(".quantized.dynamic." in type(m).__module__ for m in int8.inference_model().modules())
    assert isinstance(int8.model.classifier, torch.nn.Linear)  # the saved model stays fp32
    np.testing.assert_array_equal(int8.predict(TOY_TEXTS), fp32.predict(TOY_TEXTS))
    np.testing.assert_allclose(int8.predict_proba(TOY_TEXTS), fp32.predict_proba(TOY_TEXTS), atol=0.05)
    assert int8.run_details()["inference_quantization"] == "int8"


def test_int8_keeps_the_linear_layers_a_pattern_names_in_fp32(bert):
    """keep_fp32_linear leaves exactly the matching Linear layers fp32 (the FFN output projections here);
    a bad pattern and a pattern that matches every layer are clear errors."""
    method, _ = bert
    quantized = fastpath.quantize_int8(method.model, keep_fp32_linear=r"output\.dense$")
    linear = {n: type(m) for n, m in method.model.named_modules() if isinstance(m, torch.nn.Linear)}
    after = dict(quantized.named_modules())
    kept = {n for n in linear if type(after[n]) is torch.nn.Linear}
    assert kept == {n for n in linear if n.endswith(".output.dense")} and kept
    assert all(".quantized.dynamic." in type(after[n]).__module__ for n in set(linear) - kept)
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        fastpath.quantize_int8(method.model, keep_fp32_linear="(")
    with pytest.raises(ConfigError, match="matches all"):
        fastpath.quantize_int8(method.model, keep_fp32_linear=".")


def test_int8_keep_fp32_linear_as_a_method_setting(bert):
    """The setting reaches quantize_int8 through inference_model(), is validated when set, and quantize()
    can change it (the inference model is rebuilt)."""
    method, _ = bert
    method.quantize("int8", r"output\.dense$")
    try:
        assert method.settings.int8_keep_fp32_linear == r"output\.dense$"
        model = method.inference_model()
        kept = [n for n, m in model.named_modules() if type(m) is torch.nn.Linear]
        assert kept and all(n.endswith(".output.dense") for n in kept)
        assert fastpath.fast_path_details(method.settings)["int8_keep_fp32_linear"] == r"output\.dense$"
        method.quantize("int8", None)
        assert not [n for n, m in method.inference_model().named_modules() if type(m) is torch.nn.Linear]
        assert "int8_keep_fp32_linear" not in fastpath.fast_path_details(method.settings)
        with pytest.raises(ConfigError, match="int8_keep_fp32_linear.*not a valid regular expression"):
            method.quantize("int8", "(")
        with pytest.raises(ConfigError, match="int8_keep_fp32_linear"):
            get_method_class("bert")(int8_keep_fp32_linear="[")
        assert get_method_class("bert")(int8_keep_fp32_linear="none").settings.int8_keep_fp32_linear is None
    finally:
        method.quantize("none", None)


def test_int8_as_a_setting_and_on_a_student(tmp_path):
    data = make_data(TOY_TEXTS, TOY_LABELS)
    cnn = get_method_class("scratch-cnn")(epochs=3, early_stopping_patience=0, show_progress=False,
                                          inference_quantization="int8")
    cnn.fit(data, CostMeter(), seed=0)
    fp32 = load_model(cnn.save(tmp_path / "cnn"), quantization="none")
    assert fp32.settings.inference_quantization == "none"
    np.testing.assert_allclose(cnn.predict_proba(TOY_TEXTS), fp32.predict_proba(TOY_TEXTS), atol=0.05)


def test_int8_is_refused_for_a_non_torch_method(tmp_path):
    data = make_data(TOY_TEXTS, TOY_LABELS)
    directory = get_method_class("tfidf-lr")().fit(data, CostMeter()).save(tmp_path / "lr")
    with pytest.raises(ConfigError, match="torch methods only"):
        load_model(directory, quantization="int8")
    with pytest.raises(ConfigError, match="none or int8"):
        load_model(directory, quantization="int4")


# ---- threads ------------------------------------------------------------------------------------------
def test_set_threads_sets_torch_and_default_follows_the_environment(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert fastpath.set_threads(1)["torch_threads"] == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        assert fastpath.default_threads() == 3
        monkeypatch.delenv("OMP_NUM_THREADS")
        assert fastpath.default_threads() >= 1
        with pytest.raises(ConfigError, match="at least 1"):
            fastpath.set_threads(0)
    finally:
        torch.set_num_threads(before)


# ---- ONNX ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["bert", "bert_multi"])
@pytest.mark.parametrize("quantization", [None, "int8"])
def test_onnx_export_agrees_with_torch(which, quantization, request, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from frugaltext.onnx_export import default_onnx_path, export_onnx, load_onnx_model, parity_path

    method, directory = request.getfixturevalue(which)
    labels = TOY_LABELS if which == "bert" else MULTI_LABELS
    key = "label" if which == "bert" else "labels"
    rows = "".join(json.dumps({"text": t, key: y}) + "\n" for t, y in zip(LONGER, labels, strict=True))
    for split in ("train", "validation"):
        (tmp_path / "docs").mkdir(exist_ok=True)
        (tmp_path / "docs" / f"{split}.jsonl").write_text(rows)
    report = export_onnx(directory, quantization=quantization, data=tmp_path / "docs", max_docs=50)
    assert report["n_docs"] == 8 and "validation" in report["docs"]
    path = default_onnx_path(directory, quantization)
    assert path.is_file() and report["onnx_file"] == str(path)
    assert json.loads(parity_path(path).read_text()) == report
    assert report["n_docs"] >= 1 and report["label_agreement"] == 1.0
    # int8: dynamic quantization of a 32-wide random model moves its logits by up to ~0.3 (seen: 0.21-0.32
    # on logits of magnitude ~1-3); bound it relative to the logits' own scale, labels must agree exactly
    scale = float(np.abs(method.predict_logits(LONGER)).max())
    assert report["max_abs_logit_diff"] < (1e-4 if quantization is None else 0.25 * scale)
    onnx_model = load_onnx_model(directory, quantization=quantization)
    np.testing.assert_array_equal(onnx_model.predict(LONGER), method.predict(LONGER))
    if quantization is None:
        np.testing.assert_allclose(onnx_model.predict_logits(LONGER), method.predict_logits(LONGER),
                                   atol=1e-4)


def test_onnx_export_refuses_other_methods_and_missing_files(tmp_path, bert):
    from frugaltext.onnx_export import export_onnx, load_onnx_model

    data = make_data(TOY_TEXTS, TOY_LABELS)
    directory = get_method_class("tfidf-lr")().fit(data, CostMeter()).save(tmp_path / "lr")
    with pytest.raises(ConfigError, match="ONNX export supports bert"):
        export_onnx(directory)
    _, bert_dir = bert
    with pytest.raises(ModelLoadError, match="frugaltext export --model"):
        load_onnx_model(bert_dir, path=tmp_path / "nothing.onnx")


def test_onnx_without_onnxruntime_is_a_clear_error(bert, monkeypatch):
    import sys

    from frugaltext.onnx_export import export_onnx

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    _, bert_dir = bert
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[onnx\]'"):
        export_onnx(bert_dir, output=bert_dir / "never.onnx")


@pytest.mark.parametrize("name", ["topicbert", "early-exit", "scratch-bilstm"])
def test_int8_and_bf16_inference_on_the_other_torch_methods(name, tiny_bert_dir, tiny_bert4_dir):
    tiny = dict(epochs=1, batch_size=4, show_progress=False, max_length=32)
    config = {
        "topicbert": dict(tiny, model_name_or_path=str(tiny_bert_dir), warmup_ratio=0.0, n_topics=4,
                          nvdm_hidden=8, bow_min_df=1, nvdm_pretrain_epochs=2, nvdm_batch_size=8,
                          n_top_words=3),
        "early-exit": dict(tiny, model_name_or_path=str(tiny_bert4_dir), warmup_ratio=0.0, exit_rule="none"),
        "scratch-bilstm": dict(tiny, embedding_dim=8, hidden_size=8, early_stopping_patience=0),
    }[name]
    method = get_method_class(name)(**config).fit(make_data(TOY_TEXTS, TOY_LABELS), CostMeter(), seed=0)
    fp32 = method.predict_proba(TOY_TEXTS)
    method.quantize("int8")
    np.testing.assert_allclose(method.predict_proba(TOY_TEXTS), fp32, atol=0.05)
    assert method.run_details()["inference_quantization"] == "int8"
    method.quantize("none")
    np.testing.assert_array_equal(method.predict_proba(TOY_TEXTS), fp32)
    method.settings = method.settings.__class__(**{**vars(method.settings), "precision": "bf16"})
    np.testing.assert_allclose(method.predict_proba(TOY_TEXTS), fp32, atol=0.05)
    assert method.run_details()["precision"] == "bf16"


def test_the_quick_preset_and_an_int8_variant(tmp_path):
    from frugaltext.experiment.config import method_settings, resolve_config, trained_by

    quick = resolve_config(preset="quick")
    assert quick.settings["bert"]["precision"] == "auto" and quick.settings["bert"]["batching"] == "grouped"
    assert trained_by(quick) == {"bert@int8": "bert"}  # the quick preset's int8 row trains nothing
    config_file = tmp_path / "c.yaml"
    config_file.write_text("methods: [bert, bert@int8]\n"
                           "settings:\n  bert@int8: {inference_quantization: int8}\n")
    config = resolve_config(preset="quick", config_file=config_file)
    settings = method_settings("bert@int8", config.settings)
    method = get_method_class("bert")(**settings)
    assert method.settings.inference_quantization == "int8" and method.settings.precision == "auto"
    plain = get_method_class("bert")(**method_settings("bert", config.settings))
    assert plain.settings.inference_quantization == "none"
