"""Tests of frugaltext.data.readers.load_data and TextClassificationData.limit on tiny files in tmp_path."""

from __future__ import annotations

import csv
import gzip
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from frugaltext.data import Split, TextClassificationData, embedded_datasets, load_data
from frugaltext.errors import ConfigError, DataFormatError, DataNotFoundError

# ----------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------


def write_jsonl(path: Path, rows: list[dict], gz: bool = False) -> Path:
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if gz:
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def write_delimited(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",") -> Path:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8", newline="") as f:
        if delimiter == "\t":
            f.write("\t".join(header) + "\n")
            for row in rows:
                f.write("\t".join(row) + "\n")
        else:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(row for row in rows)
    return path


def rows_of(labels: list[str], prefix: str = "doc") -> list[dict]:
    return [{"text": f"{prefix} {i} about {lab}", "label": lab} for i, lab in enumerate(labels)]


TRAIN_LABELS = ["earn", "acq", "earn", "crude", "acq", "earn"]


def jsonl_dir(tmp_path: Path, validation: bool = True, test: bool = True) -> Path:
    d = tmp_path / "ds"
    d.mkdir()
    write_jsonl(d / "train.jsonl", rows_of(TRAIN_LABELS))
    if validation:
        write_jsonl(d / "validation.jsonl", rows_of(["acq", "earn"], "val"))
    if test:
        write_jsonl(d / "test.jsonl", rows_of(["crude", "earn", "acq"], "test"))
    return d


def assert_message(err: pytest.ExceptionInfo, *parts: str) -> None:
    message = str(err.value)
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


# ----------------------------------------------------------------------------------------------------
# formats
# ----------------------------------------------------------------------------------------------------


def test_jsonl_directory_loads_three_splits_with_sorted_training_labels(tmp_path):
    d = jsonl_dir(tmp_path)
    data = load_data(d)
    assert isinstance(data, TextClassificationData)
    assert data.name == "ds"
    assert data.label_names == ("acq", "crude", "earn")
    assert not data.multi_label and data.problem_type == "single_label_classification"
    assert (len(data.train), len(data.validation), len(data.test)) == (6, 2, 3)
    assert data.train.labels.dtype == np.int64 and data.train.labels.shape == (6,)
    assert data.train.labels.tolist() == [2, 0, 2, 1, 0, 2]
    assert data.test.labels.tolist() == [1, 2, 0]
    assert data.train.texts[0] == "doc 0 about earn"
    assert data.train.ids[:2] == ["train.jsonl:1", "train.jsonl:2"]
    assert data.validation.source.endswith("validation.jsonl")
    assert not any("carved" in n for n in data.notes)


def test_jsonl_gz_json_extension_and_dev_alias(tmp_path):
    rows = [{"id": f"r{i}", **r} for i, r in enumerate(rows_of(TRAIN_LABELS))]
    write_jsonl(tmp_path / "train.jsonl.gz", rows, gz=True)
    write_jsonl(tmp_path / "dev.json", rows_of(["earn"]))
    (tmp_path / "README.md").write_text("not data")
    data = load_data(tmp_path)
    assert len(data.train) == 6 and len(data.validation) == 1 and data.test is None
    assert data.train.ids[0] == "r0"  # the id field wins over file:line
    assert any("no test split" in n for n in data.notes)


def test_csv_quoted_fields_keep_commas_quotes_and_newlines(tmp_path):
    rows = [['a, b "quoted"\nsecond line', "earn"], ["plain", "acq"], ["third", "earn"]]
    write_delimited(tmp_path / "train.csv", ["text", "label"], rows)
    write_delimited(tmp_path / "test.csv.gz", ["label", "text"], [["acq", "t1"], ["earn", "t2"]])
    data = load_data(tmp_path, validation_fraction=0.34)
    texts = data.train.texts + data.validation.texts
    assert 'a, b "quoted"\nsecond line' in texts
    assert data.test.texts == ["t1", "t2"] and data.test.labels.tolist() == [0, 1]
    # physical line of each row's start, header = line 1; the quoted newline makes "plain" start on line 4
    assert sorted(data.train.ids + data.validation.ids) == ["train.csv:2", "train.csv:4", "train.csv:5"]


