"""``frugaltext predict``: label the documents of a file with a saved model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from frugaltext.cli.common import console, guard, progress_enabled


def predict(
    model: Annotated[Path, typer.Option("--model", help="Directory of a saved model.")],
    input_file: Annotated[
        Path,
        typer.Option(
            "--input",
            "-i",
            help="Documents: .txt (one per line), .jsonl or .csv/.tsv (with a text field), optionally .gz.",
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Predictions file: .jsonl or .csv.")],
    text_field: Annotated[
        str, typer.Option("--text-field", help="Column/key of the document text.")
    ] = "text",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Prediction batch size.")] = 32,
    threshold: Annotated[
        float,
        typer.Option(
            "--threshold",
            help="Multi-label: probability needed for a label.",
        ),
    ] = 0.5,
    quantization: Annotated[
        str | None,
        typer.Option(
            "--quantization",
            help="int8: dynamic int8 Linear layers (torch methods), or the int8 ONNX file with --backend "
            "onnx; none: fp32. [default: the model's setting]",
        ),
    ] = None,
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            help="torch, or onnx (ONNX Runtime on MODEL/model.onnx, written by `frugaltext export`).",
        ),
    ] = "torch",
) -> None:
    """Write one prediction per document of INPUT to OUTPUT: label and probability (multi-label: lists).

    The input is read and predicted in chunks of 1,000 documents and the output written as it goes (into a
    hidden temporary file, renamed at the end), with a progress bar on stderr when it is a terminal and
    `--quiet` is not given.
    """
    from frugaltext.api import predict_file

    with guard():
        n_docs = predict_file(
            model=model,
            input=input_file,
            output=output,
            text_field=text_field,
            batch_size=batch_size,
            threshold=threshold,
            progress=progress_enabled(),
            quantization=quantization,
            backend=backend,
        )
    console.print(f"{n_docs} predictions written to {output}", highlight=False, markup=False)
