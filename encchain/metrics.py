"""Measures of a dataset of grids and of a whole chain of them.

Every image set is a ``uint8`` array of shape ``(n, height, width)``; pixels
are read as ``value / 255`` in [0, 1] unless stated otherwise.

The original system judged a chain by three numbers per dataset, which are
reproduced here:

* :func:`occupancy` -- the sum of all images divided by its maximum (a heat
  map in [0, 1]);
* :func:`variability` -- the mean L2 distance between the two images of N/2
  randomly drawn pairs;
* :func:`difference` -- the L2 norm between two occupancy maps.

Because the true distribution of blob centres is known exactly
(:class:`encchain.grids.GridSpec`), encchain also decodes the blob centre of
every image (:func:`decode_centers`) and compares the decoded centres with
the truth (:func:`ground_truth_measures`), and computes improved precision and
recall (:func:`precision_recall`). :func:`run_metrics` puts everything in one
table per run, cached in the run folder.

Examples
--------
>>> from encchain.grids import GridSpec, make_grids
>>> spec = GridSpec.unimodal()
>>> images = make_grids(spec, 2000, seed=0)
>>> m = ground_truth_measures(images, spec)
>>> m["validity"]
1.0
>>> round(variability_exact(images) ** 0.5, 1)  # doctest: +SKIP
4.1
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from typing import Any, Mapping, Sequence

import numpy as np

from .grids import GridSpec, render_blobs

__all__ = [
    "occupancy",
    "variability",
    "variability_exact",
    "difference",
    "decode_centers",
    "center_histogram",
    "ground_truth_measures",
    "precision_recall",
    "run_metrics",
    "metrics_to_csv",
    "summary_lines",
    "collapse_generation",
    "METRIC_COLUMNS",
    "GROUND_TRUTH_KEYS",
    "METRICS_CACHE_NAME",
]

#: Keys of :func:`ground_truth_measures`, in table order.
GROUND_TRUTH_KEYS: tuple[str, ...] = (
    "validity",
    "center_tv",
    "center_kl",
    "center_tv_y",
    "center_tv_x",
    "coverage",
    "mean_y",
    "mean_x",
    "std_y",
    "std_x",
    "true_mean_y",
    "true_mean_x",
    "true_std_y",
    "true_std_x",
)

#: Columns of a :func:`run_metrics` table, in order ("generation" first).
METRIC_COLUMNS: tuple[str, ...] = (
    "generation",
    "n_images",
    "difference_prev",
    "difference_orig",
    "variability",
    "variability_exact",
    *GROUND_TRUTH_KEYS,
    "precision",
    "recall",
    "loss_total",
    "loss_recon",
    "loss_kl",
    "loss_variability",
)

#: File name of the metrics cache inside a run folder.
METRICS_CACHE_NAME = "metrics.json"

# Bump when any cached measure changes meaning, so old caches are recomputed.
_CACHE_VERSION = 1
_LOSS_KEYS = ("total", "recon", "kl", "variability")
# Images per block in the vectorised passes (bounds temporary memory to a few
# tens of MB for 24 x 24 grids).
_CHUNK = 4096


# --------------------------------------------------------------------------
# input validation
# --------------------------------------------------------------------------
def _check_images(images: Any, name: str = "images", min_n: int = 1) -> np.ndarray:
    """Return ``images`` as an ndarray after checking dtype, rank and size."""
    if not isinstance(images, np.ndarray):
        raise ValueError(f"{name} must be a numpy uint8 array of shape (n, height, width), got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise ValueError(f"{name} must have dtype uint8 (pixel values 0..255), got {images.dtype}")
    if images.ndim != 3:
        raise ValueError(f"{name} must have shape (n, height, width), got shape {images.shape} (rank {images.ndim})")
    if images.shape[1] == 0 or images.shape[2] == 0:
        raise ValueError(f"{name} has empty images: shape {images.shape}")
    if images.shape[0] < min_n:
        if images.shape[0] == 0:
            raise ValueError(f"{name} is an empty set (shape {images.shape}); at least {min_n} image(s) needed")
        raise ValueError(f"{name} holds {images.shape[0]} image(s); at least {min_n} needed")
    return images


def _same_grid(a: np.ndarray, b: np.ndarray, what: str = "the two image sets") -> None:
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"{what} must have the same height and width, got {a.shape[1:]} and {b.shape[1:]}")


# --------------------------------------------------------------------------
# the original system's measures
# --------------------------------------------------------------------------
def occupancy(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Occupancy map and mean image of a set of grids.

    Parameters
    ----------
    images : ndarray of uint8, shape (n, height, width)

    Returns
    -------
    occupancy_map : ndarray of float64, shape (height, width)
        The original system's "distribution": the sum of all images (pixels in
        [0, 1]) divided by its maximum, so the most occupied pixel is 1. An
        all-zero set gives all zeros. Unitless, in [0, 1].
    mean_image : ndarray of float64, shape (height, width)
        The un-normalised mean image, pixel values in [0, 1] (the fraction of
        images lighting each pixel, for binary images).

    Raises
    ------
    ValueError
        ``images`` is not uint8, not of rank 3, or empty.
    """
    images = _check_images(images)
    total = images.sum(axis=0, dtype=np.int64).astype(np.float64) / 255.0
    peak = total.max()
    occ = total / peak if peak > 0 else np.zeros_like(total)
    return occ, total / images.shape[0]


