"""Offline exits: all-exit logits, calibration of the exit rule, throughput and the speed-accuracy curve.

Throughput is timed with :class:`frugaltext.cost.timing.Stopwatch` (which waits for queued CUDA work), the
same timer as the rest of the cost measurements.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from frugaltext.cost.timing import Stopwatch
from frugaltext.errors import ConfigError
from frugaltext.models.early_exit.config import ENTROPY_GRID, EXIT_RULES
from frugaltext.models.early_exit.exits import predicted_labels, simulate_exits
from frugaltext.models.early_exit.model import EarlyExitForSequenceClassification


# ==================================================================================================
# Offline exits: all-exit logits, calibration, speed-accuracy curve
# ==================================================================================================
def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, multi_label: bool, num_labels: int) -> float:
    """Macro-F1 as :func:`frugaltext.metrics.classification_metrics` computes it (one definition).

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_docs,) (label ids) or (n_docs, num_labels) (0/1, multi-label)
    """
    from frugaltext.metrics import classification_metrics

    names = [str(i) for i in range(num_labels)]
    return float(
        classification_metrics(np.asarray(y_true), np.asarray(y_pred), names, multi_label)["macro_f1"]
    )


def _text_batches(
    texts: Sequence[str], tokenizer: Any, max_length: int, batch_size: int, truncation: str = "head"
) -> tuple[list[np.ndarray], list[dict[str, torch.Tensor]]]:
    """Tokenise and cut ``texts`` into length-sorted padded batches; returns (index arrays, batches)."""
    from frugaltext.data.collate import PadCollator, encode_texts, length_sorted_batches

    if tokenizer is None:
        raise ConfigError("texts were given without a tokenizer: pass tokenizer= (the encoder's tokenizer)")
    ids = encode_texts(tokenizer, texts, max_length, truncation)
    collator = PadCollator(tokenizer.pad_token_id or 0)
    order = length_sorted_batches([len(t) for t in ids], batch_size)
    return order, [collator([{"input_ids": ids[i]} for i in index]) for index in order]


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def collect_exit_logits(
    model: EarlyExitForSequenceClassification,
    data: Iterable[dict[str, torch.Tensor]] | Sequence[str],
    labels: np.ndarray | None = None,
    tokenizer: Any = None,
    max_length: int = 128,
    batch_size: int = 32,
    truncation: str = "head",
) -> tuple[torch.Tensor, np.ndarray | None, np.ndarray]:
    """Logits of every exit for every document, computed once (one full-depth pass per batch).

    Parameters
    ----------
    model : EarlyExitForSequenceClassification
    data : iterable of batch dicts or sequence of str
        Batches with ``input_ids``, ``attention_mask`` (and optionally ``labels``), e.g. a DataLoader over
        the shared collator; or raw texts (then ``tokenizer`` is required).
    labels : ndarray, optional
        Labels of the texts, (n,) int or (n, K) 0/1; ignored for batches (their ``labels`` key is used).
    tokenizer, max_length, batch_size, truncation
        Used for raw texts only.

    Returns
    -------
    all_logits : Tensor of shape (L, n_docs, num_labels), float32, on CPU, in input order
    labels : ndarray of shape (n_docs,) or (n_docs, K), or None when none were given
    seq_lens : ndarray of shape (n_docs,), int64, tokens per document (padding excluded)
    """
    model.eval()
    device = _device_of(model)
    if isinstance(data, Sequence) and (len(data) == 0 or isinstance(data[0], str)):
        order, batches = _text_batches(data, tokenizer, max_length, batch_size, truncation)
        chunks, lens = [], []
        for batch in batches:
            out = model(
                input_ids=batch["input_ids"].to(device),
                attention_mask=batch["attention_mask"].to(device),
                all_exits=True,
            )
            chunks.append(out.all_logits.float().cpu())
            lens.append(batch["attention_mask"].sum(dim=1).cpu())
        n = len(data)
        num_layers, num_labels = model.num_layers, model.config.num_labels
        all_logits = torch.zeros((num_layers, n, num_labels), dtype=torch.float32)
        seq_lens = np.zeros(n, dtype=np.int64)
        for index, chunk, length in zip(order, chunks, lens, strict=True):
            all_logits[:, torch.as_tensor(index)] = chunk
            seq_lens[index] = length.numpy()
        return all_logits, (None if labels is None else np.asarray(labels)), seq_lens
    chunks, lens, label_chunks = [], [], []
    for batch in data:
        mask = batch.get("attention_mask")
        input_ids = batch["input_ids"].to(device)
        mask = torch.ones_like(input_ids) if mask is None else mask.to(device)
        out = model(
            input_ids=input_ids,
            attention_mask=mask,
            all_exits=True,
            token_type_ids=batch["token_type_ids"].to(device) if "token_type_ids" in batch else None,
        )
        chunks.append(out.all_logits.float().cpu())
        lens.append(mask.sum(dim=1).cpu().numpy())
        if "labels" in batch:
            label_chunks.append(np.asarray(batch["labels"].cpu()))
    if not chunks:
        raise ConfigError("collect_exit_logits: no documents were given")
    found = np.concatenate(label_chunks) if label_chunks and len(label_chunks) == len(chunks) else None
    return torch.cat(chunks, dim=1), found, np.concatenate(lens).astype(np.int64)


def _evaluate_setting(
    model: EarlyExitForSequenceClassification,
    all_logits: torch.Tensor,
    labels: np.ndarray,
    seq_lens: np.ndarray,
    rule: str,
    value: float | int,
) -> tuple[dict[str, Any], np.ndarray]:
    """One row of a calibration table / curve: macro-F1, mean exit layer and mean FLOPs under one setting."""
    kwargs = (
        {"entropy_threshold": float(value)}
        if rule == "entropy"
        else ({"patience": int(value)} if rule == "patience" else {})
    )
    settings = model.resolve_exit_settings(rule, **kwargs)
    multi = model.config.multi_label
    exit_layer, logits = simulate_exits(all_logits, settings, multi)
    predicted = predicted_labels(logits, multi).numpy()
    exits = exit_layer.numpy()
    flops = model.flops_per_document(seq_lens, exits, rule, **kwargs)
    row = {
        "rule": rule,
        "entropy_threshold": float(value) if rule == "entropy" else None,
        "patience": int(value) if rule == "patience" else None,
        "macro_f1": macro_f1(labels, predicted, multi, model.config.num_labels),
        "mean_exit_layer": float(exits.mean()),
        "flops": float(flops.mean()),
    }
    return row, exits


def exit_histogram(exit_layers: np.ndarray, num_layers: int) -> list[int]:
    """Count the documents that left at each layer 1..L (list of L ints)."""
    return (
        np.bincount(np.asarray(exit_layers, dtype=np.int64), minlength=num_layers + 1)[1:]
        .astype(int)
        .tolist()
    )


@dataclass
class CalibrationResult:
    """Outcome of :func:`calibrate`.

    Attributes
    ----------
    rule : str
    table : list of dict
        One row per setting: ``rule``, ``entropy_threshold`` or ``patience``, ``macro_f1``,
        ``mean_exit_layer``, ``flops`` (mean per document).
    chosen : dict
        The chosen row, plus ``exit_layer_histogram`` (documents per layer 1..L).
    full_depth_macro_f1 : float
        Macro-F1 of the final classifier on every document.
    target_retention : float
    """

    rule: str
    table: list[dict[str, Any]]
    chosen: dict[str, Any]
    full_depth_macro_f1: float
    target_retention: float
    n_docs: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (stored as ``config.calibration``)."""
        return {
            "rule": self.rule,
            "target_retention": self.target_retention,
            "full_depth_macro_f1": self.full_depth_macro_f1,
            "n_docs": self.n_docs,
            "chosen": self.chosen,
            "table": self.table,
        }


