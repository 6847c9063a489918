"""The ``frugaltext`` command: one typer app, one thin module per command."""

from __future__ import annotations

import typer

from frugaltext.cli.common import EXTRA_ARGS, setup_logging
from frugaltext.cli.compare import compare
from frugaltext.cli.datasets import datasets
from frugaltext.cli.evaluate import evaluate
from frugaltext.cli.predict import predict
from frugaltext.cli.report import report
from frugaltext.cli.select import select
from frugaltext.cli.topics import topics
from frugaltext.cli.train import train

app = typer.Typer(
    name="frugaltext",
    help="Energy-efficient document classification: train methods side by side and measure what they cost.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="markdown",
)


def _print_version(value: bool) -> None:
    if value:
        from frugaltext import __version__

        typer.echo(f"frugaltext {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show debug logs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Show warnings and errors only."),
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
    ),
) -> None:
    """Energy-efficient document classification with measured costs."""
    setup_logging(verbose=verbose, quiet=quiet)


app.command("compare", context_settings=EXTRA_ARGS)(compare)
app.command("train", context_settings=EXTRA_ARGS)(train)
app.command("evaluate")(evaluate)
app.command("predict")(predict)
app.command("datasets")(datasets)
app.command("topics", context_settings=EXTRA_ARGS)(topics)
app.command("report")(report)
app.command("select")(select)


def main() -> None:
    """Console-script entry point (``frugaltext``) and ``python -m frugaltext``."""
    app(prog_name="frugaltext")
