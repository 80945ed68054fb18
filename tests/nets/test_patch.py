"""UNet(patch_size=p): the network runs on p×p pixel blocks folded into channels (pixel_unshuffle)."""
import pytest
import torch
import torch.nn.functional as F

import ddim_edu as de
from ddim_edu.nets import UNet, build_model


def _net(**kw):
    torch.manual_seed(0)
    return UNet(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, groups=4, **kw)


@pytest.mark.parametrize("size", [28, 32])
def test_patch_unet_shape_dtype_and_zero_start(size):
    net = _net(patch_size=2)
    x, t = torch.randn(3, 1, size, size, dtype=torch.float64), torch.tensor([0, 500, 999])
    out = net(x, t)
    assert out.shape == x.shape and out.dtype == torch.float64
    assert torch.equal(out, torch.zeros_like(out))          # conv_out is zero-initialised: ε̂ = 0 at the start
    assert net.conv_in.in_channels == 4 and net.conv_out.out_channels == 4


def test_patch_unet_is_the_plain_network_on_folded_pixels():
    """The patched UNet's body is an ordinary UNet on [B, 4, 14, 14] inputs: fold, run, unfold."""
    torch.manual_seed(1)
    patched = _net(patch_size=2)
    for p in patched.conv_out.parameters():                  # give the output layer non-zero weights
        torch.nn.init.normal_(p, std=0.1)
    plain = UNet(in_channels=4, base_channels=8, channel_mults=(1, 2), num_res_blocks=1, groups=4)
    plain.load_state_dict(patched.state_dict())
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([10, 900])
    want = F.pixel_shuffle(plain(F.pixel_unshuffle(x, 2), t), 2)
    torch.testing.assert_close(patched(x, t), want, rtol=0, atol=0)
    # a pixel's output depends on the pixels of other blocks too (the convolutions see neighbouring blocks)
    x2 = x.clone()
    x2[:, :, 0, 0] += 1.0
    assert not torch.equal(patched(x2, t)[:, :, 27, 27], patched(x, t)[:, :, 27, 27])


def test_patch_size_in_config_round_trip_and_default_config_unchanged():
    assert "patch_size" not in _net().config                 # configs saved before patch_size stay identical
    net = _net(patch_size=2)
    assert net.config["patch_size"] == 2
    rebuilt = build_model(net.config)
    rebuilt.load_state_dict(net.state_dict())
    assert rebuilt.patch_size == 2


def test_patch_size_refusals():
    with pytest.raises(ValueError, match="patch_size"):
        _net(patch_size=0)
    with pytest.raises(ValueError, match=r"multiples of patch_size=3"):
        _net(patch_size=3)(torch.randn(1, 1, 28, 28), torch.tensor([5]))


def test_patch_unet_with_every_sampler():
    net = _net(patch_size=2).eval()
    sched = de.NoiseSchedule.linear(1000)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        out = de.ddim_sample(net, x, sched, steps=3, progress=False)
    assert out.shape == x.shape and torch.isfinite(out).all()
