"""Shared training around the transformers ``Trainer``: one trainer for every torch method.

Why the ``Trainer``: launched with ``torchrun --nproc_per_node K -m frugaltext train ...`` (or
``accelerate launch``) it runs distributed data parallel with no change to our code (transformers docs,
``ddp.md``). Our models compute their own (joint) loss inside ``forward``, so no subclass is needed
(STYLE §2); distillation passes ``teacher_logits`` as an ordinary batch key.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import has_length

from frugaltext.data.collate import PadCollator, length_sorted_batches
from frugaltext.fileio import atomic_write_json
from frugaltext.training.length_grouping import ShuffledLengthGroupedSampler

if TYPE_CHECKING:
    from frugaltext.cost.meter import CostMeter

logger = logging.getLogger("frugaltext.training")

#: ``FrugalTrainer(length_grouping=...)``: batches of similar length in random order, or transformers' sweep
LENGTH_GROUPINGS = ("shuffled", "megabatch")


def world_size() -> int:
    """Number of processes of a torchrun/accelerate launch (1 when run alone)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """True on global rank 0 (or when not distributed): only it writes files."""
    return int(os.environ.get("RANK", "0")) == 0


def make_training_args(
    output_dir: str | Path,
    *,
    seed: int,
    epochs: float,
    batch_size: int,
    learning_rate: float,
    eval_batch_size: int = 64,
    weight_decay: float = 0.01,
    warmup_ratio: float = 0.1,
    evaluate_each_epoch: bool = True,
    select_best: bool = True,
    metric_for_best_model: str = "macro_f1",
    gradient_accumulation_steps: int = 1,
    group_by_length: bool = False,
    bf16: bool = False,
    logging_steps: float = 0.05,
    show_progress: bool = True,
    **extra: Any,
) -> TrainingArguments:
    """Build ``TrainingArguments`` with frugaltext's defaults.

    Parameters
    ----------
    output_dir : path
        Where checkpoints go (one per epoch when evaluating, plus every ``checkpoint_steps`` optimisation
        steps through :class:`StepCheckpointCallback`; the best and the newest kept, ``save_total_limit=2``),
        so an interrupted run resumes (:func:`train_with_trainer`).
    seed : int
        Seed of the model initialisation, data order and dropout.
    epochs, batch_size, learning_rate : training schedule; ``batch_size`` is per process.
    warmup_ratio : float in [0, 1)
        Share of steps with linear warm-up (BERT's recipe), then linear decay.
    evaluate_each_epoch, select_best : bool
        Evaluate on the validation split after each epoch and, if ``select_best``, restore the epoch with the
        best ``metric_for_best_model`` at the end (early stopping by model selection, as in DocBERT).
    group_by_length : bool
        Length-grouped training batches: ``train_sampling_strategy="group_by_length"`` (the transformers 5
        name; ``group_by_length=True`` is gone), i.e. ``LengthGroupedSampler``: a random permutation (seeded
        by ``seed``) cut into megabatches of ``min(50, n // (4 * batch_size))`` batches, each sorted by
        length; :class:`FrugalTrainer` then shuffles the order of the batches (its ``length_grouping``).
        Our datasets are lists of feature dicts, so the sampler reads the lengths from each ``input_ids``
        list (no re-tokenisation, no ``length`` column needed). Evaluation batches are
        grouped too (the Trainer does it; predictions and labels stay paired, so metrics are unchanged).
    bf16 : bool
        Mixed precision: fp32 master weights, forward and backward under ``torch.autocast`` in bf16 (on CPU
        too; see :mod:`frugaltext.fastpath`).
    **extra
        Any other ``TrainingArguments`` field.

    Notes
    -----
    ``average_tokens_across_devices=False``: in transformers 5.23 the default multiplies a sequence-
    classification loss by the number of processes (ENV.md). On CPU we use the gloo backend.
    """
    evaluate = evaluate_each_epoch
    kwargs: dict[str, Any] = dict(
        output_dir=str(output_dir),
        seed=seed,
        data_seed=seed,
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=eval_batch_size,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        warmup_steps=warmup_ratio,
        gradient_accumulation_steps=gradient_accumulation_steps,
        eval_strategy="epoch" if evaluate else "no",
        save_strategy="epoch" if evaluate else "no",
        save_total_limit=2,
        save_only_model=False,
        load_best_model_at_end=bool(evaluate and select_best),
        metric_for_best_model=metric_for_best_model if evaluate else None,
        greater_is_better=True,
        logging_strategy="steps",
        logging_steps=logging_steps,
        report_to="none",
        disable_tqdm=not show_progress,
        remove_unused_columns=False,
        average_tokens_across_devices=False,
        dataloader_num_workers=0,
        train_sampling_strategy="group_by_length" if group_by_length else "random",
    )
    if bf16:
        kwargs["bf16"] = True
    if not torch.cuda.is_available():
        kwargs["use_cpu"] = True
        if world_size() > 1:
            kwargs["ddp_backend"] = "gloo"
    kwargs.update(extra)
    return TrainingArguments(**kwargs)


