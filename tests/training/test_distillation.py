"""Distillation losses against hand-computed values, the DistillationTrainer, and the teacher-logit cache."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from frugaltext.errors import ConfigError
from frugaltext.methods.base import Method
from frugaltext.training.distillation import (
    DistillationTrainer,
    default_lambda,
    distillation_loss,
    kl_distillation_loss,
    mse_distillation_loss,
)
from frugaltext.training.teacher_cache import compute_teacher_logits, teacher_fingerprint, teacher_logits

STUDENT = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
TEACHER = torch.tensor([[1.0, 1.0], [0.0, 3.0]])
LABELS = torch.tensor([0, 1])


def log_softmax(row):
    m = max(row)
    z = math.log(sum(math.exp(v - m) for v in row)) + m
    return [v - z for v in row]


def ce(rows, labels):
    return sum(-log_softmax(r)[y] for r, y in zip(rows, labels, strict=True)) / len(rows)


S, T, Y = STUDENT.tolist(), TEACHER.tolist(), LABELS.tolist()


# ---- losses -----------------------------------------------------------------------------------------
def test_mse_loss_matches_hand_computation():
    mse = ((2 - 1) ** 2 + (0 - 1) ** 2 + 0 ** 2 + (1 - 3) ** 2) / 4  # mean over rows and labels = 1.5
    for alpha in (0.0, 0.3, 0.5):
        expected = alpha * ce(S, Y) + (1 - alpha) * mse
        got = mse_distillation_loss(STUDENT, TEACHER, LABELS, alpha)
        assert got.item() == pytest.approx(expected, rel=1e-6)


def test_kl_loss_matches_hand_computation_with_temperature():
    temperature, lam = 2.0, 3.0
    kl = 0.0
    for s_row, t_row in zip(S, T, strict=True):
        log_p = log_softmax([v / temperature for v in t_row])
        log_q = log_softmax([v / temperature for v in s_row])
        kl += sum(math.exp(a) * (a - b) for a, b in zip(log_p, log_q, strict=True))
    expected = ce(S, Y) + lam * temperature ** 2 * kl / 2
    got = kl_distillation_loss(STUDENT, TEACHER, LABELS, lam=lam, temperature=temperature)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # lambda defaults to DocBERT's 4 (single-label) and 1 (multi-label)
    assert (default_lambda(False), default_lambda(True)) == (4.0, 1.0)
    got_default = kl_distillation_loss(STUDENT, TEACHER, LABELS, temperature=temperature)
    assert got_default.item() == pytest.approx(ce(S, Y) + 4 * temperature ** 2 * kl / 2, rel=1e-6)


def test_multi_label_kl_is_a_mean_of_bernoulli_kls_plus_bce():
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]])

    def sig(v):
        return 1 / (1 + math.exp(-v))

    bce = kl = 0.0
    for s_row, t_row, y_row in zip(S, T, labels.tolist(), strict=True):
        for s, t, y in zip(s_row, t_row, y_row, strict=True):
            q, p = sig(s), sig(t)
            bce += -(y * math.log(q) + (1 - y) * math.log(1 - q))
            kl += p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))
    got = kl_distillation_loss(STUDENT, TEACHER, labels, temperature=1.0, multi_label=True)  # lambda 1
    assert got.item() == pytest.approx(bce / 4 + kl / 4, rel=1e-6)


def test_alpha_one_ignores_the_teacher():
    student = STUDENT.clone().requires_grad_(True)
    loss = mse_distillation_loss(student, TEACHER, LABELS, alpha=1.0)
    assert loss.item() == pytest.approx(ce(S, Y), rel=1e-6)
    other = mse_distillation_loss(student, TEACHER * 100 - 7, LABELS, alpha=1.0)
    assert other.item() == loss.item()
    (grad,) = torch.autograd.grad(loss, student)
    (ce_grad,) = torch.autograd.grad(torch.nn.functional.cross_entropy(student, LABELS), student)
    torch.testing.assert_close(grad, ce_grad)
    teacher = TEACHER.clone().requires_grad_(True)  # the teacher is detached in every loss
    for value in (mse_distillation_loss(student, teacher, LABELS, 0.5),
                  kl_distillation_loss(student, teacher, LABELS)):
        assert torch.autograd.grad(value, teacher, allow_unused=True)[0] is None


def test_unlabelled_rows_get_only_the_soft_term():
    labels = torch.tensor([0, -100])
    soft = ((2 - 1) ** 2 + 1 + 0 + 4) / 4
    got = mse_distillation_loss(STUDENT, TEACHER, labels, alpha=0.5)
    assert got.item() == pytest.approx(0.5 * ce(S[:1], [0]) + 0.5 * soft, rel=1e-6)
    none_labelled = mse_distillation_loss(STUDENT, TEACHER, torch.tensor([-100, -100]), alpha=0.5)
    assert none_labelled.item() == pytest.approx(0.5 * soft, rel=1e-6)
    multi = torch.tensor([[1.0, 0.0], [-100.0, -100.0]])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(STUDENT[:1], multi[:1])
    got = mse_distillation_loss(STUDENT, TEACHER, multi, alpha=0.5, multi_label=True)
    assert got.item() == pytest.approx(0.5 * bce.item() + 0.5 * soft, rel=1e-6)
    # no teacher: the plain hard-label loss (the no-teacher control)
    assert distillation_loss("kl", STUDENT, None, LABELS).item() == pytest.approx(ce(S, Y), rel=1e-6)


def test_loss_errors_are_explicit():
    with pytest.raises(ConfigError, match=r"alpha must be in \[0, 1\], got 1.5"):
        mse_distillation_loss(STUDENT, TEACHER, LABELS, 1.5)
    with pytest.raises(ConfigError, match=r"teacher_logits \(2, 3\) must both have shape"):
        kl_distillation_loss(STUDENT, torch.zeros(2, 3), LABELS)
    with pytest.raises(ConfigError, match="temperature must be > 0, got 0"):
        kl_distillation_loss(STUDENT, TEACHER, LABELS, temperature=0)
    with pytest.raises(ConfigError, match="distillation loss must be one of"):
        distillation_loss("l1", STUDENT, TEACHER, LABELS)


# ---- DistillationTrainer ----------------------------------------------------------------------------
class LinearClassifier(torch.nn.Module):
    """A model that knows nothing about teachers: logits from the mean of token embeddings."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(10, 4)
        self.out = torch.nn.Linear(4, 2)

    def forward(self, input_ids, attention_mask=None):
        return {"logits": self.out(self.embed(input_ids).mean(1))}


