"""The chain engine: regimes, resumption, determinism, and refusing bad folders."""

import json
import os

import numpy as np
import pytest

from encchain import chain as chain_mod
from encchain.chain import FRESH_REAL, ChainConfig, RunError, denoise, load_run, run_chain, training_set
from encchain.grids import GridSpec, make_grids
from encchain.idx import write_idx
from encchain.presets import PRESETS, preset

# A chain small enough to run in a second or two: FC1 trains fastest.
TINY = dict(model="fc1", n_samples=120, epochs=1, generations=3, batch_size=32, seed=11)


def tiny(**changes):
    return ChainConfig(**{**TINY, **changes})


def datasets(run):
    return [run.images(k) for k in range(len(run))]


def files_of(path):
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
            and p.name not in (".lock", "manifest.json", "config.json")}


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    return run_chain(tiny(), tmp_path_factory.mktemp("ref") / "run", progress=False)


def test_run_layout_and_api(reference_run):
    run = reference_run
    assert len(run) == 4 and run.complete
    for k in range(4):
        im = run.images(k)
        assert im.dtype == np.uint8 and im.shape == (120, 24, 24)
    assert set(run.losses(1)) == {"total", "recon", "kl", "variability"}
    assert run.losses(2)["total"].shape == (1,)
    assert run.model(3).latent_size == 8
    with pytest.raises(IndexError):
        run.images(4)
    with pytest.raises(IndexError):
        run.losses(0)  # generation 0 is data, not a model
    manifest = json.loads((run.path / "manifest.json").read_text())
    assert manifest["library"]["torch"] and manifest["library"]["numpy"]
    assert [r["generation"] for r in manifest["generations"]] == [0, 1, 2, 3]
    assert all(r["wall_s"] >= 0 for r in manifest["generations"])
    assert set(manifest["generations"][2]["files"]) == {
        "gen_002/data.idx3-ubyte.gz", "gen_002/model.pt", "gen_002/losses.json"}
    assert ChainConfig.from_dict(json.loads((run.path / "config.json").read_text())) == tiny()


def test_generation_zero_is_the_grid_data(reference_run):
    cfg = reference_run.config
    expected = make_grids(cfg.grid, cfg.n_samples, seed=chain_mod.derived_seed(cfg.seed, 0, "data"))
    np.testing.assert_array_equal(reference_run.images(0), expected)


def test_deterministic_byte_identical(reference_run, tmp_path):
    again = run_chain(tiny(), tmp_path / "again", progress=False)
    assert files_of(again.path).keys() == files_of(reference_run.path).keys()
    for k in range(4):
        assert (again.path / f"gen_{k:03d}/data.idx3-ubyte.gz").read_bytes() == \
               (reference_run.path / f"gen_{k:03d}/data.idx3-ubyte.gz").read_bytes()
    other = run_chain(tiny(seed=12, generations=1), tmp_path / "other", progress=False)
    assert not np.array_equal(other.images(1), reference_run.images(1))


def test_resume_between_generations(reference_run, tmp_path):
    path = tmp_path / "run"
    first = run_chain(tiny(generations=1), path, progress=False)
    assert len(first) == 2 and not tiny().generations == 1
    resumed = run_chain(tiny(), path, progress=False)  # asks for 3: extends
    assert len(resumed) == 4
    for k in range(4):
        np.testing.assert_array_equal(resumed.images(k), reference_run.images(k))


def test_resume_after_a_crash_inside_a_generation(reference_run, tmp_path, monkeypatch):
    """Kill the process after generation 2's dataset is written but before the manifest."""
    path = tmp_path / "run"
    real_write = chain_mod.atomic_write_bytes

    def crash_on_gen2_weights(target, data):
        if target.parent.name == "gen_002" and target.name == "model.pt":
            raise KeyboardInterrupt("kernel interrupted")
        return real_write(target, data)

    monkeypatch.setattr(chain_mod, "atomic_write_bytes", crash_on_gen2_weights)
    with pytest.raises(KeyboardInterrupt):
        run_chain(tiny(), path, progress=False)
    monkeypatch.undo()
    half = load_run(path)
    assert len(half) == 2, "generation 2 is not finished, whatever files it left"
    assert (path / "gen_002/data.idx3-ubyte.gz").exists()  # a leftover no manifest vouches for
    resumed = run_chain(tiny(), path, progress=False)
    assert files_of(resumed.path).keys() == files_of(reference_run.path).keys()
    for k in range(4):
        np.testing.assert_array_equal(resumed.images(k), reference_run.images(k))


