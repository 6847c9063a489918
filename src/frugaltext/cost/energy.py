"""Energy and CO2: codecarbon's offline tracker, and the TopicBERT paper's equation 1.

Two figures are kept side by side, never mixed:

* **Measured** (estimated by codecarbon): ``energy_kwh`` is codecarbon's ``energy_consumed``, "sum of
  cpu_energy, gpu_energy and ram_energy (kWh)", and ``emissions_kg_co2eq`` its ``emissions``, "as
  CO2-equivalents [CO2eq], in kg" (mlco2/codecarbon, ``docs/edit/output.rst``). We use
  ``OfflineEmissionsTracker`` because our machines have no network (``docs/edit/usage.rst``). How good
  the figure is depends on the hardware interface codecarbon found: RAPL / NVML energy counters, or
  only a TDP-based estimate. :func:`describe_energy_source` puts that into words for every result.
* **Paper** (a formula, not a measurement): :func:`paper_emissions_kg_co2eq`, equation 1 of Chaudhary
  et al. (2020), so that our numbers can be set next to theirs.

codecarbon's ``start()``/``stop()`` carry ``@suppress(Exception)`` and ``stop()`` may return ``None``
(``codecarbon/emissions_tracker.py``). :class:`EnergySession` never passes that silence on: a failed
measurement gives ``energy_kwh=None`` plus a reason in ``energy_error``, never 0 (STYLE §5).
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from frugaltext.errors import ConfigError

PAPER_POWER_KW = 0.07
"""Power draw in eq. 1 of Chaudhary et al. (2020): an NVIDIA Tesla T4, 0.07 kW."""

PAPER_CARBON_KG_PER_KWH = 0.61
"""Grid carbon intensity in eq. 1 of Chaudhary et al. (2020): 0.61 kg CO2eq per kWh."""

_CPU_MODES = {
    "intel_rapl": "RAPL energy counters",
    "windows_emi": "Windows Energy Meter (RAPL) counters",
    "intel_power_gadget": "Intel Power Gadget counters",
}


def paper_emissions_kg_co2eq(
    duration_s: float,
    power_kw: float = PAPER_POWER_KW,
    carbon_kg_per_kwh: float = PAPER_CARBON_KG_PER_KWH,
) -> float:
    """CO2 of a run by equation 1 of Chaudhary et al. (2020), in kg CO2eq.

    ``CO2 = power_kw x duration in hours x carbon_kg_per_kwh`` ("TopicBERT for Energy Efficient Document
    Classification", Findings of EMNLP 2020, §1, eq. 1, after Lacoste et al. 2019's ML CO2 Impact
    calculator). The paper takes 0.07 kW for an NVIDIA Tesla T4 and 0.61 kg CO2eq/kWh for the grid, and
    prints eq. 1 with a factor 1000 to give grams; we return kilograms (our unit, STYLE §3), so Table 3's
    gram figures are ours x 1000. The paper applies eq. 1 to fine-tuning time T = T_epoch x 15 epochs.

    This is a formula, not a measurement: it ignores the hardware actually used. Measured figures are
    ``energy_kwh`` / ``emissions_kg_co2eq`` from codecarbon.

    Parameters
    ----------
    duration_s : float
        Run time in seconds, >= 0.
    power_kw : float, default 0.07
        Assumed constant power draw in kW, >= 0.
    carbon_kg_per_kwh : float, default 0.61
        Carbon intensity of the grid in kg CO2eq per kWh, >= 0.

    Returns
    -------
    float
        Emissions in kg CO2eq. For 3600 s with the defaults: 0.07 x 1 x 0.61 = 0.0427 kg.

    Raises
    ------
    ConfigError
        If any argument is negative, NaN or infinite.
    """
    for name, value in (("duration_s", duration_s), ("power_kw", power_kw),
                        ("carbon_kg_per_kwh", carbon_kg_per_kwh)):
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"paper_emissions_kg_co2eq: {name} must be a finite number >= 0, got {value!r}")
    return float(power_kw) * (float(duration_s) / 3600.0) * float(carbon_kg_per_kwh)


@dataclass(frozen=True)
class EnergyMeasurement:
    """The energy figures of one tracked block.

    Attributes
    ----------
    energy_kwh : float or None
        Energy of CPU + GPU + RAM in kWh (codecarbon's ``energy_consumed``); ``None`` if not measured.
    emissions_kg_co2eq : float or None
        ``energy_kwh`` x the grid's carbon intensity, in kg CO2eq; ``None`` if not measured.
    energy_source : str or None
        What codecarbon measured with, in words (see :func:`describe_energy_source`).
    energy_error : str or None
        Why ``energy_kwh`` is ``None``; ``None`` when it was measured.
    """

    energy_kwh: float | None
    emissions_kg_co2eq: float | None
    energy_source: str | None
    energy_error: str | None

    @classmethod
    def missing(cls, reason: str, energy_source: str | None = None) -> EnergyMeasurement:
        """Build a measurement that did not happen, with the reason."""
        return cls(None, None, energy_source, reason)


def local_rank() -> int | None:
    """Return this process's local rank from the launcher's ``LOCAL_RANK`` variable.

    ``None`` outside torchrun / accelerate (variable unset or empty).

    Raises
    ------
    ConfigError
        If ``LOCAL_RANK`` is set but is not an integer.
    """
    value = os.environ.get("LOCAL_RANK")
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable LOCAL_RANK={value!r} is not an integer; "
                          "unset it or let torchrun/accelerate set it") from None


def is_local_rank_zero() -> bool:
    """Tell whether this process runs the energy tracker: single-process runs and local rank 0.

    Only this process runs a tracker: codecarbon measures the whole machine, so one tracker per machine
    covers all its ranks (as transformers' ``CodeCarbonCallback`` does with ``state.is_local_process_zero``).
    """
    rank = local_rank()
    return rank is None or rank == 0


def codecarbon_version() -> str | None:
    """Return the installed codecarbon version, or ``None`` if it cannot be imported."""
    try:
        import codecarbon
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        return None
    return str(getattr(codecarbon, "__version__", "unknown"))


def create_offline_tracker(
    country_iso_code: str = "USA",
    measure_power_secs: float = 15.0,
    tracking_mode: str = "machine",
) -> Any:
    """Build a codecarbon ``OfflineEmissionsTracker`` that writes no file and takes no machine-wide lock.

    Choices (codecarbon 3.3, ``codecarbon/emissions_tracker.py``):

    * ``output_methods=[]``: no ``emissions.csv`` (the default would write one into the current
      directory); ``output_methods`` replaces the deprecated ``save_to_file=False`` in codecarbon 3.
    * ``output_dir`` = the system temp directory, in case a backend (Intel Power Gadget) logs to a file.
    * ``allow_multiple_runs=True`` (codecarbon 3's default, passed explicitly so that a config file cannot
      turn it off): otherwise codecarbon creates ``/tmp/.codecarbon.lock``, installs its own SIGINT/SIGTERM
      handlers, and a second tracker on the machine (another test, another engineer) silently measures
      nothing. We keep one tracker per machine ourselves (:func:`is_local_rank_zero`).
    * ``log_level="error"``: quiet; the codecarbon logger is set to ERROR before construction too, since
      the constructor logs before it applies ``log_level``.
    * ``emissions_endpoint=None``: never send data over the network, whatever a config file says.

    Parameters
    ----------
    country_iso_code : str, default "USA"
        3-letter ISO code of the grid whose carbon intensity is used.
    measure_power_secs : float, default 15.0
        Seconds between codecarbon's power readings.
    tracking_mode : {"machine", "process"}, default "machine"
        codecarbon's mode: the whole machine, or this process and its children.

    Returns
    -------
    codecarbon.OfflineEmissionsTracker
        Not started.

    Raises
    ------
    ImportError
        If codecarbon is not installed.
    """
    from codecarbon import OfflineEmissionsTracker

    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    return OfflineEmissionsTracker(
        country_iso_code=country_iso_code,
        measure_power_secs=measure_power_secs,
        tracking_mode=tracking_mode,
        log_level="error",
        output_methods=[],
        output_dir=tempfile.gettempdir(),
        allow_multiple_runs=True,
        emissions_endpoint=None,
    )


def _fmt_w(value: Any) -> str:
    try:
        return f"{float(value):g} W"
    except (TypeError, ValueError):
        return "? W"


def describe_energy_source(tracker: Any, country_iso_code: str | None = None) -> str:
    """Say in words what a started codecarbon tracker measures with.

    Reads the tracker's hardware objects (``tracker._hardware``, set up by ``start()``): a CPU in mode
    ``intel_rapl`` reads RAPL energy counters; modes ``cpu_load`` and ``constant`` only estimate from a
    TDP (codecarbon's ``resource_tracker.py`` falls back to them when there is no RAPL). RAM is always a
    constant estimate from its size unless RAPL DRAM is included. These are private attributes of
    codecarbon 3.3; anything unrecognised is reported as such rather than guessed.

    Parameters
    ----------
    tracker : codecarbon tracker
        A started tracker.
    country_iso_code : str, optional
        Grid used for the carbon intensity, added to the text.

    Returns
    -------
    str
        For example ``"codecarbon 3.3.2 offline (grid: USA, machine-wide), CPU: TDP estimate (no RAPL;
        cpu_load mode: 8 W TDP scaled by CPU load), RAM: constant estimate (20 W)"``.
    """
    version = codecarbon_version() or "unknown"
    where = []
    if country_iso_code:
        where.append(f"grid: {country_iso_code}")
    mode = getattr(tracker, "_tracking_mode", None)
    if isinstance(mode, str):
        where.append("machine-wide" if mode == "machine" else f"{mode} mode")
    head = f"codecarbon {version} offline" + (f" ({', '.join(where)})" if where else "")
    hardware = getattr(tracker, "_hardware", None)
    if not isinstance(hardware, list | tuple) or not hardware:
        return f"{head}, hardware not reported by codecarbon"
    parts = []
    order = {"CPU": 0, "AppleSiliconChip": 0, "Raspberry": 0, "GPU": 1, "RAM": 2}
    for item in sorted(hardware, key=lambda item: order.get(type(item).__name__, 3)):
        kind = type(item).__name__
        if kind == "CPU":
            cpu_mode = getattr(item, "_mode", None)
            tdp = getattr(item, "_tdp", None)
            generic = " generic" if getattr(item, "_is_generic_tdp", False) else ""
            if cpu_mode in _CPU_MODES:
                parts.append(f"CPU: {_CPU_MODES[cpu_mode]}")
            elif cpu_mode == "cpu_load":
                parts.append(f"CPU: TDP estimate (no RAPL; cpu_load mode: {_fmt_w(tdp)}{generic} TDP "
                             "scaled by CPU load)")
            elif cpu_mode == "constant":
                parts.append(f"CPU: TDP estimate (no RAPL; constant {_fmt_w(tdp)}{generic})")
            else:
                parts.append(f"CPU: codecarbon mode {cpu_mode!r}")
        elif kind == "RAM":
            forced = getattr(item, "_force_ram_power", None)
            if forced is not None:
                parts.append(f"RAM: constant given by the user ({_fmt_w(forced)})")
            else:
                try:
                    watts = item.total_power().W
                except Exception:  # noqa: BLE001 - a description must not fail the run
                    watts = None
                parts.append("RAM: constant estimate" + (f" ({_fmt_w(watts)})" if watts is not None else ""))
        elif kind == "GPU":
            parts.append("GPU: driver energy/power readings (NVML or AMD SMI)")
        elif kind == "AppleSiliconChip":
            parts.append(f"{getattr(item, 'chip_part', 'Apple chip')}: powermetrics readings")
        elif kind == "Raspberry":
            parts.append("Raspberry Pi PMIC readings")
        else:
            describe = getattr(item, "description", None)
            parts.append(f"{kind}: {describe() if callable(describe) else kind}")
    return ", ".join([head, *parts])


class EnergySession:
    """One codecarbon measurement: :meth:`start`, run the work, :meth:`stop`.

    Neither method raises on a codecarbon failure: the failure becomes ``energy_error`` in the returned
    :class:`EnergyMeasurement` (STYLE §5: a reason, never a 0). Use in ``try/finally`` so that the
    tracker's threads stop even when the work raises (codecarbon ``docs/edit/usage.rst``).

    Parameters
    ----------
    country_iso_code : str, default "USA"
    measure_power_secs : float, default 15.0
    tracking_mode : {"machine", "process"}, default "machine"
        Passed to :func:`create_offline_tracker`.
    tracker_factory : callable, optional
        Builds the tracker from the three arguments above; defaults to :func:`create_offline_tracker`
        (looked up when :meth:`start` runs, so tests may replace it).
    """

    def __init__(
        self,
        country_iso_code: str = "USA",
        measure_power_secs: float = 15.0,
        tracking_mode: str = "machine",
        tracker_factory: Any = None,
    ) -> None:
        self.country_iso_code = country_iso_code
        self.measure_power_secs = measure_power_secs
        self.tracking_mode = tracking_mode
        self.tracker_factory = tracker_factory
        self._tracker: Any = None
        self._source: str | None = None
        self._error: str | None = None

    def start(self) -> None:
        """Build and start the tracker; remember the reason if that fails."""
        factory = self.tracker_factory or create_offline_tracker
        try:
            tracker = factory(self.country_iso_code, self.measure_power_secs, self.tracking_mode)
        except ImportError as err:
            self._error = f"codecarbon is not importable ({err}); install codecarbon to measure energy"
            return
        except Exception as err:  # noqa: BLE001 - any tracker failure becomes a recorded reason
            self._error = f"codecarbon tracker could not be created: {type(err).__name__}: {err}"
            return
        if getattr(tracker, "_another_instance_already_running", False):
            self._error = "codecarbon refused to start: another codecarbon instance holds its lock file"
            return
        try:
            tracker.start()
        except Exception as err:  # noqa: BLE001
            self._error = f"codecarbon tracker.start() failed: {type(err).__name__}: {err}"
            self._stop_quietly(tracker)
            return
        if getattr(tracker, "_start_time", 0.0) is None:  # start() swallowed an exception
            self._error = ("codecarbon tracker.start() did not start (codecarbon suppressed an error; "
                           "set CODECARBON_LOG_LEVEL=debug to see it)")
            return
        self._tracker = tracker
        try:
            self._source = describe_energy_source(tracker, self.country_iso_code)
        except Exception as err:  # noqa: BLE001
            self._source = f"codecarbon {codecarbon_version()} offline (hardware description failed: {err})"

    @staticmethod
    def _stop_quietly(tracker: Any) -> None:
        try:
            tracker.stop()
        except Exception:  # noqa: BLE001 - already failing; only release threads
            pass

    def stop(self) -> EnergyMeasurement:
        """Stop the tracker and return what it measured, or ``None`` figures with the reason.

        Returns
        -------
        EnergyMeasurement
        """
        if self._tracker is None:
            reason = self._error or "codecarbon tracker was not started"
            return EnergyMeasurement.missing(reason, self._source)
        tracker, self._tracker = self._tracker, None
        _take_last_reading(tracker)
        try:
            emissions = tracker.stop()
        except Exception as err:  # noqa: BLE001
            return EnergyMeasurement.missing(
                f"codecarbon tracker.stop() failed: {type(err).__name__}: {err}", self._source)
        data = getattr(tracker, "final_emissions_data", None)
        if emissions is None or data is None:
            return EnergyMeasurement.missing(
                "codecarbon tracker.stop() returned None (codecarbon suppresses its own exceptions; "
                "set CODECARBON_LOG_LEVEL=debug to see the cause)", self._source)
        energy = getattr(data, "energy_consumed", None)
        if not _is_number(energy) or not math.isfinite(energy) or energy < 0:
            return EnergyMeasurement.missing(
                f"codecarbon reported energy_consumed={energy!r}, not a finite number >= 0", self._source)
        if energy == 0:
            duration = getattr(data, "duration", None)
            return EnergyMeasurement.missing(
                f"codecarbon reported 0 kWh over {duration!r} s: no power reading was taken", self._source)
        if not _is_number(emissions) or not math.isfinite(emissions) or emissions < 0:
            return EnergyMeasurement(float(energy), None, self._source,
                                     f"codecarbon reported emissions={emissions!r}, not a finite number >= 0")
        return EnergyMeasurement(float(energy), float(emissions), self._source, None)


_CODECARBON_STALE_S = 0.05


def _take_last_reading(tracker: Any) -> None:
    """Make sure the last moments of a block are measured.

    codecarbon 3.3's ``stop()`` takes a final reading only if the previous one is at least 0.05 s old
    (``_measure_power_and_energy_if_stale``). ``start()`` takes a reading, so a block shorter than 0.05 s
    would come out as almost 0 kWh (checked: a 0.02 s block gave 2e-9 kWh instead of ~1e-7 kWh at 21 W).
    We take that reading ourselves with the tracker's own (private) method; stop() then skips it.
    """
    last = getattr(tracker, "_last_measured_time", None)
    measure = getattr(tracker, "_measure_power_and_energy", None)
    if isinstance(last, float) and callable(measure) and time.perf_counter() - last < _CODECARBON_STALE_S:
        try:
            measure()
        except Exception:  # noqa: BLE001 - stop() still runs and reports what it has
            pass


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