def test_distillation_trainer_pops_teacher_logits_and_mixes_the_losses(tmp_path):
    from transformers import TrainingArguments

    model = LinearClassifier()
    args = TrainingArguments(output_dir=str(tmp_path), remove_unused_columns=False, report_to="none",
                             use_cpu=True)
    trainer = DistillationTrainer(model=model, args=args, distillation="kl", lam=2.0, temperature=3.0)
    inputs = {"input_ids": torch.tensor([[1, 2], [3, 4]]),
              "attention_mask": torch.ones(2, 2, dtype=torch.long), "labels": LABELS,
              "teacher_logits": TEACHER}
    loss, outputs = trainer.compute_loss(model, dict(inputs), return_outputs=True)
    expected = kl_distillation_loss(outputs["logits"], TEACHER, LABELS, lam=2.0, temperature=3.0)
    torch.testing.assert_close(loss, expected)
    without_teacher = trainer.compute_loss(model, {k: v for k, v in inputs.items() if k != "teacher_logits"})
    torch.testing.assert_close(without_teacher, torch.nn.functional.cross_entropy(outputs["logits"], LABELS))
    with pytest.raises(ConfigError, match="needs TrainingArguments\\(remove_unused_columns=False\\)"):
        DistillationTrainer(model=model, args=TrainingArguments(output_dir=str(tmp_path), report_to="none",
                                                                 use_cpu=True))


