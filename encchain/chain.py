"""The chain engine: train model k on data from model k-1, resumably.

A *run* is one folder holding one chain, written so that any reader (a
notebook, ``encchain report``, a sweep's collector) can trust what it finds::

    run_dir/
      config.json          the ChainConfig (everything needed to redo the run)
      manifest.json        library versions, and per finished generation:
                           wall time, device, sha256 of every file
      gen_000/data.idx3-ubyte.gz        the original data (generation 0)
      gen_001/data.idx3-ubyte.gz        what model 1 generated
      gen_001/model.pt                  model 1's weights (state_dict)
      gen_001/losses.json               model 1's per-epoch loss terms
      ...

A generation counts as finished only once the manifest lists it, and the
manifest is rewritten (atomically) only after all that generation's files are
on disk. A killed process therefore leaves at most files that no manifest
vouches for; the next :func:`run_chain` on the folder redoes that generation.

Every random draw of generation k is seeded from ``(config.seed, k, purpose)``
alone, so a resumed run is byte-identical to an uninterrupted one, and a run
is an independent, picklable job (a :class:`ChainConfig` and a folder) that a
cluster sweep can schedule anywhere.

Data regimes (``ChainConfig.regime``):

* ``replace`` (the original): model k trains only on generation k-1.
* ``accumulate``: model k trains on generations 0 .. k-1 together (the
  original data plus everything generated so far; grows by ``n_samples`` per
  generation).
* ``mix``: model k trains on ``round(real_fraction * n_samples)`` freshly drawn
  real images (from ``grid``) plus a random subset of generation k-1 filling
  the rest, ``n_samples`` in all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .atomic import atomic_write_bytes, atomic_write_text
from .grids import GridSpec, grid_preset, make_grids
from .idx import encode_idx, read_idx

__all__ = [
    "ChainConfig",
    "REGIMES",
    "Run",
    "RunError",
    "run_chain",
    "load_run",
    "training_set",
    "denoise",
    "derived_seed",
    "FRESH_REAL",
]

REGIMES = ("replace", "accumulate", "mix")
DATA_FILE = "data.idx3-ubyte.gz"
MODEL_FILE = "model.pt"
LOSSES_FILE = "losses.json"
RUN_FORMAT = "encchain-run"
RUN_FORMAT_VERSION = 1

# Fields that may differ between the config on disk and the one asked for:
# the device does not change the science, and `generations` only says how far
# to go (extending a chain leaves its earlier generations as they are).
_RESUMABLE_FIELDS = frozenset({"device", "generations"})


class RunError(ValueError):
    """A folder is not a (valid) run, or a run cannot be continued as asked."""


@dataclass(frozen=True)
class ChainConfig:
    """Every knob of one chain. Field names are a public contract.

    Parameters
    ----------
    grid : GridSpec or None
        The true distribution: generation 0 is drawn from it (unless ``start``
        is given), ``mix`` draws fresh real data from it, and metrics compare
        against it. Default: the original's unimodal spec.
    start : str or None
        Path of an IDX dataset (uint8, shape (n, H, W)) to use as generation 0
        instead of drawing from ``grid``. Then ``grid`` is the truth only if
        given explicitly.
    model : str
        Architecture name: 'fc1', 'fc2', 'conv' or 'asymm'.
    latent_size : int
        Dimension of the latent space (default 8).
    kl_weight : float
        lambda, the weight of the KL term (default 1; >= 0).
    variability_weight : float
        K, the weight of the variability term (default 0; >= 0).
    std_increment : float
        delta: generation samples z ~ N(0, (1 + delta)^2 I) (default 0; > -1).
    denoise_threshold : float
        t in [0, 1]: after generating, pixels below t * (largest pixel of the
        generated set) become 0. 0 turns denoising off.
    generations : int
        Number of models N (>= 1); the run holds generations 0 .. N.
    n_samples : int
        Images per generation (generation 0 included, unless ``start``).
    epochs, batch_size, lr :
        Training of each model (Adam).
    seed : int
        Seed of everything random in the run.
    device : str
        'cpu', 'cuda', 'mps' or 'auto'.
    regime : str
        'replace', 'accumulate' or 'mix' (see the module docstring).
    real_fraction : float
        f in [0, 1], the share of fresh real data per generation in 'mix'.
    """

    grid: GridSpec | None = None
    start: str | None = None
    model: str = "conv"
    latent_size: int = 8
    kl_weight: float = 1.0
    variability_weight: float = 0.0
    std_increment: float = 0.0
    denoise_threshold: float = 0.0
    generations: int = 20
    n_samples: int = 20_000
    epochs: int = 5
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0
    device: str = "cpu"
    regime: str = "replace"
    real_fraction: float = 0.0

    def __post_init__(self) -> None:
        from .models import MODELS

        if self.grid is None and self.start is None:
            object.__setattr__(self, "grid", GridSpec())
        if isinstance(self.grid, str):
            object.__setattr__(self, "grid", grid_preset(self.grid))
        if isinstance(self.grid, dict):
            object.__setattr__(self, "grid", GridSpec.from_dict(self.grid))
        if self.grid is not None and not isinstance(self.grid, GridSpec):
            raise ValueError(f"grid must be a GridSpec, a preset name or None, got {self.grid!r}")
        if self.start is not None:
            object.__setattr__(self, "start", str(self.start))
        if self.model not in MODELS:
            raise ValueError(f"model: unknown architecture {self.model!r}; choose one of {sorted(MODELS)}")
        _check_int(self, "latent_size", 1)
        _check_int(self, "generations", 1)
        _check_int(self, "n_samples", 1)
        _check_int(self, "epochs", 1)
        _check_int(self, "batch_size", 1)
        _check_int(self, "seed", 0)
        _check_float(self, "kl_weight", lo=0.0)
        _check_float(self, "variability_weight", lo=0.0)
        _check_float(self, "denoise_threshold", lo=0.0, hi=1.0)
        _check_float(self, "real_fraction", lo=0.0, hi=1.0)
        _check_float(self, "lr", lo=0.0)
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        _check_float(self, "std_increment")
        if self.std_increment <= -1.0:
            raise ValueError(f"std_increment must be > -1 (sampling scale 1 + delta > 0), got {self.std_increment!r}")
        if self.regime not in REGIMES:
            raise ValueError(f"regime: unknown regime {self.regime!r}; choose one of {list(REGIMES)}")
        if self.regime == "mix" and self.grid is None:
            raise ValueError("regime 'mix' draws fresh real data and needs grid (a GridSpec), not only start")
        if self.device not in ("cpu", "cuda", "mps", "auto") and not str(self.device).startswith(("cuda:", "mps:")):
            raise ValueError(f"device must be 'cpu', 'cuda', 'mps' or 'auto', got {self.device!r}")

    @property
    def sample_scale(self) -> float:
        """Standard deviation of the latent sampling distribution, 1 + delta."""
        return 1.0 + self.std_increment

    def replace(self, **changes: Any) -> "ChainConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description; :meth:`from_dict` inverts it."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["grid"] = None if self.grid is None else self.grid.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ChainConfig":
        """Build a config from :meth:`to_dict` output; unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown ChainConfig fields: {sorted(unknown)}; valid fields: {sorted(names)}")
        d = dict(d)
        if isinstance(d.get("grid"), dict):
            d["grid"] = GridSpec.from_dict(d["grid"])
        return cls(**d)

    def differences(self, other: "ChainConfig", ignore: frozenset[str] = frozenset()) -> list[str]:
        """Names of the fields whose values differ from ``other``'s."""
        a, b = self.to_dict(), other.to_dict()
        return [k for k in a if k not in ignore and a[k] != b[k]]


