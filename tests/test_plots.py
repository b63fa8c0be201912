"""Tests of encchain.plots: every figure builds, is labelled, and nothing is shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from encchain import metrics as M  # noqa: E402
from encchain import plots as P  # noqa: E402
from encchain.grids import GridSpec, make_grids, render_blobs  # noqa: E402
from fakes import FakeRun  # noqa: E402

SPEC = GridSpec.bimodal()


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    base, centers = make_grids(SPEC, 300, seed=0, return_centers=True)
    data = [base]
    for k in range(1, 6):
        c = np.rint(np.array([15, 9]) + (centers - [15, 9]) * 0.5**k).astype(np.int64)
        data.append(render_blobs(c, SPEC))
    run = FakeRun(data, tmp_path_factory.mktemp("run"), SPEC)
    table = M.run_metrics(run, precision_recall_samples=100, progress=False)
    return run, table


@pytest.fixture(autouse=True)
def no_show(monkeypatch):
    import matplotlib.pyplot as plt

    def boom(*a, **k):
        raise AssertionError("plots must not call show()")

    monkeypatch.setattr(plt, "show", boom)
    monkeypatch.setattr(Figure, "show", boom)
    yield
    assert plt.get_fignums() == []  # nothing registered with pyplot either


def labelled(fig: Figure) -> None:
    assert isinstance(fig, Figure)
    fig.canvas.draw()  # renders without error
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert visible
    return visible


def check_chain_axes(fig):
    for ax in labelled(fig):
        if ax.get_label() == "<colorbar>":
            continue
        assert ax.get_ylabel(), ax.get_title()
    assert any("generation" in ax.get_xlabel() for ax in fig.axes)


def test_plot_variability_single_seeds_groups(chain):
    _, table = chain
    check_chain_axes(P.plot_variability(table))
    seeds = [table, {**table, "variability": table["variability"] * 1.1}]
    fig = P.plot_variability(seeds, labels="unimodal")
    check_chain_axes(fig)
    assert len(fig.axes[0].collections) >= 2  # min-max bands
    fig = P.plot_variability([seeds, [table]], labels=["a", "b"])
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert texts[:2] == ["a", "b"], texts  # one entry per configuration, then the style key
    assert any(t.startswith("solid: sampled") for t in texts) and any(t.startswith("dashed: exact, sqrt") for t in texts)
    with pytest.raises(ValueError):
        P.plot_variability([seeds, [table]], labels=["only one"])
    # tables of different lengths in one group
    short = {k: v[:3] for k, v in table.items()}
    check_chain_axes(P.plot_variability([table, short]))


def test_plot_difference(chain):
    check_chain_axes(P.plot_difference(chain[1]))


def test_plot_ground_truth(chain):
    _, table = chain
    fig = P.plot_ground_truth(table)
    check_chain_axes(fig)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 6
    nan = {k: (v if k == "generation" else np.full(len(v), np.nan)) for k, v in table.items()}
    check_chain_axes(P.plot_ground_truth(nan))


def test_plot_occupancy_grid(chain):
    run, _ = chain
    fig = P.plot_occupancy_grid(run)
    labelled(fig)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[0].startswith("gen 0") and "original" in titles[0]
    assert "gen 5" in titles
    assert any(ax.get_label() == "<colorbar>" and ax.get_ylabel() for ax in fig.axes)
    fig = P.plot_occupancy_grid(run.datasets[:2], generations=[1], ncols=3)
    assert [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title()] == ["gen 1"]
    with pytest.raises(ValueError):
        P.plot_occupancy_grid(run, generations=[9])


def test_plot_samples_and_marginals(chain):
    run, _ = chain
    fig = P.plot_samples(run.images(0), n=9, title="gen 0")
    labelled(fig)
    ax = fig.axes[0]
    assert ax.get_title() == "gen 0" and not ax.get_xticks().size
    fig = P.plot_marginals(run.images(2), SPEC, title="gen 2")
    for ax in labelled(fig):
        assert ax.get_xlabel() and ax.get_ylabel() == "probability"


def test_plot_losses(chain):
    run, _ = chain
    for src in (run, {1: run.losses(1), 2: run.losses(2)}, [run.losses(1)]):
        fig = P.plot_losses(src)
        for ax in labelled(fig):
            assert ax.get_ylabel()
    labelled(P.plot_losses({}))


def test_draw_helpers_are_idempotent(chain):
    run, table = chain
    fig = P.plot_samples(run.images(0))
    ax = fig.axes[0]
    for k in (1, 2, 3):
        P.draw_samples(ax, run.images(k), n=4, seed=k)
    assert len(ax.images) == 1
    fig = P.plot_marginals(run.images(0), SPEC)
    for k in (1, 2):
        P.draw_marginals(fig.axes[:2], run.images(k), SPEC)
    assert len(fig.axes[0].patches) == SPEC.height
    fig = P.plot_difference(table)
    n_lines = len(fig.axes[0].lines)
    P.draw_difference(fig.axes[0], table)
    assert len(fig.axes[0].lines) == n_lines
    fig = P.plot_occupancy_grid([run.images(0)])
    P.draw_occupancy(fig.axes[0], run.images(3), title="gen 3")
    assert len(fig.axes[0].images) == 1 and fig.axes[0].get_title() == "gen 3"


def test_bad_inputs():
    with pytest.raises(ValueError):
        P.plot_samples(np.zeros((3, 4, 4), np.float32))
    with pytest.raises(ValueError):
        P.plot_difference({"variability": [1.0]})


def test_import_is_cheap():
    code = "import sys, encchain.plots; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_variability_from_a_dict_of_configs(tmp_path):
    """{label: table} compares configurations; {label: [tables]} gives a seed band."""
    base = {"generation": np.arange(3), "variability": np.array([3.0, 2.0, 1.0]),
            "variability_exact": np.array([9.5, 4.5, 1.5])}
    other = {**base, "variability": np.array([3.0, 2.5, 2.0])}
    fig = P.plot_variability({"baseline": base, "remedy": [other, base]})
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[:2] == ["baseline", "remedy"], labels
    with pytest.raises(ValueError, match="labels come from the dict"):
        P.plot_variability({"a": base}, labels=["x"])
