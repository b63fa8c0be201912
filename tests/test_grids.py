"""The grid generator: exact blob shapes, the right distributions, determinism."""

import numpy as np
import pytest

from encchain.grids import Binomial, GridSpec, Mode, Uniform, grid_preset, make_grids, render_blobs


def lit(images):
    return (images == 255).sum(axis=(1, 2))


def test_blob_shapes_centre_edge_corner():
    spec = GridSpec()
    centers = np.array([[12, 12], [0, 12], [23, 12], [12, 0], [12, 23], [0, 0], [0, 23], [23, 0], [23, 23]])
    images = render_blobs(centers, spec)
    assert images.dtype == np.uint8 and images.shape == (9, 24, 24)
    assert lit(images).tolist() == [9, 6, 6, 6, 6, 4, 4, 4, 4]
    assert set(np.unique(images)) == {0, 255}
    # the inner blob is exactly the 3 x 3 square around (12, 12)
    expected = np.zeros((24, 24), np.uint8)
    expected[11:14, 11:14] = 255
    np.testing.assert_array_equal(images[0], expected)
    corner = np.zeros((24, 24), np.uint8)
    corner[22:, 22:] = 255
    np.testing.assert_array_equal(images[8], corner)


def test_every_position_has_the_clipped_count():
    spec = GridSpec()
    yy, xx = np.meshgrid(np.arange(24), np.arange(24), indexing="ij")
    centers = np.stack([yy.ravel(), xx.ravel()], 1)
    counts = lit(render_blobs(centers, spec))
    assert counts.tolist() == [spec.blob_pixels(y, x) for y, x in centers]


def test_larger_blob_and_other_grid_size():
    spec = GridSpec(height=10, width=16, blob_size=5)
    images = render_blobs(np.array([[0, 0], [5, 8]]), spec)
    assert images.shape == (2, 10, 16)
    assert lit(images).tolist() == [9, 25]


def test_centres_are_drawn_as_returned():
    spec = GridSpec.bimodal()
    images, centers = make_grids(spec, 500, seed=3, return_centers=True)
    np.testing.assert_array_equal(images, render_blobs(centers, spec))


@pytest.mark.parametrize("p_y,p_x", [(0.8, 0.3), (0.5, 0.5), (0.1, 0.95)])
def test_empirical_centre_mean_matches_binomial(p_y, p_x):
    n = 20_000
    _, centers = make_grids(GridSpec.unimodal(p_y, p_x), n, seed=0, return_centers=True)
    mean = centers.mean(axis=0)
    std_err = np.sqrt(23 * np.array([p_y * (1 - p_y), p_x * (1 - p_x)]) / n)
    assert np.all(np.abs(mean - 23 * np.array([p_y, p_x])) < 5 * std_err + 1e-12)


def test_bimodal_split_is_exact_two_thirds():
    n = 3000
    _, centers = make_grids(GridSpec.bimodal(), n, seed=0, return_centers=True)
    # the modes barely overlap: y ~ Bin(23, .8) vs Bin(23, .2)
    upper = (centers[:, 0] >= 12).sum()
    assert abs(upper - 2000) < 30
    # and the set is shuffled: both modes appear in the first and the last third
    first, last = centers[:1000, 0], centers[2000:, 0]
    assert 0.5 < (first >= 12).mean() < 0.85 and 0.5 < (last >= 12).mean() < 0.85


def test_bimodal_uses_exact_counts_not_random():
    from encchain.grids import _mode_counts

    assert _mode_counts(GridSpec.bimodal().weights, 20_000).tolist() == [13_333, 6_667]
    assert _mode_counts(np.array([0.5, 0.5]), 3).sum() == 3


def test_uniform_covers_everything():
    _, centers = make_grids(GridSpec.uniform(), 50_000, seed=1, return_centers=True)
    hist = np.bincount(centers[:, 0] * 24 + centers[:, 1], minlength=576)
    assert hist.min() > 40 and hist.max() < 140  # mean 86.8


def test_center_pmf_exact():
    spec = GridSpec.unimodal()
    pmf = spec.center_pmf()
    assert pmf.shape == (24, 24)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-12)
    py, px = spec.marginals()
    assert (py * np.arange(24)).sum() == pytest.approx(23 * 0.8)
    assert (px * np.arange(24)).sum() == pytest.approx(23 * 0.3)
    from math import comb

    assert pmf[18, 7] == pytest.approx(comb(23, 18) * 0.8**18 * 0.2**5 * comb(23, 7) * 0.3**7 * 0.7**16)
    np.testing.assert_allclose(GridSpec.uniform().center_pmf(), 1 / 576)
    bi = GridSpec.bimodal().center_pmf()
    np.testing.assert_allclose(
        bi, 2 / 3 * np.outer(Binomial(.8).pmf(24), Binomial(.3).pmf(24)) + 1 / 3 * np.outer(Binomial(.2).pmf(24), Binomial(.7).pmf(24))
    )


def test_empirical_histogram_converges_to_pmf():
    spec = GridSpec.bimodal()
    _, centers = make_grids(spec, 200_000, seed=5, return_centers=True)
    hist = np.bincount(centers[:, 0] * 24 + centers[:, 1], minlength=576).reshape(24, 24) / len(centers)
    assert 0.5 * np.abs(hist - spec.center_pmf()).sum() < 0.03


def test_deterministic_for_a_seed():
    a = make_grids(GridSpec.bimodal(), 1000, seed=7)
    b = make_grids(GridSpec.bimodal(), 1000, seed=7)
    c = make_grids(GridSpec.bimodal(), 1000, seed=8)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_presets_and_serialisation():
    for name in ("unimodal", "bimodal", "uniform"):
        spec = grid_preset(name)
        assert GridSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="unknown grid preset"):
        grid_preset("trimodal")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Binomial(1.5), "Binomial p"),
        (lambda: Binomial(-0.1), "Binomial p"),
        (lambda: Mode(0.0, Uniform(), Uniform()), "weight"),
        (lambda: Mode(-1.0, Uniform(), Uniform()), "weight"),
        (lambda: GridSpec(blob_size=25), "larger than the grid"),
        (lambda: GridSpec(blob_size=2), "odd"),
        (lambda: GridSpec(height=0), "height"),
        (lambda: GridSpec(width=-3), "width"),
        (lambda: GridSpec(modes=()), "at least one Mode"),
        (lambda: GridSpec.from_dict({"modes": [{"weight": 1, "y": {"kind": "poisson"}, "x": {"kind": "uniform"}}]}), "poisson"),
        (lambda: make_grids(GridSpec(), -1), "non-negative"),
    ],
)
def test_invalid_specs_are_refused_with_a_clear_message(make, message):
    with pytest.raises(ValueError, match=message):
        make()