def test_tsv_reads_quotes_literally(tmp_path):
    write_delimited(
        tmp_path / "train.tsv", ["text", "label"], [['"great" movie', "positive"], ["bad", "negative"]], "\t"
    )
    write_delimited(tmp_path / "validation.tsv.gz", ["text", "label"], [['it "was" ok', "positive"]], "\t")
    data = load_data(tmp_path)
    assert data.train.texts == ['"great" movie', "bad"]
    assert data.validation.texts == ['it "was" ok']
    assert data.label_names == ("negative", "positive")


def test_hf_datasetdict_with_classlabel_and_valid_split(tmp_path):
    import datasets

    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(
                {"text": ["a", "b", "c"], "label": [0, 1, 1]}, features=features
            ),
            "valid": datasets.Dataset.from_dict({"text": ["d"], "label": [1]}, features=features),
            "test": datasets.Dataset.from_dict({"text": ["e", "f"], "label": [0, 1]}, features=features),
            "unsupervised": datasets.Dataset.from_dict({"text": ["g"], "label": [0]}, features=features),
        }
    )
    dd.save_to_disk(str(tmp_path / "hf"))
    data = load_data(tmp_path / "hf")
    assert data.label_names == ("neg", "pos")
    assert data.train.labels.tolist() == [0, 1, 1]
    assert data.validation.texts == ["d"] and data.test.labels.tolist() == [0, 1]
    assert data.train.ids == ["train:1", "train:2", "train:3"]
    assert any("'unsupervised' ignored" in n for n in data.notes)


def test_hf_datasetdict_multi_label_lists(tmp_path):
    import datasets

    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"text": ["a", "b"], "labels": [["x", "y"], ["y"]]}),
            "test": datasets.Dataset.from_dict({"text": ["c"], "labels": [["x"]]}),
        }
    )
    dd.save_to_disk(str(tmp_path / "hf"))
    data = load_data(tmp_path / "hf", validation_fraction=0.5)
    assert data.multi_label and data.label_names == ("x", "y")
    assert data.test.labels.tolist() == [[1.0, 0.0]]


def test_hf_bad_text_reports_row_and_split_directory(tmp_path):
    import datasets

    dd = datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict({"text": ["a", " "], "label": ["p", "q"]})}
    )
    dd.save_to_disk(str(tmp_path / "hf"))
    with pytest.raises(DataFormatError) as err:
        load_data(tmp_path / "hf")
    assert_message(err, str(tmp_path / "hf" / "train"), "row 2", 'field "text"')


# ----------------------------------------------------------------------------------------------------
# single file, carved validation
# ----------------------------------------------------------------------------------------------------


def test_single_file_carve_is_deterministic_stratified_and_logged(tmp_path, caplog):
    labels = ["a"] * 80 + ["b"] * 20
    f = write_jsonl(tmp_path / "corpus.jsonl", rows_of(labels))
    with caplog.at_level(logging.INFO, logger="frugaltext.data"):
        first = load_data(f, validation_fraction=0.2, seed=3)
    again = load_data(f, validation_fraction=0.2, seed=3)
    other = load_data(f, validation_fraction=0.2, seed=4)
    assert first.name == "corpus" and first.test is None
    assert (len(first.train), len(first.validation)) == (80, 20)
    assert np.bincount(first.validation.labels).tolist() == [16, 4]  # class proportions kept
    assert np.bincount(first.train.labels).tolist() == [64, 16]
    assert first.validation.ids == again.validation.ids
    assert first.validation.ids != other.validation.ids
    assert set(first.train.ids).isdisjoint(first.validation.ids)
    assert first.validation.source == "carved from train (seed 3)"
    # source order is kept inside both parts
    assert first.validation.ids == sorted(first.validation.ids, key=lambda s: int(s.split(":")[1]))
    note = next(n for n in first.notes if "carved" in n)
    assert "20 of 100" in note and "stratified by label" in note and "seed=3" in note
    assert any("carved 20 of 100" in r.getMessage() for r in caplog.records)


def test_carve_falls_back_to_unstratified_and_says_why(tmp_path):
    f = write_jsonl(tmp_path / "train.jsonl", rows_of(["a"] * 9 + ["b"]))
    data = load_data(f, validation_fraction=0.2)
    assert len(data.train) + len(data.validation) == 10
    assert any("unstratified (a class has fewer than 2 training documents)" in n for n in data.notes)
    assert data.label_names == ("a", "b")  # the label set comes from the whole training file


