"""``frugaltext evaluate``: score a saved model on a split of a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from frugaltext.cli.common import console, guard


def evaluate(
    model: Annotated[
        Path, typer.Option("--model", help="Directory of a saved model (from `frugaltext train`).")
    ],
    data: Annotated[str, typer.Option("--data", help="Embedded dataset name, directory or single file.")],
    split: Annotated[
        str,
        typer.Option(
            "--split",
            help="train, validation or test (a single file is evaluated whole).",
        ),
    ] = "test",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="JSON file for the scores. [default: MODEL/eval-SPLIT.json]",
        ),
    ] = None,
    text_field: Annotated[
        str, typer.Option("--text-field", help="Column/key of the document text.")
    ] = "text",
    label_field: Annotated[
        str | None, typer.Option("--label-field", help="Column/key of the label(s).")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Prediction batch size.")] = 32,
) -> None:
    """Print accuracy, macro-/micro-/weighted-F1 and per-class scores of MODEL on DATA; write them as JSON."""
    from rich.table import Table

    from frugaltext.api import evaluate as run

    with guard():
        result = run(
            model=model,
            data=data,
            split=split,
            output=output,
            text_field=text_field,
            label_field=label_field,
            batch_size=batch_size,
        )
    console.print(
        f"{result['method']} on {result['data']} ({result['split']}, {result['n_docs']} documents): "
        f"macro_f1={result['macro_f1']:.4f} micro_f1={result['micro_f1']:.4f} "
        f"accuracy={result['accuracy']:.4f} weighted_f1={result['weighted_f1']:.4f}",
        highlight=False,
    )
    table = Table("label", "precision", "recall", "f1", "support")
    for name, s in result["per_class"].items():
        table.add_row(
            name, f"{s['precision']:.3f}", f"{s['recall']:.3f}", f"{s['f1']:.3f}", str(s["support"])
        )
    console.print(table)
    console.print(f"Scores written to {result['output']}")
