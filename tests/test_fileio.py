"""Tests of frugaltext.fileio: atomic writes leave either the old or the new file, never a temporary one."""

from __future__ import annotations

import json

import pytest

from frugaltext.fileio import atomic_write_bytes, atomic_write_json, atomic_write_text


def test_atomic_writes_replace_the_file_and_leave_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old\n")
    atomic_write_text(target, "new \u2028 text\r\n")
    assert target.read_bytes() == "new \u2028 text\r\n".encode()  # UTF-8, newlines untouched
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    atomic_write_json(tmp_path / "r.json", {"a": [1, 2]})
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": [1, 2]}
    assert (tmp_path / "r.json").read_text().endswith("\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.bin", "out.txt", "r.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "r.json"
    atomic_write_json(target, {"ok": True})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": object()})
    assert json.loads(target.read_text()) == {"ok": True}
    with pytest.raises(OSError):
        atomic_write_text(tmp_path / "no-such-dir" / "x.txt", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_methods_base_reexports_the_same_function():
    from frugaltext.methods.base import atomic_write_text as old

    assert old is atomic_write_text
