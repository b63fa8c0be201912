"""Interactive views of a chain for JupyterLab: scrub through the generations.

:class:`GenerationScrubber` shows one run; :func:`compare` (a
:class:`CompareScrubber`) shows several runs on one slider, a row per run.
Both are the same implementation, parameterised by the list of runs.

Only stock ipywidgets 8 widgets are used (an ``IntSlider``, a ``Play``, an
``HTML`` label and an ``Image``), so the view works in JupyterLab 4 with no
front-end extension to build. The picture is ONE persistent matplotlib
:class:`~matplotlib.figure.Figure` on an Agg canvas (never ``pyplot``, so no
figure piles up in the notebook); moving the slider updates the existing
artists, re-renders the figure to PNG and swaps the bytes of the one Image
widget. Everything derived from a generation's images (the sample mosaic, the
occupancy map, the decoded centre marginals) is computed once per generation
and cached, so a step costs one Agg render and one PNG encoding.

Examples
--------
>>> from encchain.chain import load_run          # doctest: +SKIP
>>> from encchain.widgets import GenerationScrubber, compare
>>> run = load_run("data/runs/demo")
>>> GenerationScrubber(run)                      # the last line of a cell shows it
>>> compare([baseline, mix], labels=["replace", "mix 20%"])
"""

from __future__ import annotations

import html
import io
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from . import metrics as _m
from . import plots as _p

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .chain import Run

__all__ = ["GenerationScrubber", "CompareScrubber", "compare"]

_CURSOR_COLOR = "tab:red"
# Figure geometry (inches) and resolution of the PNG frames.
_FIG_WIDTH = 11.5
_ROW_HEIGHT = 2.45
_CURVES_HEIGHT = 2.75
_DPI = 90
# y ranges of the marginal panels (probability); the smallest that fits is used.
_YLIM_LEVELS = (0.06, 0.12, 0.25, 0.5, 1.05)


@dataclass(frozen=True)
class _Frame:
    """Everything drawn for one generation of one run (cached)."""

    mosaic: np.ma.MaskedArray  # uint8 (H', W') sample mosaic, separators masked
    occupancy: np.ndarray  # float64 (H, W) in [0, 1]
    marginal_y: np.ndarray  # float64 (H,) decoded centre-row pmf
    marginal_x: np.ndarray  # float64 (W,) decoded centre-column pmf


def _mosaic(images: np.ndarray, n: int, seed: int, ncols: int) -> np.ma.MaskedArray:
    """The mosaic :func:`encchain.plots.draw_samples` draws (same images for the
    same ``n``, ``seed`` and ``ncols``), always with ``n`` slots, so that
    ``AxesImage.set_data`` can swap the mosaics of different generations."""
    return _p._mosaic(images[_p._sample_indices(len(images), n, seed)], ncols, cells=n)


def _value(table: Mapping[str, Any], name: str, k: int) -> float:
    """``table[name]`` at generation k (NaN when missing)."""
    if name not in table or "generation" not in table:
        return float("nan")
    gen = np.asarray(table["generation"]).reshape(-1)
    hit = np.flatnonzero(gen == k)
    if hit.size == 0:
        return float("nan")
    v = np.asarray(table[name], dtype=np.float64).reshape(-1)
    return float(v[hit[0]]) if hit[0] < v.size else float("nan")


