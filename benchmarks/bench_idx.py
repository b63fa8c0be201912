"""Benchmark: writing and reading 20,000 x 24 x 24 uint8 grids as gzipped IDX.

Issue 2 asks for reads in milliseconds (not a Python loop per item); the chain
writes one such file per generation. Prints best-of-N times for read_idx and
write_idx, and a per-image Python loop reader for comparison, in one run.

    python benchmarks/bench_idx.py
"""

import gzip
import tempfile
from pathlib import Path

import numpy as np

from encchain.grids import GridSpec, make_grids
from timing import best_of
from encchain.idx import read_idx, write_idx


def loop_reader(path: Path, shape) -> np.ndarray:
    """One image at a time, as a naive reader would."""
    n, h, w = shape
    out = np.empty(shape, np.uint8)
    with gzip.open(path, "rb") as f:
        f.read(16)
        for i in range(n):
            out[i] = np.frombuffer(f.read(h * w), np.uint8).reshape(h, w)
    return out



def main() -> None:
    images = make_grids(GridSpec(), 20_000, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.idx3-ubyte.gz"
        t_write = best_of(lambda: write_idx(path, images))
        t_read = best_of(lambda: read_idx(path))
        t_loop = best_of(lambda: loop_reader(path, images.shape), 2)
        assert np.array_equal(read_idx(path), images) and np.array_equal(loop_reader(path, images.shape), images)
        size = path.stat().st_size
    print(f"IDX: 20,000 x 24 x 24 uint8, gzip ({size / 1e6:.2f} MB on disk)")
    print(f"  write_idx (atomic, fsync)   {t_write * 1e3:7.1f} ms")
    print(f"  read_idx                    {t_read * 1e3:7.1f} ms")
    print(f"  per-image loop reader       {t_loop * 1e3:7.1f} ms   ({t_loop / t_read:.1f} x slower)")


if __name__ == "__main__":
    main()
