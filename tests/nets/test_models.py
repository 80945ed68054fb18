"""Tests for ddim_edu.nets: the time-conditioned UNet and the 2-D MLP ε-models."""
import copy
import json
import math

import pytest
import torch
from torch import nn

from ddim_edu.nets import MLPDenoiser, UNet, build_model, count_parameters, timestep_embedding
from ddim_edu.nets.unet import ResBlock


def _unet(**kw):
    torch.manual_seed(0)
    return UNet(**kw)


def _wake(model: nn.Module) -> nn.Module:
    """Replace the zero-initialised output conv by random weights, so outputs and the
    gradients of earlier layers are not trivially zero (as after some training)."""
    torch.manual_seed(1)
    nn.init.normal_(model.conv_out.weight, std=0.1)
    nn.init.normal_(model.conv_out.bias, std=0.1)
    return model


# ----------------------------------------------------------------------------- embedding
def test_timestep_embedding_shape_and_values():
    t = torch.tensor([0, 1, 999])
    emb = timestep_embedding(t, 32)
    assert emb.shape == (3, 32) and emb.dtype == torch.float32
    assert torch.allclose(emb[0, :16], torch.zeros(16)) and torch.allclose(emb[0, 16:], torch.ones(16))
    assert emb[1, 0] == pytest.approx(math.sin(1.0)) and emb[1, 16] == pytest.approx(math.cos(1.0))
    assert not torch.allclose(emb[1], emb[2])


def test_timestep_embedding_odd_dim_pads_zero_column():
    emb = timestep_embedding(torch.tensor([5, 7]), 7)
    assert emb.shape == (2, 7) and torch.all(emb[:, -1] == 0)


def test_timestep_embedding_rejects_float_t():
    with pytest.raises(TypeError, match=r"t must hold integer timesteps.*float32"):
        timestep_embedding(torch.tensor([0.5]), 16)


def test_timestep_embedding_rejects_small_dim():
    with pytest.raises(ValueError, match=r"dim must be in \[2, inf\], got 1"):
        timestep_embedding(torch.tensor([1]), 1)


# ----------------------------------------------------------------------------- UNet
@pytest.mark.parametrize("size", [28, 32])
@pytest.mark.parametrize("attention", [False, True])
def test_unet_output_shape(size, attention):
    model = _unet(attention=attention)
    x = torch.randn(3, 1, size, size)
    out = model(x, torch.tensor([0, 500, 999]))
    assert out.shape == x.shape and out.dtype == torch.float32


def test_unet_three_channels_and_odd_size():
    model = _unet(in_channels=3, base_channels=16, channel_mults=(1, 2, 2, 4), num_res_blocks=1)
    x = torch.randn(2, 3, 28, 28)        # 28 -> 14 -> 7 -> 4 and back to 7 -> 14 -> 28
    assert model(x, torch.tensor([1, 2])).shape == x.shape


def test_unet_zero_init_output():
    model = _unet()
    assert torch.all(model(torch.randn(2, 1, 28, 28), torch.tensor([3, 4])) == 0)


@pytest.mark.parametrize("attention", [False, True])
def test_unet_output_depends_on_t(attention):
    model = _wake(_unet(attention=attention)).eval()
    x = torch.randn(1, 1, 28, 28).repeat(2, 1, 1, 1)
    with torch.no_grad():
        out = model(x, torch.tensor([10, 900]))
        again = model(x, torch.tensor([10, 10]))
    assert (out[0] - out[1]).abs().max() > 1e-3           # same x, different t
    assert torch.allclose(again[0], again[1], atol=1e-6)  # same x, same t


@pytest.mark.parametrize("kw", [{}, {"attention": True}, {"scale_shift": True}])
def test_unet_gradient_reaches_every_parameter(kw):
    model = _wake(_unet(**kw))
    x = torch.randn(2, 1, 28, 28)
    model(x, torch.tensor([5, 700])).pow(2).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("kw", [{}, {"attention": True, "base_channels": 16, "dropout": 0.1},
                                {"scale_shift": True, "zero_init": True, "patch_size": 2},
                                {"mid_blocks": 4, "attention": True}])
def test_unet_build_model_round_trip(kw):
    model = _wake(_unet(**kw)).eval()
    config = json.loads(json.dumps(model.config))
    assert config["type"] == "unet"
    rebuilt = build_model(config).eval()
    assert rebuilt.config == model.config
    sd, sd2 = model.state_dict(), rebuilt.state_dict()
    assert list(sd) == list(sd2) and all(sd[k].shape == sd2[k].shape for k in sd)
    rebuilt.load_state_dict(sd)
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([1, 999])
    with torch.no_grad():
        assert torch.equal(model(x, t), rebuilt(x, t))


