"""The results table in the layout of Table 3 of Chaudhary et al. (2020), built from ``results.json`` rows.

Columns: Model | macro-F1 ± std | Rtn (%) | T_epoch (s) | T (s) | CO2 eq.1 (g) | energy (Wh) | latency
(ms/doc, batch 1) | throughput (docs/s, batch 32) | params | FLOPs/doc | Pareto (F1 vs).

* The paper's Table 3 reports F1 ± std over runs, retention against fine-tuned BERT ("Rtn: Retention in F1 vs
  BERT"), the time of one epoch ``T_epoch``, the fine-tuning time ``T`` and CO2 by its equation 1. We keep
  those and add the measured energy (codecarbon), inference latency and throughput, parameters and FLOPs per
  document.
* Every number is the mean over the seeds of a method; the F1 spread is the sample standard deviation
  (:func:`frugaltext.metrics.mean_std`). A cost missing in one seed's row shows as "–" (a mean over the
  seeds that happened to be measured would not compare).
* "Pareto (F1 vs)" lists the costs of the table against which the method is on the Pareto front of mean
  macro-F1 (:func:`frugaltext.reports.front.pareto_front`: no other method has at least its macro-F1 at no
  more cost, and is better in one of the two): ``T`` (training time), ``energy`` (training energy),
  ``latency`` and ``throughput`` (higher is better). CO2 eq.1 is T times a constant and would repeat ``T``.
  "–" means on no front; a cost missing for a method takes it off that front.
* ``T`` is our whole measured fit (``train_duration_s``: data preparation, all epochs, validation), and
  "CO2 eq.1" applies equation 1 to that ``T``; the paper applied it to ``T_epoch`` x 15 epochs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from frugaltext.metrics import mean_std, retention
from frugaltext.reports.front import pareto_front

__all__ = [
    "PARETO_COSTS",
    "MethodSummary",
    "ResultsTable",
    "build_table",
    "format_significant",
    "pareto_marks",
    "render_markdown",
    "render_rich",
    "summarize",
]

#: Row fields averaged over seeds for each method.
SUMMARY_FIELDS = (
    "macro_f1",
    "micro_f1",
    "accuracy",
    "weighted_f1",
    "epoch_duration_s",
    "train_duration_s",
    "paper_emissions_kg_co2eq",
    "train_energy_kwh",
    "train_emissions_kg_co2eq",
    "latency_ms",
    "throughput_docs_per_s",
    "inference_energy_kwh_per_doc",
    "n_params",
    "flops",
)

#: Costs of the table that define its Pareto column: ``(name in the column, row field, higher is better)``.
PARETO_COSTS: tuple[tuple[str, str, bool], ...] = (
    ("T", "train_duration_s", False),
    ("energy", "train_energy_kwh", False),
    ("latency", "latency_ms", False),
    ("throughput", "throughput_docs_per_s", True),
)

MISSING = "–"


@dataclass
class MethodSummary:
    """Mean and sample std over the seeds of one method.

    Attributes
    ----------
    method : str
    seeds : list of int
    stats : dict of str to (mean, std)
        For each name of :data:`SUMMARY_FIELDS`; ``(None, None)`` when a seed lacks the value.
    energy_sources : list of str
        Distinct ``energy_source`` texts of the rows.
    eval_splits : list of str
    """

    method: str
    seeds: list[int]
    stats: dict[str, tuple[float | None, float | None]]
    energy_sources: list[str] = field(default_factory=list)
    eval_splits: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def mean(self, name: str) -> float | None:
        """Mean of ``name`` over the seeds (None when missing)."""
        return self.stats.get(name, (None, None))[0]

    def std(self, name: str) -> float | None:
        """Sample standard deviation of ``name`` over the seeds (0.0 for one seed, None when missing)."""
        return self.stats.get(name, (None, None))[1]


def summarize(rows: Sequence[Mapping[str, Any]]) -> list[MethodSummary]:
    """Group result rows by method (in order of first appearance) and average them over seeds.

    Parameters
    ----------
    rows : sequence of dict
        Rows of ``results.json``; each needs ``method`` and ``seed``.

    Returns
    -------
    list of MethodSummary
    """
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(str(row["method"]), []).append(row)
    out = []
    for method, group in groups.items():
        group = sorted(group, key=lambda r: r.get("seed", 0))
        stats = {name: mean_std([_number(r.get(name)) for r in group]) for name in SUMMARY_FIELDS}
        out.append(
            MethodSummary(
                method=method,
                seeds=[r.get("seed") for r in group],
                stats=stats,
                energy_sources=_distinct(r.get("energy_source") for r in group),
                eval_splits=_distinct(r.get("eval_split") for r in group),
                rows=[dict(r) for r in group],
            )
        )
    return out


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _distinct(values: Any) -> list[str]:
    out: list[str] = []
    for value in values:
        if value and str(value) not in out:
            out.append(str(value))
    return out


@dataclass
class ResultsTable:
    """A rendered-ready table: headers, one row of cell texts per method, and notes to print under it.

    Attributes
    ----------
    headers : list of str
    cells : list of list of str
    notes : list of str
        Sentences under the table: data and seeds, energy source, missing reference, BERT vs tf-idf SVM.
    retention : dict of str to float or None
        Rtn (%) per method.
    reference : str
    reference_present : bool
    summaries : list of MethodSummary
    pareto : dict of str to list of str
        Per method, the names of :data:`PARETO_COSTS` on whose front (mean macro-F1 against that cost) it
        lies, in the order of :data:`PARETO_COSTS`; the "Pareto (F1 vs)" column.
    """

    headers: list[str]
    cells: list[list[str]]
    notes: list[str]
    retention: dict[str, float | None]
    reference: str
    reference_present: bool
    summaries: list[MethodSummary]
    pareto: dict[str, list[str]] = field(default_factory=dict)


def format_significant(value: float | None, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits as table text; whole numbers from 10**digits on (8380,
    not 8.38e3), a short exponent below (``2.5e-5``), ``MISSING`` for None. Shared by the reports."""
    if value is None:
        return MISSING
    if value == 0:
        return "0"
    if abs(value) >= 10**digits:
        return f"{value:.0f}"
    text = f"{value:.{digits}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa}e{int(exponent)}"
    return text