def optimizer_steps_per_epoch(n_examples: int, batch_size: int, gradient_accumulation_steps: int = 1,
                              n_processes: int = 1) -> int:
    """Optimizer steps in one epoch of the ``Trainer`` (transformers 5.23,
    ``Trainer.set_initial_training_values``).

    Parameters
    ----------
    n_examples : int >= 0
        Training examples (documents; partitions for TopicBERT-N/p).
    batch_size : int >= 1
        Examples per forward/backward pass and process (``per_device_train_batch_size``).
    gradient_accumulation_steps : int >= 1
        Batches whose gradients are summed into one optimizer step.
    n_processes : int >= 1
        Data-parallel processes: each gets ``ceil(batches / n_processes)`` of the ``ceil(n / batch_size)``
        batches (accelerate's even batches; the last batch is kept, ``dataloader_drop_last=False``).

    Returns
    -------
    int
        ``max(1, ceil(batches_per_process / gradient_accumulation_steps))``.

    Raises
    ------
    ValueError
        If a count is negative or a size is below 1.
    """
    if n_examples < 0 or min(batch_size, gradient_accumulation_steps, n_processes) < 1:
        raise ValueError(f"optimizer_steps_per_epoch: need n_examples >= 0 and batch_size, "
                         f"gradient_accumulation_steps, n_processes >= 1; got {n_examples}, {batch_size}, "
                         f"{gradient_accumulation_steps}, {n_processes}")
    batches = math.ceil(math.ceil(n_examples / batch_size) / n_processes)
    return max(1, math.ceil(batches / gradient_accumulation_steps))


class StepCheckpointCallback(TrainerCallback):
    """Save a full Trainer checkpoint (model, optimizer, scheduler, RNG states, trainer state) every
    ``every_steps`` optimisation steps, whatever the ``save_strategy``.

    The Trainer's own ``save_strategy="steps"`` cannot be combined with per-epoch evaluation and
    ``load_best_model_at_end`` (the two strategies must match), so this callback asks for the extra saves
    (``control.should_save``) and leaves evaluation and best-epoch selection as they are. The Trainer's
    rotation (``save_total_limit``) keeps the best checkpoint besides the newest.

    Parameters
    ----------
    every_steps : int
        Save when ``state.global_step`` is a multiple of it (> 0).
    """

    def __init__(self, every_steps: int) -> None:
        if every_steps <= 0:
            raise ValueError(f"every_steps must be > 0, got {every_steps}")
        self.every_steps = every_steps

    def on_step_end(self, args, state, control, **kwargs):  # noqa: D102
        if state.global_step % self.every_steps == 0 and state.global_step < state.max_steps:
            control.should_save = True
        return control


