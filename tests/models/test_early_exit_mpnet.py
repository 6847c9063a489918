"""Early exit on MPNet (relative position bias) and the other supported encoder types; others refused.

Tiny random checkpoints only (``tiny_mpnet_dir``: 3 layers, hidden 32, 4 heads); the real all-mpnet-base-v2
is used by the ``slow`` test when ``FRUGALTEXT_MPNET_PATH`` names its folder (scripts/install_mpnet.sh).
"""

from __future__ import annotations

import os

import pytest
import torch
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

from frugaltext.cost.flops import count_flops
from frugaltext.errors import ConfigError
from frugaltext.models.early_exit import (
    SUPPORTED_ENCODERS,
    EarlyExitConfig,
    EarlyExitForSequenceClassification,
    document_flops,
    embedding_flops,
    encoder_layer_flops,
    simulate_exits,
    train_step_flops,
)
from tests.models.test_early_exit import TEXTS, _batch, _mid_threshold, _spread_heads

L = 3


@pytest.fixture(scope="module")
def tokenizer(tiny_mpnet_dir):
    return AutoTokenizer.from_pretrained(tiny_mpnet_dir)


def _mpnet(tiny_mpnet_dir, tokenizer, spread=True, **kwargs):
    torch.manual_seed(0)
    model = EarlyExitForSequenceClassification.from_encoder(
        str(tiny_mpnet_dir), num_labels=4, **kwargs
    ).eval()
    if spread:
        _spread_heads(model, _batch(tokenizer, TEXTS))
    return model


@pytest.fixture(scope="module")
def model(tiny_mpnet_dir, tokenizer):
    return _mpnet(tiny_mpnet_dir, tokenizer)


