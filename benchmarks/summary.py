"""Cross-dataset summary of the committed results (issue 16 item 5): per dataset and per source, the
reference, the retention and speed-ups of every method, the Pareto front, and the cheapest method at 99 % and
95 % retention. It trains nothing: it only reads files, so it can be rerun whenever a result changes.

It lives in ``benchmarks/`` with the scripts whose JSON it reads (and is linted and tested like them); it
writes ``docs/summary.md`` and ``docs/summary.json``. Sources, relative to the repository root:

* ``docs/runs/<name>/results.json`` -- ``frugaltext compare`` runs (one row per method and seed); a run
  split over several folders (seeds or rows run in separate processes or sessions) is read as one source
  when each extra folder holds a ``PART_OF`` file naming the main folder (:func:`merge_part`);
* ``benchmarks/results/distillation_*.json`` -- the teacher and every student of
  ``benchmarks/distillation.py``, their throughputs measured side by side in one process;
* ``benchmarks/results/early_exit_*.json`` -- the early-exit model at full depth and at its calibrated
  entropy and patience settings (``benchmarks/early_exit.py``).

Every other ``benchmarks/results/*.json`` and any smoke run or unfinished benchmark is listed in the output
with the reason it is not read (nothing is left out silently): ``topicbert_table3_*`` holds the rows of
``docs/runs/table3-*`` again (read there, per seed), ``topicbert_speed_*`` has no macro-F1, ``topics_*`` are
topic models, ``fast_path_*`` files so far are smoke runs.

Rules
-----
Sources are never mixed: their rows come from different runs, machines, loads and data sizes, so retention,
speed-ups and the front are computed within one source, against that source's reference.

* **Reference** (100 % retention, speed-up 1): ``bert`` in a compare run, the ``teacher (bert)`` of a
  distillation benchmark, the ``full depth`` row of an early-exit benchmark (the same early-exit model with
  every layer). A compare run without ``bert`` takes its method of highest mean macro-F1, and says so.
* **Aggregation, retention, picks**: :func:`frugaltext.selection.choose` -- means over each method's seeds,
  retention = mean macro-F1 / the reference's x 100, the pick at R % = the eligible method of highest mean
  throughput at batch 32 (ties: macro-F1, parameters, name). "Cheapest" is therefore the fastest at
  inference; its training-time and energy ratios are reported beside it.
* **Speed-ups** against the reference: throughput at batch 32 (row / reference), training time T (reference /
  row) and inference energy per document (reference / row), each only where both values were measured.
* **Pareto front**: :func:`frugaltext.reports.front.pareto_front` of (seconds per document at batch 32,
  mean macro-F1), and separately of (T, mean macro-F1).
* **Labels**: a source is a *subset* when the data were cut (``max_train_docs``/``max_test_docs``) and a
  *1-seed* source when any method has a single seed.

Usage::

    .venv/bin/python benchmarks/summary.py            # writes docs/summary.md and docs/summary.json
    .venv/bin/python benchmarks/summary.py --check    # exit 1 if the committed summary is out of date
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from frugaltext.errors import DataFormatError, FrugalTextError
from frugaltext.experiment.results import config_hash_conflicts, read_results
from frugaltext.fileio import atomic_write_json, atomic_write_text
from frugaltext.reports.front import pareto_front
from frugaltext.selection import Candidate, NoCandidateError, choose

__all__ = [
    "COMMAND",
    "DATASETS",
    "RETENTIONS",
    "Source",
    "build_summary",
    "collect_sources",
    "main",
    "render_markdown",
    "summarize_source",
]

#: Display names of the datasets of issue 16, in the order of the summary; they are listed even without rows.
DATASETS: dict[str, str] = {
    "r8": "Reuters-8",
    "sst2": "SST-2",
    "imdb": "IMDB",
    "reuters21578-modapte90": "ModApte-90",
}

#: Retention levels (%) at which the cheapest method is named.
RETENTIONS: tuple[float, ...] = (99.0, 95.0)

#: The command that writes the committed summary (from the repository root).
COMMAND = ".venv/bin/python benchmarks/summary.py"

OBJECTIVE = "throughput"
MISSING = "–"


@dataclass
class Source:
    """One file of results: rows measured together, with their reference and where they came from.

    Attributes
    ----------
    path : str
        Repository-relative path of the file.
    kind : {"compare", "distillation", "early_exit"}
    dataset : str
        Dataset key (``r8``, ``sst2``, ``imdb``, ``reuters21578-modapte90``, or another slug).
    rows : list of dict
        Result rows (``method``, ``seed``, ``macro_f1``, ``throughput_docs_per_s`` at batch 32,
        ``train_duration_s``, ``inference_energy_kwh_per_doc``, ``latency_ms``, ``n_params``; missing values
        absent or None).
    reference : str or None
        The method of 100 %; None takes the method of highest mean macro-F1.
    n_train, n_test : int or None
        Documents of the training and evaluation splits.
    subset : bool
        The data were cut (``max_train_docs``/``max_test_docs`` set).
    machine : str
        The machine as the file records it (CPU, cores, torch threads, load averages).
    date : str
        When the results were made (as recorded), or "".
    notes : list of str
        What a reader must know (a teacher's training time missing, ...).
    parts : list of str
        Further files whose rows were merged in (a compare run split over folders, :func:`merge_part`).
    """

    path: str
    kind: str
    dataset: str
    rows: list[dict[str, Any]]
    reference: str | None
    n_train: int | None = None
    n_test: int | None = None
    subset: bool = False
    machine: str = ""
    date: str = ""
    notes: list[str] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------------
# Reading the sources


def dataset_key(data: Any) -> str:
    """Dataset key of a ``data`` argument or a row's ``dataset`` (``"../shared/data/sst2"`` -> ``"sst2"``)."""
    name = Path(str(data).rstrip("/\\")).name.lower()
    return name or str(data)


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _load_text(value: Any) -> str:
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        return ""
    return "/".join(f"{v:g}" for v in value if _number(v) is not None)


def describe_machine(machine: Mapping[str, Any] | None, threads: Any = None, load: Any = None) -> str:
    """One line about the machine a file records: CPU model or architecture, its fast-path flags (where
    recorded), cores, torch, threads, load."""
    if not machine:
        return "not recorded"
    parts = [str(machine.get("cpu_model") or machine.get("processor") or "CPU not recorded")]
    flags = machine.get("cpu_flags_of_interest")
    if isinstance(flags, list):
        parts.append("flags " + (" ".join(map(str, flags)) if flags else "none of interest"))
    if machine.get("cpu_count"):
        parts.append(f"{machine['cpu_count']} cores")
    torch_version = machine.get("torch_version") or machine.get("torch")
    if torch_version:
        parts.append(f"torch {torch_version}")
    if threads is None:
        threads = machine.get("torch_num_threads") or machine.get("torch_threads")
    if threads is not None:
        parts.append(f"{threads} torch thread(s)")
    load_text = _load_text(load)
    if load_text:
        parts.append(f"load average {load_text}")
    return ", ".join(parts)


def _compare_reference(methods: set[str], rows: Sequence[Mapping[str, Any]]) -> str | None:
    """``bert`` when the run has it with a positive macro-F1 in every row, else None (the method of highest
    mean macro-F1): a reference that predicted nothing (macro-F1 0) cannot give retentions."""
    bert_rows = [r for r in rows if r.get("method") == "bert"]
    if "bert" in methods and all(float(r.get("macro_f1") or 0) > 0 for r in bert_rows):
        return "bert"
    return None


def _date_range(dates: Sequence[str]) -> str:
    """``""``, one date, or ``"<first> to <last>"`` of the sorted dates."""
    dates = sorted(dates)
    return "" if not dates else dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"


def read_compare_run(path: Path, rel: str) -> Source:
    """A ``frugaltext compare`` run's ``results.json`` as a :class:`Source` (reference ``bert`` if present).

    Raises
    ------
    DataFormatError
        The file is not a list of rows, has none, or mixes datasets.
    """
    rows = read_results(path)
    if not rows:
        raise DataFormatError(
            f"{rel}: no result rows; delete the run folder or run `frugaltext compare` again"
        )
    datasets = sorted({dataset_key(r.get("dataset") or r.get("data_source") or "?") for r in rows})
    if len(datasets) != 1:
        raise DataFormatError(
            f"{rel}: rows of several datasets ({', '.join(datasets)}); one run, one dataset"
        )
    cuts = ("max_train_docs", "max_validation_docs", "max_test_docs")
    subset = any((r.get("data_identity") or {}).get(k) is not None for r in rows for k in cuts)
    threads = sorted({str(r["torch_threads"]) for r in rows if r.get("torch_threads") is not None})
    stamps = [str(r["timestamp"])[:10] for r in rows if r.get("timestamp")]
    methods = {str(r["method"]) for r in rows}
    return Source(
        path=rel,
        kind="compare",
        dataset=datasets[0],
        rows=[dict(r) for r in rows],
        reference=_compare_reference(methods, rows),
        n_train=rows[0].get("n_train"),
        n_test=rows[0].get("n_eval") or rows[0].get("n_test"),
        subset=subset,
        machine=describe_machine(rows[0].get("machine"), threads=",".join(threads) or None)
        + " (load average not recorded by compare)",
        date=_date_range(stamps),
    )


PART_OF = "PART_OF"


def read_part_of(folder: Path, rel: str) -> str | None:
    """The main run folder named by ``folder/PART_OF`` (its first line that is not blank or a ``#``
    comment), or None when the folder has no such file.

    Raises
    ------
    DataFormatError
        The file names nothing, or a path instead of a folder name of ``docs/runs``.
    """
    path = folder / PART_OF
    if not path.is_file():
        return None
    names = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()
             if ln.strip() and not ln.strip().startswith("#")]
    if len(names) != 1 or "/" in names[0] or names[0] in (".", ".."):
        raise DataFormatError(
            f"{rel}: expected one line with the name of the main folder under docs/runs (e.g. "
            f"table3-imdb-5k-bf16), got {names!r}; fix or delete the file"
        )
    return names[0]


