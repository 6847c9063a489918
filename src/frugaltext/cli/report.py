"""``frugaltext report``: rebuild table.md and the Pareto plots from a results.json, without training."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from frugaltext.cli.common import console, guard


def report(
    directory: Annotated[
        Path,
        typer.Argument(
            help="Output directory of `frugaltext compare` (holding results.json).",
        ),
    ],
    reference: Annotated[
        str | None,
        typer.Option(
            "--reference",
            help="Method for retention. [default: from config.yaml, else bert]",
        ),
    ] = None,
) -> None:
    """Rebuild table.md, the Pareto plots and, for a `compare --grid` run, grid_METHOD_SETTING.json/.csv/.png
    from DIRECTORY/results.json and print the table."""
    from frugaltext.reports import build_reports
    from frugaltext.reports.table import render_rich

    with guard():
        result = build_reports(directory, reference=reference)
    console.print(render_rich(result.table, width=console.width))
    console.print("Written: " + ", ".join(str(p) for p in result.paths.values()))