def test_distillation_trainer_trains_and_evaluates_a_model_without_labels_argument(tmp_path):
    from transformers import TrainingArguments

    from frugaltext.data.collate import EncodedDataset, PadCollator

    teacher = np.array([2.0, -2.0], dtype=np.float32)
    train = [{"input_ids": [i % 10, (3 * i) % 10], "labels": i % 2, "teacher_logits": teacher}
             for i in range(16)]
    valid = [{"input_ids": f["input_ids"], "labels": f["labels"]} for f in train[:8]]
    args = TrainingArguments(output_dir=str(tmp_path), remove_unused_columns=False, report_to="none",
                             use_cpu=True, num_train_epochs=3, per_device_train_batch_size=4,
                             learning_rate=0.1, disable_tqdm=True, save_strategy="no")
    model = LinearClassifier()
    trainer = DistillationTrainer(model=model, args=args, train_dataset=EncodedDataset(train),
                                  eval_dataset=EncodedDataset(valid), data_collator=PadCollator(0),
                                  distillation="mse", alpha=0.0)  # soft term only: imitate the teacher
    before = model(torch.tensor([[1, 3]]))["logits"].detach()
    trainer.train()
    after = model(torch.tensor([[1, 3]]))["logits"].detach()
    target = torch.as_tensor(teacher)
    assert (after - target).pow(2).sum() < (before - target).pow(2).sum()  # moved towards the teacher
    batch = PadCollator(0)(valid)
    expected = torch.nn.functional.cross_entropy(model(batch["input_ids"])["logits"], batch["labels"])
    assert trainer.evaluate()["eval_loss"] == pytest.approx(expected.item(), rel=1e-5)  # hard labels in eval


# ---- teacher cache -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CountingSettings:
    """Settings of the counting fake teacher."""

    scale: float = 1.0


class CountingTeacher(Method):
    """A fake teacher: logits = scale x (number of characters, number of spaces); counts its calls. Not
    registered: a module-level registration would leak into tests collected later (the method contract
    tests parametrize over the registry)."""

    name = "test-counting-teacher"
    Settings = CountingSettings
    calls = 0

    def fit(self, data, meter, seed=0, output_dir=None):
        raise NotImplementedError

    def predict_logits(self, texts, batch_size=32):
        type(self).calls += 1
        return np.array([[len(t), t.count(" ")] for t in texts], dtype=np.float32) * self.settings.scale

    def predict_proba(self, texts, batch_size=32):
        z = self.predict_logits(texts)
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    def n_params(self):
        return 1

    def flops_per_document(self, texts):
        return {"flops": 0.0, "flops_train_step": None}

    def _save(self, directory: Path) -> None:
        (directory / "scale.json").write_text(json.dumps(self.settings.scale))

    def _load(self, directory: Path) -> None:
        pass


def make_teacher(scale=1.0):
    teacher = CountingTeacher(scale=scale)
    teacher.label_names = ("long", "spaced")
    return teacher


def test_cache_is_reused_and_invalidated_by_texts_and_teacher(tmp_path):
    texts = ["a b c", "dd", "e f"]
    CountingTeacher.calls = 0
    first = compute_teacher_logits(make_teacher(), texts, tmp_path)
    assert not first.cached and CountingTeacher.calls == 1
    np.testing.assert_array_equal(first.logits, [[5, 2], [2, 0], [3, 1]])
    assert first.path.suffix == ".safetensors" and first.path.parent == tmp_path
    again = compute_teacher_logits(make_teacher(), texts, tmp_path)
    assert again.cached and CountingTeacher.calls == 1  # the teacher was not called
    np.testing.assert_array_equal(again.logits, first.logits)
    assert again.label_names == ("long", "spaced")
    assert again.compute_duration_s == pytest.approx(first.duration_s)  # what the teacher cost back then
    changed_text = texts[:2] + ["e  f"]
    assert not compute_teacher_logits(make_teacher(), changed_text, tmp_path).cached
    assert not compute_teacher_logits(make_teacher(), texts[::-1], tmp_path).cached  # order matters
    assert not compute_teacher_logits(make_teacher(scale=2.0), texts, tmp_path).cached  # other weights
    assert not compute_teacher_logits(make_teacher(), texts, tmp_path, max_length=64).cached
    assert CountingTeacher.calls == 5
    np.testing.assert_array_equal(teacher_logits(make_teacher(scale=2.0), texts, tmp_path), 2 * first.logits)
    assert CountingTeacher.calls == 5
    teacher_logits(make_teacher(), texts, None)  # no cache directory: always computed
    teacher_logits(make_teacher(), texts, None)
    assert CountingTeacher.calls == 7


