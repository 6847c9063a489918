"""CostMeter: the one object every method reports its costs to.

``compare`` gives each method run a fresh :class:`CostMeter` and fills it in this order::

    meter = CostMeter(CostSettings())
    with meter.track("train"):                 # wall time + codecarbon energy of the whole fit
        method.fit(data, meter, seed)          # the method calls meter.record_epoch(duration_s) per epoch
    meter.measure_inference(method, texts)     # latency_ms, throughput_docs_per_s, inference energy
    meter.measure_model(method, texts)         # n_params, flops, flops_train_step
    row = meter.as_dict()                      # flat, JSON-able; missing measurements are None

Units are in every name (STYLE §3). A measurement that failed or was switched off is ``None``, with the
reason in ``energy_error``, never 0 (STYLE §5).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import re
import resource
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from frugaltext.cost.energy import (
    PAPER_CARBON_KG_PER_KWH,
    PAPER_POWER_KW,
    EnergyMeasurement,
    EnergySession,
    is_local_rank_zero,
    local_rank,
    paper_emissions_kg_co2eq,
)
from frugaltext.cost.timing import Stopwatch
from frugaltext.errors import ConfigError, CostMeasurementError

__all__ = ["CostMeter", "CostSettings", "PhaseRecord", "paper_emissions_kg_co2eq"]

_PHASE_RE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class CostSettings:
    """How costs are measured; the same for every method of a comparison.

    Parameters
    ----------
    measure_energy : bool, default True
        Run a codecarbon tracker inside :meth:`CostMeter.track`. When False every energy field is ``None``.
    country_iso_code : str, default "USA"
        3-letter ISO code of the grid for codecarbon's carbon intensity.
    paper_power_kw : float, default 0.07
        Power of equation 1 of Chaudhary et al. (2020) (an NVIDIA Tesla T4), in kW.
    paper_carbon_kg_per_kwh : float, default 0.61
        Grid intensity of equation 1 of Chaudhary et al. (2020), in kg CO2eq per kWh.
    latency_batch_size : int, default 1
        Batch size of the latency pass (1: one document at a time, as a request would come).
    latency_n_docs : int, default 32
        Documents timed in the latency pass.
    throughput_batch_size : int, default 32
        Batch size of the throughput pass.
    throughput_n_docs : int, default 256
        Documents in the throughput pass (the one whose energy is measured).
    flops_n_docs : int, default 8
        Documents whose FLOPs are averaged by :meth:`CostMeter.measure_model`.
    warmup_batches : int, default 1
        Untimed batches run before each timed pass (first-call allocations, lazy initialisation).
    measure_power_secs : float, default 15.0
        Seconds between codecarbon's power readings (codecarbon's default). Not in the brief's list;
        added so that short benchmark runs can sample more often.
    tracking_mode : {"machine", "process"}, default "machine"
        codecarbon's tracking mode. "machine" counts the whole machine, which is what one tracker on local
        rank 0 must do to cover every rank of a multi-process run.
    min_throughput_duration_s : float, default 1.0
        The throughput pass is repeated over the same documents until at least this many seconds have
        passed (at least once), so that a fast method (tf-idf: milliseconds for 256 documents) still gives
        a throughput and an energy reading that are not dominated by timer and sampling granularity.
        0 runs the pass exactly once.

    Raises
    ------
    ConfigError
        If a count is < 1 (``warmup_batches`` < 0), a constant is negative or not finite, the country code
        is not 3 letters, or ``tracking_mode`` is unknown.
    """

    measure_energy: bool = True
    country_iso_code: str = "USA"
    paper_power_kw: float = PAPER_POWER_KW
    paper_carbon_kg_per_kwh: float = PAPER_CARBON_KG_PER_KWH
    latency_batch_size: int = 1
    latency_n_docs: int = 32
    throughput_batch_size: int = 32
    throughput_n_docs: int = 256
    flops_n_docs: int = 8
    warmup_batches: int = 1
    measure_power_secs: float = 15.0
    tracking_mode: str = "machine"
    min_throughput_duration_s: float = 1.0

    def __post_init__(self) -> None:
        def fail(name: str, expected: str) -> None:
            raise ConfigError(f"CostSettings.{name} must be {expected}, got {getattr(self, name)!r}")

        def is_int(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        def is_number(value: Any) -> bool:
            return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)

        for name in ("latency_batch_size", "latency_n_docs", "throughput_batch_size", "throughput_n_docs",
                     "flops_n_docs"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 1:
                fail(name, "an integer >= 1")
        if not is_int(self.warmup_batches) or self.warmup_batches < 0:
            fail("warmup_batches", "an integer >= 0")
        for name in ("paper_power_kw", "paper_carbon_kg_per_kwh", "min_throughput_duration_s"):
            if not is_number(getattr(self, name)) or getattr(self, name) < 0:
                fail(name, "a finite number >= 0")
        if not is_number(self.measure_power_secs) or self.measure_power_secs <= 0:
            fail("measure_power_secs", "a finite number > 0")
        code = self.country_iso_code
        if not (isinstance(code, str) and len(code) == 3 and code.isalpha()):
            fail("country_iso_code", "a 3-letter ISO code such as 'USA', 'FRA' or 'DEU'")
        if self.tracking_mode not in ("machine", "process"):
            fail("tracking_mode", "'machine' or 'process'")


@dataclass
class PhaseRecord:
    """Costs of one phase ("train", "inference", ...), summed over every ``track(phase)`` block.

    Attributes
    ----------
    duration_s : float
        Wall time in seconds.
    energy_kwh, emissions_kg_co2eq : float or None
        ``None`` as soon as one block of the phase could not be measured (a sum with a hole is no sum).
    energy_source : str or None
    energy_error : str or None
        Reason(s) the energy is ``None``.
    n_blocks : int
        Number of ``track`` blocks added up.
    """

    duration_s: float = 0.0
    energy_kwh: float | None = 0.0
    emissions_kg_co2eq: float | None = 0.0
    energy_source: str | None = None
    energy_error: str | None = None
    n_blocks: int = 0

    def add(self, duration_s: float, energy: EnergyMeasurement) -> None:
        """Add one block's wall time and energy."""
        self.duration_s += duration_s
        self.n_blocks += 1
        self.energy_kwh = _add_or_none(self.energy_kwh, energy.energy_kwh)
        self.emissions_kg_co2eq = _add_or_none(self.emissions_kg_co2eq, energy.emissions_kg_co2eq)
        if self.energy_source is None:
            self.energy_source = energy.energy_source
        if energy.energy_error and energy.energy_error != self.energy_error:
            self.energy_error = energy.energy_error if self.energy_error is None \
                else f"{self.energy_error}; {energy.energy_error}"