def test_resume_after_a_crash_during_training(reference_run, tmp_path, monkeypatch):
    """Interrupt the kernel while model 2 trains (run_chain looks train_vae up at call time)."""
    path = tmp_path / "run"
    from encchain import train

    calls = {"n": 0}
    original = train.train_vae

    def interrupt_second_model(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(train, "train_vae", interrupt_second_model)
    with pytest.raises(KeyboardInterrupt):
        run_chain(tiny(), path, progress=False)
    monkeypatch.undo()
    assert calls["n"] == 2
    assert len(load_run(path)) == 2
    resumed = run_chain(tiny(), path, progress=False)
    for k in range(4):
        np.testing.assert_array_equal(resumed.images(k), reference_run.images(k))


def test_asking_for_fewer_generations_keeps_all(reference_run, tmp_path):
    import shutil

    path = tmp_path / "copy"
    shutil.copytree(reference_run.path, path)
    run = run_chain(tiny(generations=1), path, progress=False)
    assert len(run) == 4 and run.config.generations == 3 and run.complete
    assert load_run(path).config.generations == 3


def test_different_config_is_refused(reference_run, tmp_path):
    path = tmp_path / "run"
    run_chain(tiny(generations=1), path, progress=False)
    before = files_of(path)
    with pytest.raises(RunError, match="kl_weight: 1.0 on disk, 0.5 asked"):
        run_chain(tiny(kl_weight=0.5), path, progress=False)
    assert files_of(path) == before, "a refused run must not touch the folder"


def test_non_run_folder_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="not empty and is not a run"):
        run_chain(tiny(), tmp_path, progress=False)
    with pytest.raises(RunError, match="not a run folder"):
        load_run(tmp_path)
    with pytest.raises(RunError, match="no such run folder"):
        load_run(tmp_path / "missing")


def test_corrupt_and_missing_files_are_reported(reference_run, tmp_path):
    import shutil

    path = tmp_path / "copy"
    shutil.copytree(reference_run.path, path)
    load_run(path)  # intact copy loads
    data = path / "gen_001/data.idx3-ubyte.gz"
    blob = bytearray(data.read_bytes())
    blob[-5] ^= 0xFF
    data.write_bytes(bytes(blob))
    with pytest.raises(RunError, match=r"gen_001/data.idx3-ubyte.gz: checksum mismatch"):
        load_run(path)
    (path / "gen_002/model.pt").unlink()
    with pytest.raises(RunError, match="checksum mismatch|missing"):
        load_run(path)
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(RunError, match="manifest is not valid JSON"):
        load_run(path)


def test_files_are_never_half_written(reference_run):
    leftovers = [p for p in reference_run.path.rglob("*.tmp")]
    assert not leftovers
    assert oct(os.stat(reference_run.path / "config.json").st_mode & 0o044) != "0o0", "readable by the group"


# -- regimes: each trains on what it says ------------------------------------------
def _fake_datasets(n=100):
    return {j: np.full((n, 24, 24), j, dtype=np.uint8) for j in range(5)}


def test_replace_trains_on_the_previous_generation_only():
    data = _fake_datasets()
    images, origin = training_set(tiny(regime="replace"), 3, data.__getitem__)
    assert set(origin) == {2} and len(images) == 100 and (images == 2).all()


def test_accumulate_trains_on_everything_so_far():
    data = _fake_datasets()
    images, origin = training_set(tiny(regime="accumulate"), 3, data.__getitem__)
    assert np.bincount(origin).tolist() == [100, 100, 100]
    np.testing.assert_array_equal(images[:, 0, 0], origin)


