"""Shapes, registry and cost model of the four VAE architectures."""

import pytest
import torch

from encchain.models import MODELS, VAE, build_model, count_flops

SHAPES = [(24, 24), (16, 20)]


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("hw", SHAPES)
def test_shapes(name, hw):
    h, w = hw
    model = build_model(name, height=h, width=w, latent_size=5, seed=0)
    assert isinstance(model, VAE)
    assert (model.height, model.width, model.latent_size, model.name) == (h, w, 5, name)
    x = torch.rand(3, 1, h, w)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (3, 5)
    x_hat = model.decode(mu).detach()
    assert x_hat.shape == (3, 1, h, w)
    assert float(x_hat.min()) > 0 and float(x_hat.max()) < 1
    x_hat, mu2, logvar2 = model(x)
    assert x_hat.shape == (3, 1, h, w) and mu2.shape == (3, 5) and logvar2.shape == (3, 5)
    for scale in (1.0, 1.7):
        s = model.sample(4, scale=scale, generator=torch.Generator().manual_seed(1))
        assert s.shape == (4, 1, h, w) and not s.requires_grad
        assert float(s.min()) >= 0 and float(s.max()) <= 1
    assert model.sample(0).shape == (0, 1, h, w)


def test_original_layer_sizes():
    """The original's 24 x 24 layer sizes, exactly."""

    def linears(m):
        return [(l.in_features, l.out_features) for l in m.modules() if isinstance(l, torch.nn.Linear)]

    assert linears(build_model("fc1")) == [(576, 115), (115, 8), (115, 8), (8, 115), (115, 576)]
    assert linears(build_model("fc2")) == [(576, 144), (144, 28), (28, 8), (28, 8), (8, 28), (28, 144), (144, 576)]
    conv = build_model("conv")
    assert linears(conv) == [(15488, 115), (115, 8), (115, 8), (8, 115), (115, 15488)]
    c = [m for m in conv.modules() if isinstance(m, torch.nn.Conv2d)][0]
    t = [m for m in conv.modules() if isinstance(m, torch.nn.ConvTranspose2d)][0]
    assert (c.in_channels, c.out_channels, c.kernel_size, c.padding) == (1, 32, (3, 3), (0, 0))
    assert (t.in_channels, t.out_channels, t.kernel_size, t.padding) == (32, 1, (3, 3), (0, 0))
    assert linears(build_model("asymm")) == [(15488, 115), (115, 8), (115, 8), (8, 28), (28, 144), (144, 576)]
    # the conv encoder maps are 32 x 22 x 22
    assert conv.encoder.net[0](torch.zeros(1, 1, 24, 24)).shape == (1, 32, 22, 22)


def test_registry_and_errors():
    assert set(MODELS) == {"fc1", "fc2", "conv", "asymm"}
    assert build_model("CONV").name == "conv"
    with pytest.raises(ValueError, match="asymm, conv, fc1, fc2"):
        build_model("resnet")
    for kw in ({"height": 0}, {"width": -3}, {"latent_size": 0}):
        with pytest.raises(ValueError):
            build_model("fc1", **kw)
    with pytest.raises(ValueError):
        build_model("conv", height=2, width=24)


def test_build_model_seed():
    a = build_model("fc2", seed=3)
    state = torch.random.get_rng_state()
    b = build_model("fc2", seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    torch.manual_seed(3)
    c = build_model("fc2")  # same as seeding the global RNG first
    for pa, pc in zip(a.parameters(), c.parameters()):
        assert torch.equal(pa, pc)


def test_count_flops():
    # FC1: MACs = 576*115 + 2*115*8 + 8*115 + 115*576
    assert count_flops(build_model("fc1")) == 6 * (576 * 115 + 2 * 115 * 8 + 8 * 115 + 115 * 576)
    conv_macs = 32 * 9 * 22 * 22 + 15488 * 115 + 2 * 115 * 8 + 8 * 115 + 115 * 15488 + 32 * 9 * 22 * 22
    assert count_flops(build_model("conv")) == 6 * conv_macs
    model = build_model("asymm")
    state = torch.random.get_rng_state()
    count_flops(model)
    assert torch.equal(torch.random.get_rng_state(), state)  # no RNG draw
    assert count_flops(build_model("asymm", 16, 20)) > 0


@pytest.mark.parametrize("c_in, c_out, k, h, w", [(1, 32, 3, 24, 24), (2, 3, 3, 7, 5), (1, 4, 2, 4, 6)])
def test_matmul_conv_matches_conv2d(c_in, c_out, k, h, w):
    """The CPU matmul convolution is F.conv2d: same outputs and gradients (float64)."""
    from encchain.models import MatmulConv2d

    torch.manual_seed(0)
    conv = MatmulConv2d(c_in, c_out, k).double()
    ref = torch.nn.Conv2d(c_in, c_out, k).double()
    ref.load_state_dict(conv.state_dict())  # same parameter names and shapes
    x = torch.randn(3, c_in, h, w, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    grad_out = torch.randn(3, c_out, h - k + 1, w - k + 1, dtype=torch.float64)
    out, out_ref = conv(x), ref(x_ref)
    torch.testing.assert_close(out, out_ref, rtol=1e-12, atol=1e-12)
    out.backward(grad_out)
    out_ref.backward(grad_out)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(conv.weight.grad, ref.weight.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(conv.bias.grad, ref.bias.grad, rtol=1e-12, atol=1e-12)


def test_matmul_conv_falls_back_for_other_settings():
    """Padding, stride or groups go to nn.Conv2d's kernel, no bias to the matmul: all equal F.conv2d."""
    from encchain.models import MatmulConv2d

    torch.manual_seed(0)
    x = torch.randn(2, 2, 9, 9)
    for kwargs in ({"padding": 1}, {"stride": 2}, {"groups": 2}, {"bias": False}):
        conv = MatmulConv2d(2, 4, 3, **kwargs)
        expected = torch.nn.functional.conv2d(
            x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups
        )
        torch.testing.assert_close(conv(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["conv", "asymm"])
def test_conv_models_keep_state_dict_keys(name):
    """Weights saved before the matmul convolution load unchanged (same keys, same shapes)."""
    model = build_model(name, seed=0)
    assert isinstance(model.encoder.net[0], torch.nn.Conv2d)
    assert tuple(model.state_dict()["encoder.net.0.weight"].shape) == (32, 1, 3, 3)
