"""Grid reports: macro-F1 and training time against one setting, from the rows of a ``compare --grid`` run.

DocBERT (Adhikari et al. 2019, appendix A.1, Figure 2) plots F1 against the maximum sequence length and
against the number of fine-tuning epochs. ``frugaltext compare --grid bert.max_length=64,128,256,512`` runs
one variant per value; each of its rows holds ``grid: {method, setting, value}``. From those rows alone this
module writes, per gridded ``(method, setting)``:

* ``grid_<method>_<setting>.json``: the method, setting, dataset, evaluation split and one entry per value
  (:func:`summarize_grid`);
* ``grid_<method>_<setting>.csv``: the same entries, one line per value;
* ``grid_<method>_<setting>.png`` / ``.svg``: mean macro-F1 (left axis, error bars: sample std over seeds)
  and mean training time ``T`` (right axis, ``train_duration_s``) against the setting (:func:`plot_grid`);
* a section of ``table.md`` (:func:`render_grid_section`).

Unlike DocBERT's figure (validation set), the scores are those of the comparison's evaluation split (the test
split when the data has one); the report says which.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from frugaltext.metrics import mean_std
from frugaltext.reports.table import format_significant

__all__ = ["grid_groups", "plot_grid", "render_grid_section", "summarize_grid", "write_grid_reports"]

#: Columns of ``grid_<method>_<setting>.csv`` (and keys of each entry of the JSON ``points``).
GRID_COLUMNS = (
    "value",
    "row",
    "n_seeds",
    "seeds",
    "macro_f1_mean",
    "macro_f1_std",
    "micro_f1_mean",
    "micro_f1_std",
    "accuracy_mean",
    "train_duration_s_mean",
    "train_duration_s_std",
    "epoch_duration_s_mean",
    "n_epochs_mean",
)


def grid_groups(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], list[Mapping[str, Any]]]:
    """Rows that belong to a grid, by ``(method, setting)`` in order of first appearance.

    A row belongs to a grid when it has a ``grid`` mapping with ``method``, ``setting`` and ``value`` (written
    by :func:`frugaltext.experiment.runner.run_compare` for the variants of ``--grid``); other rows are left
    out.
    """
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        point = row.get("grid")
        if isinstance(point, Mapping) and {"method", "setting", "value"} <= set(point):
            groups.setdefault((str(point["method"]), str(point["setting"])), []).append(row)
    return groups


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: Any) -> float | None:
    return float(value) if _is_number(value) and math.isfinite(value) else None


def summarize_grid(rows: Sequence[Mapping[str, Any]], method: str, setting: str) -> dict[str, Any]:
    """One entry per grid value of ``(method, setting)``: scores and training time over the seeds.

    Parameters
    ----------
    rows : sequence of dict
        Rows of ``results.json``; those whose ``grid`` is ``(method, setting)`` are used.
    method, setting : str
        The gridded method (or variant) and setting, e.g. ``"bert"``, ``"max_length"``.

    Returns
    -------
    dict
        ``method``, ``setting``, ``datasets``, ``eval_splits`` and ``points``: a list sorted by value (numbers
        ascending; other values in order of first appearance), each with ``value``, ``row`` (the variant
        name), ``seeds``, ``n_seeds``, ``macro_f1_mean``/``_std``, ``micro_f1_mean``/``_std``,
        ``accuracy_mean``, ``train_duration_s_mean``/``_std`` (seconds, the whole fit),
        ``epoch_duration_s_mean`` (seconds per epoch, mean over epochs and seeds), ``n_epochs_mean`` and
        ``epoch_durations_s`` (per seed: the duration of each epoch, in seconds). Stds are sample stds over
        seeds (0.0 for one seed); a value missing in one seed's row makes the mean and std None
        (:func:`frugaltext.metrics.mean_std`).

    Raises
    ------
    DataFormatError
        If no row belongs to that grid.
    """
    from frugaltext.errors import DataFormatError

    group = grid_groups(rows).get((method, setting), [])
    if not group:
        raise DataFormatError(f"no result row holds grid {method}.{setting}; run compare --grid first")
    by_value: dict[str, list[Mapping[str, Any]]] = {}
    for row in group:
        by_value.setdefault(json.dumps(row["grid"]["value"], sort_keys=True), []).append(row)
    points = []
    for value_rows in by_value.values():
        value_rows = sorted(value_rows, key=lambda r: r.get("seed", 0))
        point: dict[str, Any] = {
            "value": value_rows[0]["grid"]["value"],
            "row": ", ".join(dict.fromkeys(str(r.get("method")) for r in value_rows)),
            "seeds": [r.get("seed") for r in value_rows],
            "n_seeds": len(value_rows),
        }
        for key in ("macro_f1", "micro_f1", "accuracy", "train_duration_s", "epoch_duration_s", "n_epochs"):
            mean, std = mean_std([_number(r.get(key)) for r in value_rows])
            point[f"{key}_mean"] = mean
            if key in ("macro_f1", "micro_f1", "train_duration_s"):
                point[f"{key}_std"] = std
        point["epoch_durations_s"] = [list(r.get("epoch_durations_s") or []) for r in value_rows]
        points.append(point)
    if all(_is_number(p["value"]) for p in points):
        points.sort(key=lambda p: p["value"])
    return {
        "method": method,
        "setting": setting,
        "datasets": sorted({str(r["dataset"]) for r in group if r.get("dataset")}),
        "eval_splits": sorted({str(r["eval_split"]) for r in group if r.get("eval_split")}),
        "points": points,
    }


def grid_file_stem(method: str, setting: str) -> str:
    """``grid_<method>_<setting>``: the name (without extension) of a grid's report files."""
    return f"grid_{method}_{setting}"


