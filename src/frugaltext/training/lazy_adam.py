"""Adam for models with sparse embedding gradients (lazy, row-wise updates) and sparse-aware clipping.

A static model's parameters are almost all one vector table (MiniLM: 29,525 tokens x 256 = 7.56M entries)
of which a batch of 32 Reuters documents touches ~2,000 rows. Dense Adam updates every entry at every step
(~0.1 s per step on one CPU core, most of a static epoch); with ``sparse=True`` gradients the table's
gradient holds only the touched rows, and :class:`LazyAdam` updates only those rows, the rule of
``torch.optim.SparseAdam`` ("lazy Adam", as TensorFlow's ``LazyAdamOptimizer``): a row's moments and
weights move only at steps where the row has a gradient. Dense gradients (the head) get exactly
``torch.optim.Adam``'s update (no weight decay, no amsgrad), so one optimizer serves the whole model and
works with the transformers ``Trainer`` and a ``StepLR`` schedule (one set of ``param_groups`` and one
``state_dict``).

Clipping: ``torch.nn.utils.clip_grad_norm_`` (which the Trainer calls at every step, to clip at
``max_grad_norm`` or only to log the norm) does not accept sparse gradients; :func:`clip_grad_norm` does the
same for dense and sparse gradients, and :func:`frugaltext.training.hf.train_with_trainer`'s Trainer uses it
when a gradient is sparse.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

__all__ = ["LazyAdam", "clip_grad_norm"]


class LazyAdam(torch.optim.Optimizer):
    """Adam with row-wise lazy updates for sparse gradients (``torch.optim.SparseAdam``'s rule) and plain
    Adam for dense ones.

    Parameters
    ----------
    params : iterable of Tensor or of param-group dicts
        Parameters with dense or sparse (COO, from ``nn.Embedding(sparse=True)`` /
        ``F.embedding_bag(sparse=True)``) gradients.
    lr : float > 0, default 1e-3
    betas : tuple of two floats in [0, 1), default (0.9, 0.999)
    eps : float > 0, default 1e-8
        Added to ``sqrt(v)``, as ``torch.optim.Adam`` (dense) and ``torch.optim.SparseAdam`` (sparse) do.

    Raises
    ------
    ValueError
        For a value outside the ranges above.

    Notes
    -----
    Sparse parameters follow ``torch.optim.SparseAdam`` exactly (one step count per parameter, so a row's
    bias correction counts all steps, and ``eps`` added to ``sqrt(v)`` before the bias correction, as
    SparseAdam does); dense ones follow ``torch.optim.Adam`` exactly (both tested against torch's own
    optimizers).
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        if not lr > 0:
            raise ValueError(f"LazyAdam: lr must be > 0, got {lr!r}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"LazyAdam: betas must be in [0, 1), got {betas!r}")
        if not eps > 0:
            raise ValueError(f"LazyAdam: eps must be > 0, got {eps!r}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps))

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """One update of every parameter that has a gradient; returns ``closure()``'s loss (or None)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps = group["lr"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["step"] = torch.zeros((), dtype=torch.float32)
                if grad.is_sparse:
                    self._sparse_update(p, grad.coalesce(), state, lr, beta1, beta2, eps)
                else:
                    self._dense_update(p, grad, state, lr, beta1, beta2, eps)
        return loss

    @staticmethod
    def _dense_update(p: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], lr: float, beta1: float,
                      beta2: float, eps: float) -> None:
        """``torch.optim.Adam``'s update (single-tensor form)."""
        state["step"] += 1
        step = float(state["step"])
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction1 = 1 - beta1 ** step
        bias_correction2_sqrt = math.sqrt(1 - beta2 ** step)
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
        p.addcdiv_(exp_avg, denom, value=-lr / bias_correction1)

    @staticmethod
    def _sparse_update(p: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], lr: float, beta1: float,
                       beta2: float, eps: float) -> None:
        """``torch.optim.SparseAdam``'s update, on the rows present in the (coalesced, row-sparse) gradient
        only, bias-corrected with the parameter's step count; written with row gathers and scatters
        (``index_select`` / ``index_copy_`` / ``index_add_``) rather than SparseAdam's ``sparse_mask``,
        the same arithmetic, ~3x faster on a 29,525 x 256 table.

        Raises
        ------
        ValueError
            If the gradient is not row-sparse (``sparse_dim`` 1, as embedding gradients are).
        """
        if grad.sparse_dim() != 1:
            raise ValueError(f"LazyAdam: sparse gradients must be row-sparse (sparse_dim 1, as embedding "
                             f"gradients are), got sparse_dim {grad.sparse_dim()}")
        state["step"] += 1
        step = float(state["step"])
        rows, values = grad._indices()[0], grad._values()
        if values.numel() == 0:
            return
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        # m <- m + (1 - beta1) (g - m) and v <- v + (1 - beta2) (g^2 - v), on the gradient's rows
        old_exp_avg = exp_avg.index_select(0, rows)
        old_exp_avg_sq = exp_avg_sq.index_select(0, rows)
        numer = values.sub(old_exp_avg).mul_(1 - beta1).add_(old_exp_avg)
        new_exp_avg_sq = values.pow(2).sub_(old_exp_avg_sq).mul_(1 - beta2).add_(old_exp_avg_sq)
        exp_avg.index_copy_(0, rows, numer)
        exp_avg_sq.index_copy_(0, rows, new_exp_avg_sq)
        denom = new_exp_avg_sq.sqrt_().add_(eps)
        step_size = lr * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
        p.index_add_(0, rows, numer.div_(denom).mul_(-step_size))


@torch.no_grad()
def clip_grad_norm(parameters: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_`` (L2) for dense and sparse gradients: scale every gradient by
    ``min(1, max_norm / (total_norm + 1e-6))`` and return ``total_norm``, the L2 norm of all gradients
    together before clipping (a 0-d tensor; 0 when no parameter has a gradient).

    Sparse gradients are coalesced first (in place of ``p.grad``), so a row that appears several times in a
    batch counts once with its summed gradient, as in the dense gradient it stands for.

    Parameters
    ----------
    parameters : iterable of Tensor
    max_norm : float
        ``inf`` only measures the norm (nothing is scaled).
    """
    grads = []
    for p in parameters:
        if p.grad is not None:
            if p.grad.is_sparse:
                p.grad = p.grad.coalesce()
            grads.append(p.grad)
    if not grads:
        return torch.zeros(())
    squares = [(g._values() if g.is_sparse else g).float().pow(2).sum() for g in grads]
    total = torch.stack([s.to(squares[0].device) for s in squares]).sum().sqrt()
    if math.isfinite(max_norm):
        scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
        for g in grads:
            (g._values() if g.is_sparse else g).mul_(scale.to(device=g.device, dtype=g.dtype))
    return total
