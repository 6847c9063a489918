"""Per-run locks (:func:`frugaltext.experiment.results.run_lock`): two processes never train the same run at
once, the second takes the first one's row at the end, and a killed holder blocks nobody."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from frugaltext.experiment import runner as runner_module
from frugaltext.experiment.config import resolve_config
from frugaltext.experiment.results import read_results, run_lock, write_results
from frugaltext.experiment.runner import run_compare
from tests.fake_methods import FIT_CALLS, fake_methods  # noqa: F401 - fixture
from tests.helpers import subprocess_env, write_tiny_corpus

pytestmark = pytest.mark.usefixtures("fake_methods")

#: Hold the lock of run argv[2] in output argv[1], say so on stdout, and keep it until the file argv[3]
#: exists (or until killed).
_HOLDER = r"""
import sys, time
from pathlib import Path
from frugaltext.experiment.results import run_lock

with run_lock(sys.argv[1], sys.argv[2]) as held:
    print("held" if held else "busy", flush=True)
    while held and not Path(sys.argv[3]).exists():
        time.sleep(0.05)
"""


def _hold(out: Path, run_name: str, release: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(out), run_name, str(release)],
                              env=subprocess_env(), stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def _config(tmp_path, data, methods="test-majority,test-keyword"):
    return resolve_config(preset="quick", overrides={
        "data": str(data), "methods": methods, "output": str(tmp_path / "out"),
        "cost.measure_energy": "false", "cost.throughput_n_docs": "8", "cost.latency_n_docs": "2",
        "cost.min_throughput_duration_s": "0"})


def test_a_held_run_lock_is_refused_and_freed_when_its_holder_is_killed(tmp_path):
    out = tmp_path / "out"
    holder = _hold(out, "bert-seed0", tmp_path / "never")
    try:
        with run_lock(out, "bert-seed0") as held:
            assert held is False
        with run_lock(out, "bert-seed1") as held:  # other runs are free
            assert held is True
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    assert holder.returncode == -signal.SIGKILL
    with run_lock(out, "bert-seed0") as held:  # the kernel released the dead holder's lock
        assert held is True
    assert (out / "locks" / "bert-seed0.lock").exists()


def test_a_run_another_process_holds_is_skipped_then_its_row_is_taken_at_the_end(tmp_path, monkeypatch):
    data = write_tiny_corpus(tmp_path / "data")
    out = tmp_path / "out"
    # What the other process will produce: the keyword run's model folder and row.
    finished = run_compare(_config(tmp_path, data, methods="test-keyword"), progress=False).rows
    (out / "results.json").unlink()
    release = tmp_path / "release"
    holder = _hold(out, "test-keyword-seed0", release)

    real_run_one = runner_module._run_one

    def run_one_while_the_other_process_finishes(*args, **kwargs):
        row = real_run_one(*args, **kwargs)
        write_results(finished, out)  # the other process adds its row ...
        release.touch()  # ... and lets go of its lock
        return row

    monkeypatch.setattr(runner_module, "_run_one", run_one_while_the_other_process_finishes)
    FIT_CALLS.clear()
    try:
        # keyword first: it is busy, majority runs meanwhile, then keyword is taken up again
        result = run_compare(_config(tmp_path, data, methods="test-keyword,test-majority"), progress=False)
    finally:
        release.touch()
        holder.wait(timeout=30)
    assert result.ran == ["test-majority-seed0"] and result.skipped == ["test-keyword-seed0"]
    assert FIT_CALLS == {("test-majority", 0): 1}  # the keyword run was not trained twice
    log = (out / "compare.log").read_text()
    assert f"test-keyword-seed0: skipping for now, pid {holder.pid}" in log
    assert "test-keyword-seed0: waiting for the other process" in log
    methods = sorted(r["method"] for r in read_results(out / "results.json"))
    assert methods == ["test-keyword", "test-majority"]


def test_a_run_whose_holder_died_is_trained(tmp_path):
    data = write_tiny_corpus(tmp_path / "data")
    out = tmp_path / "out"
    holder = _hold(out, "test-keyword-seed0", tmp_path / "never")
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    FIT_CALLS.clear()
    result = run_compare(_config(tmp_path, data, methods="test-keyword"), progress=False)
    assert result.ran == ["test-keyword-seed0"] and FIT_CALLS == {("test-keyword", 0): 1}
    assert "skipping for now" not in (out / "compare.log").read_text()