def merge_part(main: Source, part: Source, part_of_rel: str) -> None:
    """Add the rows of ``part`` (a folder whose ``PART_OF`` names ``main``'s folder) to ``main``, in place.

    Both must be one run: the same dataset and data identity (source, fields, splits, cuts) in every row,
    one config hash per method across both, and no (method, seed) in both. The reference, subset flag and
    date are recomputed over all rows; ``main.parts`` records the part's path.

    Raises
    ------
    DataFormatError
        Naming ``part_of_rel`` and what differs, when the two are not one run.
    """
    fix = "or delete the PART_OF file to read the folder as a source of its own"
    if part.dataset != main.dataset:
        raise DataFormatError(f"{part_of_rel}: {part.path} holds {part.dataset} rows, {main.path} "
                              f"{main.dataset}; {fix}")
    identities = {json.dumps(r.get("data_identity"), sort_keys=True) for r in main.rows + part.rows}
    if len(identities) != 1:
        raise DataFormatError(f"{part_of_rel}: the rows of {part.path} and {main.path} were made from "
                              f"different data or data options (data_identity differs); {fix}")
    conflicts = config_hash_conflicts([(main.path, main.rows), (part.path, part.rows)])
    if conflicts:
        changed = ", ".join(sorted({c.method for c in conflicts}))
        first = conflicts[0]
        raise DataFormatError(f"{part_of_rel}: {changed} ran with other settings in {first.source} than in "
                              f"{first.first_source} ({first.message()}); {fix}")
    seen = {(str(r["method"]), r.get("seed")) for r in main.rows}
    twice = sorted(f"{m} seed {s}" for m, s in ((str(r["method"]), r.get("seed")) for r in part.rows)
                   if (m, s) in seen)
    if twice:
        raise DataFormatError(f"{part_of_rel}: {', '.join(twice)} in both {part.path} and {main.path}; "
                              f"delete one of the rows, {fix}")
    main.rows.extend(part.rows)
    main.parts.append(part.path)
    main.reference = _compare_reference({str(r["method"]) for r in main.rows}, main.rows)
    main.subset = main.subset or part.subset
    main.date = _date_range([d for src in (main.date, part.date) for d in src.split(" to ") if d])


