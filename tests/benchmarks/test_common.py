"""Helpers shared by the benchmark scripts (benchmarks/_common.py): names, the machine record and the
interleaved timing order.

No timing is asserted: the timed callables are fakes, only structure, keys and call order are checked.
"""

from __future__ import annotations

import pytest

from tests.benchmarks import load_benchmark

common = load_benchmark("_common")

MACHINE_KEYS = {
    "platform", "processor", "python", "cpu_model", "cpu_flags_of_interest", "cpu_count",
    "torch_version", "transformers_version",
    "torch_num_threads", "device", "load_average",
}


@pytest.mark.parametrize(
    ("data", "slug"),
    [
        ("r8", "r8"),
        ("../shared/data/sst2", "sst2"),
        ("../shared/data/sst2/", "sst2"),
        ("My Data", "my_data"),
    ],
)
def test_dataset_slug(data, slug):
    assert common.dataset_slug(data) == slug


@pytest.mark.parametrize("data", ["/", "///", ""])
def test_dataset_slug_rejects_empty(data):
    with pytest.raises(ValueError, match="pass --output explicitly"):
        common.dataset_slug(data)


def test_interleaved_schedule_rotates_and_balances():
    names = ["full", "s0", "cal"]
    order = common.interleaved_schedule(names, 3)
    assert order == ["full", "s0", "cal", "s0", "cal", "full", "cal", "full", "s0"]
    for name in names:
        assert order.count(name) == 3
        # each name takes each position of a round once
        assert sorted(order[r * 3 : r * 3 + 3].index(name) for r in range(3)) == [0, 1, 2]
    # round r is names rotated left by r (as topicbert_speed.py used to spell it)
    for r in range(5):
        assert common.interleaved_schedule(names, 5)[r * 3 : r * 3 + 3] == names[r % 3 :] + names[: r % 3]


@pytest.mark.parametrize(("names", "repeats"), [([], 1), (["a", "a"], 2), (["a"], 0)])
def test_interleaved_schedule_rejects_bad_input(names, repeats):
    with pytest.raises(ValueError):
        common.interleaved_schedule(names, repeats)


def test_run_interleaved_calls_in_schedule_order_and_groups_samples():
    calls = []

    def measure(name):
        calls.append(name)
        return (name, len(calls))

    samples = common.run_interleaved(measure, ("b", "a", "c"), 2)
    assert calls == common.interleaved_schedule(["b", "a", "c"], 2) == ["b", "a", "c", "a", "c", "b"]
    assert list(samples) == ["b", "a", "c"]  # the order of names, not of the first call
    assert samples == {"b": [("b", 1), ("b", 6)], "a": [("a", 2), ("a", 4)], "c": [("c", 3), ("c", 5)]}


@pytest.mark.parametrize(("names", "repeats"), [([], 1), (["a", "a"], 2), (["a"], 0)])
def test_run_interleaved_measures_nothing_on_bad_input(names, repeats):
    calls = []
    with pytest.raises(ValueError):
        common.run_interleaved(calls.append, names, repeats)
    assert calls == []


def test_machine_info_has_the_shared_keys():
    import torch

    info = common.machine_info()
    assert set(info) == MACHINE_KEYS
    assert info["device"] == "cpu"
    assert info["torch_version"] == torch.__version__
    assert info["torch_num_threads"] == torch.get_num_threads()
    assert isinstance(info["platform"], str) and info["processor"]
    assert info["load_average"] is None or len(info["load_average"]) == 3
    from frugaltext.fastpath import FLAGS_OF_INTEREST

    assert set(info["cpu_flags_of_interest"]) <= set(FLAGS_OF_INTEREST)


def test_machine_info_extra_keys_add_and_override():
    info = common.machine_info(torch_num_threads=7, load_average_start=[1.0, 2.0, 3.0], note="x")
    assert set(info) == MACHINE_KEYS | {"load_average_start", "note"}
    assert info["torch_num_threads"] == 7
    assert (info["load_average_start"], info["note"]) == ([1.0, 2.0, 3.0], "x")
