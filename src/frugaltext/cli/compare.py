"""``frugaltext compare``: train and evaluate methods side by side with measured costs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from frugaltext.cli.common import console, extra_options, guard


def compare(
    ctx: typer.Context,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="Embedded dataset name (see `frugaltext datasets`) or path. [default: the preset's, r8]",
        ),
    ] = None,
    methods: Annotated[
        str | None,
        typer.Option(
            "--methods",
            help="Comma-separated methods, e.g. tfidf-lr,tfidf-svm,bert.",
        ),
    ] = None,
    seeds: Annotated[
        int | None, typer.Option("--seeds", min=1, help="Number of seeds per method (0, 1, ...).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Output directory. [default: runs/latest]",
        ),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            help="quick (default, ~20 min on 2 CPU cores), paper (512 tokens, 4 epochs, 3 seeds) "
            "or table3 (TopicBERT Table 3 rows at 256 tokens).",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="YAML file with the layout of a preset; overrides it.",
        ),
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(
            "--reference",
            help="Method for the retention column. [default: bert]",
        ),
    ] = None,
    progress: Annotated[
        bool,
        typer.Option(
            "--progress/--no-progress",
            help="Show a progress bar over the runs.",
        ),
    ] = True,
    select: Annotated[
        bool | None,
        typer.Option(
            "--select/--no-select",
            help="At the end, put the cheapest model keeping --select-min-retention % of the reference's "
            "macro-F1 into OUTPUT/selected (as `frugaltext select`). [default: the config's select block]",
        ),
    ] = None,
    select_min_retention: Annotated[
        float | None,
        typer.Option(
            "--select-min-retention",
            help="Share of the reference's macro-F1 to keep, in percent (implies --select). [default: 99]",
        ),
    ] = None,
    select_objective: Annotated[
        str | None,
        typer.Option(
            "--select-objective",
            help="energy, latency, throughput or train-time (implies --select). [default: energy]",
        ),
    ] = None,
    grid: Annotated[
        list[str] | None,
        typer.Option(
            "--grid",
            metavar="METHOD.SETTING=V1,V2,...",
            help="METHOD.SETTING=v1,v2,...: run the method once per value (rows METHOD@SETTING-VALUE) and "
            "write grid_METHOD_SETTING.json/.csv/.png (macro-F1 and training time against the setting), "
            "e.g. --grid bert.max_length=64,128,256,512. One per method; repeat for other methods.",
        ),
    ] = None,
) -> None:
    """Train and evaluate every method over the seeds; write results.json/.csv, table.md and pareto.png.

    Any other setting is given as `--key value`: compare settings (`--max-train-docs 500`,
    `--max-test-docs 500`, `--text-field body`, `--label-field topic`, `--multi-label`), method settings
    written `--<method>.<setting>` (`--bert.epochs 3`, `--bert.max-length 256`,
    `--bert.model-name-or-path /path/to/bert-base-uncased`) and cost-meter settings `--cost.<setting>`
    (`--cost.measure-energy false`). `--grid bert.max-length=64,128,256,512` (or a `grid:` block in the
    config) replaces `bert` by one row per value and adds a plot of macro-F1 and training time against the
    setting. Precedence: preset < `--config` file < command line. Runs already in
    `OUTPUT/results.json` with the same settings are skipped (resume). With `--select` (or a `select:` block
    in the config), the run ends like `frugaltext select OUTPUT`: the reference is `--select.reference`, else
    `--reference` when it has rows, else the best method; exit code 1 when nothing meets the constraint
    (the results and reports are written before).
    """
    from frugaltext.api import compare as run
    from frugaltext.reports.table import render_rich

    with guard():
        overrides = extra_options(ctx)
        if reference is not None:
            overrides["reference"] = reference
        if select is not None:
            overrides["select"] = select
        if select_min_retention is not None:
            overrides["select.min_retention"] = select_min_retention
        if select_objective is not None:
            overrides["select.objective"] = select_objective
        if grid:
            overrides["grid"] = list(grid)
        result = run(
            data=data,
            methods=methods,
            seeds=seeds,
            output=output,
            preset=preset,
            config=config,
            progress=progress,
            **overrides,
        )
    console.print(render_rich(result.table, width=console.width))
    done = f"{len(result.ran)} run(s) trained, {len(result.skipped)} skipped (already done)"
    grid_files = sorted(p.name for k, p in result.paths.items() if k.startswith("grid_"))
    console.print(
        f"{done}. Results in {result.output_dir}: results.json, results.csv, table.md, pareto.png, "
        "pareto_inference.png, config.yaml, logs/, models/" + "".join(f", {name}" for name in grid_files)
    )
    if result.selection is not None:
        from frugaltext.cli.select import print_selection

        print_selection(result.selection)