TEACHER = "teacher (bert)"


def read_distillation(path: Path, rel: str) -> Source:
    """A ``benchmarks/distillation.py`` JSON as a :class:`Source`: the teacher and every student run, each at
    its method's median throughput at batch 32 (measured side by side; the students' seed-0 models).

    Raises
    ------
    DataFormatError
        No ``runs``, ``teacher`` or ``throughput`` entry.
    """
    data = json.loads(path.read_text(encoding="utf-8"))
    for key in ("runs", "teacher", "throughput", "settings"):
        if key not in data:
            raise DataFormatError(f"{rel}: no {key!r} entry; is it a benchmarks/distillation.py result?")
    medians = data["throughput"].get("median") or {}
    teacher = data["teacher"]
    teacher_train = (data.get("teacher_training") or {}).get("train_duration_s")
    rows = [{
        "method": TEACHER,
        "seed": teacher.get("seed", 0),
        "macro_f1": teacher.get("macro_f1"),
        "n_params": teacher.get("n_params"),
        "train_duration_s": teacher_train,
        "throughput_docs_per_s": (medians.get("teacher") or {}).get("b32"),
    }]
    for run in data["runs"].values():
        rows.append({
            "method": run["method"],
            "seed": run["seed"],
            "macro_f1": run.get("macro_f1"),
            "n_params": run.get("n_params"),
            "train_duration_s": run.get("train_duration_s"),
            "throughput_docs_per_s": (medians.get(run["method"]) or {}).get("b32"),
        })
    settings = data["settings"]
    sizes = data.get("dataset_sizes") or {}
    notes = ["throughput: median at batch 32 of the seed-0 model of each method, timed side by side with "
             "the teacher; training time T excludes the teacher's logits (cached)"]
    if teacher_train is None:
        notes.append(f"the teacher ({teacher.get('dir')}) was trained outside this benchmark: its T is not "
                     "in the file, so no training speed-up is computed")
    return Source(
        path=rel,
        kind="distillation",
        dataset=dataset_key(settings.get("data")),
        rows=rows,
        reference=TEACHER,
        n_train=sizes.get("train"),
        n_test=sizes.get("test"),
        subset=settings.get("max_train_docs") is not None or settings.get("max_test_docs") is not None,
        machine=describe_machine(data.get("machine"), load=data["throughput"].get("load_average")),
        notes=notes,
    )


