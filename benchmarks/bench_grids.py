"""Benchmark: generating 20,000 grids, vectorised vs a per-image Python loop.

Target (issue 2): 20,000 grids of 24 x 24 in at most 50 ms on a 2-core
machine. Prints the best of several repeats for each, and their ratio,
measured in this one run.

    python benchmarks/bench_grids.py [--n 20000] [--repeats 7]
"""

import argparse

import numpy as np

from encchain.grids import GridSpec, make_grids
from timing import best_of


def loop_reference(spec: GridSpec, n: int, seed: int) -> np.ndarray:
    """The straightforward way: one image and one blob at a time."""
    rng = np.random.default_rng(seed)
    r = spec.blob_size // 2
    out = np.zeros((n, spec.height, spec.width), dtype=np.uint8)
    for i in range(n):
        y = rng.binomial(spec.height - 1, 0.8)
        x = rng.binomial(spec.width - 1, 0.3)
        for yy in range(max(y - r, 0), min(y + r, spec.height - 1) + 1):
            for xx in range(max(x - r, 0), min(x + r, spec.width - 1) + 1):
                out[i, yy, xx] = 255
    return out



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    spec = GridSpec.unimodal()
    fast = best_of(lambda: make_grids(spec, args.n, seed=0), args.repeats)
    slow = best_of(lambda: loop_reference(spec, args.n, seed=0), max(1, args.repeats // 3))
    ref = loop_reference(spec, 200, 0)
    assert ref.shape == (200, 24, 24) and set(np.unique(ref)) == {0, 255}
    print(f"grids: {args.n} images of {spec.height} x {spec.width}")
    print(f"  make_grids (vectorised)   {fast * 1e3:8.1f} ms   (target <= 50 ms: {'met' if fast <= 0.05 else 'MISSED'})")
    print(f"  per-image Python loop     {slow * 1e3:8.1f} ms")
    print(f"  ratio                     {slow / fast:8.1f} x faster")


if __name__ == "__main__":
    main()