def _check_int(cfg: ChainConfig, name: str, lo: int) -> None:
    v = getattr(cfg, name)
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")


def _check_float(cfg: ChainConfig, name: str, lo: float | None = None, hi: float | None = None) -> None:
    v = getattr(cfg, name)
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not np.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        bounds = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be in {bounds}, got {v!r}")


# --------------------------------------------------------------------------
# Seeds, data composition, denoising
# --------------------------------------------------------------------------
_PURPOSES = {"data": 0, "init": 1, "train": 2, "sample": 3, "real": 4, "subset": 5}


def derived_seed(seed: int, generation: int, purpose: str) -> int:
    """A 63-bit seed for one purpose of one generation, independent of all others."""
    state = np.random.SeedSequence([seed, generation, _PURPOSES[purpose]]).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def denoise(images: np.ndarray, threshold: float) -> np.ndarray:
    """The original's denoising: pixels below ``threshold * images.max()`` become 0.

    Parameters
    ----------
    images : uint8 array (n, H, W)
    threshold : float in [0, 1]; 0 returns the images unchanged.

    Returns
    -------
    uint8 array of the same shape (a new array unless threshold is 0).
    """
    if threshold <= 0 or images.size == 0:
        return images
    cut = threshold * float(images.max())
    out = images.copy()
    out[out < cut] = 0
    return out


#: origin code of freshly drawn real images in :func:`training_set`
FRESH_REAL = -1


