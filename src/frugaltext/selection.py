"""From a Pareto front to a decision: the cheapest model that keeps a share of a reference's macro-F1.

:func:`select` (``frugaltext select RUN_DIR``, and ``frugaltext compare --select`` at the end of a run)
reads ``RUN_DIR/results.json`` and decides in four steps:

1. **Aggregate.** The rows are grouped per method (a variant such as ``topicbert@p4`` is a method of its
   own) and every number is the *mean over the method's seeds* (:func:`frugaltext.reports.table.summarize`,
   the numbers of ``table.md``). A quantity missing in one seed's row is missing for the method: a mean over
   the seeds that happened to be measured would not compare.
2. **Constrain.** The reference is the method asked for (``reference="bert"``); with no reference asked, it is
   the method of highest mean macro-F1 (the best of the file). A reference asked for but absent from the
   file is an error listing the methods present: falling back silently would change what the percentage
   means; leave the reference out to ask for the best method. A method is *eligible* when its retention,
   ``mean macro-F1 / reference's mean macro-F1 x 100`` (Table 3's Rtn), is at least ``min_retention``. The
   reference itself keeps 100 %, so with ``min_retention <= 100`` there is always a pick unless the
   objective was not measured; above 100 asks for a method better than the reference, which may not exist
   (then :class:`NoCandidateError` gives the best retention reached and by which method).
3. **Optimise.** Among the eligible methods with the objective measured, the pick is the best by the
   objective (:data:`OBJECTIVES`): ``energy``, inference energy per 1,000 documents (kWh; lower is better),
   ``latency`` (``latency_ms``; lower), ``throughput`` (``throughput_docs_per_s``; higher) or ``train-time``
   (``train_duration_s``; lower). Ties (objective values equal to 9 significant digits, below any
   measurement's precision) go to the higher mean macro-F1, then the fewer parameters, then the method name
   in alphabetical order, so that the pick is deterministic. The next method in that order is the runner-up.
4. **Hand over.** The pick's model folder of the seed with the *median* macro-F1 among its seeds (the lower
   of the two middle seeds for an even count; equal scores go to the lower seed) is put into
   ``RUN_DIR/selected/`` with a ``README.md`` (why: constraint, objective, reference, the candidates table,
   the command) and a ``selection.json`` (the same facts for tools). The median seed, not the best one:
   the decision was made on means, and the best seed on the test split would be a chosen-on-test,
   optimistic model. ``RUN_DIR/selected`` loads like any saved model (``frugaltext predict --model
   RUN_DIR/selected``); a ``README.md`` or ``selection.json`` the model folder had itself is kept as
   ``README.model.md`` / ``selection.model.json``.

Files are hard-linked when the model folder is on the filesystem of ``RUN_DIR`` (no copy of the weights;
``selected/`` then shares the files of ``models/<method>-seed<k>/``, so do not edit them in place), else
copied; ``copy=True`` always copies. The folder is built in a temporary folder inside ``RUN_DIR`` and renamed
into place: readers never see a half-written selection, and an older ``selected/`` is replaced (renamed
away, then deleted; between the two renames ``selected/`` is briefly absent). When several processes select
into the same run, the last one wins.

Model folders are looked for at ``RUN_DIR/models/<folder name of the row's model_dir>`` first (the stored
``model_dir`` is relative to where ``compare`` ran, and a moved or copied run keeps its own models there),
then at ``RUN_DIR/models/<method>-seed<k>``, then at the stored ``model_dir`` itself. Rows whose folders are
missing still count in the means (their measurements stand) and are reported in
:attr:`Selection.missing_model_dirs`; when the pick's folder is missing, :func:`select` fails rather than copy
another seed or method than the one its README describes (``copy_model=False`` decides without copying).
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import shlex
import shutil
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from frugaltext.errors import ConfigError, DataFormatError, DataNotFoundError, ModelLoadError
from frugaltext.experiment.results import RESULTS_JSON, read_results

logger = logging.getLogger("frugaltext.select")

__all__ = [
    "DEFAULT_MIN_RETENTION",
    "DEFAULT_OBJECTIVE",
    "OBJECTIVES",
    "SELECTED_DIR",
    "SELECTION_JSON",
    "Candidate",
    "NoCandidateError",
    "Objective",
    "CANDIDATE_HEADERS",
    "Selection",
    "candidate_cells",
    "check_min_retention",
    "choose",
    "describe",
    "render_readme",
    "select",
]

#: Folder of a run that receives the chosen model, and the machine-readable record inside it.
SELECTED_DIR = "selected"
SELECTION_JSON = "selection.json"
README = "README.md"

DEFAULT_MIN_RETENTION = 99.0
DEFAULT_OBJECTIVE = "energy"

#: Significant digits to which objective values are compared: equal to this many digits is a tie.
TIE_DIGITS = 9


@dataclass(frozen=True)
class Objective:
    """A cost to optimise: the results-row field, a scale to its unit, and its direction.

    Attributes
    ----------
    name : str
        As given to ``--objective``.
    field : str
        Field of a results row (mean over seeds).
    scale : float
        Factor from the row's unit to :attr:`unit` (1000 for kWh per document -> kWh per 1,000 documents).
    unit : str
    higher_is_better : bool
    label : str
        What it is, in words.
    """

    name: str
    field: str
    scale: float
    unit: str
    higher_is_better: bool
    label: str

    def value(self, summary: Any) -> float | None:
        """The method's mean of :attr:`field` in :attr:`unit` (None when a seed lacks it or it is not
        finite)."""
        mean = summary.mean(self.field)
        if mean is None or not math.isfinite(mean):
            return None
        return mean * self.scale


#: The objectives of ``frugaltext select --objective``.
OBJECTIVES: dict[str, Objective] = {
    o.name: o
    for o in (
        Objective("energy", "inference_energy_kwh_per_doc", 1000.0, "kWh per 1,000 documents", False,
                  "inference energy"),
        Objective("latency", "latency_ms", 1.0, "ms per document", False, "latency"),
        Objective("throughput", "throughput_docs_per_s", 1.0, "documents/s", True, "throughput"),
        Objective("train-time", "train_duration_s", 1.0, "s", False, "training time T"),
    )
}


class NoCandidateError(ConfigError):
    """No method keeps the asked share of the reference's macro-F1 (with the objective measured).

    Attributes
    ----------
    best_method : str or None
        The method of highest retention.
    best_retention : float or None
        Its retention (%).
    """

    def __init__(self, message: str, best_method: str | None = None, best_retention: float | None = None):
        super().__init__(message)
        self.best_method = best_method
        self.best_retention = best_retention


@dataclass
class Candidate:
    """One method of the results, aggregated over its seeds, and where it stands in the selection.

    Attributes
    ----------
    method : str
    seeds : list of int
    macro_f1, macro_f1_std : float or None
        Mean and sample std over the seeds.
    retention_pct : float or None
        Mean macro-F1 / the reference's mean macro-F1 x 100.
    objective_value : float or None
        The objective's mean, in its unit.
    energy_kwh_per_1000_docs, latency_ms, throughput_docs_per_s, train_duration_s, n_params : float or None
        Means over the seeds (inference energy per 1,000 documents in kWh).
    eligible : bool
        Meets the constraint and has the objective measured.
    rank : int or None
        1 for the pick, 2 for the runner-up ... (None when not eligible).
    reason : str
        Why it is not eligible ("" when it is).
    """

    method: str
    seeds: list[int]
    macro_f1: float | None
    macro_f1_std: float | None
    retention_pct: float | None
    objective_value: float | None
    energy_kwh_per_1000_docs: float | None
    latency_ms: float | None
    throughput_docs_per_s: float | None
    train_duration_s: float | None
    n_params: float | None
    eligible: bool = False
    rank: int | None = None
    reason: str = ""


@dataclass
class Selection:
    """What :func:`select` decided and did.

    Attributes
    ----------
    run_dir : Path
    results_json : Path
    objective : Objective
    min_retention : float
        In percent.
    reference : str
        The method whose mean macro-F1 is 100 %.
    reference_source : {"asked", "best"}
        ``asked``: named by the caller; ``best``: none was asked, the method of highest mean macro-F1.
    requested_reference : str or None
    reference_macro_f1 : float
    threshold_macro_f1 : float
        ``reference_macro_f1 x min_retention / 100``.
    candidates : list of Candidate
        Every method: the eligible ones by rank, then the others by retention.
    selected : Candidate
    runner_up : Candidate or None
    seed : int
        Seed of the model folder handed over (median macro-F1 of the pick's seeds).
    seed_macro_f1 : float
    source_model_dir : Path or None
        The folder found for that seed (None when it is missing and nothing was copied).
    selected_dir : Path or None
        ``RUN_DIR/selected`` once written; None with ``copy_model=False``.
    transfer : {"hardlink", "copy"} or None
        How the files got there.
    missing_model_dirs : list of str
        ``<method>-seed<k>`` of rows whose model folder was not found.
    command : str
        A ``frugaltext select`` command that makes the same decision.
    created : str
        UTC time, ISO 8601.
    """

    run_dir: Path
    results_json: Path
    objective: Objective
    min_retention: float
    reference: str
    reference_source: str
    requested_reference: str | None
    reference_macro_f1: float
    threshold_macro_f1: float
    candidates: list[Candidate]
    selected: Candidate
    runner_up: Candidate | None
    seed: int
    seed_macro_f1: float
    source_model_dir: Path | None
    selected_dir: Path | None = None
    transfer: str | None = None
    missing_model_dirs: list[str] = field(default_factory=list)
    command: str = ""
    created: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The content of ``selection.json`` (plain JSON types)."""
        return {
            "selected": {
                "method": self.selected.method,
                "seed": self.seed,
                "seed_macro_f1": self.seed_macro_f1,
                "seed_rule": "median macro-F1 among the method's seeds (lower middle for an even count)",
                "source_model_dir": None if self.source_model_dir is None else str(self.source_model_dir),
                "selected_dir": None if self.selected_dir is None else str(self.selected_dir),
                "transfer": self.transfer,
                **_candidate_numbers(self.selected),
            },
            "runner_up": None if self.runner_up is None else _candidate_numbers(self.runner_up),
            "constraint": {
                "min_retention_pct": self.min_retention,
                "metric": "macro_f1",
                "threshold_macro_f1": self.threshold_macro_f1,
            },
            "objective": {
                "name": self.objective.name,
                "field": self.objective.field,
                "scale": self.objective.scale,
                "unit": self.objective.unit,
                "better": "higher" if self.objective.higher_is_better else "lower",
            },
            "reference": {
                "method": self.reference,
                "macro_f1": self.reference_macro_f1,
                "source": self.reference_source,
                "requested": self.requested_reference,
            },
            "aggregation": "mean over each method's seeds; a value missing in one seed is missing",
            "tie_break": (
                f"objective equal to {TIE_DIGITS} significant digits: higher mean macro-F1, then fewer "
                "parameters, then method name"
            ),
            "candidates": [_candidate_numbers(c) for c in self.candidates],
            "missing_model_dirs": list(self.missing_model_dirs),
            "run_dir": str(self.run_dir),
            "results_json": str(self.results_json),
            "command": self.command,
            "created": self.created,
            "frugaltext_version": _version(),
        }


def _candidate_numbers(c: Candidate) -> dict[str, Any]:
    out = asdict(c)
    out["n_seeds"] = len(c.seeds)
    return out


def _version() -> str:
    from frugaltext import __version__

    return __version__


def check_min_retention(value: Any, where: str = "select") -> float:
    """Check a minimum retention in percent and return it as a float.

    Valid: 0 (any model) or a finite number above 1; values above 100 ask for a model better than the
    reference (possible only with an explicit reference). A value in (0, 1] is refused as a likely fraction
    (0.99 for 99 %).

    Raises
    ------
    ConfigError
        For a bool, a non-number, NaN, infinity, a negative value or a value in (0, 1].
    """
    number = value
    if isinstance(number, str):
        try:
            number = float(number.strip())
        except ValueError:
            number = None
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number) \
            or number < 0:
        raise ConfigError(
            f"{where}: min_retention must be a percentage of the reference's macro-F1 (a finite number >= 0, "
            f"e.g. 99), got {value!r}"
        )
    if 0 < number <= 1:
        raise ConfigError(
            f"{where}: min_retention is in percent, got {value!r}, which reads as a fraction; write "
            f"{number * 100:g} for {number * 100:g} %"
        )
    return float(number)


