"""The generation scrubber: widgets, labels, one persistent figure, step time."""

import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ipywidgets")
import ipywidgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from encchain.chain import run_chain  # noqa: E402
from encchain.grids import GridSpec, make_grids  # noqa: E402
from encchain.metrics import run_metrics  # noqa: E402
from encchain.presets import preset  # noqa: E402
from encchain.widgets import CompareScrubber, GenerationScrubber, compare  # noqa: E402


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    cfg = preset("fc1", quick=True, n_samples=200, generations=3, epochs=1)
    return run_chain(cfg, tmp_path_factory.mktemp("widgets") / "run", progress=False)


class SyntheticRun:
    """Just what the scrubber reads from a Run: path, spec, len(), images(k).

    Generation k is the truth with a shrinking spread, so every panel has
    something to draw, and no model has to be trained.
    """

    def __init__(self, path: Path, generations: int, n: int = 2000, spec: GridSpec | None = GridSpec()):
        self.path = path
        self.spec = spec
        self._images = [
            make_grids(GridSpec.unimodal(p_y=0.8, p_x=0.3 + 0.02 * k), n, seed=k) for k in range(generations + 1)
        ]

    def __len__(self):
        return len(self._images)

    def images(self, k):
        return self._images[k]


def synthetic_table(n_gen: int, with_truth: bool = True):
    g = np.arange(n_gen)
    t = {"generation": g, "variability": 4.0 - 0.1 * g, "variability_exact": (4.1 - 0.1 * g) ** 2}
    nan = np.full(n_gen, np.nan)
    t["validity"] = 1.0 - 0.02 * g if with_truth else nan
    t["center_tv"] = 0.03 * g if with_truth else nan
    return t


def test_scrubber_widgets_and_label(tiny_run):
    s = GenerationScrubber(tiny_run)
    assert isinstance(s.slider, ipywidgets.IntSlider)
    assert (s.slider.min, s.slider.max, s.slider.value) == (0, 3, 0)
    assert s.slider.description == "generation"
    assert isinstance(s.play, ipywidgets.Play) and (s.play.min, s.play.max) == (0, 3)
    assert isinstance(s.image, ipywidgets.Image) and s.image.format == "png"
    assert bytes(s.image.value[:8]) == b"\x89PNG\r\n\x1a\n"
    assert isinstance(s.widget, ipywidgets.VBox)
    assert "generation 0" in s.label.value and "original data" in s.label.value
    assert "variability" in s.label.value and "validity" in s.label.value and "centre TV" in s.label.value
    # a bare `scrubber` at the end of a cell shows the widget
    bundle = s._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == s.widget.model_id


def test_show_changes_label_and_image(tiny_run):
    s = GenerationScrubber(tiny_run)
    before = bytes(s.image.value)
    s.show(2)
    assert s.slider.value == 2 and s.generation == 2
    assert "generation 2" in s.label.value and "original data" not in s.label.value
    assert bytes(s.image.value) != before
    s.show(-1)
    assert s.slider.value == 3
    # moving the slider (as the browser does) updates the picture too
    shown = bytes(s.image.value)
    s.slider.value = 1
    assert "generation 1" in s.label.value and bytes(s.image.value) != shown
    with pytest.raises(IndexError):
        s.show(4)


def test_one_figure_no_pyplot_pileup(tiny_run):
    before = plt.get_fignums()
    s = GenerationScrubber(tiny_run)
    fig = s.figure
    for k in (1, 2, 3, 0, 2, 1, 3):
        s.show(k)
    assert plt.get_fignums() == before
    assert s.figure is fig
    assert type(fig.canvas).__name__ == "FigureCanvasAgg"
    # the same generation renders the same picture (no drawing piles up either)
    s.show(2)
    first = bytes(s.image.value)
    s.show(0)
    s.show(2)
    assert bytes(s.image.value) == first


def test_compare_two_runs_one_slider(tiny_run, tmp_path):
    other_run = SyntheticRun(tmp_path, generations=2, n=300)
    c = compare([tiny_run, other_run], labels=["baseline", "seed 1"], tables=[None, synthetic_table(3)])
    assert isinstance(c, CompareScrubber)
    sliders = [w for w in c.widget.children[0].children if isinstance(w, ipywidgets.IntSlider)]
    assert sliders == [c.slider]
    assert c.slider.max == 2  # the shorter run's last generation
    assert "shortest run" in c.label.value
    assert "baseline" in c.label.value and "seed 1" in c.label.value
    before = bytes(c.image.value)
    c.show(2)
    assert "generation 2" in c.label.value and bytes(c.image.value) != before
    assert len(c.figure.axes) == 2 * 4 + 2
    with pytest.raises(ValueError):
        compare([tiny_run, other_run], labels=["only one"])


def test_no_truth(tmp_path):
    run = SyntheticRun(tmp_path, generations=2, n=300, spec=None)
    s = GenerationScrubber(run, table=synthetic_table(3, with_truth=False))
    assert "variability" in s.label.value and "validity" not in s.label.value
    before = bytes(s.image.value)
    s.show(2)
    assert "generation 2" in s.label.value and bytes(s.image.value) != before


def test_table_from_run_metrics_is_used(tiny_run):
    table = run_metrics(tiny_run, progress=False)
    s = GenerationScrubber(tiny_run, table=table)
    s.show(1)
    assert f"variability {table['variability'][1]:.2f}" in s.label.value


def test_step_time_20_generations(tmp_path):
    """A 20-generation chain (synthetic datasets of 2,000 images, as the quick scale)."""
    run = SyntheticRun(tmp_path, generations=20)
    t0 = time.perf_counter()
    s = GenerationScrubber(run, table=synthetic_table(21))
    build = time.perf_counter() - t0
    first = []
    for k in range(1, 21):
        s.show(k)
        first.append(s.step_seconds)
    again = []
    for k in range(19, -1, -1):
        s.show(k)
        again.append(s.step_seconds)
    print(
        f"\nscrubber, 20 generations: build {build:.2f} s; step (first visit) median {np.median(first):.3f} s, "
        f"max {max(first):.3f} s; step (cached) median {np.median(again):.3f} s, max {max(again):.3f} s"
    )
    assert np.median(again) < 2.0 and np.median(first) < 2.0