def test_unet_config_names_scale_shift_and_zero_init_only_when_set():
    assert not {"scale_shift", "zero_init"} & set(_unet().config)      # older configs stay as they were
    both = _unet(scale_shift=True, zero_init=True).config
    assert both == {**_unet().config, "scale_shift": True, "zero_init": True}


def test_unet_mid_blocks_adds_residual_blocks_at_the_lowest_resolution():
    """Each middle block beyond the second is one more 128→128 residual block: two 3×3 convs
    (2·(9·128² + 128)), two GroupNorms (2·2·128) and the time projection (128·128 + 128)."""
    per_block = 2 * (9 * 128 * 128 + 128) + 2 * 2 * 128 + (128 * 128 + 128)
    base = count_parameters(_unet())
    assert "mid_blocks" not in _unet().config and _unet(mid_blocks=2).config == _unet().config
    for k in (1, 3, 5):
        model = _unet(mid_blocks=k)
        assert model.config["mid_blocks"] == k
        assert count_parameters(model) == base + (k - 2) * per_block
        assert sum(isinstance(m, ResBlock) for m in model.mid) == k
    deep = _wake(_unet(mid_blocks=4, attention=True))
    assert [type(m).__name__ for m in deep.mid] == ["ResBlock", "SelfAttention", "ResBlock", "ResBlock", "ResBlock"]
    deep(torch.randn(2, 1, 28, 28), torch.tensor([5, 700])).pow(2).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in deep.mid.parameters())


def test_resblock_scale_shift_is_groupnorm_times_one_plus_scale_plus_shift():
    """ADM's adaptive GroupNorm (Dhariwal & Nichol 2021): h -> GN(h)(1 + s) + b, s and b from the time
    embedding; computed here by hand from the block's own conv1 and GroupNorm statistics."""
    torch.manual_seed(0)
    block = ResBlock(8, 8, 16, dropout=0.0, groups=2, scale_shift=True).eval()
    x, temb = torch.randn(3, 8, 5, 5), torch.randn(3, 16)
    with torch.no_grad():
        h = block.conv1(torch.nn.functional.silu(block.norm1(x)))
        g = h.reshape(3, 2, -1)
        gn = ((g - g.mean(-1, keepdim=True)) / (g.var(-1, unbiased=False, keepdim=True) + 1e-5).sqrt()).reshape(h.shape)
        gn = gn * block.norm2.weight[:, None, None] + block.norm2.bias[:, None, None]
        e = block.temb(torch.nn.functional.silu(temb))
        scale, shift = e[:, :8, None, None], e[:, 8:, None, None]
        want = x + block.conv2(torch.nn.functional.silu(gn * (1 + scale) + shift))
        assert torch.allclose(block(x, temb), want, atol=1e-5)


def test_zero_init_blocks_start_as_their_skip():
    model = _unet(zero_init=True)
    blocks = [m for m in model.modules() if isinstance(m, ResBlock)]
    assert len(blocks) == 10
    for block in blocks:
        x = torch.randn(2, block.conv1.in_channels, 7, 7)
        with torch.no_grad():
            assert torch.equal(block(x, torch.randn(2, 128)), block.skip(x))
    plain = [m for m in _unet().modules() if isinstance(m, ResBlock)]
    assert all(b.conv2.weight.abs().sum() > 0 for b in plain)


def test_unet_channels_last_same_output():
    model = _wake(_unet(attention=True)).eval()
    x, t = torch.randn(4, 1, 28, 28), torch.tensor([0, 10, 500, 999])
    with torch.no_grad():
        ref = model(x, t)
        out = model(x.to(memory_format=torch.channels_last), t)
        out_cl = model.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last), t)
    assert torch.allclose(ref, out, atol=1e-5) and torch.allclose(ref, out_cl, atol=1e-5)


def test_unet_autocast_bfloat16():
    model = _wake(_unet(base_channels=16, attention=True))
    x = torch.randn(2, 1, 28, 28)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, torch.tensor([3, 300]))
    full = model(x, torch.tensor([3, 300]))
    # computed in bfloat16 (so not equal to the float32 answer), answered in x's dtype
    assert out.shape == x.shape and out.dtype == x.dtype and torch.isfinite(out).all()
    assert 0 < (out - full).abs().max() < 0.1 * full.abs().max()


def test_unet_parameter_count():
    n = count_parameters(_unet(base_channels=32, channel_mults=(1, 2, 4)))
    assert 1_000_000 <= n <= 2_000_000
    small = count_parameters(_unet(base_channels=16))
    assert 250_000 <= small <= 600_000
    model = _unet()
    model.conv_in.weight.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == n - model.conv_in.weight.numel()