def _add_or_none(total: float | None, value: float | None) -> float | None:
    return None if total is None or value is None else total + value


_PROC_STATUS = "/proc/self/status"
_PROC_CLEAR_REFS = "/proc/self/clear_refs"


def reset_peak_memory() -> bool:
    """Reset this process's peak resident set size (Linux: write ``5`` to ``/proc/self/clear_refs``, which
    resets ``VmHWM``), so that :func:`peak_memory_mb` then reports the peak since this call.

    Returns
    -------
    bool
        True when the peak was reset; False where the OS offers no reset (then :func:`peak_memory_mb` stays
        a high-water mark since the process started).
    """
    try:
        with open(_PROC_CLEAR_REFS, "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_memory_mb() -> float:
    """Peak resident set size of this process, in MB (2**20 bytes): ``VmHWM`` of ``/proc/self/status`` on
    Linux (since the last :func:`reset_peak_memory`), else ``resource.getrusage`` ``ru_maxrss`` (since the
    process started; KiB on Linux, bytes on macOS)."""
    try:
        with open(_PROC_STATUS, encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10  # kB
    except (OSError, ValueError, IndexError):
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 2**10


class CostMeter:
    """Collects the measured costs of one method run.

    Parameters
    ----------
    settings : CostSettings, optional
        Defaults to ``CostSettings()``.
    tracker_factory : callable, optional
        Builds a codecarbon tracker from ``(country_iso_code, measure_power_secs, tracking_mode)``; defaults
        to :func:`frugaltext.cost.energy.create_offline_tracker`. For tests and for other trackers.

    Attributes
    ----------
    epoch_durations_s : list of float
        Wall time of each training epoch, in seconds, as reported by the method.
    phases : dict of str to PhaseRecord
        Costs of each tracked phase.
    """

    def __init__(self, settings: CostSettings | None = None, tracker_factory: Any = None) -> None:
        self.settings = settings if settings is not None else CostSettings()
        if not isinstance(self.settings, CostSettings):
            raise ConfigError(f"CostMeter(settings=...) needs a CostSettings, got "
                              f"{type(self.settings).__name__}")
        self.tracker_factory = tracker_factory
        self.epoch_durations_s: list[float] = []
        #: training time before a resume, restored from a checkpoint (:meth:`record_restored_training`)
        self.restored_train_s = 0.0
        self.phases: dict[str, PhaseRecord] = {}
        self._inference: dict[str, Any] = {}
        self._model: dict[str, Any] = {}
        #: "run": ``peak_memory_mb`` covers this meter's lifetime (peak reset at creation); "process": the
        #: OS has no reset, so it is the process's high-water mark, earlier runs in the process included
        self.peak_memory_scope = "run" if reset_peak_memory() else "process"

    # ---- phases ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def track(self, phase: str) -> Iterator[PhaseRecord]:
        """Measure the wall time and (optionally) the energy of the ``with`` block as ``phase``.

        The tracker starts before the clock and stops after it, so codecarbon's start-up (about 1.5 s the
        first time in a process) is not counted as ``<phase>_duration_s``. The tracker is stopped in
        ``finally`` and the block's costs are recorded even when the block raises. Energy is measured only
        when ``settings.measure_energy`` and this is local rank 0 (``LOCAL_RANK`` unset or ``"0"``): one
        codecarbon tracker per machine, in "machine" mode, covers all ranks of the machine; other ranks
        record ``energy_kwh=None`` with the reason. Repeated blocks of the same phase add up.

        Parameters
        ----------
        phase : str
            Lower-case name such as ``"train"`` or ``"inference"``; keys become ``<phase>_duration_s``,
            ``<phase>_energy_kwh`` and ``<phase>_emissions_kg_co2eq`` in :meth:`as_dict`.

        Yields
        ------
        PhaseRecord
            The record of this block alone, filled in when the block ends.

        Raises
        ------
        ConfigError
            If ``phase`` is not a lower-case identifier, or ``LOCAL_RANK`` is not an integer.
        """
        if not isinstance(phase, str) or not _PHASE_RE.match(phase):
            raise ConfigError(f"CostMeter.track: phase must be a lower-case identifier such as 'train' or "
                              f"'inference', got {phase!r}")
        session = self._start_energy()
        block = PhaseRecord()
        watch = Stopwatch()
        try:
            with watch:
                yield block
        finally:
            energy = session.stop() if isinstance(session, EnergySession) else session
            block.add(watch.duration_s or 0.0, energy)
            self.phases.setdefault(phase, PhaseRecord()).add(block.duration_s, energy)

    def _start_energy(self) -> EnergySession | EnergyMeasurement:
        if not self.settings.measure_energy:
            return EnergyMeasurement.missing("energy not measured: CostSettings(measure_energy=False)")
        if not is_local_rank_zero():
            return EnergyMeasurement.missing(
                f"energy not measured on local rank {local_rank()}: one codecarbon tracker per machine runs "
                "on local rank 0 and covers the whole machine")
        session = EnergySession(self.settings.country_iso_code, self.settings.measure_power_secs,
                                self.settings.tracking_mode, self.tracker_factory)
        session.start()
        return session

    def record_epoch(self, duration_s: float) -> None:
        """Record the wall time of one finished training epoch, in seconds.

        Raises
        ------
        CostMeasurementError
            If ``duration_s`` is negative, NaN or infinite.
        """
        duration_s = float(duration_s)
        if not math.isfinite(duration_s) or duration_s < 0:
            raise CostMeasurementError(f"CostMeter.record_epoch: duration_s must be a finite number >= 0, "
                                       f"got {duration_s!r}")
        self.epoch_durations_s.append(duration_s)

    def record_restored_training(self, duration_s: float) -> None:
        """Add training time measured before an interruption, in seconds, restored from a checkpoint.

        It is added to ``train_duration_s`` (and so to the paper's equation) and reported alone as
        ``train_duration_restored_s``. Its energy was not measured by this meter: ``train_energy_kwh`` and
        ``train_emissions_kg_co2eq`` are then None (a sum with a hole is no sum) with the reason in
        ``energy_error``, and the part measured after the resume is kept as ``train_energy_kwh_after_resume``.
        Called by :class:`frugaltext.training.hf.EpochTimerCallback` when a Trainer resumes.

        Raises
        ------
        CostMeasurementError
            If ``duration_s`` is negative, NaN or infinite.
        """
        duration_s = float(duration_s)
        if not math.isfinite(duration_s) or duration_s < 0:
            raise CostMeasurementError(f"CostMeter.record_restored_training: duration_s must be a finite "
                                       f"number >= 0, got {duration_s!r}")
        self.restored_train_s += duration_s

    # ---- inference ------------------------------------------------------------------------------
    def measure_inference(self, method: Any, texts: Sequence[str]) -> dict[str, Any]:
        """Measure latency, throughput and inference energy of ``method.predict_proba``.

        1. Latency: ``latency_n_docs`` documents in batches of ``latency_batch_size`` (1 by default: one
           document per call, as requests arrive), after ``warmup_batches`` untimed batches. ``latency_ms``
           is the mean wall time per document: total time / documents x 1000.
        2. Throughput: ``predict_proba`` calls on ``throughput_n_docs`` documents with
           ``batch_size=throughput_batch_size``, after ``warmup_batches`` untimed batches, inside
           ``track("inference")``, repeated until ``min_throughput_duration_s`` has passed.
           ``throughput_docs_per_s`` = documents processed / wall time, and
           ``inference_energy_kwh_per_doc`` = that block's energy / documents processed (``None`` when
           energy was not measured). A block of a second or two is short for codecarbon, which reads power
           every ``measure_power_secs`` and, without RAPL, estimates it: take the energy per document as an
           order of magnitude.

        When ``texts`` has fewer documents than a pass needs, it is cycled; the documents are used in the
        given order (pass test documents, so that lengths are realistic).

        Parameters
        ----------
        method : object with ``predict_proba(texts, batch_size) -> ndarray (n_docs, num_labels)``
            A fitted :class:`~frugaltext.methods.base.Method`.
        texts : sequence of str
            At least one document.

        Returns
        -------
        dict
            ``latency_ms``, ``latency_batch_size``, ``throughput_docs_per_s``, ``throughput_batch_size``,
            ``inference_energy_kwh_per_doc``.

        Raises
        ------
        ConfigError
            If ``texts`` is empty or not a sequence of strings.
        CostMeasurementError
            If ``predict_proba`` returns a number of rows other than the number of documents given.
        """
        texts = _check_texts(texts, "measure_inference")
        s = self.settings
        latency_docs = _take(texts, s.latency_n_docs)
        throughput_docs = _take(texts, s.throughput_n_docs)

        self._warm_up(method, latency_docs, s.latency_batch_size)
        total_s = 0.0
        for start in range(0, len(latency_docs), s.latency_batch_size):
            batch = latency_docs[start:start + s.latency_batch_size]
            with Stopwatch() as watch:
                proba = method.predict_proba(batch, batch_size=s.latency_batch_size)
            _check_rows(proba, len(batch))
            total_s += watch.duration_s or 0.0
        latency_ms = total_s / len(latency_docs) * 1000.0

        self._warm_up(method, throughput_docs, s.throughput_batch_size)
        n_processed = 0
        with self.track("inference") as block:
            start = time.perf_counter()
            while True:
                proba = method.predict_proba(throughput_docs, batch_size=s.throughput_batch_size)
                _check_rows(proba, len(throughput_docs))
                n_processed += len(throughput_docs)
                if time.perf_counter() - start >= s.min_throughput_duration_s:
                    break
        throughput = n_processed / block.duration_s if block.duration_s > 0 else None
        per_doc = None if block.energy_kwh is None else block.energy_kwh / n_processed

        self._inference = {
            "latency_ms": latency_ms,
            "latency_batch_size": s.latency_batch_size,
            "throughput_docs_per_s": throughput,
            "throughput_batch_size": s.throughput_batch_size,
            "inference_energy_kwh_per_doc": per_doc,
        }
        return dict(self._inference)

    def _warm_up(self, method: Any, docs: list[str], batch_size: int) -> None:
        for start in range(0, min(len(docs), self.settings.warmup_batches * batch_size), batch_size):
            method.predict_proba(docs[start:start + batch_size], batch_size=batch_size)

    # ---- model size -----------------------------------------------------------------------------
    def measure_model(self, method: Any, texts: Sequence[str]) -> dict[str, Any]:
        """Record ``n_params`` and FLOPs per document of a fitted method.

        ``n_params = method.n_params()``; ``flops`` and ``flops_train_step`` are
        ``method.flops_per_document(texts[:flops_n_docs])`` (mean FLOPs per document of one forward pass
        and of one training step; attention included, see :mod:`frugaltext.cost.flops`).

        Parameters
        ----------
        method : object with ``n_params()`` and ``flops_per_document(texts)``
        texts : sequence of str
            At least one document; the first ``flops_n_docs`` are used.

        Returns
        -------
        dict
            ``n_params``, ``flops``, ``flops_train_step``.

        Raises
        ------
        ConfigError
            If ``texts`` is empty.
        CostMeasurementError
            If ``flops_per_document`` does not return a dict with a ``"flops"`` key, or a count is negative.
        """
        texts = _check_texts(texts, "measure_model")
        n_params = int(method.n_params())
        if n_params < 0:
            raise CostMeasurementError(f"{type(method).__name__}.n_params() returned {n_params} < 0")
        counts = method.flops_per_document(texts[: self.settings.flops_n_docs])
        if not isinstance(counts, dict) or "flops" not in counts:
            raise CostMeasurementError(
                f"{type(method).__name__}.flops_per_document must return a dict with keys 'flops' and "
                f"'flops_train_step', got {counts!r}")
        result = {"n_params": n_params}
        for key in ("flops", "flops_train_step"):
            value = counts.get(key)
            if value is not None:
                value = float(value)
                if not math.isfinite(value) or value < 0:
                    raise CostMeasurementError(
                        f"{type(method).__name__}.flops_per_document returned {key}={value!r}; expected a "
                        "finite number >= 0 or None")
            result[key] = value
        self._model = result
        return dict(result)

    # ---- results --------------------------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        """All measurements as one flat, JSON-able dict; missing measurements are ``None``.

        Keys: ``train_duration_s`` (wall time of ``track("train")``, which covers the whole fit: data
        preparation, epochs and evaluation; plus ``train_duration_restored_s``, the training time before a
        resume, see :meth:`record_restored_training`), ``epoch_duration_s`` (mean), ``epoch_durations_s``,
        ``n_epochs``, ``train_energy_kwh``, ``train_emissions_kg_co2eq``, ``energy_source``,
        ``energy_error``, ``paper_emissions_kg_co2eq`` (equation 1 of Chaudhary et al. 2020 on
        ``train_duration_s``; the paper applied it to T_epoch x epochs, which ``epoch_durations_s`` allows
        to recompute), ``paper_power_kw``, ``paper_carbon_kg_per_kwh``, ``latency_ms``,
        ``latency_batch_size``, ``throughput_docs_per_s``, ``throughput_batch_size``,
        ``inference_energy_kwh_per_doc``, ``n_params``, ``flops``, ``flops_train_step``,
        ``peak_memory_mb``; plus ``<phase>_duration_s``, ``<phase>_energy_kwh`` and
        ``<phase>_emissions_kg_co2eq`` for every other tracked phase (``inference_*`` after
        :meth:`measure_inference`).

        ``energy_source`` is that of the "train" phase (else the first tracked phase); ``energy_error``
        joins the reasons of all phases as ``"<phase>: <reason>"``, ``None`` when all energy was measured.
        """
        s = self.settings
        train = self.phases.get("train")
        epochs = list(self.epoch_durations_s)
        train_duration = train.duration_s if train is not None else None
        restored = self.restored_train_s
        train_energy = train.energy_kwh if train is not None else None
        train_emissions = train.emissions_kg_co2eq if train is not None else None
        if restored and train_duration is not None:
            train_duration += restored
        out: dict[str, Any] = {
            "train_duration_s": train_duration,
            "train_duration_restored_s": restored,
            "epoch_duration_s": sum(epochs) / len(epochs) if epochs else None,
            "epoch_durations_s": epochs,
            "n_epochs": len(epochs),
            "train_energy_kwh": None if restored else train_energy,
            "train_emissions_kg_co2eq": None if restored else train_emissions,
            "energy_source": self._energy_source(),
            "energy_error": self._energy_error(),
            "paper_emissions_kg_co2eq": None if train_duration is None else paper_emissions_kg_co2eq(
                train_duration, s.paper_power_kw, s.paper_carbon_kg_per_kwh),
            "paper_power_kw": s.paper_power_kw,
            "paper_carbon_kg_per_kwh": s.paper_carbon_kg_per_kwh,
            "latency_ms": None,
            "latency_batch_size": None,
            "throughput_docs_per_s": None,
            "throughput_batch_size": None,
            "inference_energy_kwh_per_doc": None,
            "n_params": None,
            "flops": None,
            "flops_train_step": None,
            "peak_memory_mb": peak_memory_mb(),
            "peak_memory_scope": self.peak_memory_scope,
        }
        if restored:
            out["train_energy_kwh_after_resume"] = train_energy
            if train_energy is not None:
                reason = (f"train: the {restored:.1f} s trained before the resume (restored from the "
                          "checkpoint) have no energy measurement; train_energy_kwh_after_resume covers the "
                          "rest")
                error = out["energy_error"]
                out["energy_error"] = reason if error is None else f"{error}; {reason}"
        out.update(self._inference)
        out.update(self._model)
        for phase, record in self.phases.items():
            if phase == "train":
                continue
            out[f"{phase}_duration_s"] = record.duration_s
            out[f"{phase}_energy_kwh"] = record.energy_kwh
            out[f"{phase}_emissions_kg_co2eq"] = record.emissions_kg_co2eq
        return out

    def _energy_source(self) -> str | None:
        order = sorted(self.phases.items(), key=lambda item: item[0] != "train")
        return next((record.energy_source for _, record in order if record.energy_source), None)

    def _energy_error(self) -> str | None:
        errors = [f"{phase}: {record.energy_error}"
                  for phase, record in self.phases.items() if record.energy_error]
        return "; ".join(errors) if errors else None


def _check_texts(texts: Sequence[str], where: str) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise ConfigError(f"CostMeter.{where}: texts must be a sequence of strings, got "
                          f"{type(texts).__name__}")
    texts = list(texts)
    if not texts:
        raise ConfigError(f"CostMeter.{where}: texts is empty; pass at least one document (e.g. the test "
                          "split)")
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise ConfigError(f"CostMeter.{where}: texts[{bad}] is {type(texts[bad]).__name__}, not str")
    return texts


def _take(texts: list[str], n: int) -> list[str]:
    """Return the first ``n`` documents of ``texts``, cycling when there are fewer."""
    return list(itertools.islice(itertools.cycle(texts), n))


def _check_rows(proba: Any, n_docs: int) -> None:
    n_rows = getattr(proba, "shape", (len(proba),))[0]
    if n_rows != n_docs:
        raise CostMeasurementError(f"predict_proba returned {n_rows} rows for {n_docs} documents")
