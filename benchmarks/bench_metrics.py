"""Benchmark: the measures of a whole chain, and the original's per-pair loop.

Targets (on a 2-core machine):

- all measures except precision/recall (occupancy, both differences, sampled
  and exact variability, centre decoding and every ground-truth measure) for
  a 20-generation run (21 datasets: generation 0 plus 20) of 20,000 images
  each in at most 5 s, through :func:`encchain.metrics.run_metrics` exactly
  as a notebook calls it (cold: no cache; then the cached reopen);
- :func:`encchain.metrics.precision_recall` on a 5,000-image subsample of each
  set in at most 5 s per generation;
- the original's variability (a Python loop over N/2 random pairs, one
  ``np.linalg.norm`` per pair) on one dataset, against encchain's vectorised
  one, with their ratio, measured in this same run.

The datasets are made with :func:`encchain.grids.make_grids` (no training):
generation k is drawn from a unimodal spec whose binomial probabilities drift
with k, so the measures have something to measure.

    python benchmarks/bench_metrics.py [--n 20000] [--generations 20] [--pr-samples 5000]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np

from encchain import metrics as M
from encchain.grids import GridSpec, make_grids


class MemoryRun:
    """The Run interface of encchain.chain over in-memory datasets."""

    def __init__(self, datasets: list[np.ndarray], path: Path, spec: GridSpec):
        self.datasets, self.path, self.spec, self.config = datasets, path, spec, None
        self._sha = [hashlib.sha256(d.tobytes()).hexdigest() for d in datasets]

    def __len__(self) -> int:
        return len(self.datasets)

    def images(self, k: int) -> np.ndarray:
        return self.datasets[k]

    def dataset_sha256(self, k: int) -> str:
        return self._sha[k]

    def losses(self, k: int) -> dict[str, np.ndarray]:
        return {"total": np.ones(5), "recon": np.ones(5), "kl": np.ones(5), "variability": np.zeros(5)}


def original_variability(images: np.ndarray, seed: int = 0) -> float:
    """The original's estimate, written as it was: a Python loop over N/2 pairs."""
    rng = np.random.default_rng(seed)
    n = len(images)
    total = 0.0
    for _ in range(n // 2):
        i, j = rng.choice(n, size=2, replace=False)
        total += np.linalg.norm(images[i] / 255.0 - images[j] / 255.0)
    return total / (n // 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000, help="images per dataset")
    ap.add_argument("--generations", type=int, default=20, help="generations after generation 0")
    ap.add_argument("--pr-samples", type=int, default=5000, help="precision/recall subsample")
    ap.add_argument("--pr-repeats", type=int, default=2)
    args = ap.parse_args()

    spec = GridSpec.unimodal()
    t = time.perf_counter()
    datasets = [make_grids(spec, args.n, seed=0)]
    for k in range(1, args.generations + 1):
        drift = GridSpec.unimodal(p_y=0.8 - 0.01 * k, p_x=0.3 + 0.01 * k)
        datasets.append(make_grids(drift, args.n, seed=k))
    print(f"built {len(datasets)} datasets of {args.n} images in {time.perf_counter() - t:.2f} s (not counted)")

    with tempfile.TemporaryDirectory() as tmp:
        run = MemoryRun(datasets, Path(tmp), spec)
        t = time.perf_counter()
        table = M.run_metrics(run, precision_recall_samples=0, progress=False)
        cold = time.perf_counter() - t
        t = time.perf_counter()
        M.run_metrics(run, precision_recall_samples=0, progress=False)
        warm = time.perf_counter() - t
    verdict = "OK" if cold <= 5.0 else "OVER TARGET"
    print(
        f"all measures except precision/recall, {len(datasets)} datasets x {args.n}: "
        f"{cold:.2f} s cold ({cold / len(datasets) * 1000:.0f} ms per generation) [{verdict}, target 5 s]; "
        f"cached reopen {warm * 1000:.0f} ms"
    )
    print("\n".join(M.summary_lines({k: v[:3] for k, v in table.items()})) + "\n  ...")

    # precision / recall at 5,000 vs 5,000
    M.precision_recall(datasets[0][:50], datasets[1][:50])  # import torch, warm up
    times = []
    for _ in range(args.pr_repeats):
        t = time.perf_counter()
        p, r = M.precision_recall(datasets[0], datasets[-1], max_samples=args.pr_samples)
        times.append(time.perf_counter() - t)
    best = min(times)
    verdict = "OK" if best <= 5.0 else "OVER TARGET"
    print(
        f"precision/recall, {args.pr_samples} vs {args.pr_samples} images: best {best:.2f} s of {args.pr_repeats} "
        f"[{verdict}, target 5 s per generation] (precision {p:.3f}, recall {r:.3f})"
    )

    # the original's per-pair loop vs the vectorised estimate, one dataset
    x = datasets[0]
    t = time.perf_counter()
    v_loop = original_variability(x)
    loop = time.perf_counter() - t
    t = time.perf_counter()
    v_vec = M.variability(x)
    vec = time.perf_counter() - t
    t = time.perf_counter()
    v_ex = M.variability_exact(x)
    exact = time.perf_counter() - t
    print(
        f"variability of one dataset ({len(x)} images, {len(x) // 2} pairs): "
        f"original-style loop {loop:.2f} s (value {v_loop:.4f}); vectorised {vec * 1000:.1f} ms "
        f"(value {v_vec:.4f}); ratio {loop / vec:.0f}x; exact (all pairs) {exact * 1000:.1f} ms "
        f"(sqrt {v_ex ** 0.5:.4f})"
    )


if __name__ == "__main__":
    main()