# ----------------------------------------------------------------------------- UNet bad inputs
def test_unet_rejects_3d_x():
    with pytest.raises(ValueError, match=r"x must have shape \[B, 1, H, W\].*got \(2, 28, 28\)"):
        _unet(base_channels=8)(torch.randn(2, 28, 28), torch.tensor([1, 2]))


def test_unet_rejects_wrong_channels():
    with pytest.raises(ValueError, match=r"x must have shape \[B, 1, H, W\] \(in_channels=1\).*got \(2, 3, 28, 28\)"):
        _unet(base_channels=8)(torch.randn(2, 3, 28, 28), torch.tensor([1, 2]))


def test_unet_rejects_integer_x():
    with pytest.raises(TypeError, match=r"x must be a floating-point tensor.*torch.int64"):
        _unet(base_channels=8)(torch.zeros(2, 1, 28, 28, dtype=torch.long), torch.tensor([1, 2]))


def test_unet_rejects_float_t():
    with pytest.raises(TypeError, match=r"t must hold integer timesteps \(torch.long\), got dtype torch.float32"):
        _unet(base_channels=8)(torch.randn(2, 1, 28, 28), torch.tensor([0.1, 0.2]))


def test_unet_rejects_t_wrong_shape():
    with pytest.raises(ValueError, match=r"t must have shape \[2\].*got \(\)"):
        _unet(base_channels=8)(torch.randn(2, 1, 28, 28), torch.tensor(5))


@pytest.mark.parametrize("net, x", [(lambda: _unet(base_channels=8), lambda: torch.randn(2, 1, 28, 28)),
                                    (lambda: MLPDenoiser(dim=2), lambda: torch.randn(2, 2))])
def test_networks_reject_negative_t(net, x):
    """t = −1 means clean data in the sampler contract; a network given it would embed a time it never saw."""
    with pytest.raises(ValueError, match=r"t must be timesteps in \{0, …, T−1\}, got a minimum of -1"):
        net()(x(), torch.tensor([3, -1]))


def test_unet_rejects_t_not_tensor():
    with pytest.raises(TypeError, match=r"t must be a LongTensor of shape \[2\].*got int"):
        _unet(base_channels=8)(torch.randn(2, 1, 28, 28), 5)


def test_unet_rejects_groups_not_dividing_widths():
    with pytest.raises(ValueError, match=r"groups must divide every channel width \[12, 24, 48\], got groups=8"):
        UNet(base_channels=12)


def test_unet_rejects_empty_channel_mults():
    with pytest.raises(ValueError, match=r"channel_mults must be a non-empty sequence.*got \(\)"):
        UNet(channel_mults=())


def test_unet_rejects_bad_num_res_blocks():
    with pytest.raises(ValueError, match=r"num_res_blocks must be in \[1, inf\], got 0"):
        UNet(num_res_blocks=0)


def test_unet_rejects_bad_mid_blocks():
    with pytest.raises(ValueError, match=r"mid_blocks must be in \[1, inf\], got 0"):
        UNet(mid_blocks=0)
    with pytest.raises(TypeError, match=r"mid_blocks must be an int"):
        UNet(mid_blocks=2.5)


@pytest.mark.parametrize("name", ["attention", "scale_shift", "zero_init"])
def test_unet_rejects_non_bool_flags(name):
    with pytest.raises(TypeError, match=rf"{name} must be True or False, got 'yes'"):
        UNet(**{name: "yes"})


def test_unet_rejects_bad_dropout():
    with pytest.raises(ValueError, match=r"dropout must be in \[0.0, 1.0\], got 1.5"):
        UNet(dropout=1.5)


# ----------------------------------------------------------------------------- build_model errors
def test_build_model_unknown_type():
    with pytest.raises(ValueError, match=r"config\['type'\] must be one of 'unet', 'mlp', 'unet_cond', got 'resnet'"):
        build_model({"type": "resnet"})


def test_build_model_missing_type():
    with pytest.raises(ValueError, match=r"config must have a 'type' key"):
        build_model({"base_channels": 32})


def test_build_model_unknown_key():
    with pytest.raises(ValueError, match=r"config key 'width' is not an argument of UNet"):
        build_model({"type": "unet", "width": 32})


def test_build_model_bad_value():
    with pytest.raises(ValueError, match=r"bad config for MLPDenoiser.*hidden must be in \[1, inf\], got 0"):
        build_model({"type": "mlp", "hidden": 0})


