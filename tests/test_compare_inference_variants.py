"""``compare`` variants that differ only in inference settings (``bert@int8``) reuse the trained model of
their method: no second training, the same predictions as ``load_model(dir, quantization="int8")``, training
costs copied, resume re-evaluates only (issue 12 item 5)."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from frugaltext.data import load_data
from frugaltext.experiment.config import CompareConfig, resolve_config, trained_by
from frugaltext.experiment.results import read_results, write_results
from frugaltext.experiment.runner import TRAINING_COST_KEYS, run_compare
from frugaltext.manifest import verify_manifest
from frugaltext.methods import get_method_class, load_model
from frugaltext.methods.base import probabilities_to_predictions
from frugaltext.metrics import classification_metrics
from frugaltext.selection import _reused_inference_settings, _set_inference_settings
from tests.helpers import tiny_bert_settings, write_tiny_corpus

INT8 = {"inference_quantization": "int8"}


def test_trained_by_finds_the_method_a_variant_reuses():
    cfg = CompareConfig(methods=("bert@int8", "bert", "bert@lr", "bert@lr-int8", "bert@same", "tfidf-svm"),
                        settings={"bert@int8": INT8, "bert@lr": {"learning_rate": 1e-3},
                                  "bert@lr-int8": {"learning_rate": 1e-3, **INT8}, "bert@same": {}})
    # plain names train first, so bert@int8 listed before bert still reuses it; a training setting (lr)
    # trains its own model, and its int8 variant reuses that one; an exact duplicate trains
    assert trained_by(cfg) == {"bert@int8": "bert", "bert@lr-int8": "bert@lr"}
    assert trained_by(CompareConfig(methods=("bert", "bert@x"), settings={"bert": INT8, "bert@x": {
        "inference_quantization": "none"}})) == {"bert@x": "bert"}
    assert trained_by(CompareConfig(methods=("bert@int8",), settings={"bert@int8": INT8})) == {}


@pytest.fixture
def counted_fits(monkeypatch):
    cls = get_method_class("bert")
    calls: list[str] = []
    fit = cls.fit

    def counting_fit(self, *args, **kwargs):
        calls.append(self.settings.inference_quantization)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(cls, "fit", counting_fit)
    return calls


def _config(tmp_path, tiny_bert_dir, methods, **settings):
    data = tmp_path / "data"
    if not data.exists():
        write_tiny_corpus(data)
    overrides = {"data": str(data), "methods": methods, "output": str(tmp_path / "out"),
                 "cost.measure_energy": False, "cost.throughput_n_docs": 8, "cost.latency_n_docs": 2,
                 "cost.min_throughput_duration_s": 0,
                 **{f"bert.{k}": v for k, v in tiny_bert_settings(tiny_bert_dir, epochs=1).items()}}
    for method, values in settings.items():
        overrides.update({f"{method}.{k}": v for k, v in values.items()})
    return resolve_config(preset="quick", overrides=overrides)


def test_an_int8_variant_reuses_the_trained_model_and_resumes(tmp_path, tiny_bert_dir, counted_fits):
    cfg = _config(tmp_path, tiny_bert_dir, "bert,bert@int8", **{"bert@int8": INT8})
    out = tmp_path / "out"
    result = run_compare(cfg, progress=False)
    assert result.ran == ["bert-seed0", "bert@int8-seed0"]
    assert counted_fits == ["none"]  # one training: bert's
    rows = {r["method"]: r for r in read_results(out / "results.json")}
    bert, int8 = rows["bert"], rows["bert@int8"]
    assert not (out / "models" / "bert@int8-seed0").exists()
    assert int8["model_dir"] == bert["model_dir"] == str(out / "models" / "bert-seed0")
    assert int8["notes"]["trained_by"] == "bert" and int8["notes"]["inference_quantization"] == "int8"
    assert int8["notes"]["trained_by_config_hash"] == bert["config_hash"] != int8["config_hash"]
    for key in TRAINING_COST_KEYS:
        assert int8.get(key, "absent") == bert.get(key, "absent"), key
    assert int8["train_duration_s"] > 0
    assert int8["latency_ms"] > 0 and int8["throughput_docs_per_s"] > 0 and int8["flops"] == bert["flops"]
    assert "bert@int8 predicts with the model trained by bert" in (out / "table.md").read_text()
    assert "no training" in (out / "logs" / "bert@int8-seed0.log").read_text()

    # its scores are those of the saved bert model loaded with int8 quantization
    data = load_data(cfg.data, seed=cfg.data_seed)
    quantized = load_model(out / "models" / "bert-seed0", quantization="int8")
    predicted = probabilities_to_predictions(quantized.predict_proba(data.test.texts), False)
    scores = classification_metrics(data.test.labels, predicted, data.label_names, False)
    assert int8["macro_f1"] == scores["macro_f1"] and int8["per_class"] == json.loads(
        json.dumps(scores["per_class"]))

    # `select` picking bert@int8 copies bert's folder (hard links) and writes int8 into the copy only
    selected = tmp_path / "selected"
    shutil.copytree(out / "models" / "bert-seed0", selected, copy_function=os.link)
    _set_inference_settings(selected, _reused_inference_settings(int8))
    assert _reused_inference_settings(bert) == {}
    assert load_model(selected).settings.inference_quantization == "int8"
    assert verify_manifest(selected) is None
    assert load_model(out / "models" / "bert-seed0").settings.inference_quantization == "none"
    assert verify_manifest(out / "models" / "bert-seed0") is None

    # resume: a finished bert and a missing bert@int8 row -> only the evaluation runs
    write_results([r for r in read_results(out / "results.json") if r["method"] == "bert"], out)
    counted_fits.clear()
    resumed = run_compare(cfg, progress=False)
    assert resumed.skipped == ["bert-seed0"] and resumed.ran == ["bert@int8-seed0"] and counted_fits == []
    again = run_compare(cfg, progress=False)
    assert again.ran == [] and again.skipped == ["bert-seed0", "bert@int8-seed0"]

    # bert's model trained again (damaged folder) -> bert@int8 evaluated again with the new model
    (out / "models" / "bert-seed0" / "model.safetensors").unlink()
    retrained = run_compare(cfg, progress=False)
    assert retrained.ran == ["bert-seed0", "bert@int8-seed0"] and counted_fits == ["none"]
    assert "saved again since this variant was evaluated" in (out / "compare.log").read_text()


def test_a_variant_of_a_training_setting_still_trains(tmp_path, tiny_bert_dir, counted_fits):
    cfg = _config(tmp_path, tiny_bert_dir, "bert,bert@lr",
                  **{"bert@lr": {"learning_rate": 1e-3, **INT8}})
    result = run_compare(cfg, progress=False)
    assert result.ran == ["bert-seed0", "bert@lr-seed0"]
    assert counted_fits == ["none", "int8"]
    rows = {r["method"]: r for r in read_results(tmp_path / "out" / "results.json")}
    assert "trained_by" not in rows["bert@lr"]["notes"]
    assert (tmp_path / "out" / "models" / "bert@lr-seed0").is_dir()


def test_an_int8_variant_that_keeps_ffn_outputs_fp32_reuses_the_model(tmp_path, tiny_bert_dir, counted_fits):
    """int8_keep_fp32_linear is inference-only: the variant trains nothing, predicts as load_model + quantize
    with the pattern, records the pattern in its notes, and select writes it into the selected copy."""
    keep = {"inference_quantization": "int8", "int8_keep_fp32_linear": r"output\.dense$"}
    cfg = _config(tmp_path, tiny_bert_dir, "bert,bert@int8,bert@int8-ffn", **{"bert@int8": INT8,
                                                                             "bert@int8-ffn": keep})
    assert trained_by(cfg) == {"bert@int8": "bert", "bert@int8-ffn": "bert"}
    out = tmp_path / "out"
    result = run_compare(cfg, progress=False)
    assert result.ran == ["bert-seed0", "bert@int8-seed0", "bert@int8-ffn-seed0"] and counted_fits == ["none"]
    rows = {r["method"]: r for r in read_results(out / "results.json")}
    ffn, int8 = rows["bert@int8-ffn"], rows["bert@int8"]
    assert ffn["notes"]["trained_by"] == "bert" and ffn["notes"]["int8_keep_fp32_linear"] == r"output\.dense$"
    assert "int8_keep_fp32_linear" not in int8["notes"]
    assert len({ffn["config_hash"], int8["config_hash"], rows["bert"]["config_hash"]}) == 3

    data = load_data(cfg.data, seed=cfg.data_seed)
    loaded = load_model(out / "models" / "bert-seed0").quantize("int8", r"output\.dense$")
    predicted = probabilities_to_predictions(loaded.predict_proba(data.test.texts), False)
    assert ffn["macro_f1"] == classification_metrics(data.test.labels, predicted, data.label_names,
                                                     False)["macro_f1"]
    selected = tmp_path / "selected"
    shutil.copytree(out / "models" / "bert-seed0", selected)
    _set_inference_settings(selected, _reused_inference_settings(ffn))
    assert load_model(selected).settings.int8_keep_fp32_linear == r"output\.dense$"


def test_the_new_setting_leaves_old_config_hashes_unchanged():
    """A row written before int8_keep_fp32_linear existed keeps its hash (NEUTRAL_NEW_SETTINGS)."""
    from frugaltext.experiment.config import config_hash

    old = {"learning_rate": 1e-4, "inference_quantization": "none"}
    before = config_hash({"d": 1}, "bert", old)
    assert config_hash({"d": 1}, "bert", {**old, "int8_keep_fp32_linear": None}) == before
    assert config_hash({"d": 1}, "bert", {**old, "int8_keep_fp32_linear": "x"}) != before