# ----------------------------------------------------------------------------------------------------
# single- and multi-label
# ----------------------------------------------------------------------------------------------------


def test_multi_label_jsonl_lists(tmp_path):
    d = tmp_path / "ml"
    d.mkdir()
    write_jsonl(d / "train.jsonl", [{"text": "t1", "labels": ["b", "a"]}, {"text": "t2", "labels": ["c"]}])
    write_jsonl(d / "validation.jsonl", [{"text": "v", "labels": ["a", "c"]}])
    data = load_data(d)
    assert data.multi_label and data.problem_type == "multi_label_classification"
    assert data.label_names == ("a", "b", "c")
    assert data.train.labels.dtype == np.float32
    np.testing.assert_array_equal(data.train.labels, [[1, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(data.validation.labels, [[1, 0, 1]])


def test_multi_label_csv_delimited_and_custom_delimiter(tmp_path):
    write_delimited(tmp_path / "train.csv", ["text", "labels"], [["t1", "x|y"], ["t2", "y"], ["t3", "z | x"]])
    data = load_data(tmp_path / "train.csv", validation_fraction=0.34, seed=0)
    assert data.multi_label and data.label_names == ("x", "y", "z")
    assert data.train.labels.shape[1] == 3
    write_delimited(tmp_path / "semi.csv", ["text", "tags"], [["t1", "x;y"], ["t2", "y"]])
    data = load_data(tmp_path / "semi.csv", label_field="tags", multi_label=True, label_delimiter=";")
    assert data.label_names == ("x", "y")


def test_multi_label_override_on_label_column_and_single_label_override(tmp_path):
    write_delimited(tmp_path / "train.csv", ["text", "label"], [["t1", "x|y"], ["t2", "y"]])
    assert load_data(tmp_path / "train.csv").label_names == ("x|y", "y")  # single-label: kept whole
    assert load_data(tmp_path / "train.csv", multi_label=True).label_names == ("x", "y")
    one = write_jsonl(
        tmp_path / "one.jsonl", [{"text": "a", "labels": ["p"]}, {"text": "b", "labels": ["q"]}]
    )
    data = load_data(one, multi_label=False)
    assert not data.multi_label and data.label_names == ("p", "q")


def test_multi_label_false_with_several_labels_is_an_error(tmp_path):
    f = write_jsonl(
        tmp_path / "train.jsonl", [{"text": "a", "labels": ["p"]}, {"text": "b", "labels": ["p", "q"]}]
    )
    with pytest.raises(DataFormatError) as err:
        load_data(f, multi_label=False)
    assert_message(err, str(f), "line 2", 'field "labels"', "multi_label=True")


def test_integer_labels_sort_numerically(tmp_path):
    f = write_jsonl(tmp_path / "train.jsonl", [{"text": f"t{i}", "label": i} for i in (10, 2, 1, 2)])
    data = load_data(f, validation_fraction=0.25)
    assert data.label_names == ("1", "2", "10")


# ----------------------------------------------------------------------------------------------------
# embedded data
# ----------------------------------------------------------------------------------------------------


def test_embedded_r8_counts_and_labels():
    data = load_data("r8")
    assert data.name == "r8"
    assert len(data.train) + len(data.validation) == 5485
    assert len(data.test) == 2189
    assert data.label_names == ("acq", "crude", "earn", "grain", "interest", "money-fx", "ship", "trade")
    assert len(data.validation) == 549  # ceil(0.1 * 5485)
    (meta,) = embedded_datasets()
    assert meta["name"] == "r8" and meta["num_labels"] == 8 and meta["task"] == "single-label"
    assert meta["splits"] == {"train": 5485, "test": 2189}
    assert list(data.label_names) == meta["label_names"]
    assert "research purposes only" in meta["terms"] and "96222365" in meta["source"]


# ----------------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------------


def test_missing_path_lists_embedded_names(tmp_path):
    with pytest.raises(DataNotFoundError) as err:
        load_data(tmp_path / "nope")
    assert_message(err, str(tmp_path / "nope"), "embedded: r8")
    with pytest.raises(DataNotFoundError) as err:
        load_data("r52")
    assert_message(err, "r52", "embedded: r8")


def test_directory_without_split_files(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataNotFoundError) as err:
        load_data(tmp_path)
    assert_message(err, str(tmp_path), "notes.txt", "train")


def test_test_only_directory_says_there_is_no_training_split(tmp_path):
    write_jsonl(tmp_path / "test.jsonl.gz", rows_of(["a"]), gz=True)
    with pytest.raises(DataNotFoundError) as err:
        load_data(tmp_path)
    assert_message(err, "no training split", "test.jsonl.gz")


def test_unsupported_single_file_type(tmp_path):
    f = tmp_path / "train.parquet"
    f.write_bytes(b"x")
    with pytest.raises(DataFormatError) as err:
        load_data(f)
    assert_message(err, str(f), "unsupported file type", ".jsonl")


def test_two_files_for_one_split(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", rows_of(["a", "b"]))
    write_delimited(tmp_path / "train.csv", ["text", "label"], [["x", "a"]])
    with pytest.raises(DataFormatError) as err:
        load_data(tmp_path)
    assert_message(err, "train.csv", "train.jsonl", "exactly one")


def test_missing_text_column_lists_columns(tmp_path):
    f = write_delimited(tmp_path / "train.csv", ["body", "label"], [["x", "a"], ["y", "a"]])
    with pytest.raises(DataFormatError) as err:
        load_data(f)
    assert_message(err, str(f), "line 1", 'field "text"', "['body', 'label']", "--text-field")
    assert sorted(load_data(f, text_field="body", validation_fraction=0.5).train.texts + ["?"])[0] in "xy?"


def test_missing_label_column_lists_columns(tmp_path):
    f = write_jsonl(tmp_path / "train.jsonl", [{"text": "x", "category": "a"}])
    with pytest.raises(DataFormatError) as err:
        load_data(f)
    assert_message(err, str(f), "line 1", '"label"', "['text', 'category']", "--label-field")
    with pytest.raises(DataFormatError) as err:
        load_data(f, label_field="topic")
    assert_message(err, str(f), "line 1", 'field "topic"', "--label-field")


def test_malformed_json_line(tmp_path):
    f = tmp_path / "train.jsonl"
    f.write_text('{"text": "a", "label": "x"}\n\n{"text": "b", "label": \n', encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        load_data(f)
    assert_message(err, str(f), "line 3", "malformed JSON", '"text"')


def test_json_array_gets_a_hint(tmp_path):
    f = tmp_path / "train.json"
    f.write_text('[{"text": "a",\n "label": "x"}]', encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        load_data(f)
    assert_message(err, str(f), "line 1", "JSON Lines")


def test_malformed_csv_row_counts_physical_lines(tmp_path):
    f = tmp_path / "train.csv"
    f.write_text('text,label\n"multi\nline",a\nok,b\ntoo,many,fields\n', encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        load_data(f)
    assert_message(err, str(f), "line 5", "expected 2 fields", "found 3", "['text', 'label']")


def test_unterminated_csv_quote(tmp_path):
    f = tmp_path / "train.csv"
    f.write_text('text,label\nok,a\n"never closed,b\n', encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        load_data(f)
    assert_message(err, str(f), "line 3", "malformed CSV")


def test_tsv_row_with_extra_tab(tmp_path):
    f = tmp_path / "train.tsv"
    f.write_text("text\tlabel\nok\ta\ttab inside\tb\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        load_data(f)
    assert_message(err, str(f), "line 2", "expected 2 fields", "tab")


@pytest.mark.parametrize("text", ["", "   \t "])
def test_empty_or_whitespace_text(tmp_path, text):
    f = write_jsonl(tmp_path / "train.jsonl", [{"text": "fine", "label": "a"}, {"text": text, "label": "a"}])
    with pytest.raises(DataFormatError) as err:
        load_data(f)
    assert_message(err, str(f), "line 2", 'field "text"', "empty or whitespace", 'on_invalid="drop"')


def test_non_string_text(tmp_path):
    f = write_jsonl(tmp_path / "train.jsonl", [{"text": 3, "label": "a"}])
    with pytest.raises(DataFormatError) as err:
        load_data(f)
    assert_message(err, str(f), "line 1", 'field "text"', "must be a string")


@pytest.mark.parametrize(
    ("record", "what"),
    [
        ({"text": "t"}, "is missing"),
        ({"text": "t", "label": None}, "is empty"),
        ({"text": "t", "label": " "}, "empty"),
    ],
)
def test_missing_or_empty_label_in_jsonl(tmp_path, record, what):
    f = write_jsonl(tmp_path / "train.jsonl", [{"text": "fine", "label": "a"}, record])
    with pytest.raises(DataFormatError) as err:
        load_data(f)
    assert_message(err, str(f), "line 2", 'field "label"', what)


def test_label_missing_only_in_first_json_record_is_a_row_problem(tmp_path):
    f = write_jsonl(
        tmp_path / "train.jsonl", [{"text": "a"}, {"text": "b", "label": "x"}, {"text": "c", "label": "x"}]
    )
    with pytest.raises(DataFormatError) as err:
        load_data(f)
    assert_message(err, str(f), "line 1", 'field "label" is missing', 'on_invalid="drop"')
    data = load_data(f, on_invalid="drop", validation_fraction=0.5)
    assert len(data.train) + len(data.validation) == 2 and data.label_names == ("x",)


def test_empty_label_cell_in_csv_and_empty_multi_label_list(tmp_path):
    f = write_delimited(tmp_path / "train.csv", ["text", "label"], [["fine", "a"], ["x", ""]])
    with pytest.raises(DataFormatError) as err:
        load_data(f)
    assert_message(err, str(f), "line 3", 'field "label"', "empty")
    g = write_jsonl(tmp_path / "ml.jsonl", [{"text": "a", "labels": ["x"]}, {"text": "b", "labels": []}])
    with pytest.raises(DataFormatError) as err:
        load_data(g)
    assert_message(err, str(g), "line 2", 'field "labels"', "empty")


def test_empty_part_between_delimiters(tmp_path):
    f = write_delimited(tmp_path / "train.csv", ["text", "labels"], [["fine", "a||b"]])
    with pytest.raises(DataFormatError) as err:
        load_data(f)
    assert_message(err, str(f), "line 2", 'field "labels"', "empty label between the delimiters")


def test_non_utf8_bytes_name_the_line(tmp_path):
    f = tmp_path / "train.csv"
    f.write_bytes("text,label\nok,a\ncaf\xe9,b\n".encode("latin-1"))
    with pytest.raises(DataFormatError) as err:
        load_data(f)
    assert_message(err, str(f), "line 3", "0xe9", "UTF-8")
    g = tmp_path / "train.jsonl.gz"
    g.write_bytes(gzip.compress(b'{"text": "ok", "label": "a"}\n{"text": "\xff", "label": "a"}\n'))
    with pytest.raises(DataFormatError) as err:
        load_data(g)
    assert_message(err, str(g), "line 2", "UTF-8")


def test_corrupt_gzip(tmp_path):
    f = tmp_path / "train.jsonl.gz"
    f.write_bytes(b"not gzip at all")
    with pytest.raises(DataFormatError) as err:
        load_data(f)
    assert_message(err, str(f), "gzip")


def test_empty_splits(tmp_path):
    d = jsonl_dir(tmp_path, validation=False, test=False)
    (d / "test.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        load_data(d)
    assert_message(err, str(d / "test.jsonl"), "test split is empty")
    f = tmp_path / "train.csv"
    f.write_text("text,label\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        load_data(f)
    assert_message(err, str(f), "train split is empty")


def test_unseen_test_label_names_file_line_field_and_known_labels(tmp_path):
    d = jsonl_dir(tmp_path, test=False)
    write_jsonl(d / "test.jsonl", rows_of(["earn", "earn", "ship"]))
    with pytest.raises(DataFormatError) as err:
        load_data(d)
    assert_message(
        err,
        str(d / "test.jsonl"),
        "line 3",
        'field "label"',
        "'ship'",
        "['acq', 'crude', 'earn']",
        "training split",
    )


def test_bad_settings_raise_config_error(tmp_path):
    d = jsonl_dir(tmp_path)
    with pytest.raises(ConfigError, match="on_invalid"):
        load_data(d, on_invalid="skip")
    with pytest.raises(ConfigError, match="validation_fraction"):
        load_data(d, validation_fraction=1.0)
    with pytest.raises(ConfigError, match="label_delimiter"):
        load_data(d, label_delimiter="")


# ----------------------------------------------------------------------------------------------------
# on_invalid="drop"
# ----------------------------------------------------------------------------------------------------


def test_drop_counts_rows_per_split_but_keeps_structural_errors(tmp_path):
    d = tmp_path / "ds"
    d.mkdir()
    train = rows_of(["a", "b", "a", "b"]) + [
        {"text": " ", "label": "a"},
        {"text": "x"},
        {"text": "y", "label": ""},
    ]
    write_jsonl(d / "train.jsonl", train)
    write_jsonl(d / "validation.jsonl", rows_of(["a"]) + [{"text": "", "label": "b"}])
    write_jsonl(d / "test.jsonl", rows_of(["b"]))
    data = load_data(d, on_invalid="drop")
    assert (len(data.train), len(data.validation), len(data.test)) == (4, 1, 1)
    train_note = next(n for n in data.notes if n.startswith("train: dropped"))
    assert "dropped 3 of 7 rows" in train_note
    assert "1 with missing or empty text" in train_note and "2 with missing or empty label" in train_note
    assert any(n.startswith("validation: dropped 1 of 2 rows") for n in data.notes)
    assert not any(n.startswith("test: dropped") for n in data.notes)
    write_jsonl(d / "test.jsonl", rows_of(["zzz"]))  # unseen label: still an error
    with pytest.raises(DataFormatError, match="never occurs in the training split"):
        load_data(d, on_invalid="drop")
    write_jsonl(d / "test.jsonl", [{"text": "", "label": "a"}])  # everything dropped: empty split
    with pytest.raises(DataFormatError, match="test split is empty"):
        load_data(d, on_invalid="drop")


# ----------------------------------------------------------------------------------------------------
# limit()
# ----------------------------------------------------------------------------------------------------


def _toy(n_per_class: tuple[int, ...], multi_label: bool = False) -> TextClassificationData:
    labels = np.repeat(np.arange(len(n_per_class)), n_per_class)
    n = len(labels)
    y = np.eye(len(n_per_class), dtype=np.float32)[labels] if multi_label else labels.astype(np.int64)
    split = Split("train", [f"t{i}" for i in range(n)], y, [str(i) for i in range(n)], "toy")
    names = tuple(f"c{i}" for i in range(len(n_per_class)))
    test = Split("test", list(split.texts), y.copy(), list(split.ids), "toy")
    return TextClassificationData("toy", split, split, test, names, multi_label, ["loaded"])


def test_limit_is_stratified_deterministic_and_keeps_order():
    data = _toy((80, 15, 5))
    small = data.limit(n_train=20, seed=1)
    assert len(small.train) == 20 and len(small.validation) == 100 and len(small.test) == 100
    counts = np.bincount(small.train.labels, minlength=3).tolist()
    assert sum(counts) == 20 and min(counts) >= 1 and counts[0] > counts[1] > 0
    assert counts == [16, 3, 1]
    assert small.train.ids == sorted(small.train.ids, key=int)
    assert small.limit(n_train=20, seed=1).train.ids == small.train.ids  # limiting again changes nothing
    assert data.limit(n_train=20, seed=1).train.ids == small.train.ids
    assert data.limit(n_train=20, seed=2).train.ids != small.train.ids
    assert small.label_names == data.label_names
    assert small.notes[0] == "loaded" and "train reduced to 20 of 100" in small.notes[-1]
    assert data.notes == ["loaded"]  # the original is untouched


def test_limit_every_split_none_and_oversized():
    data = _toy((6, 6))
    same = data.limit(n_train=None, n_validation=1000)
    assert len(same.train) == 12 and len(same.validation) == 12 and same.notes == data.notes
    both = data.limit(n_validation=4, n_test=2, seed=0)
    assert np.bincount(both.validation.labels).tolist() == [2, 2]
    assert len(both.test) == 2 and len(both.train) == 12
    tiny = _toy((50, 30, 20)).limit(n_train=2)
    assert len(tiny.train) == 2 and np.bincount(tiny.train.labels, minlength=3).tolist() == [1, 1, 0]


def test_limit_multi_label_and_bad_values():
    data = _toy((5, 5), multi_label=True)
    small = data.limit(n_train=3, seed=0)
    assert small.train.labels.shape == (3, 2) and small.train.labels.dtype == np.float32
    with pytest.raises(ConfigError, match="n_train"):
        data.limit(n_train=0)
    with pytest.raises(ConfigError, match="n_test"):
        data.limit(n_test=2.5)


# ----------------------------------------------------------------------------------------------------
# multi-label carve: iterative stratification
# ----------------------------------------------------------------------------------------------------


def _zipf_multilabel(n: int = 400, n_labels: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = 0.5 / np.arange(1, n_labels + 1)  # label j in about 50/j % of the rows: a few common, many rare
    y = rng.random((n, n_labels)) < p
    y[y.sum(1) == 0, 0] = True  # every row has a label
    return y.astype(int)


def test_iterative_stratification_keeps_each_label_share():
    from frugaltext.data.readers import iterative_stratified_mask

    y = _zipf_multilabel()
    mask = iterative_stratified_mask(y, 0.2, seed=3)
    assert mask.dtype == bool and mask.shape == (400,)
    assert abs(mask.sum() - 80) <= 8  # sizes are approximate: label shares come first
    counts = y.sum(0)
    in_val = y[mask].sum(0)
    # every label keeps about 20% of its rows on the validation side (within one row of exact)
    assert np.all(np.abs(in_val - 0.2 * counts) <= 1.0 + 1e-9), (in_val, counts)
    # and it is deterministic for a seed
    assert np.array_equal(mask, iterative_stratified_mask(y, 0.2, seed=3))
    # a random split of the same size misses the rare labels by much more
    rng = np.random.default_rng(0)
    worst_random = max(np.abs(y[rng.permutation(400)[:80]].sum(0) - 0.2 * counts).max() for _ in range(20))
    assert worst_random > 1.0


def test_iterative_stratification_bad_input():
    from frugaltext.data.readers import iterative_stratified_mask

    with pytest.raises(ValueError, match="2-D"):
        iterative_stratified_mask(np.zeros(5), 0.2, 0)
    with pytest.raises(ValueError, match="fraction"):
        iterative_stratified_mask(np.zeros((5, 2)), 1.0, 0)


def test_multi_label_carve_is_stratified_and_says_so(tmp_path):
    y = _zipf_multilabel(n=200, n_labels=6, seed=1)
    names = [f"l{j}" for j in range(6)]
    rows = [{"text": f"doc {i}", "labels": [names[j] for j in np.flatnonzero(r)]} for i, r in enumerate(y)]
    data = load_data(write_jsonl(tmp_path / "train.jsonl", rows), validation_fraction=0.25)
    assert data.multi_label and len(data.train) + len(data.validation) == 200
    note = next(n for n in data.notes if "carved" in n)
    assert "iterative stratification" in note
    val = np.asarray(data.validation.labels).sum(0)
    assert np.all(np.abs(val - 0.25 * y.sum(0)) <= 1.0 + 1e-9)


def test_iterative_stratification_single_label_column_and_tiny_inputs():
    from frugaltext.data.splits import iterative_stratified_mask

    y = np.array([[1], [0]] * 5)
    mask = iterative_stratified_mask(y, 0.2, seed=0)
    assert mask.sum() == 2 and y[mask].sum() == 1  # the one label column keeps its share, as its complement
    assert iterative_stratified_mask(np.zeros((1, 3)), 0.5, seed=0).tolist() == [False]  # nothing to carve
    assert iterative_stratified_mask(np.array([[1, 0], [0, 1]]), 0.1, seed=0).sum() == 1
    assert iterative_stratified_mask(np.zeros((6, 2)), 0.5, seed=0).sum() == 3  # rows without labels


def test_multi_label_carve_of_three_rows_keeps_both_sides(tmp_path):
    rows = [{"text": f"doc {i}", "labels": labs} for i, labs in enumerate([["x"], ["x", "y"], ["y"]])]
    data = load_data(write_jsonl(tmp_path / "train.jsonl", rows), validation_fraction=0.1)
    assert len(data.validation) >= 1 and len(data.train) >= 1  # sizes are approximate; neither side empty
    assert len(data.validation) + len(data.train) == 3