FULL_DEPTH = "full depth"


def read_early_exit(path: Path, rel: str) -> Source:
    """A ``benchmarks/early_exit.py`` JSON as a :class:`Source`: the model at full depth (the reference) and
    at its calibrated entropy and patience settings, and those settings stacked with int8 or bf16 inference
    (``--stack``; named e.g. ``early exit, entropy 0.75 + int8``). All rows are one trained model, so they
    share its T.

    Raises
    ------
    DataFormatError
        No ``comparison`` entry with ``full_depth``.
    """
    data = json.loads(path.read_text(encoding="utf-8"))
    comparison = data.get("comparison") or {}
    if "full_depth" not in comparison:
        raise DataFormatError(f"{rel}: no comparison.full_depth; is it a benchmarks/early_exit.py result?")
    training = data.get("training") or {}
    model = data.get("model") or {}
    names = {"full_depth": FULL_DEPTH}
    for key in ("calibrated_entropy", "calibrated_patience"):
        setting = comparison.get(key)
        if setting:
            rule = setting.get("rule")
            value = setting.get("entropy_threshold") if rule == "entropy" else setting.get("patience")
            names[key] = f"early exit, {rule} {value:g}" if value is not None else key
    for key in comparison:  # --stack rows: "<setting>@int8" / "<setting>@bf16"
        base, _, variant = key.partition("@")
        if variant and base in names:
            names[key] = f"{names[base]} + {variant}"
    rows = []
    for key, name in names.items():
        setting = comparison[key]
        rows.append({
            "method": name,
            "seed": training.get("seed", 0),
            "macro_f1": setting.get("macro_f1"),
            "n_params": model.get("n_params"),
            "train_duration_s": training.get("train_duration_s"),
            "throughput_docs_per_s": setting.get("throughput_docs_per_s_batch32"),
            "latency_ms": setting.get("latency_ms_batch1"),
        })
    args = data.get("args") or {}
    sizes = data.get("dataset") or {}
    load = data.get("load_average_before_timing")
    return Source(
        path=rel,
        kind="early_exit",
        dataset=dataset_key(args.get("data") or sizes.get("data")),
        rows=rows,
        reference=FULL_DEPTH,
        n_train=sizes.get("n_train_docs"),
        n_test=sizes.get("n_test_docs"),
        subset=args.get("max_train_docs") is not None or args.get("max_test_docs") is not None,
        machine=describe_machine(data.get("machine"), load=load),
        date=str(data.get("started") or "")[:10],
        notes=["every row is the same trained early-exit model (one T); the reference is that model with all "
               f"{model.get('num_hidden_layers', '?')} layers, so the speed-ups are those of exiting early"],
    )