def _check_inputs(min_retention: Any, objective: Any) -> tuple[float, Objective]:
    value = check_min_retention(min_retention)
    if not isinstance(objective, str) or objective not in OBJECTIVES:
        raise ConfigError(
            f"select: unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)} "
            "(energy = inference kWh per 1,000 documents, latency = ms per document, throughput = "
            "documents/s, train-time = training seconds)"
        )
    return value, OBJECTIVES[objective]


def _tie_key(value: float) -> float:
    """``value`` rounded to :data:`TIE_DIGITS` significant digits."""
    if value == 0:
        return 0.0
    return round(value, TIE_DIGITS - 1 - int(math.floor(math.log10(abs(value)))))


def choose(
    rows: Sequence[Mapping[str, Any]],
    min_retention: float = DEFAULT_MIN_RETENTION,
    objective: str = DEFAULT_OBJECTIVE,
    reference: str | None = None,
) -> tuple[list[Candidate], dict[str, Any]]:
    """The decision of :func:`select` on result rows, without touching any file.

    Parameters
    ----------
    rows : sequence of dict
        Rows of ``results.json`` (each with ``method``, ``seed``, ``macro_f1`` and the objective's field).
    min_retention : float, default 99
        Percent of the reference's mean macro-F1 a method must keep (:func:`check_min_retention`).
    objective : {"energy", "latency", "throughput", "train-time"}, default "energy"
    reference : str, optional
        Reference method; None takes the method of highest mean macro-F1.

    Returns
    -------
    candidates : list of Candidate
        Eligible methods by rank (``candidates[0]`` is the pick), then the others by falling retention.
    reference_info : dict
        ``method``, ``macro_f1``, ``source`` (``"asked"`` or ``"best"``), ``threshold_macro_f1``.

    Raises
    ------
    ConfigError
        A bad ``min_retention`` (:func:`check_min_retention`), an unknown objective, or a reference method
        with no rows (the message lists the methods present) or without macro-F1 in every seed.
    NoCandidateError
        No method meets the constraint with the objective measured; the message gives the best retention
        reached and by which method.
    DataFormatError
        No rows, or a row without ``method``/``seed``.
    """
    from frugaltext.reports.table import summarize

    min_retention, goal = _check_inputs(min_retention, objective)
    if not rows:
        raise DataFormatError("select: the results hold no rows; run `frugaltext compare` first")
    for i, row in enumerate(rows):
        missing = [k for k in ("method", "seed") if k not in row]
        if missing:
            raise DataFormatError(
                f"select: row {i + 1} lacks {', '.join(missing)}; every row needs method and seed"
            )
    summaries = summarize(rows)
    by_method = {s.method: s for s in summaries}
    scored = [s for s in summaries if s.mean("macro_f1") is not None]
    if reference is not None:
        if reference not in by_method:
            raise ConfigError(
                f"select: the reference method {reference!r} has no rows in these results; methods present: "
                f"{', '.join(by_method)}. Pass one of them with --reference, or leave --reference out to "
                "measure retention against the best method"
            )
        ref_f1 = by_method[reference].mean("macro_f1")
        if ref_f1 is None or ref_f1 <= 0:
            raise ConfigError(
                f"select: the reference method {reference!r} lacks a positive macro_f1 in some seed's row, "
                "so no retention can be computed; pass another --reference"
            )
        source = "asked"
    else:
        if not scored:
            raise DataFormatError("select: no method has macro_f1 in every seed's row; nothing to compare")
        best = min(scored, key=lambda s: (-(s.mean("macro_f1") or 0.0), s.method))
        reference, ref_f1, source = best.method, best.mean("macro_f1"), "best"
        if ref_f1 is None or ref_f1 <= 0:
            raise DataFormatError("select: the best method's macro_f1 is 0; nothing keeps a share of it")
    threshold = ref_f1 * min_retention / 100.0

    candidates = []
    for s in summaries:
        f1 = s.mean("macro_f1")
        rtn = None if f1 is None else f1 / ref_f1 * 100.0
        energy = s.mean("inference_energy_kwh_per_doc")
        c = Candidate(
            method=s.method,
            seeds=list(s.seeds),
            macro_f1=f1,
            macro_f1_std=s.std("macro_f1"),
            retention_pct=rtn,
            objective_value=goal.value(s),
            energy_kwh_per_1000_docs=None if energy is None else energy * 1000.0,
            latency_ms=s.mean("latency_ms"),
            throughput_docs_per_s=s.mean("throughput_docs_per_s"),
            train_duration_s=s.mean("train_duration_s"),
            n_params=s.mean("n_params"),
        )
        if rtn is None:
            c.reason = "macro-F1 missing in a seed"
        elif not _meets(rtn, min_retention):
            c.reason = f"retention below {min_retention:g} %"
        elif c.objective_value is None:
            c.reason = f"{goal.name} not measured in every seed"
        else:
            c.eligible = True
        candidates.append(c)

    def order(c: Candidate) -> tuple[Any, ...]:
        value = _tie_key(c.objective_value or 0.0)
        return (
            -value if goal.higher_is_better else value,
            -(c.macro_f1 or 0.0),
            math.inf if c.n_params is None else c.n_params,
            c.method,
        )

    eligible = sorted((c for c in candidates if c.eligible), key=order)
    for rank, c in enumerate(eligible, start=1):
        c.rank = rank
    others = sorted(
        (c for c in candidates if not c.eligible),
        key=lambda c: (c.retention_pct is None, -(c.retention_pct or 0.0), c.method),
    )
    info = {"method": reference, "macro_f1": ref_f1, "source": source, "threshold_macro_f1": threshold}
    if not eligible:
        best = others[0] if others and others[0].retention_pct is not None else None
        meeting = [c.method for c in others if _meets(c.retention_pct, min_retention)]
        message = (
            f"no method keeps {min_retention:g} % of {reference}'s mean macro-F1 ({ref_f1:.3f}"
            f"{', the best in the file' if source == 'best' else ''})"
        )
        if meeting:
            verbs = "meets the constraint but lacks" if len(meeting) == 1 else "meet the constraint but lack"
            message += (
                f" with {goal.name} measured: {', '.join(meeting)} {verbs} {goal.field} in some seed's row; "
                "choose another --objective"
            )
        elif best is not None:
            message += (
                f": the best retention is {best.retention_pct:.1f} % ({best.method}, macro-F1 "
                f"{best.macro_f1:.3f}); lower --min-retention to "
                f"{math.floor(best.retention_pct * 10) / 10:g} or below"
            )
        raise NoCandidateError(
            "select: " + message,
            best_method=None if best is None else best.method,
            best_retention=None if best is None else best.retention_pct,
        )
    return [*eligible, *others], info


