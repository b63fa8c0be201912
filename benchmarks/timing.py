"""Shared timing helper of the benchmark scripts (run them as `python benchmarks/NAME.py`)."""

import time
from typing import Callable


def best_of(fn: Callable[[], object], repeats: int = 5) -> float:
    """The shortest wall time of ``repeats`` calls of ``fn``, in seconds (the least disturbed one)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)