def find_resume_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete ``checkpoint-<step>`` folder in ``output_dir``, or None.

    A checkpoint is complete when its ``trainer_state.json`` exists: the Trainer writes that file after the
    weights, optimizer, scheduler and RNG states, so a checkpoint cut short by a kill is passed over (with a
    log line) in favour of the previous one.
    """
    directory = Path(output_dir)
    if not directory.is_dir():
        return None
    found = []
    for path in directory.glob("checkpoint-*"):
        step = path.name.rsplit("-", 1)[-1]
        if path.is_dir() and step.isdigit():
            found.append((int(step), path))
    for _, path in sorted(found, reverse=True):
        if (path / "trainer_state.json").is_file():
            return path
        logger.info("%s is incomplete (no trainer_state.json: interrupted while saving); not resumed from",
                    path)
    return None


def checkpoint_step(checkpoint: str | Path | None) -> int:
    """The optimisation step of a ``checkpoint-<step>`` folder (0 for None)."""
    return int(Path(checkpoint).name.rsplit("-", 1)[-1]) if checkpoint else 0


#: File that :class:`EpochTimerCallback` writes into every checkpoint folder: the training time before it.
TIMING_FILE = "frugaltext_timing.json"


class EpochTimerCallback(TrainerCallback):
    """Record each epoch's wall time (training steps only, evaluation excluded) into a :class:`CostMeter`,
    and keep the time trained so far in every checkpoint, so that a resumed run reports the whole training.

    At every save the callback writes :data:`TIMING_FILE` (JSON) into the new ``checkpoint-<step>`` folder
    (main process only): ``epoch_durations_s`` (the epochs finished so far, seconds), ``epoch_elapsed_s``
    (time spent in the unfinished epoch, 0 at an epoch-end save) and ``train_elapsed_s`` (wall time since the
    Trainer started training, evaluation and saving included, earlier sessions included). :meth:`restore`
    reads it back when training resumes from that checkpoint: the finished epochs go to the meter as they
    were measured, the unfinished epoch's time is added to the time it takes after the resume, and
    ``train_elapsed_s`` goes to :meth:`CostMeter.record_restored_training`. The work done after the last
    checkpoint and lost in the interruption is redone after the resume and so counted once; preparation
    before the Trainer starts (tokenisation, NVDM pretraining) is counted for the process that finished.
    """

    def __init__(self, meter: CostMeter | None) -> None:
        self.meter = meter
        self._start: float | None = None
        self._train_start: float | None = None
        self._epochs: list[float] = []
        self._carry_s = 0.0
        self._restored_train_s = 0.0

    def restore(self, checkpoint: str | Path) -> float | None:
        """Take over the timing saved in ``checkpoint`` (see the class docstring) before resuming from it.

        Returns the restored ``train_elapsed_s`` in seconds, or None when the checkpoint has no readable
        :data:`TIMING_FILE` (saved by an older version, or cut short between the Trainer's files and this
        one): then the epoch times and the training time cover only the part after the resume (logged).
        """
        path = Path(checkpoint) / TIMING_FILE
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            epochs = [float(x) for x in saved["epoch_durations_s"]]
            carry, elapsed = float(saved["epoch_elapsed_s"]), float(saved["train_elapsed_s"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            logger.warning("%s: no training time to restore (%s: %s); epoch times and the training time "
                           "will cover only the part after the resume", path, type(err).__name__, err)
            return None
        if not all(math.isfinite(x) and x >= 0 for x in (*epochs, carry, elapsed)):
            logger.warning("%s holds a negative or non-finite time; not restored", path)
            return None
        self._epochs, self._carry_s, self._restored_train_s = epochs, carry, elapsed
        if self.meter is not None:
            for duration in epochs:
                self.meter.record_epoch(duration)
            self.meter.record_restored_training(elapsed)
        logger.info("restored the training time before %s: %.1f s (%d finished epochs, %.1f s into the next)",
                    Path(checkpoint).name, elapsed, len(epochs), carry)
        return elapsed

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: D102
        self._train_start = time.perf_counter()

    def on_epoch_begin(self, args, state, control, **kwargs):  # noqa: D102
        self._start = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs):  # noqa: D102
        if self._start is not None:
            duration = time.perf_counter() - self._start + self._carry_s
            self._epochs.append(duration)
            if self.meter is not None:
                self.meter.record_epoch(duration)
        self._start, self._carry_s = None, 0.0

    def on_save(self, args, state, control, **kwargs):  # noqa: D102
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if not state.is_world_process_zero or not folder.is_dir():
            return
        now = time.perf_counter()
        elapsed = self._restored_train_s + (now - self._train_start if self._train_start is not None else 0.0)
        epoch = (now - self._start + self._carry_s) if self._start is not None else 0.0
        atomic_write_json(folder / TIMING_FILE, {"epoch_durations_s": self._epochs, "epoch_elapsed_s": epoch,
                                                 "train_elapsed_s": elapsed})


class FrugalTrainer(Trainer):
    """The transformers ``Trainer`` with gradient clipping that also takes sparse gradients, and
    length-grouped batches in random order.

    ``length_grouping`` ("shuffled", the default, or "megabatch") applies when the arguments ask for
    ``train_sampling_strategy="group_by_length"``: "shuffled" replaces transformers' ``LengthGroupedSampler``
    (megabatches swept from the longest to the shortest batch) by
    :class:`~frugaltext.training.length_grouping.ShuffledLengthGroupedSampler` (the same batches, in random
    order; see that module for why), "megabatch" keeps transformers' sampler. Overrides
    ``Trainer._get_train_sampler``.

    transformers 5.23 computes the gradient norm at every optimisation step (to clip at ``max_grad_norm``,
    or only to log it) with ``torch.nn.utils.clip_grad_norm_``, which fails on the sparse gradient of an
    ``embedding_bag(sparse=True)`` table (the static models). When a parameter's gradient is sparse this
    Trainer clips (and measures) with :func:`frugaltext.training.lazy_adam.clip_grad_norm` instead, the same
    rule; with dense gradients only it is the plain ``Trainer``. Overrides ``Trainer._clip_grad_norm`` and
    ``Trainer._get_grad_norm`` (private in 5.23; ``tests/training/test_lazy_adam.py`` trains through them).
    """

    def __init__(self, *args: Any, length_grouping: str = "shuffled", **kwargs: Any) -> None:
        if length_grouping not in LENGTH_GROUPINGS:
            raise ValueError(f"length_grouping must be one of {LENGTH_GROUPINGS}, got {length_grouping!r}")
        self.length_grouping = length_grouping
        super().__init__(*args, **kwargs)

    def _get_train_sampler(self, train_dataset=None):  # noqa: D102
        sampler = super()._get_train_sampler(train_dataset)
        if self.length_grouping == "shuffled" and type(sampler) is LengthGroupedSampler:
            return ShuffledLengthGroupedSampler(sampler.batch_size, lengths=sampler.lengths,
                                                generator=sampler.generator)
        return sampler

    def _get_eval_sampler(self, eval_dataset):  # noqa: D102
        # transformers 5 also length-groups the *evaluation* batches when the training ones are
        # (train_sampling_strategy="group_by_length"), which permutes the predictions that compute_metrics
        # receives. Metrics that read rows by position (TopicBERT combines each document's partitions by
        # index) then score garbage: validation macro-F1 0.10-0.14 on Reuters-8 and best-epoch selection by
        # noise. Evaluation keeps the dataset's order here (one process: sequential, as transformers does
        # without grouping; several: None, the accelerator shards the loader in order).
        if eval_dataset is None or not has_length(eval_dataset):
            return None
        return torch.utils.data.SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None

    @staticmethod
    def _has_sparse_grads(model: torch.nn.Module) -> bool:
        return any(p.grad is not None and p.grad.is_sparse for p in model.parameters())

    def _clip_grad_norm(self, model):  # noqa: D102
        if not self._has_sparse_grads(model):
            return super()._clip_grad_norm(model)
        from frugaltext.training.lazy_adam import clip_grad_norm

        return clip_grad_norm(model.parameters(), self.args.max_grad_norm)

    def _get_grad_norm(self, model, grad_norm=None):  # noqa: D102
        if grad_norm is None and self._has_sparse_grads(model):
            from frugaltext.training.lazy_adam import clip_grad_norm

            grad_norm = clip_grad_norm(model.parameters(), float("inf"))
        return super()._get_grad_norm(model, grad_norm=grad_norm)


def make_compute_metrics(label_names: Sequence[str], multi_label: bool) -> Callable[[Any], dict[str, float]]:
    """``compute_metrics`` for the Trainer: macro-F1, micro-F1 and accuracy from logits.

    Single-label: argmax of the logits. Multi-label: a label is on when its logit >= 0 (sigmoid >= 0.5).
    """
    from frugaltext.metrics import classification_metrics

    def compute(prediction: Any) -> dict[str, float]:
        logits = prediction.predictions
        if isinstance(logits, tuple):
            logits = logits[0]
        labels = prediction.label_ids
        predicted = (logits >= 0).astype(np.int64) if multi_label else logits.argmax(axis=-1)
        metrics = classification_metrics(labels, predicted, label_names, multi_label)
        return {k: v for k, v in metrics.items() if isinstance(v, float | int)}

    return compute


def train_with_trainer(
    model: torch.nn.Module,
    train_dataset: torch.utils.data.Dataset,
    eval_dataset: torch.utils.data.Dataset | None,
    collator: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
    args: TrainingArguments,
    meter: CostMeter | None = None,
    compute_metrics: Callable[[Any], dict[str, float]] | None = None,
    callbacks: Sequence[TrainerCallback] = (),
    optimizers: tuple[Any, Any] = (None, None),
    resume: bool = True,
    checkpoint_steps: int = 0,
    length_grouping: str = "shuffled",
) -> Trainer:
    """Train ``model`` with the transformers ``Trainer`` and return the trainer (best model loaded).

    Parameters
    ----------
    model : nn.Module
        Its ``forward(**batch)`` returns an output with ``loss`` (and ``logits``) when ``labels`` is given.
    train_dataset, eval_dataset : Dataset of feature dicts
        See :class:`~frugaltext.data.collate.EncodedDataset`.
    collator : the batch collator, usually :class:`~frugaltext.data.collate.PadCollator`
    args : from :func:`make_training_args`
    meter : CostMeter, optional
        Receives each epoch's duration (``record_epoch``).
    resume : bool
        Continue from the newest complete ``checkpoint-*`` in ``args.output_dir`` when there is one
        (:func:`find_resume_checkpoint`; logged as ``resuming from checkpoint-N``): the Trainer restores the
        weights, optimizer, scheduler, RNG states and the epoch/step position, skips the batches already
        trained in the interrupted epoch, and ends with the same ``state.global_step`` as an uninterrupted
        run. The time trained before the checkpoint is restored from it (:class:`EpochTimerCallback`), so
        ``meter`` holds every epoch's time and the whole training time, as if uninterrupted.
    checkpoint_steps : int, default 0
        Also save a checkpoint every this many optimisation steps (:class:`StepCheckpointCallback`); 0 saves
        only where ``args.save_strategy`` says (each epoch when evaluating).
    length_grouping : {"shuffled", "megabatch"}
        With ``args.train_sampling_strategy="group_by_length"``: batches of similar length in random order
        (default) or transformers' megabatch sweep (:class:`FrugalTrainer`).
    """
    timer = EpochTimerCallback(meter)
    trainer = FrugalTrainer(
        length_grouping=length_grouping,
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=collator,
        compute_metrics=compute_metrics,
        callbacks=[
            timer,
            *([StepCheckpointCallback(checkpoint_steps)] if checkpoint_steps > 0 else []),
            *callbacks,
        ],
        optimizers=optimizers,
    )
    # Under torchrun rank 0 may just have deleted stale checkpoints (TorchMethod._claim_work_dir): every rank
    # looks for one to resume only after that (the Trainer above has set up the process group).
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
    checkpoint = find_resume_checkpoint(args.output_dir) if resume else None
    if checkpoint is not None:
        logger.info("resuming from %s in %s", checkpoint.name, checkpoint.parent)
        timer.restore(checkpoint)
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint is not None else None)
    trainer.model = unwrap_mixed_precision_forward(trainer.model)
    return trainer


def unwrap_mixed_precision_forward(model: torch.nn.Module) -> torch.nn.Module:
    """Give ``model`` back its own ``forward`` after a mixed-precision ``Trainer.train``.

    With ``bf16=True`` accelerate's ``prepare`` replaces ``model.forward`` by a wrapper that runs it under
    ``torch.autocast(bfloat16)`` and keeps it after training. Left there, every later forward pass is bf16
    whatever the method's precision (an "fp32" timing after a bf16 training is bf16) and an int8 copy
    (:func:`frugaltext.fastpath.quantize_int8`, a deepcopy) feeds bf16 activations to the int8 kernels, which
    fail with "expected scalar type Float but found BFloat16". This removes the wrapper
    (``accelerate.utils.extract_model_from_parallel(keep_fp32_wrapper=False)``); inference precision is
    then the method's own choice (:meth:`TorchMethod.inference_context`). A model without the wrapper is
    returned unchanged.
    """
    if "_original_forward" not in model.__dict__:
        return model
    from accelerate.utils import extract_model_from_parallel

    return extract_model_from_parallel(model, keep_fp32_wrapper=False)


@torch.inference_mode()
def batched_logits(
    model: torch.nn.Module,
    token_ids: Sequence[Sequence[int]],
    batch_size: int = 32,
    pad_token_id: int = 0,
    extra: dict[str, np.ndarray] | None = None,
    forward_kwargs: dict[str, Any] | None = None,
    batches: Sequence[Sequence[int]] | None = None,
) -> np.ndarray:
    """Logits for every document, batched by similar length to cut padding, in the input order.

    Parameters
    ----------
    model : nn.Module in eval mode; ``model(input_ids, attention_mask, **extra_batch)`` returns ``.logits``.
    token_ids : sequence of n_docs token-id lists
    extra : dict of arrays with first dimension n_docs (e.g. ``bow``), sliced per batch.
    batches : sequence of index lists, optional
        The documents of each batch; default :func:`~frugaltext.data.collate.length_sorted_batches`.

    Returns
    -------
    ndarray of shape (n_docs, num_labels), float32.
    """
    model.eval()
    device = next(model.parameters()).device
    collator = PadCollator(pad_token_id)
    outputs: list[np.ndarray | None] = [None] * len(token_ids)
    if batches is None:
        batches = length_sorted_batches([len(t) for t in token_ids], batch_size)
    for index in batches:
        features = [{"input_ids": list(token_ids[i])} for i in index]
        if extra:
            for key, values in extra.items():
                for feature, i in zip(features, index, strict=True):
                    feature[key] = values[i]
        batch = {k: v.to(device) for k, v in collator(features).items()}
        logits = model(**batch, **(forward_kwargs or {})).logits.float().cpu().numpy()
        for row, i in enumerate(index):
            outputs[i] = logits[row]
    return np.stack(outputs).astype(np.float32) if outputs else np.zeros((0, 0), dtype=np.float32)


def logits_to_proba(logits: np.ndarray, multi_label: bool) -> np.ndarray:
    """Softmax (single-label) or sigmoid (multi-label) of ``(n_docs, num_labels)`` logits, float32."""
    t = torch.as_tensor(logits, dtype=torch.float32)
    return (torch.sigmoid(t) if multi_label else torch.softmax(t, dim=-1)).numpy()


def proba_to_logits(proba: np.ndarray, multi_label: bool) -> np.ndarray:
    """Scores whose softmax (single-label) or sigmoid (multi-label) give ``proba`` back, float32.

    Probabilities are clipped to [1e-7, 1 - 1e-7]; ``log p`` for single-label tasks (the true logits up to a
    per-document constant, to which softmax is invariant), ``log p - log(1 - p)`` (the exact inverse of the
    sigmoid) for multi-label tasks.
    """
    p = np.clip(np.asarray(proba, dtype=np.float64), 1e-7, 1 - 1e-7)
    return ((np.log(p) - np.log1p(-p)) if multi_label else np.log(p)).astype(np.float32)


def label_features(labels: np.ndarray, multi_label: bool) -> list[Any]:
    """Per-document label values for feature dicts: int ids, or float 0/1 lists (multi-label)."""
    if multi_label:
        return [row.astype(np.float32) for row in labels]
    return [int(v) for v in labels]


def save_checkpoint(model: torch.nn.Module, tokenizer: Any, directory: Path) -> bool:
    """Write ``model`` and ``tokenizer`` with ``save_pretrained`` into ``directory``, on the main process
    only.

    Returns True when this process wrote the files (rank 0, or not distributed).
    """
    if not is_main_process():
        return False
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return True


def load_checkpoint(directory: Path, model_class: Any, method_name: str,
                    required: Sequence[str] = ("config.json",)) -> tuple[torch.nn.Module, Any]:
    """Load ``(model, tokenizer)`` written by :func:`save_checkpoint`; the model is put in eval mode.

    Raises
    ------
    ModelLoadError
        If a file in ``required`` is missing from ``directory``.
    """
    from transformers import AutoTokenizer

    from frugaltext.errors import ModelLoadError

    for name in required:
        if not (Path(directory) / name).is_file():
            raise ModelLoadError(f"{directory}: {name} is missing; this is not a saved {method_name} model")
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = model_class.from_pretrained(directory)
    model.eval()
    return model, tokenizer