def _meets(retention_pct: float | None, min_retention: float) -> bool:
    """Retention at least ``min_retention`` (compared to 9 decimals, so that float noise does not decide)."""
    return retention_pct is not None and round(retention_pct, 9) >= min_retention


def _median_seed_row(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The row of median macro-F1 (lower middle for an even count; equal scores: lower seed first)."""
    ordered = sorted(rows, key=lambda r: (float(r["macro_f1"]), r["seed"]))
    return ordered[(len(ordered) - 1) // 2]


def _model_dir_options(run_dir: Path, row: Mapping[str, Any]) -> list[Path]:
    stored = row.get("model_dir")
    options = []
    if stored:
        options.append(run_dir / "models" / Path(str(stored)).name)
    options.append(run_dir / "models" / f"{row['method']}-seed{row['seed']}")
    if stored:
        options.append(Path(str(stored)))
    out: list[Path] = []
    for path in options:
        if path not in out:
            out.append(path)
    return out


def _find_model_dir(run_dir: Path, row: Mapping[str, Any]) -> Path | None:
    for path in _model_dir_options(run_dir, row):
        if path.is_dir():
            return path
    return None


def _results_path(run_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    path = Path(run_dir)
    if path.suffix.lower() == ".json" and not path.is_dir():
        return path.parent, path
    return path, path / RESULTS_JSON


def select(
    run_dir: str | os.PathLike[str],
    min_retention: float = DEFAULT_MIN_RETENTION,
    objective: str = DEFAULT_OBJECTIVE,
    reference: str | None = None,
    copy_model: bool = True,
    copy: bool = False,
    command: str | None = None,
) -> Selection:
    """Pick the cheapest method that keeps ``min_retention`` % of the reference's macro-F1, and hand over
    its model as ``RUN_DIR/selected/`` (see the module docstring for every rule).

    Parameters
    ----------
    run_dir : path
        Output folder of ``frugaltext compare`` (holding ``results.json``), or the ``results.json`` itself.
    min_retention : float, default 99
        Share of the reference's mean macro-F1 to keep, in percent: 0, or above 1 (a value in (0, 1] is
        refused as a likely fraction); above 100 asks for a model better than the reference.
    objective : {"energy", "latency", "throughput", "train-time"}, default "energy"
        ``energy``: mean inference energy per 1,000 documents (kWh, lower is better); ``latency``:
        ``latency_ms`` (lower); ``throughput``: ``throughput_docs_per_s`` (higher); ``train-time``:
        ``train_duration_s`` (lower).
    reference : str, optional
        Method whose mean macro-F1 is 100 %; None: the method of highest mean macro-F1.
    copy_model : bool, default True
        Write ``RUN_DIR/selected/``; False only decides.
    copy : bool, default False
        Copy the files even when they could be hard-linked.
    command : str, optional
        The command line to record in ``README.md`` and ``selection.json``; default: the ``frugaltext
        select`` command that makes the same decision.

    Returns
    -------
    Selection

    Raises
    ------
    DataNotFoundError
        No ``results.json``; or (``ModelLoadError``) the pick's model folder is missing or not a saved model.
    DataFormatError
        Malformed or empty ``results.json``.
    ConfigError
        Bad ``min_retention`` or ``objective``, a ``reference`` absent from the results.
    NoCandidateError
        Nothing meets the constraint (a :class:`ConfigError`).
    ModelLoadError
        The pick's model folder is missing or has no ``frugaltext_method.json``.
    """
    run_dir, results_json = _results_path(run_dir)
    if not results_json.is_file():
        raise DataNotFoundError(
            f"{results_json} does not exist; pass the output folder of `frugaltext compare` (it holds "
            "results.json)"
        )
    rows = read_results(results_json)
    candidates, info = choose(rows, min_retention=min_retention, objective=objective, reference=reference)
    min_retention, goal = _check_inputs(min_retention, objective)
    pick = candidates[0]
    runner_up = candidates[1] if len(candidates) > 1 and candidates[1].eligible else None
    pick_rows = [r for r in rows if str(r["method"]) == pick.method]
    seed_row = _median_seed_row(pick_rows)
    missing = [f"{r['method']}-seed{r['seed']}" for r in rows if _find_model_dir(run_dir, r) is None]
    source = _find_model_dir(run_dir, seed_row)
    if command is None:
        command = shlex.join(
            ["frugaltext", "select", str(run_dir), "--min-retention", f"{min_retention:g}", "--objective",
             goal.name, *(["--reference", reference] if reference is not None else []),
             *(["--copy"] if copy else [])]
        )
    selection = Selection(
        run_dir=run_dir,
        results_json=results_json,
        objective=goal,
        min_retention=min_retention,
        reference=info["method"],
        reference_source=info["source"],
        requested_reference=reference,
        reference_macro_f1=info["macro_f1"],
        threshold_macro_f1=info["threshold_macro_f1"],
        candidates=candidates,
        selected=pick,
        runner_up=runner_up,
        seed=seed_row["seed"],
        seed_macro_f1=float(seed_row["macro_f1"]),
        source_model_dir=source,
        missing_model_dirs=missing,
        command=command,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    if not copy_model:
        return selection
    if source is None:
        tried = ", ".join(str(p) for p in _model_dir_options(run_dir, seed_row))
        raise ModelLoadError(
            f"select: the pick is {pick.method}, whose median-macro-F1 seed {seed_row['seed']} has no model "
            f"folder (looked at {tried}); run `frugaltext compare` again for that method and seed, or decide "
            "without copying (`frugaltext select --no-copy`)"
        )
    from frugaltext.methods.base import METHOD_FILE

    if not (source / METHOD_FILE).is_file():
        raise ModelLoadError(
            f"select: {source} (the model of {pick.method}, seed {seed_row['seed']}) has no {METHOD_FILE}, "
            "so it is not a saved model; run `frugaltext compare` again for that method and seed"
        )
    selection.selected_dir = run_dir / SELECTED_DIR
    selection.transfer = _write_selected(selection, source, hardlink=not copy,
                                         inference=_reused_inference_settings(seed_row))
    logger.info(
        "select: %s (seed %d) %s into %s", pick.method, selection.seed,
        "hard-linked" if selection.transfer == "hardlink" else "copied", selection.selected_dir,
    )
    return selection


def _reused_inference_settings(row: Mapping[str, Any]) -> dict[str, Any]:
    """The inference-only settings of a row that predicts with another method's model (``bert@int8``, notes
    ``trained_by``), to be written into the selected copy of that model; empty for a row of its own model."""
    from frugaltext.fastpath import INFERENCE_ONLY_SETTINGS

    notes = row.get("notes")
    settings = row.get("settings")
    if not isinstance(notes, Mapping) or not notes.get("trained_by") or not isinstance(settings, Mapping):
        return {}
    return {k: settings[k] for k in INFERENCE_ONLY_SETTINGS if k in settings}


def _set_inference_settings(model_dir: Path, inference: Mapping[str, Any]) -> None:
    """Write ``inference`` into the settings of ``model_dir``'s method file (a new file, so a hard link to the
    run's model is not changed) and renew its manifest."""
    from frugaltext.fileio import atomic_write_json
    from frugaltext.manifest import MANIFEST_FILE, write_manifest
    from frugaltext.methods.base import METHOD_FILE

    path = model_dir / METHOD_FILE
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta["settings"].update(inference)
    atomic_write_json(path, meta)  # os.replace: a new inode, the hard-linked original stays
    if (model_dir / MANIFEST_FILE).exists():
        write_manifest(model_dir)


