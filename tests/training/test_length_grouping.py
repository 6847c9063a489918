"""Length-grouped batches in random order (frugaltext.training.length_grouping)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers.trainer_pt_utils import get_length_grouped_indices

from frugaltext.training.length_grouping import ShuffledLengthGroupedSampler, shuffled_length_grouped_indices


def _lengths(n: int, seed: int = 0) -> list[int]:
    return [int(x) for x in np.random.default_rng(seed).integers(1, 300, size=n)]


def _batches(indices: list[int], batch_size: int) -> list[list[int]]:
    return [indices[i:i + batch_size] for i in range(0, len(indices), batch_size)]


def _padded(indices: list[int], lengths: list[int], batch_size: int) -> int:
    return sum(len(b) * max(lengths[i] for i in b) for b in _batches(indices, batch_size))


@pytest.mark.parametrize("n", [1, 7, 16, 100, 1000, 4936])
def test_every_index_once_and_only_the_last_batch_short(n):
    lengths = _lengths(n)
    order = shuffled_length_grouped_indices(lengths, 16, generator=torch.Generator().manual_seed(0))
    assert sorted(order) == list(range(n))
    sizes = [len(b) for b in _batches(order, 16)]
    assert all(s == 16 for s in sizes[:-1])


def test_same_batches_as_transformers_but_in_random_order():
    lengths = _lengths(4936)
    ours = shuffled_length_grouped_indices(lengths, 16, generator=torch.Generator().manual_seed(3))
    theirs = get_length_grouped_indices(lengths, 16, generator=torch.Generator().manual_seed(3))
    as_sets = lambda order: sorted(tuple(sorted(b)) for b in _batches(order, 16))  # noqa: E731
    assert as_sets(ours) == as_sets(theirs)  # the same batches, so the same padding
    assert _padded(ours, lengths, 16) == _padded(theirs, lengths, 16)
    assert ours != theirs


def test_no_long_to_short_sweep():
    """transformers' order falls in length for 50 batches at a time; ours is not ordered by length."""
    lengths = _lengths(4936)
    ours = shuffled_length_grouped_indices(lengths, 16, generator=torch.Generator().manual_seed(1))
    hf = get_length_grouped_indices(lengths, 16, generator=torch.Generator().manual_seed(1))
    maxima = [max(lengths[i] for i in b) for b in _batches(ours, 16)]
    theirs = [max(lengths[i] for i in b) for b in _batches(hf, 16)]
    falls = lambda m: np.mean(np.diff(m[1:50]) <= 0)  # noqa: E731
    assert falls(theirs) == 1.0
    assert falls(maxima) < 0.8
    # and the grouping still saves padding against random batches
    random_order = torch.randperm(4936, generator=torch.Generator().manual_seed(1)).tolist()
    grouped = shuffled_length_grouped_indices(lengths, 16, generator=torch.Generator().manual_seed(1))
    assert _padded(grouped, lengths, 16) < 0.8 * _padded(random_order, lengths, 16)


def test_longest_complete_batch_first_and_seeded():
    lengths = _lengths(1001)
    a = shuffled_length_grouped_indices(lengths, 10, generator=torch.Generator().manual_seed(5))
    b = shuffled_length_grouped_indices(lengths, 10, generator=torch.Generator().manual_seed(5))
    c = shuffled_length_grouped_indices(lengths, 10, generator=torch.Generator().manual_seed(6))
    assert a == b and a != c
    batches = _batches(a, 10)
    assert max(lengths[i] for i in batches[0]) == max(max(lengths[i] for i in bt) for bt in batches[:-1])


def test_bad_batch_size_is_refused():
    with pytest.raises(ValueError, match="batch_size"):
        shuffled_length_grouped_indices([1, 2, 3], 0)


def test_sampler_reads_lengths_from_input_ids_and_draws_a_new_order_each_epoch():
    rows = [{"input_ids": [1] * n} for n in _lengths(200)]
    sampler = ShuffledLengthGroupedSampler(8, dataset=rows)
    assert len(sampler) == 200
    torch.manual_seed(0)
    first, second = list(sampler), list(sampler)
    assert sorted(first) == sorted(second) == list(range(200))
    assert first != second


def test_evaluation_keeps_the_dataset_order_when_training_batches_are_grouped(tmp_path):
    """transformers 5 would length-group the evaluation batches too, permuting the predictions that
    compute_metrics sees (TopicBERT reads them by position); FrugalTrainer evaluates in order."""
    from transformers import TrainingArguments

    from frugaltext.training.hf import FrugalTrainer

    rows = [{"input_ids": [1] * n, "labels": 0} for n in _lengths(100)]
    args = TrainingArguments(output_dir=str(tmp_path), train_sampling_strategy="group_by_length",
                             per_device_eval_batch_size=8, report_to=[], use_cpu=True)
    trainer = FrugalTrainer(model=torch.nn.Linear(1, 1), args=args, train_dataset=rows, eval_dataset=rows)
    assert isinstance(trainer._get_train_sampler(rows), ShuffledLengthGroupedSampler)
    assert list(trainer._get_eval_sampler(rows)) == list(range(100))
    from transformers import Trainer

    assert list(Trainer._get_eval_sampler(trainer, rows)) != list(range(100))  # what the override prevents
    assert trainer._get_eval_sampler(None) is None
