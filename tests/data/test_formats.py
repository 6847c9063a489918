"""Tests of the one file reader (read_texts, iter_texts, read_records) and of load_data's use of it."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from frugaltext.data import Documents, iter_records, iter_texts, load_data, read_records, read_texts
from frugaltext.errors import ConfigError, DataFormatError, DataNotFoundError

ODD_BREAKS = "\u2028 \u2029 \u0085 \x0c \x0b"  # line breaks for str.splitlines, ordinary characters here


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


# ---- line splitting ---------------------------------------------------------------------------------
def test_unicode_line_breaks_inside_a_jsonl_text_stay_one_document(tmp_path):
    f = tmp_path / "docs.jsonl"
    f.write_text(jsonl([{"text": f"first{ODD_BREAKS}still first"}, {"text": "second"}]), encoding="utf-8")
    texts, ids = read_texts(f)
    assert texts == [f"first{ODD_BREAKS}still first", "second"] and ids == ["1", "2"]


def test_unicode_line_breaks_in_a_txt_line_stay_one_document(tmp_path):
    f = tmp_path / "docs.txt"
    f.write_text("one\u2028same doc\x0cstill\u0085same\ntwo\n", encoding="utf-8")
    assert read_texts(f).texts == ["one\u2028same doc\x0cstill\u0085same", "two"]


def test_crlf_and_empty_lines(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"  first doc \r\n\r\n\nsecond doc\r\n   \r\nthird")
    assert read_texts(tmp_path / "a.txt") == Documents(["first doc", "second doc", "third"], ["1", "4", "6"])
    (tmp_path / "b.jsonl").write_bytes(b'{"text": "x", "id": "a"}\r\n\r\n{"text": "y"}\r\n')
    assert read_texts(tmp_path / "b.jsonl") == Documents(["x", "y"], ["a", "3"])
    (tmp_path / "c.csv").write_bytes(b'id,text\r\n7,"two\r\nlines"\r\n\r\n,plain\r\n')
    assert read_texts(tmp_path / "c.csv") == Documents(["two\r\nlines", "plain"], ["7", "5"])


def test_training_reader_uses_the_same_line_convention(tmp_path):
    f = tmp_path / "train.jsonl"
    f.write_bytes(jsonl([{"text": f"a{ODD_BREAKS}b", "label": "x"}, {"text": "c", "label": "y"}]).encode())
    data = load_data(f, validation_fraction=0.5)
    assert sorted(data.train.texts + data.validation.texts) == sorted([f"a{ODD_BREAKS}b", "c"])


# ---- TSV: no quoting, everywhere ------------------------------------------------------------------
def test_tsv_quotes_are_text_for_predict_and_train(tmp_path):
    f = tmp_path / "train.tsv"
    f.write_text('text\tlabel\n"quoted" start\ta\nsays "hi\tb\n', encoding="utf-8")
    assert read_texts(f).texts == ['"quoted" start', 'says "hi']
    data = load_data(f, validation_fraction=0.5)
    assert sorted(data.train.texts + data.validation.texts) == ['"quoted" start', 'says "hi']


def test_csv_uses_double_quote_quoting(tmp_path):
    f = tmp_path / "docs.csv"
    f.write_text('text,id\n"a, ""quoted"" text",d1\nplain,\n', encoding="utf-8")
    assert read_texts(f) == Documents(['a, "quoted" text', "plain"], ["d1", "3"])


# ---- gzip -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["docs.jsonl.gz", "docs.txt.gz", "docs.tsv.gz"])
def test_gzip_is_read_by_its_ending(tmp_path, name):
    contents = {"docs.jsonl.gz": jsonl([{"text": "x"}]), "docs.txt.gz": "x\n", "docs.tsv.gz": "text\nx\n"}
    content = contents[name]
    f = tmp_path / name
    f.write_bytes(gzip.compress(content.encode("utf-8")))
    assert read_texts(f).texts == ["x"]


def test_corrupt_gzip_names_the_file(tmp_path):
    f = tmp_path / "docs.jsonl.gz"
    f.write_bytes(b"this is not gzip")
    with pytest.raises(DataFormatError, match="gzip") as err:
        read_texts(f)
    assert str(f) in str(err.value)
    bad = bytearray(gzip.compress(jsonl([{"text": f"doc {i}"} for i in range(2000)]).encode()))
    bad[len(bad) // 2 : len(bad) // 2 + 40] = b"\x00" * 40  # damage the deflate stream itself
    f.write_bytes(bytes(bad))
    with pytest.raises(DataFormatError, match="gzip") as err:
        read_texts(f)
    assert str(f) in str(err.value)


def test_truncated_gzip_names_the_file_for_predict_and_train(tmp_path):
    whole = gzip.compress(jsonl([{"text": f"doc {i}", "label": "a"} for i in range(500)]).encode())
    f = tmp_path / "train.jsonl.gz"
    f.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataFormatError, match="truncated") as err:
        read_texts(f)
    assert str(f) in str(err.value)
    with pytest.raises(DataFormatError, match="truncated") as err:
        load_data(f)
    assert str(f) in str(err.value)


# ---- errors ---------------------------------------------------------------------------------------
def test_errors_name_file_line_and_field(tmp_path):
    f = tmp_path / "docs.jsonl"
    f.write_text('{"text": "ok"}\n\n{"body": "no text"}\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"line 3: field 'text' is missing"):
        read_texts(f)
    f.write_text('{"text": "ok"}\n{"text": "  "}\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"line 2: field 'text' is empty"):
        read_texts(f)
    g = tmp_path / "docs.csv"
    g.write_text("body,id\nx,1\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"line 1: column 'text' not found"):
        read_texts(g)
    assert read_texts(g, text_field="body") == Documents(["x"], ["1"])
    h = tmp_path / "latin1.txt"
    h.write_bytes("fine\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(DataFormatError, match=r"line 2: byte 0xe9 at column 4"):
        read_texts(h)


def test_empty_missing_and_unsupported_files(tmp_path):
    (tmp_path / "empty.txt").write_text("\n  \n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="no documents"):
        read_texts(tmp_path / "empty.txt")
    with pytest.raises(DataNotFoundError):
        read_texts(tmp_path / "missing.jsonl")
    (tmp_path / "docs.xml").write_text("<a/>", encoding="utf-8")
    with pytest.raises(DataFormatError, match="unsupported file type"):
        read_texts(tmp_path / "docs.xml")


def test_byte_order_mark_is_removed(tmp_path):
    f = tmp_path / "docs.csv"
    f.write_bytes(b"\xef\xbb\xbftext\nx\n")
    assert read_texts(f).texts == ["x"]


# ---- streaming ------------------------------------------------------------------------------------
def test_iter_texts_streams_in_chunks(tmp_path):
    f = tmp_path / "docs.txt"
    f.write_text("".join(f"doc {i}\n" for i in range(7)), encoding="utf-8")
    chunks = list(iter_texts(f, chunk_size=3))
    assert [len(c.texts) for c in chunks] == [3, 3, 1]
    assert [t for c in chunks for t in c.texts] == read_texts(f).texts
    with pytest.raises(ConfigError, match="chunk_size"):
        next(iter_texts(f, chunk_size=0))


def test_iter_texts_yields_good_chunks_before_a_late_error(tmp_path):
    f = tmp_path / "docs.jsonl"
    f.write_text(jsonl([{"text": f"d{i}"} for i in range(4)]) + "{broken\n", encoding="utf-8")
    stream = iter_texts(f, chunk_size=2)
    assert next(stream).texts == ["d0", "d1"] and next(stream).texts == ["d2", "d3"]
    with pytest.raises(DataFormatError, match="line 5: malformed JSON"):
        next(stream)


def test_read_records_keeps_file_and_line(tmp_path):
    f = tmp_path / "train.tsv"
    f.write_text("text\tlabel\n\nx\ta\ny\tb\n", encoding="utf-8")
    records = read_records(f)
    assert [(r.line, r.fields) for r in records] == [
        (3, {"text": "x", "label": "a"}),
        (4, {"text": "y", "label": "b"}),
    ]
    assert records[0].file == str(f) and records[0].where == f"{f}, line 3"
    with iter_records(f) as stream:
        assert stream.columns == ["text", "label"] and next(stream).fields["text"] == "x"


def test_read_texts_reads_a_training_file(tmp_path):
    f = Path(tmp_path / "train.jsonl")
    f.write_text(jsonl([{"text": "x", "label": "a", "id": 5}]), encoding="utf-8")
    assert read_texts(f) == Documents(["x"], ["5"])
