"""The frugaltext command line through CliRunner: help, errors, train/evaluate/predict round trips."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from frugaltext.cli.app import app
from tests.fake_methods import fake_methods  # noqa: F401 - fixture registering test-majority, ...
from tests.test_compare import _toy_dir

pytestmark = pytest.mark.usefixtures("fake_methods")

runner = CliRunner()
COMMANDS = ["compare", "train", "evaluate", "predict", "datasets", "topics", "report", "select"]
FAST_COST = [
    "--cost.measure-energy",
    "false",
    "--cost.throughput-n-docs",
    "8",
    "--cost.latency-n-docs",
    "2",
    "--cost.min-throughput-duration-s",
    "0",
]


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = _invoke(command, "--help")
    assert result.exit_code == 0, result.output
    assert f"Usage: frugaltext {command}" in result.output


def test_top_level_help_lists_the_commands():
    result = _invoke("--help")
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


def test_datasets_lists_r8():
    result = _invoke("datasets")
    assert result.exit_code == 0
    assert (
        "r8" in result.output
        and "5485 train, 2189 test" in result.output
        and "acq, crude, earn" in result.output
    )


def test_missing_data_is_exit_1_with_a_message_and_no_traceback(tmp_path):
    result = _invoke(
        "compare",
        "--data",
        tmp_path / "nope",
        "--methods",
        "test-majority",
        "--output",
        tmp_path / "out",
        "--no-progress",
        *FAST_COST,
    )
    assert result.exit_code == 1
    assert "Error:" in result.stderr and "nope" in result.stderr
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


def test_unknown_option_is_exit_1_with_the_valid_ones(tmp_path):
    result = _invoke("compare", "--max-trian-docs", "5", "--output", tmp_path / "out")
    assert result.exit_code == 1
    assert "unknown option --max-trian-docs" in result.stderr and "--max-train-docs" in result.stderr
    result = _invoke(
        "train", "--data", "r8", "--method", "tfidf-lr", "--output", tmp_path / "m", "--epochz", "3"
    )
    assert result.exit_code == 1 and "unknown setting 'epochz'" in result.stderr


def test_compare_writes_results_and_prints_the_table(tmp_path):
    data = _toy_dir(tmp_path)
    out = tmp_path / "out"
    result = _invoke(
        "compare",
        "--data",
        data,
        "--methods",
        "test-majority,test-keyword",
        "--seeds",
        "1",
        "--output",
        out,
        "--no-progress",
        "--test-keyword.smoothing",
        "0.5",
        *FAST_COST,
    )
    assert result.exit_code == 0, result.output
    assert "test-keyword" in result.stdout and "macro-F1" in result.stdout
    assert "2 run(s) trained, 0 skipped" in result.stdout
    rows = json.loads((out / "results.json").read_text())
    assert rows[1]["settings"]["smoothing"] == 0.5
    again = _invoke(
        "compare",
        "--data",
        data,
        "--methods",
        "test-majority,test-keyword",
        "--output",
        out,
        "--test-keyword.smoothing",
        "0.5",
        *FAST_COST,
    )  # with the progress bar (on stderr)
    assert again.exit_code == 0 and "0 run(s) trained, 2 skipped" in again.stdout

    (out / "table.md").unlink()
    report = _invoke("report", out, "--reference", "test-keyword")
    assert report.exit_code == 0, report.output
    assert "Rtn (%) vs test-keyword" in (out / "table.md").read_text()
    missing = _invoke("report", tmp_path / "empty")
    assert missing.exit_code == 1 and "results.json does not exist" in missing.stderr


def test_train_evaluate_predict_round_trip_with_tfidf(tmp_path):
    data = _toy_dir(tmp_path)
    model = tmp_path / "model"
    result = _invoke(
        "train",
        "--data",
        data,
        "--method",
        "tfidf-lr",
        "--output",
        model,
        "--seed",
        "1",
        "--no-measure-energy",
        "--C",
        "10",
    )
    assert result.exit_code == 0, result.output
    meta = json.loads((model / "frugaltext_method.json").read_text())
    assert meta["method"] == "tfidf-lr" and meta["settings"]["C"] == 10.0
    trained = json.loads((model / "train_result.json").read_text())
    assert trained["validation"]["macro_f1"] == 1.0 and trained["costs"]["n_epochs"] == 1

    result = _invoke("evaluate", "--model", model, "--data", data, "--split", "test")
    assert result.exit_code == 0, result.output
    assert "macro_f1=1.0000" in result.stdout
    scores = json.loads((model / "eval-test.json").read_text())
    assert (
        scores["n_docs"] == 9
        and scores["macro_f1"] == 1.0
        and set(scores["per_class"]) == {"crude", "earn", "grain"}
    )

    single = _invoke(
        "evaluate", "--model", model, "--data", data / "test.jsonl", "--output", tmp_path / "e.json"
    )
    assert single.exit_code == 0, single.output
    scores = json.loads((tmp_path / "e.json").read_text())
    assert (scores["split"], scores["n_docs"], scores["macro_f1"]) == ("all", 9, 1.0)  # the whole file

    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"id": "a", "text": "oil crude barrel"}\n{"id": "b", "text": "wheat grain tonnes"}\n')
    result = _invoke("predict", "--model", model, "--input", docs, "--output", tmp_path / "pred.jsonl")
    assert result.exit_code == 0, result.output
    preds = [json.loads(line) for line in (tmp_path / "pred.jsonl").read_text().splitlines()]
    assert [(p["id"], p["label"]) for p in preds] == [("a", "crude"), ("b", "grain")]
    assert all(0.0 < p["probability"] <= 1.0 for p in preds)

    txt = tmp_path / "docs.txt"
    txt.write_text("company profit quarter\n\noil prices opec\n")
    result = _invoke("predict", "--model", model, "--input", txt, "--output", tmp_path / "pred.csv")
    assert result.exit_code == 0, result.output
    with open(tmp_path / "pred.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [(r["id"], r["label"]) for r in table] == [("1", "earn"), ("3", "crude")]


def test_predict_multi_label_gives_label_lists(tmp_path):
    from frugaltext.api import predict, train

    d = tmp_path / "ml"
    d.mkdir()
    rows = [
        {"text": "oil crude barrel", "labels": ["crude"]},
        {"text": "wheat grain tonnes", "labels": ["grain"]},
        {"text": "oil wheat ship", "labels": ["crude", "grain"]},
        {"text": "crude opec prices", "labels": ["crude"]},
        {"text": "grain harvest tonnes", "labels": ["grain"]},
        {"text": "barrel grain oil", "labels": ["crude", "grain"]},
    ]
    (d / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows * 3))
    train(data=d, method="tfidf-lr", output=tmp_path / "m", measure_energy=False)
    out = predict(model=tmp_path / "m", texts=["oil crude", "wheat grain"], output=tmp_path / "p.jsonl")
    assert set(out[0]) == {"id", "labels", "probabilities"}
    assert "crude" in out[0]["labels"] and len(out[0]["labels"]) == len(out[0]["probabilities"])
    assert json.loads((tmp_path / "p.jsonl").read_text().splitlines()[1])["labels"] == out[1]["labels"]


def test_bad_inputs_of_evaluate_and_predict(tmp_path):
    result = _invoke("evaluate", "--model", tmp_path / "no-model", "--data", "r8")
    assert result.exit_code == 1 and "frugaltext_method.json" in result.stderr
    data = _toy_dir(tmp_path)
    _invoke(
        "train",
        "--data",
        data,
        "--method",
        "test-majority",
        "--output",
        tmp_path / "m",
        "--no-measure-energy",
    )
    result = _invoke(
        "predict",
        "--model",
        tmp_path / "m",
        "--input",
        tmp_path / "missing.txt",
        "--output",
        tmp_path / "p.jsonl",
    )
    assert result.exit_code == 1 and "missing.txt does not exist" in result.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"body": "no text"}\n')
    result = _invoke("predict", "--model", tmp_path / "m", "--input", bad, "--output", tmp_path / "p.jsonl")
    assert result.exit_code == 1 and "bad.jsonl, line 2: field 'text' is missing" in result.stderr
    result = _invoke("predict", "--model", tmp_path / "m", "--input", bad, "--output", tmp_path / "p.txt")
    assert result.exit_code == 1 and "must end in .jsonl or .csv" in result.stderr


def test_topics_passes_data_and_settings_to_train_topics(tmp_path, monkeypatch):
    import types

    calls = []

    def train_topics(data, n_topics, output_dir, **settings):
        calls.append((data, n_topics, output_dir, settings))
        return types.SimpleNamespace(
            perplexity=12.5,
            npmi_mean=0.25,
            duration_s=1.0,
            npmi=[0.1, 0.2, 0.45],
            topics=[["oil", "crude"], ["wheat", "grain"], ["profit", "net"]],
        )

    monkeypatch.setitem(
        sys.modules, "frugaltext.topics.job", types.SimpleNamespace(train_topics=train_topics)
    )
    result = _invoke(
        "topics",
        "--data",
        _toy_dir(tmp_path),
        "--n-topics",
        "3",
        "--output",
        tmp_path / "t",
        "--epochs",
        "2",
        "--learning-rate",
        "0.01",
    )
    assert result.exit_code == 0, result.output
    data, n_topics, output_dir, settings = calls[0]
    assert len(data.train) == 24 and n_topics == 3 and output_dir == tmp_path / "t"
    assert settings == {"epochs": 2, "learning_rate": 0.01}
    assert "topic   2 (npmi  0.200): wheat grain" in result.stdout
    assert "held-out perplexity 12.5; mean NPMI 0.250" in result.stdout


def test_topics_trains_a_real_nvdm_on_toy_data(tmp_path):
    result = _invoke(
        "topics",
        "--data",
        _toy_dir(tmp_path),
        "--n-topics",
        "2",
        "--output",
        tmp_path / "t",
        "--epochs",
        "2",
        "--min-df",
        "1",
        "--hidden-size",
        "8",
        "--n-top-words",
        "3",
    )
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "t" / "topics.txt").read_text().splitlines()) == 2
    assert "topic   2 (npmi" in result.stdout
    result = _invoke("topics", "--data", tmp_path / "toy", "--output", tmp_path / "u", "--epochz", "2")
    assert result.exit_code == 1 and "unknown setting(s) epochz; valid settings:" in result.stderr


def test_python_dash_m_and_a_light_import():
    done = subprocess.run(
        [sys.executable, "-m", "frugaltext", "--version"], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "frugaltext 0.1.0"
    probe = (
        "import sys, frugaltext; "
        "print(sorted(m for m in ('torch', 'transformers', 'sklearn') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
