"""Shared pieces of the bad-input suite: tiny data writers, one trained tf-idf model, and the CLI check.

Every bad input must end with exit code 1, a one-line ``Error: ...`` message on stderr that names the file or
setting, no traceback, and nothing half-written (no ``.NAME.tmpPID`` temporary files, no output folder that
was not there before).
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from frugaltext.cli.app import app

WORDS = {
    "earn": "company profit quarter net shares revenue dividend",
    "crude": "oil crude barrel prices opec refinery",
    "grain": "wheat grain tonnes harvest corn",
}


def toy_rows(n_per_class: int = 6, labels=("earn", "crude", "grain"), offset: int = 0) -> list[dict]:
    """Separable rows: three words of the label's topic each."""
    rows = []
    for label in labels:
        words = WORDS[label].split()
        for i in range(n_per_class):
            rows.append({"text": " ".join(words[(i + offset + j) % len(words)] for j in range(3)),
                         "label": label})
    return rows


def write_jsonl(path: Path, rows: list, compress: bool = False) -> Path:
    data = "".join(json.dumps(r) + "\n" for r in rows).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def toy_dir(root: Path, with_test: bool = True) -> Path:
    """A dataset directory: train (6 per class), validation (2 per class) and test (3 per class)."""
    root.mkdir(parents=True, exist_ok=True)
    write_jsonl(root / "train.jsonl", toy_rows(6))
    write_jsonl(root / "validation.jsonl", toy_rows(2, offset=1))
    if with_test:
        write_jsonl(root / "test.jsonl", toy_rows(3, offset=2))
    return root


def snapshot(root: Path) -> set[str]:
    """Every path under ``root`` (relative), to compare before/after a failed command."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def temp_leftovers(root: Path) -> list[str]:
    """Hidden temporary files of the atomic writers (``.NAME.tmpPID``) anywhere under ``root``."""
    return [str(p) for p in root.rglob(".*.tmp*")]


runner = CliRunner()


def run_cli(args: list) -> object:
    return runner.invoke(app, [str(a) for a in args])


def assert_clean_failure(result, expected: list[str], root: Path, before: set[str]) -> None:
    """Exit 1, a one-line message with every ``expected`` piece, no traceback, nothing new under ``root``."""
    stderr = result.stderr
    assert result.exit_code == 1, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert "Error: " in stderr, stderr
    message = stderr[stderr.index("Error: "):]  # log lines (INFO) may come first
    assert message.rstrip("\n").count("\n") == 0, message  # one line, nothing after it
    message = " ".join(message.split())
    for piece in expected:
        assert piece in message, f"{piece!r} not in {message!r}"
    assert not temp_leftovers(root), temp_leftovers(root)
    created = snapshot(root) - before
    assert not created, f"the failed command left {sorted(created)}"


def train_toy_model(root: Path) -> Path:
    """Train tfidf-lr on the toy directory (single-label: earn, crude, grain) into ``root/model``."""
    from frugaltext.api import train

    train(data=toy_dir(root / "data"), method="tfidf-lr", output=root / "model", measure_energy=False)
    return root / "model"


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory) -> Path:
    """A tfidf-lr model trained on the toy directory (single-label: earn, crude, grain)."""
    return train_toy_model(tmp_path_factory.mktemp("badinput-model"))


@pytest.fixture
def model_copy(trained_model, tmp_path) -> Path:
    """A private copy of the trained model, to damage."""
    target = tmp_path / "model"
    shutil.copytree(trained_model, target)
    return target
