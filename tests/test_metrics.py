"""Tests of encchain.metrics on constructed cases with known answers."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from encchain import metrics as M
from encchain.grids import GridSpec, make_grids, render_blobs
from fakes import FakeRun

SPEC = GridSpec.unimodal()


@pytest.fixture(scope="module")
def perfect() -> np.ndarray:
    return make_grids(SPEC, 20_000, seed=0)


def all_centers(h: int = 24, w: int = 24) -> np.ndarray:
    return np.array([(y, x) for y in range(h) for x in range(w)], dtype=np.int64)


# ---------------------------------------------------------------- validation
BAD = [
    (np.zeros((2, 24, 24), dtype=np.float32), "uint8"),
    (np.zeros((24, 24), dtype=np.uint8), "shape"),
    (np.zeros((2, 1, 24, 24), dtype=np.uint8), "shape"),
    (np.zeros((0, 24, 24), dtype=np.uint8), "empty"),
    ([[[0]]], "numpy"),
]


@pytest.mark.parametrize("bad,msg", BAD)
@pytest.mark.parametrize(
    "fn",
    [
        M.occupancy,
        M.variability,
        M.variability_exact,
        lambda x: M.difference(x, np.zeros((1, 24, 24), np.uint8)),
        lambda x: M.difference(np.zeros((1, 24, 24), np.uint8), x),
        M.decode_centers,
        lambda x: M.ground_truth_measures(x, SPEC),
        lambda x: M.precision_recall(x, make_grids(SPEC, 10)),
    ],
)
def test_bad_input_raises(fn, bad, msg):
    with pytest.raises(ValueError, match=msg):
        fn(bad)


def test_other_bad_arguments():
    x = make_grids(SPEC, 10)
    with pytest.raises(ValueError, match="same height and width"):
        M.difference(x, np.zeros((3, 20, 24), np.uint8))
    with pytest.raises(ValueError, match="at least 2"):
        M.variability(x[:1])
    with pytest.raises(ValueError, match="at least 2"):
        M.variability_exact(x[:1])
    with pytest.raises(ValueError, match="pairs"):
        M.variability(x, pairs=0)
    with pytest.raises(ValueError, match="blob_size"):
        M.decode_centers(x, blob_size=2)
    with pytest.raises(ValueError, match="grid"):
        M.ground_truth_measures(np.zeros((3, 20, 20), np.uint8), SPEC)
    with pytest.raises(ValueError, match="more than 3"):
        M.precision_recall(x[:3], x)
    with pytest.raises(ValueError, match="inside"):
        M.center_histogram(np.array([[24, 0]]), 24, 24)
    with pytest.raises(ValueError, match="empty"):
        M.center_histogram(np.zeros((0, 2), np.int64), 24, 24)


# ---------------------------------------------------------- original measures
def test_occupancy_known():
    a = np.zeros((4, 2, 3), np.uint8)
    a[:, 0, 0] = 255
    a[:2, 1, 2] = 255
    occ, mean = M.occupancy(a)
    np.testing.assert_allclose(occ, [[1, 0, 0], [0, 0, 0.5]])
    np.testing.assert_allclose(mean, [[1, 0, 0], [0, 0, 0.5]])
    occ, mean = M.occupancy(np.zeros((3, 2, 2), np.uint8))
    assert not occ.any() and not mean.any()


def test_difference_identical_and_known(perfect):
    assert M.difference(perfect, perfect) == 0.0
    assert M.difference(perfect, perfect[::-1].copy()) == 0.0
    a = np.zeros((1, 2, 2), np.uint8)
    b = a.copy()
    a[0, 0, 0] = 255
    b[0, 1, 1] = 255
    assert M.difference(a, b) == pytest.approx(math.sqrt(2))


def test_variability_constant_set_is_zero():
    x = np.repeat(make_grids(SPEC, 1, seed=3), 50, axis=0)
    assert M.variability(x) == 0.0
    assert M.variability_exact(x) == 0.0


def test_two_point_set_hand_computed():
    a = np.zeros((2, 24, 24), np.uint8)
    a[0, :2, :2] = 255  # 4 pixels
    a[1, 10, 10] = 255  # 1 pixel, disjoint: ||a0 - a1||^2 = 5
    assert M.variability(a, pairs=7) == pytest.approx(math.sqrt(5))
    assert M.variability_exact(a) == pytest.approx(5.0)
    # equality of the Jensen relation when all distances are equal
    assert M.variability(a) ** 2 == pytest.approx(M.variability_exact(a))
    # grey levels: a single pixel differing by 51 / 255 = 0.2
    b = np.zeros((2, 3, 3), np.uint8)
    b[1, 1, 1] = 51
    assert M.variability(b) == pytest.approx(0.2)
    assert M.variability_exact(b) == pytest.approx(0.04)


def test_variability_exact_matches_brute_force():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(30, 5, 4), dtype=np.uint8)
    f = x.reshape(30, -1) / 255.0
    d2 = ((f[:, None] - f[None]) ** 2).sum(-1)
    brute = d2.sum() / (30 * 29)
    assert M.variability_exact(x) == pytest.approx(brute, rel=1e-12)
    # and the per-pixel variance form of the docstring
    assert M.variability_exact(x) == pytest.approx(2 * 30 / 29 * f.var(axis=0).sum(), rel=1e-12)


def test_sampled_vs_exact_relation(perfect):
    samp = M.variability(perfect)
    ex = M.variability_exact(perfect)
    assert samp**2 <= ex * 1.02  # Jensen, within sampling noise
    assert samp**2 >= 0.8 * ex  # and close: distances are fairly homogeneous
    assert M.variability(perfect, seed=0) == M.variability(perfect, seed=0)


# ------------------------------------------------------------------ decoding
@pytest.mark.parametrize("blob_size", [1, 3, 5, 9])
def test_decode_exact_everywhere(blob_size):
    spec = GridSpec(blob_size=blob_size)
    c = all_centers()
    centers, valid = M.decode_centers(render_blobs(c, spec), blob_size)
    assert centers.dtype == np.int64 and centers.shape == (576, 2)
    np.testing.assert_array_equal(centers, c)
    assert valid.all()


def test_decode_non_square_grid():
    spec = GridSpec(height=7, width=11)
    c = all_centers(7, 11)
    centers, valid = M.decode_centers(render_blobs(c, spec))
    np.testing.assert_array_equal(centers, c)
    assert valid.all()


def test_decode_noise_robust():
    rng = np.random.default_rng(0)
    c = all_centers()
    clean = render_blobs(c, SPEC).astype(np.int16)
    noisy = clean + rng.integers(-40, 41, size=clean.shape)
    noisy = np.clip(noisy, 0, 255).astype(np.uint8)
    centers, valid = M.decode_centers(noisy)
    np.testing.assert_array_equal(centers, c)
    assert valid.all()


def test_decode_invalid_cases():
    two = render_blobs(np.array([[5, 5]]), SPEC) | render_blobs(np.array([[15, 15]]), SPEC)
    empty = np.zeros((1, 24, 24), np.uint8)
    partial = render_blobs(np.array([[10, 10]]), SPEC)
    partial[0, 9, 9] = 0
    dim = (render_blobs(np.array([[10, 10]]), SPEC) // 3).astype(np.uint8)  # 85 < 128
    _, valid = M.decode_centers(np.concatenate([two, empty, partial, dim]))
    assert not valid.any()
    centers, _ = M.decode_centers(dim)
    np.testing.assert_array_equal(centers, [[10, 10]])  # still located


def test_center_histogram():
    h = M.center_histogram(np.array([[0, 0], [0, 0], [1, 2], [3, 1]]), 4, 3)
    assert h.shape == (4, 3) and h.sum() == pytest.approx(1)
    assert h[0, 0] == 0.5 and h[1, 2] == 0.25 and h[3, 1] == 0.25


# -------------------------------------------------------------- ground truth
def test_ground_truth_perfect_sample(perfect):
    m = M.ground_truth_measures(perfect, SPEC)
    assert set(m) == set(M.GROUND_TRUTH_KEYS)
    assert m["validity"] == 1.0
    assert m["center_tv"] < 0.05
    assert m["center_tv_y"] < 0.03 and m["center_tv_x"] < 0.03
    assert m["coverage"] > 0.99
    assert 0 <= m["center_kl"] < 0.05
    assert m["true_mean_y"] == pytest.approx(23 * 0.8)
    assert m["true_mean_x"] == pytest.approx(23 * 0.3)
    assert m["true_std_y"] == pytest.approx(math.sqrt(23 * 0.8 * 0.2))
    assert m["mean_y"] == pytest.approx(m["true_mean_y"], abs=0.05)
    assert m["std_x"] == pytest.approx(m["true_std_x"], abs=0.05)


def test_ground_truth_collapsed():
    one = render_blobs(np.array([[18, 7]]), SPEC)
    x = np.repeat(one, 1000, axis=0)
    m = M.ground_truth_measures(x, SPEC)
    pmf = SPEC.center_pmf()
    assert m["validity"] == 1.0
    assert m["coverage"] == pytest.approx(pmf[18, 7])
    assert m["coverage"] < 0.05
    assert m["center_tv"] == pytest.approx(1 - pmf[18, 7])
    assert m["center_tv"] > 0.9
    assert m["center_kl"] > 5
    assert math.isfinite(m["center_kl"])
    assert m["std_y"] == 0 and m["mean_y"] == 18
    assert M.variability_exact(x) == 0.0


# -------------------------------------------------------- precision / recall
def test_precision_recall_same_distribution(perfect):
    p, r = M.precision_recall(perfect[:2000], perfect[10_000:12_000])
    assert p > 0.95 and r > 0.95


def test_precision_recall_collapsed(perfect):
    one = np.repeat(perfect[:1], 500, axis=0)
    p, r = M.precision_recall(perfect[:2000], one)
    assert p == 1.0  # a real image, repeated: inside the real manifold
    assert r < 0.1  # but covers almost none of it
    p, r = M.precision_recall(one, one)
    assert (p, r) == (1.0, 1.0)  # exact duplicates are inside despite float32


def test_precision_recall_disjoint():
    real = render_blobs(np.array([[y, x] for y in range(0, 8) for x in range(0, 8)]), SPEC)
    fake = render_blobs(np.array([[y, x] for y in range(16, 24) for x in range(16, 24)]), SPEC)
    assert M.precision_recall(real, fake) == (0.0, 0.0)


def test_precision_recall_subsampling_reproducible(perfect):
    a = M.precision_recall(perfect[:3000], perfect[3000:6000], max_samples=500, seed=1)
    b = M.precision_recall(perfect[:3000], perfect[3000:6000], max_samples=500, seed=1)
    assert a == b


# ----------------------------------------------------------------- run level
def collapsing_chain(n_gen=4, n=400):
    base, centers = make_grids(SPEC, n, seed=0, return_centers=True)
    out = [base]
    target = np.array([17, 8])
    for k in range(1, n_gen):
        c = np.rint(target + (centers - target) * 0.5**k).astype(np.int64)
        out.append(render_blobs(c, SPEC))
    return out


@pytest.fixture
def fake_run(tmp_path):
    return FakeRun(collapsing_chain(), tmp_path, SPEC)


def test_run_metrics_table(fake_run):
    t = M.run_metrics(fake_run, precision_recall_samples=200, progress=False)
    assert list(t) == list(M.METRIC_COLUMNS)
    for col, v in t.items():
        assert isinstance(v, np.ndarray) and v.shape == (4,), col
    np.testing.assert_array_equal(t["generation"], [0, 1, 2, 3])
    assert np.isnan(t["difference_prev"][0]) and np.isfinite(t["difference_prev"][1:]).all()
    assert t["difference_orig"][0] == 0.0
    for col in ("loss_total", "loss_recon", "loss_kl", "loss_variability"):
        assert np.isnan(t[col][0]) and np.isfinite(t[col][1:]).all()
    np.testing.assert_allclose(t["loss_total"][1:], [12, 22, 32])
    assert (t["validity"] == 1).all()
    assert np.all(np.diff(t["variability_exact"]) < 0)  # the chain collapses
    assert np.all(np.diff(t["coverage"]) < 0)
    assert t["center_tv"][0] < t["center_tv"][-1]
    assert t["precision"][0] > 0.95 and t["recall"][0] > 0.95  # two different subsamples of gen 0
    assert t["recall"][-1] < t["recall"][0]
    np.testing.assert_array_equal(t["n_images"], 400)
    assert t["variability"][1] == M.variability(fake_run.images(1))


def test_run_metrics_no_spec_and_pr_disabled(tmp_path):
    run = FakeRun(collapsing_chain(3, 100), tmp_path, spec=None)
    t = M.run_metrics(run, precision_recall_samples=0, progress=False)
    for key in M.GROUND_TRUTH_KEYS + ("precision", "recall"):
        assert np.isnan(t[key]).all(), key
    assert np.isfinite(t["variability"]).all()
    t2 = M.run_metrics(run, spec=SPEC, precision_recall_samples=0, progress=False)  # explicit spec
    assert (t2["validity"] == 1).all()


def test_run_metrics_cache(fake_run, monkeypatch):
    calls = []
    real = M._generation_values

    def counting(k, *a, **kw):
        calls.append(k)
        return real(k, *a, **kw)

    monkeypatch.setattr(M, "_generation_values", counting)
    t1 = M.run_metrics(fake_run, precision_recall_samples=100, progress=False)
    assert calls == [0, 1, 2, 3]
    cache = fake_run.path / M.METRICS_CACHE_NAME
    assert cache.exists()
    json.loads(cache.read_text())  # standard JSON (NaN stored as null)
    assert "NaN" not in cache.read_text()

    calls.clear()
    mtime = cache.stat().st_mtime_ns
    t2 = M.run_metrics(fake_run, precision_recall_samples=100, progress=False)
    assert calls == []  # nothing recomputed
    assert cache.stat().st_mtime_ns == mtime  # nor rewritten
    for col in t1:
        np.testing.assert_array_equal(t1[col], t2[col])

    # a changed generation 2: gen 2 and gen 3 (whose difference_prev uses gen 2) recompute
    fake_run.datasets[2] = fake_run.datasets[2][::-1].copy()
    fake_run.datasets[2][0] = 0
    M.run_metrics(fake_run, precision_recall_samples=100, progress=False)
    assert calls == [2, 3]

    # a new generation: only it is computed
    calls.clear()
    fake_run.datasets.append(fake_run.datasets[-1].copy())
    t3 = M.run_metrics(fake_run, precision_recall_samples=100, progress=False)
    assert calls == [4] and len(t3["generation"]) == 5
    assert t3["difference_prev"][4] == 0.0

    # other parameters: everything recomputes
    calls.clear()
    M.run_metrics(fake_run, precision_recall_samples=0, progress=False)
    assert calls == [0, 1, 2, 3, 4]

    # a corrupt cache is ignored and rewritten
    cache.write_text("{not json")
    calls.clear()
    M.run_metrics(fake_run, precision_recall_samples=0, progress=False)
    assert calls == [0, 1, 2, 3, 4]
    json.loads(cache.read_text())


def test_run_metrics_progress_bar(fake_run, capsys):
    M.run_metrics(fake_run, precision_recall_samples=0, progress=True)
    assert "metrics" in capsys.readouterr().err
    M.run_metrics(fake_run, precision_recall_samples=0, progress=False)
    assert capsys.readouterr().err == ""


def test_csv_and_summary(fake_run, tmp_path):
    t = M.run_metrics(fake_run, precision_recall_samples=0, progress=False)
    out = M.metrics_to_csv(t, tmp_path / "m.csv")
    rows = list(csv.reader(open(out)))
    assert rows[0] == list(M.METRIC_COLUMNS)
    assert len(rows) == 5
    assert rows[1][0] == "0" and rows[1][rows[0].index("difference_prev")] == "nan"
    assert float(rows[2][rows[0].index("variability")]) == pytest.approx(t["variability"][1])
    lines = M.summary_lines(t)
    assert len(lines) == 5 and "original" in lines[1]
    assert "validity" in lines[0]
    with pytest.raises(ValueError, match="rows"):
        M.metrics_to_csv({"generation": [0, 1], "x": [1.0]}, tmp_path / "bad.csv")