#: Benchmark file prefixes that are not read, and why.
NOT_READ = {
    "topicbert_table3_": "the same rows as docs/runs/table3-*/results.json, which are read (per seed)",
    "topicbert_speed_": "training-step speed only, no macro-F1",
    "topics_": "topic models (perplexity, NPMI), no classifier",
    "fast_path_": "no reader for fast_path results (its rows compare settings of one bert)",
}


def collect_sources(root: str | Path) -> tuple[list[Source], list[dict[str, str]]]:
    """Read every committed result under ``root`` (see the module docstring).

    Returns
    -------
    sources : list of Source
        In path order.
    skipped : list of dict
        ``{"path", "reason"}`` for each file not read.

    Raises
    ------
    DataFormatError
        A file that should be read is malformed (the message names it).
    """
    root = Path(root)
    sources: list[Source] = []
    skipped: list[dict[str, str]] = []
    parts: list[tuple[Path, str, str, str]] = []
    for path in sorted((root / "docs" / "runs").glob("*/results.json")):
        rel = path.relative_to(root).as_posix()
        if "smoke" in path.parent.name:
            skipped.append({"path": rel, "reason": "a smoke run (its folder name says so), not a result"})
            continue
        part_of_rel = f"{path.parent.relative_to(root).as_posix()}/{PART_OF}"
        main_name = read_part_of(path.parent, part_of_rel)
        if main_name is not None:
            parts.append((path, rel, part_of_rel, main_name))
            continue
        sources.append(read_compare_run(path, rel))
    for path, rel, part_of_rel, main_name in parts:
        main_rel = f"docs/runs/{main_name}/results.json"
        main = next((s for s in sources if s.kind == "compare" and s.path == main_rel), None)
        if main is None:
            raise DataFormatError(f"{part_of_rel}: names {main_name!r}, but {main_rel} is not a run read "
                                  "here (missing, a smoke run, or itself a part); fix the name or delete the "
                                  "file")
        merge_part(main, read_compare_run(path, rel), part_of_rel)
    for path in sorted((root / "benchmarks" / "results").glob("*.json")):
        rel = path.relative_to(root).as_posix()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise DataFormatError(f"{rel}, line {err.lineno}: invalid JSON ({err.msg})") from err
        if not isinstance(data, dict):
            raise DataFormatError(f"{rel}: expected a JSON object (a benchmark's result), not a "
                                  f"{type(data).__name__}")
        label, status = str(data.get("label") or ""), data.get("status")
        reason = next((why for prefix, why in NOT_READ.items() if path.name.startswith(prefix)), None)
        if "smoke" in label.lower() or "smoke" in path.stem:
            reason = f"a smoke run ({label or 'its name says so'})"
        elif status not in (None, "finished"):
            reason = f"unfinished benchmark (status {status!r})"
        if reason is None and path.name.startswith("distillation_"):
            sources.append(read_distillation(path, rel))
        elif reason is None and path.name.startswith("early_exit_"):
            sources.append(read_early_exit(path, rel))
        else:
            skipped.append({"path": rel, "reason": reason or "no reader for this benchmark"})
    return sources, skipped


# --------------------------------------------------------------------------------------------------------
# Summarising


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0 or numerator <= 0:
        return None
    return numerator / denominator


def _all_candidates(source: Source) -> tuple[list[Candidate], dict[str, Any]]:
    """Every method of the source with its means (choose at 0 %, with the first objective that one method
    has measured: choose refuses a decision without one, the numbers do not depend on it)."""
    for objective in (OBJECTIVE, "train-time", "latency", "energy"):
        try:
            return choose(source.rows, min_retention=0.0, objective=objective, reference=source.reference)
        except NoCandidateError:
            continue
    raise DataFormatError(
        f"{source.path}: no method has a throughput, training time, latency or energy in every seed's row; "
        "nothing to summarise"
    )


