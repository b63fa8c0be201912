"""Training and sampling of one VAE of the chain.

The loss is the original's (see :func:`vae_loss`); the optimiser is Adam; the
data of one generation is held as a single preloaded float32 tensor and each
epoch visits it in a fresh random order, in mini-batches that are plain slices
of one shuffled copy (no ``DataLoader``, no per-image Python work).

Why the loop looks the way it does (measured on a 2-core CPU, see
``benchmarks/README.md``):

- one gather per epoch (``data[perm]``) and contiguous batch slices, instead of
  a ``Dataset`` converting one image at a time and a collate per batch;
- Adam with ``fused=True`` (one pass over parameters, gradients and moments
  instead of a Python loop of ~10 elementwise kernels per parameter);
- ``zero_grad(set_to_none=True)`` and, on Linux/glibc, a malloc setting that
  keeps freed multi-megabyte buffers in the heap (:func:`_keep_freed_memory`):
  without it every step returns the ~7 MB weight gradients of the Conv model to
  the kernel and page-faults them back in;
- the loss terms are accumulated into a tensor and read once per epoch (no
  ``.item()`` per step);
- on the CPU, the encoder's 3 x 3 convolution computed as one batched matmul
  (``models.MatmulConv2d``, part of the model) and oneDNN switched off for the
  decoder's transposed convolution (:func:`_fast_cpu_kernels`): both measured
  2-3x faster than PyTorch's default kernels for these shapes.

None of this changes the mathematics: ``tests/test_train.py`` trains this
loop and a plain one (per-image conversion, for-loop Adam, ``.item()`` per
step) from the same weights and seed and finds the same per-epoch losses to
1e-4 relative.

Reproducibility: ``train_vae(..., seed=s)`` fixes the shuffling (a private CPU
``torch.Generator`` seeded with ``s``) and the reparameterisation noise (the
global RNG, seeded with ``s`` inside ``torch.random.fork_rng``, so the caller's
global RNG state is left untouched). The initial weights are the caller's:
``build_model(name, seed=...)`` or ``torch.manual_seed`` before it. Same seed,
same data, same initial weights -> identical losses and weights on the CPU.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import sys
import warnings
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from .models import VAE

__all__ = [
    "LossTerms",
    "vae_loss",
    "batch_variability",
    "TrainConfig",
    "train_vae",
    "generate",
    "resolve_device",
    "images_to_tensor",
]

LOSS_KEYS = ("total", "recon", "kl", "variability")


# --------------------------------------------------------------------------- #
# Loss
# --------------------------------------------------------------------------- #


class LossTerms(NamedTuple):
    """The terms of :func:`vae_loss`, each a scalar tensor summed over the batch."""

    total: Tensor
    recon: Tensor
    kl: Tensor
    variability: Tensor


def batch_variability(b: Tensor) -> Tensor:
    """The original's VAR of a batch: pairwise squared differences over the batch size.

    ``VAR(b) = sum_{i < B//2} ||b[2i] - b[2i+1]||^2 / B``: items 0-1, 2-3, ...
    are paired, the squared differences are summed over all pixels and pairs,
    and divided by the batch size ``B`` (not the number of pairs). With an odd
    ``B`` the last item is in no pair (but still counts in ``B``).

    Parameters
    ----------
    b : Tensor, shape (B, ...), B >= 1

    Returns
    -------
    Tensor, scalar
    """
    size = b.shape[0]
    pairs = size // 2
    if pairs == 0:
        return b.new_zeros(())
    even = b[0 : 2 * pairs : 2]
    odd = b[1 : 2 * pairs : 2]
    return (even - odd).pow(2).sum() / size


def vae_loss(
    x: Tensor,
    x_hat: Tensor,
    mu: Tensor,
    logvar: Tensor,
    kl_weight: float = 1.0,
    variability_weight: float = 0.0,
) -> LossTerms:
    """The original's loss, summed over the batch.

    ``total = recon + kl_weight * kl + variability_weight * variability`` with

    - ``recon = sum (x_hat - x)^2`` over all pixels and images (SSE);
    - ``kl = -1/2 * sum (1 + logvar - mu^2 - exp(logvar))`` over all latent
      dimensions and images: KL(q(z|x) || N(0, I)) of the diagonal Gaussians;
    - ``variability = |VAR(x) - VAR(x_hat)|`` with VAR of
      :func:`batch_variability` (pairs 0-1, 2-3, ..., sum of squared
      differences divided by the batch size; an odd last item is in no pair).

    ``recon``, ``kl`` and ``variability`` are returned unweighted. When
    ``variability_weight == 0`` the variability is still reported but computed
    without gradient (it does not enter ``total``).

    Parameters
    ----------
    x, x_hat : Tensor, shape (B, 1, H, W), pixels in [0, 1]
        Batch and its reconstruction.
    mu, logvar : Tensor, shape (B, latent)
        Posterior mean and log-variance.
    kl_weight : float
        lambda, the "regularization constant" (original default 1).
    variability_weight : float
        K, the "variability constant" (original default 0).

    Returns
    -------
    LossTerms
        ``(total, recon, kl, variability)``, scalar tensors.
    """
    recon = F.mse_loss(x_hat, x, reduction="sum")
    kl = -0.5 * torch.sum(1.0 + logvar - mu.square() - logvar.exp())
    total = recon + kl if kl_weight == 1.0 else recon + kl_weight * kl
    if variability_weight != 0.0:
        variability = (batch_variability(x) - batch_variability(x_hat)).abs()
        total = total + variability_weight * variability
    else:
        with torch.no_grad():
            variability = (batch_variability(x) - batch_variability(x_hat)).abs()
    return LossTerms(total, recon, kl, variability)


# --------------------------------------------------------------------------- #
# Configuration and devices
# --------------------------------------------------------------------------- #


@dataclass
class TrainConfig:
    """Hyper-parameters of one generation (defaults: the original's).

    Attributes
    ----------
    epochs : int, > 0
    batch_size : int, > 0
    lr : float, > 0
        Adam learning rate.
    kl_weight : float, >= 0
        lambda in :func:`vae_loss`.
    variability_weight : float, >= 0
        K in :func:`vae_loss`.
    """

    epochs: int = 5
    batch_size: int = 32
    lr: float = 1e-3
    kl_weight: float = 1.0
    variability_weight: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value!r}")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if int(value) != value or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
            setattr(self, name, int(value))
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        for name in ("kl_weight", "variability_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be non-negative, got {getattr(self, name)!r}")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn "cpu", "cuda" (or "cuda:N"), "mps" or "auto" into a ``torch.device``.

    "auto" picks CUDA if available, then MPS, else the CPU.

    Raises
    ------
    ValueError
        If an explicitly requested device is unavailable or the name is unknown.
    """
    name = str(device).lower()
    mps_ok = hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_ok else torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"unknown device {device!r}; use 'cpu', 'cuda', 'mps' or 'auto'") from e
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but CUDA is not available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s)")
        return dev
    if dev.type == "mps":
        if not mps_ok:
            raise ValueError("device 'mps' requested but MPS is not available")
        return dev
    raise ValueError(f"unsupported device {device!r}; use 'cpu', 'cuda', 'mps' or 'auto'")


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #

