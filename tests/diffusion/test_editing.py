"""Latent-space editing: slerp / lerp (DDIM appendix D.5) and SDEdit with a DDIM decoder."""
import math

import pytest
import torch

import ddim_edu as de
import ddim_edu.diffusion.editing as ed


def _gauss(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# --------------------------------------------------------------------------- slerp / lerp
def test_slerp_endpoints_exact():
    z0, z1 = _gauss(4, 1, 8, 8, seed=1), _gauss(4, 1, 8, 8, seed=2)
    assert torch.equal(ed.slerp(z0, z1, 0.0), z0)
    assert torch.equal(ed.slerp(z0, z1, 1.0), z1)
    path = ed.slerp(z0, z1, torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    assert torch.equal(path[0], z0) and torch.equal(path[-1], z1)


def test_slerp_preserves_norm_for_equal_norm_inputs():
    z0, z1 = _gauss(3, 50, seed=3), _gauss(3, 50, seed=4)
    z1 = z1 / z1.norm(dim=1, keepdim=True) * z0.norm(dim=1, keepdim=True)
    path = ed.slerp(z0, z1, torch.linspace(0, 1, 11, dtype=torch.float64))
    norms = path.norm(dim=-1)                                   # [11, 3]
    assert torch.allclose(norms, z0.norm(dim=1).expand_as(norms), rtol=1e-10)


def test_slerp_orthogonal_unit_vectors_midpoint():
    z0 = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    z1 = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    assert torch.allclose(ed.slerp(z0, z1, 0.5), (z0 + z1) / math.sqrt(2), atol=1e-12)
    # and the angle moves uniformly: at α the point is (cos(απ/2), sin(απ/2), 0)
    for a in (0.1, 0.3, 0.9):
        want = torch.tensor([math.cos(a * math.pi / 2), math.sin(a * math.pi / 2), 0.0], dtype=torch.float64)
        assert torch.allclose(ed.slerp(z0, z1, a), want, atol=1e-12)


def test_lerp_midpoint_norm_shrinks_slerp_keeps_it():
    d = 4096
    z0, z1 = _gauss(64, d, seed=5), _gauss(64, d, seed=6)
    lerp_mid = ed.lerp(z0, z1, 0.5).norm(dim=1)
    slerp_mid = ed.slerp(z0, z1, 0.5).norm(dim=1)
    assert abs(float(lerp_mid.mean()) / math.sqrt(d / 2) - 1) < 0.02
    assert abs(float(slerp_mid.mean()) / math.sqrt(d) - 1) < 0.02
    assert torch.allclose(ed.lerp(z0, z1, 0.25), 0.75 * z0 + 0.25 * z1)


def test_shapes_and_dtype():
    z0, z1 = torch.randn(5, 1, 28, 28), torch.randn(5, 1, 28, 28)
    assert ed.slerp(z0, z1, 0.3).shape == (5, 1, 28, 28)
    out = ed.slerp(z0, z1, torch.linspace(0, 1, 7))
    assert out.shape == (7, 5, 1, 28, 28) and out.dtype == torch.float32
    assert ed.lerp(z0, z1, torch.linspace(0, 1, 7)).shape == (7, 5, 1, 28, 28)
    lat = ed.interpolate_latents(z0[0], z1[0], 9)
    assert lat.shape == (9, 1, 28, 28)
    assert torch.allclose(lat[4], ed.slerp(z0[:1], z1[:1], 0.5)[0])
    # per example: each batch row uses its own angle
    row = ed.slerp(z0[2:3], z1[2:3], 0.4)
    assert torch.allclose(ed.slerp(z0, z1, 0.4)[2:3], row)


def test_parallel_and_antiparallel_fall_back_to_lerp():
    z = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    for other in (2 * z, -z, torch.zeros_like(z)):
        out = ed.slerp(z, other, 0.3)
        assert torch.isfinite(out).all()
        assert torch.allclose(out, 0.7 * z + 0.3 * other)


def test_slerp_bad_inputs():
    z = torch.randn(2, 3)
    with pytest.raises(ValueError, match="alpha"):
        ed.slerp(z, z, 1.5)
    with pytest.raises(ValueError, match="alpha"):
        ed.slerp(z, z, torch.tensor([[0.5]]))
    with pytest.raises(TypeError, match="alpha"):
        ed.slerp(z, z, "half")
    with pytest.raises(ValueError, match="z1"):
        ed.slerp(z, torch.randn(2, 4), 0.5)
    with pytest.raises(TypeError, match="z0"):
        ed.slerp([1.0, 2.0], z, 0.5)
    with pytest.raises(ValueError, match="n must be"):
        ed.interpolate_latents(z[0], z[1], 1)


# --------------------------------------------------------------------------- SDEdit
def test_sdedit_timesteps():
    ts = ed.sdedit_timesteps(999, 50)
    assert len(ts) == 50 and int(ts[0]) == 0 and int(ts[-1]) == 999 and bool((ts[1:] > ts[:-1]).all())
    for t0, s in [(10, 11), (37, 5), (500, 7), (3, 1)]:
        ts = ed.sdedit_timesteps(t0, s)
        assert len(ts) == s and int(ts[-1]) == t0 and len(set(ts.tolist())) == s
    with pytest.raises(ValueError, match="steps"):
        ed.sdedit_timesteps(10, 12)


def test_sdedit_from_t_max_is_plain_ddim(sched, ring):
    model = ring.eps_model(sched)
    x0 = ring.sample(32, generator=torch.Generator().manual_seed(0))
    noise = _gauss(32, 2, seed=7)
    got = ed.sdedit(model, x0, sched, t_start=sched.T - 1, steps=20, noise=noise)
    x_T = sched.q_sample(x0, torch.full((32,), sched.T - 1), noise)
    want = de.ddim_sample(model, x_T, sched, timesteps=ed.sdedit_timesteps(sched.T - 1, 20), progress=False)
    assert torch.equal(got, want)
    # the same with η > 0 and a generator: identical draws in the same order
    a = ed.sdedit(model, x0, sched, sched.T - 1, 20, eta=1.0, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    x_T = sched.q_sample(x0, torch.full((32,), sched.T - 1), de.env.randn(x0.shape, g, dtype=x0.dtype))
    b = de.ddim_sample(model, x_T, sched, eta=1.0, generator=g, timesteps=ed.sdedit_timesteps(sched.T - 1, 20),
                       progress=False)
    assert torch.equal(a, b)


def test_sdedit_small_t_start_stays_close(sched, ring):
    model = ring.eps_model(sched)
    x0 = ring.sample(256, generator=torch.Generator().manual_seed(1))
    gen = torch.Generator().manual_seed(2)
    near = ed.sdedit(model, x0, sched, t_start=20, steps=10, generator=gen)
    far = ed.sdedit(model, x0, sched, t_start=999, steps=10, generator=gen)
    d_near = (near - x0).norm(dim=1).mean()
    d_far = (far - x0).norm(dim=1).mean()
    assert d_near < 0.15            # within about one component std of where it started
    assert d_far > 1.0              # from pure noise it lands on an unrelated mode
    # every edit still lands on the data: near one of the ring's 8 means
    dist = torch.cdist(near, ring.means).min(dim=1).values
    assert float(dist.max()) < 0.8


def test_sdedit_bad_inputs(sched, ring):
    model = ring.eps_model(sched)
    x0 = torch.zeros(4, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="t_start"):
        ed.sdedit(model, x0, sched, t_start=1000, steps=10)
    with pytest.raises(ValueError, match="steps"):
        ed.sdedit(model, x0, sched, t_start=5, steps=7)
    with pytest.raises(ValueError, match="eta"):
        ed.sdedit(model, x0, sched, 100, 10, eta=-0.5)
    with pytest.raises(ValueError, match="noise"):
        ed.sdedit(model, x0, sched, 100, 10, noise=torch.zeros(4, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match="model"):
        ed.sdedit("net", x0, sched, 100, 10)
    with pytest.raises(TypeError, match="sched"):
        ed.sdedit(model, x0, None, 100, 10)
    with pytest.raises(TypeError, match="generator"):
        ed.sdedit(model, x0, sched, 100, 10, generator=3)
