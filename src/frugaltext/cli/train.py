"""``frugaltext train``: fit one method on a dataset and save it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from frugaltext.cli.common import console, extra_options, guard


def train(
    ctx: typer.Context,
    data: Annotated[str, typer.Option("--data", help="Embedded dataset name or path.")],
    method: Annotated[str, typer.Option("--method", help="Method name, e.g. tfidf-svm or bert.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory of the saved model.")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    text_field: Annotated[
        str, typer.Option("--text-field", help="Column/key of the document text.")
    ] = "text",
    label_field: Annotated[
        str | None,
        typer.Option(
            "--label-field",
            help="Column/key of the label(s). [default: label, else labels]",
        ),
    ] = None,
    multi_label: Annotated[
        bool | None,
        typer.Option(
            "--multi-label/--single-label",
            help="Force the task type. [default: detected]",
        ),
    ] = None,
    max_train_docs: Annotated[
        int | None,
        typer.Option(
            "--max-train-docs",
            min=1,
            help="Train on at most N documents.",
        ),
    ] = None,
    measure_energy: Annotated[
        bool,
        typer.Option(
            "--measure-energy/--no-measure-energy",
            help="Measure energy with codecarbon.",
        ),
    ] = True,
    checkpoint_steps: Annotated[
        int,
        typer.Option(
            "--checkpoint-steps",
            min=0,
            help="Neural methods: also checkpoint every N optimisation steps, so a killed run resumes "
            "(0: only at epoch ends).",
        ),
    ] = 500,
) -> None:
    """Train METHOD on DATA and save it to OUTPUT (model files and train_result.json).

    The method's settings are options too, e.g. `--max-length 128 --epochs 3 --batch-size 16` for bert or
    `--C 10` for tfidf-svm (see the methods table in the README). Several processes:
    `torchrun --standalone --nproc_per_node 2 -m frugaltext train --method bert ...`
    """
    from frugaltext.api import train as run

    with guard():
        settings = extra_options(ctx)
        model = run(
            data=data,
            method=method,
            output=output,
            seed=seed,
            text_field=text_field,
            label_field=label_field,
            multi_label=multi_label,
            max_train_docs=max_train_docs,
            measure_energy=measure_energy,
            checkpoint_steps=checkpoint_steps,
            **settings,
        )
    console.print(f"Trained {model.name} ({len(model.label_names)} labels); saved to {output}")