def summarize_source(source: Source) -> dict[str, Any]:
    """Reference, per-method numbers, fronts and picks of one source (plain JSON types).

    Returns
    -------
    dict
        ``reference`` (method, macro_f1, how chosen), ``methods`` (one dict per method: seeds, macro_f1,
        retention_pct, throughput_docs_per_s, speedup_throughput, train_duration_s, speedup_train,
        energy_kwh_per_1000_docs, energy_ratio, on_front_throughput, on_front_train_time), ``picks``
        (``"99"``, ``"95"``: the pick's method and speed-ups, or ``None`` with ``reason``), plus the source's
        facts (path, kind, dataset, sizes, subset, one_seed, machine, date, notes).
    """
    out: dict[str, Any] = {
        "path": source.path,
        "kind": source.kind,
        "dataset": source.dataset,
        "n_train": source.n_train,
        "n_test": source.n_test,
        "subset": source.subset,
        "machine": source.machine,
        "date": source.date,
        "notes": list(source.notes)
        + ([f"rows of {', '.join(source.parts)} merged in (one run split over folders, each with a "
            f"{PART_OF} file naming this one)"] if source.parts else []),
        "parts": list(source.parts),
    }
    candidates, info = _all_candidates(source)
    ref = next(c for c in candidates if c.method == info["method"])
    out["reference"] = {
        "method": info["method"],
        "macro_f1": info["macro_f1"],
        "chosen": "the source's reference" if source.reference is not None
        else ("no usable bert in this source (macro-F1 0): its method of highest mean macro-F1"
              if any(c.method == "bert" for c in candidates)
              else "no bert in this source: its method of highest mean macro-F1"),
    }
    ordered = sorted(candidates, key=lambda c: source_order(source, c.method))
    seconds_per_doc = [1.0 / c.throughput_docs_per_s if c.throughput_docs_per_s else None for c in ordered]
    scores = [c.macro_f1 for c in ordered]
    front_speed = set(pareto_front(seconds_per_doc, scores))
    front_train = set(pareto_front([c.train_duration_s for c in ordered], scores))
    out["one_seed"] = any(len(c.seeds) == 1 for c in ordered)
    out["methods"] = [
        {
            "method": c.method,
            "n_seeds": len(c.seeds),
            "macro_f1": c.macro_f1,
            "macro_f1_std": c.macro_f1_std,
            "retention_pct": c.retention_pct,
            "throughput_docs_per_s": c.throughput_docs_per_s,
            "speedup_throughput": _ratio(c.throughput_docs_per_s, ref.throughput_docs_per_s),
            "train_duration_s": c.train_duration_s,
            "speedup_train": _ratio(ref.train_duration_s, c.train_duration_s),
            "energy_kwh_per_1000_docs": c.energy_kwh_per_1000_docs,
            "energy_ratio": _ratio(ref.energy_kwh_per_1000_docs, c.energy_kwh_per_1000_docs),
            "on_front_throughput": i in front_speed,
            "on_front_train_time": i in front_train,
        }
        for i, c in enumerate(ordered)
    ]
    by_method = {m["method"]: m for m in out["methods"]}
    out["picks"] = {}
    for level in RETENTIONS:
        key = f"{level:g}"
        try:
            picked: list[Candidate] = choose(
                source.rows, min_retention=level, objective=OBJECTIVE, reference=info["method"]
            )[0]
        except NoCandidateError as err:
            out["picks"][key] = {"method": None, "reason": str(err)}
            continue
        m = by_method[picked[0].method]
        kept = ("method", "retention_pct", "speedup_throughput", "speedup_train", "energy_ratio",
                "on_front_throughput")
        out["picks"][key] = {k: m[k] for k in kept}
    return out


def source_order(source: Source, method: str) -> tuple[int, int]:
    """Methods in the order of first appearance in the source's rows."""
    for i, row in enumerate(source.rows):
        if str(row["method"]) == method:
            return (0, i)
    return (1, 0)


def build_summary(root: str | Path) -> dict[str, Any]:
    """The whole summary: every dataset of :data:`DATASETS` (then any other found), its sources and picks.

    Returns
    -------
    dict
        ``command``, ``rules``, ``datasets`` (list: ``key``, ``name``, ``sources``: :func:`summarize_source`
        dicts; an empty list when nothing is committed for it) and ``not_read`` (files skipped, with why).
    """
    sources, skipped = collect_sources(root)
    keys = list(DATASETS) + sorted({s.dataset for s in sources} - set(DATASETS))
    datasets = []
    for key in keys:
        mine = [summarize_source(s) for s in sources if s.dataset == key]
        datasets.append({"key": key, "name": DATASETS.get(key, key), "sources": mine})
    return {
        "command": COMMAND,
        "rules": {
            "objective": "throughput at batch 32 (the pick at R % is the fastest method keeping R % of the "
                         "reference's mean macro-F1)",
            "aggregation": "mean over each method's seeds (frugaltext.selection.choose)",
            "speedups": "throughput row/reference; training time reference/row; inference energy "
                        "reference/row",
            "front": "frugaltext.reports.front.pareto_front on (s per document at batch 32, macro-F1) and on "
                     "(training time, macro-F1)",
            "retentions_pct": list(RETENTIONS),
        },
        "datasets": datasets,
        "not_read": skipped,
    }