# ---- forward ---------------------------------------------------------------------------------------
def test_every_exit_sees_its_layer_of_the_plain_mpnet_model(model, tokenizer, tiny_mpnet_dir):
    """Layer by layer (embeddings, mask, position bias) gives MPNetModel.forward's states, at every layer."""
    batch = _batch(tokenizer, TEXTS)
    assert (batch["attention_mask"] == 0).any() and tokenizer.pad_token_id == 1
    plain = AutoModel.from_pretrained(tiny_mpnet_dir).eval()
    assert type(plain).__name__ == "MPNetModel" and type(model.encoder).__name__ == "MPNetModel"
    assert model.num_layers == L and model.encoder_layers is model.encoder.encoder.layer
    with torch.no_grad():
        hidden = plain(**batch, output_hidden_states=True).hidden_states[1:]
        expected = torch.stack([head(h[:, 0]) for head, h in zip(model.classifiers, hidden, strict=True)])
        all_logits = model(**batch, all_exits=True).all_logits
        full = model(**batch, exit_rule="none")
    assert all_logits.shape == (L, len(TEXTS), 4)
    torch.testing.assert_close(all_logits, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(full.logits, expected[-1], rtol=1e-5, atol=1e-5)
    assert full.exit_layer.tolist() == [L] * len(TEXTS)


def test_thresholds_change_the_exit_layers(model, tokenizer):
    batch = _batch(tokenizer, TEXTS)
    with torch.no_grad():
        never = model(**batch, entropy_threshold=0.0)
        always = model(**batch, entropy_threshold=1.0)
        mid = model(**batch, entropy_threshold=_mid_threshold(model, batch))
        patient = model(**batch, exit_rule="patience", patience=1)
    assert never.exit_layer.tolist() == [L] * len(TEXTS)
    assert always.exit_layer.tolist() == [1] * len(TEXTS) == patient.exit_layer.tolist()
    assert len(set(mid.exit_layer.tolist())) > 1


@pytest.mark.parametrize("rule", ["entropy", "patience"])
def test_batched_exits_equal_one_by_one(model, tokenizer, rule):
    """Dropping finished rows and padding columns recomputes MPNet's position bias and mask correctly."""
    batch = _batch(tokenizer, TEXTS)
    kwargs = (
        {"entropy_threshold": _mid_threshold(model, batch)}
        if rule == "entropy"
        else {"exit_rule": "patience", "patience": 2}
    )
    with torch.no_grad():
        together = model(**batch, **kwargs)
        single = [model(**_batch(tokenizer, [t]), **kwargs) for t in TEXTS]
        all_logits = model(**batch, all_exits=True).all_logits
    assert together.exit_layer.tolist() == [int(s.exit_layer) for s in single]
    torch.testing.assert_close(together.logits, torch.cat([s.logits for s in single]), rtol=1e-3, atol=1e-3)
    simulated, _ = simulate_exits(all_logits, model.resolve_exit_settings(**kwargs))
    assert simulated.tolist() == together.exit_layer.tolist()


def test_mpnet_gets_an_additive_mask_whatever_its_config_says(model, tokenizer):
    """MPNet adds the mask to its scores: a boolean sdpa mask would leave padding visible."""
    batch = _batch(tokenizer, TEXTS[-4:-2])
    with torch.no_grad():
        reference = model(**batch, exit_rule="none").logits
        model.encoder.config._attn_implementation = "sdpa"
        try:
            forced = model(**batch, exit_rule="none").logits
        finally:
            model.encoder.config._attn_implementation = "eager"
    torch.testing.assert_close(forced, reference, rtol=0, atol=0)


# ---- training ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["joint", "two_stage"])
def test_losses_fall_and_stages_freeze(tiny_mpnet_dir, tokenizer, mode):
    from tests.conftest import TOY_LABELS, TOY_TEXTS

    model = _mpnet(tiny_mpnet_dir, tokenizer, spread=False, training_mode=mode).train()
    if mode == "two_stage":
        model.set_training_stage(1)
    names = sorted(set(TOY_LABELS))
    batch = {**_batch(tokenizer, TOY_TEXTS), "labels": torch.tensor([names.index(y) for y in TOY_LABELS])}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(20):
        loss = model(**batch).loss
        losses.append(loss.item())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert losses[-1] < 0.75 * losses[0]  # from about log(4)
    if mode == "two_stage":
        model.set_training_stage(2)
        bias = model.encoder.encoder.relative_attention_bias.weight.detach().clone()
        assert not model.encoder.encoder.relative_attention_bias.weight.requires_grad
        loss = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).loss
        loss.backward()
        assert model.classifiers[0].out.weight.grad is not None
        assert torch.equal(model.encoder.encoder.relative_attention_bias.weight, bias)


# ---- persistence -------------------------------------------------------------------------------------
def test_save_load_round_trip(tiny_mpnet_dir, tokenizer, tmp_path):
    model = _mpnet(tiny_mpnet_dir, tokenizer, classifier_head="dense_tanh")
    batch = _batch(tokenizer, TEXTS)
    model.config.entropy_threshold = _mid_threshold(model, batch)
    model.save_pretrained(tmp_path / "ee")
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "ee").eval()
    assert type(loaded) is EarlyExitForSequenceClassification
    assert loaded.config.encoder.model_type == "mpnet" and type(loaded.encoder).__name__ == "MPNetModel"
    assert loaded.config.entropy_threshold == model.config.entropy_threshold
    with torch.no_grad():
        a, b = model(**batch), loaded(**batch)
        assert torch.equal(a.logits, b.logits) and torch.equal(a.exit_layer, b.exit_layer)
        assert torch.equal(
            model(**batch, all_exits=True).all_logits, loaded(**batch, all_exits=True).all_logits
        )