def test_mix_trains_on_fresh_real_plus_synthetic():
    data = _fake_datasets()
    cfg = tiny(regime="mix", real_fraction=0.25, n_samples=100)
    images, origin = training_set(cfg, 3, data.__getitem__)
    assert len(images) == 100
    assert (origin == FRESH_REAL).sum() == 25 and (origin == 2).sum() == 75
    real = images[origin == FRESH_REAL]
    assert ((real == 255).sum(axis=(1, 2)) >= 4).all(), "fresh real images are blobs from the grid"
    assert (images[origin == 2] == 2).all()
    # fresh data is new in every generation
    images4, origin4 = training_set(cfg, 4, data.__getitem__)
    assert not np.array_equal(images4[origin4 == FRESH_REAL], real)


@pytest.mark.parametrize("regime, fraction", [("accumulate", 0.0), ("mix", 0.5)])
def test_regimes_run_end_to_end(tmp_path, regime, fraction):
    run = run_chain(tiny(regime=regime, real_fraction=fraction, generations=2), tmp_path / "r", progress=False)
    records = run.records
    if regime == "accumulate":
        assert records[2]["n_train"] == 240 and records[2]["train_origin"] == {"0": 120, "1": 120}
    else:
        assert records[2]["train_origin"] == {"-1": 60, "1": 60}


def test_denoise_matches_the_original_rule():
    images = np.array([[[0, 10, 100], [200, 250, 5]]], dtype=np.uint8)
    out = denoise(images, 0.05)  # cut = 0.05 * 250 = 12.5
    assert out.tolist() == [[[0, 0, 100], [200, 250, 0]]]
    assert denoise(images, 0.0) is images


def test_start_from_an_existing_dataset(tmp_path):
    start = make_grids(GridSpec.uniform(), 100, seed=2)
    write_idx(tmp_path / "start.idx3-ubyte.gz", start)
    run = run_chain(tiny(start=str(tmp_path / "start.idx3-ubyte.gz"), generations=1), tmp_path / "r", progress=False)
    np.testing.assert_array_equal(run.images(0), start)
    assert run.spec is None


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("kl_weight", -1.0, "kl_weight"),
        ("denoise_threshold", 1.5, "denoise_threshold"),
        ("real_fraction", -0.1, "real_fraction"),
        ("model", "resnet", "model"),
        ("generations", 0, "generations"),
        ("regime", "refresh", "regime"),
        ("n_samples", 0, "n_samples"),
        ("std_increment", -1.0, "std_increment"),
        ("device", "tpu", "device"),
    ],
)
def test_invalid_config_names_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        ChainConfig(**{field: value})


def test_presets_cover_the_original_experiments():
    originals = {"fc1", "fc2", "conv-baseline", "asymm", "conv-unif", "conv-lessregul", "conv-varloss",
                 "conv-lessregul-varloss", "conv-lessregul-varloss-denoise", "conv-denoise", "conv-std",
                 "conv-std-denoise", "conv-std-denoise-longchain"}
    assert originals <= set(PRESETS)
    long = preset("conv-std-denoise-longchain")
    assert (long.std_increment, long.denoise_threshold, long.generations) == (0.7, 0.05, 50)
    base = preset("conv-baseline")
    assert (base.n_samples, base.epochs, base.batch_size, base.lr, base.latent_size) == (20_000, 5, 32, 1e-3, 8)
    quick = preset("conv-lessregul", quick=True, seed=4)
    assert quick.kl_weight == 0.3 and quick.n_samples < base.n_samples and quick.seed == 4
    assert preset("conv-std-denoise-longchain", quick=True).generations > preset("conv-baseline", quick=True).generations


def test_config_pickles_for_cluster_jobs():
    import pickle

    cfg = preset("conv-mix")
    assert pickle.loads(pickle.dumps(cfg)) == cfg
    assert ChainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