# --------------------------------------------------------------------------------------------------------
# Rendering


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return MISSING
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude >= digits - 1:
        return f"{value:,.0f}"
    return f"{value:.{max(digits - 1 - magnitude, 0)}f}"


def _scale(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def _times(value: float | None) -> str:
    return MISSING if value is None else f"{value:.2f}×"


def _pct(value: float | None) -> str:
    return MISSING if value is None else f"{value:.1f}"


def _data_label(src: Mapping[str, Any]) -> str:
    size = f"{src['n_train'] or '?'} train / {src['n_test'] or '?'} test"
    labels = [f"**subset** ({size})" if src["subset"] else f"full ({size})"]
    seeds = sorted({m["n_seeds"] for m in src["methods"]})
    if seeds == [1]:
        labels.append("**1 seed**")
    elif 1 in seeds:
        labels.append(f"**1 seed** for some methods (1–{seeds[-1]} seeds)")
    else:
        labels.append(f"{seeds[0]} seeds" if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]} seeds")
    return ", ".join(labels)


def _pick_text(pick: Mapping[str, Any], reference: str) -> str:
    if pick.get("method") is None:
        return f"none ({pick.get('reason', '')})"
    if pick["method"] == reference:
        return f"`{pick['method']}` (the reference: nothing faster keeps this share)"
    extra = []
    if pick.get("speedup_train") is not None:
        extra.append(f"T {_times(pick['speedup_train'])}")
    if pick.get("energy_ratio") is not None:
        extra.append(f"energy {_times(pick['energy_ratio'])}")
    tail = f"; {', '.join(extra)}" if extra else ""
    return f"`{pick['method']}` ({_pct(pick['retention_pct'])} %, {_times(pick['speedup_throughput'])}{tail})"


