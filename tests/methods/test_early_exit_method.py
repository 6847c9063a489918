"""The ``early-exit`` method: training through the Trainer, calibration after fit, costs, persistence."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import torch

from frugaltext.cost.meter import CostMeter
from frugaltext.errors import ConfigError, DataFormatError, DataNotFoundError
from frugaltext.methods import get_method_class, load_model
from frugaltext.methods.early_exit import EarlyExitMethod, read_unlabeled_texts
from frugaltext.metrics import classification_metrics
from frugaltext.models.early_exit import ENTROPY_GRID, EarlyExitForSequenceClassification, train_step_flops
from tests.conftest import TOY_LABELS, TOY_TEXTS
from tests.helpers import make_data

FAST = dict(
    epochs=6,
    batch_size=4,
    learning_rate=3e-3,
    warmup_ratio=0.0,
    max_length=16,
    show_progress=False,
    eval_batch_size=8,
)
L = 4


@pytest.fixture(scope="module")
def trained(tiny_bert4_dir, tmp_path_factory):
    data = make_data(TOY_TEXTS, TOY_LABELS)
    meter = CostMeter()
    out = tmp_path_factory.mktemp("ee-run")
    method = get_method_class("early-exit")(
        model_name_or_path=str(tiny_bert4_dir), target_retention=0.9, **FAST
    ).fit(data, meter, seed=1, output_dir=out)
    return method, meter, data


def test_registered():
    assert get_method_class("early-exit") is EarlyExitMethod


def test_fit_trains_and_calibrates(trained):
    method, meter, data = trained
    assert len(meter.epoch_durations_s) == 6 and all(d > 0 for d in meter.epoch_durations_s)
    cfg = method.model.config
    assert isinstance(method.model, EarlyExitForSequenceClassification)
    assert cfg.problem_type == "single_label_classification"
    assert cfg.id2label == {0: "crude", 1: "earn", 2: "grain", 3: "interest"}
    calibration = cfg.calibration
    assert calibration["rule"] == "entropy" and calibration["target_retention"] == 0.9
    assert [row["entropy_threshold"] for row in calibration["table"]] == list(ENTROPY_GRID)
    assert cfg.entropy_threshold == calibration["chosen"]["entropy_threshold"]
    chosen = calibration["chosen"]
    assert chosen["macro_f1"] >= 0.9 * calibration["full_depth_macro_f1"]
    # nothing faster keeps the target
    faster = [row for row in calibration["table"] if row["flops"] < chosen["flops"]]
    assert all(row["macro_f1"] < 0.9 * calibration["full_depth_macro_f1"] for row in faster)
    # the calibrated rule really gives the validation figures
    proba = method.predict_proba(data.validation.texts)
    scores = classification_metrics(data.validation.labels, proba.argmax(1), data.label_names, False)
    assert scores["macro_f1"] == pytest.approx(chosen["macro_f1"])
    assert method.last_exit_layers.mean() == pytest.approx(chosen["mean_exit_layer"])
    assert 0 < calibration["full_depth_macro_f1"] <= 1


def test_fit_updates_encoder_and_every_exit(trained, tiny_bert4_dir):
    method, _, _ = trained
    fresh = EarlyExitForSequenceClassification.from_encoder(str(tiny_bert4_dir), num_labels=4)
    trained_state = method.model.state_dict()
    for key in (
        "encoder.encoder.layer.0.attention.self.query.weight",
        "encoder.embeddings.word_embeddings.weight",
    ):
        assert not torch.equal(fresh.state_dict()[key], trained_state[key])
    for i in range(L):  # joint training: every exit classifier learns (they start from N(0, 0.02))
        assert trained_state[f"classifiers.{i}.out.weight"].abs().max() > 0.05


def test_predictions_do_not_depend_on_batch_size(trained):
    method, _, _ = trained
    texts = TOY_TEXTS + ["oil", "the a of and to in stock shares company profit oil crude barrel prices"]
    one = method.predict_with_exits(texts, batch_size=1)
    many = method.predict_with_exits(texts, batch_size=8)
    np.testing.assert_array_equal(one[1], many[1])
    np.testing.assert_allclose(one[0], many[0], rtol=1e-4, atol=1e-5)
    proba = method.predict_proba(texts)
    assert proba.shape == (10, 4) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)


def test_flops_follow_the_exit_layers(trained):
    method, _, _ = trained
    texts = TOY_TEXTS
    _, exits, lens = method.predict_with_exits(texts)
    flops = method.flops_per_document(texts)
    assert flops["flops"] == pytest.approx(method.model.flops_per_document(lens, exits).mean())
    full = method.model.flops_per_document(lens, np.full_like(exits, L), exit_rule="none").mean()
    first = method.model.flops_per_document(lens, np.ones_like(exits), entropy_threshold=1.0).mean()
    assert first <= flops["flops"] <= full + L * 2 * 32 * 4  # at most full depth (+ the exit classifiers)
    assert flops["flops_train_step"] == pytest.approx(train_step_flops(method.model.config, lens).mean())
    assert flops["flops_train_step"] > 2 * flops["flops"]


def test_cost_notes(trained):
    method, _, _ = trained
    method.predict_proba(TOY_TEXTS)
    notes = method.cost_notes()
    assert (
        notes["exit_rule"] == "entropy"
        and notes["entropy_threshold"] == method.model.config.entropy_threshold
    )
    assert notes["num_hidden_layers"] == L
    assert sum(notes["exit_layer_histogram_validation"]) == 8 and len(notes["exit_layer_histogram"]) == L
    assert notes["mean_exit_layer"] == pytest.approx(method.last_exit_layers.mean())
    assert 0 < notes["full_depth_macro_f1_validation"] <= 1
    json.dumps(notes)  # results rows are JSON


def test_save_load_round_trip(trained, tmp_path):
    method, _, _ = trained
    method.save(tmp_path / "ee")
    loaded = load_model(tmp_path / "ee")
    assert isinstance(loaded, EarlyExitMethod)
    assert loaded.model.config.entropy_threshold == method.model.config.entropy_threshold
    assert loaded.model.config.calibration == method.model.config.calibration
    a, b = method.predict_with_exits(TOY_TEXTS), loaded.predict_with_exits(TOY_TEXTS)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_curve_rows_match_calibration(trained):
    method, _, data = trained
    rows = method.curve(data.validation.texts, data.validation.labels, measure=False)
    assert len(rows) == len(ENTROPY_GRID) + L
    table = method.model.config.calibration["table"]
    for row, calibrated in zip(rows, table, strict=False):
        assert row["macro_f1"] == pytest.approx(calibrated["macro_f1"])
        assert row["mean_exit_layer"] == calibrated["mean_exit_layer"]


def test_two_stage_with_unlabeled_text(tiny_bert4_dir, tmp_path, monkeypatch):
    import frugaltext.methods.torch_method as module  # the shared trainer call of every torch method

    snapshots, datasets = [], []
    original = module.train_with_trainer

    def recording(model, train_dataset, *args, **kwargs):
        snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        datasets.append(train_dataset)
        return original(model, train_dataset, *args, **kwargs)

    monkeypatch.setattr(module, "train_with_trainer", recording)

    unlabeled = tmp_path / "unlabeled.jsonl.gz"
    with gzip.open(unlabeled, "wt", encoding="utf-8") as handle:
        for text in ["oil prices opec", "wheat grain", "bank rate dollar", "company profit"]:
            handle.write(json.dumps({"text": text}) + "\n")
    data = make_data(TOY_TEXTS, TOY_LABELS)
    meter = CostMeter()
    method = EarlyExitMethod(
        model_name_or_path=str(tiny_bert4_dir),
        training_mode="two_stage",
        exit_rule="patience",
        stage2_epochs=2,
        unlabeled_path=str(unlabeled),
        **{**FAST, "epochs": 3},
    )
    method.fit(data, meter, seed=0)
    assert len(meter.epoch_durations_s) == 3 + 2  # both stages are timed
    assert len(snapshots) == 2
    assert (
        len(datasets[1]) == 8 + 4 and "labels" not in datasets[1][0]
    )  # training texts + unlabeled, no labels
    final = method.model.state_dict()
    stage1, start = snapshots[1], snapshots[0]
    backbone = [k for k in final if k.startswith("encoder.") or k.startswith(f"classifiers.{L - 1}.")]
    students = [
        k for k in final if k.startswith("classifiers.") and not k.startswith(f"classifiers.{L - 1}.")
    ]
    assert all(torch.equal(stage1[k], final[k]) for k in backbone)  # stage 2 leaves the backbone alone
    assert not all(torch.equal(stage1[k], final[k]) for k in students)  # and trains the exits
    assert all(torch.equal(start[k], stage1[k]) for k in students)  # which stage 1 left alone
    cfg = method.model.config
    assert cfg.training_mode == "two_stage" and cfg.training_stage == 2
    assert cfg.exit_rule == "patience" and 1 <= cfg.patience <= L
    assert [row["patience"] for row in cfg.calibration["table"]] == [1, 2, 3, 4]
    flops = method.flops_per_document(TOY_TEXTS)
    lens = method.predict_with_exits(TOY_TEXTS)[2]
    assert flops["flops_train_step"] == pytest.approx(train_step_flops(cfg, lens, stage=1).mean())
    assert method.cost_notes()["flops_train_step_stage2_at_max_length"] > 0


def test_multi_label(tiny_bert4_dir):
    labels = [
        ["earn"],
        ["crude"],
        ["grain", "trade"],
        ["interest"],
        ["earn"],
        ["crude"],
        ["grain"],
        ["interest", "trade"],
    ]
    data = make_data(TOY_TEXTS, labels, multi_label=True)
    method = EarlyExitMethod(model_name_or_path=str(tiny_bert4_dir), **{**FAST, "epochs": 1}).fit(
        data, CostMeter()
    )
    assert method.model.config.problem_type == "multi_label_classification"
    proba = method.predict_proba(TOY_TEXTS)
    assert proba.shape == (8, 5) and ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_array_equal(method.predict(TOY_TEXTS), (proba >= 0.5).astype(int))


def test_settings_are_checked():
    with pytest.raises(ConfigError,
                       match=r"'exit_rule': got 'confidence'; choose one of 'entropy', 'patience', 'none'"):
        EarlyExitMethod(exit_rule="confidence")
    with pytest.raises(ConfigError, match="unlabeled_path is used only by self-distillation"):
        EarlyExitMethod(unlabeled_path="x.txt")
    with pytest.raises(ConfigError, match=r"'target_retention': must be > 0 and <= 1"):
        EarlyExitMethod(target_retention=0)
    with pytest.raises(ConfigError, match="unknown setting 'patience_t'"):
        EarlyExitMethod(patience_t=2)


def test_read_unlabeled_texts(tmp_path):
    (tmp_path / "a.txt").write_text("first doc\n\nsecond doc\n", encoding="utf-8")
    assert read_unlabeled_texts(tmp_path / "a.txt") == ["first doc", "second doc"]
    (tmp_path / "b.jsonl").write_text('{"text": "ok"}\n{"body": "no text"}\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"b.jsonl, line 2: field 'text' is missing"):
        read_unlabeled_texts(tmp_path / "b.jsonl")
    with pytest.raises(DataNotFoundError, match="does not exist"):
        read_unlabeled_texts(tmp_path / "missing.txt")


def test_settings_read_cli_strings_and_yaml_lists():
    method = EarlyExitMethod(
        classifier_dropout="0.2", stage2_learning_rate="none", layer_loss_weights=[1, 1, 2, 2]
    )
    assert method.settings.classifier_dropout == 0.2 and method.settings.stage2_learning_rate is None
    assert method.settings.layer_loss_weights == "1.0,1.0,2.0,2.0"
    with pytest.raises(ConfigError, match="setting 'classifier_dropout': cannot read 'high' as float"):
        EarlyExitMethod(classifier_dropout="high")


@pytest.mark.parametrize("mode", ["joint", "two_stage"])
def test_fit_on_mpnet(tiny_mpnet_dir, tmp_path, mode):
    """The method on a (tiny) MPNet encoder: trains, calibrates, predicts batch-free, counts FLOPs, saves."""
    data = make_data(TOY_TEXTS, TOY_LABELS)
    method = EarlyExitMethod(
        model_name_or_path=str(tiny_mpnet_dir),
        training_mode=mode,
        target_retention=0.9,
        stage2_epochs=2,
        **{**FAST, "epochs": 4},
    ).fit(data, CostMeter(), seed=0)
    model = method.model
    assert type(model.encoder).__name__ == "MPNetModel" and model.num_layers == 3
    fresh = EarlyExitForSequenceClassification.from_encoder(str(tiny_mpnet_dir), num_labels=4)
    key = "encoder.encoder.layer.0.attention.attn.q.weight"
    assert not torch.equal(fresh.state_dict()[key], model.state_dict()[key])
    calibration = model.config.calibration
    assert calibration["chosen"]["macro_f1"] >= 0.9 * calibration["full_depth_macro_f1"]
    texts = TOY_TEXTS + ["oil", "the a of and to in stock shares company profit oil crude barrel prices"]
    one, many = method.predict_with_exits(texts, batch_size=1), method.predict_with_exits(texts, batch_size=8)
    np.testing.assert_array_equal(one[1], many[1])
    np.testing.assert_allclose(one[0], many[0], rtol=1e-4, atol=1e-5)
    flops = method.flops_per_document(texts)
    assert flops["flops"] == pytest.approx(model.flops_per_document(many[2], many[1]).mean())
    method.save(tmp_path / "ee")
    loaded = load_model(tmp_path / "ee")
    assert type(loaded.model.encoder).__name__ == "MPNetModel"
    assert loaded.model.config.calibration == calibration
    again = loaded.predict_with_exits(texts, batch_size=8)
    np.testing.assert_array_equal(again[0], many[0])
    np.testing.assert_array_equal(again[1], many[1])