def _fmt_fixed(value: float | None, decimals: int) -> str:
    return MISSING if value is None else f"{value:.{decimals}f}"


def _fmt_count(value: float | None) -> str:
    """Human count: 22.7M, 31.2k, 2.87G (SI prefixes, 3 significant digits)."""
    if value is None:
        return MISSING
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"


def _scale(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def _common_int(summaries: Sequence[MethodSummary], key: str, default: int) -> str:
    values = _distinct(r.get(key) for s in summaries for r in s.rows)
    return "/".join(values) if values else str(default)


def build_table(rows: Sequence[Mapping[str, Any]], reference: str = "bert") -> ResultsTable:
    """Build the Table 3 layout from result rows.

    Parameters
    ----------
    rows : sequence of dict
        Rows of ``results.json``.
    reference : str, default "bert"
        Method whose mean macro-F1 is 100 % retention. When it has no rows, Rtn is "–" and a note says so.

    Returns
    -------
    ResultsTable
    """
    summaries = summarize(rows)
    by_method = {s.method: s for s in summaries}
    ref = by_method.get(reference)
    ref_f1 = ref.mean("macro_f1") if ref is not None else None
    latency_bs = _common_int(summaries, "latency_batch_size", 1)
    throughput_bs = _common_int(summaries, "throughput_batch_size", 32)
    headers = [
        "Model",
        "macro-F1 ± std",
        f"Rtn (%) vs {reference}",
        "T_epoch (s)",
        "T (s)",
        "CO2 eq.1 (g)",
        "energy (Wh)",
        f"latency (ms/doc, batch {latency_bs})",
        f"throughput (docs/s, batch {throughput_bs})",
        "params",
        "FLOPs/doc",
        "Pareto (F1 vs)",
    ]
    cells: list[list[str]] = []
    rtn: dict[str, float | None] = {}
    marks = pareto_marks(summaries)
    for s in summaries:
        f1, f1_std = s.stats["macro_f1"]
        rtn[s.method] = retention(f1, ref_f1)
        cells.append(
            [
                s.method,
                MISSING if f1 is None else f"{f1:.3f} ± {f1_std:.3f}",
                _fmt_fixed(rtn[s.method], 1),
                format_significant(s.mean("epoch_duration_s")),
                format_significant(s.mean("train_duration_s")),
                format_significant(_scale(s.mean("paper_emissions_kg_co2eq"), 1000.0)),
                format_significant(_scale(s.mean("train_energy_kwh"), 1000.0)),
                format_significant(s.mean("latency_ms")),
                format_significant(s.mean("throughput_docs_per_s")),
                _fmt_count(s.mean("n_params")),
                _fmt_count(s.mean("flops")),
                ", ".join(marks[s.method]) or MISSING,
            ]
        )
    return ResultsTable(
        headers=headers,
        cells=cells,
        notes=_notes(summaries, reference, ref is not None),
        retention=rtn,
        reference=reference,
        reference_present=ref is not None,
        summaries=summaries,
        pareto=marks,
    )


def pareto_marks(
    summaries: Sequence[MethodSummary], costs: Sequence[tuple[str, str, bool]] = PARETO_COSTS
) -> dict[str, list[str]]:
    """For each method, the costs against which its mean macro-F1 is on the Pareto front.

    Parameters
    ----------
    summaries : sequence of MethodSummary
    costs : sequence of (name, row field, higher is better), default :data:`PARETO_COSTS`
        A cost where higher is better (throughput) enters the front as its reciprocal.

    Returns
    -------
    dict of str to list of str
        ``{method: [cost names]}``, every method present (an empty list when on no front). A method whose
        mean macro-F1 or cost is missing (a seed without it) is on no front for that cost.
    """
    out: dict[str, list[str]] = {s.method: [] for s in summaries}
    scores = [s.mean("macro_f1") for s in summaries]
    for name, key, higher_is_better in costs:
        values = [s.mean(key) for s in summaries]
        if higher_is_better:
            values = [None if v is None or v <= 0 else 1.0 / v for v in values]
        for i in pareto_front(values, scores):
            out[summaries[i].method].append(name)
    return out


def _notes(summaries: Sequence[MethodSummary], reference: str, reference_present: bool) -> list[str]:
    notes: list[str] = []
    all_rows = [r for s in summaries for r in s.rows]
    if all_rows:
        first = all_rows[0]
        datasets = _distinct(r.get("dataset") for r in all_rows)
        splits = _distinct(r.get("eval_split") for r in all_rows)
        n_seeds = sorted({len(s.seeds) for s in summaries})
        seeds_text = "/".join(str(n) for n in n_seeds)
        notes.append(
            f"Data: {', '.join(datasets) or 'unknown'} ({first.get('task', 'task unknown')}, "
            f"{first.get('n_train', '?')} train / {first.get('n_validation', '?')} validation / "
            f"{first.get('n_test', '?')} test documents); scores on the {' and '.join(splits) or 'test'} "
            "split; "
            f"mean ± sample std over {seeds_text} seed(s) per method (std 0 for a single seed)."
        )
        if any(sp != "test" for sp in splits):
            notes.append(
                "The data has no test split: scores are on the validation split, which methods also "
                "use for model selection, so they are optimistic."
            )
    sources = _distinct(src for s in summaries for src in s.energy_sources)
    notes.append(
        "Energy (Wh): " + ("; ".join(sources) if sources else "not measured") + ". "
        "CO2 eq.1: equation 1 of Chaudhary et al. (2020), 0.07 kW x T x 0.61 kg CO2eq/kWh, "
        "a formula, not a measurement."
    )
    if not reference_present:
        notes.append(
            f"The reference method {reference!r} is not in these results, so retention (Rtn) is not computed."
        )
    for s in summaries:
        trainers = _distinct(r["notes"].get("trained_by") for r in s.rows
                             if isinstance(r.get("notes"), Mapping))
        if trainers:
            notes.append(
                f"{s.method} predicts with the model trained by {' and '.join(trainers)} (same seed; only "
                "inference settings differ): its T_epoch, T, CO2 and energy columns are those of that "
                "training."
            )
    by_method = {s.method: s for s in summaries}
    if "bert" in by_method and "tfidf-svm" in by_method:
        bert, svm = by_method["bert"].mean("macro_f1"), by_method["tfidf-svm"].mean("macro_f1")
        if bert is not None and svm is not None:
            points = (bert - svm) * 100.0
            if round(abs(points), 1) == 0.0:
                relation = "equal to (within 0.05 points of) tfidf-svm"
            else:
                relation = f"{abs(points):.1f} points {'below' if points < 0 else 'above'} tfidf-svm"
            notes.append(f"bert macro-F1 is {relation} ({bert:.3f} vs {svm:.3f}).")
    return notes


def render_markdown(table: ResultsTable) -> str:
    """Render the table as GitHub Markdown, followed by its notes (one paragraph each)."""
    lines = [
        "| " + " | ".join(table.headers) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(table.headers))) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table.cells]
    text = "\n".join(lines) + "\n"
    if table.notes:
        text += "\n" + "\n\n".join(table.notes) + "\n"
    return text


def render_rich(
    table: ResultsTable, title: str | None = "frugaltext compare", width: int | None = None
) -> Any:
    """Render the table as a :class:`rich.table.Table` (notes in the caption), for printing to a terminal.

    When ``width`` (the terminal's columns) is below 140, the table is transposed (one row per measure, one
    column per method), so that it stays readable in an 80-column terminal.
    """
    from rich.table import Table

    caption = "\n".join(table.notes)
    if width is not None and width < 140:
        out = Table(title=title, caption=caption, caption_justify="left")
        out.add_column(table.headers[0], justify="left")
        for row in table.cells:
            out.add_column(row[0], justify="right")
        for i, header in enumerate(table.headers[1:], start=1):
            out.add_row(header, *[row[i] for row in table.cells])
        return out
    out = Table(title=title, caption=caption, caption_justify="left")
    for i, header in enumerate(table.headers):
        out.add_column(header, justify="left" if i == 0 else "right", no_wrap=i > 0)
    for row in table.cells:
        out.add_row(*row)
    return out
