"""Resume checks what it skips: the model manifest (:mod:`frugaltext.manifest`), ``Method.save`` writing it
last, and ``compare`` retraining a finished run whose model folder is missing, truncated or half saved."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from frugaltext.experiment.config import resolve_config
from frugaltext.experiment.results import read_results, write_results
from frugaltext.experiment.runner import run_compare
from frugaltext.manifest import MANIFEST_FILE, verify_manifest, write_manifest
from frugaltext.methods.base import METHOD_FILE
from tests.fake_methods import FIT_CALLS, KeywordMethod, fake_methods  # noqa: F401 - fixture
from tests.helpers import make_data, write_tiny_corpus

REPO = Path(__file__).resolve().parents[1]


# ---- the manifest ---------------------------------------------------------------------------------------


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(b"\x00\x01" * 500)
    (folder / "sub" / "vocab.txt").write_text("a\nb\n")
    write_manifest(folder)
    return folder


def test_manifest_lists_every_file_with_size_and_sha256(tmp_path):
    folder = _folder(tmp_path)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert manifest["format"] == 1
    assert [(f["path"], f["size_bytes"]) for f in manifest["files"]] == [("sub/vocab.txt", 4),
                                                                        ("weights.bin", 1000)]
    assert all(len(f["sha256"]) == 64 for f in manifest["files"])
    assert verify_manifest(folder) is None
    (folder / "notes.txt").write_text("written after the manifest")
    assert verify_manifest(folder) is None  # unlisted files are ignored


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda f: (f / "weights.bin").unlink(), "weights.bin missing"),
        (lambda f: (f / "weights.bin").write_bytes(b"\x00" * 10),
         "weights.bin has 10 bytes, the manifest says 1000"),
        (lambda f: (f / "sub" / "vocab.txt").write_text("x\ny\n"), "sub/vocab.txt changed (sha256"),
        (lambda f: (f / MANIFEST_FILE).unlink(), f"no {MANIFEST_FILE}"),
        (lambda f: (f / MANIFEST_FILE).write_text('{"files": [tru'), f"{MANIFEST_FILE} unreadable"),
        (lambda f: shutil.rmtree(f), "folder missing"),
    ],
)
def test_verify_manifest_names_what_is_wrong(tmp_path, damage, reason):
    folder = _folder(tmp_path)
    damage(folder)
    assert reason in verify_manifest(folder)


# ---- Method.save ----------------------------------------------------------------------------------------


def _fitted_keyword():
    from frugaltext.cost.meter import CostMeter, CostSettings

    data = make_data(["oil crude", "wheat grain"], ["crude", "grain"])
    return KeywordMethod().fit(data, CostMeter(CostSettings(measure_energy=False)))


def test_save_writes_the_manifest_last_and_a_failed_save_leaves_none(tmp_path, monkeypatch):
    method = _fitted_keyword()
    folder = method.save(tmp_path / "m")
    assert verify_manifest(folder) is None
    listed = {f["path"] for f in json.loads((folder / MANIFEST_FILE).read_text())["files"]}
    assert listed == {"fake.json", METHOD_FILE}
    assert KeywordMethod.load(folder).label_names == ("crude", "grain")

    def crash(directory):
        (directory / "fake.json").write_text("{half")
        raise OSError("disk full")

    monkeypatch.setattr(method, "_save", crash)
    with pytest.raises(OSError):
        method.save(folder)
    assert verify_manifest(folder) == f"no {MANIFEST_FILE}"  # the old manifest went before the new files


def test_save_on_a_non_zero_rank_writes_nothing(tmp_path, monkeypatch):
    method = _fitted_keyword()
    monkeypatch.setenv("RANK", "1")
    assert method.save(tmp_path / "m") == tmp_path / "m"
    assert not (tmp_path / "m").exists()


# ---- compare: resume verifies the model folder ----------------------------------------------------------


def _config(tmp_path, data, methods="test-majority,test-keyword"):
    return resolve_config(preset="quick", overrides={
        "data": str(data), "methods": methods, "output": str(tmp_path / "out"),
        "cost.measure_energy": "false", "cost.throughput_n_docs": "8", "cost.latency_n_docs": "2",
        "cost.min_throughput_duration_s": "0"})


@pytest.fixture
def finished(tmp_path, fake_methods):  # noqa: F811 - the fixture
    data = write_tiny_corpus(tmp_path / "data")
    cfg = _config(tmp_path, data)
    run_compare(cfg, progress=False)
    FIT_CALLS.clear()
    return cfg, tmp_path / "out"


def _log(out: Path) -> str:
    return (out / "compare.log").read_text()


def test_intact_runs_are_skipped(finished):
    cfg, out = finished
    result = run_compare(cfg, progress=False)
    assert result.ran == [] and sum(FIT_CALLS.values()) == 0
    assert "model folder verified" in _log(out)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda m: shutil.rmtree(m), "models/test-keyword-seed0: folder missing"),
        (lambda m: (m / "fake.json").unlink(), "models/test-keyword-seed0: fake.json missing"),
        (lambda m: (m / "fake.json").write_text("{}"), "models/test-keyword-seed0: fake.json has 2 bytes"),
        (lambda m: (m / MANIFEST_FILE).unlink() or (m / METHOD_FILE).unlink(),
         f"models/test-keyword-seed0: no {MANIFEST_FILE} and no {METHOD_FILE}"),
    ],
)
def test_a_damaged_model_folder_is_trained_again_and_its_row_replaced(finished, damage, reason):
    cfg, out = finished
    old_rows = read_results(out / "results.json")
    damage(out / "models" / "test-keyword-seed0")
    result = run_compare(cfg, progress=False)
    assert result.ran == ["test-keyword-seed0"] and result.skipped == ["test-majority-seed0"]
    assert reason in _log(out) and "training test-keyword-seed0 again" in _log(out)
    rows = read_results(out / "results.json")
    assert len(rows) == len(old_rows) == 2  # replaced, not added
    assert verify_manifest(out / "models" / "test-keyword-seed0") is None
    assert not [p for p in (out / "models").iterdir() if p.name.startswith(".")]  # no partial folders


def test_a_folder_saved_before_manifests_is_loaded_once_then_trusted(finished):
    cfg, out = finished
    model = out / "models" / "test-keyword-seed0"
    (model / MANIFEST_FILE).unlink()
    result = run_compare(cfg, progress=False)
    assert result.ran == []
    assert "models/test-keyword-seed0: saved by an older frugaltext (no manifest); it loads" in _log(out)
    assert verify_manifest(model) is None

    (model / MANIFEST_FILE).unlink()
    (model / "fake.json").write_text("not json")  # an old folder that does not load is retrained
    result = run_compare(cfg, progress=False)
    assert result.ran == ["test-keyword-seed0"]
    assert "it does not load" in _log(out)


def test_report_never_trains_nor_touches_old_run_folders(tmp_path):
    from frugaltext.reports import build_reports

    run = tmp_path / "table3-r8"
    shutil.copytree(REPO / "docs" / "runs" / "table3-r8", run)
    before = sorted(p.relative_to(run).as_posix() for p in run.rglob("*"))
    rows = read_results(run / "results.json")
    build_reports(run / "results.json")
    assert read_results(run / "results.json") == rows
    after = sorted(p.relative_to(run).as_posix() for p in run.rglob("*"))
    assert not [p for p in after if p not in before and (p.startswith("models") or MANIFEST_FILE in p)]


def test_rows_of_an_old_results_json_still_load_and_write(tmp_path):
    rows = read_results(REPO / "docs" / "runs" / "table3-r8" / "results.json")
    assert rows and all("train_steps" not in r for r in rows)
    write_results(rows, tmp_path)
    assert read_results(tmp_path / "results.json") == json.loads(json.dumps(rows))
