"""FLOPs of the early-exit model, analytic, matching torch's ``FlopCounterMode`` with eager attention."""

from __future__ import annotations

import numpy as np
from transformers import (
    PreTrainedConfig,
)

from frugaltext.models.early_exit.config import EarlyExitConfig


# ==================================================================================================
# FLOPs (analytic, matching torch's FlopCounterMode with eager attention)
# ==================================================================================================
def encoder_layer_flops(encoder_config: PreTrainedConfig, seq_len: int | np.ndarray) -> float | np.ndarray:
    """FLOPs of one Transformer encoder layer on one document of ``seq_len`` tokens.

    Counts the matrix products as ``torch.utils.flop_counter.FlopCounterMode`` and
    :func:`frugaltext.cost.flops.count_flops` do (2 FLOPs per multiply-add; bias, softmax, GELU and
    LayerNorm are not counted), attention included: Q, K, V and output projections 8·n·H², attention scores
    and weighted sum 4·n²·H, feed-forward 4·n·H·I, with n = seq_len, H = hidden_size,
    I = intermediate_size. Mei (2020) Table 1 counts a layer as projections + feed-forward only (603.0M ≈
    8·128·768² and 1,207.9M = 4·128·768·3072 at n = 128) and leaves the 4·n²·H attention term out (+2.8 % per
    layer at n = 128, more for longer inputs); we keep it, so our ratios are slightly lower than Mei's method
    would give for the same exits.
    The same for every supported encoder: MPNet's relative position bias is a table look-up added to the
    scores (no matrix product), so an MPNet layer costs what a BERT layer of the same shape costs.

    Parameters
    ----------
    encoder_config : the encoder's config (hidden_size, intermediate_size)
    seq_len : int or ndarray of shape (n_docs,)

    Returns
    -------
    float or ndarray of shape (n_docs,), FLOPs.
    """
    n, h = np.asarray(seq_len, dtype=np.float64), float(encoder_config.hidden_size)
    i = float(getattr(encoder_config, "intermediate_size", 4 * encoder_config.hidden_size))
    flops = 8.0 * n * h * h + 4.0 * n * n * h + 4.0 * n * h * i
    return float(flops) if flops.ndim == 0 else flops


def embedding_flops(encoder_config: PreTrainedConfig, seq_len: int | np.ndarray) -> float | np.ndarray:
    """FLOPs of the embeddings on one document of ``seq_len`` tokens.

    Look-ups, adds and LayerNorm count 0 (as FlopCounterMode counts); only ELECTRA's ``embeddings_project``
    (a Linear(E, H), present when ``embedding_size`` E differs from ``hidden_size`` H) costs 2·n·E·H.

    Returns
    -------
    float or ndarray of shape (n_docs,), FLOPs.
    """
    n = np.asarray(seq_len, dtype=np.float64)
    h = float(encoder_config.hidden_size)
    e = float(getattr(encoder_config, "embedding_size", None) or h)
    projected = getattr(encoder_config, "model_type", "") == "electra" and e != h
    flops = 2.0 * n * e * h if projected else 0.0 * n
    return float(flops) if flops.ndim == 0 else flops


def exit_head_flops(config: EarlyExitConfig) -> float:
    """FLOPs of one exit classifier on one [CLS] vector: 2·H·K, plus 2·H² for ``dense_tanh``."""
    h, k = float(config.encoder.hidden_size), float(config.num_labels)
    return 2.0 * h * k + (2.0 * h * h if config.classifier_head == "dense_tanh" else 0.0)


def document_flops(
    config: EarlyExitConfig,
    seq_len: int | np.ndarray,
    exit_layer: int | np.ndarray,
    heads_evaluated: int | np.ndarray | None = None,
) -> float | np.ndarray:
    """Forward FLOPs of a document that ran ``exit_layer`` layers: embeddings + layers + classifiers.

    Embeddings are table look-ups, adds and a LayerNorm: 0 matrix-product FLOPs (as FlopCounterMode counts),
    except ELECTRA's projection (:func:`embedding_flops`). ``heads_evaluated`` defaults to ``exit_layer``
    (one classifier per layer run); a rule that cannot exit early evaluates only the final classifier (1).
    Arrays of shape (n_docs,) give one value per document.
    """
    heads = exit_layer if heads_evaluated is None else heads_evaluated
    flops = (
        embedding_flops(config.encoder, seq_len)
        + np.asarray(exit_layer, dtype=np.float64) * encoder_layer_flops(config.encoder, seq_len)
        + np.asarray(heads, dtype=np.float64) * exit_head_flops(config)
    )
    return float(flops) if np.ndim(flops) == 0 else flops


def train_step_flops(
    config: EarlyExitConfig, seq_len: int | np.ndarray, stage: int | None = None
) -> float | np.ndarray:
    """FLOPs of one training step (forward + backward, no optimizer) on one document of ``seq_len`` tokens.

    Training runs every layer and every exit. The backward of a matrix product costs twice its forward
    (gradients of input and weight; Kaplan et al. 2020 §2.1), so, as
    :func:`frugaltext.cost.flops.count_flops` counts it:

    * joint (``stage=None``): 3 × (embeddings + L layers + L exits);
    * two-stage, stage 1: forward of embeddings + L layers + L exits, backward of embeddings + L layers + the
      final exit (the other exits run without gradient);
    * two-stage, stage 2: forward of embeddings + L layers + L exits, backward of exits 1..L-1 only, whose
      inputs need no gradient (weight gradients only: 2·H·K each; ``dense_tanh`` adds the gradient into the
      dense layer, 2·H·K + 2·H²).

    Returns
    -------
    float or ndarray of shape (n_docs,), FLOPs.
    """
    num_layers = config.num_hidden_layers
    # embeddings (0 but for ELECTRA's projection) are trained with the layers, so they count as layers here
    layers = embedding_flops(config.encoder, seq_len) + num_layers * encoder_layer_flops(
        config.encoder, seq_len
    )
    head = exit_head_flops(config)
    forward = layers + num_layers * head
    if stage is None:
        return 3.0 * forward
    if stage == 1:
        return forward + 2.0 * (layers + head)
    h, k = float(config.encoder.hidden_size), float(config.num_labels)
    student_backward = 2.0 * h * k + (
        (2.0 * h * k + 2.0 * h * h) if config.classifier_head == "dense_tanh" else 0.0
    )
    return forward + (num_layers - 1) * student_backward
