"""``frugaltext datasets``: list the datasets shipped inside the package."""

from __future__ import annotations

from frugaltext.cli.common import console, guard


def datasets() -> None:
    """List the embedded datasets (use their name with --data)."""
    from rich.markup import escape
    from rich.table import Table

    from frugaltext.data import embedded_datasets

    with guard():
        rows = embedded_datasets()
    table = Table("name", "task", "labels", "documents", title="Embedded datasets")
    for d in rows:
        table.add_row(
            d["name"], d["task"], str(d["num_labels"]), ", ".join(f"{n} {k}" for k, n in d["splits"].items())
        )
    console.print(table)
    for d in rows:
        console.print(
            f"[bold]{escape(d['name'])}[/]: {escape(d['description'])}.\n"
            f"  labels: {escape(', '.join(d['label_names']))}\n  source: {escape(d['source'])}\n"
            f"  terms: {escape(d['terms'])}",
            highlight=False,
        )
    console.print(
        "Other datasets: pass a directory with train/validation/test files (.jsonl, .jsonl.gz, .csv, "
        ".tsv) or a saved datasets.DatasetDict to --data."
    )
