"""Wall-clock timing with :func:`time.perf_counter`, waiting for queued accelerator work first.

GPU kernels run asynchronously: a timer read right after a CUDA call measures only the launch. Every
reading here first calls :func:`synchronize_accelerators`, as the PyTorch benchmarking recipe does
(``torch.utils.benchmark.Timer`` synchronizes CUDA around each measurement). On a CPU-only machine it
does nothing.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType


def synchronize_accelerators() -> None:
    """Wait until queued CUDA work has finished, when torch has already started CUDA in this process.

    Does nothing when torch is not imported, has no CUDA, or CUDA was never initialised (so it never
    starts a CUDA context by itself).
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return
    cuda = getattr(torch, "cuda", None)
    if cuda is not None and cuda.is_available() and cuda.is_initialized():
        cuda.synchronize()


class Stopwatch:
    """Context manager measuring the wall time of its block in seconds.

    Examples
    --------
    >>> with Stopwatch() as watch:
    ...     pass
    >>> watch.duration_s >= 0.0
    True

    Attributes
    ----------
    duration_s : float or None
        Seconds between entering and leaving the block (``None`` while inside or before entering). Set
        even when the block raises.
    """

    def __init__(self) -> None:
        self.duration_s: float | None = None
        self._start: float | None = None

    def __enter__(self) -> Stopwatch:
        synchronize_accelerators()
        self._start = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        synchronize_accelerators()
        end = time.perf_counter()
        self.duration_s = end - (self._start if self._start is not None else end)
