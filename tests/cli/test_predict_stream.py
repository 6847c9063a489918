"""predict reads with the training reader, streams in chunks, writes atomically, needs no torch for tf-idf."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from frugaltext.api import evaluate, iter_predictions, predict, predict_file
from frugaltext.errors import DataFormatError
from tests.badinput.conftest import run_cli, toy_rows, train_toy_model, write_jsonl

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory) -> Path:
    return train_toy_model(tmp_path_factory.mktemp("predict-model"))


def test_a_txt_line_with_unicode_line_breaks_is_one_document(trained_model, tmp_path):
    docs = tmp_path / "docs.txt"
    docs.write_text("oil\u2028crude barrel\u0085prices\nwheat\x0cgrain harvest\n", encoding="utf-8")
    rows = predict(model=trained_model, input=docs)
    assert [r["id"] for r in rows] == ["1", "2"]
    assert [r["label"] for r in rows] == ["crude", "grain"]


def test_a_jsonl_file_that_trains_also_predicts(trained_model, tmp_path):
    # U+2028 inside a JSON string is valid JSON; str.splitlines() used to cut the line there
    docs = write_jsonl(tmp_path / "docs.jsonl", [{"id": "a", "text": "profit\u2028net shares"},
                                                 {"text": "opec oil"}])
    rows = predict(model=trained_model, input=docs)
    assert [(r["id"], r["label"]) for r in rows] == [("a", "earn"), ("2", "crude")]


def test_tsv_quotes_are_text_as_in_training(trained_model, tmp_path):
    docs = tmp_path / "docs.tsv"
    docs.write_text('id\ttext\nq1\t"wheat grain\nq2\tsays "oil" prices\n', encoding="utf-8")
    rows = predict(model=trained_model, input=docs)
    assert [(r["id"], r["label"]) for r in rows] == [("q1", "grain"), ("q2", "crude")]


def test_chunks_give_the_same_predictions_as_one_call(trained_model, tmp_path):
    texts = [r["text"] for r in toy_rows(4)]
    docs = tmp_path / "docs.txt"
    docs.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    whole = predict(model=trained_model, texts=texts)
    chunks = list(iter_predictions(trained_model, input=docs, chunk_size=5))
    assert [len(c) for c in chunks] == [5, 5, 2]
    assert [r["label"] for c in chunks for r in c] == [r["label"] for r in whole]
    assert predict_file(trained_model, docs, tmp_path / "out" / "p.csv", chunk_size=5) == 12
    with (tmp_path / "out" / "p.csv").open(encoding="utf-8", newline="") as handle:
        written = list(csv.DictReader(handle))
    assert [r["label"] for r in written] == [r["label"] for r in whole]
    assert [r["id"] for r in written] == [str(i) for i in range(1, 13)]


def test_rows_are_yielded_before_a_bad_row_further_down(trained_model, tmp_path):
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"text": f"oil {i}"}) + "\n" for i in range(10)) + "{bad\n",
                    encoding="utf-8")
    stream = iter_predictions(trained_model, input=docs, chunk_size=4)
    assert len(next(stream)) == 4 and len(next(stream)) == 4  # streamed: the bad line is not read yet
    with pytest.raises(DataFormatError, match=r"docs.jsonl, line 11: malformed JSON"):
        next(stream)


def test_a_failed_predict_keeps_the_old_output_file(trained_model, tmp_path):
    out = tmp_path / "p.jsonl"
    out.write_text("old\n", encoding="utf-8")
    docs = tmp_path / "docs.jsonl"
    docs.write_text(json.dumps({"text": "oil"}) + "\n" + '{"text": ""}\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match="line 2"):
        predict(model=trained_model, input=docs, output=out, chunk_size=1)
    assert out.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs.jsonl", "p.jsonl"]


def test_the_cli_streams_and_counts(trained_model, tmp_path):
    docs = tmp_path / "docs.txt"
    docs.write_text("oil prices\n\nwheat harvest\n", encoding="utf-8")
    result = run_cli(["predict", "--model", trained_model, "--input", docs, "--output", tmp_path / "p.jsonl"])
    assert result.exit_code == 0, result.output
    assert "2 predictions written" in result.stdout
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["1", "3"]


def test_evaluating_a_one_document_file_needs_no_validation_carve(trained_model, tmp_path):
    one = write_jsonl(tmp_path / "one.jsonl", [{"text": "oil crude barrel", "label": "crude"}])
    result = evaluate(model=trained_model, data=one, output=tmp_path / "s.json")
    assert result["n_docs"] == 1 and result["split"] == "all" and result["accuracy"] == 1.0


def test_tfidf_predict_does_not_import_torch_or_transformers(trained_model, tmp_path):
    docs = tmp_path / "docs.txt"
    docs.write_text("oil prices\nwheat harvest\n", encoding="utf-8")
    code = (
        "import sys\n"
        "from frugaltext.cli.app import app\n"
        f"args = ['predict', '--model', {str(trained_model)!r}, '--input', {str(docs)!r}, "
        f"'--output', {str(tmp_path / 'p.csv')!r}]\n"
        "try:\n"
        "    app(args, prog_name='frugaltext')\n"
        "except SystemExit as exit:\n"
        "    assert exit.code in (0, None), exit.code\n"
        "from frugaltext.api import predict\n"
        f"assert predict(model={str(trained_model)!r}, texts=['opec oil'])[0]['label'] == 'crude'\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "p.csv").is_file()