def render_markdown(summary: Mapping[str, Any]) -> str:
    """``docs/summary.md`` from :func:`build_summary`'s dict (deterministic: no time of writing)."""
    lines = [
        "# Cross-dataset summary: the cheapest method at 99 % and 95 % retention",
        "",
        "Built from the committed results, without training, by",
        "",
        "```bash",
        summary["command"],
        "```",
        "",
        "Do not edit by hand: rerun the command when a result changes (`--check` tells whether this file is "
        "up to date; a test does the same). Rules (the script's docstring has them in full):",
        "",
        "- **Sources are not mixed**: each file's rows were measured together (same run, machine and "
        "load); retention, speed-ups and fronts are computed within one file, against its reference: `bert` "
        "in a `frugaltext compare` run (else its best method, named), the teacher of a distillation "
        "benchmark, the full-depth model of an early-exit benchmark.",
        "- **Pick at R %**: among the methods whose mean macro-F1 keeps R % of the reference's, the one of "
        "highest throughput at batch 32 (`frugaltext.selection.choose`, means over seeds). Shown as "
        "`method` (retention, throughput speed-up; training-time and inference-energy ratios where "
        "measured).",
        "- **Speed-ups** are against the reference: throughput at batch 32 (row / reference), training time "
        "T (reference / row), inference energy per document (reference / row). Energy is codecarbon's "
        "estimate (no RAPL on these machines); the benchmarks do not measure it.",
        "- **Front**: `frugaltext.reports.front.pareto_front` of (seconds per document at batch 32, "
        "macro-F1); `front T` of (training time, macro-F1).",
        "- **Subset** and **1 seed** label sources whose data were cut or whose methods (some or all) ran "
        "one seed: read their differences as indicative. Energy: mWh per 1,000 documents at inference.",
        "- Only files are summarised: the tables of `docs/results.md` whose run folders were lost (the quick "
        "preset on Reuters-8, tf-idf on ModApte-90) are not here; \"no committed result\" means no file.",
        "",
        "## Summary",
        "",
        "| dataset | source | data | reference (macro-F1) | ≥ 99 %: pick (Rtn, speed-up b32; T, energy) "
        "| ≥ 95 %: pick | front (throughput) |",
        "|---|---|---|---|---|---|---|",
    ]
    for ds in summary["datasets"]:
        if not ds["sources"]:
            lines.append(f"| {ds['name']} | no committed result |" + f" {MISSING} |" * 5)
            continue
        for src in ds["sources"]:
            ref = src["reference"]
            ref_text = f"`{ref['method']}` ({ref['macro_f1']:.3f})"
            if "no usable bert" in ref["chosen"]:
                ref_text += ", bert predicted nothing (macro-F1 0)"
            elif "no bert" in ref["chosen"]:
                ref_text += ", no bert in this source"
            front = ", ".join(f"`{m['method']}`" for m in src["methods"] if m["on_front_throughput"])
            lines.append(
                f"| {ds['name']} | `{src['path']}` | {_data_label(src)} | {ref_text} | "
                f"{_pick_text(src['picks']['99'], ref['method'])} | "
                f"{_pick_text(src['picks']['95'], ref['method'])} | {front} |"
            )
    for ds in summary["datasets"]:
        lines += ["", f"## {ds['name']}", ""]
        if not ds["sources"]:
            lines.append("No committed result for this dataset.")
            continue
        for src in ds["sources"]:
            ref = src["reference"]
            lines += [
                f"### `{src['path']}`",
                "",
                f"- Data: {_data_label(src)}.",
                f"- Reference: `{ref['method']}`, mean macro-F1 {ref['macro_f1']:.4f} ({ref['chosen']}).",
                f"- Machine: {src['machine']}" + (f"; results of {src['date']}." if src["date"] else "."),
                *(f"- {note[0].upper()}{note[1:]}." for note in src["notes"]),
                "",
                "| method | seeds | macro-F1 | Rtn % | throughput (docs/s, b32) | speed-up | T (s) "
                "| T speed-up | energy (mWh/1k docs) | energy ratio | front | front T |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
            ]
            for m in src["methods"]:
                f1 = MISSING if m["macro_f1"] is None else f"{m['macro_f1']:.3f}"
                if m["macro_f1"] is not None and m["n_seeds"] > 1 and m["macro_f1_std"] is not None:
                    f1 += f" ± {m['macro_f1_std']:.3f}"
                lines.append(
                    f"| `{m['method']}` | {m['n_seeds']} | {f1} | {_pct(m['retention_pct'])} | "
                    f"{_fmt(m['throughput_docs_per_s'])} | {_times(m['speedup_throughput'])} | "
                    f"{_fmt(m['train_duration_s'])} | {_times(m['speedup_train'])} | "
                    f"{_fmt(_scale(m['energy_kwh_per_1000_docs'], 1e6))} | {_times(m['energy_ratio'])} | "
                    f"{'yes' if m['on_front_throughput'] else ''} | "
                    f"{'yes' if m['on_front_train_time'] else ''} |"
                )
            lines.append("")
    lines += ["## Files not read", ""]
    lines += [f"- `{s['path']}`: {s['reason']}." for s in summary["not_read"]] or ["None."]
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or ``--check``) ``docs/summary.md`` and ``docs/summary.json``; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1],
                        help="repository root (default: the one holding this script)")
    parser.add_argument("--output-md", type=Path, default=None, help="default: ROOT/docs/summary.md")
    parser.add_argument("--output-json", type=Path, default=None, help="default: ROOT/docs/summary.json")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the files differ from what the results give")
    args = parser.parse_args(argv)
    md_path = args.output_md or args.root / "docs" / "summary.md"
    json_path = args.output_json or args.root / "docs" / "summary.json"
    try:
        summary = build_summary(args.root)
    except FrugalTextError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    text = render_markdown(summary)
    payload = json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
    if args.check:
        stale = [str(p) for p, want in ((md_path, text), (json_path, payload))
                 if not p.is_file() or p.read_text(encoding="utf-8") != want]
        if stale:
            print(f"out of date: {', '.join(stale)}; run {COMMAND}", file=sys.stderr)
            return 1
        print("summary up to date")
        return 0
    atomic_write_text(md_path, text)
    atomic_write_json(json_path, summary, ensure_ascii=False)
    print(f"wrote {md_path} and {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
