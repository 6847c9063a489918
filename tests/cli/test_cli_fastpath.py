"""The fast path on the command line: --threads on every command, export, predict --backend/--quantization."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from frugaltext.cli.app import app
from frugaltext.cost.meter import CostMeter
from frugaltext.methods import get_method_class
from tests.cli.test_cli import FAST_COST
from tests.conftest import TOY_LABELS, TOY_TEXTS
from tests.fake_methods import fake_methods  # noqa: F401 - fixture registering test-majority, ...
from tests.helpers import make_data
from tests.test_compare import _toy_dir

runner = CliRunner()
COMMANDS = ["compare", "train", "evaluate", "predict", "export", "datasets", "topics", "report"]


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_threads(command):
    result = _invoke(command, "--help")
    assert result.exit_code == 0, result.output
    assert "--threads" in result.output


@pytest.mark.usefixtures("fake_methods")
def test_threads_reach_torch_and_the_results_row(tmp_path):
    out = tmp_path / "out"
    result = _invoke("compare", "--data", _toy_dir(tmp_path), "--methods", "test-majority", "--seeds", "1",
                     "--output", out, "--no-progress", "--threads", "1", *FAST_COST)
    assert result.exit_code == 0, result.output
    assert torch.get_num_threads() == 1
    rows = json.loads((out / "results.json").read_text())
    assert rows[0]["torch_threads"] == 1
    bad = _invoke("datasets", "--threads", "0")
    assert bad.exit_code != 0


@pytest.fixture(scope="module")
def bert_dir(tiny_bert_dir, tmp_path_factory):
    method = get_method_class("bert")(model_name_or_path=str(tiny_bert_dir), epochs=20, batch_size=8,
                                      learning_rate=1e-2, warmup_ratio=0.0, max_length=16,
                                      show_progress=False)
    method.fit(make_data(TOY_TEXTS, TOY_LABELS), CostMeter(), seed=1)
    return method.save(tmp_path_factory.mktemp("cli-bert") / "bert")


def _predict(model, docs, out, *options):
    result = _invoke("predict", "--model", model, "--input", docs, "--output", out, *options)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_export_then_predict_with_onnx_and_int8(bert_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(TOY_TEXTS) + "\n")
    torch_rows = _predict(bert_dir, docs, tmp_path / "torch.jsonl")
    int8_rows = _predict(bert_dir, docs, tmp_path / "int8.jsonl", "--quantization", "int8")
    assert [r["label"] for r in int8_rows] == [r["label"] for r in torch_rows]

    missing = _invoke("predict", "--model", bert_dir, "--input", docs, "--output", tmp_path / "x.jsonl",
                      "--backend", "onnx")
    assert missing.exit_code == 1 and "frugaltext export --model" in missing.stderr

    result = _invoke("export", "--model", bert_dir, "--threads", "1")
    assert result.exit_code == 0, result.output
    parity = json.loads((bert_dir / "model.parity.json").read_text())
    assert parity["label_agreement"] == 1.0 and parity["max_abs_logit_diff"] < 1e-4
    onnx_rows = _predict(bert_dir, docs, tmp_path / "onnx.jsonl", "--backend", "onnx")
    assert [r["label"] for r in onnx_rows] == [r["label"] for r in torch_rows]
    assert all(abs(a["probability"] - b["probability"]) < 1e-4 for a, b in zip(onnx_rows, torch_rows,
                                                                                 strict=True))

    out = tmp_path / "elsewhere" / "q.onnx"
    result = _invoke("export", "--model", bert_dir, "--quantization", "int8", "--output", out)
    assert result.exit_code == 0, result.output
    assert out.is_file() and (out.parent / "q.parity.json").is_file()


def test_export_of_a_non_bert_model_is_a_clear_error(tmp_path):
    directory = get_method_class("tfidf-lr")().fit(make_data(TOY_TEXTS, TOY_LABELS), CostMeter()).save(
        tmp_path / "lr")
    result = _invoke("export", "--model", directory)
    assert result.exit_code == 1 and "ONNX export supports bert" in result.stderr
    result = _invoke("export", "--model", directory, "--quantization", "int4")
    assert result.exit_code == 1 and "none or int8" in result.stderr