def training_set(
    config: ChainConfig, k: int, dataset: Callable[[int], np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """The images model ``k`` trains on, and where each one came from.

    Parameters
    ----------
    config : ChainConfig
    k : int
        The model (>= 1).
    dataset : callable
        ``dataset(j)`` returns generation j's images (uint8 (n, H, W)).

    Returns
    -------
    images : uint8 array (m, H, W)
    origin : int array (m,)
        For each image the generation it was taken from (0 = original data,
        j = model j's samples), or ``FRESH_REAL`` (-1) for fresh real data.
    """
    if k < 1:
        raise ValueError(f"model index k must be >= 1, got {k}")
    if config.regime == "replace":
        images = dataset(k - 1)
        return images, np.full(len(images), k - 1)
    if config.regime == "accumulate":
        parts = [dataset(j) for j in range(k)]
        origin = np.concatenate([np.full(len(p), j) for j, p in enumerate(parts)])
        return np.concatenate(parts), origin
    # mix
    n = config.n_samples
    n_real = int(round(config.real_fraction * n))
    previous = dataset(k - 1)
    n_synth = min(n - n_real, len(previous))
    rng = np.random.default_rng(derived_seed(config.seed, k, "subset"))
    synth = previous[np.sort(rng.choice(len(previous), size=n_synth, replace=False))]
    real = make_grids(config.grid, n_real, seed=derived_seed(config.seed, k, "real"))
    if real.shape[1:] != previous.shape[1:]:
        raise RunError(f"grid {real.shape[1:]} does not match the data's image size {previous.shape[1:]}")
    origin = np.concatenate([np.full(n_real, FRESH_REAL), np.full(n_synth, k - 1)])
    return np.concatenate([real, synth]), origin


# --------------------------------------------------------------------------
# Run folders
# --------------------------------------------------------------------------
def _gen_dir(k: int) -> str:
    return f"gen_{k:03d}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _library_versions() -> dict[str, str]:
    import torch

    from . import __version__

    return {
        "encchain": __version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "torch": torch.__version__,
        "platform": platform.platform(),
    }


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RunError(f"{path.parent}: not a run folder (no {path.name})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunError(f"{path}: {what} is not valid JSON ({e})") from None


class Run:
    """A run folder, opened for reading. Use :func:`load_run` or :func:`run_chain`.

    Attributes
    ----------
    path : Path
        The run folder.
    config : ChainConfig
    spec : GridSpec or None
        The true distribution (``config.grid``), None if unknown.
    manifest : dict
        Library versions and one record per finished generation.
    """

    def __init__(self, path: Path, config: ChainConfig, manifest: dict[str, Any]) -> None:
        self.path = Path(path)
        self.config = config
        self.manifest = manifest
        self._images: dict[int, np.ndarray] = {}

    @property
    def spec(self) -> GridSpec | None:
        return self.config.grid

    @property
    def records(self) -> list[dict[str, Any]]:
        """The manifest's record of each finished generation, in order."""
        return self.manifest["generations"]

    def __len__(self) -> int:
        """Number of datasets on disk: finished generations + 1 (generation 0)."""
        return len(self.records)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, generations 0..{len(self) - 1} of {self.config.generations})"

    @property
    def complete(self) -> bool:
        """True once all ``config.generations`` models are finished."""
        return len(self) == self.config.generations + 1

    def _check_k(self, k: int, first: int = 0) -> int:
        if isinstance(k, (int, np.integer)) and k < 0:
            k = len(self) + k
        if not isinstance(k, (int, np.integer)) or not first <= k < len(self):
            raise IndexError(f"generation {k} is not in this run (finished: {first}..{len(self) - 1})")
        return int(k)

    def file(self, k: int, name: str) -> Path:
        """Path of one file of generation k."""
        return self.path / _gen_dir(self._check_k(k)) / name

    def images(self, k: int) -> np.ndarray:
        """Generation k's dataset, uint8 (n, H, W); read once, then cached."""
        k = self._check_k(k)
        if k not in self._images:
            self._images[k] = read_idx(self.file(k, DATA_FILE))
        return self._images[k]

    def dataset_sha256(self, k: int) -> str:
        """The recorded sha256 of generation k's dataset file."""
        k = self._check_k(k)
        return self.records[k]["files"][f"{_gen_dir(k)}/{DATA_FILE}"]

    def losses(self, k: int) -> dict[str, np.ndarray]:
        """Model k's per-epoch loss terms ('total', 'recon', 'kl', 'variability'), k >= 1."""
        k = self._check_k(k, first=1)
        raw = _read_json(self.file(k, LOSSES_FILE), "losses")
        return {name: np.asarray(v, dtype=np.float64) for name, v in raw.items()}

    def model(self, k: int, device: str = "cpu"):
        """Model k (k >= 1) with its trained weights, in eval mode."""
        import torch

        from .models import build_model

        k = self._check_k(k, first=1)
        h, w = self.records[0]["image_shape"]
        model = build_model(self.config.model, height=h, width=w, latent_size=self.config.latent_size)
        state = torch.load(io.BytesIO(self.file(k, MODEL_FILE).read_bytes()), map_location=device, weights_only=True)
        model.load_state_dict(state)
        return model.to(device).eval()

    def wall_times(self) -> np.ndarray:
        """Seconds each generation took to produce (generation 0 included)."""
        return np.array([r["wall_s"] for r in self.records])

    def verify(self) -> None:
        """Check every recorded file against its sha256; RunError names the first bad one."""
        for record in self.records:
            for rel, digest in record["files"].items():
                p = self.path / rel
                if not p.is_file():
                    raise RunError(f"{p}: missing (generation {record['generation']} lists it)")
                if _sha256(p) != digest:
                    raise RunError(f"{p}: checksum mismatch: the file changed or is corrupt")


def load_run(run_dir: str | os.PathLike, *, verify: bool = True) -> Run:
    """Open a run folder.

    Parameters
    ----------
    run_dir : path
        A folder written by :func:`run_chain`.
    verify : bool
        Check every file against the manifest's sha256 (default; about 10 ms
        per generation at 20,000 images).

    Returns
    -------
    Run

    Raises
    ------
    RunError
        Not a run folder, unreadable config or manifest, a missing file or a
        checksum mismatch (naming the file).
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise RunError(f"{path}: no such run folder")
    try:
        config = ChainConfig.from_dict(_read_json(path / "config.json", "config"))
    except (TypeError, ValueError) as e:
        if isinstance(e, RunError):
            raise
        raise RunError(f"{path / 'config.json'}: not a valid ChainConfig ({e})") from None
    manifest = _read_json(path / "manifest.json", "manifest")
    if not isinstance(manifest, dict) or manifest.get("format") != RUN_FORMAT:
        raise RunError(f"{path / 'manifest.json'}: not an encchain run manifest")
    if manifest.get("version") != RUN_FORMAT_VERSION:
        raise RunError(f"{path}: run format version {manifest.get('version')} is not supported")
    run = Run(path, config, manifest)
    if len(run) == 0:
        raise RunError(f"{path}: the run has no finished generation yet")
    if verify:
        run.verify()
    return run


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an advisory lock on the run folder: two writers would corrupt it."""
    lock = open(path / ".lock", "a+")
    try:
        try:
            import fcntl

            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # not POSIX: no locking
            pass
        except BlockingIOError:
            raise RunError(f"{path}: another process is writing this run") from None
        yield
    finally:
        lock.close()


def _open_or_create(config: ChainConfig, path: Path) -> Run:
    if (path / "config.json").exists():
        on_disk = ChainConfig.from_dict(_read_json(path / "config.json", "config"))
        differ = on_disk.differences(config, ignore=_RESUMABLE_FIELDS)
        if differ:
            details = "; ".join(f"{k}: {on_disk.to_dict()[k]!r} on disk, {config.to_dict()[k]!r} asked" for k in differ)
            raise RunError(
                f"{path} holds a run with a different config ({details}). "
                "Use another folder, or load it with load_run()."
            )
        if (path / "manifest.json").exists():
            run = load_run(path, verify=True)
        else:
            run = Run(path, config, _new_manifest())
        if config.generations < len(run) - 1:  # asked for fewer than are done: keep them all
            config = config.replace(generations=len(run) - 1)
        run.config = config
    else:
        if path.exists() and any(p.name != ".lock" for p in path.iterdir()):
            raise RunError(f"{path} is not empty and is not a run folder; choose an empty or new folder")
        run = Run(path, config, _new_manifest())
    atomic_write_text(path / "config.json", json.dumps(config.to_dict(), indent=2) + "\n")
    return run


def _new_manifest() -> dict[str, Any]:
    return {"format": RUN_FORMAT, "version": RUN_FORMAT_VERSION, "library": _library_versions(), "generations": []}


def _finish_generation(run: Run, k: int, files: dict[str, bytes], extra: dict[str, Any]) -> None:
    """Write generation k's files, then (and only then) record it in the manifest."""
    folder = run.path / _gen_dir(k)
    folder.mkdir(exist_ok=True)
    digests = {}
    for name, data in files.items():
        atomic_write_bytes(folder / name, data)
        digests[f"{_gen_dir(k)}/{name}"] = hashlib.sha256(data).hexdigest()
    record = {
        "generation": k,
        "files": digests,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }
    run.manifest["generations"] = run.records[:k] + [record]
    atomic_write_text(run.path / "manifest.json", json.dumps(run.manifest, indent=2) + "\n")


def _generation_zero(config: ChainConfig) -> np.ndarray:
    if config.start is None:
        return make_grids(config.grid, config.n_samples, seed=derived_seed(config.seed, 0, "data"))
    images = read_idx(config.start)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise RunError(f"{config.start}: a start dataset must be uint8 (n, H, W), got {images.dtype} {images.shape}")
    if config.grid is not None and images.shape[1:] != (config.grid.height, config.grid.width):
        raise RunError(
            f"{config.start}: images are {images.shape[1:]}, the grid is {(config.grid.height, config.grid.width)}"
        )
    return images


def run_chain(
    config: ChainConfig,
    run_dir: str | os.PathLike,
    *,
    progress: bool = True,
    on_generation: Callable[[Run, int], None] | None = None,
) -> Run:
    """Run (or resume) a chain and return it.

    Parameters
    ----------
    config : ChainConfig
    run_dir : path
        The run folder; created if missing. If it already holds a run with the
        same config (``device`` and ``generations`` may differ), the chain
        continues after its last finished generation, and the result is
        byte-identical to an uninterrupted run.
    progress : bool
        Show tqdm bars (generations, and epochs inside each).
    on_generation : callable, optional
        Called as ``on_generation(run, k)`` after generation k is on disk
        (e.g. to update a live plot).

    Returns
    -------
    Run

    Raises
    ------
    RunError
        The folder holds a different run, or a non-run, or fails its checksums.
    """
    import torch
    from tqdm.auto import tqdm

    from .models import build_model
    from .train import TrainConfig, generate, resolve_device, train_vae

    path = Path(run_dir)
    path.mkdir(parents=True, exist_ok=True)
    with _exclusive(path):
        run = _open_or_create(config, path)
        config = run.config
        device = resolve_device(config.device)
        train_config = TrainConfig(
            epochs=config.epochs,
            batch_size=config.batch_size,
            lr=config.lr,
            kl_weight=config.kl_weight,
            variability_weight=config.variability_weight,
        )
        if len(run) == 0:
            t0 = time.perf_counter()
            images = _generation_zero(config)
            _finish_generation(
                run,
                0,
                {DATA_FILE: encode_idx(images, compress=True)},
                {"wall_s": time.perf_counter() - t0, "device": "cpu", "image_shape": list(images.shape[1:]),
                 "n_images": len(images), "source": config.start or "grid"},
            )
            run._images[0] = images
            if on_generation:
                on_generation(run, 0)
        height, width = run.records[0]["image_shape"]
        todo = range(len(run), config.generations + 1)
        bar = tqdm(total=config.generations, initial=len(run) - 1, desc="generations", unit="gen",
                   disable=not progress or not todo)
        with bar:
            for k in todo:
                t0 = time.perf_counter()
                train_images, origin = training_set(config, k, run.images)
                torch.manual_seed(derived_seed(config.seed, k, "init"))
                model = build_model(config.model, height=height, width=width, latent_size=config.latent_size)
                model = model.to(device)
                losses = train_vae(model, train_images, train_config, seed=derived_seed(config.seed, k, "train"),
                                   progress=progress, desc=f"model {k}")
                images = generate(model, config.n_samples, scale=config.sample_scale,
                                  seed=derived_seed(config.seed, k, "sample"))
                images = denoise(images, config.denoise_threshold)
                state = io.BytesIO()
                torch.save({name: t.detach().cpu() for name, t in model.state_dict().items()}, state)
                counts = {str(int(o)): int(c) for o, c in zip(*np.unique(origin, return_counts=True))}
                _finish_generation(
                    run,
                    k,
                    {
                        DATA_FILE: encode_idx(images, compress=True),
                        MODEL_FILE: state.getvalue(),
                        LOSSES_FILE: json.dumps({n: [float(v) for v in a] for n, a in losses.items()}).encode(),
                    },
                    {"wall_s": time.perf_counter() - t0, "device": str(device), "n_images": len(images),
                     "n_train": len(train_images), "train_origin": counts},
                )
                run._images[k] = images
                bar.update(1)
                if on_generation:
                    on_generation(run, k)
    return run
