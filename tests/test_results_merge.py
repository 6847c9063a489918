"""config_hash_conflicts: which rows of a comparison split over folders may be summarised together."""

from __future__ import annotations

from frugaltext.experiment.results import HashConflict, config_hash_conflicts


def _row(method, seed, chash):
    return {"method": method, "seed": seed, "config_hash": chash}


def test_rows_sharing_one_hash_per_method_have_no_conflict():
    sources = [("a", [_row("bert", 0, "h1"), _row("topicbert", 0, "h2")]),
               ("b", [_row("bert", 1, "h1"), _row("topicbert", 1, "h2")])]
    assert config_hash_conflicts(sources) == []


def test_a_method_with_another_hash_is_named_with_both_sources_and_hashes():
    sources = [("run", [_row("bert", 0, "h1")]), ("s1/results.json", [_row("bert", 1, "h9"),
                                                                     _row("cnn", 1, "h3")])]
    (conflict,) = config_hash_conflicts(sources)
    assert conflict == HashConflict("bert", 1, "s1/results.json", "h9", "run", "h1")
    assert conflict.message() == ("s1/results.json: bert seed 1 has config hash h9, but run has h1 "
                                  "(other settings or data)")


def test_conflicts_inside_one_source_and_missing_hashes_count():
    conflicts = config_hash_conflicts([("run", [_row("bert", 0, "h1"), _row("bert", 1, "h2"),
                                                {"method": "bert", "seed": 2}])])
    assert [(c.seed, c.config_hash, c.first_config_hash) for c in conflicts] == [(1, "h2", "h1"),
                                                                                 (2, None, "h1")]
