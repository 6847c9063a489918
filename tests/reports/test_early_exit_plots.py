"""Early-exit plots: the speed-accuracy curve and the exit-layer histogram are written as image files."""

from __future__ import annotations

import pytest

from frugaltext.errors import ConfigError
from frugaltext.reports.early_exit import plot_early_exit_curve, plot_exit_histogram

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ROWS = [
    {
        "rule": "entropy",
        "entropy_threshold": 0.0,
        "patience": None,
        "macro_f1": 0.91,
        "flops": 4e9,
        "mean_exit_layer": 6.0,
    },
    {
        "rule": "entropy",
        "entropy_threshold": 0.5,
        "patience": None,
        "macro_f1": 0.90,
        "flops": 2e9,
        "mean_exit_layer": 3.0,
    },
    {
        "rule": "patience",
        "entropy_threshold": None,
        "patience": 2,
        "macro_f1": 0.89,
        "flops": 3e9,
        "mean_exit_layer": 4.5,
    },
]


@pytest.mark.parametrize("x", ["flops", "mean_exit_layer"])
def test_curve_png_and_svg(tmp_path, x):
    written = plot_early_exit_curve(
        ROWS, tmp_path / "curve.png", tmp_path / "curve.svg", x=x, full_depth_macro_f1=0.91
    )
    assert written == [tmp_path / "curve.png", tmp_path / "curve.svg"]
    assert (tmp_path / "curve.png").read_bytes()[:8] == PNG_MAGIC
    assert b"<svg" in (tmp_path / "curve.svg").read_bytes()[:500]


def test_curve_needs_the_x_column(tmp_path):
    with pytest.raises(ConfigError, match="no row has both 'macro_f1' and 'throughput_docs_per_s_batch32'"):
        plot_early_exit_curve(ROWS, tmp_path / "c.png", x="throughput_docs_per_s_batch32")


def test_histogram_from_layers_and_counts(tmp_path):
    assert plot_exit_histogram([1, 1, 2, 4], 4, tmp_path / "h.png")[0].read_bytes()[:8] == PNG_MAGIC
    assert plot_exit_histogram([2, 1, 0, 1], 4, tmp_path / "h2.png", is_histogram=True)[0].is_file()
    with pytest.raises(ConfigError, match=r"exit layers must be in 1..4, got 0..5"):
        plot_exit_histogram([0, 5], 4, tmp_path / "bad.png")
    with pytest.raises(ConfigError, match="a histogram needs 4 counts, got 3"):
        plot_exit_histogram([1, 2, 3], 4, tmp_path / "bad.png", is_histogram=True)
