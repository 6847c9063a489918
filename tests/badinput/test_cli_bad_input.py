"""Bad input through the command line: every case is exit code 1, one ``Error:`` line naming the file (and
line or field) or the setting, no traceback, and nothing left behind.

Each case writes its input under ``tmp_path`` and returns the command line and the pieces the message must
hold; the check (:func:`tests.badinput.conftest.assert_clean_failure`) also asserts that the command created
nothing under ``tmp_path`` (no output folder, no temporary file).
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.badinput.conftest import (
    assert_clean_failure,
    run_cli,
    snapshot,
    toy_dir,
    toy_rows,
    write_jsonl,
)

Case = Callable[[Path, Path], tuple[list, list[str]]]
CASES: dict[str, Case] = {}


def case(name: str) -> Callable[[Case], Case]:
    def register(fn: Case) -> Case:
        assert name not in CASES, name
        CASES[name] = fn
        return fn

    return register


def _train(data, *extra, method="tfidf-lr", out="out"):
    return ["train", "--data", data, "--method", method, "--output", out, "--no-measure-energy", *extra]


def _train_case(t: Path, rows_or_text, name="train.jsonl", expected=(), **kw):
    path = t / name
    if isinstance(rows_or_text, bytes):
        path.write_bytes(rows_or_text)
    elif isinstance(rows_or_text, str):
        path.write_text(rows_or_text, encoding="utf-8")
    else:
        write_jsonl(path, rows_or_text)
    return _train(path, out=t / "out", **kw), [path.name, *expected]


def _good(t: Path) -> Path:
    return write_jsonl(t / "train.jsonl", toy_rows(4))


# ---------------------------------------------------------------------------------------------------------
# train: the data
# ---------------------------------------------------------------------------------------------------------
@case("train-missing-data")
def _(t, m):
    return _train(t / "nope.jsonl", out=t / "out"), ["nope.jsonl", "no such file or directory"]


def _unreadable(path: Path) -> Path:
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    path.chmod(0)
    return path


@case("train-unreadable-file")
def _(t, m):
    return _train(_unreadable(_good(t)), out=t / "out"), ["train.jsonl", "cannot read the file"]


@case("predict-unreadable-file")
def _(t, m):
    docs = t / "docs.txt"
    docs.write_text("oil\n", encoding="utf-8")
    return _predict(m, _unreadable(docs), t / "p.jsonl"), ["docs.txt", "cannot read the file"]


@case("train-empty-directory")
def _(t, m):
    (t / "d").mkdir()
    return _train(t / "d", out=t / "out"), ["no split files found"]


@case("train-empty-file")
def _(t, m):
    return _train_case(t, "", expected=["empty"])


@case("train-blank-lines-only")
def _(t, m):
    return _train_case(t, "\n\n  \n", expected=["empty"])


@case("train-bad-json-line")
def _(t, m):
    text = "".join(json.dumps(r) + "\n" for r in toy_rows(2)) + '{"text": "x", "label": \n'
    return _train_case(t, text, expected=["line 7", "malformed JSON"])


@case("train-json-array-file")
def _(t, m):
    return _train_case(t, json.dumps(toy_rows(2)), expected=["line 1", "one JSON array"])


@case("train-json-line-not-object")
def _(t, m):
    return _train_case(t, '["a", "b"]\n', expected=["line 1", "expected a JSON object"])


@case("train-missing-text-field")
def _(t, m):
    rows = [{"body": r["text"], "label": r["label"]} for r in toy_rows(2)]
    return _train_case(t, rows, expected=['text field "text" not found', "--text-field"])


@case("train-missing-label-field")
def _(t, m):
    rows = [{"text": r["text"]} for r in toy_rows(2)]
    return _train_case(t, rows, expected=['no label field "label"', "--label-field"])


@case("train-label-missing-in-one-row")
def _(t, m):
    rows = toy_rows(2)
    del rows[3]["label"]
    return _train_case(t, rows, expected=["line 4", 'field "label" is missing'])


@case("train-empty-text")
def _(t, m):
    rows = toy_rows(2)
    rows[2]["text"] = "   "
    return _train_case(t, rows, expected=["line 3", 'field "text" is empty or whitespace'])


@case("train-null-text")
def _(t, m):
    rows = toy_rows(2)
    rows[1]["text"] = None
    return _train_case(t, rows, expected=["line 2", 'field "text" is null'])


@case("train-number-text")
def _(t, m):
    rows = toy_rows(2)
    rows[1]["text"] = 42
    return _train_case(t, rows, expected=["line 2", 'field "text" must be a string'])


@case("train-float-label")
def _(t, m):
    rows = toy_rows(2)
    rows[0]["label"] = 1.5
    return _train_case(t, rows, expected=["line 1", 'field "label" must be a string, an integer'])


@case("train-bool-label")
def _(t, m):
    rows = toy_rows(2)
    rows[0]["label"] = True
    return _train_case(t, rows, expected=["line 1", 'field "label" must be a string, an integer'])


@case("train-dict-label")
def _(t, m):
    rows = toy_rows(2)
    rows[5]["label"] = {"name": "earn"}
    return _train_case(t, rows, expected=["line 6", "dict"])


@case("train-empty-label")
def _(t, m):
    rows = toy_rows(2)
    rows[2]["label"] = ""
    return _train_case(t, rows, expected=["line 3", 'field "label" is empty'])


@case("train-single-class-tfidf-lr")
def _(t, m):
    return _train_case(t, toy_rows(5, labels=("earn",)), expected=["'earn'", "at least 2 distinct labels"])


@case("train-single-class-tfidf-svm")
def _(t, m):
    return _train_case(t, toy_rows(5, labels=("earn",)), expected=["'earn'", "at least 2 distinct labels"],
                       method="tfidf-svm")


@case("train-single-class-bert")
def _(t, m):
    return _train_case(t, toy_rows(5, labels=("crude",)), expected=["'crude'", "at least 2 distinct labels"],
                       method="bert")


@case("train-single-class-after-drop-of-column")
def _(t, m):
    rows = [{"text": r["text"], "label": r["label"], "topic": "all"} for r in toy_rows(3)]
    path = write_jsonl(t / "train.jsonl", rows)
    return _train(path, "--label-field", "topic", out=t / "out"), ["'all'", '"topic"']


@case("train-multi-label-list-forced-single")
def _(t, m):
    rows = toy_rows(2)
    rows[1]["label"] = ["earn", "crude"]
    path = write_jsonl(t / "train.jsonl", rows)
    return _train(path, "--single-label", out=t / "out"), ["line 2", "the task is single-label"]


@case("train-multi-label-empty-between-delimiters")
def _(t, m):
    rows = [{"text": r["text"], "labels": r["label"] + "||x"} for r in toy_rows(2)]
    path = write_jsonl(t / "train.jsonl", rows)
    return _train(path, out=t / "out"), ["line 1", "empty label between the delimiters"]


@case("train-unsupported-ending")
def _(t, m):
    (t / "train.xml").write_text("<doc/>", encoding="utf-8")
    return _train(t / "train.xml", out=t / "out"), ["train.xml", "unsupported file type"]


@case("train-corrupt-gzip")
def _(t, m):
    return _train_case(t, b"this is not gzip at all\n", name="train.jsonl.gz", expected=["not a valid gzip"])


@case("train-truncated-gzip")
def _(t, m):
    data = gzip.compress("".join(json.dumps(r) + "\n" for r in toy_rows(30)).encode())
    return _train_case(t, data[: len(data) // 2], name="train.jsonl.gz", expected=["truncated"])


@case("train-bad-utf8")
def _(t, m):
    data = (json.dumps({"text": "caf", "label": "a"}) + "\n").encode().replace(b"caf", b"caf\xe9")
    return _train_case(t, data, expected=["line 1", "not valid UTF-8", "iconv"])


@case("train-csv-missing-column")
def _(t, m):
    return _train_case(t, "body,label\nhello,a\nworld,b\n", name="train.csv",
                       expected=['text field "text" not found'])


@case("train-csv-ragged-row")
def _(t, m):
    return _train_case(t, "text,label\nhello,a\nworld,b,extra\n", name="train.csv",
                       expected=["line 3", "expected 2 fields"])


@case("train-csv-unclosed-quote")
def _(t, m):
    return _train_case(t, 'text,label\n"hello,a\nworld,b\n', name="train.csv",
                       expected=["malformed CSV row"])


@case("train-csv-repeated-header")
def _(t, m):
    return _train_case(t, "text,text,label\na,b,c\n", name="train.csv", expected=["repeats the column"])


@case("train-tsv-quoted-tab")
def _(t, m):
    # TSV has no quoting: the quotes do not protect the tab, so the row has 3 fields
    return _train_case(t, 'text\tlabel\n"a\tb"\tx\n', name="train.tsv",
                       expected=["line 2", "a TSV field cannot contain a tab"])


@case("train-symlink-loop-file")
def _(t, m):
    loop = t / "loop.jsonl"
    os.symlink(loop, loop)
    return _train(loop, out=t / "out"), ["loop.jsonl", "symbolic link loop"]


@case("train-symlink-loop-in-directory")
def _(t, m):
    d = t / "d"
    d.mkdir()
    os.symlink(d / "train.jsonl", d / "train.jsonl")
    return _train(d, out=t / "out"), ["train.jsonl", "symbolic link loop"]


@case("train-broken-symlink-in-directory")
def _(t, m):
    d = t / "d"
    d.mkdir()
    os.symlink(t / "gone.jsonl", d / "train.jsonl")
    return _train(d, out=t / "out"), ["train.jsonl", "broken symbolic link"]


@case("train-duplicate-split-files")
def _(t, m):
    d = toy_dir(t / "d")
    write_jsonl(d / "train.json", toy_rows(2))
    return _train(d, out=t / "out"), ["several files for the train split"]


@case("train-test-only-directory")
def _(t, m):
    d = t / "d"
    write_jsonl(d / "test.jsonl", toy_rows(2))
    return _train(d, out=t / "out"), ["no training split"]


@case("train-unseen-label-in-test")
def _(t, m):
    d = toy_dir(t / "d")
    rows = toy_rows(1)
    rows[0]["label"] = "ship"
    write_jsonl(d / "test.jsonl", rows)
    return _train(d, out=t / "out"), ["test.jsonl", "line 1", "'ship'", "never occurs in the training split"]


# ---------------------------------------------------------------------------------------------------------
# train: methods, settings and output
# ---------------------------------------------------------------------------------------------------------
@case("train-unknown-method")
def _(t, m):
    return _train(_good(t), method="tfidf-xgb", out=t / "out"), ["unknown method 'tfidf-xgb'", "tfidf-lr"]


@case("train-unknown-setting")
def _(t, m):
    return _train(_good(t), "--gamma", "2", out=t / "out"), ["unknown setting 'gamma'", "valid settings"]


@case("train-setting-wrong-type")
def _(t, m):
    return _train(_good(t), "--C", "abc", out=t / "out"), ["setting 'C'", "cannot read 'abc'"]


@case("train-setting-negative")
def _(t, m):
    return _train(_good(t), "--C", "-1", method="tfidf-svm", out=t / "out"), ["setting 'C'", "must be > 0"]


@case("train-setting-nan")
def _(t, m):
    return _train(_good(t), "--C", "nan", out=t / "out"), ["setting 'C'", "finite"]


@case("train-setting-inf")
def _(t, m):
    return _train(_good(t), "--C", "inf", out=t / "out"), ["setting 'C'", "finite"]


@case("train-setting-not-integer")
def _(t, m):
    return _train(_good(t), "--max-iter", "1.5", out=t / "out"), ["setting 'max_iter'", "integer"]


@case("train-setting-bad-bool")
def _(t, m):
    return _train(_good(t), "--sublinear-tf", "maybe", out=t / "out"), ["sublinear_tf", "true or false"]


@case("train-setting-cross-field")
def _(t, m):
    return _train(_good(t), "--ngram-min", "3", "--ngram-max", "1", out=t / "out"), ["ngram_max (1)"]


@case("train-bert-epochs-nan")
def _(t, m):
    return _train(_good(t), "--epochs", "nan", method="bert", out=t / "out"), ["setting 'epochs'", "finite"]


@case("train-bert-epochs-inf")
def _(t, m):
    return _train(_good(t), "--epochs", "inf", method="bert", out=t / "out"), ["setting 'epochs'", "finite"]


@case("train-bert-unknown-choice")
def _(t, m):
    return _train(_good(t), "--padding", "longest", method="bert", out=t / "out"), [
        "setting 'padding'", "choose one of 'dynamic', 'max_length'"]


@case("train-bert-max-length-too-large")
def _(t, m):
    return _train(_good(t), "--max-length", "100000", method="bert", out=t / "out"), [
        "method 'bert'", "max_length = 100000", "512 tokens", "at most 512"]


@case("train-early-exit-max-length-too-large")
def _(t, m):
    return _train(_good(t), "--max-length", "4096", method="early-exit", out=t / "out"), [
        "method 'early-exit'", "max_length = 4096", "at most 512"]


@case("train-topicbert-partition-too-long")
def _(t, m):
    return _train(_good(t), "--max-length", "2048", "--n-partitions", "2", method="topicbert",
                  out=t / "out"), ["method 'topicbert'", "max_length / n_partitions (2048 / 2) = 1024",
                                   "at most 1024"]


@case("train-bert-encoder-not-a-folder")
def _(t, m):
    return _train(_good(t), "--model-name-or-path", t / "no-encoder", method="bert", out=t / "out"), [
        "no-encoder", "is not a local directory"]


@case("train-output-is-a-file")
def _(t, m):
    (t / "out").write_text("x", encoding="utf-8")
    return _train(_good(t), out=t / "out"), ["out is a file, not a directory"]


@case("train-output-under-a-file")
def _(t, m):
    (t / "file").write_text("x", encoding="utf-8")
    return _train(_good(t), out=t / "file" / "model"), ["file is a file, not a directory"]


# ---------------------------------------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------------------------------------
def _evaluate(model, data, *extra):
    return ["evaluate", "--model", model, "--data", data, *extra]


@case("evaluate-model-missing")
def _(t, m):
    return _evaluate(t / "no-model", toy_dir(t / "d")), ["no-model does not exist", "frugaltext_method.json"]


@case("evaluate-model-empty-folder")
def _(t, m):
    (t / "empty").mkdir()
    return _evaluate(t / "empty", toy_dir(t / "d")), ["empty: no frugaltext_method.json"]


@case("evaluate-model-is-a-file")
def _(t, m):
    (t / "model.bin").write_bytes(b"x")
    return _evaluate(t / "model.bin", toy_dir(t / "d")), ["model.bin is a file"]


@case("evaluate-model-truncated-weights")
def _(t, m):
    weights = m / "tfidf.safetensors"
    weights.write_bytes(weights.read_bytes()[:40])
    return _evaluate(m, toy_dir(t / "d")), ["tfidf.safetensors", "damaged", "train the model again"]


@case("evaluate-model-weights-missing")
def _(t, m):
    (m / "tfidf.safetensors").unlink()
    return _evaluate(m, toy_dir(t / "d")), ["tfidf.safetensors is missing", "damaged"]


@case("evaluate-model-invalid-meta-json")
def _(t, m):
    (m / "frugaltext_method.json").write_text('{"method": "tfidf-lr",', encoding="utf-8")
    return _evaluate(m, toy_dir(t / "d")), ["frugaltext_method.json", "invalid JSON"]


@case("evaluate-model-meta-not-object")
def _(t, m):
    (m / "frugaltext_method.json").write_text("[1, 2]", encoding="utf-8")
    return _evaluate(m, toy_dir(t / "d")), ["frugaltext_method.json", "expected a JSON object"]


@case("evaluate-model-meta-missing-field")
def _(t, m):
    meta = json.loads((m / "frugaltext_method.json").read_text(encoding="utf-8"))
    del meta["label_names"]
    (m / "frugaltext_method.json").write_text(json.dumps(meta), encoding="utf-8")
    return _evaluate(m, toy_dir(t / "d")), ['field "label_names" is missing']


@case("evaluate-model-unknown-method")
def _(t, m):
    meta = json.loads((m / "frugaltext_method.json").read_text(encoding="utf-8"))
    (m / "frugaltext_method.json").write_text(json.dumps({**meta, "method": "gpt-9"}), encoding="utf-8")
    return _evaluate(m, toy_dir(t / "d")), ["frugaltext_method.json", "unknown method 'gpt-9'"]


@case("evaluate-model-wrong-method-files")
def _(t, m):
    meta = json.loads((m / "frugaltext_method.json").read_text(encoding="utf-8"))
    (m / "frugaltext_method.json").write_text(json.dumps({**meta, "method": "bert-avg"}), encoding="utf-8")
    return _evaluate(m, toy_dir(t / "d")), ["model: encoder/config.json is missing", "bert-avg"]


@case("evaluate-model-invalid-tfidf-json")
def _(t, m):
    (m / "tfidf.json").write_text("{", encoding="utf-8")
    return _evaluate(m, toy_dir(t / "d")), ["tfidf.json", "not a valid tf-idf model file"]


@case("evaluate-output-is-a-directory")
def _(t, m):
    (t / "scores").mkdir()
    return _evaluate(m, toy_dir(t / "d"), "--output", t / "scores"), ["scores is a directory"]


@case("evaluate-output-under-a-file")
def _(t, m):
    (t / "file").write_text("x", encoding="utf-8")
    return _evaluate(m, toy_dir(t / "d"), "--output", t / "file" / "s.json"), [
        "file is a file, not a directory"]


@case("evaluate-unknown-split")
def _(t, m):
    return _evaluate(m, toy_dir(t / "d"), "--split", "dev"), ["split must be", "'dev'"]


@case("evaluate-no-test-split")
def _(t, m):
    return _evaluate(m, toy_dir(t / "d", with_test=False)), ["has no test split"]


@case("evaluate-unseen-labels")
def _(t, m):
    f = write_jsonl(t / "ships.jsonl", [{"text": "vessel port", "label": "ship"}])
    return _evaluate(m, f), ["ships.jsonl", "labels ['ship'] were never seen by the model"]


@case("evaluate-multi-label-data-on-single-label-model")
def _(t, m):
    f = write_jsonl(t / "ml.jsonl", [{"text": "oil profit", "label": ["crude", "earn"]}])
    return _evaluate(m, f), ["ml.jsonl", "line 1", "the task is single-label"]


@case("evaluate-data-missing")
def _(t, m):
    return _evaluate(m, t / "gone"), ["gone", "no such file or directory"]


@case("evaluate-data-bad-json")
def _(t, m):
    (t / "x.jsonl").write_text('{"text": "a", "label": "earn"}\nnot json\n', encoding="utf-8")
    return _evaluate(m, t / "x.jsonl"), ["x.jsonl, line 2", "malformed JSON"]


# ---------------------------------------------------------------------------------------------------------
# predict
# ---------------------------------------------------------------------------------------------------------
def _predict(model, inp, out, *extra):
    return ["predict", "--model", model, "--input", inp, "--output", out, *extra]


def _predict_file(t, m, name, content, expected):
    path = t / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return _predict(m, path, t / "pred.jsonl"), [name, *expected]


@case("predict-input-missing")
def _(t, m):
    return _predict(m, t / "missing.txt", t / "p.jsonl"), ["missing.txt does not exist"]


@case("predict-input-is-a-directory")
def _(t, m):
    (t / "docs.txt").mkdir()
    return _predict(m, t / "docs.txt", t / "p.jsonl"), ["docs.txt is a directory"]


@case("predict-input-empty")
def _(t, m):
    return _predict_file(t, m, "docs.txt", "", ["no documents found"])


@case("predict-input-unsupported-ending")
def _(t, m):
    return _predict_file(t, m, "docs.docx", "hello", ["unsupported file type"])


@case("predict-bad-json-line")
def _(t, m):
    return _predict_file(t, m, "docs.jsonl", '{"text": "ok"}\n{"text": \n', ["line 2", "malformed JSON"])


@case("predict-missing-text-field")
def _(t, m):
    content = '{"text": "ok"}\n{"body": "no"}\n'
    return _predict_file(t, m, "docs.jsonl", content, ["line 2", "'text' is missing"])


@case("predict-empty-text")
def _(t, m):
    content = '{"text": "ok"}\n{"text": " "}\n'
    return _predict_file(t, m, "docs.jsonl", content, ["line 2", "is empty or not text"])


@case("predict-number-text")
def _(t, m):
    return _predict_file(t, m, "docs.jsonl", '{"text": 7}\n', ["line 1", "is empty or not text"])


@case("predict-csv-missing-column")
def _(t, m):
    return _predict_file(t, m, "docs.csv", "body\nhello\n", ["line 1", "column 'text' not found"])


@case("predict-csv-unclosed-quote")
def _(t, m):
    return _predict_file(t, m, "docs.csv", 'text\n"never closed\n', ["malformed CSV row"])


@case("predict-tsv-quoted-tab")
def _(t, m):
    content = 'id\ttext\n1\t"a\tb"\n'
    return _predict_file(t, m, "docs.tsv", content, ["line 2", "a TSV field cannot contain a tab"])


@case("predict-corrupt-gzip")
def _(t, m):
    return _predict_file(t, m, "docs.jsonl.gz", b"\x1f\x8b\x08garbage-garbage", ["gzip"])


@case("predict-truncated-gzip")
def _(t, m):
    data = gzip.compress(("".join(f'{{"text": "doc {i} oil"}}\n' for i in range(2000))).encode())
    return _predict_file(t, m, "docs.jsonl.gz", data[: len(data) // 2], ["truncated"])


@case("predict-plain-text-named-gz")
def _(t, m):
    return _predict_file(t, m, "docs.txt.gz", "oil prices\n", ["not a valid gzip file", "drop the .gz"])


@case("predict-bad-utf8")
def _(t, m):
    return _predict_file(t, m, "docs.txt", b"oil\nwheat \xff harvest\n", ["line 2", "not valid UTF-8"])


@case("predict-symlink-loop-input")
def _(t, m):
    loop = t / "docs.txt"
    os.symlink(loop, loop)
    return _predict(m, loop, t / "p.jsonl"), ["docs.txt", "symbolic link loop"]


@case("predict-output-is-a-directory")
def _(t, m):
    (t / "docs.txt").write_text("oil\n", encoding="utf-8")
    (t / "p.jsonl").mkdir()
    return _predict(m, t / "docs.txt", t / "p.jsonl"), ["p.jsonl is a directory"]


@case("predict-output-under-a-file")
def _(t, m):
    (t / "docs.txt").write_text("oil\n", encoding="utf-8")
    (t / "file").write_text("x", encoding="utf-8")
    return _predict(m, t / "docs.txt", t / "file" / "p.jsonl"), ["file is a file, not a directory"]


@case("predict-output-wrong-ending")
def _(t, m):
    (t / "docs.txt").write_text("oil\n", encoding="utf-8")
    return _predict(m, t / "docs.txt", t / "p.txt"), ["p.txt", "must end in .jsonl or .csv"]


@case("predict-output-in-missing-dirs-then-bad-row")
def _(t, m):
    # the output's parent folders are created while writing; a bad row later removes them again
    rows = "".join(f'{{"text": "oil {i}"}}\n' for i in range(2500)) + "{broken\n"
    (t / "docs.jsonl").write_text(rows, encoding="utf-8")
    return _predict(m, t / "docs.jsonl", t / "new" / "dir" / "p.csv"), ["line 2501", "malformed JSON"]


@case("predict-threshold-out-of-range")
def _(t, m):
    (t / "docs.txt").write_text("oil\n", encoding="utf-8")
    return _predict(m, t / "docs.txt", t / "p.jsonl", "--threshold", "2"), [
        "threshold must be a number in [0, 1]"]


@case("predict-threshold-nan")
def _(t, m):
    (t / "docs.txt").write_text("oil\n", encoding="utf-8")
    return _predict(m, t / "docs.txt", t / "p.jsonl", "--threshold", "nan"), ["threshold", "nan"]


@case("predict-model-missing")
def _(t, m):
    (t / "docs.txt").write_text("oil\n", encoding="utf-8")
    return _predict(t / "nomodel", t / "docs.txt", t / "p.jsonl"), ["nomodel does not exist"]


@case("predict-model-truncated-weights")
def _(t, m):
    (t / "docs.txt").write_text("oil\n", encoding="utf-8")
    weights = m / "tfidf.safetensors"
    weights.write_bytes(weights.read_bytes()[:-7])
    return _predict(m, t / "docs.txt", t / "p.jsonl"), ["tfidf.safetensors", "damaged"]


# ---------------------------------------------------------------------------------------------------------
# compare
# ---------------------------------------------------------------------------------------------------------
FAST = ["--no-progress", "--cost.measure-energy", "false", "--cost.latency-n-docs", "2",
        "--cost.throughput-n-docs", "4", "--cost.min-throughput-duration-s", "0"]


def _compare(data, out, *extra, methods="tfidf-lr"):
    return ["compare", "--data", data, "--methods", methods, "--seeds", "1", "--output", out, *FAST, *extra]


@case("compare-data-missing")
def _(t, m):
    return _compare(t / "nope", t / "run"), ["nope", "no such file or directory"]


@case("compare-single-class")
def _(t, m):
    f = write_jsonl(t / "one.jsonl", toy_rows(6, labels=("grain",)))
    return _compare(f, t / "run"), ["one.jsonl", "'grain'", "at least 2 distinct labels"]


@case("compare-bad-json")
def _(t, m):
    d = toy_dir(t / "d")
    with (d / "test.jsonl").open("a", encoding="utf-8") as handle:
        handle.write("{oops\n")
    return _compare(d, t / "run"), ["test.jsonl, line 10", "malformed JSON"]


@case("compare-unknown-method")
def _(t, m):
    return _compare(toy_dir(t / "d"), t / "run", methods="tfidf-lr,bort"), ["unknown method 'bort'"]


@case("compare-unknown-method-setting")
def _(t, m):
    return _compare(toy_dir(t / "d"), t / "run", "--tfidf-lr.gamma", "1"), ["unknown setting 'gamma'"]


@case("compare-negative-C")
def _(t, m):
    return _compare(toy_dir(t / "d"), t / "run", "--tfidf-svm.C", "-1", methods="tfidf-svm"), [
        "setting 'C'", "must be > 0"]


@case("compare-bert-epochs-nan")
def _(t, m):
    return _compare(toy_dir(t / "d"), t / "run", "--bert.epochs", "nan", methods="bert"), [
        "setting 'epochs'", "finite"]


@case("compare-grid-bad-value")
def _(t, m):
    return _compare(toy_dir(t / "d"), t / "run", "--grid", "tfidf-lr.C=0.1,ten"), [
        "grid tfidf-lr.C", "value 'ten'", "setting 'C'"]


@case("compare-grid-unknown-setting")
def _(t, m):
    return _compare(toy_dir(t / "d"), t / "run", "--grid", "tfidf-lr.gamma=1,2"), [
        "grid tfidf-lr.gamma", "unknown setting 'gamma'", "valid settings: C"]


@case("compare-grid-empty")
def _(t, m):
    return _compare(toy_dir(t / "d"), t / "run", "--grid", "tfidf-lr.C="), ["grid tfidf-lr.C", "no values"]


@case("compare-grid-method-not-compared")
def _(t, m):
    return _compare(toy_dir(t / "d"), t / "run", "--grid", "bert.max_length=64,128"), [
        "grid bert.max_length", "'bert' is not among the methods", "--methods"]


@case("compare-grid-bert-max-length-too-large")
def _(t, m):
    return _compare(toy_dir(t / "d"), t / "run", "--grid", "bert.max_length=128,100000", methods="bert"), [
        "max_length = 100000", "at most 512"]


@case("compare-bert-max-length-too-large")
def _(t, m):
    return _compare(toy_dir(t / "d"), t / "run", "--bert.max-length", "100000", methods="bert"), [
        "max_length = 100000", "at most 512"]


@case("compare-yaml-bool-for-number")
def _(t, m):
    cfg = t / "cfg.yaml"
    cfg.write_text("settings:\n  tfidf-svm:\n    C: true\n", encoding="utf-8")
    return _compare(toy_dir(t / "d"), t / "run", "--config", cfg, methods="tfidf-svm"), ["C", "boolean"]


@case("compare-bad-yaml")
def _(t, m):
    cfg = t / "cfg.yaml"
    cfg.write_text("methods: [tfidf-lr\nseeds: 1\n", encoding="utf-8")
    return _compare(toy_dir(t / "d"), t / "run", "--config", cfg), ["cfg.yaml"]


@case("compare-unknown-option")
def _(t, m):
    return _compare(toy_dir(t / "d"), t / "run", "--max-trian-docs", "5"), ["unknown option --max-trian-docs",
                                                                          "--max-train-docs"]


@case("compare-bad-cost-setting")
def _(t, m):
    return _compare(toy_dir(t / "d"), t / "run", "--cost.latency-n-docs", "-3"), ["latency_n_docs"]


@case("compare-output-is-a-file")
def _(t, m):
    (t / "run").write_text("x", encoding="utf-8")
    return _compare(toy_dir(t / "d"), t / "run"), ["run is a file, not a directory"]


@case("compare-output-under-a-file")
def _(t, m):
    (t / "file").write_text("x", encoding="utf-8")
    return _compare(toy_dir(t / "d"), t / "file" / "run"), ["file is a file, not a directory"]


@case("compare-teacher-auto-without-bert")
def _(t, m):
    return _compare(toy_dir(t / "d"), t / "run", methods="distill-bilstm"), ["teacher 'auto'", "'bert'"]


# ---------------------------------------------------------------------------------------------------------
# topics
# ---------------------------------------------------------------------------------------------------------
@case("topics-data-missing")
def _(t, m):
    return ["topics", "--data", t / "none", "--output", t / "topics"], ["none", "no such file or directory"]


@case("topics-unknown-setting")
def _(t, m):
    return ["topics", "--data", toy_dir(t / "d"), "--output", t / "topics", "--gamma", "1"], [
        "unknown setting(s) gamma"]


@case("topics-output-is-a-file")
def _(t, m):
    (t / "topics").write_text("x", encoding="utf-8")
    return ["topics", "--data", toy_dir(t / "d"), "--output", t / "topics"], ["topics is a file"]


@case("topics-bad-utf8")
def _(t, m):
    d = t / "d"
    d.mkdir()
    (d / "train.jsonl").write_bytes(b'{"text": "a\xc3", "label": "x"}\n')
    return ["topics", "--data", d, "--output", t / "topics"], ["train.jsonl, line 1", "not valid UTF-8"]


@case("topics-epochs-nan")
def _(t, m):
    return ["topics", "--data", toy_dir(t / "d"), "--output", t / "topics", "--epochs", "nan"], [
        "setting 'epochs'", "finite"]


@case("topics-setting-not-a-number")
def _(t, m):
    return ["topics", "--data", toy_dir(t / "d"), "--output", t / "topics", "--n-top-words", "ten"], [
        "setting 'n_top_words'", "cannot read 'ten'"]


@case("topics-bool-for-number")
def _(t, m):
    return ["topics", "--data", toy_dir(t / "d"), "--output", t / "topics", "--learning-rate", "true"], [
        "setting 'learning_rate'"]


# ---------------------------------------------------------------------------------------------------------
# export and select
# ---------------------------------------------------------------------------------------------------------
@case("export-missing-model")
def _(t, m):
    return ["export", "--model", t / "nope", "--output", t / "m.onnx"], ["nope"]


@case("export-tfidf-model")
def _(t, m):
    return ["export", "--model", m, "--output", t / "m.onnx"], ["tfidf"]


@case("export-output-is-a-directory")
def _(t, m):
    (t / "out.onnx").mkdir()
    return ["export", "--model", m, "--output", t / "out.onnx"], ["out.onnx"]


def _run_dir(t: Path, rows: list | None) -> Path:
    run = t / "run"
    run.mkdir()
    if rows is not None:
        (run / "results.json").write_text(json.dumps(rows), encoding="utf-8")
    return run


def _row(method: str, macro_f1: float) -> dict:
    return {"method": method, "seed": 0, "macro_f1": macro_f1, "train_duration_s": 1.0, "latency_ms": 1.0,
            "throughput_docs_per_s": 10.0, "inference_energy_kwh_per_doc": 1e-6, "n_params": 10}


@case("select-no-results")
def _(t, m):
    return ["select", _run_dir(t, None)], ["results.json"]


@case("select-reference-missing")
def _(t, m):
    return ["select", _run_dir(t, [_row("tfidf-svm", 0.9)]), "--reference", "bert", "--no-copy"], ["bert"]


@case("select-retention-as-fraction")
def _(t, m):
    return ["select", _run_dir(t, [_row("tfidf-svm", 0.9)]), "--min-retention", "0.99", "--no-copy"], [
        "99"]


@case("select-nothing-meets-the-constraint")
def _(t, m):
    rows = [_row("bert", 0.9), _row("tfidf-svm", 0.5)]
    return ["select", _run_dir(t, rows), "--reference", "bert", "--min-retention", "101", "--no-copy"], [
        "retention"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_clear_line(name, tmp_path, model_copy):
    work = tmp_path / "case"
    work.mkdir()
    args, expected = CASES[name](work, model_copy)
    before = snapshot(tmp_path)
    result = run_cli(args)
    assert_clean_failure(result, expected, tmp_path, before)


def test_the_suite_is_large_enough():
    assert len(CASES) >= 60