def difference(a: np.ndarray, b: np.ndarray) -> float:
    """L2 norm between the occupancy maps of two image sets.

    Parameters
    ----------
    a, b : ndarrays of uint8, shapes (n_a, H, W) and (n_b, H, W)
        Two image sets on the same grid (their sizes may differ).

    Returns
    -------
    float
        ``|| occupancy(a) - occupancy(b) ||_2`` (Frobenius norm over pixels of
        maps in [0, 1]); 0 for sets with the same occupancy map, at most
        ``sqrt(H * W)``.

    Raises
    ------
    ValueError
        Bad input (see :func:`occupancy`) or different grid sizes.
    """
    a = _check_images(a, "a")
    b = _check_images(b, "b")
    _same_grid(a, b)
    return float(np.linalg.norm(occupancy(a)[0] - occupancy(b)[0]))


def variability(images: np.ndarray, pairs: int | None = None, seed: int = 0) -> float:
    """The original's variability: mean L2 distance of randomly drawn pairs.

    Parameters
    ----------
    images : ndarray of uint8, shape (n, height, width), n >= 2
    pairs : int, optional
        Number of pairs; default ``n // 2`` as in the original. Each pair is
        two *different* images (indices i != j) drawn uniformly at random,
        independently of the other pairs (with replacement across pairs).
    seed : int
        Seed of the numpy generator that draws the pairs.

    Returns
    -------
    float
        Mean of ``||a_i - a_j||_2`` over the pairs, pixels in [0, 1], so in
        units of "L2 distance between images"; 0 for a constant set.

    Notes
    -----
    This is an unbiased Monte-Carlo estimate of ``E||a - b||`` for two
    distinct images of the set. :func:`variability_exact` computes the mean
    *squared* distance exactly; by Jensen's inequality
    ``E||a - b|| <= sqrt(E||a - b||^2)``, so ``variability(images) ** 2`` is
    at most ``variability_exact(images)`` up to sampling noise, with equality
    when all pairwise distances are equal (e.g. any two-image set). The
    distances are computed exactly in integer arithmetic, in blocks.

    Raises
    ------
    ValueError
        Bad input, fewer than 2 images, or ``pairs < 1``.
    """
    images = _check_images(images, min_n=2)
    n = images.shape[0]
    if pairs is None:
        pairs = max(n // 2, 1)
    if isinstance(pairs, bool) or not isinstance(pairs, (int, np.integer)) or pairs < 1:
        raise ValueError(f"pairs must be a positive integer, got {pairs!r}")
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, size=int(pairs))
    j = (i + rng.integers(1, n, size=int(pairs))) % n  # uniform over the others
    flat = images.reshape(n, -1)
    total = 0.0
    for s in range(0, int(pairs), _CHUNK):
        d = flat[i[s : s + _CHUNK]].astype(np.int32) - flat[j[s : s + _CHUNK]]
        sq = np.einsum("ij,ij->i", d, d)  # exact: at most 255^2 * pixels
        total += float(np.sqrt(sq.astype(np.float64)).sum())
    return total / int(pairs) / 255.0


