"""A comparison (or a training) that fails after it started removes what it created, and nothing of finished
runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frugaltext.errors import DataFormatError
from tests.badinput.conftest import assert_clean_failure, run_cli, snapshot, toy_dir
from tests.fake_methods import MajorityMethod, fake_methods  # noqa: F401 - fixture registering test-majority

pytestmark = pytest.mark.usefixtures("fake_methods")

FAST = ["--no-progress", "--seeds", "1", "--cost.measure-energy", "false", "--cost.latency-n-docs", "2",
        "--cost.throughput-n-docs", "4", "--cost.min-throughput-duration-s", "0"]


class FailingMethod(MajorityMethod):
    """Fails while training, as a method does that finds bad input only then."""

    name = "test-fails"

    def fit(self, data, meter, seed=0, output_dir=None):
        if output_dir is not None:  # as a neural method does: its work folder exists when it fails
            (Path(output_dir) / "logs").mkdir(parents=True, exist_ok=True)
        raise DataFormatError("toy.jsonl, line 3: found only while training; fix the row")


@pytest.fixture
def failing_method(monkeypatch):
    from frugaltext.methods import base

    monkeypatch.setitem(base._REGISTRY, FailingMethod.name, FailingMethod)


def _compare(data, out, methods):
    return run_cli(["compare", "--data", data, "--methods", methods, "--output", out, *FAST])


def test_a_failed_first_run_leaves_no_output_folder(tmp_path, failing_method):
    data = toy_dir(tmp_path / "d")
    before = snapshot(tmp_path)
    result = _compare(data, tmp_path / "run", "test-fails")
    assert_clean_failure(result, ["toy.jsonl, line 3", "found only while training"], tmp_path, before)
    assert not (tmp_path / "run").exists()


def test_a_failed_run_in_an_existing_folder_removes_only_its_own_files(tmp_path, failing_method):
    data = toy_dir(tmp_path / "d")
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    before = snapshot(tmp_path)
    result = _compare(data, out, "test-fails")
    assert_clean_failure(result, ["found only while training"], tmp_path, before)
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_finished_runs_keep_their_rows_models_and_logs(tmp_path, failing_method):
    data = toy_dir(tmp_path / "d")
    out = tmp_path / "run"
    result = _compare(data, out, "test-majority,test-fails")
    assert result.exit_code == 1 and "found only while training" in result.stderr
    assert "Traceback" not in result.output
    rows = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert [r["method"] for r in rows] == ["test-majority"]
    assert (out / "models" / "test-majority-seed0").is_dir()
    assert (out / "logs" / "test-majority-seed0.log").is_file()
    assert (out / "config.yaml").is_file()
    assert not (out / "models" / "test-fails-seed0").exists()
    assert not (out / "work").exists()
    # a later failure does not touch the earlier rows either
    again = _compare(data, out, "test-majority,test-fails")
    assert again.exit_code == 1
    assert json.loads((out / "results.json").read_text(encoding="utf-8")) == rows


def test_a_failed_train_leaves_no_output_folder(tmp_path, failing_method):
    data = toy_dir(tmp_path / "d")
    before = snapshot(tmp_path)
    result = run_cli(["train", "--data", data, "--method", "test-fails", "--output", tmp_path / "model",
                      "--no-measure-energy"])
    assert_clean_failure(result, ["found only while training"], tmp_path, before)
