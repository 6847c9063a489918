"""FLOP counting: attention included whatever the attention implementation, training step ~3x forward."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import BertConfig, BertForSequenceClassification

from frugaltext.cost.flops import count_flops, count_flops_per_document, n_parameters
from frugaltext.errors import CostMeasurementError

HIDDEN, LAYERS = 32, 2


def _config() -> BertConfig:
    return BertConfig(vocab_size=60, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=4,
                      intermediate_size=37, max_position_embeddings=512, num_labels=3)


@pytest.fixture(scope="module")
def models() -> dict[str, BertForSequenceClassification]:
    """Build the same tiny BERT twice: default ("sdpa") attention and "eager" attention (own configs)."""
    torch.manual_seed(0)
    sdpa = BertForSequenceClassification(_config()).eval()
    eager = BertForSequenceClassification(copy.deepcopy(sdpa.config))
    eager.load_state_dict(sdpa.state_dict())
    eager.set_attn_implementation("eager")
    eager.eval()
    assert sdpa.config._attn_implementation == "sdpa"
    assert eager.config._attn_implementation == "eager"
    return {"sdpa": sdpa, "eager": eager}


def _inputs(n_tokens: int, batch_size: int = 1, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 60, (batch_size, n_tokens), generator=generator)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def _attention_flops(n_tokens: int) -> int:
    """QK^T and AV: 2 matmuls x 2 N^2 H FLOPs per layer (4 N^2 H per layer)."""
    return 4 * n_tokens**2 * HIDDEN * LAYERS


def test_plain_flop_counter_misses_fused_cpu_attention(models):
    # The trap this module exists for (ENV.md): without our formula the sdpa count is linear in N.
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        models["sdpa"](**_inputs(128))
    assert count_flops(models["sdpa"], _inputs(128)) - counter.get_total_flops() == _attention_flops(128)


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_flops_grow_faster_than_linearly_with_sequence_length(models, implementation):
    model = models[implementation]
    ratio = count_flops(model, _inputs(256)) / count_flops(model, _inputs(128))
    assert ratio > 2.5  # linear layers alone would give exactly 2


@pytest.mark.parametrize(("n_tokens", "batch_size"), [(16, 1), (128, 1), (40, 3)])
def test_sdpa_and_eager_forward_flops_are_equal(models, n_tokens, batch_size):
    inputs = _inputs(n_tokens, batch_size)
    assert count_flops(models["sdpa"], inputs) == count_flops(models["eager"], inputs)


def test_padding_mask_does_not_change_counted_flops(models):
    inputs = _inputs(32, batch_size=2)
    masked = {**inputs, "attention_mask": inputs["attention_mask"].clone()}
    masked["attention_mask"][0, 20:] = 0
    for model in models.values():
        assert count_flops(model, masked) == count_flops(model, inputs)  # padded positions are computed


def test_train_step_is_about_three_forward_passes(models):
    inputs = _inputs(64)
    labeled = {**inputs, "labels": torch.tensor([1])}
    for model in models.values():
        ratio = count_flops(model, labeled, train_step=True) / count_flops(model, inputs)
        assert 2.5 < ratio < 3.5


def test_sdpa_train_step_adds_exactly_the_recomputed_attention_scores(models):
    # The fused kernel's backward recomputes QK^T (2 N^2 H per layer) instead of storing the probabilities.
    labeled = {**_inputs(64), "labels": torch.tensor([2])}
    sdpa = count_flops(models["sdpa"], labeled, train_step=True)
    eager = count_flops(models["eager"], labeled, train_step=True)
    assert sdpa - eager == 2 * 64**2 * HIDDEN * LAYERS


def test_train_step_leaves_no_gradients_and_keeps_the_mode(models):
    model = models["sdpa"]
    count_flops(model, {**_inputs(8), "labels": torch.tensor([0])}, train_step=True)
    assert all(p.grad is None for p in model.parameters())
    assert not model.training
    model.train()
    try:
        count_flops(model, _inputs(8), train_step=True)  # no labels: backward of logits.sum()
        assert model.training
    finally:
        model.eval()


def test_train_step_without_trainable_parameters_raises(models):
    frozen = copy.deepcopy(models["eager"]).requires_grad_(False)
    with pytest.raises(CostMeasurementError, match="no trainable parameters"):
        count_flops(frozen, _inputs(8), train_step=True)


def test_count_flops_per_document_divides_by_documents(models):
    model = models["sdpa"]
    single = count_flops(model, _inputs(16, batch_size=1))
    batches = [_inputs(16, batch_size=2, seed=1), _inputs(16, batch_size=1, seed=2)]
    assert count_flops_per_document(model, batches) == pytest.approx(single, rel=1e-12)
    assert count_flops_per_document(model, batches, train_step=True) > 2.5 * single
    with pytest.raises(CostMeasurementError, match="no documents"):
        count_flops_per_document(model, [])


def test_n_parameters_counts_tied_weights_once_and_trainable_only():
    shared = torch.nn.Linear(4, 4)
    module = torch.nn.Sequential(shared, torch.nn.ReLU(), shared, torch.nn.Linear(4, 2))
    assert n_parameters(module) == 20 + 10
    module[3].requires_grad_(False)
    assert n_parameters(module, trainable_only=True) == 20
    assert n_parameters(module) == 30