def test_build_model_not_a_dict():
    with pytest.raises(TypeError, match=r"config must be a dict"):
        build_model(["unet"])


def test_count_parameters_rejects_non_module():
    with pytest.raises(TypeError, match=r"model must be a torch.nn.Module, got dict"):
        count_parameters({})


# ----------------------------------------------------------------------------- MLP
def test_mlp_shape_and_t_dependence():
    torch.manual_seed(0)
    model = MLPDenoiser()
    x = torch.randn(1, 2).repeat(2, 1)
    out = model(x, torch.tensor([0, 999]))
    assert out.shape == (2, 2) and out.dtype == torch.float32
    assert (out[0] - out[1]).abs().max() > 1e-3
    assert model(torch.randn(7, 2), torch.arange(7)).shape == (7, 2)


def test_mlp_gradient_reaches_every_parameter():
    torch.manual_seed(0)
    model = MLPDenoiser(dim=3, hidden=32, num_layers=2, emb_dim=16)
    model(torch.randn(8, 3), torch.randint(0, 1000, (8,))).pow(2).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_mlp_build_model_round_trip():
    torch.manual_seed(0)
    model = MLPDenoiser(hidden=64, num_layers=4, emb_dim=32)
    config = json.loads(json.dumps(model.config))
    assert config == {"type": "mlp", "dim": 2, "hidden": 64, "num_layers": 4, "emb_dim": 32}
    rebuilt = build_model(config)
    rebuilt.load_state_dict(model.state_dict())
    x, t = torch.randn(5, 2), torch.tensor([0, 1, 2, 500, 999])
    assert torch.equal(model(x, t), rebuilt(x, t))


def test_mlp_autocast_bfloat16():
    model, x, t = MLPDenoiser(), torch.randn(4, 2), torch.tensor([1, 2, 3, 4])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, t)
    full = model(x, t)
    assert out.dtype == x.dtype and 0 < (out - full).abs().max() < 0.1 * full.abs().max()


def test_mlp_rejects_wrong_dim():
    with pytest.raises(ValueError, match=r"x must have shape \[B, 2\] \(dim=2\), got \(4, 3\)"):
        MLPDenoiser()(torch.randn(4, 3), torch.tensor([1, 2, 3, 4]))


def test_mlp_rejects_t_wrong_length():
    with pytest.raises(ValueError, match=r"t must have shape \[4\].*got \(3,\)"):
        MLPDenoiser()(torch.randn(4, 2), torch.tensor([1, 2, 3]))


def test_mlp_rejects_bad_num_layers():
    with pytest.raises(ValueError, match=r"num_layers must be in \[1, inf\], got 0"):
        MLPDenoiser(num_layers=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("kind", ["unet", "mlp"])
def test_models_run_in_their_parameters_dtype(kind, dtype):
    """``model.to(dtype)`` works (the timestep embedding follows the parameters), and a model
    answers in the dtype of its input whatever its own: float64 x into a float32 model is what
    ``torch.from_numpy(np.random.randn(...))`` gives."""
    torch.manual_seed(0)
    model = _wake(_unet(base_channels=16)) if kind == "unet" else MLPDenoiser()
    x = torch.randn(3, 1, 28, 28) if kind == "unet" else torch.randn(3, 2)
    t = torch.tensor([0, 400, 999])
    ref = model.double()(x.double(), t)
    low = copy.deepcopy(model).to(dtype)
    out = low(x.to(dtype), t)
    tol = {torch.float16: 2e-2, torch.bfloat16: 1e-1, torch.float64: 1e-12}[dtype]
    assert out.dtype == dtype and torch.isfinite(out).all()
    assert (out.double() - ref).abs().max() <= tol * ref.abs().max()
    mixed = copy.deepcopy(model).float()(x.double(), t)          # float32 weights, float64 data
    assert mixed.dtype == torch.float64 and (mixed - ref).abs().max() <= 1e-5 * ref.abs().max()


def test_unet_from_widths_is_the_unet_those_widths_describe():
    from ddim_edu.nets import ConditionalUNet, UNet, unet_from_widths
    net = unet_from_widths([16, 32, 64], 1, patch_size=2, dropout=0.1)
    assert isinstance(net, UNet) and net.config == UNet(base_channels=16, channel_mults=[1, 2, 4], num_res_blocks=1,
                                                         patch_size=2, dropout=0.1).config
    cond = unet_from_widths([8, 8, 16], num_classes=10)
    assert isinstance(cond, ConditionalUNet) and cond.config["channel_mults"] == [1, 1, 2]
    for bad in ([16, 24], [], [0, 8]):
        with pytest.raises(ValueError, match="widths"):
            unet_from_widths(bad)
