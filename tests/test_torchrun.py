"""Several processes: the README's ``torchrun --standalone --nproc_per_node 2 -m frugaltext train ...`` on CPU
(gloo), with a tiny checkpoint and tiny data: the saved model loads and only rank 0 wrote into the output.

Which process writes what is recorded by an audit hook (``sitecustomize.py`` from
:func:`tests.helpers.write_probe`, first on ``PYTHONPATH``): every file opened for writing, created, renamed
or removed under the output folder, per rank. Writes made in C++ (safetensors, ``torch.save``) are not
audited; the folder's listing and its manifest cover those.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from frugaltext.manifest import verify_manifest
from frugaltext.methods.base import load_model
from tests.helpers import subprocess_env, write_probe, write_tiny_corpus


def _torchrun() -> list[str]:
    script = Path(sys.executable).with_name("torchrun")
    return [str(script)] if script.exists() else [sys.executable, "-m", "torch.distributed.run"]


# Runs in CI: 55-65 s on a busy shared 2-core CPU (three Python processes importing torch).
def test_torchrun_two_processes_train_and_only_rank_0_writes(tmp_path, tiny_bert_dir):
    data = write_tiny_corpus(tmp_path / "data")
    probe = write_probe(tmp_path / "probe")
    records = tmp_path / "records"
    records.mkdir()
    out = tmp_path / "out"
    env = subprocess_env(FRUGALTEXT_PROBE_WATCH=str(out), FRUGALTEXT_PROBE_DIR=str(records))
    env["PYTHONPATH"] = f"{probe}:{env['PYTHONPATH']}"
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    command = [*_torchrun(), "--standalone", "--nproc_per_node", "2", "-m", "frugaltext", "train",
               "--data", str(data), "--method", "bert", "--output", str(out), "--epochs", "1",
               "--model-name-or-path", str(tiny_bert_dir), "--max-length", "16", "--batch-size", "2",
               "--no-measure-energy", "--show-progress", "false", "--checkpoint-steps", "2"]
    process = subprocess.run(command, env=env, capture_output=True, text=True, timeout=540, cwd=tmp_path)
    assert process.returncode == 0, process.stderr[-4000:]

    model = load_model(out)
    assert model.name == "bert" and model.label_names == ("crude", "earn", "grain")
    assert model.predict_proba(["oil crude barrel"]).shape == (1, 3)
    assert verify_manifest(out) is None
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert files == ["config.json", "frugaltext_manifest.json", "frugaltext_method.json", "model.safetensors",
                     "tokenizer.json", "tokenizer_config.json", "train_result.json"]  # no temp or work files
    result = json.loads((out / "train_result.json").read_text())
    # 12 documents split over 2 processes at batch 2 per process: 3 optimisation steps
    assert result["train_steps"] == 3 and result["resumed_from_step"] == 0

    rank0 = (records / "rank0.txt").read_text().splitlines()
    assert any(line.endswith(f"{out}/frugaltext_manifest.json") for line in rank0)  # the probe works
    rank1 = (records / "rank1.txt").read_text().splitlines() if (records / "rank1.txt").exists() else []
    outside_work = [line for line in rank1 if not line.split(" ", 1)[1].startswith(f"{out}/work")]
    assert outside_work == []  # rank 1 only touched the Trainer's checkpoint folder (its own RNG state)


def test_probe_records_python_writes_per_rank(tmp_path):
    """The audit hook itself: a write under the watched folder is recorded under the process's rank."""
    probe = write_probe(tmp_path / "probe")
    watched = tmp_path / "watched"
    watched.mkdir()
    env = subprocess_env(FRUGALTEXT_PROBE_WATCH=str(watched), FRUGALTEXT_PROBE_DIR=str(tmp_path), RANK=1)
    env["PYTHONPATH"] = f"{probe}:{env['PYTHONPATH']}"
    code = f"open({str(watched / 'x.txt')!r}, 'w').write('x'); open({str(tmp_path / 'y.txt')!r}, 'w')"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    assert (tmp_path / "rank1.txt").read_text().splitlines() == [f"open {watched / 'x.txt'}"]
    shutil.rmtree(watched)
