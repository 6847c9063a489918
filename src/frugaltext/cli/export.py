"""``frugaltext export``: write a saved model as ONNX (optionally int8) with a parity check beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from frugaltext.cli.common import console, guard


def export(
    model: Annotated[Path, typer.Option("--model", help="Directory of a saved bert model.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="The .onnx file. [default: MODEL/model.onnx, or MODEL/model.int8.onnx with int8; "
            "`predict --backend onnx` looks there]",
        ),
    ] = None,
    quantization: Annotated[
        str,
        typer.Option("--quantization", help="none, or int8 (ONNX Runtime dynamic int8 weights)."),
    ] = "none",
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="Dataset (embedded name, directory or file) whose validation documents feed the parity "
            "check. [default: random words]",
        ),
    ] = None,
    max_docs: Annotated[
        int, typer.Option("--max-docs", min=1, help="Documents of the parity check.")
    ] = 200,
) -> None:
    """Export MODEL to ONNX (needs `pip install -e '.[onnx]'`) and write FILE.parity.json beside it: the
    largest |logit difference| and the label agreement with the torch model on up to N documents."""
    from frugaltext.onnx_export import export_onnx, parity_path

    with guard():
        report = export_onnx(model, output=output, quantization=quantization, data=data, max_docs=max_docs)
    console.print(
        f"{report['onnx_file']} written; parity on {report['n_docs']} documents: max |Δ logit| "
        f"{report['max_abs_logit_diff']:.2g}, label agreement {report['label_agreement']:.3f} "
        f"({parity_path(report['onnx_file'])})"
    )
