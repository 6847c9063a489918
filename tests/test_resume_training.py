"""Training that survives a kill: step checkpoints, resume from the newest complete one after a SIGKILL (same
number of optimisation steps, the same weights on CPU), stale checkpoints of other settings not resumed."""

from __future__ import annotations

import json
import signal

import pytest

from frugaltext.experiment.config import resolve_config
from frugaltext.experiment.runner import run_compare
from frugaltext.manifest import MANIFEST_FILE
from frugaltext.training.hf import TIMING_FILE, find_resume_checkpoint
from tests.helpers import compare_killed_at_step, tiny_bert_settings, write_tiny_corpus


def _overrides(tmp_path, tiny_bert_dir, output):
    data = tmp_path / "data"
    if not data.exists():
        write_tiny_corpus(data)  # 12 train documents: 6 steps per epoch at batch 2
    return {"data": str(data), "methods": ["bert"], "output": str(tmp_path / output), "checkpoint_steps": 2,
            "cost.measure_energy": False, "cost.throughput_n_docs": 8, "cost.latency_n_docs": 2,
            "cost.min_throughput_duration_s": 0,
            **{f"bert.{k}": v for k, v in tiny_bert_settings(tiny_bert_dir).items()}}


def _weights_sha256(model_dir):
    files = json.loads((model_dir / MANIFEST_FILE).read_text())["files"]
    return {f["path"]: f["sha256"] for f in files}["model.safetensors"]


def test_a_killed_compare_run_resumes_from_its_last_checkpoint(tmp_path, tiny_bert_dir):
    killed = _overrides(tmp_path, tiny_bert_dir, "killed")
    # Killed at the end of step 5 of 12 (mid-epoch 1): step checkpoints every 2 steps, so checkpoint-4
    # is the newest complete one.
    process = compare_killed_at_step(killed, kill_at=5)
    assert process.returncode == -signal.SIGKILL, process.stderr[-2000:]
    out = tmp_path / "killed"
    work = out / "work" / "bert-seed0" / "checkpoints"
    assert find_resume_checkpoint(work).name == "checkpoint-4"
    assert not (out / "results.json").exists()
    # the time trained up to the checkpoint travels with it: step 4 of 6 in epoch 0, no epoch finished
    saved = json.loads((work / "checkpoint-4" / TIMING_FILE).read_text())
    assert saved["epoch_durations_s"] == [] and saved["epoch_elapsed_s"] > 0
    assert saved["train_elapsed_s"] >= saved["epoch_elapsed_s"]

    resumed = run_compare(resolve_config(overrides=killed), progress=False)
    assert resumed.ran == ["bert-seed0"]
    log = (out / "logs" / "bert-seed0.log").read_text()
    assert "resuming from checkpoint-4" in log
    row = resumed.rows[0]
    assert row["resumed_from_step"] == 4 and row["train_steps"] == 12  # 2 epochs x 6 steps
    # the time before the kill is restored: both epochs timed, the first one including its pre-kill part
    assert "restored the training time before checkpoint-4" in log
    assert row["train_duration_restored_s"] == pytest.approx(saved["train_elapsed_s"])
    assert row["n_epochs"] == 2 and row["epoch_durations_s"][0] > saved["epoch_elapsed_s"]
    assert row["train_duration_s"] > saved["train_elapsed_s"]
    assert not (out / "work").exists()  # removed after success

    plain_config = resolve_config(overrides=_overrides(tmp_path, tiny_bert_dir, "plain"))
    plain = run_compare(plain_config, progress=False)
    assert plain.rows[0]["train_steps"] == 12 and plain.rows[0]["resumed_from_step"] == 0
    assert plain.rows[0]["train_duration_restored_s"] == 0 and plain.rows[0]["n_epochs"] == 2
    # optimizer, scheduler, RNG and data position restored: the same model as an uninterrupted run
    plain_model = tmp_path / "plain" / "models" / "bert-seed0"
    assert _weights_sha256(out / "models" / "bert-seed0") == _weights_sha256(plain_model)
    assert row["macro_f1"] == plain.rows[0]["macro_f1"]


