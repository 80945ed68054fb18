"""Tests for ddim_edu.nets.ConditionalUNet (label embedding + null label ∅) and the training of it
with label dropout (ddim_edu.train.labels)."""
import pytest
import torch

import ddim_edu as de
from ddim_edu.nets import ConditionalUNet, UNet, build_model
from ddim_edu.train import checkpoints as ck
from ddim_edu.train.labels import drop_labels, label_batch, with_label_embedding

KW = dict(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, groups=4)


def _wake(model, seed=0):
    """Random (non-zero) output layer and label embedding, so outputs depend on everything."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in (model.conv_out.weight, model.conv_out.bias) + ((model.label_emb.weight,)
                                                                   if hasattr(model, "label_emb") else ()):
            p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


def _xt(B=4, size=12):
    g = torch.Generator().manual_seed(1)
    return torch.randn(B, 1, size, size, generator=g), torch.randint(0, 1000, (B,), generator=g)


def test_new_conditional_unet_with_the_null_label_is_the_unet_with_its_weights():
    """∅'s embedding starts at zero: ε(x, t, ∅) of a new ConditionalUNet is the UNet's output bit for
    bit; the class codes start small and random (std LABEL_INIT_STD), so labels differ from the start."""
    from ddim_edu.nets.conditional import LABEL_INIT_STD
    torch.manual_seed(0)
    cond = ConditionalUNet(num_classes=3, **KW)
    with torch.no_grad():
        cond.conv_out.weight.normal_()
    plain = UNet(**KW).eval()
    plain.load_state_dict({k: v for k, v in cond.state_dict().items() if not k.startswith("label_emb")})
    x, t = _xt()
    want = plain(x, t)
    assert want.abs().max() > 0
    assert torch.equal(cond.eval()(x, t), want)
    assert torch.equal(cond(x, t, torch.full((4,), 3)), want)
    assert not torch.equal(cond(x, t, torch.zeros(4, dtype=torch.long)), want)
    codes = cond.label_emb.weight.detach()[:3]
    assert abs(float(codes.std()) - LABEL_INIT_STD) < 0.3 * LABEL_INIT_STD


def test_label_changes_output_and_none_means_null():
    model = _wake(ConditionalUNet(num_classes=3, **KW))
    x, t = _xt()
    null = torch.full((4,), 3)
    assert torch.equal(model(x, t), model(x, t, null))
    a, b = model(x, t, torch.zeros(4, dtype=torch.long)), model(x, t, torch.ones(4, dtype=torch.long))
    assert (a - b).abs().max() > 1e-4
    # each example sees only its own label
    mixed = model(x, t, torch.tensor([0, 1, 0, 1]))
    assert torch.allclose(mixed[0], a[0], atol=1e-6) and torch.allclose(mixed[1], b[1], atol=1e-6)


def test_null_label_and_config():
    model = ConditionalUNet(num_classes=10, **KW)
    assert model.null_label == 10 and model.label_emb.num_embeddings == 11
    assert model.config["type"] == "unet_cond" and model.config["num_classes"] == 10


def test_build_model_and_checkpoint_round_trip(tmp_path, sched):
    model = _wake(ConditionalUNet(num_classes=4, **KW))
    rebuilt = build_model(model.config)
    assert isinstance(rebuilt, ConditionalUNet)
    ck.save_model_dir(tmp_path, model.state_dict(), {"model": model.config, "schedule": sched.to_config()})
    loaded, _, _ = ck.load_model(tmp_path)
    x, t = _xt()
    y = torch.tensor([0, 1, 2, 4])
    assert isinstance(loaded, ConditionalUNet)
    assert torch.equal(loaded.eval()(x, t, y), model(x, t, y))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_output_follows_x_dtype(dtype):
    model = _wake(ConditionalUNet(num_classes=3, **KW))
    x, t = _xt()
    out = model(x.to(dtype), t, torch.tensor([0, 1, 2, 3]))
    assert out.dtype == dtype and out.shape == x.shape


@pytest.mark.parametrize("y, err, match", [
    (torch.tensor([0.0, 1.0, 2.0, 0.0]), TypeError, "integer class labels"),
    (torch.tensor([0, 1, 2]), ValueError, r"shape \[4\]"),
    (torch.tensor([0, 1, 2, 5]), ValueError, r"label 5; allowed: class labels 0..3"),
    (torch.tensor([0, -1, 2, 1]), ValueError, "label -1"),
    (3, TypeError, "LongTensor"),
])
def test_bad_labels_name_argument_value_and_range(y, err, match):
    model = ConditionalUNet(num_classes=3, **KW)
    x, t = _xt()
    with pytest.raises(err, match=match):
        model(x, t, y)


def test_bad_num_classes():
    with pytest.raises(ValueError, match="num_classes"):
        ConditionalUNet(num_classes=0, **KW)


# ----------------------------------------------------------------------------- training with labels
def test_drop_labels_rate_and_extremes():
    y = torch.arange(10).repeat(2000)
    g = torch.Generator().manual_seed(0)
    out = drop_labels(y, 0.2, 10, g)
    share = float((out == 10).float().mean())
    assert abs(share - 0.2) < 4 * (0.2 * 0.8 / y.numel()) ** 0.5
    kept = out != 10
    assert torch.equal(out[kept], y[kept])
    assert drop_labels(y, 0.0, 10, g) is y
    assert bool((drop_labels(y, 1.0, 10, g) == 10).all())
    with pytest.raises(ValueError, match="p_uncond"):
        drop_labels(y, 1.5, 10, g)


def test_label_batch_passes_labels_to_the_network():
    seen = []

    def net(x, t, y):
        seen.append(y.clone())
        return x

    labels = torch.tensor([5, 6, 7, 8])
    model = label_batch(net, labels, torch.tensor([3, 0]), 0.0, 9)
    model(torch.zeros(2, 1), torch.zeros(2, dtype=torch.long))
    assert seen[-1].tolist() == [8, 5]
    assert label_batch(net, None, torch.tensor([0]), 0.5, 9) is net


def test_warm_start_weights_from_an_unconditional_unet():
    """--init from unconditional weights: ∅ reproduces the unconditional network exactly."""
    plain = _wake(UNet(**KW))
    cond = ConditionalUNet(num_classes=3, **KW)
    fresh = cond.label_emb.weight.detach().clone()
    cond.load_state_dict(with_label_embedding(cond, plain.state_dict()))
    x, t = _xt()
    assert torch.equal(cond.eval()(x, t, torch.full((4,), 3)), plain(x, t))
    assert torch.equal(cond.label_emb.weight, fresh)
    own = cond.state_dict()
    assert with_label_embedding(cond, own) is own


def test_trainer_learns_labels_and_resumes(tmp_path, sched):
    """A few steps with labels move the label embedding; without a conditional model labels are refused."""
    g = torch.Generator().manual_seed(0)
    data = torch.randn(32, 1, 8, 8, generator=g).clamp(-1, 1)
    labels = torch.randint(0, 3, (32,), generator=g)
    torch.manual_seed(0)
    model = ConditionalUNet(num_classes=3, **KW)
    before = model.label_emb.weight.detach().clone()
    tr = de.train.Trainer(model, sched, data, de.train.TrainConfig(steps=4, batch_size=8, lr_warmup=0, ckpt_every=0,
                                                                    sample_every=0, progress=False, p_uncond=0.5),
                          device="cpu", labels=labels).fit()
    assert not torch.equal(tr.model.label_emb.weight[:3], before[:3])      # the class codes got gradients
    with pytest.raises(TypeError, match="not class-conditional"):
        de.train.Trainer(UNet(**KW), sched, data, device="cpu", labels=labels)
    with pytest.raises(ValueError, match="label 3"):
        de.train.Trainer(ConditionalUNet(num_classes=3, **KW), sched, data, device="cpu", labels=labels.clamp(max=2) + 1)


def test_cli_conditional_run_resumes_bit_for_bit(tmp_path):
    """``--conditional`` trains a ConditionalUNet on the shipped digits with their labels; stopping
    and resuming gives the same weights as one uninterrupted run."""
    from ddim_edu.train.cli import main
    common = ["--dataset", "mnist", "--conditional", "--widths", "8,16", "--num-res-blocks", "1", "--groups", "4",
              "--batch-size", "4", "--log-every", "1", "--ckpt-every", "0", "--sample-every", "0", "--no-progress",
              "--device", "cpu"]
    main(common + ["--steps", "4", "--out", str(tmp_path / "a")])
    main(common + ["--steps", "2", "--out", str(tmp_path / "b")])
    main(["--resume", str(tmp_path / "b"), "--steps", "4", "--no-progress"])
    a, _, cfg = ck.load_model(tmp_path / "a")
    b, _, _ = ck.load_model(tmp_path / "b")
    assert isinstance(a, ConditionalUNet) and cfg["args"]["conditional"] is True
    assert cfg["training"]["p_uncond"] == 0.2
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k


def test_patched_conditional_unet():
    """patch_size (the UNet's p×p pixel folding) works with labels and is kept in the config."""
    model = _wake(ConditionalUNet(num_classes=3, patch_size=2, **KW))
    x, t = _xt()
    assert model(x, t, torch.tensor([0, 1, 2, 3])).shape == x.shape
    assert build_model(model.config).config == model.config and model.config["patch_size"] == 2


def test_scale_shift_conditional_unet_round_trips(tmp_path, sched):
    """scale_shift and zero_init pass through to the UNet, are kept in the config, and a saved model
    loads back to the same outputs."""
    model = _wake(ConditionalUNet(num_classes=3, scale_shift=True, zero_init=True, **KW))
    assert model.config["scale_shift"] is True and model.config["zero_init"] is True
    ck.save_model_dir(tmp_path, model.state_dict(), {"model": model.config, "schedule": sched.to_config()})
    loaded, _, _ = ck.load_model(tmp_path)
    x, t = _xt()
    y = torch.tensor([0, 1, 2, 3])
    assert torch.equal(loaded.eval()(x, t, y), model.eval()(x, t, y))
