"""XML-CNN: dynamic max pooling, padding independence, losses, FLOPs, saving."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification

from frugaltext.cost.flops import count_flops
from frugaltext.errors import ConfigError
from frugaltext.models.xml_cnn import XMLCNNConfig, XMLCNNForSequenceClassification, dynamic_max_pool
from frugaltext.training.distillation import distillation_loss

K = 3


def make(multi: bool = False, **kwargs) -> XMLCNNForSequenceClassification:
    torch.manual_seed(0)
    params = dict(vocab_size=30, embedding_dim=8, n_filters=4, pool_chunks=3, bottleneck_size=6, num_labels=K,
                  problem_type="multi_label_classification" if multi else "single_label_classification")
    params.update(kwargs)
    return XMLCNNForSequenceClassification(XMLCNNConfig(**params))


def batch():
    """Documents of lengths 11, 3 and 1 (shorter than every filter but one), right-padded with 0."""
    ids = torch.tensor([[2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [3, 4, 5] + [0] * 8, [5] + [0] * 10])
    return ids, (ids != 0).long()


@pytest.mark.parametrize("n_windows", [1, 2, 3, 7, 12])
def test_dynamic_pooling_is_adaptive_max_pooling_of_each_document_alone(n_windows):
    torch.manual_seed(0)
    features = torch.randn(2, 5, 12)
    pooled = dynamic_max_pool(features, torch.tensor([12, n_windows]), chunks=4)
    assert pooled.shape == (2, 5, 4)
    torch.testing.assert_close(pooled[0], F.adaptive_max_pool1d(features[:1], 4)[0])
    torch.testing.assert_close(pooled[1], F.adaptive_max_pool1d(features[1:, :, :n_windows], 4)[0])
    if n_windows == 1:  # a single window fills every chunk
        assert torch.equal(pooled[1], features[1, :, :1].expand(5, 4))


@pytest.mark.parametrize("multi", [False, True])
def test_output_shapes_and_loss(multi):
    model = make(multi)
    ids, mask = batch()
    assert model.pooled_features(ids, mask).shape == (3, 3 * 4 * 3)  # widths x maps x chunks
    labels = torch.tensor([[1.0, 0, 1], [0, 1, 0], [0, 0, 0]]) if multi else torch.tensor([0, 2, 1])
    model.eval()
    out = model(ids, mask, labels=labels)
    assert out.logits.shape == (3, K)
    expected = (F.binary_cross_entropy_with_logits(out.logits, labels) if multi
                else F.cross_entropy(out.logits, labels))
    torch.testing.assert_close(out.loss, expected)
    teacher = torch.randn(3, K)
    out = model(ids, mask, labels=labels, teacher_logits=teacher)
    torch.testing.assert_close(out.loss, distillation_loss("mse", out.logits, teacher, labels, alpha=0.5,
                                                           multi_label=multi))


def test_padding_never_changes_a_documents_logits():
    model = make().eval()
    ids, mask = batch()
    together = model(ids, mask).logits
    for row, n in enumerate(mask.sum(1).tolist()):
        alone = model(ids[row:row + 1, :n], mask[row:row + 1, :n]).logits
        torch.testing.assert_close(alone[0], together[row], rtol=1e-5, atol=1e-6)
    noisy = ids.masked_fill(mask == 0, 17)
    torch.testing.assert_close(model(noisy, mask).logits, together, rtol=1e-5, atol=1e-6)


def test_flops_per_document_match_count_flops():
    model = make().eval()
    ids, mask = batch()
    for row, n in enumerate(mask.sum(1).tolist()):
        inputs = {"input_ids": ids[row:row + 1, :n], "attention_mask": mask[row:row + 1, :n]}
        assert count_flops(model, inputs) == model.flops_per_document(n)


def test_save_and_load(tmp_path):
    model = make(True, id2label={0: "a", 1: "b", 2: "c"}).eval()
    ids, mask = batch()
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, XMLCNNForSequenceClassification) and loaded.config.multi_label
    torch.testing.assert_close(loaded(ids, mask).logits, model(ids, mask).logits)


def test_hedwig_defaults_and_validation():
    config = XMLCNNConfig()
    assert (config.filter_sizes, config.n_filters, config.pool_chunks, config.bottleneck_size) == \
        ([2, 4, 8], 100, 8, 512)
    with pytest.raises(ConfigError, match="pool_chunks"):
        XMLCNNConfig(pool_chunks=0)
    with pytest.raises(ConfigError, match="filter_sizes"):
        XMLCNNConfig(filter_sizes=[])
