"""Figures of datasets and chains, for notebooks and reports.

Every ``plot_*`` function returns a :class:`matplotlib.figure.Figure` built
directly (not through ``pyplot``), so nothing is shown or registered with a
GUI backend behind the caller's back: in a notebook the returned figure is
displayed once, as the cell's value; elsewhere call ``fig.savefig(...)``.

The ``draw_*`` helpers draw into given Axes; they clear and redraw them, so
calling them again on the same Axes (e.g. from a widget callback, followed by
``fig.canvas.draw_idle()``) updates a figure in place. The ``plot_*``
functions are thin wrappers that make a figure and call them.

Importing this module does not import matplotlib; it is imported on first
use. Heat maps use one colour map throughout (:data:`CMAP`, "magma"), and
generation 0 (the original data) is marked on every chain plot.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from . import metrics as _m

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.image import AxesImage

    from .grids import GridSpec

__all__ = [
    "CMAP",
    "draw_samples",
    "draw_occupancy",
    "draw_marginals",
    "draw_variability",
    "draw_difference",
    "plot_variability",
    "plot_difference",
    "plot_occupancy_grid",
    "plot_samples",
    "plot_marginals",
    "plot_ground_truth",
    "plot_losses",
    "plot_center_pmfs",
    "plot_compare",
]

#: The colour map of every heat map.
CMAP = "magma"
_ORIG_COLOR = "0.45"
_GEN_LABEL = "generation (0 = original data)"
_DIST_UNIT = "L2 distance (pixels in [0, 1])"


def _figure(figsize: tuple[float, float], **kw: Any) -> "Figure":
    from matplotlib.figure import Figure

    _show_figures_in_ipython()
    return Figure(figsize=figsize, layout="constrained", **kw)


def _show_figures_in_ipython() -> None:
    """Let IPython render a returned Figure as PNG.

    Figures here are built without pyplot, so the inline backend's formatter
    (registered only when pyplot is in use) may be missing: without it a
    notebook cell would print ``<Figure size ...>`` instead of the image.
    """
    import sys

    if "IPython" not in sys.modules:
        return
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    from IPython.core.pylabtools import print_figure
    from matplotlib.figure import Figure

    png = shell.display_formatter.formatters["image/png"]
    if Figure not in png.type_printers:
        png.for_type(Figure, lambda fig: print_figure(fig, "png", bbox_inches="tight", dpi=100))


Table = Mapping[str, Any]


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _generations(table: Table) -> np.ndarray:
    if "generation" not in table:
        raise ValueError("a metrics table needs a 'generation' column (see encchain.metrics.run_metrics)")
    return np.asarray(table["generation"], dtype=np.float64).reshape(-1)


def _col(table: Table, name: str) -> np.ndarray:
    gen = _generations(table)
    if name not in table:
        return np.full(gen.shape, np.nan)
    v = np.asarray(table[name], dtype=np.float64).reshape(-1)
    if v.shape != gen.shape:
        raise ValueError(f"column {name!r} has {v.size} rows, 'generation' has {gen.size}")
    return v


def _mark_original(ax: "Axes", label: bool = True) -> None:
    """A dotted vertical line at generation 0, annotated "original data"."""
    ax.axvline(0, color=_ORIG_COLOR, ls=":", lw=1.2, zorder=0)
    if label:
        ax.annotate(
            "original\ndata",
            xy=(0, 1),
            xycoords=("data", "axes fraction"),
            xytext=(3, -3),
            textcoords="offset points",
            ha="left",
            va="top",
            fontsize=7.5,
            color=_ORIG_COLOR,
        )


def _generation_axis(ax: "Axes", n_max: float) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel(_GEN_LABEL)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=10))
    ax.set_xlim(-0.5, max(n_max, 1) + 0.5)
    ax.grid(True, alpha=0.3)


def _headroom(ax: "Axes") -> None:
    """Start the y axis at 0 and leave room above the data for the gen-0 note."""
    top = 0.0
    for line in ax.get_lines():
        y = np.asarray(line.get_ydata(), dtype=np.float64)
        if y.size and np.isfinite(y).any():
            top = max(top, float(np.nanmax(y)))
    for coll in ax.collections:
        for path in coll.get_paths():
            v = path.vertices[:, 1]
            if v.size and np.isfinite(v).any():
                top = max(top, float(np.nanmax(v)))
    ax.set_ylim(0, top * 1.18 if top > 0 else 1.0)


def _no_data(ax: "Axes", text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9, color="0.4", wrap=True)


def _as_images(images: Any, name: str = "images") -> np.ndarray:
    return _m._check_images(images, name)


def _is_table(obj: Any) -> bool:
    return isinstance(obj, Mapping) and "generation" in obj


def _groups(tables: Any) -> list[list[Table]]:
    """Normalise tables to a list of groups (a group = seeds of one config)."""
    if _is_table(tables):
        return [[tables]]
    tables = list(tables)
    if not tables:
        raise ValueError("no metrics tables given")
    if all(_is_table(t) for t in tables):
        return [tables]
    groups = []
    for g in tables:
        if _is_table(g):
            groups.append([g])
        else:
            g = list(g)
            if not g or not all(_is_table(t) for t in g):
                raise ValueError("tables must be a table, a list of tables (seeds) or a list of such lists")
            groups.append(g)
    return groups


def _stack(group: Sequence[Table], col: str) -> tuple[np.ndarray, np.ndarray]:
    """Generations 0..max and a (n_tables, n_gen) array, NaN where a chain is shorter."""
    n = max(int(_generations(t).max()) + 1 for t in group)
    out = np.full((len(group), n), np.nan)
    for i, t in enumerate(group):
        g = _generations(t).astype(int)
        out[i, g] = _col(t, col)
    return np.arange(n), out


def _band(
    ax: "Axes", x: np.ndarray, ys: np.ndarray, color: Any, label: str, ls: str = "-", alpha: float = 0.18
) -> None:
    """Mean line, and a min-max band when there are several rows."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        mean = np.nanmean(ys, axis=0)
        lo, hi = np.nanmin(ys, axis=0), np.nanmax(ys, axis=0)
    ax.plot(x, mean, ls=ls, color=color, lw=1.8, label=label)
    if ys.shape[0] > 1:
        ax.fill_between(x, lo, hi, color=color, alpha=alpha, lw=0)
    ax.plot(x[:1], mean[:1], marker="*", ms=11, color=color, ls="none", zorder=3)