def test_teacher_directory_is_loaded_only_on_a_miss(tmp_path, monkeypatch):
    from frugaltext.methods import base, load_model
    from frugaltext.training import teacher_cache

    base._import_builtin_methods()
    monkeypatch.setitem(base._REGISTRY, CountingTeacher.name, CountingTeacher)  # for this test only

    saved = make_teacher(scale=3.0).save(tmp_path / "teacher")
    texts = ["x y", "zzz"]
    with pytest.raises(ConfigError, match="pass loader=frugaltext.methods.load_model"):
        compute_teacher_logits(saved, texts, tmp_path / "cache")  # this layer does not import the methods
    first = compute_teacher_logits(saved, texts, tmp_path / "cache", loader=load_model)
    np.testing.assert_array_equal(first.logits, [[9, 3], [9, 0]])
    assert first.label_names == ("long", "spaced")
    assert teacher_cache.teacher_label_info(saved) == (("long", "spaced"), False)  # read without loading

    def refuse(*args, **kwargs):
        raise AssertionError("the teacher must not be loaded on a cache hit")

    monkeypatch.setattr(teacher_cache, "load_teacher", refuse)
    assert compute_teacher_logits(saved, texts, tmp_path / "cache").cached
    fingerprint = teacher_fingerprint(saved)
    (saved / "scale.json").write_text("4.0")  # any change of a file changes the key
    assert teacher_fingerprint(saved) != fingerprint
    with pytest.raises(AssertionError, match="must not be loaded"):
        compute_teacher_logits(saved, texts, tmp_path / "cache")


def test_hf_checkpoint_teacher_gives_the_models_logits(tmp_path, tiny_bert_dir):
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    config = BertConfig.from_pretrained(tiny_bert_dir, num_labels=2, id2label={0: "x", 1: "y"},
                                        label2id={"x": 0, "y": 1})
    torch.manual_seed(0)
    model = BertForSequenceClassification(config).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    model.save_pretrained(tmp_path / "hf")
    tokenizer.save_pretrained(tmp_path / "hf")
    texts = ["oil crude prices", "bank rate"]
    got = compute_teacher_logits(tmp_path / "hf", texts, tmp_path / "cache", max_length=16)
    with torch.no_grad():
        expected = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits.numpy()
    np.testing.assert_allclose(got.logits, expected, rtol=1e-5, atol=1e-6)
    assert got.label_names == ("x", "y")


def test_teacher_errors(tmp_path):
    with pytest.raises(ConfigError, match="is not a directory"):
        compute_teacher_logits(str(tmp_path / "missing"), ["a"], None)
    with pytest.raises(ConfigError, match="no texts given"):
        compute_teacher_logits(make_teacher(), [], None)


def test_default_predict_logits_inverts_the_probabilities():
    teacher = make_teacher()
    texts = ["a b", "ccc d"]
    logits = Method.predict_logits(teacher, texts)  # the base-class default, from predict_proba
    z = teacher.predict_logits(texts)
    np.testing.assert_allclose(logits - logits[:, :1], z - z[:, :1], rtol=1e-5, atol=1e-5)  # up to a constant
    teacher.multi_label = True
    proba = np.array([[0.2, 0.9]])
    teacher.predict_proba = lambda texts, batch_size=32: proba
    np.testing.assert_allclose(Method.predict_logits(teacher, ["x"]), np.log(proba / (1 - proba)), rtol=1e-5)