def calibrate(
    model: EarlyExitForSequenceClassification,
    data: Iterable[dict[str, torch.Tensor]] | Sequence[str],
    rule: str = "entropy",
    target_retention: float = 0.99,
    *,
    labels: np.ndarray | None = None,
    tokenizer: Any = None,
    max_length: int = 128,
    batch_size: int = 32,
    truncation: str = "head",
    grid: Sequence[float] | None = None,
    save: bool = True,
    exit_logits: tuple[torch.Tensor, np.ndarray, np.ndarray] | None = None,
) -> CalibrationResult:
    """Pick the fastest exit setting whose validation macro-F1 keeps ``target_retention`` of full depth.

    The logits of every exit are computed once (:func:`collect_exit_logits`) and each setting is simulated
    offline (:func:`simulate_exits`), which is exact because exits are deterministic. Candidates: S in
    {0, 0.05, ..., 1} for the entropy rule, t in {1, ..., L} for the patience rule. The chosen setting has
    the lowest mean FLOPs per document among those with ``macro_f1 >= target_retention * full_depth_macro_f1``
    (ties: lower mean exit layer, then higher macro-F1). S = 0 and t = L run full depth, so a setting always
    qualifies. Mei (2020) tunes S and t by hand (Table 2); the retention target is ours.

    Parameters
    ----------
    model : EarlyExitForSequenceClassification
    data : iterable of batch dicts (with ``labels``) or sequence of str (then ``labels`` and ``tokenizer``)
    rule : {"entropy", "patience", "none"}
    target_retention : float in (0, 1]
    grid : sequence of numbers, optional
        Replaces the default candidates.
    save : bool
        Write the chosen rule and threshold, and ``calibration`` (this result), into ``model.config``.
    exit_logits : tuple, optional
        Output of :func:`collect_exit_logits` for the same documents, to skip the model pass.

    Returns
    -------
    CalibrationResult

    Raises
    ------
    ConfigError
        For an unknown rule, a target outside (0, 1], a grid value out of range, or data without labels.
    """
    if rule not in EXIT_RULES:
        raise ConfigError(f"calibrate: rule must be one of {EXIT_RULES}, got {rule!r}")
    if not 0.0 < float(target_retention) <= 1.0:
        raise ConfigError(f"calibrate: target_retention must be in (0, 1], got {target_retention!r}")
    if exit_logits is None:
        exit_logits = collect_exit_logits(model, data, labels, tokenizer, max_length, batch_size, truncation)
    all_logits, found_labels, seq_lens = exit_logits
    if found_labels is None:
        raise ConfigError(
            "calibrate: the data has no labels; pass labels= with texts, or batches with 'labels'"
        )
    num_layers = model.num_layers
    if grid is None:
        grid = (
            ENTROPY_GRID if rule == "entropy" else (range(1, num_layers + 1) if rule == "patience" else [0])
        )
    full_row, _ = _evaluate_setting(model, all_logits, found_labels, seq_lens, "none", 0)
    full = full_row["macro_f1"]
    table, exits_of = [], []
    for value in grid:
        row, exits = _evaluate_setting(model, all_logits, found_labels, seq_lens, rule, value)
        row["retention"] = row["macro_f1"] / full if full > 0 else 1.0
        table.append(row)
        exits_of.append(exits)
    feasible = [i for i, row in enumerate(table) if row["macro_f1"] >= float(target_retention) * full - 1e-12]
    if not feasible:  # only when the grid has no full-depth setting
        feasible = [max(range(len(table)), key=lambda i: table[i]["macro_f1"])]
    best = min(
        feasible, key=lambda i: (table[i]["flops"], table[i]["mean_exit_layer"], -table[i]["macro_f1"])
    )
    chosen = dict(table[best], exit_layer_histogram=exit_histogram(exits_of[best], num_layers))
    result = CalibrationResult(
        rule=rule,
        table=table,
        chosen=chosen,
        full_depth_macro_f1=full,
        target_retention=float(target_retention),
        n_docs=int(len(seq_lens)),
    )
    if save:
        model.config.exit_rule = rule
        if rule == "entropy":
            model.config.entropy_threshold = float(chosen["entropy_threshold"])
        elif rule == "patience":
            model.config.patience = int(chosen["patience"])
        model.config.calibration = result.to_dict()
    return result