def _write_selected(selection: Selection, source: Path, hardlink: bool,
                    inference: Mapping[str, Any] | None = None) -> str:
    """Build ``selected/`` in a temporary folder of the run and rename it into place; return the transfer.

    ``inference``: inference-only settings (``inference_quantization``) written into the copy's method file,
    when the pick reuses another method's model (``bert@int8`` predicts with ``bert``'s folder)."""
    run_dir = selection.run_dir
    dest = run_dir / SELECTED_DIR
    if dest.exists() and not dest.is_dir():
        raise ConfigError(f"select: {dest} exists and is not a folder; move it away, then select again")
    tmp = Path(tempfile.mkdtemp(prefix=f".{SELECTED_DIR}-tmp-", dir=run_dir))
    try:
        transfer = "copy"
        if hardlink and os.stat(source).st_dev == os.stat(run_dir).st_dev:
            try:
                shutil.copytree(source, tmp, copy_function=os.link, dirs_exist_ok=True)
                transfer = "hardlink"
            except OSError as err:  # e.g. a filesystem without hard links
                logger.info("select: cannot hard-link from %s (%s); copying", source, err)
                shutil.rmtree(tmp)
                tmp.mkdir()
        if transfer == "copy":
            shutil.copytree(source, tmp, dirs_exist_ok=True)
        selection.transfer = transfer
        for name, kept in ((README, "README.model.md"), (SELECTION_JSON, "selection.model.json")):
            if (tmp / name).exists():
                os.replace(tmp / name, tmp / kept)
        if inference:
            _set_inference_settings(tmp, inference)
        (tmp / README).write_text(render_readme(selection), encoding="utf-8")
        (tmp / SELECTION_JSON).write_text(json.dumps(selection.to_dict(), indent=2) + "\n", encoding="utf-8")
        _rename_into_place(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return transfer


def _rename_into_place(tmp: Path, dest: Path, attempts: int = 10) -> None:
    """Rename the folder ``tmp`` to ``dest``, replacing an older ``dest`` (renamed away, then deleted)."""
    for _ in range(attempts):
        old = None
        if dest.exists():
            old = dest.with_name(f".{dest.name}-old-{uuid.uuid4().hex[:8]}")
            try:
                os.rename(dest, old)
            except FileNotFoundError:  # another process moved it meanwhile
                old = None
        try:
            os.rename(tmp, dest)
        except OSError as err:
            if err.errno in (errno.ENOTEMPTY, errno.EEXIST):  # another process put its selection there
                if old is not None:
                    shutil.rmtree(old, ignore_errors=True)
                continue
            if old is not None:
                os.rename(old, dest)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return
    raise OSError(f"select: could not rename {tmp} to {dest}: other processes keep replacing it")


def _fmt(value: float | None) -> str:
    from frugaltext.reports.table import format_significant as fmt

    return fmt(value)


def _fmt_count(value: float | None) -> str:
    from frugaltext.reports.table import _fmt_count as fmt

    return fmt(value)


CANDIDATE_HEADERS = [
    "rank",
    "method",
    "seeds",
    "macro-F1",
    "Rtn (%)",
    "energy (kWh/1k docs)",
    "latency (ms/doc)",
    "throughput (docs/s)",
    "T (s)",
    "params",
    "eligible",
]


def candidate_cells(selection: Selection) -> list[list[str]]:
    """One row of cell texts per candidate, in the order of :data:`CANDIDATE_HEADERS`."""
    out = []
    for c in selection.candidates:
        out.append(
            [
                str(c.rank) if c.rank is not None else "–",
                c.method,
                str(len(c.seeds)),
                "–" if c.macro_f1 is None else f"{c.macro_f1:.3f} ± {c.macro_f1_std or 0.0:.3f}",
                "–" if c.retention_pct is None else f"{c.retention_pct:.1f}",
                _fmt(c.energy_kwh_per_1000_docs),
                _fmt(c.latency_ms),
                _fmt(c.throughput_docs_per_s),
                _fmt(c.train_duration_s),
                _fmt_count(c.n_params),
                "yes" if c.eligible else f"no: {c.reason}",
            ]
        )
    return out


def describe(selection: Selection) -> dict[str, str]:
    """Sentences about a selection, shared by the README and the command's output.

    Keys: ``reference``, ``constraint``, ``objective``, ``selected``, ``runner_up``, ``seed``, ``transfer``.
    """
    goal = selection.objective
    ref = next(c for c in selection.candidates if c.method == selection.reference)
    why_ref = (
        "as asked" if selection.reference_source == "asked"
        else "the method of highest mean macro-F1 in the file, as no reference was asked"
    )
    pick, second = selection.selected, selection.runner_up
    out = {
        "reference": (
            f"{selection.reference} ({why_ref}): mean macro-F1 {selection.reference_macro_f1:.4f} over "
            f"{len(ref.seeds)} seed(s)"
        ),
        "constraint": (
            f"mean macro-F1 at least {selection.min_retention:g} % of the reference's, i.e. at least "
            f"{selection.threshold_macro_f1:.4f}"
        ),
        "objective": (
            f"{goal.name} = mean {goal.label} ({goal.unit}; {'higher' if goal.higher_is_better else 'lower'} "
            f"is better; row field {goal.field}{' x 1000' if goal.scale == 1000.0 else ''})"
        ),
        "selected": f"{pick.method}: {_costs(pick, selection.reference)}",
        "runner_up": "none (no other method meets the constraint)" if second is None
        else f"{second.method}: {_costs(second, selection.reference)}",
        "seed": (
            f"seed {selection.seed} (macro-F1 {selection.seed_macro_f1:.4f}), the median macro-F1 among "
            f"{pick.method}'s {len(pick.seeds)} seed(s)"
            + (" (the lower of the two middle ones)" if len(pick.seeds) % 2 == 0 else "")
        ),
        "transfer": "",
    }
    if selection.selected_dir is not None:
        verb = "hard-linked (same filesystem; the files are shared)" if selection.transfer == "hardlink" \
            else "copied"
        out["transfer"] = f"{selection.source_model_dir} {verb} to {selection.selected_dir}"
    return out


def _costs(c: Candidate, reference: str) -> str:
    """Macro-F1 and every measured cost of a candidate, in words."""
    f1 = "–" if c.macro_f1 is None else f"{c.macro_f1:.4f}"
    rtn = "–" if c.retention_pct is None else f"{c.retention_pct:.1f}"
    return (
        f"macro-F1 {f1} ({rtn} % of {reference}), inference energy {_fmt(c.energy_kwh_per_1000_docs)} kWh "
        f"per 1,000 documents, latency {_fmt(c.latency_ms)} ms/doc, throughput "
        f"{_fmt(c.throughput_docs_per_s)} docs/s, training time {_fmt(c.train_duration_s)} s, "
        f"{_fmt_count(c.n_params)} parameters"
    )


def render_readme(selection: Selection) -> str:
    """The ``README.md`` of ``selected/``: the choice, why, the candidates table and the command."""
    text = describe(selection)
    pick = selection.selected
    cells = candidate_cells(selection)
    table = [
        "| " + " | ".join(CANDIDATE_HEADERS) + " |",
        "|" + "|".join("---" if i in (1, 10) else "---:" for i in range(len(CANDIDATE_HEADERS))) + "|",
        *("| " + " | ".join(row) + " |" for row in cells),
    ]
    lines = [
        f"# Selected model: {pick.method} (seed {selection.seed})",
        "",
        f"Chosen by `frugaltext select` at {selection.created} from `{selection.results_json}`: among the "
        f"methods whose mean macro-F1 keeps at least {selection.min_retention:g} % of the reference's, the "
        f"one with the {'highest' if selection.objective.higher_is_better else 'lowest'} mean "
        f"{selection.objective.label}.",
        "",
        f"- **Constraint:** {text['constraint']}.",
        f"- **Reference:** {text['reference']}.",
        f"- **Objective:** {text['objective']}.",
        f"- **Selected:** {text['selected']}.",
        f"- **Runner-up:** {text['runner_up']}.",
        f"- **Model folder:** {text['seed']}; {text['transfer']}.",
        "- **Aggregation:** every number is the mean over the method's seeds (± the sample std for "
        "macro-F1); a value missing in one seed is missing for the method.",
        f"- **Ties:** objective values equal to {TIE_DIGITS} significant digits go to the higher macro-F1, "
        "then the fewer parameters, then the method name.",
        "",
        "## Candidates",
        "",
        *table,
        "",
        "energy: inference energy per 1,000 documents (kWh); latency: one document per call; T: training "
        "time.",
    ]
    if selection.missing_model_dirs:
        lines += ["", "Model folders not found (their rows still count): "
                  + ", ".join(selection.missing_model_dirs) + "."]
    lines += [
        "",
        "## Command",
        "",
        "```",
        selection.command,
        "```",
        "",
        "This folder is a saved model: `frugaltext predict --model <this folder> --input docs.txt --output "
        "predictions.jsonl`, or `frugaltext.load_model(\"<this folder>\")`. `selection.json` holds the same "
        "facts for tools.",
        "",
    ]
    return "\n".join(lines)