# ---- FLOPs -------------------------------------------------------------------------------------------
def test_analytic_flops_match_the_flop_counter(model, tokenizer):
    inputs = _batch(tokenizer, [TEXTS[9]])
    n = inputs["input_ids"].shape[1]
    full = count_flops(model, {**inputs, "exit_rule": "none"})
    assert full == pytest.approx(document_flops(model.config, n, L, heads_evaluated=1), rel=1e-9)
    first = count_flops(model, {**inputs, "entropy_threshold": 1.0})
    assert first == pytest.approx(document_flops(model.config, n, 1), rel=1e-9)
    with torch.no_grad():
        exit_layer = int(model(**inputs, exit_rule="patience", patience=2).exit_layer)
    counted = count_flops(model, {**inputs, "exit_rule": "patience", "patience": 2})
    assert counted == pytest.approx(document_flops(model.config, n, exit_layer), rel=1e-9)


def test_flops_grow_faster_than_length(model):
    """Attention scores cost 4·n²·H per layer: doubling the length more than doubles the FLOPs."""
    counted = {}
    for n in (16, 32, 64):
        ids = torch.randint(5, model.config.encoder.vocab_size, (1, n))
        counted[n] = count_flops(model, {"input_ids": ids, "exit_rule": "none"})
        assert counted[n] == pytest.approx(document_flops(model.config, n, L, heads_evaluated=1), rel=1e-9)
    assert counted[32] > 2 * counted[16] and counted[64] > 2 * counted[32]
    assert counted[64] / counted[32] > counted[32] / counted[16]  # the quadratic term's share grows
    encoder = model.config.encoder
    assert encoder_layer_flops(encoder, 64) > 2 * encoder_layer_flops(encoder, 32)
    assert embedding_flops(encoder, 64) == 0


@pytest.mark.parametrize("stage", [None, 1, 2])
def test_analytic_train_step_flops_match_the_flop_counter(tiny_mpnet_dir, tokenizer, stage):
    mode = "joint" if stage is None else "two_stage"
    model = _mpnet(tiny_mpnet_dir, tokenizer, spread=False, training_mode=mode).train()
    if stage is not None:
        model.set_training_stage(stage)
    inputs = {**_batch(tokenizer, [TEXTS[1]]), "labels": torch.tensor([1])}
    n = inputs["input_ids"].shape[1]
    assert count_flops(model, inputs, train_step=True) == pytest.approx(
        train_step_flops(model.config, n, stage), rel=1e-9
    )


# ---- supported and unsupported encoder types ---------------------------------------------------------
def _tiny_config(family: str):
    import transformers

    classes = {
        "bert": "BertConfig",
        "roberta": "RobertaConfig",
        "xlm-roberta": "XLMRobertaConfig",
        "camembert": "CamembertConfig",
        "electra": "ElectraConfig",
        "mpnet": "MPNetConfig",
    }
    extra = {"embedding_size": 16} if family == "electra" else {}  # ELECTRA projects 16 -> 32
    return getattr(transformers, classes[family])(
        vocab_size=60,
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
        pad_token_id=1,
        **extra,
    )