@torch.inference_mode()
def measure_throughput(
    model: EarlyExitForSequenceClassification,
    batches: Sequence[dict[str, torch.Tensor]],
    n_docs: int,
    warmup_batches: int = 1,
    **exit_kwargs: Any,
) -> tuple[float, np.ndarray]:
    """Time real dynamic early-exit runs over pre-tokenised ``batches``.

    Returns
    -------
    throughput_docs_per_s : float
        ``n_docs`` divided by the wall time of all batches (tokenisation excluded; warm-up batches excluded),
        timed with :class:`frugaltext.cost.timing.Stopwatch`.
    exit_layers : ndarray of shape (n_docs,) in batch order
    """
    model.eval()
    device = _device_of(model)
    moved = [{k: v.to(device) for k, v in b.items() if k in ("input_ids", "attention_mask")} for b in batches]
    for batch in moved[:warmup_batches]:
        model(**batch, **exit_kwargs)
    exits = []
    with Stopwatch() as watch:  # waits for queued CUDA work before starting and before stopping the clock
        for batch in moved:
            exits.append(model(**batch, **exit_kwargs).exit_layer)
    duration_s = float(watch.duration_s or 0.0)
    return n_docs / duration_s if duration_s > 0 else float("inf"), torch.cat(exits).cpu().numpy()


