"""``frugaltext.models.encoders``: keeping some layers of an encoder (DistilBERT-style initialisation)."""

import pytest
import torch
from transformers import AutoModel, AutoModelForSequenceClassification

from frugaltext.errors import ConfigError
from frugaltext.models.encoders import encoder_layer_list, keep_encoder_layers, parse_encoder_layers


@pytest.mark.parametrize("value, expected", [(None, None), ("", None), ("0,2", (0, 2)), (" 1 ", (1,)),
                                             (3, (3,)), ([0, 3], (0, 3))])
def test_parse_encoder_layers(value, expected):
    assert parse_encoder_layers(value) == expected


@pytest.mark.parametrize("bad", ["a,b", "2,1", "1,1", "-1", "0,,2"])
def test_parse_encoder_layers_rejects_bad_lists(bad):
    with pytest.raises(ConfigError, match="encoder_layers"):
        parse_encoder_layers(bad)


def test_kept_layers_are_the_chosen_ones_and_round_trip(tiny_bert4_dir, tmp_path):
    full = AutoModel.from_pretrained(tiny_bert4_dir)
    small = keep_encoder_layers(AutoModel.from_pretrained(tiny_bert4_dir), (0, 2))
    assert len(encoder_layer_list(small)) == 2 and small.config.num_hidden_layers == 2
    # layer 1 of the small model is layer 2 of the full one
    for a, b in zip(encoder_layer_list(small)[1].parameters(), encoder_layer_list(full)[2].parameters(),
                    strict=True):
        assert torch.equal(a, b)
    ids = torch.tensor([[2, 5, 6, 7, 3]])
    small.eval()
    expected = small(input_ids=ids).last_hidden_state
    small.save_pretrained(tmp_path / "small")
    loaded = AutoModel.from_pretrained(tmp_path / "small").eval()
    assert loaded.config.num_hidden_layers == 2
    torch.testing.assert_close(loaded(input_ids=ids).last_hidden_state, expected)
    # fewer layers: a different function from the full encoder
    assert not torch.allclose(full.eval()(input_ids=ids).last_hidden_state, expected)


def test_with_a_task_head_and_out_of_range(tiny_bert4_dir):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert4_dir, num_labels=3)
    keep_encoder_layers(model, (1, 3))
    assert len(model.bert.encoder.layer) == 2 and model.config.num_hidden_layers == 2
    assert model(input_ids=torch.tensor([[2, 5, 3]])).logits.shape == (1, 3)
    assert keep_encoder_layers(model, None) is model
    with pytest.raises(ConfigError, match="has 2 layers"):
        keep_encoder_layers(model, (0, 2))
