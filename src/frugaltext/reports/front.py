"""The Pareto front of scored, costed points: the one definition that the table's marks
(:mod:`frugaltext.reports.table`), the plots (:mod:`frugaltext.reports.pareto`) and the model selection share.

It imports nothing from frugaltext, so every report module can use it without an import cycle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["pareto_front"]


def pareto_front(costs: Sequence[float | None], scores: Sequence[float | None]) -> list[int]:
    """Return the indices of the non-dominated points, lower cost and higher score being better.

    Parameters
    ----------
    costs, scores : sequences of float or None, same length n_points
        A point with a missing or non-finite value takes no part (it is never on the front and dominates
        nothing).

    Returns
    -------
    list of int
        Indices into the inputs, sorted by increasing cost (then decreasing score). Exact duplicates are
        both kept (neither dominates the other).

    Raises
    ------
    ValueError
        If the sequences differ in length.
    """
    if len(costs) != len(scores):
        raise ValueError(f"pareto_front: {len(costs)} costs but {len(scores)} scores")
    points = [
        (i, float(c), float(s))
        for i, (c, s) in enumerate(zip(costs, scores, strict=True))
        if c is not None and s is not None and math.isfinite(c) and math.isfinite(s)
    ]
    front = []
    for i, c, s in points:
        dominated = any((c2 <= c and s2 >= s) and (c2 < c or s2 > s) for j, c2, s2 in points if j != i)
        if not dominated:
            front.append((c, -s, i))
    return [i for _, _, i in sorted(front)]
