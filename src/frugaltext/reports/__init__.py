"""Reports made from ``results.json`` alone: the Table 3 layout (``table.md``), the Pareto plots
(``pareto.png``/``.svg``: training cost; ``pareto_inference.png``/``.svg``: inference cost) and, for the rows
of a ``compare --grid`` run, the grid reports (``grid_<method>_<setting>.json``/``.csv``/``.png``/``.svg``,
:mod:`frugaltext.reports.grid`).

Because they read only the stored rows, reports can be rebuilt without training:
``frugaltext report runs/demo`` or ``frugaltext.reports.build_reports("runs/demo/results.json")``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frugaltext.errors import ConfigError, DataFormatError, DataNotFoundError
from frugaltext.experiment.results import read_results

__all__ = ["Report", "build_reports"]


@dataclass
class Report:
    """What :func:`build_reports` wrote.

    Attributes
    ----------
    table : frugaltext.reports.table.ResultsTable
    markdown : str
        Content of ``table.md``.
    paths : dict of str to Path
        ``table``, ``pareto_png``, ``pareto_svg``, ``pareto_inference_png``, ``pareto_inference_svg``; for
        each grid ``grid_<method>_<setting>_json``, ``_csv``, ``_png`` and ``_svg``.
    """

    table: Any
    markdown: str
    paths: dict[str, Path]


def _reference_from_config(directory: Path) -> str | None:
    path = directory / "config.yaml"
    if not path.is_file():
        return None
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        return None
    ref = data.get("reference") if isinstance(data, dict) else None
    return str(ref) if ref else None


def build_reports(
    results_json: str | os.PathLike[str],
    reference: str | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    plot: bool = True,
) -> Report:
    """Write ``table.md``, ``pareto.png``/``pareto.svg`` (macro-F1 against training time and CO2) and
    ``pareto_inference.png``/``pareto_inference.svg`` (against inference energy per 1,000 documents and
    latency) from a ``results.json``; when rows come from a ``compare --grid`` run (they hold ``grid``), also
    ``grid_<method>_<setting>.json``/``.csv``/``.png``/``.svg`` and a grid section of ``table.md``
    (:func:`frugaltext.reports.grid.write_grid_reports`).

    Parameters
    ----------
    results_json : path
        A ``results.json`` written by :func:`frugaltext.experiment.runner.run_compare`, or the directory
        holding it.
    reference : str, optional
        Method for retention; default: ``reference`` in the ``config.yaml`` beside the results, else ``bert``.
    output_dir : path, optional
        Where to write; default: the directory of ``results_json``.
    plot : bool, default True
        Also draw the Pareto plots (both figures) and the grid plots.

    Returns
    -------
    Report

    Raises
    ------
    DataNotFoundError
        If there is no ``results.json``.
    DataFormatError
        If it is not a JSON list of rows, it is empty, or a row lacks ``method``/``seed``.
    """
    from frugaltext.fileio import atomic_write_text
    from frugaltext.reports.grid import render_grid_section, write_grid_reports
    from frugaltext.reports.table import build_table, render_markdown
    from frugaltext.reports.topics import render_topic_section

    path = Path(results_json)
    if path.is_dir() or path.suffix.lower() != ".json":
        path = path / "results.json"
    if not path.is_file():
        raise DataNotFoundError(
            f"{path} does not exist; run `frugaltext compare --output DIR` first, then "
            "`frugaltext report DIR`"
        )
    rows = read_results(path)
    if not rows:
        raise DataFormatError(f"{path} holds no result rows; run `frugaltext compare` to fill it")
    for i, row in enumerate(rows):
        missing = [k for k in ("method", "seed") if k not in row]
        if missing:
            raise DataFormatError(
                f"{path}: row {i + 1} lacks {', '.join(missing)}; every row needs method and seed"
            )
    if reference is not None and not str(reference):
        raise ConfigError("reference must be a method name, e.g. bert")
    reference = reference or _reference_from_config(path.parent) or "bert"
    out_dir = Path(output_dir) if output_dir is not None else path.parent
    out_dir.mkdir(parents=True, exist_ok=True)

    table = build_table(rows, reference=reference)
    markdown = render_markdown(table)
    topic_section = render_topic_section(rows, path.parent)
    if topic_section:
        markdown = markdown.rstrip("\n") + "\n\n" + topic_section + "\n"
    grid_summaries, grid_paths = write_grid_reports(rows, out_dir, plot=plot)
    if grid_summaries:
        markdown = markdown.rstrip("\n") + "\n\n" + render_grid_section(grid_summaries)
    paths = {"table": out_dir / "table.md"}
    atomic_write_text(paths["table"], markdown)
    if plot:
        from frugaltext.reports.pareto import plot_pareto, plot_pareto_inference

        datasets = sorted({str(r.get("dataset")) for r in rows if r.get("dataset")})
        where = f" ({', '.join(datasets)})" if datasets else ""
        title = f"macro-F1 against training cost{where}" if datasets else None
        png, svg = out_dir / "pareto.png", out_dir / "pareto.svg"
        plot_pareto(table.summaries, png, svg, title=title)
        paths["pareto_png"], paths["pareto_svg"] = png, svg
        png, svg = out_dir / "pareto_inference.png", out_dir / "pareto_inference.svg"
        plot_pareto_inference(table.summaries, png, svg, title=f"macro-F1 against inference cost{where}")
        paths["pareto_inference_png"], paths["pareto_inference_svg"] = png, svg
    paths.update(grid_paths)
    return Report(table=table, markdown=markdown, paths=paths)
