"""Loss, configuration, training and sampling."""

import math

import numpy as np
import pytest
import torch

from encchain.models import build_model
from encchain.train import (
    LossTerms,
    TrainConfig,
    batch_variability,
    generate,
    images_to_tensor,
    resolve_device,
    train_vae,
    vae_loss,
)


def blob_images(n: int, size: int = 12, seed: int = 0) -> np.ndarray:
    """n uint8 grids with one clipped 3x3 blob each."""
    rng = np.random.default_rng(seed)
    cy, cx = rng.integers(0, size, n), rng.integers(0, size, n)
    rows = np.arange(size)
    my = np.abs(rows[None] - cy[:, None]) <= 1
    mx = np.abs(rows[None] - cx[:, None]) <= 1
    return (my[:, :, None] & mx[:, None, :]).astype(np.uint8) * 255


# --------------------------------------------------------------------------- #
# Loss against hand-computed numbers
# --------------------------------------------------------------------------- #


def test_vae_loss_hand_computed_odd_batch():
    # three 1 x 2 images; the odd last item is in no VAR pair but counts in B = 3
    x = torch.tensor([[0.0, 1.0], [1.0, 1.0], [0.0, 0.0]]).reshape(3, 1, 1, 2)
    x_hat = torch.tensor([[0.5, 0.5], [1.0, 0.0], [0.0, 1.0]]).reshape(3, 1, 1, 2)
    mu = torch.tensor([[0.0, 1.0], [2.0, 0.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, 0.0], [0.0, math.log(2.0)], [0.0, 0.0]])
    # SSE: (0.25 + 0.25) + (0 + 1) + (0 + 1)
    recon = 2.5
    # KL elements: mu=1 -> 0.5; mu=2 -> 2; logvar=ln2 -> -0.5 (1 + ln2 - 2)
    kl = 0.5 + 2.0 + 0.5 * (1.0 - math.log(2.0))
    # VAR(x) = |x0 - x1|^2 / 3 = 1/3; VAR(x_hat) = (0.25 + 0.25) / 3 = 1/6
    var = abs(1 / 3 - 1 / 6)
    terms = vae_loss(x, x_hat, mu, logvar, kl_weight=0.5, variability_weight=3.0)
    assert isinstance(terms, LossTerms)
    assert terms.recon.item() == pytest.approx(recon)
    assert terms.kl.item() == pytest.approx(kl)
    assert terms.variability.item() == pytest.approx(var)
    assert terms.total.item() == pytest.approx(recon + 0.5 * kl + 3.0 * var)
    assert all(t.ndim == 0 for t in terms)


def test_vae_loss_defaults_and_even_batch():
    x = torch.tensor([[1.0], [0.0], [1.0], [1.0]]).reshape(4, 1, 1, 1)
    x_hat = torch.tensor([[0.5], [0.5], [0.0], [1.0]]).reshape(4, 1, 1, 1)
    mu = torch.zeros(4, 2)
    logvar = torch.zeros(4, 2)
    # VAR(x) = (1 + 0) / 4; VAR(x_hat) = (0 + 1) / 4 -> variability 0
    assert batch_variability(x).item() == pytest.approx(0.25)
    assert batch_variability(x_hat).item() == pytest.approx(0.25)
    terms = vae_loss(x, x_hat, mu, logvar)  # lambda = 1, K = 0
    assert terms.recon.item() == pytest.approx(0.25 + 0.25 + 1.0)
    assert terms.kl.item() == pytest.approx(0.0)
    assert terms.total.item() == pytest.approx(1.5)
    # a single image has no pair
    assert batch_variability(x[:1]).item() == 0.0


def test_vae_loss_gradients():
    x = torch.rand(5, 1, 3, 3)
    x_hat = torch.rand(5, 1, 3, 3, requires_grad=True)
    mu = torch.randn(5, 4, requires_grad=True)
    logvar = torch.randn(5, 4, requires_grad=True)
    t0 = vae_loss(x, x_hat, mu, logvar)
    assert not t0.variability.requires_grad  # K = 0: reported, not differentiated
    t0.total.backward()
    g0 = x_hat.grad.clone()
    x_hat.grad = None
    t1 = vae_loss(x, x_hat, mu, logvar, variability_weight=2.0)
    t1.total.backward()
    assert not torch.allclose(g0, x_hat.grad)


# --------------------------------------------------------------------------- #
# Configuration and devices
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "kw, field",
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 2.5}, "epochs"),
        ({"batch_size": -1}, "batch_size"),
        ({"lr": 0.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"kl_weight": -0.1}, "kl_weight"),
        ({"variability_weight": -1}, "variability_weight"),
        ({"epochs": True}, "epochs"),
    ],
)
def test_train_config_validation(kw, field):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**kw)


def test_train_config_defaults():
    c = TrainConfig()
    assert (c.epochs, c.batch_size, c.lr, c.kl_weight, c.variability_weight) == (5, 32, 1e-3, 1.0, 0.0)
    assert TrainConfig(kl_weight=0, variability_weight=10).variability_weight == 10


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            resolve_device("cuda")
    with pytest.raises(ValueError):
        resolve_device("tpu")


def test_images_to_tensor():
    imgs = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    t = images_to_tensor(imgs)
    assert t.shape == (1, 1, 2, 2) and t.dtype == torch.float32
    assert torch.allclose(t.flatten(), torch.tensor([0.0, 1.0, 0.2, 0.4]))
    assert torch.equal(images_to_tensor(torch.from_numpy(imgs)), t)
    with pytest.raises(ValueError):
        images_to_tensor(np.zeros((2, 3), np.uint8))
    with pytest.raises(ValueError):
        images_to_tensor(np.zeros((2, 3, 3), np.int64))