# --------------------------------------------------------------------------
# draw_* : into existing axes (idempotent)
# --------------------------------------------------------------------------
# Separator colour of sample mosaics: a blue that no gray pixel can be mistaken for.
_SEPARATOR = "#3c78c8"


def _sample_indices(total: int, n: int, seed: int) -> np.ndarray:
    """Which ``min(n, total)`` images a mosaic shows: a seeded random choice, in order."""
    return np.sort(np.random.default_rng(seed).choice(total, size=min(n, total), replace=False))


def _mosaic(images: np.ndarray, ncols: int, pad: int = 1, cells: int | None = None) -> np.ma.MaskedArray:
    """2-D uint8 mosaic of gray images; the separator lines are masked.

    ``cells`` fixes the number of slots (default: one per image), so mosaics of
    sets of different sizes have the same shape; empty slots are masked too.
    """
    n, h, w = images.shape
    nrows = math.ceil((n if cells is None else max(cells, n)) / ncols)
    data = np.zeros((nrows * (h + pad) + pad, ncols * (w + pad) + pad), dtype=np.uint8)
    mask = np.ones(data.shape, dtype=bool)
    for i in range(n):
        r, c = divmod(i, ncols)
        y0, x0 = pad + r * (h + pad), pad + c * (w + pad)
        data[y0 : y0 + h, x0 : x0 + w] = images[i]
        mask[y0 : y0 + h, x0 : x0 + w] = False
    return np.ma.MaskedArray(data, mask=mask)


