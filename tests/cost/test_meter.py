"""CostMeter: fields, units and missing values (None with a reason, never 0); TopicBERT eq. 1."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from frugaltext.cost import energy as energy_module
from frugaltext.cost.energy import create_offline_tracker, describe_energy_source
from frugaltext.cost.meter import CostMeter, CostSettings, paper_emissions_kg_co2eq
from frugaltext.errors import ConfigError, CostMeasurementError

FAST = dict(latency_n_docs=4, throughput_n_docs=8, throughput_batch_size=4, flops_n_docs=2,
            min_throughput_duration_s=0.0)
TEXTS = ["oil prices rise", "wheat exports fall", "bank rate cut"]

AS_DICT_KEYS = {
    "train_duration_s", "train_duration_restored_s", "epoch_duration_s", "epoch_durations_s", "n_epochs",
    "train_energy_kwh", "train_emissions_kg_co2eq", "energy_source", "energy_error",
    "paper_emissions_kg_co2eq", "paper_power_kw", "paper_carbon_kg_per_kwh", "latency_ms",
    "latency_batch_size", "throughput_docs_per_s", "throughput_batch_size", "inference_energy_kwh_per_doc",
    "n_params", "flops", "flops_train_step", "peak_memory_mb", "peak_memory_scope",
}
INFERENCE_KEYS = {"inference_duration_s", "inference_energy_kwh", "inference_emissions_kg_co2eq"}


class FakeMethod:
    """predict_proba / n_params / flops_per_document, recording every call."""

    def __init__(self, n_rows_offset: int = 0, flops: object = None) -> None:
        self.calls: list[tuple[list[str], int]] = []
        self.n_rows_offset = n_rows_offset
        self.flops = flops if flops is not None else {"flops": 2.0e6, "flops_train_step": 6.0e6}
        self.flops_texts: list[str] | None = None

    def predict_proba(self, texts, batch_size=32):
        self.calls.append((list(texts), batch_size))
        time.sleep(0.001)
        return np.full((len(texts) + self.n_rows_offset, 3), 1 / 3, dtype=np.float32)

    def n_params(self) -> int:
        return 1234

    def flops_per_document(self, texts):
        self.flops_texts = list(texts)
        return self.flops


class FakeTracker:
    """Stands in for codecarbon's OfflineEmissionsTracker."""

    def __init__(self, energy_kwh=2.0e-6, emissions_kg=1.0e-6, stop_returns_none=False):
        self.energy_kwh, self.emissions_kg = energy_kwh, emissions_kg
        self.stop_returns_none = stop_returns_none
        self.started = self.stopped = False

    def start(self):
        self.started = True

    def stop(self):
        self.stopped = True
        if self.stop_returns_none:
            return None
        self.final_emissions_data = SimpleNamespace(energy_consumed=self.energy_kwh,
                                                    emissions=self.emissions_kg, duration=0.01)
        return self.emissions_kg


def _factory(trackers: list[FakeTracker], **kwargs):
    def factory(country_iso_code, measure_power_secs, tracking_mode):
        trackers.append(FakeTracker(**kwargs))
        return trackers[-1]
    return factory


@pytest.fixture(autouse=True)
def _single_process(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)


# ---- equation 1 --------------------------------------------------------------------------------------
def test_paper_equation_one_by_hand():
    assert paper_emissions_kg_co2eq(3600) == pytest.approx(0.07 * 1 * 0.61)  # 0.0427 kg
    assert paper_emissions_kg_co2eq(3600) == pytest.approx(0.0427)
    assert paper_emissions_kg_co2eq(0) == 0.0
    assert paper_emissions_kg_co2eq(1800, power_kw=0.3, carbon_kg_per_kwh=0.05) == pytest.approx(0.0075)
    # Supplementary A.1: 12 h of fine-tuning on the T4 -> 0.07 x 12 x 0.61 kg
    assert paper_emissions_kg_co2eq(12 * 3600) == pytest.approx(0.5124)
    with pytest.raises(ConfigError, match="duration_s must be a finite number >= 0"):
        paper_emissions_kg_co2eq(-1.0)


# ---- settings ----------------------------------------------------------------------------------------
def test_settings_defaults_and_validation():
    s = CostSettings()
    assert (s.measure_energy, s.country_iso_code) == (True, "USA")
    assert (s.paper_power_kw, s.paper_carbon_kg_per_kwh) == (0.07, 0.61)
    assert (s.latency_batch_size, s.latency_n_docs, s.throughput_batch_size, s.throughput_n_docs,
            s.flops_n_docs, s.warmup_batches) == (1, 32, 32, 256, 8, 1)
    with pytest.raises(ConfigError, match="latency_n_docs must be an integer >= 1, got 0"):
        CostSettings(latency_n_docs=0)
    with pytest.raises(ConfigError, match="3-letter ISO code"):
        CostSettings(country_iso_code="US")
    with pytest.raises(ConfigError, match="warmup_batches"):
        CostSettings(warmup_batches=-1)