def variability_exact(images: np.ndarray) -> float:
    """Exact mean squared L2 distance between two distinct images of the set.

    Parameters
    ----------
    images : ndarray of uint8, shape (n, height, width), n >= 2

    Returns
    -------
    float
        ``mean_{i != j} ||a_i - a_j||^2`` over all *ordered* pairs of
        distinct indices (the same as over unordered pairs), pixels in
        [0, 1]; units of squared L2 distance. ``sqrt`` of it is on the scale
        of :func:`variability`. 0 exactly when all images are equal.

    Notes
    -----
    Computed in O(n * pixels) from per-pixel variances, with no pairs at all:
    ``mean_{i != j} ||a_i - a_j||^2 = 2 n / (n - 1) * sum_p Var_p``, where
    ``Var_p`` is the population variance of pixel p over the set. The sums
    are taken exactly in integers (``sum_{i,j} (a_i - a_j)^2 =
    2 n sum_i a_i^2 - 2 (sum_i a_i)^2`` per pixel), so the result is exact up
    to one final float64 division.

    The sampled :func:`variability` estimates ``E||a - b||``, which by
    Jensen's inequality is at most ``sqrt(E||a - b||^2)``; so in expectation
    ``variability ** 2 <= variability_exact``, with equality when all
    pairwise distances are equal.

    Raises
    ------
    ValueError
        Bad input or fewer than 2 images.
    """
    images = _check_images(images, min_n=2)
    n = images.shape[0]
    flat = images.reshape(n, -1)
    s1 = np.zeros(flat.shape[1], dtype=np.int64)
    s2 = np.zeros(flat.shape[1], dtype=np.int64)
    for s in range(0, n, _CHUNK):
        block = flat[s : s + _CHUNK].astype(np.int64)
        s1 += block.sum(axis=0)
        s2 += np.einsum("ij,ij->j", block, block)
    # per-pixel sum over all ordered pairs, exact in Python integers
    num = sum(2 * n * int(a2) - 2 * int(a1) * int(a1) for a1, a2 in zip(s1.tolist(), s2.tolist()))
    return num / (n * (n - 1) * 255.0**2)


# --------------------------------------------------------------------------
# ground truth: decode blob centres and compare with the known distribution
# --------------------------------------------------------------------------
def _check_blob_size(blob_size: Any, height: int, width: int) -> int:
    if isinstance(blob_size, bool) or not isinstance(blob_size, (int, np.integer)):
        raise ValueError(f"blob_size must be an odd positive integer, got {blob_size!r}")
    if blob_size <= 0 or blob_size % 2 == 0:
        raise ValueError(f"blob_size must be an odd positive integer, got {blob_size}")
    if blob_size > min(height, width):
        raise ValueError(f"blob_size {blob_size} is larger than the {height} x {width} grid")
    return int(blob_size)


def _window_area(height: int, width: int, r: int) -> np.ndarray:
    """Number of pixels of the clipped (2r+1)-square window centred on each pixel."""
    ys, xs = np.arange(height), np.arange(width)
    rows = np.minimum(ys + r, height - 1) - np.maximum(ys - r, 0) + 1
    cols = np.minimum(xs + r, width - 1) - np.maximum(xs - r, 0) + 1
    return np.outer(rows, cols)


