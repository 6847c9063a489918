"""``frugaltext select``: the cheapest model of a run that keeps a share of the reference's macro-F1."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from frugaltext.cli.common import console, guard


def select(
    run_dir: Annotated[
        Path,
        typer.Argument(help="Output directory of `frugaltext compare` (holding results.json and models/)."),
    ],
    min_retention: Annotated[
        float,
        typer.Option(
            "--min-retention",
            help="Share of the reference's mean macro-F1 to keep, in percent (99 = 99 %; above 100 asks for "
            "a model better than --reference).",
        ),
    ] = 99.0,
    objective: Annotated[
        str,
        typer.Option(
            "--objective",
            help="What to minimise or maximise: energy (inference kWh per 1,000 documents), latency "
            "(ms/doc), throughput (docs/s, higher is better) or train-time (s).",
        ),
    ] = "energy",
    reference: Annotated[
        str | None,
        typer.Option(
            "--reference",
            help="Method whose mean macro-F1 is 100 %. [default: the method of highest mean macro-F1]",
        ),
    ] = None,
    no_copy: Annotated[
        bool,
        typer.Option("--no-copy", help="Only decide and print; write nothing (no RUN_DIR/selected)."),
    ] = False,
    copy: Annotated[
        bool,
        typer.Option("--copy", help="Copy the model files even where they could be hard-linked."),
    ] = False,
) -> None:
    """Pick the cheapest method that keeps MIN-RETENTION % of the reference's macro-F1 (means over seeds).

    Prints the pick with its measured costs, the runner-up and every candidate, then puts the model of the
    pick's median-macro-F1 seed into `RUN_DIR/selected/` (hard-linked on the same filesystem, else copied;
    replacing an older selection atomically) with a README.md saying why and a selection.json. Ties on the
    objective go to the higher macro-F1, then fewer parameters, then the name. Exit code 1 when no method
    meets the constraint (the message gives the best retention reached).
    """
    from frugaltext.selection import select as run

    with guard():
        try:
            selection = run(
                run_dir,
                min_retention=min_retention,
                objective=objective,
                reference=reference,
                copy_model=not no_copy,
                copy=copy,
            )
        except OSError as err:  # e.g. a read-only run folder, a full disk; the older selected/ is kept
            typer.secho(
                f"Error: could not write {run_dir / 'selected'}: {err}; free space or make {run_dir} "
                "writable, or decide without writing (--no-copy)",
                fg="red",
                err=True,
            )
            raise typer.Exit(code=1) from None
    print_selection(selection)


_OBJECTIVE_COLUMNS = {
    "energy": "energy (kWh/1k docs)",
    "latency": "latency (ms/doc)",
    "throughput": "throughput (docs/s)",
    "train-time": "T (s)",
}


def print_selection(selection: Any) -> None:
    """Print a :class:`frugaltext.selection.Selection`: reference, constraint, pick, runner-up, candidates."""
    from rich.table import Table

    from frugaltext.selection import CANDIDATE_HEADERS, candidate_cells, describe

    text = describe(selection)
    console.print(f"Reference: {text['reference']}.", highlight=False)
    console.print(f"Constraint: {text['constraint']}; objective: {text['objective']}.", highlight=False)
    console.print("Every number is the mean over the method's seeds.", highlight=False)
    columns = list(range(len(CANDIDATE_HEADERS)))
    if console.width < 140:  # narrow terminal: the objective's column only, macro-F1 without its std
        objective_column = CANDIDATE_HEADERS.index(_OBJECTIVE_COLUMNS[selection.objective.name])
        columns = [0, 1, 2, 3, 4, objective_column, len(CANDIDATE_HEADERS) - 1]
    table = Table(title="candidates (means over seeds)")
    for i in columns:
        table.add_column(CANDIDATE_HEADERS[i], justify="left" if i in (1, 10) else "right")
    for row in candidate_cells(selection):
        cells = [row[i] for i in columns]
        if len(columns) < len(CANDIDATE_HEADERS):
            cells[3] = cells[3].split(" ± ")[0]
        table.add_row(*cells)
    console.print(table)
    console.print(f"[bold green]Selected[/]: {text['selected']}.", highlight=False)
    console.print(f"Runner-up: {text['runner_up']}.", highlight=False)
    if selection.selected_dir is not None:
        console.print(f"Model folder: {text['seed']}; {text['transfer']} (README.md, selection.json).",
                      highlight=False)
    else:
        console.print(f"Model folder: {text['seed']}; nothing written (--no-copy).", highlight=False)
    missing = selection.missing_model_dirs
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        console.print(
            f"[yellow]{len(missing)} row(s) have no model folder[/] (their measurements still count): "
            + shown,
            highlight=False,
        )