# ---- measure_energy=False: every field present, energy None not 0 --------------------------------------
def test_fields_and_units_without_energy():
    meter = CostMeter(CostSettings(measure_energy=False, **FAST))
    method = FakeMethod()
    with meter.track("train"):
        meter.record_epoch(0.5)
        meter.record_epoch(1.5)
        time.sleep(0.01)
    inference = meter.measure_inference(method, TEXTS)
    model = meter.measure_model(method, TEXTS)
    row = meter.as_dict()

    assert set(row) == AS_DICT_KEYS | INFERENCE_KEYS
    json.dumps(row)
    for key in ("train_energy_kwh", "train_emissions_kg_co2eq", "inference_energy_kwh_per_doc",
                "inference_energy_kwh", "inference_emissions_kg_co2eq", "energy_source"):
        assert row[key] is None, key
    assert "measure_energy=False" in row["energy_error"]
    assert row["train_duration_s"] >= 0.01
    assert row["epoch_durations_s"] == [0.5, 1.5]
    assert row["epoch_duration_s"] == 1.0
    assert row["n_epochs"] == 2
    assert row["paper_emissions_kg_co2eq"] == pytest.approx(0.07 * row["train_duration_s"] / 3600 * 0.61)
    assert (row["paper_power_kw"], row["paper_carbon_kg_per_kwh"]) == (0.07, 0.61)
    assert row["latency_ms"] >= 1.0  # each one-document call sleeps 1 ms
    assert row["latency_batch_size"] == 1
    assert row["throughput_batch_size"] == 4
    assert 0 < row["throughput_docs_per_s"] < 8 / 0.001
    assert row["inference_duration_s"] == pytest.approx(8 / row["throughput_docs_per_s"])
    assert (row["n_params"], row["flops"], row["flops_train_step"]) == (1234, 2.0e6, 6.0e6)
    assert 1 < row["peak_memory_mb"] < 1e6
    assert inference == {k: row[k] for k in inference}
    assert model == {"n_params": 1234, "flops": 2.0e6, "flops_train_step": 6.0e6}


def test_inference_passes_use_the_stated_batch_sizes_and_cycle_short_inputs():
    meter = CostMeter(CostSettings(measure_energy=False, **FAST))
    method = FakeMethod()
    meter.measure_inference(method, TEXTS)
    sizes = [(len(texts), batch_size) for texts, batch_size in method.calls]
    # warm-up (1 doc), 4 timed single documents, warm-up batch (4 docs), one throughput call of 8 at batch 4
    assert sizes == [(1, 1)] + [(1, 1)] * 4 + [(4, 4), (8, 4)]
    assert method.calls[-1][0] == [TEXTS[i % 3] for i in range(8)]
    meter.measure_model(method, TEXTS)
    assert method.flops_texts == TEXTS[:2]


def test_missing_measurements_are_none():
    row = CostMeter(CostSettings(measure_energy=False)).as_dict()
    assert set(row) == AS_DICT_KEYS
    for key in AS_DICT_KEYS - {"epoch_durations_s", "n_epochs", "paper_power_kw", "paper_carbon_kg_per_kwh",
                               "peak_memory_mb", "peak_memory_scope", "train_duration_restored_s"}:
        assert row[key] is None, key
    assert (row["epoch_durations_s"], row["n_epochs"], row["train_duration_restored_s"]) == ([], 0, 0.0)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc/self/clear_refs")
