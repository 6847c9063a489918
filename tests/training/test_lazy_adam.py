"""LazyAdam: SparseAdam's rule on sparse gradients, Adam's on dense ones; sparse-aware gradient clipping."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from frugaltext.training.lazy_adam import LazyAdam, clip_grad_norm

VOCAB, DIM, K = 30, 5, 3


class BagModel(torch.nn.Module):
    """A mean-of-embeddings classifier with a sparse (or dense) table gradient."""

    def __init__(self, sparse: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.table = torch.nn.Parameter(torch.randn(VOCAB, DIM))
        self.head = torch.nn.Linear(DIM, K)
        self.sparse = sparse

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.head(F.embedding_bag(ids, self.table, offsets, mode="mean", sparse=self.sparse))


def _batches(n: int = 6) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    out = []
    for _ in range(n):
        ids = torch.randint(0, VOCAB // 2, (9,), generator=generator)  # rows >= 15 never get a gradient
        out.append((ids, torch.tensor([0, 4, 4]), torch.randint(0, K, (3,), generator=generator)))
    return out


def _train(model: BagModel, step: callable) -> list[float]:
    losses = []
    for ids, offsets, labels in _batches():
        loss = F.cross_entropy(model(ids, offsets), labels)
        model.zero_grad(set_to_none=True)
        loss.backward()
        step()
        losses.append(loss.item())
    return losses


def test_sparse_rows_follow_sparse_adam_and_dense_parameters_follow_adam():
    lazy_model = BagModel(sparse=True)
    lazy = LazyAdam(lazy_model.parameters(), lr=0.05)
    reference = BagModel(sparse=True)
    sparse_adam = torch.optim.SparseAdam([reference.table], lr=0.05)
    adam = torch.optim.Adam(reference.head.parameters(), lr=0.05)
    start = lazy_model.table.detach().clone()
    _train(lazy_model, lazy.step)
    _train(reference, lambda: (sparse_adam.step(), adam.step()))
    torch.testing.assert_close(lazy_model.table, reference.table)
    torch.testing.assert_close(lazy_model.head.weight, reference.head.weight)
    torch.testing.assert_close(lazy_model.head.bias, reference.head.bias)
    # lazy: rows never looked up keep their vectors and have no moments
    torch.testing.assert_close(lazy_model.table[VOCAB // 2:], start[VOCAB // 2:])
    assert lazy.state[lazy_model.table]["exp_avg"][VOCAB // 2:].abs().sum() == 0
    assert not torch.equal(lazy_model.table[: VOCAB // 2], start[: VOCAB // 2])


def test_dense_gradients_are_adam_exactly():
    model, reference = BagModel(sparse=False), BagModel(sparse=False)
    lazy, adam = LazyAdam(model.parameters(), lr=0.01), torch.optim.Adam(reference.parameters(), lr=0.01)
    _train(model, lazy.step)
    _train(reference, adam.step)
    for mine, theirs in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(mine, theirs)


def test_loss_falls_and_state_dict_and_step_lr_work():
    model = BagModel(sparse=True)
    optimizer = LazyAdam(model.parameters(), lr=0.05)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    batches = _batches(1) * 25
    losses = []
    for ids, offsets, labels in batches:
        loss = F.cross_entropy(model(ids, offsets), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.025)
    restored = LazyAdam(copy.deepcopy(model).parameters(), lr=1.0)
    restored.load_state_dict(optimizer.state_dict())
    assert restored.param_groups[0]["lr"] == pytest.approx(0.025)
    torch.testing.assert_close(list(restored.state.values())[0]["exp_avg"],
                               optimizer.state[model.table]["exp_avg"])


def test_bad_hyper_parameters_raise():
    params = [torch.nn.Parameter(torch.zeros(2))]
    for kwargs, field in ((dict(lr=0.0), "lr"), (dict(betas=(1.0, 0.9)), "betas"), (dict(eps=0.0), "eps")):
        with pytest.raises(ValueError, match=field):
            LazyAdam(params, **kwargs)


def test_clip_grad_norm_matches_torch_on_the_dense_equivalent():
    ids, offsets, labels = _batches(1)[0]
    ids = torch.cat([ids, ids[:3]])  # repeated rows: the sparse gradient holds duplicates until coalesced
    sparse, dense = BagModel(sparse=True), BagModel(sparse=False)
    for model in (sparse, dense):
        (10.0 * F.cross_entropy(model(ids, offsets), labels)).backward()
    expected = torch.nn.utils.clip_grad_norm_(dense.parameters(), 0.5)
    total = clip_grad_norm(sparse.parameters(), 0.5)
    torch.testing.assert_close(total, expected)
    torch.testing.assert_close(sparse.table.grad.to_dense(), dense.table.grad)
    torch.testing.assert_close(sparse.head.weight.grad, dense.head.weight.grad)
    assert float(clip_grad_norm(sparse.parameters(), float("inf"))) == pytest.approx(0.5, rel=1e-4)
    assert float(clip_grad_norm([torch.nn.Parameter(torch.zeros(2))], 1.0)) == 0.0