# --------------------------------------------------------------------------- #
# Training
# --------------------------------------------------------------------------- #


def test_train_vae_history_and_determinism():
    imgs = blob_images(100)
    cfg = TrainConfig(epochs=3, batch_size=16)
    state = torch.random.get_rng_state()
    a = build_model("fc1", 12, 12, seed=1)
    ha = train_vae(a, imgs, cfg, seed=5, progress=False)
    assert torch.equal(torch.random.get_rng_state(), state)  # caller's RNG untouched
    assert set(ha) == {"total", "recon", "kl", "variability"}
    assert all(v.shape == (3,) and np.isfinite(v).all() for v in ha.values())
    np.testing.assert_allclose(ha["total"], ha["recon"] + ha["kl"], rtol=1e-5)
    assert ha["total"][-1] < ha["total"][0]
    b = build_model("fc1", 12, 12, seed=1)
    hb = train_vae(b, torch.from_numpy(imgs), cfg, seed=5, progress=False)
    for k in ha:
        np.testing.assert_array_equal(ha[k], hb[k])
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    c = build_model("fc1", 12, 12, seed=1)
    hc = train_vae(c, imgs, cfg, seed=6, progress=False)
    assert not np.array_equal(ha["total"], hc["total"])


def test_train_vae_rejects_wrong_shape():
    with pytest.raises(ValueError, match="12 x 12"):
        train_vae(build_model("fc1", 12, 12), blob_images(10, size=10), TrainConfig(epochs=1), seed=0, progress=False)


def _plain_reference(model, images, cfg, seed):
    """The original's loop, written plainly: per-image conversion, per-batch stacking,
    for-loop Adam, loss written out by hand, .item() per step. Same order of
    batches and the same noise stream as train_vae's documented seeding."""
    data = [torch.from_numpy(im).float().unsqueeze(0) / 255.0 for im in images]
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, foreach=False, fused=False)
    g = torch.Generator().manual_seed(seed)
    hist = {k: [] for k in ("total", "recon", "kl", "variability")}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(cfg.epochs):
            perm = torch.randperm(len(data), generator=g)
            sums = dict.fromkeys(hist, 0.0)
            for start in range(0, len(data), cfg.batch_size):
                x = torch.stack([data[i] for i in perm[start : start + cfg.batch_size].tolist()])
                x_hat, mu, logvar = model(x)
                recon = ((x_hat - x) ** 2).sum()
                kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())

                def var(b):
                    s = sum(((b[i] - b[i + 1]) ** 2).sum() for i in range(0, len(b) - 1, 2))
                    return s / len(b)

                variability = torch.abs(var(x) - var(x_hat))
                loss = recon + cfg.kl_weight * kl + cfg.variability_weight * variability
                opt.zero_grad()
                loss.backward()
                opt.step()
                for k, v in zip(hist, (loss, recon, kl, variability)):
                    sums[k] += float(v.item())
            for k in hist:
                hist[k].append(sums[k] / len(data))
    return {k: np.array(v) for k, v in hist.items()}


@pytest.mark.parametrize("arch", ["conv", "fc2"])
def test_fast_path_matches_plain_reference(arch):
    """The default (fast) train_vae equals a plain loop up to floating-point noise."""
    imgs = blob_images(301, size=12, seed=2)  # odd n: last batch of 13 has an unpaired image
    cfg = TrainConfig(epochs=2, batch_size=32, kl_weight=0.7, variability_weight=2.0)
    fast_model = build_model(arch, 12, 12, seed=4)
    ref_model = build_model(arch, 12, 12, seed=4)
    fast = train_vae(fast_model, imgs, cfg, seed=9, progress=False)
    ref = _plain_reference(ref_model, imgs, cfg, seed=9)
    for k in fast:
        np.testing.assert_allclose(fast[k], ref[k], rtol=1e-4, atol=1e-6, err_msg=k)
    # Weights: Adam divides by sqrt(v), so parameters whose gradients are ~0
    # move by up to lr per step on floating-point noise alone; compare loosely.
    for (name, pf), pr in zip(fast_model.named_parameters(), ref_model.parameters()):
        torch.testing.assert_close(pf, pr, rtol=0, atol=2 * cfg.lr, msg=name)


# --------------------------------------------------------------------------- #
# Sampling
# --------------------------------------------------------------------------- #


def test_generate():
    model = build_model("conv", 10, 12, seed=0)
    out = generate(model, 50, seed=3, batch_size=16)
    assert out.dtype == np.uint8 and out.shape == (50, 10, 12)
    np.testing.assert_array_equal(out, generate(model, 50, seed=3, batch_size=7))  # batch size is irrelevant
    assert not np.array_equal(out, generate(model, 50, seed=4))
    assert not np.array_equal(out, generate(model, 50, seed=3, scale=1.4))
    # the same as decoding the seeded latents by hand
    z = torch.randn(50, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        by_hand = (model.decode(z) * 255).round().to(torch.uint8).numpy()[:, 0]
    np.testing.assert_array_equal(out, by_hand)
    assert model.training  # mode restored
    assert generate(model, 0, seed=0).shape == (0, 10, 12)
    with pytest.raises(ValueError):
        generate(model, -1, seed=0)