def _gray_cmap() -> Any:
    import matplotlib

    return matplotlib.colormaps["gray"].with_extremes(bad=_SEPARATOR)


def _mosaic_columns(n: int) -> int:
    """About sqrt(n) columns, preferring a count that fills the last row (32 -> 8 x 4)."""
    root = max(1, math.ceil(math.sqrt(n)))
    for cols in range(root, min(n, 2 * root) + 1):
        if n % cols == 0:
            return cols
    return root


def draw_samples(
    ax: "Axes", images: np.ndarray, n: int = 16, seed: int = 0, title: str | None = None, ncols: int | None = None
) -> "AxesImage":
    """Draw ``n`` random images of a set as one gray mosaic into ``ax``.

    Parameters
    ----------
    ax : Axes
        Cleared and redrawn.
    images : ndarray of uint8, shape (N, H, W)
    n : int
        Number of images shown (at most N), drawn without replacement.
    seed : int
        Seed of the draw (the same seed shows the same images).
    title : str, optional
    ncols : int, optional
        Columns of the mosaic; default about ``sqrt(n)``, preferring a divisor
        of ``n`` so that no row is left half empty.

    Returns
    -------
    AxesImage
        The mosaic: a 2-D gray image (``cmap`` gray, ``vmin=0, vmax=255``)
        whose separator lines are masked, so they show in blue (the colour
        map's "bad" colour) and no gray image blends into them.
        ``set_data`` with another 2-D uint8 (or masked) mosaic of the same
        shape updates it in place.
    """
    images = _as_images(images)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    n = min(int(n), images.shape[0])
    idx = _sample_indices(images.shape[0], n, seed)
    ncols = ncols or _mosaic_columns(n)
    ax.clear()
    im = ax.imshow(_mosaic(images[idx], ncols), cmap=_gray_cmap(), vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title)
    return im


def draw_occupancy(
    ax: "Axes", images_or_map: np.ndarray, title: str | None = None, colorbar: bool = False
) -> "AxesImage":
    """Draw an occupancy heat map into ``ax`` (cleared first).

    Parameters
    ----------
    ax : Axes
    images_or_map : ndarray
        A uint8 image set (n, H, W), whose :func:`encchain.metrics.occupancy`
        map is drawn, or an (H, W) float map in [0, 1].
    title : str, optional
    colorbar : bool
        Add a colour bar next to ``ax`` (only on first draw; for small
        multiples share one with ``fig.colorbar(image, ax=axes)`` instead).

    Returns
    -------
    AxesImage
        With ``vmin=0, vmax=1`` and :data:`CMAP`, so images are comparable.
    """
    arr = np.asarray(images_or_map)
    if arr.ndim == 2:
        occ = arr.astype(np.float64)
    else:
        occ = _m.occupancy(_as_images(arr))[0]
    ax.clear()
    im = ax.imshow(occ, cmap=CMAP, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=9)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, label="occupancy (sum / max)")
    return im