def _csv_text(summary: Mapping[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(GRID_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for point in summary["points"]:
        cells = {}
        for key in GRID_COLUMNS:
            value = point.get(key)
            if isinstance(value, list | dict):
                value = json.dumps(value)
            cells[key] = "" if value is None else value
        writer.writerow(cells)
    return buffer.getvalue()


def _fmt(value: Any, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _seconds(value: Any) -> str:
    """Three significant digits, whole seconds from 1,000 s on (1100, not 1.1e+03), as table.md's table."""
    return "–" if value is None else format_significant(value)


def _value_text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def render_grid_section(summaries: Sequence[Mapping[str, Any]]) -> str:
    """Markdown section of ``table.md`` with one table per grid (``""`` when there is none).

    Columns: the setting's value, seeds, macro-F1 ± std, micro-F1, ``T`` (s, mean training time) and
    ``T_epoch`` (s, mean epoch time).
    """
    if not summaries:
        return ""
    parts = ["## Grids", ""]
    for summary in summaries:
        split = "/".join(summary["eval_splits"]) or "evaluation"
        data = ", ".join(summary["datasets"])
        parts.append(
            f"### {summary['method']} over {summary['setting']}"
            + (f" ({data}, {split} split)" if data else f" ({split} split)")
        )
        parts.append("")
        parts.append(f"| {summary['setting']} | seeds | macro-F1 ± std | micro-F1 | T (s) | T_epoch (s) |")
        parts.append("|---|---|---|---|---|---|")
        for p in summary["points"]:
            f1 = f"{_fmt(p['macro_f1_mean'])} ± {_fmt(p['macro_f1_std'])}"
            parts.append(
                f"| {_value_text(p['value'])} | {p['n_seeds']} | {f1} | {_fmt(p['micro_f1_mean'])} | "
                f"{_seconds(p['train_duration_s_mean'])} | {_seconds(p['epoch_duration_s_mean'])} |"
            )
        stem = grid_file_stem(summary["method"], summary["setting"])
        parts.append("")
        parts.append(f"Plot: `{stem}.png`; every value: `{stem}.json`, `{stem}.csv`.")
        parts.append("")
    return "\n".join(parts).rstrip("\n") + "\n"


def plot_grid(
    summary: Mapping[str, Any],
    png_path: str | Path,
    svg_path: str | Path | None = None,
) -> list[Path]:
    """Draw mean macro-F1 (left axis) and mean training time (right axis) against the grid's setting.

    As DocBERT's Figure 2 (F1 against maximum sequence length and against epochs), with training time added:
    macro-F1 with error bars of the sample std over seeds (circles, solid line), training time ``T`` in
    seconds (``train_duration_s``, squares, dashed line, its std as error bars). Numeric values are placed
    at their value (log scale when all are positive and span a factor of 8 or more, e.g. 64..512 or
    0.1..10), with a tick at each; other values (text, true/false) are evenly spaced. A value without a
    measured time has no square.

    Parameters
    ----------
    summary : mapping
        From :func:`summarize_grid`.
    png_path : path
    svg_path : path, optional

    Returns
    -------
    list of Path
        The files written.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    points = list(summary["points"])
    values = [p["value"] for p in points]
    numeric = all(_is_number(v) for v in values)
    xs = [float(v) for v in values] if numeric else list(range(len(values)))
    labels = [_value_text(v) for v in values]

    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    seeds = sorted({p["n_seeds"] for p in points})
    f1 = [(x, p["macro_f1_mean"], p["macro_f1_std"] or 0.0) for x, p in zip(xs, points, strict=True)
          if p["macro_f1_mean"] is not None]
    handles = []
    if f1:
        handles.append(ax.errorbar([a for a, _, _ in f1], [b for _, b, _ in f1], yerr=[c for _, _, c in f1],
                                   fmt="o-", color="C0", capsize=3, label="macro-F1"))
    ax.set_ylabel(f"macro-F1 (mean ± std over {'/'.join(str(s) for s in seeds)} seeds)", color="C0")
    ax.tick_params(axis="y", colors="C0")
    right = ax.twinx()
    times = [(x, p["train_duration_s_mean"], p["train_duration_s_std"] or 0.0)
             for x, p in zip(xs, points, strict=True) if p["train_duration_s_mean"] is not None]
    if times:
        handles.append(right.errorbar([a for a, _, _ in times], [b for _, b, _ in times],
                                      yerr=[c for _, _, c in times], fmt="s--", color="C1", capsize=3,
                                      label="training time T (s)"))
    right.set_ylabel("training time T (s)", color="C1")
    right.tick_params(axis="y", colors="C1")
    if numeric and min(xs) > 0 and max(xs) / min(xs) >= 8:
        ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(xs))
    ax.set_xticks(xs, labels)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    if not numeric:
        ax.set_xlim(-0.5, len(xs) - 0.5)
    ax.set_xlabel(f"{summary['setting']} ({summary['method']})")
    ax.grid(True, alpha=0.3)
    data = ", ".join(summary.get("datasets") or [])
    split = "/".join(summary.get("eval_splits") or []) or "evaluation"
    ax.set_title(f"{summary['method']}: macro-F1 and training time against {summary['setting']}"
                 + (f"\n{data}, {split} split" if data else f"\n{split} split"), fontsize=10)
    if handles:
        ax.legend(handles=handles, loc="best", fontsize=8)
    from frugaltext.fileio import atomic_write_bytes

    written = []
    try:
        for path in (png_path, svg_path):
            if path is None:
                continue
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            buffer = io.BytesIO()
            fig.savefig(buffer, dpi=150, format=path.suffix.lstrip(".").lower() or "png")
            atomic_write_bytes(path, buffer.getvalue())
            written.append(path)
    finally:
        plt.close(fig)
    return written


def write_grid_reports(
    rows: Sequence[Mapping[str, Any]], output_dir: str | Path, plot: bool = True
) -> tuple[list[dict[str, Any]], dict[str, Path]]:
    """Write the JSON, CSV and (with ``plot``) PNG/SVG of every grid found in ``rows`` into ``output_dir``.

    Every file is written atomically (:mod:`frugaltext.fileio`: a hidden temporary file, then a rename).

    Returns
    -------
    (list of dict, dict of str to Path)
        The summaries (:func:`summarize_grid`) and the files written, keyed
        ``grid_<method>_<setting>_json`` / ``_csv`` / ``_png`` / ``_svg``. Empty when no row is a grid row.
    """
    from frugaltext.fileio import atomic_write_text

    output_dir = Path(output_dir)
    summaries: list[dict[str, Any]] = []
    paths: dict[str, Path] = {}
    for method, setting in grid_groups(rows):
        summary = summarize_grid(rows, method, setting)
        summaries.append(summary)
        stem = grid_file_stem(method, setting)
        json_path, csv_path = output_dir / f"{stem}.json", output_dir / f"{stem}.csv"
        atomic_write_text(json_path, json.dumps(summary, indent=2) + "\n")
        atomic_write_text(csv_path, _csv_text(summary))
        paths[f"{stem}_json"], paths[f"{stem}_csv"] = json_path, csv_path
        if plot:
            png, svg = output_dir / f"{stem}.png", output_dir / f"{stem}.svg"
            plot_grid(summary, png, svg)
            paths[f"{stem}_png"], paths[f"{stem}_svg"] = png, svg
    return summaries, paths
