"""The ``frugaltext`` command: one typer app, one thin module per command."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer

from frugaltext.cli.common import EXTRA_ARGS, setup_logging
from frugaltext.cli.compare import compare
from frugaltext.cli.datasets import datasets
from frugaltext.cli.evaluate import evaluate
from frugaltext.cli.export import export
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


#: The ``--threads`` option every command takes (see :func:`with_threads`).
ThreadsOption = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        help="Torch intra- and inter-op threads of this process (recorded as torch_threads in each results "
        "row). [default: $OMP_NUM_THREADS, else the CPUs this process may use]",
    ),
]


def with_threads(command: Callable[..., Any], import_torch: bool = True) -> Callable[..., Any]:
    """``command`` with a ``--threads N`` option that sets torch's threads
    (:func:`frugaltext.fastpath.set_threads`) before it runs.

    typer reads the options from the function's signature, so the wrapper's signature is the command's
    plus ``threads``. Commands that may not need torch (``datasets``, ``report``, ``select``, and
    ``predict``/``evaluate``, which load tf-idf models without torch) pass ``import_torch=False``: the count
    then goes to ``$OMP_NUM_THREADS``, which torch reads if it is imported later.
    """

    @functools.wraps(command)
    def run(*args: Any, threads: int | None = None, **kwargs: Any) -> Any:
        import os
        import sys

        from frugaltext.cli.common import guard
        from frugaltext.fastpath import set_threads

        if import_torch or "torch" in sys.modules:
            with guard():
                set_threads(threads)
        elif threads is not None:
            os.environ["OMP_NUM_THREADS"] = str(threads)
        return command(*args, **kwargs)

    signature = inspect.signature(command, eval_str=True)
    extra = inspect.Parameter("threads", inspect.Parameter.KEYWORD_ONLY, default=None,
                              annotation=ThreadsOption)
    run.__signature__ = signature.replace(parameters=[*signature.parameters.values(), extra])
    run.__annotations__ = {**getattr(command, "__annotations__", {}), "threads": ThreadsOption}
    return run


app.command("compare", context_settings=EXTRA_ARGS)(with_threads(compare))
app.command("train", context_settings=EXTRA_ARGS)(with_threads(train))
app.command("evaluate")(with_threads(evaluate, import_torch=False))
app.command("predict")(with_threads(predict, import_torch=False))  # tf-idf models predict without torch
app.command("export")(with_threads(export))
app.command("datasets")(with_threads(datasets, import_torch=False))
app.command("topics", context_settings=EXTRA_ARGS)(with_threads(topics))
app.command("report")(with_threads(report, import_torch=False))
app.command("select")(with_threads(select, import_torch=False))


def main() -> None:
    """Console-script entry point (``frugaltext``) and ``python -m frugaltext``."""
    app(prog_name="frugaltext")