def decode_centers(images: np.ndarray, blob_size: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Recover the blob centre of every image, and whether the image is a clean blob.

    Parameters
    ----------
    images : ndarray of uint8, shape (n, height, width)
    blob_size : int
        Side of the (odd) square blob in pixels (``GridSpec.blob_size``).

    Returns
    -------
    centers : ndarray of int64, shape (n, 2)
        (y, x) pixel coordinates of the decoded centre: the argmax of the
        ``blob_size x blob_size`` box filter (sum over the window, clipped at
        the border) of the image *minus half its maximum*, i.e. of
        ``sum_{p in window} (a_p - max(a) / 2)``; ties go to the first
        position in row-major order. See Notes for why not the plain sum.
    valid : ndarray of bool, shape (n,)
        True when the image thresholded at half intensity (``>= 128``) is
        exactly the clipped blob centred on the decoded centre, with nothing
        else lit. An all-dark image, two blobs, a smeared or partial blob are
        invalid.

    Notes
    -----
    The score is a matched filter: a pixel brighter than half the image's
    maximum adds to a window, a darker one subtracts. For a clean blob B a
    window W scores ``255 * (|W & B| - |W - B|)``, uniquely maximal at
    W = B, so the decoding is exact at every position, edges and corners
    included. The plain box *sum* is not: a blob on the last row lies wholly
    inside both its own clipped 2-row window and the 3-row window one row up
    (a tie), and any faint background pixel next to an edge or corner blob
    tips the argmax to the larger window. Subtracting half the *image's own*
    maximum (not a fixed 128) keeps a dim, blurry blob -- typical of VAE
    samples -- located where it is brightest instead of in an empty corner.
    Scores are exact integers (``2 * box - max * area``).

    Fully vectorised (separable box sums over the padded images in blocks of
    images; no per-image Python loop). Robust to faint noise (below half the
    maximum), which only lowers the scores of windows containing it.

    Raises
    ------
    ValueError
        Bad input, or ``blob_size`` not odd or larger than the grid.
    """
    images = _check_images(images)
    n, height, width = images.shape
    bs = _check_blob_size(blob_size, height, width)
    r = bs // 2
    # the narrowest integer type that holds |score| <= 2 * 255 * bs^2 (int16 for
    # blobs up to 7 x 7: half the memory traffic of int32, twice as fast)
    top = 2 * 255 * bs * bs
    dtype = np.int16 if top < 2**15 - 1 else np.int32 if top < 2**31 - 1 else np.int64
    area = _window_area(height, width, r).reshape(1, -1).astype(dtype)
    grid = GridSpec(height=height, width=width, blob_size=bs)
    centers = np.empty((n, 2), dtype=np.int64)
    valid = np.empty(n, dtype=bool)
    for s in range(0, n, _CHUNK):
        block = images[s : s + _CHUNK]
        m = block.shape[0]
        padded = np.zeros((m, height + 2 * r, width + 2 * r), dtype=dtype)
        padded[:, r : r + height, r : r + width] = block
        rows = padded[:, 0:height, :].copy()
        for dy in range(1, bs):
            rows += padded[:, dy : dy + height, :]
        box = rows[:, :, 0:width].copy()
        for dx in range(1, bs):
            box += rows[:, :, dx : dx + width]
        peak = block.reshape(m, -1).max(axis=1).astype(dtype)[:, None]
        score = 2 * box.reshape(m, -1) - peak * area  # 2 * sum(a - max/2)
        idx = np.argmax(score, axis=1)  # first maximum in row-major order
        c = np.stack([idx // width, idx % width], axis=1).astype(np.int64)
        centers[s : s + m] = c
        expected = render_blobs(c, grid) != 0
        valid[s : s + m] = np.all((block >= 128) == expected, axis=(1, 2))
    return centers, valid


def center_histogram(centers: np.ndarray, height: int, width: int) -> np.ndarray:
    """Normalised histogram of blob centres on the grid.

    Parameters
    ----------
    centers : int array, shape (n, 2), n >= 1
        (y, x) of each centre, inside the grid.
    height, width : int
        Grid size in pixels.

    Returns
    -------
    ndarray of float64, shape (height, width)
        ``hist[y, x]`` = fraction of centres at (y, x); sums to 1.

    Raises
    ------
    ValueError
        Wrong shape or dtype, no centres, or a centre outside the grid.
    """
    centers = np.asarray(centers)
    if centers.ndim != 2 or centers.shape[1] != 2:
        raise ValueError(f"centers must have shape (n, 2), got {centers.shape}")
    if not np.issubdtype(centers.dtype, np.integer):
        raise ValueError(f"centers must be integers, got dtype {centers.dtype}")
    if centers.shape[0] == 0:
        raise ValueError("centers is empty; at least one centre needed")
    for name, v in (("height", height), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    y, x = centers[:, 0].astype(np.int64), centers[:, 1].astype(np.int64)
    if y.min() < 0 or y.max() >= height or x.min() < 0 or x.max() >= width:
        raise ValueError(f"centres must lie inside the {height} x {width} grid")
    counts = np.bincount(y * width + x, minlength=height * width).astype(np.float64)
    return (counts / centers.shape[0]).reshape(height, width)


def _tv(p: np.ndarray, q: np.ndarray) -> float:
    return float(0.5 * np.abs(p - q).sum())


def _mean_std(pmf: np.ndarray) -> tuple[float, float]:
    pos = np.arange(pmf.size, dtype=np.float64)
    mean = float((pos * pmf).sum())
    var = float(((pos - mean) ** 2 * pmf).sum())
    return mean, math.sqrt(max(var, 0.0))


def ground_truth_measures(images: np.ndarray, spec: GridSpec, eps: float = 1e-6) -> dict[str, float]:
    """Compare the decoded blob centres of a set with the true centre distribution.

    Parameters
    ----------
    images : ndarray of uint8, shape (n, spec.height, spec.width)
    spec : GridSpec
        The true distribution (of the original data of the chain).
    eps : float
        Additive smoothing of the empirical histogram for ``center_kl``.

    Returns
    -------
    dict of str -> float
        validity
            Fraction of images that are one clean blob (see
            :func:`decode_centers`), in [0, 1].
        center_tv
            Total variation distance ``0.5 * sum |hist - pmf|`` between the
            histogram of decoded centres and ``spec.center_pmf()``, in [0, 1].
            *All* decoded centres are used, valid or not, so a set of
            smeared blobs is still judged by where it puts its mass.
        center_kl
            ``KL(truth || empirical)`` in nats, with the empirical histogram
            smoothed (``+ eps`` per cell, renormalised) so it is finite. This
            direction punishes *missing* true mass (mode dropping, the
            signature of collapse): a set concentrated on one centre gives a
            large value even though it lies inside the support.
        center_tv_y, center_tv_x
            Total variation between the marginals of the centre row / column.
        coverage
            True probability mass of the centres reached by at least one
            image, in [0, 1].
        mean_y, mean_x, std_y, std_x
            Mean and (population) standard deviation of the decoded centre
            row / column, in pixels.
        true_mean_y, true_mean_x, true_std_y, true_std_x
            The same from the true pmf, in pixels.

    Raises
    ------
    ValueError
        Bad input, or images not on the spec's grid.
    """
    images = _check_images(images)
    if not isinstance(spec, GridSpec):
        raise ValueError(f"spec must be a GridSpec, got {type(spec).__name__}")
    if images.shape[1:] != (spec.height, spec.width):
        raise ValueError(
            f"images are {images.shape[1]} x {images.shape[2]} but the spec's grid is {spec.height} x {spec.width}"
        )
    centers, valid = decode_centers(images, spec.blob_size)
    hist = center_histogram(centers, spec.height, spec.width)
    pmf = spec.center_pmf()
    smooth = (hist + eps) / (hist + eps).sum()
    mask = pmf > 0
    kl = float((pmf[mask] * np.log(pmf[mask] / smooth[mask])).sum())
    true_y, true_x = pmf.sum(axis=1), pmf.sum(axis=0)
    emp_y, emp_x = hist.sum(axis=1), hist.sum(axis=0)
    my, sy = _mean_std(emp_y)
    mx, sx = _mean_std(emp_x)
    ty, tsy = _mean_std(true_y)
    tx, tsx = _mean_std(true_x)
    return {
        "validity": float(valid.mean()),
        "center_tv": _tv(hist, pmf),
        "center_kl": max(kl, 0.0),
        "center_tv_y": _tv(emp_y, true_y),
        "center_tv_x": _tv(emp_x, true_x),
        "coverage": float(pmf[hist > 0].sum()),
        "mean_y": my,
        "mean_x": mx,
        "std_y": sy,
        "std_x": sx,
        "true_mean_y": ty,
        "true_mean_x": tx,
        "true_std_y": tsy,
        "true_std_x": tsx,
    }


# --------------------------------------------------------------------------
# improved precision and recall (Kynkäänniemi et al. 2019)
# --------------------------------------------------------------------------
# Squared distances (pixels in [0, 1]) within this of a k-NN radius count as
# inside it: a tolerance for float32 rounding in the matmul, so that exact
# duplicates (common in collapsed chains) are reliably "inside". It equals one
# pixel off by 2.55 grey levels, far below any meaningful radius.
_PR_TOL = 1e-4
_PR_BLOCK = 1024


def _subsample(images: np.ndarray, max_samples: int, rng: np.random.Generator) -> np.ndarray:
    n = images.shape[0]
    if n <= max_samples:
        return images
    return images[np.sort(rng.choice(n, size=max_samples, replace=False))]


def _features(images: np.ndarray, center: Any) -> Any:
    import torch

    x = torch.from_numpy(images.reshape(images.shape[0], -1).astype(np.float32) / np.float32(255.0))
    return x - center


def _sq_dists(a: Any, b: Any, a2: Any, b2: Any) -> Any:
    d = a2[:, None] + b2[None, :] - 2.0 * (a @ b.T)
    return d.clamp_(min=0.0)


def _knn_radii(x: Any, x2: Any, k: int) -> Any:
    """Squared distance of every row of ``x`` to its k-th nearest other row."""
    import torch

    out = torch.empty(x.shape[0], dtype=x.dtype)
    for s in range(0, x.shape[0], _PR_BLOCK):
        d = _sq_dists(x[s : s + _PR_BLOCK], x, x2[s : s + _PR_BLOCK], x2)
        # k + 1: the smallest is the point itself (distance ~0)
        # (topk is several times faster than kthvalue here)
        out[s : s + _PR_BLOCK] = torch.topk(d, k + 1, dim=1, largest=False).values[:, -1]
    return out


def precision_recall(
    real: np.ndarray,
    generated: np.ndarray,
    k: int = 3,
    max_samples: int = 5000,
    seed: int = 0,
) -> tuple[float, float]:
    """Improved precision and recall of a generated set against a real one.

    Kynkäänniemi et al., "Improved Precision and Recall Metric for Assessing
    Generative Models", NeurIPS 2019: each set's manifold is the union of
    balls around its points, each ball reaching the point's k-th nearest
    neighbour in the same set. Precision is the fraction of generated images
    inside the real manifold (fidelity); recall the fraction of real images
    inside the generated manifold (diversity).

    Parameters
    ----------
    real, generated : ndarrays of uint8, shapes (n_r, H, W), (n_g, H, W)
        Each set needs more than ``k`` images (after subsampling).
    k : int
        Neighbour rank of the ball radii (the paper uses 3).
    max_samples : int
        A set larger than this is subsampled to this many images, uniformly
        at random without replacement.
    seed : int
        Seed of the subsampling.

    Returns
    -------
    (precision, recall) : floats in [0, 1]

    Notes
    -----
    The feature is the raw image: flattened pixels in [0, 1] (no pretrained
    embedding, as in the paper; for 24 x 24 blob grids raw pixels are an
    honest and meaningful space). Distances are Euclidean, computed in
    float32 as ``|a|^2 + |b|^2 - 2 a.b`` (after centring on the real mean)
    with torch matmuls in blocks of 1,024 rows, so memory stays bounded.
    Squared distances within 1e-4 of a radius count as inside, so exact
    duplicates are reliably inside despite float32 rounding. Cost: three
    ``n x n`` distance passes.

    Raises
    ------
    ValueError
        Bad input, different grids, ``k < 1``, ``max_samples <= k``, or a set
        with at most ``k`` images.
    """
    import torch

    real = _check_images(real, "real")
    generated = _check_images(generated, "generated")
    _same_grid(real, generated, "real and generated")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if isinstance(max_samples, bool) or not isinstance(max_samples, (int, np.integer)) or max_samples <= k:
        raise ValueError(f"max_samples must be an integer larger than k={k}, got {max_samples!r}")
    rng = np.random.default_rng(seed)
    real = _subsample(real, int(max_samples), rng)
    generated = _subsample(generated, int(max_samples), rng)
    for name, s in (("real", real), ("generated", generated)):
        if s.shape[0] <= k:
            raise ValueError(f"{name} holds {s.shape[0]} image(s); precision/recall with k={k} needs more than {k}")
    with torch.no_grad():
        center = torch.from_numpy(real.reshape(real.shape[0], -1).astype(np.float64).mean(axis=0) / 255.0).float()
        r = _features(real, center)
        g = _features(generated, center)
        r2, g2 = (r * r).sum(1), (g * g).sum(1)
        rad_r = _knn_radii(r, r2, k) + _PR_TOL
        rad_g = _knn_radii(g, g2, k) + _PR_TOL
        g_inside = torch.zeros(g.shape[0], dtype=torch.bool)
        r_inside = torch.zeros(r.shape[0], dtype=torch.bool)
        for s in range(0, g.shape[0], _PR_BLOCK):
            d = _sq_dists(g[s : s + _PR_BLOCK], r, g2[s : s + _PR_BLOCK], r2)  # (block, n_r)
            g_inside[s : s + _PR_BLOCK] = (d <= rad_r[None, :]).any(dim=1)
            r_inside |= (d <= rad_g[s : s + _PR_BLOCK, None]).any(dim=0)
    return float(g_inside.float().mean()), float(r_inside.float().mean())


# --------------------------------------------------------------------------
# a whole run
# --------------------------------------------------------------------------
def _nan_gt() -> dict[str, float]:
    return {key: float("nan") for key in GROUND_TRUTH_KEYS}


def _to_json_value(v: float) -> float | None:
    return None if not math.isfinite(v) else float(v)


def _from_json_value(v: Any) -> float:
    return float("nan") if v is None else float(v)


def _load_cache(path: Any, params: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Cached entries by generation, or {} when missing, unreadable or stale."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("params") != params:
        return {}
    out: dict[int, dict[str, Any]] = {}
    for entry in doc.get("generations", []):
        try:
            out[int(entry["generation"])] = entry
        except (KeyError, TypeError, ValueError):
            continue
    return out


def _final_losses(run: Any, k: int) -> dict[str, float]:
    out = {f"loss_{key}": float("nan") for key in _LOSS_KEYS}
    if k == 0:
        return out
    try:
        losses = run.losses(k)
    except (FileNotFoundError, KeyError):
        return out
    for key in _LOSS_KEYS:
        arr = np.asarray(losses.get(key, []), dtype=np.float64).reshape(-1)
        if arr.size:
            out[f"loss_{key}"] = float(arr[-1])
    return out


def run_metrics(
    run: Any,
    spec: GridSpec | None = None,
    *,
    precision_recall_samples: int = 2000,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Every measure of every generation of a run, as one table.

    Parameters
    ----------
    run : Run
        From :func:`encchain.chain.load_run` (needs ``path``, ``spec``,
        ``len()``, ``images(k)``, ``dataset_sha256(k)``, ``losses(k)``).
    spec : GridSpec, optional
        The true distribution; default ``run.spec``. When both are None the
        ground-truth measures are NaN.
    precision_recall_samples : int
        Subsample size of :func:`precision_recall` (gen k vs gen 0); 0
        disables it (NaN).
    progress : bool
        Show a tqdm progress bar over generations.

    Returns
    -------
    dict of str -> ndarray, every array of length ``len(run)``
        ``generation`` (int64, 0..N), ``n_images`` and float64 columns
        (see :data:`METRIC_COLUMNS`):

        * ``difference_prev`` -- :func:`difference` of gen k vs gen k-1 (NaN
          at 0). In the replace regime gen k-1 is model k's training set and
          gen k what it generated: the original's "difference".
        * ``difference_orig`` -- gen k vs gen 0 (0 at 0).
        * ``variability`` (sampled, seed 0), ``variability_exact``.
        * the keys of :func:`ground_truth_measures`.
        * ``precision``, ``recall`` -- gen k against gen 0 (1, 1 at gen 0
          up to the subsample).
        * ``loss_total``, ``loss_recon``, ``loss_kl``, ``loss_variability``
          -- final-epoch training losses of the model that produced gen k
          (NaN at 0), read fresh every call.

    Notes
    -----
    Results are cached in ``run.path / "metrics.json"``. An entry is reused
    when the dataset checksums it depends on (gen k, gen k-1, gen 0) and the
    metric parameters (spec, subsample size, seeds) are unchanged; a changed
    or new generation is recomputed, and the file is rewritten atomically.
    A cache that cannot be written only warns.
    """
    from tqdm.auto import tqdm

    from .atomic import atomic_write_bytes

    if isinstance(precision_recall_samples, bool) or not isinstance(precision_recall_samples, (int, np.integer)):
        raise ValueError(f"precision_recall_samples must be a non-negative integer, got {precision_recall_samples!r}")
    if precision_recall_samples < 0 or 0 < precision_recall_samples <= 3:
        raise ValueError(f"precision_recall_samples must be 0 (off) or larger than 3, got {precision_recall_samples}")
    spec = spec if spec is not None else getattr(run, "spec", None)
    n_gen = len(run)
    if n_gen < 1:
        raise ValueError("the run has no dataset yet")
    params = {
        "version": _CACHE_VERSION,
        "spec": spec.to_dict() if spec is not None else None,
        "precision_recall_samples": int(precision_recall_samples),
        "precision_recall_k": 3,
        "seed": 0,
    }
    cache_path = run.path / METRICS_CACHE_NAME
    cached = _load_cache(cache_path, params)
    shas = [run.dataset_sha256(k) for k in range(n_gen)]

    images_memo: dict[int, np.ndarray] = {}
    occ_memo: dict[int, np.ndarray] = {}

    def images(k: int) -> np.ndarray:
        if k not in images_memo:
            images_memo[k] = _check_images(run.images(k), f"generation {k}")
            # keep gen 0 and the latest two only
            for old in [g for g in images_memo if g not in (0, k, k - 1)]:
                del images_memo[old]
        return images_memo[k]

    def occ(k: int) -> np.ndarray:
        if k not in occ_memo:
            occ_memo[k] = occupancy(images(k))[0]
        return occ_memo[k]

    entries: list[dict[str, Any]] = []
    changed = False
    bar = tqdm(range(n_gen), desc="metrics", unit="gen", disable=not progress)
    for k in bar:
        key = {"sha256": shas[k], "prev_sha256": shas[k - 1] if k else None, "orig_sha256": shas[0]}
        entry = cached.get(k)
        if entry is not None and all(entry.get(a) == b for a, b in key.items()) and isinstance(
            entry.get("values"), dict
        ):
            entries.append(entry)
            continue
        values = _generation_values(
            k, images, occ, spec, int(precision_recall_samples)
        )
        entries.append({"generation": k, **key, "values": {a: _to_json_value(b) for a, b in values.items()}})
        changed = True
    bar.close()
    if changed or len(cached) != n_gen:
        doc = {"params": params, "generations": entries}
        try:
            atomic_write_bytes(cache_path, json.dumps(doc, indent=1).encode("utf-8"))
        except OSError as exc:
            warnings.warn(f"could not write the metrics cache {cache_path}: {exc}", stacklevel=2)

    table: dict[str, np.ndarray] = {"generation": np.arange(n_gen, dtype=np.int64)}
    rows = [{a: _from_json_value(e["values"].get(a)) for a in METRIC_COLUMNS[1:] if not a.startswith("loss_")} for e in entries]
    losses = [_final_losses(run, k) for k in range(n_gen)]
    for col in METRIC_COLUMNS[1:]:
        src = losses if col.startswith("loss_") else rows
        table[col] = np.array([r[col] for r in src], dtype=np.float64)
    return table


def _generation_values(k: int, images: Any, occ: Any, spec: GridSpec | None, pr_samples: int) -> dict[str, float]:
    """All dataset-derived measures of generation k (see :func:`run_metrics`)."""
    x = images(k)
    nan = float("nan")
    two = x.shape[0] >= 2
    out: dict[str, float] = {
        "n_images": float(x.shape[0]),
        "difference_prev": float(np.linalg.norm(occ(k) - occ(k - 1))) if k else nan,
        "difference_orig": float(np.linalg.norm(occ(k) - occ(0))),
        "variability": variability(x, seed=0) if two else nan,
        "variability_exact": variability_exact(x) if two else nan,
    }
    if spec is not None and x.shape[1:] == (spec.height, spec.width):
        out.update(ground_truth_measures(x, spec))
    else:
        out.update(_nan_gt())
    if pr_samples and min(x.shape[0], images(0).shape[0]) > 3:
        out["precision"], out["recall"] = precision_recall(images(0), x, k=3, max_samples=pr_samples, seed=0)
    else:
        out["precision"] = out["recall"] = nan
    return out


def _check_table(table: Mapping[str, Any]) -> dict[str, np.ndarray]:
    if not isinstance(table, Mapping) or "generation" not in table:
        raise ValueError("a metrics table must be a mapping with a 'generation' column")
    cols = {k: np.asarray(v).reshape(-1) for k, v in table.items()}
    n = cols["generation"].size
    for k, v in cols.items():
        if v.size != n:
            raise ValueError(f"column {k!r} has {v.size} rows but 'generation' has {n}")
    return cols


def metrics_to_csv(table: Mapping[str, Sequence[float] | np.ndarray], path: Any) -> Any:
    """Write a metrics table as CSV (atomically).

    Parameters
    ----------
    table : mapping of column name -> 1-d array
        E.g. from :func:`run_metrics`; all columns the same length.
    path : str or PathLike
        Destination; its folder must exist.

    Returns
    -------
    pathlib.Path
        The written path. One header row of column names, then one row per
        generation; NaN is written as ``nan``; floats with 10 significant
        digits.
    """
    from .atomic import atomic_write_bytes

    cols = _check_table(table)
    names = list(cols)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(names)
    n = cols["generation"].size
    for i in range(n):
        row = []
        for name in names:
            v = cols[name][i]
            if isinstance(v, (np.integer, int)) or (isinstance(v, np.generic) and v.dtype.kind in "iu"):
                row.append(str(int(v)))
            else:
                f = float(v)
                row.append("nan" if math.isnan(f) else format(f, ".10g"))
        w.writerow(row)
    return atomic_write_bytes(path, buf.getvalue().encode("utf-8"))


def summary_lines(table: Mapping[str, Sequence[float] | np.ndarray]) -> list[str]:
    """A short text line per generation: variability, validity, centre TV.

    Parameters
    ----------
    table : mapping of column name -> 1-d array
        From :func:`run_metrics`; missing columns print as "n/a".

    Returns
    -------
    list of str
        One header line, then one line per generation, e.g.
        ``"   0 (original)   3.4121   3.4530    1.000     0.012"``.
    """
    cols = _check_table(table)
    n = cols["generation"].size

    def fmt(name: str, i: int, spec: str) -> str:
        if name not in cols:
            return "n/a"
        v = float(cols[name][i])
        return "nan" if math.isnan(v) else format(v, spec)

    lines = [f"{'gen':>15} {'variab.':>8} {'sqrt(ex)':>8} {'validity':>8} {'centreTV':>8}"]
    for i in range(n):
        g = int(cols["generation"][i])
        label = f"{g} (original)" if g == 0 else str(g)
        ex = cols.get("variability_exact")
        sq = "n/a" if ex is None else ("nan" if math.isnan(float(ex[i])) else format(math.sqrt(max(float(ex[i]), 0.0)), ".4f"))
        lines.append(
            f"{label:>15} {fmt('variability', i, '.4f'):>8} {sq:>8} {fmt('validity', i, '.3f'):>8} {fmt('center_tv', i, '.3f'):>8}"
        )
    return lines


def collapse_generation(
    table: Mapping[str, Sequence[float] | np.ndarray], column: str, fraction: float = 0.5
) -> int | None:
    """The first generation whose ``column`` falls below ``fraction`` of generation 0's.

    A one-number answer to "how fast does this chain collapse?", e.g. the
    generation at which the exact variability halves.

    Parameters
    ----------
    table : mapping of column name -> 1-d array
        From :func:`run_metrics`.
    column : str
        A measure that shrinks with collapse (``variability``,
        ``variability_exact``, ``coverage``, ``validity``, ``recall`` ...).
    fraction : float
        Threshold as a fraction of the generation-0 value, in (0, 1].

    Returns
    -------
    int or None
        The generation, or None if the chain never falls that low.
    """
    cols = _check_table(table)
    if column not in cols:
        raise ValueError(f"no column {column!r} in the table; columns: {sorted(cols)}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    values = np.asarray(cols[column], dtype=np.float64)
    order = np.argsort(cols["generation"], kind="stable")
    values, generations = values[order], np.asarray(cols["generation"])[order]
    threshold = fraction * values[0]
    below = np.flatnonzero(values < threshold)
    return int(generations[below[0]]) if below.size else None