_MALLOC_TUNED = False


def _keep_freed_memory() -> None:
    """On glibc, stop returning freed buffers of up to 32 MiB to the kernel.

    glibc serves large allocations with ``mmap`` and gives them back on
    ``free``; autograd allocates and frees the same multi-megabyte gradient and
    activation buffers every step, so every step page-faults ~2-3k fresh pages
    (measured: the Conv model's weight-gradient matmuls took 3-4x longer). Fixing
    the mmap threshold at 32 MiB and raising the trim threshold keeps those
    buffers in the heap for reuse. Process-wide, applied once, CPU only; a
    no-op elsewhere.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED or not sys.platform.startswith("linux"):
        return
    _MALLOC_TUNED = True
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
        libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024)
        libc.mallopt(m_trim_threshold, 1024 * 1024 * 1024)
        libc.mallopt(m_top_pad, 64 * 1024 * 1024)
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to tune
        pass


@contextlib.contextmanager
def _fast_cpu_kernels(device: torch.device):
    """On the CPU, run with oneDNN (mkldnn) convolutions switched off.

    For the decoder's ConvTranspose2d(32 -> 1, 3 x 3) on 22 x 22 maps PyTorch's
    native kernels are faster than oneDNN's (measured at batch 32: forward 0.5
    ms instead of 1.7 ms, forward+backward ~2 ms instead of ~6 ms; decoding
    20,000 Conv images ~1.0 s instead of ~1.4 s). The encoder's Conv2d does
    not use either (``models.MatmulConv2d``). Same mathematics; the global flag
    is restored on exit.
    """
    if device.type != "cpu":
        yield
        return
    flags = torch.backends.mkldnn.flags(enabled=False)
    # Setting the flags warns about TF32 on Intel GPUs, irrelevant here; silence
    # only that, not the warnings of the training or sampling inside.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flags.__enter__()
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            flags.__exit__(None, None, None)


def images_to_tensor(images: np.ndarray | Tensor, device: torch.device | str = "cpu") -> Tensor:
    """One float32 tensor (N, 1, H, W) in [0, 1] from images (N, H, W).

    ``uint8`` images are divided by 255; floating images are taken as already
    in [0, 1]. The conversion happens once, on ``device``.
    """
    t = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    if t.ndim != 3:
        raise ValueError(f"images must have shape (N, H, W), got {tuple(t.shape)}")
    if t.dtype == torch.uint8:
        return t.to(device).to(torch.float32).div_(255.0).unsqueeze(1)
    if t.is_floating_point():
        return t.to(device=device, dtype=torch.float32).unsqueeze(1).contiguous()
    raise ValueError(f"images must be uint8 (or float in [0, 1]), got {t.dtype}")


def _make_adam(model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam with the fused kernel where the device supports it, else foreach."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam(model.parameters(), lr=lr, foreach=True)


def _model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


# --------------------------------------------------------------------------- #
# Training
# --------------------------------------------------------------------------- #


def train_vae(
    model: VAE,
    images: np.ndarray | Tensor,
    config: TrainConfig | None = None,
    *,
    seed: int,
    progress: bool = True,
    desc: str = "",
) -> dict[str, np.ndarray]:
    """Train ``model`` in place on ``images`` with Adam and the original's loss.

    Each epoch draws a permutation ``torch.randperm(N, generator=g)`` from a CPU
    generator ``g`` seeded with ``seed`` and visits the data in batches
    ``perm[0:B], perm[B:2B], ...`` (the last batch may be smaller). The
    reparameterisation noise comes from the global RNG seeded with ``seed``
    inside ``torch.random.fork_rng`` (the caller's RNG state is restored).

    Parameters
    ----------
    model : VAE
        Trained in place, on the device its parameters are on.
    images : ndarray or Tensor, shape (N, H, W), uint8 (0..255)
        (float in [0, 1] is accepted too). Converted once to one float32 tensor
        on the model's device.
    config : TrainConfig, optional
        Defaults to ``TrainConfig()`` (the original's settings).
    seed : int
        Fixes shuffling and noise.
    progress : bool
        Show a ``tqdm.auto`` bar over all batches of all epochs.
    desc : str
        Label of the bar.

    Returns
    -------
    dict of str -> ndarray, shape (epochs,), float64
        "total", "recon", "kl", "variability": per-epoch means per image of the
        :func:`vae_loss` terms (batch sums added up over the epoch, divided by N).
    """
    config = TrainConfig() if config is None else config
    device = _model_device(model)
    data = images_to_tensor(images, device)
    n, _, height, width = data.shape
    if n == 0:
        raise ValueError("images is empty")
    if (height, width) != (model.height, model.width):
        raise ValueError(f"images are {height} x {width}, model expects {model.height} x {model.width}")
    if device.type == "cpu":
        _keep_freed_memory()

    bs = config.batch_size
    n_batches = math.ceil(n / bs)
    kl_w, var_w = float(config.kl_weight), float(config.variability_weight)
    opt = _make_adam(model, config.lr)
    shuffle_gen = torch.Generator().manual_seed(int(seed))
    history = np.zeros((config.epochs, len(LOSS_KEYS)))
    sums = torch.zeros(len(LOSS_KEYS), device=device)
    fork_devices = [device.index or 0] if device.type == "cuda" else []

    model.train()
    bar = tqdm(total=config.epochs * n_batches, desc=desc or "train", disable=not progress, leave=False, unit="batch")
    with torch.random.fork_rng(devices=fork_devices), _fast_cpu_kernels(device):
        torch.manual_seed(int(seed))
        for epoch in range(config.epochs):
            perm = torch.randperm(n, generator=shuffle_gen).to(device)
            shuffled = data.index_select(0, perm)  # one gather; batches are views
            sums.zero_()
            for start in range(0, n, bs):
                xb = shuffled[start : start + bs]
                x_hat, mu, logvar = model(xb)
                terms = vae_loss(xb, x_hat, mu, logvar, kl_w, var_w)
                opt.zero_grad(set_to_none=True)
                terms.total.backward()
                opt.step()
                sums += torch.stack(terms).detach()
                bar.update(1)
            history[epoch] = sums.double().cpu().numpy() / n  # one device sync per epoch
            bar.set_postfix(epoch=epoch + 1, loss=f"{history[epoch, 0]:.3f}")
    bar.close()
    return {key: history[:, i].copy() for i, key in enumerate(LOSS_KEYS)}


# --------------------------------------------------------------------------- #
# Sampling
# --------------------------------------------------------------------------- #


def generate(
    model: VAE,
    n: int,
    *,
    scale: float = 1.0,
    seed: int,
    batch_size: int = 256,
) -> np.ndarray:
    """Sample a dataset from the model, as the original stored it.

    Latents ``z ~ N(0, scale^2 I)`` are drawn on the CPU from a generator seeded
    with ``seed`` (so the latents do not depend on the device or the batch
    size), decoded in batches under ``torch.inference_mode``, scaled by 255,
    rounded (half to even) and stored as ``uint8``.

    Parameters
    ----------
    model : VAE
    n : int, >= 0
        Number of images.
    scale : float, > 0
        Standard deviation of the latent prior, ``1 + delta``.
    seed : int
    batch_size : int, > 0
        Images decoded per forward pass (memory/speed only). 256 keeps the
        Conv decoder's 32 x 22 x 22 maps at ~16 MB, inside a 32 MB L3 cache:
        measured 1.1-1.2 s for 20,000 Conv images against 2.1-2.2 s at 512
        on this project's 2-core machine.

    Returns
    -------
    ndarray, shape (n, H, W), uint8
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    device = _model_device(model)
    gen = torch.Generator().manual_seed(int(seed))
    z_all = torch.randn(n, model.latent_size, generator=gen)
    if scale != 1.0:
        z_all.mul_(float(scale))
    out = torch.empty(n, model.height, model.width, dtype=torch.uint8)
    was_training = model.training
    model.eval()
    with torch.inference_mode(), _fast_cpu_kernels(device):
        for start in range(0, n, batch_size):
            z = z_all[start : start + batch_size].to(device)
            x = model.decode(z).mul_(255.0).round_()
            out[start : start + batch_size] = x.reshape(-1, model.height, model.width).to("cpu", torch.uint8)
    model.train(was_training)
    return out.numpy()
