"""Pareto fronts of quality against cost, and the two-panel plots ``pareto.png`` / ``pareto.svg`` (training
cost) and ``pareto_inference.png`` / ``pareto_inference.svg`` (inference cost).

A method is on the front when no other method is at least as good in both respects (cost no higher, macro-F1
no lower) and strictly better in one. The front is drawn as a step line: between two front points the best
score reachable at that cost is the cheaper point's score (an "attainment" staircase).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from frugaltext.reports.front import pareto_front

if TYPE_CHECKING:
    from frugaltext.reports.table import MethodSummary

__all__ = ["pareto_front", "plot_pareto", "plot_pareto_inference"]


_PANELS = (
    ("train_duration_s", 1.0, "training time T (s, log scale)"),
    ("train_emissions_kg_co2eq", 1000.0, "training CO2 (g CO2eq, codecarbon, log scale)"),
)
_PAPER_CO2 = ("paper_emissions_kg_co2eq", 1000.0, "training CO2 by eq. 1 (g CO2eq, log scale)")


def plot_pareto(
    summaries: Sequence[MethodSummary],
    png_path: str | Path,
    svg_path: str | Path | None = None,
    title: str | None = None,
) -> list[Path]:
    """Draw macro-F1 against training time and against training CO2, with the Pareto front marked.

    Left panel: mean macro-F1 over seeds against mean training time ``T`` (``train_duration_s``, log x).
    Right panel: against the measured training emissions (codecarbon ``train_emissions_kg_co2eq``, in g);
    when a method lacks that measurement, the panel uses equation 1 of Chaudhary et al. (2020) for every
    method instead and says so in its axis label. Error bars are the sample std over seeds; every point is
    labelled with its method; front points are ringed and joined by a step line.

    Parameters
    ----------
    summaries : sequence of MethodSummary
        From :func:`frugaltext.reports.table.summarize`.
    png_path : path
    svg_path : path, optional

    Returns
    -------
    list of Path
        The files written.
    """
    panels = list(_PANELS)
    if any(s.mean("train_emissions_kg_co2eq") in (None, 0.0) for s in summaries):
        panels[1] = _PAPER_CO2
    return _draw(summaries, panels, png_path, svg_path, title)


def plot_pareto_inference(
    summaries: Sequence[MethodSummary],
    png_path: str | Path,
    svg_path: str | Path | None = None,
    title: str | None = None,
) -> list[Path]:
    """Draw macro-F1 against inference energy per 1,000 documents and against latency, front marked.

    Left panel: mean macro-F1 over seeds against the mean inference energy per 1,000 documents (kWh;
    ``inference_energy_kwh_per_doc`` x 1000, measured by codecarbon over the throughput block, log x).
    Right panel: against the mean latency (``latency_ms``, one document per call, log x). The same drawing
    as :func:`plot_pareto` (error bars: sample std over seeds; front points ringed and joined by a step
    line); the quantities are those of ``frugaltext select --objective energy`` and ``latency``.

    Parameters
    ----------
    summaries : sequence of MethodSummary
        From :func:`frugaltext.reports.table.summarize`.
    png_path : path
    svg_path : path, optional
    title : str, optional

    Returns
    -------
    list of Path
        The files written.
    """
    rows = [r for s in summaries for r in s.rows]
    throughput_bs = "/".join(sorted({str(r["throughput_batch_size"]) for r in rows
                                     if r.get("throughput_batch_size")})) or "32"
    latency_bs = "/".join(sorted({str(r["latency_batch_size"]) for r in rows
                                  if r.get("latency_batch_size")})) or "1"
    panels = [
        (
            "inference_energy_kwh_per_doc",
            1000.0,
            f"inference energy (kWh per 1,000 documents, batch {throughput_bs}, log scale)",
        ),
        ("latency_ms", 1.0, f"latency (ms per document, batch {latency_bs}, log scale)"),
    ]
    return _draw(summaries, panels, png_path, svg_path, title)


def _draw(
    summaries: Sequence[MethodSummary],
    panels: Sequence[tuple[str, float, str]],
    png_path: str | Path,
    svg_path: str | Path | None,
    title: str | None,
) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(11, 5), constrained_layout=True)
    for ax, (key, factor, label) in zip(axes, panels, strict=True):
        _panel(ax, summaries, key, factor)
        ax.set_xlabel(label)
        ax.set_ylabel("macro-F1")
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(
            handles, labels, loc="outside lower center", ncol=min(len(labels), 6), fontsize=8, frameon=False
        )
    if title:
        fig.suptitle(title)
    written = []
    for path in (png_path, svg_path):
        if path is None:
            continue
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150)
        written.append(path)
    plt.close(fig)
    return written


def _panel(ax: Any, summaries: Sequence[MethodSummary], key: str, factor: float) -> None:
    xs: list[float | None] = []
    ys: list[float | None] = []
    for s in summaries:
        x, y = s.mean(key), s.mean("macro_f1")
        xs.append(None if x is None or x <= 0 else x * factor)
        ys.append(y)
    front = pareto_front(xs, ys)
    plotted = False
    for i, s in enumerate(summaries):
        if xs[i] is None or ys[i] is None:
            continue
        x_std = (s.std(key) or 0.0) * factor
        y_std = s.std("macro_f1") or 0.0
        ax.errorbar(
            xs[i],
            ys[i],
            xerr=x_std if x_std else None,
            yerr=y_std if y_std else None,
            fmt="o",
            capsize=3,
            label=s.method,
        )
        ax.annotate(s.method, (xs[i], ys[i]), textcoords="offset points", xytext=(5, 5), fontsize=8)
        plotted = True
    if front:
        fx = [xs[i] for i in front]
        fy = [ys[i] for i in front]
        ax.step(fx, fy, where="post", color="black", linestyle="--", linewidth=1, label="Pareto front")
        ax.scatter(fx, fy, s=140, facecolors="none", edgecolors="black", linewidths=1.2)
    if plotted:
        _plain_log_axis(ax)
        ax.margins(x=0.12, y=0.12)
    else:
        ax.text(0.5, 0.5, "no measured values", ha="center", va="center", transform=ax.transAxes)


def _plain_log_axis(ax: Any) -> None:
    """Log x axis with ticks at 1, 2 and 5 times each power of ten, written as plain numbers (``0.2``,
    ``500``) rather than ``2 x 10^-1``, and no labels on the minor ticks (they collide when the axis spans
    less than a decade)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