def _column(table: Mapping[str, Any], name: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(table["generation"], dtype=np.float64).reshape(-1)
    if name not in table:
        return x, np.full(x.shape, np.nan)
    return x, np.asarray(table[name], dtype=np.float64).reshape(-1)


def _fmt(v: float, spec: str = ".2f") -> str:
    return "n/a" if not math.isfinite(v) else format(v, spec)


def _draw_truth_curves(ax: "Axes", tables: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> None:
    """Validity and centre TV along the chain, one colour per run (private).

    :mod:`encchain.plots` has these only as a six-panel figure
    (``plot_ground_truth``); a scrubber needs them in one axes.
    """

    ax.clear()
    n_max = 1.0
    any_data = False
    multi = len(tables) > 1
    for i, (table, label) in enumerate(zip(tables, labels)):
        color_v = f"C{i % 10}" if multi else "C2"
        color_t = f"C{i % 10}" if multi else "C3"
        prefix = f"{label}: " if multi else ""
        x, v = _column(table, "validity")
        _, tv = _column(table, "center_tv")
        if x.size:
            n_max = max(n_max, float(x.max()))
        if np.isfinite(v).any() or np.isfinite(tv).any():
            any_data = True
        ax.plot(x, v, "o-", ms=3, lw=1.6, color=color_v, label=f"{prefix}validity: one clean blob (higher is better)")
        ax.plot(x, tv, "s--", ms=3, lw=1.4, color=color_t, label=f"{prefix}centre TV vs truth (lower is better)")
    _p._mark_original(ax, label=False)
    _p._generation_axis(ax, n_max)
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel("fraction / total variation")
    ax.set_title("ground truth along the chain", fontsize=9)
    if any_data:
        _curve_legend(
            ax, labels, [(("-", "o"), "validity: one clean blob (higher is better)"),
                         (("--", "s"), "centre TV vs truth (lower is better)")]
        )
    else:
        ax.text(
            0.5, 0.5, "no data\n(no known distribution)", ha="center", va="center",
            transform=ax.transAxes, fontsize=9, color="0.4",
        )


def _curve_legend(ax: "Axes", labels: Sequence[str], styles: Sequence[tuple[str, str]]) -> None:
    """The legend of a curves panel (private).

    One run: the curves' own labels. Several runs: one colour entry per run
    and one black entry per line style, so the legend stays small.
    """
    from matplotlib.lines import Line2D

    if len(labels) == 1:
        ax.legend(fontsize=7, loc="best", framealpha=0.9)
        return
    handles = [Line2D([], [], color=f"C{i % 10}", lw=2) for i in range(len(labels))]
    handles += [Line2D([], [], color="black", ls=ls, marker=mk, ms=3, lw=1.4) for ls, mk in (st[0] for st in styles)]
    names = list(labels) + [st[1] for st in styles]
    ax.legend(handles, names, fontsize=7, loc="best", framealpha=0.9, ncols=2 if len(names) > 4 else 1)


def _draw_own_marginals(
    axes: Sequence["Axes"], height: int, width: int, truth: tuple[np.ndarray, np.ndarray] | None
) -> None:
    """Decoded-centre marginal panels with empty bars (private).

    Used when there is no truth (:func:`encchain.plots.draw_marginals` needs
    a GridSpec), or if that function's drawing is not the bars-and-step the
    scrubber updates in place.
    """
    for i, (ax, size, name) in enumerate(((axes[0], height, "row y"), (axes[1], width, "column x"))):
        ax.clear()
        pos = np.arange(size)
        ax.bar(pos, np.zeros(size), width=0.85, color="tab:blue", alpha=0.75, label="decoded from images")
        if truth is not None:
            ax.step(pos, truth[i], where="mid", color="black", lw=1.5, label="true distribution")
        ax.set_xlabel(f"blob centre {name} (pixel)")
        ax.set_ylabel("probability")
        ax.set_xlim(-0.7, size - 0.3)
        ax.set_title(f"centre {name}" + ("" if truth is not None else " (no known truth)"), fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
    if truth is not None:
        axes[0].legend()


def _bars_of(ax: "Axes", size: int) -> Any:
    """The axes' bar container with ``size`` bars, or None."""
    for c in getattr(ax, "containers", []):
        if len(getattr(c, "patches", ())) == size:
            return c
    return None


class _RunView:
    """One run's row of per-generation panels, with its cache (private)."""

    def __init__(self, run: "Run", table: Mapping[str, Any], label: str, n_samples: int, seed: int) -> None:
        self.run = run
        self.table = table
        self.label = label
        self.n_samples = int(n_samples)
        self.seed = int(seed)
        self.ncols = max(1, math.ceil(math.sqrt(self.n_samples)))
        self.spec = run.spec
        first = run.images(0)
        _, self.height, self.width = first.shape
        if self.spec is not None and (self.spec.height, self.spec.width) != (self.height, self.width):
            self.spec = None  # a truth for another grid size is no truth for these images
        self.blob_size = self.spec.blob_size if self.spec is not None else 3
        self.truth = self.spec.marginals() if self.spec is not None else None
        self._frames: dict[int, _Frame] = {}

    def frame(self, k: int) -> _Frame:
        """Generation k's derived arrays, computed once."""
        if k not in self._frames:
            images = self.run.images(k)
            centers, _ = _m.decode_centers(images, self.blob_size)
            my = np.bincount(centers[:, 0], minlength=self.height).astype(np.float64) / max(len(centers), 1)
            mx = np.bincount(centers[:, 1], minlength=self.width).astype(np.float64) / max(len(centers), 1)
            self._frames[k] = _Frame(
                mosaic=_mosaic(images, self.n_samples, self.seed, self.ncols),
                occupancy=_m.occupancy(images)[0],
                marginal_y=my,
                marginal_x=mx,
            )
        return self._frames[k]

    def setup(self, axes: Sequence["Axes"], multi: bool) -> None:
        """First draw of the row (samples, occupancy, marginal y, marginal x)."""
        ax_s, ax_o, ax_y, ax_x = axes
        images0 = self.run.images(0)
        self.im_samples = _p.draw_samples(ax_s, images0, n=self.n_samples, seed=self.seed, ncols=self.ncols)
        self.im_occ = _p.draw_occupancy(ax_o, _m.occupancy(images0)[0])
        bars = None
        if self.truth is not None:
            _p.draw_marginals((ax_y, ax_x), images0, self.spec)
            bars = (_bars_of(ax_y, self.height), _bars_of(ax_x, self.width))
        if bars is None or None in bars:
            _draw_own_marginals((ax_y, ax_x), self.height, self.width, self.truth)
            bars = (_bars_of(ax_y, self.height), _bars_of(ax_x, self.width))
        if ax_y.get_legend() is not None:
            ax_y.legend(fontsize=7, loc="upper left", framealpha=0.85)
        self.bars = bars
        self.ax_samples, self.ax_occ, self.ax_marg = ax_s, ax_o, (ax_y, ax_x)
        self.ylim_level = -1.0
        if multi:
            ax_s.set_ylabel(self.label, fontsize=10, fontweight="bold")
        for ax in axes:
            ax.title.set_fontsize(9)
            ax.xaxis.label.set_fontsize(8)
            ax.yaxis.label.set_fontsize(8)
            ax.tick_params(labelsize=7)
        # What changes with k; drawn over a cached background on every step.
        self.animated: list[Any] = [self.im_samples, self.im_occ, ax_s.title, ax_o.title]
        for ax, bars in zip(self.ax_marg, self.bars):
            self.animated += list(bars.patches)
            self.animated += list(ax.lines)  # the truth step line, over the bars
            if ax.get_legend() is not None:
                self.animated.append(ax.get_legend())
            self.animated.append(ax.title)
        for a in self.animated:
            a.set_animated(True)

    def update(self, k: int) -> bool:
        """Point the row's artists at generation k.

        Returns
        -------
        bool
            True when the marginals' y range changed, so the background
            (axes, ticks) must be redrawn too.
        """
        f = self.frame(k)
        self.im_samples.set_data(f.mosaic)
        self.im_occ.set_data(f.occupancy)
        what = "original data" if k == 0 else f"model {k}'s samples"
        self.ax_samples.set_title(f"gen {k}: {what}", fontsize=9)
        self.ax_occ.set_title(f"gen {k}: occupancy (sum / max)", fontsize=9)
        truth = self.truth if self.truth is not None else (None, None)
        top = 0.0
        for ax, bars, emp, t, name in zip(
            self.ax_marg, self.bars, (f.marginal_y, f.marginal_x), truth, ("row y", "column x")
        ):
            for patch, h in zip(bars.patches, emp):
                patch.set_height(h)
            top = max(top, float(emp.max()) if emp.size else 0.0, float(t.max()) if t is not None else 0.0)
            if t is not None:
                ax.set_title(f"centre {name}: TV = {0.5 * np.abs(emp - t).sum():.3f}", fontsize=9)
        # A few fixed y ranges instead of autoscaling every step: the axes
        # (and the cached background) change only when a range is outgrown
        # or far too large, and bars stay comparable between neighbours.
        level = next((lv for lv in _YLIM_LEVELS if top * 1.08 <= lv), _YLIM_LEVELS[-1])
        if level == self.ylim_level:
            return False
        self.ylim_level = level
        for ax in self.ax_marg:
            ax.set_ylim(0, level)
        return True


class CompareScrubber:
    """Step through the generations of one or more runs with a slider.

    One row of panels per run (samples, occupancy heat map, decoded centre
    marginals of the row y and column x against the truth), and a shared
    bottom row of curves over all generations (variability; validity and
    centre total variation) with a red cursor at the current generation.

    Parameters
    ----------
    runs : sequence of Run
        One or more runs (from :func:`encchain.chain.run_chain` or
        :func:`encchain.chain.load_run`), each with at least generation 0.
    labels : sequence of str, optional
        One per run; default the run folders' names.
    tables : sequence of metrics tables, optional
        One per run (see :func:`encchain.metrics.run_metrics`); default
        ``run_metrics(run, progress=False)`` (cached in the run folder).
    n_samples : int
        Images in each sample mosaic (default 16).
    seed : int
        Seed of which images the mosaic shows.

    Attributes
    ----------
    slider : ipywidgets.IntSlider
        The generation, 0 .. (shortest run's length - 1).
    play : ipywidgets.Play
        Steps the slider (linked in the browser with ``jslink``).
    label : ipywidgets.HTML
        The generation and its key measures.
    image : ipywidgets.Image
        The rendered figure (PNG), replaced on every step.
    widget : ipywidgets.VBox
        The whole view; displaying the scrubber displays it.
    figure : matplotlib.figure.Figure
        The one persistent figure (Agg canvas, not registered with pyplot).
    step_seconds : float
        Wall time of the last update (artists + render + PNG), in seconds.
    """

    def __init__(
        self,
        runs: Sequence["Run"],
        labels: Sequence[str] | None = None,
        *,
        tables: Sequence[Mapping[str, Any] | None] | None = None,
        n_samples: int = 16,
        seed: int = 0,
    ) -> None:
        import ipywidgets as w

        runs = list(runs)
        if not runs:
            raise ValueError("no runs given; pass at least one Run")
        for r in runs:
            if len(r) < 1:
                raise ValueError(f"{r!r} has no dataset yet")
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        if labels is None:
            labels = [r.path.name for r in runs]
            if len(set(labels)) < len(labels):
                labels = [f"run {i + 1}: {lab}" for i, lab in enumerate(labels)]
        labels = [str(lab) for lab in labels]
        if len(labels) != len(runs):
            raise ValueError(f"{len(labels)} labels for {len(runs)} runs")
        if tables is None:
            tables = [None] * len(runs)
        tables = list(tables)
        if len(tables) != len(runs):
            raise ValueError(f"{len(tables)} tables for {len(runs)} runs")
        tables = [_m.run_metrics(r, progress=False) if t is None else t for r, t in zip(runs, tables)]

        self.runs = runs
        self.labels = labels
        self.tables = tables
        self.step_seconds = float("nan")
        self._views = [_RunView(r, t, lab, n_samples, seed) for r, t, lab in zip(runs, tables, labels)]
        self.last = min(len(r) for r in runs) - 1
        self._k = 0
        self._build_figure()

        self.slider = w.IntSlider(
            value=0, min=0, max=self.last, step=1, description="generation",
            continuous_update=True, style={"description_width": "initial"},
            layout=w.Layout(width="420px"),
        )
        self.play = w.Play(value=0, min=0, max=self.last, step=1, interval=600, description="play")
        w.jslink((self.play, "value"), (self.slider, "value"))
        self.label = w.HTML(value=self._label_html(0))
        png = self._render()
        width_px = int(round(self.figure.get_figwidth() * self.figure.dpi))
        # natural size (no blurry rescaling), shrunk only to fit a narrower output area
        self.image = w.Image(
            value=png, format="png", layout=w.Layout(width=f"{width_px}px", max_width="100%", height="auto")
        )
        self.widget = w.VBox([w.HBox([self.play, self.slider]), self.label, self.image])
        self.widget.add_class("encchain-scrubber")
        self.label.add_class("encchain-scrubber-label")
        self.image.add_class("encchain-scrubber-image")
        self.slider.observe(self._on_slider, names="value")

    # -- figure ---------------------------------------------------------------
    def _build_figure(self) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        n = len(self._views)
        multi = n > 1
        height = _ROW_HEIGHT * n + _CURVES_HEIGHT
        fig = Figure(figsize=(_FIG_WIDTH, height), dpi=_DPI, layout="constrained")
        FigureCanvasAgg(fig)
        grid = fig.add_gridspec(
            n + 1, 4, height_ratios=[_ROW_HEIGHT] * n + [_CURVES_HEIGHT], width_ratios=[1, 1, 1.35, 1.35]
        )
        for i, view in enumerate(self._views):
            view.setup([fig.add_subplot(grid[i, j]) for j in range(4)], multi)
        ax_var = fig.add_subplot(grid[n, :2])
        ax_gt = fig.add_subplot(grid[n, 2:])
        _p.draw_variability(ax_var, [[t] for t in self.tables], list(self.labels) if multi else None)
        ax_var.set_title("variability of each generation's images (higher = more diverse)", fontsize=9)
        _curve_legend(
            ax_var, self.labels, [(("-", ""), "sampled: mean L2 of N/2 random pairs"),
                                  (("--", ""), "exact: sqrt(mean squared L2, all pairs)")]
        )
        _draw_truth_curves(ax_gt, self.tables, self.labels)
        self._curve_axes = (ax_var, ax_gt)
        self._cursors = [ax.axvline(0, color=_CURSOR_COLOR, lw=1.6, alpha=0.8, zorder=4) for ax in self._curve_axes]
        # points at the cursor on every curve: (axes, x data, y data, marker line)
        self._dots = []
        for ax in self._curve_axes:
            for line in list(ax.get_lines()):
                x = np.asarray(line.get_xdata(), dtype=np.float64)
                y = np.asarray(line.get_ydata(), dtype=np.float64)
                if x.size < 2 or line in self._cursors or line.get_transform() is not ax.transData:
                    continue  # skip single markers and axvlines (axes-fraction y)
                (dot,) = ax.plot([], [], "o", ms=7, mfc="none", mec=line.get_color(), mew=1.8, zorder=5)
                self._dots.append((x, y, dot))
        for ax in self._curve_axes:
            ax.xaxis.label.set_fontsize(8)
            ax.yaxis.label.set_fontsize(8)
            ax.tick_params(labelsize=7)
        self._animated: list[Any] = [a for view in self._views for a in view.animated]
        self._animated += self._cursors + [dot for _, _, dot in self._dots]
        # legends over the cursor (drawn after it, so it never crosses them)
        self._animated += [ax.get_legend() for ax in self._curve_axes if ax.get_legend() is not None]
        for a in self._animated:
            a.set_animated(True)
        self.figure: "Figure" = fig
        self._background: Any = None
        self._update_artists(0)
        # Lay out once, then freeze: steps change only data and same-width titles.
        fig.canvas.draw()
        fig.set_layout_engine("none")

    def _update_artists(self, k: int) -> bool:
        """Point every artist at generation k; True if the background changed."""
        stale = False
        for view in self._views:
            stale |= view.update(k)
        for cursor in self._cursors:
            cursor.set_xdata([k, k])
        for x, y, dot in self._dots:
            hit = np.flatnonzero(x == k)
            dot.set_data(x[hit], y[hit])
        return stale

    def _render(self, full: bool = False) -> bytes:
        """The figure as PNG bytes.

        Blitting: the static part (axes, ticks, curves, legends) is rendered
        once and cached; a step restores it and draws only the artists that
        change with the generation. ``full`` re-renders the static part.
        """
        from PIL import Image as _PILImage

        fig = self.figure
        canvas = fig.canvas
        if full or self._background is None:
            canvas.draw()  # animated artists are left out of this
            self._background = canvas.copy_from_bbox(fig.bbox)
        else:
            canvas.restore_region(self._background)
        for a in self._animated:
            fig.draw_artist(a)
        rgba = np.asarray(canvas.buffer_rgba())
        buf = io.BytesIO()
        _PILImage.fromarray(rgba[..., :3]).save(buf, format="png", compress_level=1)
        return buf.getvalue()

    # -- label ----------------------------------------------------------------
    def _label_html(self, k: int) -> str:
        head = f"<b>generation {k}</b> of {self.last}"
        if k == 0:
            head += " (original data)"
        if len(self._views) > 1 and len({len(r) for r in self.runs}) > 1:
            head += f" &middot; slider stops at the shortest run's last generation ({self.last})"
        parts = []
        for view in self._views:
            t = view.table
            bits = [f"variability {_fmt(_value(t, 'variability', k))}"]
            for name, col in (("validity", "validity"), ("centre TV", "center_tv")):
                v = _value(t, col, k)
                if math.isfinite(v):
                    bits.append(f"{name} {_fmt(v)}")
            parts.append(", ".join(bits))
        if len(self._views) == 1:
            return f"<span>{head} &mdash; {parts[0]}</span>"
        rows = "".join(f"<br>&nbsp;&nbsp;<b>{html.escape(v.label)}</b>: {p}" for v, p in zip(self._views, parts))
        return f"<span>{head}{rows}</span>"

    # -- stepping --------------------------------------------------------------
    def _on_slider(self, change: Mapping[str, Any]) -> None:
        self._step(int(change["new"]))

    def _step(self, k: int) -> None:
        t0 = time.perf_counter()
        self._k = k
        stale = self._update_artists(k)
        self.image.value = self._render(full=stale)
        self.label.value = self._label_html(k)
        self.step_seconds = time.perf_counter() - t0

    @property
    def generation(self) -> int:
        """The generation shown now."""
        return self._k

    def show(self, k: int) -> None:
        """Show generation ``k`` (moves the slider; negative counts from the end).

        Raises
        ------
        IndexError
            ``k`` is outside 0 .. the slider's maximum.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"k must be an integer generation, got {k!r}")
        k = int(k)
        if k < 0:
            k += self.last + 1
        if not 0 <= k <= self.last:
            raise IndexError(f"generation {k} is not on the slider (0..{self.last})")
        if k == self.slider.value:
            self._step(k)
        else:
            self.slider.value = k  # the observer renders

    def frame_png(self, k: int | None = None) -> bytes:
        """PNG bytes of the figure at generation ``k`` (default: the current one).

        Shows ``k`` first (as :meth:`show`) when given.
        """
        if k is not None:
            self.show(k)
        return bytes(self.image.value)

    def close(self) -> None:
        """Close the widgets (the figure is freed with the object)."""
        for wdg in (self.play, self.slider, self.label, self.image, self.widget):
            wdg.close()

    # -- display ---------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(self.labels)}; generation {self._k} of {self.last})"


class GenerationScrubber(CompareScrubber):
    """Step through the generations of one run with a slider.

    The one-run case of :class:`CompareScrubber`: a Play button and a
    slider, a label with the generation's variability, validity and centre
    TV, and one figure with the generation's samples, occupancy heat map and
    decoded centre marginals against the truth, beside the variability and
    ground-truth curves over all generations with a cursor at the current one.

    Parameters
    ----------
    run : Run
    table : metrics table, optional
        Default ``run_metrics(run, progress=False)`` (cached in the run folder).
    n_samples : int
        Images in the sample mosaic (default 16).
    seed : int
        Seed of which images the mosaic shows.

    Examples
    --------
    >>> scrubber = GenerationScrubber(run)   # doctest: +SKIP
    >>> scrubber                             # shows it (last line of a cell)
    >>> scrubber.show(5); scrubber.step_seconds
    """

    def __init__(
        self, run: "Run", *, table: Mapping[str, Any] | None = None, n_samples: int = 16, seed: int = 0
    ) -> None:
        super().__init__([run], tables=[table], n_samples=n_samples, seed=seed)
        self.run = run
        self.table = self.tables[0]


def compare(
    runs: Sequence["Run"],
    labels: Sequence[str] | None = None,
    *,
    tables: Sequence[Mapping[str, Any] | None] | None = None,
    n_samples: int = 16,
    seed: int = 0,
) -> CompareScrubber:
    """Two or more runs side by side (a row each) on one generation slider.

    Parameters
    ----------
    runs : sequence of Run
        E.g. a baseline and a mitigation. The slider goes up to the shortest
        run's last generation (the label says so when lengths differ).
    labels : sequence of str, optional
        One per run; default the run folders' names.
    tables, n_samples, seed :
        As for :class:`CompareScrubber`.

    Returns
    -------
    CompareScrubber
    """
    return CompareScrubber(runs, labels, tables=tables, n_samples=n_samples, seed=seed)
