"""Property-based tests of the one reader (frugaltext.data.formats / texts / load_data) with hypothesis.

Any input either loads, with the right number of rows and the texts as written, or fails with a
FrugalTextError subclass naming the file; never another exception. Example counts stay modest (the suite
must stay fast).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from frugaltext.data import load_data, read_records, read_texts
from frugaltext.errors import FrugalTextError

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Unicode line breaks other than "\n": ordinary characters for the reader
BREAKS = ["\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\r"]
ENDINGS = [".jsonl", ".json", ".csv", ".tsv", ".txt"]

# text without NUL (csv refuses it; the random-bytes test covers it), often holding separators and breaks
_pieces = st.one_of(
    st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=12),
    st.sampled_from([",", '"', "'", "\t", "\n", "\r\n", "\\", "{", "}", *BREAKS]),
)
texts = st.lists(_pieces, min_size=1, max_size=6).map("".join).filter(lambda t: bool(t.strip()))
labels = st.sampled_from(["a", "b", "c", "x y", "7", "10"])


def _write(directory: Path, name: str, data: bytes, compress: bool) -> Path:
    path = directory / (name + (".gz" if compress else ""))
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@FAST
@given(data=st.binary(max_size=300), ending=st.sampled_from(ENDINGS), compress=st.booleans(),
       gz_name=st.booleans())
def test_random_bytes_load_or_fail_cleanly(data, ending, compress, gz_name):
    with tempfile.TemporaryDirectory() as tmp:
        # gz_name without compress: plain bytes under a .gz name (a corrupt archive)
        path = Path(tmp) / ("docs" + ending + (".gz" if gz_name else ""))
        path.write_bytes(gzip.compress(data) if (compress and gz_name) else data)
        for read in (read_texts, (lambda p: load_data(p)) if ending != ".txt" else None):
            if read is None:
                continue
            try:
                read(path)
            except FrugalTextError as err:
                assert str(err)
            # anything else propagates and fails the test


@FAST
@given(rows=st.lists(st.tuples(texts, labels, st.booleans()), min_size=1, max_size=8),
       compress=st.booleans(), crlf=st.lists(st.booleans(), min_size=8, max_size=8),
       extra=st.dictionaries(st.sampled_from(["id2", "source", "z"]), st.integers(), max_size=2),
       order=st.randoms(use_true_random=False), blank=st.booleans())
def test_jsonl_round_trip_with_any_field_order(rows, compress, crlf, extra, order, blank):
    lines = []
    for i, (text, label, as_list) in enumerate(rows):
        fields = [("text", text), ("label", [label] if as_list else label), *extra.items()]
        order.shuffle(fields)
        ending = "\r\n" if crlf[i] else "\n"
        lines.append(json.dumps(dict(fields), ensure_ascii=bool(i % 2)) + ending)
        if blank:
            lines.append(ending)
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "train.jsonl", "".join(lines).encode("utf-8"), compress)
        records = read_records(path)
        assert [r.fields["text"] for r in records] == [t for t, _, _ in rows]
        assert read_texts(path).texts == [t for t, _, _ in rows]
        if len(rows) >= 2:
            data = load_data(path, multi_label=False)
            assert len(data.train) + len(data.validation) == len(rows)
            assert sorted(data.train.texts + data.validation.texts) == sorted(t for t, _, _ in rows)


@FAST
@given(rows=st.lists(st.tuples(texts, labels), min_size=1, max_size=8), compress=st.booleans(),
       quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
       text_first=st.booleans(), crlf=st.booleans())
def test_csv_round_trip_with_any_quoting(rows, compress, quoting, text_first, crlf):
    buffer = io.StringIO()
    header = ["text", "label"] if text_first else ["label", "text"]
    writer = csv.writer(buffer, quoting=quoting, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(header)
    for text, label in rows:
        writer.writerow([text, label] if text_first else [label, text])
    # csv.writer quotes only the characters of its lineterminator: with "\n", a bare "\r" stays unquoted,
    # which RFC 4180 does not allow ("0\r" before the "\n" reads as a CRLF ending): such a file may fail
    # (DataFormatError) or lose that "\r", but must keep its row count
    ambiguous = not crlf and quoting == csv.QUOTE_MINIMAL and any("\r" in t for t, _ in rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "train.csv", buffer.getvalue().encode("utf-8"), compress)
        if ambiguous:
            try:
                assert len(read_texts(path).texts) == len(rows)
            except FrugalTextError:
                pass
            return
        assert read_texts(path).texts == [t for t, _ in rows]
        assert [r.fields["label"] for r in read_records(path)] == [lab for _, lab in rows]


tsv_texts = texts.map(lambda t: t.replace("\t", " ").replace("\n", " ").replace("\r", " ")).filter(
    lambda t: bool(t.strip()))


@FAST
@given(rows=st.lists(st.tuples(tsv_texts, labels), min_size=1, max_size=8), compress=st.booleans())
def test_tsv_keeps_quotes_as_text(rows, compress):
    data = "text\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "train.tsv", data.encode("utf-8"), compress)
        assert read_texts(path).texts == [t for t, _ in rows]


@FAST
@given(lines=st.lists(texts.map(lambda t: t.replace("\n", " ")), min_size=1, max_size=8),
       compress=st.booleans(), crlf=st.booleans())
def test_txt_is_one_document_per_newline(lines, compress, crlf):
    ending = "\r\n" if crlf else "\n"
    lines = [t.lstrip("\ufeff") for t in lines]
    body = ending.join(lines) + ending
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), "docs.txt", body.encode("utf-8"), compress)
        expected = [t.strip() for t in lines if t.strip()]
        try:
            documents = read_texts(path)
        except FrugalTextError:
            assert not expected  # only a file without any document may fail
            return
        assert documents.texts == expected


@FAST
@given(rows=st.lists(st.tuples(texts, labels), min_size=2, max_size=6), cut=st.integers(min_value=1),
       ending=st.sampled_from([".jsonl", ".csv"]))
def test_truncated_gzip_fails_cleanly_or_loads_a_prefix(rows, cut, ending):
    if ending == ".jsonl":
        body = "".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in rows)
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows(rows)
        body = buffer.getvalue()
    archive = gzip.compress(body.encode("utf-8"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"docs{ending}.gz"
        path.write_bytes(archive[: cut % len(archive)])
        try:
            documents = read_texts(path)
        except FrugalTextError:
            return
        raise AssertionError(f"a truncated archive loaded {len(documents.texts)} documents")
