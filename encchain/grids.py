"""Synthetic grid datasets whose true distribution is known exactly.

Each image is an ``height x width`` grid of ``uint8`` pixels, background 0,
with one square "blob" of ``blob_size x blob_size`` pixels at 255 centred on
``(y, x)``. Where the centre is near the border the square is clipped, so with
the default 3 x 3 blob a corner blob has 4 lit pixels, an edge blob 6 and an
inner blob 9.

The blob centre follows a mixture of *modes*. Each mode has a weight and an
independent distribution per axis: ``Binomial(p)`` (``size - 1`` trials, so
the centre lies in ``0 .. size - 1``) or ``Uniform()`` on ``0 .. size - 1``.
Because the distribution is explicit, :meth:`GridSpec.center_pmf` gives the
exact probability of every centre, which later metrics compare against.

Examples
--------
>>> spec = GridSpec.unimodal()
>>> images, centers = make_grids(spec, 1000, seed=0, return_centers=True)
>>> images.shape, images.dtype, centers.shape
((1000, 24, 24), dtype('uint8'), (1000, 2))
>>> float(spec.center_pmf().sum())
1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

__all__ = [
    "Binomial",
    "Uniform",
    "AxisDist",
    "Mode",
    "GridSpec",
    "GRID_PRESETS",
    "grid_preset",
    "make_grids",
    "render_blobs",
    "sample_centers",
]


@dataclass(frozen=True)
class Binomial:
    """Centre coordinate ~ Binomial(size - 1, p) on ``0 .. size - 1``.

    Parameters
    ----------
    p : float
        Success probability in [0, 1]. The mean coordinate is ``(size - 1) * p``.
    """

    p: float

    def __post_init__(self) -> None:
        if not isinstance(self.p, (int, float)) or not (0.0 <= float(self.p) <= 1.0):
            raise ValueError(f"Binomial p must be a number in [0, 1], got {self.p!r}")

    def pmf(self, size: int) -> np.ndarray:
        """Exact probabilities of the coordinates ``0 .. size - 1`` (float64)."""
        n, p = size - 1, float(self.p)
        return np.array([math.comb(n, k) * p**k * (1.0 - p) ** (n - k) for k in range(size)])

    def sample(self, size: int, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.binomial(size - 1, float(self.p), size=n)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "binomial", "p": float(self.p)}


@dataclass(frozen=True)
class Uniform:
    """Centre coordinate uniform on ``0 .. size - 1``."""

    def pmf(self, size: int) -> np.ndarray:
        """Exact probabilities of the coordinates ``0 .. size - 1`` (float64)."""
        return np.full(size, 1.0 / size)

    def sample(self, size: int, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(0, size, size=n)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "uniform"}


AxisDist = Union[Binomial, Uniform]


def _axis_from_dict(d: Any) -> AxisDist:
    if isinstance(d, (Binomial, Uniform)):
        return d
    if not isinstance(d, dict) or "kind" not in d:
        raise ValueError(f"an axis distribution must be {{'kind': 'binomial'|'uniform', ...}}, got {d!r}")
    if d["kind"] == "binomial":
        if "p" not in d:
            raise ValueError(f"a binomial axis needs 'p', got {d!r}")
        return Binomial(float(d["p"]))
    if d["kind"] == "uniform":
        return Uniform()
    raise ValueError(f"unknown axis distribution kind {d['kind']!r} (expected 'binomial' or 'uniform')")


@dataclass(frozen=True)
class Mode:
    """One component of the centre distribution.

    Parameters
    ----------
    weight : float
        Positive relative weight; weights are normalised over all modes.
    y, x : Binomial or Uniform
        Independent distributions of the row and column of the blob centre.
    """

    weight: float
    y: AxisDist
    x: AxisDist

    def __post_init__(self) -> None:
        if not isinstance(self.weight, (int, float)) or not math.isfinite(self.weight) or self.weight <= 0:
            raise ValueError(f"mode weight must be a positive finite number, got {self.weight!r}")
        for axis in ("y", "x"):
            if not isinstance(getattr(self, axis), (Binomial, Uniform)):
                raise ValueError(f"mode {axis} must be Binomial(p) or Uniform(), got {getattr(self, axis)!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"weight": float(self.weight), "y": self.y.to_dict(), "x": self.x.to_dict()}


def _default_modes() -> tuple[Mode, ...]:
    return (Mode(1.0, Binomial(0.8), Binomial(0.3)),)


@dataclass(frozen=True)
class GridSpec:
    """The distribution of a grid dataset.

    Parameters
    ----------
    height, width : int
        Grid size in pixels (default 24 x 24).
    blob_size : int
        Side of the square blob in pixels; odd, so that it has a centre pixel
        (default 3).
    modes : tuple of Mode
        Mixture components of the blob-centre distribution (default: the
        original's unimodal y ~ Bin(23, 0.8), x ~ Bin(23, 0.3)).

    Raises
    ------
    ValueError
        Non-positive sizes, an even blob or one larger than the grid, no modes.
    """

    height: int = 24
    width: int = 24
    blob_size: int = 3
    modes: tuple[Mode, ...] = field(default_factory=_default_modes)

    def __post_init__(self) -> None:
        for name in ("height", "width", "blob_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"GridSpec.{name} must be a positive integer, got {value!r}")
        if self.blob_size % 2 == 0:
            raise ValueError(f"GridSpec.blob_size must be odd so the blob has a centre pixel, got {self.blob_size}")
        if self.blob_size > min(self.height, self.width):
            raise ValueError(
                f"GridSpec.blob_size {self.blob_size} is larger than the grid {self.height} x {self.width}"
            )
        modes = tuple(self.modes)
        if not modes:
            raise ValueError("GridSpec.modes must hold at least one Mode")
        for m in modes:
            if not isinstance(m, Mode):
                raise ValueError(f"GridSpec.modes must hold Mode objects, got {m!r}")
        object.__setattr__(self, "modes", modes)

    # -- ready-made distributions of the original system -------------------
    @classmethod
    def unimodal(cls, p_y: float = 0.8, p_x: float = 0.3, **kw: Any) -> "GridSpec":
        """The original default: y ~ Bin(H-1, 0.8), x ~ Bin(W-1, 0.3), independent."""
        return cls(modes=(Mode(1.0, Binomial(p_y), Binomial(p_x)),), **kw)

    @classmethod
    def bimodal(cls, **kw: Any) -> "GridSpec":
        """The original bimodal set: 2/3 at (p_y, p_x) = (0.8, 0.3), 1/3 at (0.2, 0.7)."""
        return cls(
            modes=(Mode(2.0, Binomial(0.8), Binomial(0.3)), Mode(1.0, Binomial(0.2), Binomial(0.7))),
            **kw,
        )

    @classmethod
    def uniform(cls, **kw: Any) -> "GridSpec":
        """Both axes uniform: every centre equally likely."""
        return cls(modes=(Mode(1.0, Uniform(), Uniform()),), **kw)

    # -- the exact ground truth ---------------------------------------------
    @property
    def weights(self) -> np.ndarray:
        """Mode weights normalised to sum to 1 (float64, shape (n_modes,))."""
        w = np.array([m.weight for m in self.modes], dtype=np.float64)
        return w / w.sum()

    def center_pmf(self) -> np.ndarray:
        """Exact probability of each blob centre.

        Returns
        -------
        ndarray of float64, shape (height, width)
            ``pmf[y, x]`` is the probability that the blob is centred on
            pixel (y, x); the array sums to 1.
        """
        pmf = np.zeros((self.height, self.width))
        for w, m in zip(self.weights, self.modes):
            pmf += w * np.outer(m.y.pmf(self.height), m.x.pmf(self.width))
        return pmf

    def marginals(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact marginal pmfs of the centre row and column.

        Returns
        -------
        (pmf_y, pmf_x) : ndarrays of float64, shapes (height,) and (width,)
        """
        pmf = self.center_pmf()
        return pmf.sum(axis=1), pmf.sum(axis=0)

    def blob_pixels(self, y: int, x: int) -> int:
        """Number of lit pixels of a blob centred on (y, x), after clipping."""
        r = self.blob_size // 2
        rows = min(y + r, self.height - 1) - max(y - r, 0) + 1
        cols = min(x + r, self.width - 1) - max(x - r, 0) + 1
        return rows * cols

    # -- serialisation (for run configs) -------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description; :meth:`from_dict` inverts it."""
        return {
            "height": int(self.height),
            "width": int(self.width),
            "blob_size": int(self.blob_size),
            "modes": [m.to_dict() for m in self.modes],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GridSpec":
        """Build a spec from :meth:`to_dict` output (ValueError on a malformed dict)."""
        if not isinstance(d, dict):
            raise ValueError(f"a GridSpec description must be a dict, got {type(d).__name__}")
        unknown = set(d) - {"height", "width", "blob_size", "modes"}
        if unknown:
            raise ValueError(f"unknown GridSpec fields: {sorted(unknown)}")
        modes = []
        for md in d.get("modes", [m.to_dict() for m in _default_modes()]):
            if isinstance(md, Mode):
                modes.append(md)
                continue
            if not isinstance(md, dict) or not {"weight", "y", "x"} <= set(md):
                raise ValueError(f"a mode must be {{'weight', 'y', 'x'}}, got {md!r}")
            modes.append(Mode(float(md["weight"]), _axis_from_dict(md["y"]), _axis_from_dict(md["x"])))
        return cls(
            height=int(d.get("height", 24)),
            width=int(d.get("width", 24)),
            blob_size=int(d.get("blob_size", 3)),
            modes=tuple(modes),
        )


GRID_PRESETS = {
    "unimodal": GridSpec.unimodal,
    "bimodal": GridSpec.bimodal,
    "uniform": GridSpec.uniform,
}


def grid_preset(name: str) -> GridSpec:
    """The ready-made spec called ``name`` ('unimodal', 'bimodal' or 'uniform')."""
    try:
        return GRID_PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown grid preset {name!r}; choose one of {sorted(GRID_PRESETS)}") from None


def _mode_counts(weights: np.ndarray, n: int) -> np.ndarray:
    """Split ``n`` samples among modes exactly in proportion (largest remainder).

    The original drew the bimodal set as a fixed split (the first two thirds of
    the samples from one mode, the rest from the other), not a random one.
    """
    raw = weights * n
    counts = np.floor(raw).astype(np.int64)
    short = n - int(counts.sum())
    if short:
        order = np.argsort(-(raw - counts), kind="stable")
        counts[order[:short]] += 1
    return counts


def sample_centers(spec: GridSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` blob centres from ``spec``.

    Modes get an exact proportional share of the ``n`` samples (as in the
    original), and the result is shuffled.

    Returns
    -------
    ndarray of int64, shape (n, 2)
        Column 0 is the row (y), column 1 the column (x) of each centre.
    """
    counts = _mode_counts(spec.weights, n)
    parts = [
        np.stack([m.y.sample(spec.height, c, rng), m.x.sample(spec.width, c, rng)], axis=1)
        for m, c in zip(spec.modes, counts)
    ]
    centers = np.concatenate(parts, axis=0).astype(np.int64, copy=False)
    if len(spec.modes) > 1:
        centers = centers[rng.permutation(n)]
    return centers


def render_blobs(centers: np.ndarray, spec: GridSpec) -> np.ndarray:
    """Draw one clipped blob per centre.

    Parameters
    ----------
    centers : int array, shape (n, 2)
        (y, x) of each blob centre, inside the grid.
    spec : GridSpec
        Grid size and blob size.

    Returns
    -------
    ndarray of uint8, shape (n, height, width)
        255 on the blob, 0 elsewhere.
    """
    centers = np.asarray(centers)
    if centers.ndim != 2 or centers.shape[1] != 2:
        raise ValueError(f"centers must have shape (n, 2), got {centers.shape}")
    cy, cx = centers[:, 0:1], centers[:, 1:2]
    if centers.size and (cy.min() < 0 or cy.max() >= spec.height or cx.min() < 0 or cx.max() >= spec.width):
        raise ValueError(f"centres must lie inside the {spec.height} x {spec.width} grid")
    r = spec.blob_size // 2
    rows = np.abs(np.arange(spec.height) - cy) <= r  # (n, H) bool
    cols = np.abs(np.arange(spec.width) - cx) <= r  # (n, W) bool
    lit = rows[:, :, None] & cols[:, None, :]  # (n, H, W): one outer product per image
    return lit.view(np.uint8) * np.uint8(255)


def make_grids(
    spec: GridSpec, n: int, seed: int = 0, *, return_centers: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Generate ``n`` grids from ``spec``, reproducibly.

    Parameters
    ----------
    spec : GridSpec
        The distribution.
    n : int
        Number of images (>= 0).
    seed : int
        Seed of the numpy generator; the same (spec, n, seed) gives the same
        bytes on every machine.
    return_centers : bool
        Also return the drawn blob centres.

    Returns
    -------
    images : ndarray of uint8, shape (n, height, width)
    centers : ndarray of int64, shape (n, 2), only if ``return_centers``
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    rng = np.random.default_rng(seed)
    centers = sample_centers(spec, int(n), rng)
    images = render_blobs(centers, spec)
    return (images, centers) if return_centers else images
