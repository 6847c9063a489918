"""Plots of early exit: the speed-accuracy curve over exit thresholds, and the exit-layer histogram.

Inputs are the rows of :func:`frugaltext.models.early_exit.early_exit_curve` (or a calibration table,
``config.calibration["table"]``) and exit layers / histograms as ``cost_notes`` report them. matplotlib
runs with the Agg backend (no display).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frugaltext.errors import ConfigError

#: x-axis choices of :func:`plot_early_exit_curve`: row key -> (scale factor, axis label).
CURVE_X = {
    "flops": (1e-9, "forward GFLOPs per document"),
    "mean_exit_layer": (1.0, "mean exit layer"),
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, paths: Sequence[str | Path | None]) -> list[Path]:
    written = []
    for path in paths:
        if path is None:
            continue
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150)
        written.append(path)
    return written


def plot_early_exit_curve(
    rows: Sequence[Mapping[str, Any]],
    png_path: str | Path,
    svg_path: str | Path | None = None,
    x: str = "flops",
    full_depth_macro_f1: float | None = None,
    title: str | None = None,
) -> list[Path]:
    """Draw macro-F1 against cost for each exit rule, one line per rule, each point labelled with its setting.

    Parameters
    ----------
    rows : sequence of dict
        With ``rule``, ``entropy_threshold`` or ``patience``, ``macro_f1`` and the ``x`` key.
    png_path, svg_path : path
        Output files (svg optional).
    x : str
        ``"flops"`` (GFLOPs per document), ``"mean_exit_layer"``, or a measured column such as
        ``"throughput_docs_per_s_batch32"`` (plotted as is).
    full_depth_macro_f1 : float, optional
        Drawn as a horizontal reference line.

    Returns
    -------
    list of Path, the files written.

    Raises
    ------
    ConfigError
        If no row has both ``macro_f1`` and ``x``.
    """
    factor, label = CURVE_X.get(x, (1.0, x.replace("_", " ")))
    usable = [r for r in rows if r.get(x) is not None and r.get("macro_f1") is not None]
    if not usable:
        raise ConfigError(
            f"plot_early_exit_curve: no row has both 'macro_f1' and {x!r}; "
            f"keys of the first row: {sorted(rows[0]) if rows else []}"
        )
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5), constrained_layout=True)
    for rule, marker, key, fmt in (
        ("entropy", "o", "entropy_threshold", "S={:g}"),
        ("patience", "s", "patience", "t={:d}"),
        ("none", "*", None, "full depth"),
    ):
        points = sorted(
            (float(r[x]) * factor, float(r["macro_f1"]), r.get(key) if key else None)
            for r in usable
            if r.get("rule") == rule
        )
        if not points:
            continue
        xs, ys, settings = zip(*points, strict=True)
        ax.plot(xs, ys, marker=marker, linestyle="-", label=f"{rule} rule" if rule != "none" else rule)
        for px, py, setting in points:
            text = fmt.format(setting) if setting is not None else fmt
            ax.annotate(text, (px, py), textcoords="offset points", xytext=(3, 4), fontsize=6)
    if full_depth_macro_f1 is not None:
        ax.axhline(full_depth_macro_f1, color="black", linestyle="--", linewidth=1, label="full depth")
    ax.set_xlabel(label)
    ax.set_ylabel("macro-F1")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    written = _save(fig, (png_path, svg_path))
    plt.close(fig)
    return written


def plot_exit_histogram(
    exit_layers_or_histogram: Sequence[int] | np.ndarray,
    num_layers: int,
    png_path: str | Path,
    svg_path: str | Path | None = None,
    is_histogram: bool = False,
    title: str | None = None,
) -> list[Path]:
    """Bar chart of how many documents left at each layer 1..L.

    Parameters
    ----------
    exit_layers_or_histogram : sequence of int
        Either the exit layer (1-based) of each document, or, with ``is_histogram=True``, the L counts (as
        ``cost_notes()["exit_layer_histogram"]``).
    num_layers : int
        L.

    Returns
    -------
    list of Path, the files written.

    Raises
    ------
    ConfigError
        For an exit layer outside 1..L, or a histogram whose length is not L.
    """
    values = np.asarray(exit_layers_or_histogram, dtype=np.int64)
    if is_histogram:
        if values.shape != (num_layers,):
            raise ConfigError(
                f"plot_exit_histogram: a histogram needs {num_layers} counts, got {values.shape[0]}"
            )
        counts = values
    else:
        if values.size and (values.min() < 1 or values.max() > num_layers):
            raise ConfigError(
                f"plot_exit_histogram: exit layers must be in 1..{num_layers}, got "
                f"{values.min()}..{values.max()}"
            )
        counts = np.bincount(values, minlength=num_layers + 1)[1:]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8), constrained_layout=True)
    layers = np.arange(1, num_layers + 1)
    ax.bar(layers, counts)
    total = counts.sum()
    mean = float((layers * counts).sum() / total) if total else float("nan")
    ax.set_xticks(layers)
    ax.set_xlabel("exit layer")
    ax.set_ylabel("documents")
    ax.set_title(title or f"exit layers ({total} documents, mean {mean:.2f})")
    written = _save(fig, (png_path, svg_path))
    plt.close(fig)
    return written
