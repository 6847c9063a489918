"""FLOPs counted on the operations that actually ran, attention included; parameter counts.

We count with ``torch.utils.flop_counter.FlopCounterMode``, which records every matrix multiplication
dispatched while a module runs (one multiply-add = 2 FLOPs). So early exit counts only the layers that
ran, and TopicBERT's bag-of-words encoder is counted with the rest, which transformers' estimate
``6 x tokens x parameters`` (``PreTrainedModel.floating_point_ops``) cannot do.

**Attention.** On CPU, ``torch.nn.functional.scaled_dot_product_attention`` (transformers' default
"sdpa" attention) runs the fused kernel ``aten._scaled_dot_product_flash_attention_for_cpu``, which
FlopCounterMode (torch 2.13) has no formula for: it silently counts 0 for QK^T and AV. A tiny BERT
(hidden 32, 2 layers) at 1 x 128 tokens gives 3.31 MFLOPs with "sdpa" against 7.51 MFLOPs with "eager"
attention, whose two ``bmm`` per layer are counted: 2 x (2 x N^2 x H) = 4 N^2 H per layer, the
missing 4.19 MFLOPs. We register torch's own SDPA formulas (``sdpa_flop_count`` /
``sdpa_backward_flop_count``, which torch already applies to the CUDA flash / efficient / cuDNN kernels)
for the CPU kernel and its backward. This works for any module that calls SDPA, not only Hugging Face
models whose attention implementation could be switched to "eager", and it leaves the model untouched.
``tests/cost/test_flops.py`` checks that "sdpa" and "eager" give identical counts, forward and training
step.

**Bag pooling.** ``torch.nn.functional.embedding_bag`` (the static models' masked mean, one fused gather +
sum) has no formula in FlopCounterMode either; we count its sum / mean as the weighted sum it is, 2 x n x d
FLOPs for n looked-up rows of width d (one multiply-add per token and dimension), and its backward alike
(each row's gradient is the bag's gradient scaled by 1/n: 2 x n x d). ``max`` bags count 0 (comparisons).

What is not counted: element-wise work (softmax, GELU, layer norm, dropout, the optimizer update) and
plain embedding look-ups (gathers). These are a few percent of a transformer's FLOPs; the same convention as
FlopCounterMode and fvcore (which count multiply-accumulates of matrix products only, = FLOPs / 2).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from frugaltext.errors import CostMeasurementError

__all__ = ["count_flops", "count_flops_per_document", "n_parameters"]

_aten = torch.ops.aten


def _sdpa_cpu_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """Count ``aten._scaled_dot_product_flash_attention_for_cpu``: QK^T and AV, 2 x 2 b h N_q N_k d."""
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _sdpa_cpu_backward_flop(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None,
                            **kwargs) -> int:
    """FLOPs of ``aten._scaled_dot_product_flash_attention_for_cpu_backward`` (recomputed scores + 4 bmm)."""
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


_BAG_MAX = 2  # embedding_bag's mode codes: 0 sum, 1 mean, 2 max


def _embedding_bag_flop(weight_shape, indices_shape, *args, out_shape=None, mode: int = 0, **kwargs) -> int:
    """``aten._embedding_bag`` / ``_embedding_bag_forward_only`` / ``embedding_bag``: a sum or mean of n rows
    of width d, 2 n d FLOPs (0 for max bags). ``mode`` is the fifth positional argument."""
    if len(args) >= 3:
        mode = args[2]
    if int(mode) == _BAG_MAX:
        return 0
    n_indices = 1
    for size in indices_shape:
        n_indices *= int(size)
    return 2 * n_indices * int(weight_shape[-1])


def _embedding_bag_backward_flop(grad_shape, indices_shape, *args, out_shape=None, **kwargs) -> int:
    """``aten._embedding_bag_backward``: each of the n rows gets the bag's gradient (scaled by 1/n for a
    mean), 2 n d FLOPs; ``mode`` is the ninth positional argument (0 for max bags)."""
    mode = args[6] if len(args) >= 7 else kwargs.get("mode", 0)
    if int(mode) == _BAG_MAX:
        return 0
    n_indices = 1
    for size in indices_shape:
        n_indices *= int(size)
    return 2 * n_indices * int(grad_shape[-1])


def _attention_mapping() -> dict[Any, Any]:
    mapping: dict[Any, Any] = {
        _aten._embedding_bag: _embedding_bag_flop,
        _aten._embedding_bag_forward_only: _embedding_bag_flop,
        _aten.embedding_bag: _embedding_bag_flop,
        _aten._embedding_bag_backward: _embedding_bag_backward_flop,
    }
    if hasattr(_aten, "_scaled_dot_product_flash_attention_for_cpu"):
        mapping[_aten._scaled_dot_product_flash_attention_for_cpu] = _sdpa_cpu_flop
    if hasattr(_aten, "_scaled_dot_product_flash_attention_for_cpu_backward"):
        mapping[_aten._scaled_dot_product_flash_attention_for_cpu_backward] = _sdpa_cpu_backward_flop
    return mapping


def flop_counter() -> FlopCounterMode:
    """Return a silent ``FlopCounterMode`` that also counts the fused CPU attention kernel and bag pooling."""
    return FlopCounterMode(display=False, custom_mapping=_attention_mapping())


def _module_device(module: torch.nn.Module) -> torch.device | None:
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return None


def _to_device(inputs: Mapping[str, Any], device: torch.device | None) -> dict[str, Any]:
    if device is None:
        return dict(inputs)
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}


def _get(outputs: Any, key: str) -> Any:
    if isinstance(outputs, Mapping):
        return outputs.get(key)
    return getattr(outputs, key, None)


def _backward_target(outputs: Any) -> torch.Tensor:
    """Pick the scalar to differentiate: ``loss`` if the model returned one, else ``logits.sum()``."""
    for key in ("loss", "logits"):
        value = _get(outputs, key)
        if isinstance(value, torch.Tensor) and value.requires_grad:
            return value.sum()
    if isinstance(outputs, torch.Tensor) and outputs.requires_grad:
        return outputs.sum()
    if isinstance(outputs, Mapping):
        values: Iterable[Any] = outputs.values()
    else:
        values = outputs if isinstance(outputs, tuple | list) else ()
    for value in values:
        if isinstance(value, torch.Tensor) and value.is_floating_point() and value.requires_grad:
            return value.sum()
    raise CostMeasurementError(
        f"count_flops(train_step=True): the module's output ({type(outputs).__name__}) has no 'loss' or "
        "'logits' tensor that requires grad; pass labels in inputs, or make sure some parameters are "
        "trainable")


def count_flops(module: torch.nn.Module, inputs: Mapping[str, Any], train_step: bool = False) -> float:
    """Total FLOPs of one call ``module(**inputs)``, and of its backward pass when ``train_step``.

    Counts the matrix products that ran (linear layers, attention scores and weighted sums, whatever
    attention implementation ran; see the module docstring). The module's train/eval mode is left as it
    is, and the forward runs under ``torch.no_grad()`` unless ``train_step``. With ``train_step`` the
    backward is that of ``outputs.loss`` if present (pass ``labels``), else of ``outputs.logits.sum()``,
    taken with ``torch.autograd.grad`` on the trainable parameters, so no ``.grad`` is left behind. A
    backward pass costs about twice the forward, so a training step is about 3x a forward pass
    (Kaplan et al. 2020, "Scaling laws for neural language models", §2.1); the optimizer update is not
    counted.

    Parameters
    ----------
    module : torch.nn.Module
    inputs : dict of str to Tensor
        Keyword arguments of the call, e.g. ``input_ids`` and ``attention_mask`` of shape
        ``(batch_size, seq_len)``; moved to the module's device. Padding tokens are computed, so they are
        counted: pass unpadded single documents for per-document FLOPs.
    train_step : bool, default False
        Also count the backward pass.

    Returns
    -------
    float
        FLOPs of the whole batch (divide by ``batch_size`` for per-document FLOPs, or use
        :func:`count_flops_per_document`).

    Raises
    ------
    CostMeasurementError
        If ``train_step`` and the output has no loss or logits depending on trainable parameters.
    """
    inputs = _to_device(inputs, _module_device(module))
    counter = flop_counter()
    if not train_step:
        with torch.no_grad(), counter:
            module(**inputs)
        return float(counter.get_total_flops())
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise CostMeasurementError(f"count_flops(train_step=True): {type(module).__name__} has no trainable "
                                   "parameters, so a training step has no backward pass to count")
    with torch.enable_grad(), counter:
        outputs = module(**inputs)
        target = _backward_target(outputs)
        torch.autograd.grad(target, params, allow_unused=True)
    return float(counter.get_total_flops())


def _batch_size(inputs: Mapping[str, Any]) -> int:
    for key in ("input_ids", "attention_mask", "inputs_embeds"):
        value = inputs.get(key)
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return int(value.shape[0])
    for value in inputs.values():
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return int(value.shape[0])
    raise CostMeasurementError(f"count_flops_per_document: cannot tell the batch size of a batch with keys "
                               f"{sorted(inputs)}; include input_ids (batch_size, seq_len)")


def count_flops_per_document(module: torch.nn.Module, batches: Iterable[Mapping[str, Any]],
                             train_step: bool = False) -> float:
    """Mean FLOPs per document over ``batches``: total FLOPs / total documents.

    Parameters
    ----------
    module : torch.nn.Module
    batches : iterable of dict of str to Tensor
        Each a keyword-argument batch for ``module``; the batch size is the first dimension of
        ``input_ids`` (else of the first tensor). Padding is counted (see :func:`count_flops`).
    train_step : bool, default False
        Count forward + backward (see :func:`count_flops`).

    Returns
    -------
    float
        FLOPs per document.

    Raises
    ------
    CostMeasurementError
        If ``batches`` is empty or a batch size cannot be determined.
    """
    total_flops = 0.0
    n_docs = 0
    for batch in batches:
        n_docs += _batch_size(batch)
        total_flops += count_flops(module, batch, train_step=train_step)
    if n_docs == 0:
        raise CostMeasurementError("count_flops_per_document: no documents in batches; pass at least one "
                                   "batch")
    return total_flops / n_docs


def n_parameters(module: torch.nn.Module, trainable_only: bool = False) -> int:
    """Count the parameters (scalars) of ``module``; tied weights count once.

    Parameters
    ----------
    module : torch.nn.Module
    trainable_only : bool, default False
        Count only parameters with ``requires_grad``.

    Returns
    -------
    int
    """
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only))