def test_peak_memory_is_per_meter_not_process_wide():
    import numpy as np

    big = np.ones(300 * 2**20 // 8)  # 300 MB touched
    big_peak = CostMeter(CostSettings(measure_energy=False)).as_dict()["peak_memory_mb"]
    del big
    row = CostMeter(CostSettings(measure_energy=False)).as_dict()  # a new run: the peak starts afresh
    assert row["peak_memory_scope"] == "run"
    assert row["peak_memory_mb"] < big_peak - 200


# ---- energy through a fake tracker ---------------------------------------------------------------------
def test_fake_tracker_energy_adds_up_and_is_divided_per_document():
    trackers: list[FakeTracker] = []
    meter = CostMeter(CostSettings(**FAST), tracker_factory=_factory(trackers))
    with meter.track("train"):
        pass
    with meter.track("train"):  # a second block of the same phase adds up
        pass
    meter.measure_inference(FakeMethod(), TEXTS)
    row = meter.as_dict()
    assert len(trackers) == 3 and all(t.started and t.stopped for t in trackers)
    assert row["train_energy_kwh"] == pytest.approx(4.0e-6)
    assert row["train_emissions_kg_co2eq"] == pytest.approx(2.0e-6)
    assert row["inference_energy_kwh"] == pytest.approx(2.0e-6)
    assert row["inference_energy_kwh_per_doc"] == pytest.approx(2.0e-6 / 8)
    assert row["energy_error"] is None
    assert row["energy_source"].startswith("codecarbon ")


def test_restored_training_time_is_added_and_the_energy_with_a_hole_is_none():
    trackers: list[FakeTracker] = []
    meter = CostMeter(CostSettings(**FAST), tracker_factory=_factory(trackers))
    with meter.track("train"):
        meter.record_restored_training(100.0)  # what a resumed Trainer does (EpochTimerCallback.restore)
    row = meter.as_dict()
    assert row["train_duration_restored_s"] == 100.0
    assert 100.0 < row["train_duration_s"] < 101.0
    assert row["paper_emissions_kg_co2eq"] == pytest.approx(paper_emissions_kg_co2eq(
        row["train_duration_s"], row["paper_power_kw"], row["paper_carbon_kg_per_kwh"]))
    # the 100 s before the resume have no energy measurement: no total, the measured part kept apart
    assert row["train_energy_kwh"] is None and row["train_emissions_kg_co2eq"] is None
    assert row["train_energy_kwh_after_resume"] == pytest.approx(2.0e-6)
    assert "the 100.0 s trained before the resume" in row["energy_error"]

    fresh = CostMeter(CostSettings(**FAST), tracker_factory=_factory(trackers))
    with fresh.track("train"):
        pass
    row = fresh.as_dict()
    assert row["train_duration_restored_s"] == 0.0 and "train_energy_kwh_after_resume" not in row
    assert row["train_energy_kwh"] == pytest.approx(2.0e-6) and row["energy_error"] is None


def test_throughput_pass_repeats_until_the_minimum_duration():
    trackers: list[FakeTracker] = []
    settings = CostSettings(**{**FAST, "min_throughput_duration_s": 0.03})
    meter = CostMeter(settings, tracker_factory=_factory(trackers))
    method = FakeMethod()
    meter.measure_inference(method, TEXTS)
    row = meter.as_dict()
    passes = [texts for texts, batch_size in method.calls if len(texts) == 8]
    assert len(passes) >= 2  # each call sleeps >= 1 ms, so 0.03 s needs several passes
    assert row["inference_duration_s"] >= 0.03
    assert row["throughput_docs_per_s"] == pytest.approx(8 * len(passes) / row["inference_duration_s"])
    assert row["inference_energy_kwh_per_doc"] == pytest.approx(2.0e-6 / (8 * len(passes)))


def test_tracker_returning_none_gives_none_and_a_reason():
    trackers: list[FakeTracker] = []
    meter = CostMeter(CostSettings(**FAST), tracker_factory=_factory(trackers, stop_returns_none=True))
    with meter.track("train"):
        pass
    row = meter.as_dict()
    assert trackers[0].stopped
    assert row["train_energy_kwh"] is None and row["train_emissions_kg_co2eq"] is None
    assert row["energy_error"].startswith("train: codecarbon tracker.stop() returned None")
    assert row["train_duration_s"] is not None


def test_zero_energy_is_recorded_as_none():
    meter = CostMeter(CostSettings(**FAST), tracker_factory=_factory([], energy_kwh=0.0, emissions_kg=0.0))
    with meter.track("train"):
        pass
    row = meter.as_dict()
    assert row["train_energy_kwh"] is None
    assert "reported 0 kWh" in row["energy_error"]


def test_one_unmeasured_block_makes_the_phase_total_none():
    results = iter([FakeTracker(), FakeTracker(stop_returns_none=True)])
    meter = CostMeter(CostSettings(**FAST), tracker_factory=lambda *args: next(results))
    for _ in range(2):
        with meter.track("train"):
            pass
    assert meter.as_dict()["train_energy_kwh"] is None


def test_tracker_that_cannot_be_created_gives_a_reason():
    def broken(*args):
        raise RuntimeError("no hardware")

    meter = CostMeter(CostSettings(**FAST), tracker_factory=broken)
    with meter.track("train"):
        pass
    expected = "train: codecarbon tracker could not be created: RuntimeError: no hardware"
    assert meter.as_dict()["energy_error"] == expected


def test_tracker_is_stopped_and_time_recorded_when_the_block_raises():
    trackers: list[FakeTracker] = []
    meter = CostMeter(CostSettings(**FAST), tracker_factory=_factory(trackers))
    with pytest.raises(KeyError), meter.track("train"):
        raise KeyError("boom")
    assert trackers[0].stopped
    assert meter.as_dict()["train_duration_s"] >= 0


def test_only_local_rank_zero_tracks_energy(monkeypatch):
    trackers: list[FakeTracker] = []
    monkeypatch.setenv("LOCAL_RANK", "1")
    meter = CostMeter(CostSettings(**FAST), tracker_factory=_factory(trackers))
    with meter.track("train"):
        pass
    assert trackers == []
    row = meter.as_dict()
    assert row["train_energy_kwh"] is None
    assert "local rank 1" in row["energy_error"]
    monkeypatch.setenv("LOCAL_RANK", "0")
    with meter.track("inference"):
        pass
    assert len(trackers) == 1
    monkeypatch.setenv("LOCAL_RANK", "x")
    with pytest.raises(ConfigError, match="LOCAL_RANK='x' is not an integer"):
        with meter.track("train"):
            pass


def test_default_factory_is_looked_up_at_start(monkeypatch):
    trackers: list[FakeTracker] = []
    monkeypatch.setattr(energy_module, "create_offline_tracker", _factory(trackers))
    meter = CostMeter(CostSettings(**FAST))
    with meter.track("train"):
        pass
    assert len(trackers) == 1
    assert meter.as_dict()["train_energy_kwh"] == pytest.approx(2.0e-6)


# ---- input errors ---------------------------------------------------------------------------------------
def test_bad_inputs_raise():
    meter = CostMeter(CostSettings(measure_energy=False, **FAST))
    with pytest.raises(CostMeasurementError, match="duration_s must be a finite number >= 0, got -1.0"):
        meter.record_epoch(-1)
    with pytest.raises(CostMeasurementError, match="duration_s must be a finite number >= 0, got nan"):
        meter.record_restored_training(float("nan"))
    with pytest.raises(ConfigError, match="phase must be a lower-case identifier"):
        with meter.track("Train time"):
            pass
    with pytest.raises(ConfigError, match="texts is empty"):
        meter.measure_inference(FakeMethod(), [])
    with pytest.raises(CostMeasurementError, match="predict_proba returned 2 rows for 1 documents"):
        meter.measure_inference(FakeMethod(n_rows_offset=1), TEXTS)
    with pytest.raises(CostMeasurementError, match="must return a dict with keys 'flops'"):
        meter.measure_model(FakeMethod(flops=[1.0]), TEXTS)
    with pytest.raises(ConfigError, match="needs a CostSettings"):
        CostMeter(settings={"measure_energy": False})


# ---- real codecarbon ------------------------------------------------------------------------------------
def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(range(1000))


def test_real_codecarbon_two_sequential_tracks_and_two_meters(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    meter = CostMeter(CostSettings(**FAST))
    with meter.track("train"):
        _busy(0.1)
    with meter.track("inference"):
        _busy(0.05)
    second = CostMeter(CostSettings(**FAST))
    with second.track("train"):
        _busy(0.05)
    first_row, second_row = meter.as_dict(), second.as_dict()
    for row in (first_row, second_row):
        energy = row["train_energy_kwh"]
        assert (energy is not None and 0 < energy < 1e-2) or (energy is None and row["energy_error"])
        assert row["energy_source"].startswith("codecarbon ")
        assert "CPU: " in row["energy_source"] and "RAM: " in row["energy_source"]
    if first_row["train_energy_kwh"] is not None:  # then the later trackers must work too (no lock clash)
        assert first_row["inference_energy_kwh"] > 0
        assert second_row["train_energy_kwh"] > 0
        assert first_row["energy_error"] is None and second_row["energy_error"] is None
    assert first_row["inference_duration_s"] >= 0.05
    assert list(tmp_path.iterdir()) == []  # no emissions.csv, no config or lock file in the working directory


def test_offline_tracker_is_built_without_file_output_or_lock():
    tracker = create_offline_tracker("FRA", 5.0, "machine")
    assert tracker._output_methods == []
    assert tracker._allow_multiple_runs is True
    assert tracker._measure_power_secs == 5.0
    assert tracker._country_iso_code == "FRA"
    assert describe_energy_source(SimpleNamespace()).endswith("hardware not reported by codecarbon")