def draw_marginals(
    axes: Sequence["Axes"], images: np.ndarray, spec: "GridSpec", title: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Draw decoded centre marginals against the true ones into two axes.

    Parameters
    ----------
    axes : pair of Axes
        Row (y) panel and column (x) panel; both cleared first.
    images : ndarray of uint8, shape (n, spec.height, spec.width)
    spec : GridSpec
        The true distribution (its marginals are drawn as a step line).
    title : str, optional
        Put above the first panel.

    Returns
    -------
    (emp_y, emp_x) : the decoded marginal pmfs drawn as bars.
    """
    images = _as_images(images)
    if images.shape[1:] != (spec.height, spec.width):
        raise ValueError(f"images are {images.shape[1:]} but the spec's grid is {(spec.height, spec.width)}")
    ax_y, ax_x = axes
    centers, valid = _m.decode_centers(images, spec.blob_size)
    hist = _m.center_histogram(centers, spec.height, spec.width)
    emp = (hist.sum(axis=1), hist.sum(axis=0))
    true = spec.marginals()
    for ax, e, t, name in ((ax_y, emp[0], true[0], "row y"), (ax_x, emp[1], true[1], "column x")):
        ax.clear()
        pos = np.arange(e.size)
        ax.bar(pos, e, width=0.85, color="tab:blue", alpha=0.75, label="decoded from images")
        ax.step(pos, t, where="mid", color="black", lw=1.5, label="true distribution")
        tv = 0.5 * np.abs(e - t).sum()
        ax.set_xlabel(f"blob centre {name} (pixel)")
        ax.set_ylabel("probability")
        ax.set_xlim(-0.7, e.size - 0.3)
        ax.set_title(f"centre {name}: TV = {tv:.3f}", fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
    ax_y.legend(fontsize=8, loc="upper left")
    if title is not None:
        ax_y.figure.suptitle(f"{title}  (valid blobs: {valid.mean():.1%})")
    return emp


def draw_variability(ax: "Axes", tables: Any, labels: Sequence[str] | str | None = None) -> None:
    """Draw sampled and exact variability along the chain into ``ax`` (cleared).

    See :func:`plot_variability` for ``tables`` and ``labels``.
    """
    if isinstance(tables, Mapping) and not _is_table(tables):  # {label: table or [seed tables]}
        if labels is not None:
            raise ValueError("labels come from the dict's keys; pass either a dict or labels")
        labels = [str(k) for k in tables]
        tables = [[v] if _is_table(v) else list(v) for v in tables.values()]
    groups = _groups(tables)
    if labels is None:
        labels = [f"config {i + 1}" for i in range(len(groups))] if len(groups) > 1 else [""]
    elif isinstance(labels, str):
        labels = [labels]
    labels = list(labels)
    if len(labels) != len(groups):
        raise ValueError(f"{len(labels)} labels for {len(groups)} groups of tables")
    ax.clear()
    colors = [f"C{i % 10}" for i in range(len(groups))]
    n_max = 0
    for group, label, color in zip(groups, labels, colors):
        x, samp = _stack(group, "variability")
        _, ex = _stack(group, "variability_exact")
        n_max = max(n_max, x[-1])
        seeds = f" ({len(group)} runs, mean and min-max)" if len(group) > 1 else ""
        prefix = f"{label}: " if label else ""
        _band(ax, x, samp, color, f"{prefix}sampled: mean L2 of N/2 random pairs{seeds}")
        _band(
            ax, x, np.sqrt(np.clip(ex, 0, None)), color, f"{prefix}exact: sqrt(mean squared L2, all pairs)", ls="--", alpha=0.07
        )
    _mark_original(ax)
    _generation_axis(ax, n_max)
    ax.set_ylabel(f"variability\n({_DIST_UNIT})")
    _headroom(ax)
    if len(groups) == 1:
        ax.legend(fontsize=8, loc="best")
        return
    # Several configurations: one colour per configuration, one line style per
    # estimate, instead of a legend entry for every (configuration, estimate).
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, lw=1.8, label=lab) for c, lab in zip(colors, labels)]
    handles += [
        Line2D([], [], color="0.3", lw=1.8, label="solid: sampled, mean L2 of N/2 random pairs"),
        Line2D([], [], color="0.3", lw=1.8, ls="--", label="dashed: exact, sqrt(mean squared L2, all pairs)"),
    ]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def draw_difference(ax: "Axes", table: Table) -> None:
    """Draw ``difference_prev`` and ``difference_orig`` along the chain into ``ax`` (cleared)."""
    x = _generations(table)
    ax.clear()
    prev, orig = _col(table, "difference_prev"), _col(table, "difference_orig")
    ax.plot(x, prev, "o-", color="C0", ms=4, label="gen k vs gen k-1 (model k: training set vs its samples)")
    ax.plot(x, orig, "s--", color="C3", ms=4, label="gen k vs original data (gen 0)")
    _mark_original(ax)
    _generation_axis(ax, x.max() if x.size else 1)
    ax.set_ylabel("L2 norm of occupancy-map difference\n(maps scaled to max 1)")
    _headroom(ax)
    ax.legend(fontsize=8, loc="best")


# --------------------------------------------------------------------------
# plot_* : return a new Figure
# --------------------------------------------------------------------------
def plot_variability(tables: Any, labels: Sequence[str] | str | None = None) -> "Figure":
    """Variability along the chain: sampled (original) and exact.

    Parameters
    ----------
    tables : table, list of tables, list of lists of tables, or dict
        Metrics tables from :func:`encchain.metrics.run_metrics`. A list of
        tables is one configuration run with several seeds: its mean is drawn
        as a line and the min-max over seeds as a band. A list of lists draws
        one such group per configuration. A dict ``{label: table or list of
        seed tables}`` draws one group per key, labelled by it.
    labels : str or list of str, optional
        One name per group (configuration).

    Returns
    -------
    Figure
        Solid: the original's sampled variability (mean L2 distance of N/2
        random pairs). Dashed: ``sqrt(variability_exact)``, the root of the
        exact mean squared distance over all pairs, on the same scale (it is
        never below the sampled value in expectation, by Jensen's
        inequality). The star marks generation 0, the original data.
    """
    fig = _figure((9, 4.5))
    ax = fig.add_subplot()
    draw_variability(ax, tables, labels)
    ax.set_title("Variability along the chain")
    return fig


def plot_difference(table: Table) -> "Figure":
    """Occupancy-map differences along the chain.

    Parameters
    ----------
    table : metrics table (see :func:`encchain.metrics.run_metrics`)

    Returns
    -------
    Figure
        ``difference_prev`` (each model's training set vs what it generated;
        the original's "difference") and ``difference_orig`` (vs the original
        data), both L2 norms of differences of occupancy maps in [0, 1].
    """
    fig = _figure((9, 4.5))
    ax = fig.add_subplot()
    draw_difference(ax, table)
    ax.set_title("Occupancy-map difference along the chain")
    return fig


def _pick_generations(n: int, max_panels: int = 10) -> list[int]:
    if n <= max_panels:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, max_panels).round().astype(int).tolist()))


def plot_occupancy_grid(
    source: Any, generations: Sequence[int] | None = None, ncols: int = 5
) -> "Figure":
    """Occupancy heat maps of several generations, as small multiples.

    Parameters
    ----------
    source : Run or list of uint8 image arrays
        A run (``len(run)``, ``run.images(k)``) or the datasets of
        generations 0, 1, ... as arrays.
    generations : list of int, optional
        Which generations; default all, or 10 evenly spaced (always with the
        first and last) when there are more.
    ncols : int
        Panels per row.

    Returns
    -------
    Figure
        One panel per generation titled "gen k" (gen 0 "original data"), one
        shared colour bar (occupancy = sum of images / its maximum, in [0, 1]).
    """
    if hasattr(source, "images") and hasattr(source, "__len__") and not isinstance(source, (list, tuple)):
        n = len(source)
        get = source.images
    else:
        seq = list(source)
        n = len(seq)
        get = seq.__getitem__
    if n == 0:
        raise ValueError("no datasets to draw")
    gens = _pick_generations(n) if generations is None else [int(g) for g in generations]
    if not gens:
        raise ValueError("generations is empty")
    for g in gens:
        if not 0 <= g < n:
            raise ValueError(f"generation {g} out of range 0..{n - 1}")
    if isinstance(ncols, bool) or not isinstance(ncols, (int, np.integer)) or ncols < 1:
        raise ValueError(f"ncols must be a positive integer, got {ncols!r}")
    ncols = min(int(ncols), len(gens))
    nrows = math.ceil(len(gens) / ncols)
    fig = _figure((min(2.0 * ncols + 1.4, 10.5), 2.2 * nrows + 0.8))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).reshape(-1)
    im = None
    for ax, g in zip(axes, gens):
        im = draw_occupancy(ax, get(g), title="gen 0: original data" if g == 0 else f"gen {g}")
    for ax in axes[len(gens) :]:
        ax.set_visible(False)
    fig.colorbar(im, ax=axes.tolist(), label="occupancy (sum / max)", shrink=0.9)
    fig.suptitle("Occupancy maps along the chain")
    return fig


def plot_samples(images: np.ndarray, n: int = 16, seed: int = 0, title: str | None = None) -> "Figure":
    """A grid of ``n`` random images of one dataset (gray, no ticks).

    Parameters
    ----------
    images : ndarray of uint8, shape (N, H, W)
    n : int
        Number of images shown.
    seed : int
        Seed of the random choice.
    title : str, optional

    Returns
    -------
    Figure
    """
    fig = _figure((5, 5))
    ax = fig.add_subplot()
    draw_samples(ax, images, n=n, seed=seed, title=title if title is not None else f"{min(n, len(images))} random images")
    return fig


def plot_marginals(images: np.ndarray, spec: "GridSpec", title: str | None = None) -> "Figure":
    """Decoded blob-centre marginals (bars) against the true marginals (steps).

    Parameters
    ----------
    images : ndarray of uint8, shape (n, spec.height, spec.width)
    spec : GridSpec
    title : str, optional

    Returns
    -------
    Figure
        Two panels: centre row y and centre column x, probability per pixel.
    """
    fig = _figure((10, 4))
    axes = fig.subplots(1, 2)
    draw_marginals(axes, images, spec, title=title)
    return fig


def plot_ground_truth(table: Table) -> "Figure":
    """The ground-truth measures along the chain, in six panels.

    Parameters
    ----------
    table : metrics table (see :func:`encchain.metrics.run_metrics`)

    Returns
    -------
    Figure
        Validity; centre total variation (joint, y, x); coverage; decoded
        mean +- std of the centre row and column against the truth
        (horizontal line and dotted +- std); precision and recall against
        the original data. Panels without data (no known distribution)
        say so.
    """
    fig = _figure((10.5, 6.2))
    axes = fig.subplots(2, 3, sharex=True)
    x = _generations(table)
    n_max = x.max() if x.size else 1

    def finish(ax: "Axes", ylabel: str, title: str, ylim: tuple[float, float] | None = (-0.03, 1.03)) -> None:
        _mark_original(ax, label=False)
        _generation_axis(ax, n_max)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        if ylim is not None:
            ax.set_ylim(*ylim)

    # validity
    ax = axes[0, 0]
    v = _col(table, "validity")
    ax.plot(x, v, "o-", ms=3.5, color="C2")
    finish(ax, "fraction of images", "validity (one clean blob)")
    # TV
    ax = axes[0, 1]
    for name, lab, st in (("center_tv", "joint (y, x)", "o-"), ("center_tv_y", "row y", "^--"), ("center_tv_x", "column x", "v--")):
        ax.plot(x, _col(table, name), st, ms=3.5, label=lab)
    finish(ax, "total variation", "centre distribution vs truth")
    # coverage
    ax = axes[0, 2]
    c = _col(table, "coverage")
    ax.plot(x, c, "o-", ms=3.5, color="C4")
    finish(ax, "true probability mass", "coverage of true centres")
    # means
    for ax, axis, color in ((axes[1, 0], "y", "C0"), (axes[1, 1], "x", "C1")):
        m, s = _col(table, f"mean_{axis}"), _col(table, f"std_{axis}")
        tm, ts = _col(table, f"true_mean_{axis}"), _col(table, f"true_std_{axis}")
        ax.fill_between(x, m - s, m + s, color=color, alpha=0.2, lw=0, label="decoded ± std")
        ax.plot(x, m, "o-", ms=3.5, color=color, label="decoded mean")
        finite = np.isfinite(tm)
        if finite.any():
            t_m, t_s = float(tm[finite][0]), float(ts[finite][0])
            ax.axhline(t_m, color="black", lw=1.2, label="true mean")
            ax.axhline(t_m - t_s, color="black", lw=0.8, ls=":", label="true ± std")
            ax.axhline(t_m + t_s, color="black", lw=0.8, ls=":")
        finish(ax, "pixel", f"centre {'row y' if axis == 'y' else 'column x'}", ylim=None)
    # precision / recall
    ax = axes[1, 2]
    ax.plot(x, _col(table, "precision"), "o-", ms=3.5, color="C5", label="precision (fidelity)")
    ax.plot(x, _col(table, "recall"), "s--", ms=3.5, color="C9", label="recall (diversity)")
    finish(ax, "fraction", "precision / recall vs gen 0")

    for ax, names in (
        (axes[0, 0], ["validity"]),
        (axes[0, 1], ["center_tv"]),
        (axes[0, 2], ["coverage"]),
        (axes[1, 0], ["mean_y"]),
        (axes[1, 1], ["mean_x"]),
        (axes[1, 2], ["precision", "recall"]),
    ):
        if not any(np.isfinite(_col(table, nm)).any() for nm in names):
            _no_data(ax, "no data\n(no known distribution)" if names[0] != "precision" else "not computed")
        elif len(ax.get_legend_handles_labels()[1]) > 1:
            ax.legend(fontsize=7, loc="best")
    for ax in axes[0]:
        ax.set_xlabel("")
    fig.suptitle("Ground truth along the chain (dotted line: generation 0, the original data)", fontsize=11)
    return fig


def plot_losses(losses_by_generation: Any) -> "Figure":
    """Training loss terms of every model of the chain.

    Parameters
    ----------
    losses_by_generation : Run, mapping or list
        A run (its ``losses(k)`` for k = 1 .. len(run) - 1 are read), a
        mapping ``{k: {"total": array, "recon": ..., "kl": ...,
        "variability": ...}}`` of per-epoch losses of the model that produced
        generation k, or a list of such dicts for k = 1, 2, ....

    Returns
    -------
    Figure
        One panel per loss term. Each model's per-epoch curve is drawn over
        its generation (epochs spread across [k - 0.8, k], so the last epoch
        sits on k) and the final-epoch values are joined across generations.
    """
    if hasattr(losses_by_generation, "losses") and hasattr(losses_by_generation, "__len__"):
        run = losses_by_generation
        data = {}
        for k in range(1, len(run)):
            try:
                data[k] = run.losses(k)
            except (FileNotFoundError, KeyError):
                continue
    elif isinstance(losses_by_generation, Mapping):
        data = {int(k): v for k, v in losses_by_generation.items()}
    else:
        data = {i + 1: v for i, v in enumerate(losses_by_generation)}
    terms = [t for t in ("total", "recon", "kl", "variability") if any(t in d for d in data.values())]
    extra = sorted({t for d in data.values() for t in d} - set(terms))
    terms += extra
    fig = _figure((10, 5.5))
    if not terms:
        ax = fig.add_subplot()
        ax.set_xlabel("generation (model that produced it)")
        ax.set_ylabel("loss")
        _no_data(ax, "no training losses")
        return fig
    ncols = 2 if len(terms) > 1 else 1
    nrows = math.ceil(len(terms) / ncols)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharex=True)).reshape(-1)
    names = {
        "total": "total loss",
        "recon": "reconstruction (SSE)",
        "kl": "KL term",
        "variability": "variability term",
    }
    gens = sorted(data)
    for ax, term in zip(axes, terms):
        finals_x, finals_y = [], []
        for k in gens:
            y = np.asarray(data[k].get(term, []), dtype=np.float64).reshape(-1)
            if not y.size:
                continue
            xs = k + (np.linspace(-0.8, 0.0, y.size) if y.size > 1 else np.zeros(1))
            ax.plot(xs, y, "-", color="0.6", lw=1)
            finals_x.append(xs[-1])
            finals_y.append(y[-1])
        ax.plot(finals_x, finals_y, "o-", color="C0", ms=3.5, lw=1.2, label="final epoch")
        ax.set_title(names.get(term, term), fontsize=10)
        ax.set_ylabel("loss per image\n(mean over the epoch)")
        ax.grid(True, alpha=0.3)
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=10))
    for ax in axes[len(terms) :]:
        ax.set_visible(False)
    for ax in axes[max(0, len(terms) - ncols) : len(terms)]:
        ax.set_xlabel("generation produced by the model\n(gray: epochs within its training)")
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle("Training losses of each model")
    return fig


def plot_center_pmfs(specs: Mapping[str, "GridSpec"]) -> "Figure":
    """Exact blob-centre distributions, one heat map per spec.

    Parameters
    ----------
    specs : mapping of name -> GridSpec
        E.g. ``{"unimodal": GridSpec.unimodal(), ...}``.

    Returns
    -------
    Figure
        One panel per spec showing ``spec.center_pmf()`` (probability per
        centre pixel; row y downwards, column x rightwards), with a colour bar
        each, since the scales differ by orders of magnitude.
    """
    if not specs:
        raise ValueError("no specs given")
    fig = _figure((3.4 * len(specs), 3.3))
    axes = fig.subplots(1, len(specs), squeeze=False)[0]
    for ax, (name, spec) in zip(axes, specs.items()):
        pmf = spec.center_pmf()
        im = ax.imshow(pmf, cmap=CMAP, vmin=0.0, interpolation="nearest")
        ax.set_title(f"{name}: P(centre = (y, x))", fontsize=9)
        ax.set_xlabel("x (column)")
        ax.set_ylabel("y (row)")
        fig.colorbar(im, ax=ax, shrink=0.8, label="probability")
    return fig


#: axis labels of the measures plot_compare knows; others use the column name
_MEASURE_LABELS = {
    "variability": "variability (" + _DIST_UNIT + ")",
    "variability_exact": "exact variability (mean squared L2)",
    "validity": "validity (fraction of valid blobs)",
    "center_tv": "centre TV distance to truth",
    "coverage": "coverage (true mass reached)",
    "precision": "precision vs original",
    "recall": "recall vs original",
    "difference_orig": "difference to original (L2)",
}


def plot_compare(tables: Mapping[str, Table], columns: Sequence[str]) -> "Figure":
    """Several chains compared on several measures: one panel per measure.

    Parameters
    ----------
    tables : mapping of label -> metrics table
        One :func:`encchain.metrics.run_metrics` table per chain.
    columns : list of str
        The measures to show, e.g. ``["validity", "center_tv", "coverage"]``.

    Returns
    -------
    Figure
        A line per chain in every panel, generation on x, one shared legend.
    """
    import matplotlib

    if not tables:
        raise ValueError("no tables given")
    if not columns:
        raise ValueError("no columns given")
    ncols = min(len(columns), 2)
    nrows = math.ceil(len(columns) / ncols)
    fig = _figure((5.2 * ncols, 3.2 * nrows + 0.6))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    colors = matplotlib.colormaps["tab10"].colors
    n_max = max(float(_generations(t).max()) for t in tables.values())
    for ax, column in zip(axes, columns):
        for i, (label, table) in enumerate(tables.items()):
            ax.plot(_generations(table), _col(table, column), marker="o", ms=3, lw=1.6,
                    color=colors[i % len(colors)], label=label)
        ax.set_ylabel(_MEASURE_LABELS.get(column, column), fontsize=9)
        _generation_axis(ax, n_max)
        _mark_original(ax, label=False)
    for ax in axes[len(columns):]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 3), fontsize=8)
    return fig