def early_exit_curve(
    model: EarlyExitForSequenceClassification,
    texts: Sequence[str],
    labels: np.ndarray,
    tokenizer: Any,
    *,
    max_length: int = 128,
    truncation: str = "head",
    entropy_grid: Sequence[float] = ENTROPY_GRID,
    patience_grid: Sequence[int] | None = None,
    batch_sizes: Sequence[int] = (32, 1),
    measure: bool = True,
    max_timing_docs: int | None = None,
    exit_logits: tuple[torch.Tensor, np.ndarray | None, np.ndarray] | None = None,
) -> list[dict[str, Any]]:
    """Speed-accuracy sweep over S in ``entropy_grid`` and t in ``patience_grid`` (default 1..L).

    macro-F1, mean exit layer and FLOPs per document come from one all-exit pass simulated offline (exact).
    With ``measure``, each setting is also run for real, batched and dynamic, at each batch size, and
    ``throughput_docs_per_s_batch{b}`` is recorded (tokenisation excluded; one warm-up batch), together
    with ``n_exit_mismatch_batch{b}``, the number of documents whose real exit layer differs from the
    simulated one (0 expected; non-zero only from float noise at a threshold). Timings are for benchmarks;
    unit tests must not assert them.

    Parameters
    ----------
    model : EarlyExitForSequenceClassification
    texts : sequence of n_docs str
    labels : ndarray of shape (n_docs,) or (n_docs, K)
    tokenizer : the encoder's tokenizer
    max_timing_docs : int, optional
        Time only the first this many documents (all by default).
    exit_logits : tuple, optional
        Output of :func:`collect_exit_logits` for the same ``texts`` (same model, precision and
        ``max_length``), to skip the all-exit model pass.

    Returns
    -------
    list of dict, one per setting: rule, entropy_threshold, patience, macro_f1, mean_exit_layer, flops, and
    the throughput columns when measured.

    Raises
    ------
    ConfigError
        If ``exit_logits`` covers another number of documents than ``texts``.
    """
    if exit_logits is None:
        exit_logits = collect_exit_logits(model, texts, labels, tokenizer, max_length, 32, truncation)
    all_logits, _, seq_lens = exit_logits
    if all_logits.shape[1] != len(texts):
        raise ConfigError(
            f"early_exit_curve: exit_logits cover {all_logits.shape[1]} documents but {len(texts)} texts "
            "were given; pass the collect_exit_logits output of these texts"
        )
    labels = np.asarray(labels)
    patience_grid = range(1, model.num_layers + 1) if patience_grid is None else patience_grid
    settings = [("entropy", s) for s in entropy_grid] + [("patience", t) for t in patience_grid]
    timing_texts = list(texts) if max_timing_docs is None else list(texts)[:max_timing_docs]
    timing = {}
    if measure and timing_texts:
        for b in batch_sizes:
            timing[b] = _text_batches(timing_texts, tokenizer, max_length, int(b), truncation)
    rows = []
    for rule, value in settings:
        row, exits = _evaluate_setting(model, all_logits, labels, seq_lens, rule, value)
        if measure and timing_texts:
            kwargs = {"exit_rule": rule, ("entropy_threshold" if rule == "entropy" else "patience"): value}
            for b, (order, batches) in timing.items():
                throughput, real_exits = measure_throughput(model, batches, len(timing_texts), **kwargs)
                simulated = exits[np.concatenate(order)]
                row[f"throughput_docs_per_s_batch{b}"] = float(throughput)
                row[f"n_exit_mismatch_batch{b}"] = int((real_exits != simulated).sum())
        rows.append(row)
    return rows
