"""``frugaltext topics``: train an NVDM topic model alone and write each topic's top words."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from frugaltext.cli.common import console, extra_options, guard


def topics(
    ctx: typer.Context,
    data: Annotated[
        str,
        typer.Option(
            "--data",
            help="Embedded dataset name or path (its training split is used).",
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Directory for the topic model and top words.")
    ],
    n_topics: Annotated[int, typer.Option("--n-topics", min=1, help="Number of topics K.")] = 100,
    text_field: Annotated[
        str, typer.Option("--text-field", help="Column/key of the document text.")
    ] = "text",
    label_field: Annotated[
        str | None, typer.Option("--label-field", help="Column/key of the label(s).")
    ] = None,
) -> None:
    """Train an NVDM topic model (Miao et al. 2016), or LDA with `--model lda`, on DATA; write it and each
    topic's top words to OUTPUT.

    Other settings are options too, passed to `frugaltext.topics.job.train_topics`: `--model nvdm|lda`,
    `--epochs 20`, `--min-df 5`, `--max-df 1.0` (0.5 drops e-mail header words), `--max-size 5000`,
    `--hidden-size 256`, `--learning-rate 0.001`, `--n-top-words 10`, `--top-words-by
    bias_plus_decoder|standardized|decoder`, `--npmi-reference train|validation|test`,
    `--max-train-documents N`, `--progress true`, `--seed 0`, ... See docs/topics.md.
    """
    from frugaltext.data import load_data
    from frugaltext.errors import ConfigError

    with guard():
        settings = extra_options(ctx, typed=True)
        import inspect
        import typing

        from frugaltext.settings import coerce_value
        from frugaltext.topics.job import train_topics

        params = inspect.signature(train_topics).parameters
        accepted = set(params) - {"data", "n_topics", "output_dir", "log"}
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        unknown = [] if takes_any else sorted(set(settings) - accepted)
        if unknown:
            raise ConfigError(
                f"topics: unknown setting(s) {', '.join(unknown)}; valid settings: "
                f"{', '.join(sorted(accepted))} (written --min-df 5, --epochs 50, ...)"
            )
        # each value converted and checked by the one settings converter, from the parameter's annotation
        # (a number is finite, not a bool, an integer where one is needed; "none" for optional ones)
        hints = typing.get_type_hints(train_topics)
        for name, value in list(settings.items()):
            kind = hints.get(name)
            if kind is not None:
                settings[name] = coerce_value(value, kind, f"topics: setting {name!r}")
        from frugaltext.fileio import check_output_dir

        check_output_dir(output, "--output")
        dataset = load_data(data, text_field=text_field, label_field=label_field)
        result = train_topics(dataset, n_topics=n_topics, output_dir=output, **settings)
    ppl, ppl_doc = result.perplexity, getattr(result, "perplexity_per_document", None)
    lau, reference = getattr(result, "npmi_mean_lau", None), getattr(result, "npmi_reference", None)
    diversity = getattr(result, "extra", {}).get("topic_diversity")
    console.print(
        f"{len(result.topics)} topics; held-out perplexity {'–' if ppl is None else f'{ppl:.1f}'}"
        + ("" if ppl_doc is None else f" (per document {ppl_doc:.1f})")
        + f"; mean NPMI {result.npmi_mean:.3f}"
        + ("" if lau is None else f" (Lau convention {lau:.3f}; reference: {reference} texts)")
        + ("" if diversity is None else f"; topic diversity {diversity:.2f}")
        + f"; {result.duration_s:.1f} s",
        highlight=False,
    )
    for k, (words, score) in enumerate(zip(result.topics, result.npmi, strict=True), start=1):
        console.print(f"topic {k:3d} (npmi {score:6.3f}): {' '.join(words)}", highlight=False, markup=False)
    console.print(f"Topic model and top words written to {output}")