@pytest.mark.parametrize("family", SUPPORTED_ENCODERS)
def test_every_supported_encoder_type(family):
    """Full depth equals the plain encoder, a padded row equals it alone, FLOPs equal the counter."""
    torch.manual_seed(0)
    attn = None if family == "mpnet" else "eager"
    model = EarlyExitForSequenceClassification.from_encoder(
        _tiny_config(family), num_labels=3, attn_implementation=attn
    ).eval()
    assert model.config.encoder.model_type == family
    ids = torch.randint(5, 60, (3, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    ids[1, 6:] = 1
    with torch.no_grad():
        plain = model.classifiers[-1](
            model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]
        )
        out = model(input_ids=ids, attention_mask=mask, exit_rule="none")
        single = model(input_ids=ids[1:2, :6], attention_mask=mask[1:2, :6], exit_rule="none")
    torch.testing.assert_close(out.logits, plain, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(single.logits[0], out.logits[1], rtol=1e-4, atol=1e-5)
    counted = count_flops(model, {"input_ids": ids[:1], "entropy_threshold": 1.0})
    assert counted == pytest.approx(document_flops(model.config, 9, 1), rel=1e-9)
    if family == "electra":
        assert embedding_flops(model.config.encoder, 9) == 2 * 9 * 16 * 32


@pytest.mark.parametrize(
    "config_class, model_type",
    [("DebertaV2Config", "deberta-v2"), ("DistilBertConfig", "distilbert"), ("FunnelConfig", "funnel")],
)
def test_unsupported_encoder_types_are_refused(config_class, model_type, tmp_path):
    import transformers

    config = getattr(transformers, config_class)()
    message = rf"encoder type '{model_type}' is not supported; .*supports the types bert, roberta, .*mpnet"
    with pytest.raises(ConfigError, match=message):
        EarlyExitForSequenceClassification.from_encoder(config, num_labels=2)
    with pytest.raises(ConfigError, match=message):
        EarlyExitConfig(encoder=config.to_dict(), num_labels=2)
    config.save_pretrained(tmp_path)  # refused from the config alone, before any weights are read
    with pytest.raises(ConfigError, match=message):
        EarlyExitForSequenceClassification.from_encoder(str(tmp_path), num_labels=2)


@pytest.mark.parametrize("attn", ["sdpa", "flash_attention_2"])
def test_mpnet_refuses_attention_it_does_not_have(tiny_mpnet_dir, attn):
    message = rf"encoder type 'mpnet' computes attention in its own code .*attn_implementation '{attn}'"
    with pytest.raises(ConfigError, match=message):
        EarlyExitForSequenceClassification.from_encoder(
            str(tiny_mpnet_dir), num_labels=2, attn_implementation=attn
        )
    with pytest.raises(ConfigError, match=message):
        EarlyExitForSequenceClassification.from_encoder(
            _tiny_config("mpnet"), num_labels=2, attn_implementation=attn
        )
    model = EarlyExitForSequenceClassification.from_encoder(
        str(tiny_mpnet_dir), num_labels=2, attn_implementation="eager"
    )
    assert model.encoder.config._attn_implementation == "eager"


# ---- the real checkpoint -----------------------------------------------------------------------------
@pytest.mark.slow
def test_real_all_mpnet_base_v2_forward():
    """all-mpnet-base-v2 (12 layers, 768 wide): loads into early exit and classifies 2 documents.

    Set ``FRUGALTEXT_MPNET_PATH`` to the folder scripts/install_mpnet.sh made. No training (random exits).
    """
    path = os.environ.get("FRUGALTEXT_MPNET_PATH")
    if not path:
        pytest.skip("FRUGALTEXT_MPNET_PATH is not set (install with scripts/install_mpnet.sh DEST)")
    tok = AutoTokenizer.from_pretrained(path)
    torch.manual_seed(0)
    model = EarlyExitForSequenceClassification.from_encoder(path, num_labels=4).eval()
    assert model.num_layers == 12 and model.config.encoder.hidden_size == 768
    # 109.5M with the pooler (768² + 768 = 590,592 parameters), which early exit does not build
    assert sum(p.numel() for p in model.encoder.parameters()) == 108_895_872
    texts = [
        "Oil prices rose as OPEC cut output.",
        "The bank raised its interest rate by half a point today.",
    ]
    batch = _batch(tok, texts)
    with torch.no_grad():
        plain = model.classifiers[-1](model.encoder(**batch).last_hidden_state[:, 0])
        full = model(**batch, exit_rule="none")
        first = model(**batch, entropy_threshold=1.0)
        alone = model(**_batch(tok, texts[:1]), exit_rule="none")
    torch.testing.assert_close(full.logits, plain, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(alone.logits[0], full.logits[0], rtol=1e-4, atol=1e-4)
    assert full.exit_layer.tolist() == [12, 12] and first.exit_layer.tolist() == [1, 1]
    assert full.logits.shape == (2, 4) and torch.isfinite(full.logits).all()