def test_incomplete_checkpoints_are_passed_over(tmp_path):
    for step, complete in ((2, True), (4, True), (6, False)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-x").mkdir()
    assert find_resume_checkpoint(tmp_path).name == "checkpoint-4"
    assert find_resume_checkpoint(tmp_path / "absent") is None


@pytest.fixture
def tiny_data(tmp_path):
    return write_tiny_corpus(tmp_path / "data")


def test_train_resumes_its_own_checkpoints_but_not_those_of_other_settings(tmp_path, tiny_bert_dir,
                                                                           tiny_data, monkeypatch, caplog):
    import frugaltext.api as api

    monkeypatch.setattr(api, "_remove_work_dir", lambda work: None)  # as if killed before the clean-up
    settings = tiny_bert_settings(tiny_bert_dir, epochs=1)
    out = tmp_path / "model"
    first = api.train(tiny_data, "bert", out, measure_energy=False, checkpoint_steps=0, **settings)
    assert (first.train_steps, first.resumed_steps) == (6, 0)
    assert find_resume_checkpoint(out / "work" / "checkpoints").name == "checkpoint-6"

    caplog.set_level("INFO", logger="frugaltext")
    again = api.train(tiny_data, "bert", out, measure_energy=False, checkpoint_steps=0, **settings)
    assert (again.train_steps, again.resumed_steps) == (6, 6)  # nothing left to train
    assert "resuming from checkpoint-6" in caplog.text

    caplog.clear()
    changed = api.train(tiny_data, "bert", out, measure_energy=False, checkpoint_steps=0,
                        **{**settings, "learning_rate": 1e-3})
    assert (changed.train_steps, changed.resumed_steps) == (6, 0)
    assert "trained with other settings or data" in caplog.text and "resuming" not in caplog.text
    result = json.loads((out / "train_result.json").read_text())
    assert result["train_steps"] == 6 and result["resumed_from_step"] == 0


def test_checkpoint_steps_is_a_compare_setting_outside_the_config_hash(tmp_path):
    from frugaltext.errors import ConfigError
    from frugaltext.experiment.config import config_hash, resolved_settings

    every_200 = resolve_config(preset="quick", overrides={"checkpoint_steps": "200"})
    assert every_200.checkpoint_steps == 200 and resolve_config(preset="quick").checkpoint_steps == 500
    identity = every_200.data_identity()
    assert config_hash(identity, "bert", resolved_settings("bert", every_200)) == config_hash(
        identity, "bert", resolved_settings("bert", resolve_config(preset="quick")))
    with pytest.raises(ConfigError, match="checkpoint_steps must be an integer >= 0"):
        resolve_config(overrides={"checkpoint_steps": "-1"})


def test_step_checkpoints_without_evaluation_keep_the_two_newest(tmp_path, tiny_bert_dir, tiny_data):
    """No validation split (``save_strategy="no"``): the step checkpoints alone make the run resumable."""
    from frugaltext.cost.meter import CostMeter, CostSettings
    from frugaltext.data import load_data
    from frugaltext.methods.bert import BertMethod

    data = load_data(str(tiny_data))
    method = BertMethod(**tiny_bert_settings(tiny_bert_dir, epochs=1))
    method.checkpoint_steps = 2
    method._eval_dataset = lambda data: None  # as for a dataset without validation documents
    method.fit(data, CostMeter(CostSettings(measure_energy=False)), output_dir=tmp_path / "work")
    kept = sorted(p.name for p in (tmp_path / "work" / "checkpoints").glob("checkpoint-*"))
    assert kept == ["checkpoint-2", "checkpoint-4"]  # saved at 2 and 4 of 6; save_total_limit=2
    assert method.train_steps == 6


def test_a_setting_added_later_at_its_default_keeps_old_checkpoints_resumable(tiny_bert_dir):
    """The work-folder fingerprint leaves out NEUTRAL_NEW_SETTINGS at their defaults (as config_hash does):
    checkpoints written before int8_keep_fp32_linear existed still match; a non-default value does not."""
    from frugaltext.methods import get_method_class
    from tests.conftest import TOY_LABELS, TOY_TEXTS
    from tests.helpers import make_data

    tiny_data = make_data(TOY_TEXTS, TOY_LABELS)

    settings = tiny_bert_settings(tiny_bert_dir, epochs=1)
    plain = get_method_class("bert")(**settings)
    plain.label_names, plain.multi_label = tiny_data.label_names, tiny_data.multi_label
    fingerprint = plain._work_fingerprint(tiny_data, seed=0)
    assert "int8_keep_fp32_linear" not in fingerprint["settings"]
    assert fingerprint["settings"]["encoder_layers"] is None  # older fingerprints on disk hold it
    kept = get_method_class("bert")(**settings, int8_keep_fp32_linear=r"output\.dense$")
    kept.label_names, kept.multi_label = tiny_data.label_names, tiny_data.multi_label
    assert kept._work_fingerprint(tiny_data, seed=0)["settings"]["int8_keep_fp32_linear"] == r"output\.dense$"
