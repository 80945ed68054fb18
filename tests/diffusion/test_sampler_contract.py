"""One suite for every registered sampler (de.SAMPLERS): the same signature, one return type,
determinism or reproducibility, dtypes, the callback dict, NFE, the exact mixture's statistics,
and the ε / x₀ / v parametrisations through the denoiser seam."""
import inspect
import math

import pytest
import torch

import ddim_edu as de

NAMES = list(de.SAMPLERS)
COMMON = [("steps", None), ("skip", "uniform"), ("timesteps", None), ("generator", None), ("callback", None),
          ("progress", None), ("prediction", "eps")]
KEYS = {"i", "t", "t_next", "x", "x_next", "x0_pred"}


def _linear_eps(x, t):
    return 0.1 * x + 1e-4 * t.to(x.dtype).view(-1, *([1] * (x.dim() - 1)))


@pytest.mark.parametrize("name", NAMES)
def test_same_signature(name):
    params = list(inspect.signature(de.SAMPLERS[name].fn).parameters.values())
    assert [p.name for p in params[:3]] == ["model", "x", "sched"]
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty for p in params[:3])
    assert all(p.kind is p.KEYWORD_ONLY for p in params[3:])
    common = [(p.name, p.default) for p in params[3:3 + len(COMMON)]]
    # steps=None: 50 (DDPM: all T) unless timesteps are given; the grid's default is the sampler's
    # own (DPM-Solver++: "log_snr"), recorded by the registry
    want = [(k, de.SAMPLERS[name].default_skip if k == "skip" else v) for k, v in COMMON]
    assert common == want
    assert de.SAMPLERS[name].default_skip == ("log_snr" if name.startswith("dpmpp") else "uniform")


def test_public_names_and_registry():
    for fn in ("ddim_sample", "ddpm_sample", "ddim_invert", "euler_sample", "heun_sample", "dpmpp_2m_sample",
               "dpmpp_3m_sample"):
        assert getattr(de, fn) in [info.fn for info in de.SAMPLERS.values()], fn
    assert set(de.diffusion.ode_solvers()) == {"ddim", "heun", "dpmpp_2m", "dpmpp_3m"}
    assert de.SAMPLERS["heun"].steps_for_nfe(10) == 5 and de.SAMPLERS["ddim"].steps_for_nfe(10) == 10


@pytest.mark.parametrize("name", NAMES)
def test_steps_that_disagree_with_timesteps_are_refused(sched, name):
    """steps=5 beside three timesteps used to run 3 steps without a word."""
    with pytest.raises(ValueError, match=r"steps=5 disagrees with timesteps \(3 values: \[0, 100, 200\]\); "
                                         r"pass one of them, or steps=len\(timesteps\)"):
        de.SAMPLERS[name](_linear_eps, torch.zeros(2, 2), sched, steps=5, timesteps=[0, 100, 200], progress=False)


@pytest.mark.parametrize("name", NAMES)
def test_steps_equal_to_len_timesteps_is_the_same_run(sched, name):
    x = torch.randn(3, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def run(**steps):
        return de.SAMPLERS[name](_linear_eps, x, sched, timesteps=[0, 100, 200], generator=de.env.generator(1),
                                 progress=False, **steps)
    assert torch.equal(run(steps=3), run())


@pytest.mark.parametrize("name", NAMES)
def test_neither_steps_nor_timesteps_runs_the_default_length(sched, name):
    calls = []
    de.SAMPLERS[name](_linear_eps, torch.zeros(1, 2), sched, generator=de.env.generator(0), callback=calls.append,
                      progress=False)
    assert de.diffusion.timesteps.DEFAULT_STEPS == 50
    assert len(calls) == (sched.T if name == "ddpm" else 50)        # DDPM: all T steps


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tensor_out_in_the_input_dtype_and_shape(name, dtype):
    x = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(0)).to(dtype)
    out = de.SAMPLERS[name](_linear_eps, x, de.NoiseSchedule.linear(1000), steps=6,
                            generator=de.env.generator(1), progress=False)
    assert isinstance(out, torch.Tensor) and out.shape == x.shape and out.dtype == dtype
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_nfe_matches_the_registry(sched, mixture, name):
    model = mixture.eps_model(sched)
    de.SAMPLERS[name](model, torch.zeros(4, 2, dtype=torch.float64), sched, steps=12,
                      generator=de.env.generator(0), progress=False)
    assert model.calls == de.SAMPLERS[name].nfe(12)


@pytest.mark.parametrize("name, options", [(n, {}) for n in NAMES]
                         + [("ddim", {"eta": 0.5}), ("ddim", {"variance": "sigma_hat"}),
                            ("ddpm", {"variance": "sigma_hat"})])
def test_deterministic_or_reproducible(sched, mixture, name, options):
    info, model = de.SAMPLERS[name], mixture.eps_model(sched)
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def run(seed):
        return info(model, x, sched, steps=10, generator=de.env.generator(seed), progress=False, **options)
    a, b, c = run(1), run(1), run(2)
    assert torch.equal(a, b)
    assert torch.equal(a, c) == (info.deterministic and not options)


@pytest.mark.parametrize("name", NAMES)
def test_callback_dict_and_trajectory(sched, mixture, name):
    info, model = de.SAMPLERS[name], mixture.eps_model(sched)
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    calls, traj = [], de.diffusion.Trajectory()

    def callback(d):
        calls.append(d)
        traj(d)
    out = info(model, x, sched, steps=5, generator=de.env.generator(0), callback=callback, progress=False)
    assert len(calls) == 5 and all(set(d) == KEYS for d in calls)
    assert [d["i"] for d in calls] == list(range(5))
    assert all(a["t_next"] == b["t"] and torch.equal(a["x_next"], b["x"]) for a, b in zip(calls, calls[1:]))
    grid = de.make_timesteps(1000, 5, info.default_skip or "uniform").tolist()   # the sampler's own default grid
    walk = [-1] + grid if info.inverts else grid[::-1] + [-1]   # t: the time of x; t_next: of x_next
    assert traj.timesteps == walk and [d["t"] for d in calls] == walk[:-1]
    xs, x0s = traj.stacked()
    assert xs.shape == (6, 8, 2) and x0s.shape == (5, 8, 2)
    assert torch.equal(xs[0], x) and torch.equal(xs[-1], out)


@pytest.mark.parametrize("name", NAMES)
def test_exact_mixture_statistics(sched, ring, name):
    """With the exact ε (S = 50 quadratic steps for the deterministic samplers) the samples have the
    ring's weights, means and spreads; the encoder's codes look like N(0, I). (On the uniform grid at
    S = 50 the multistep solvers' spreads come out too wide: the grid's long last steps, see ode.LOWER_ORDER_RATIO.)"""
    info, n = de.SAMPLERS[name], 2000
    model = ring.eps_model(sched)
    if info.inverts:
        z = info(model, ring.sample(n, torch.Generator().manual_seed(1)), sched, steps=50, skip="quadratic",
                 progress=False)
        assert z.mean(0).abs().max() < 0.1 and (z.std(0) - 1).abs().max() < 0.1
        return
    x_T = torch.randn(n, 2, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    # a stochastic sampler at its default length (DDPM: all T steps); η = 1 at S = 50 is visibly too narrow
    kw = {"steps": 50, "skip": "quadratic"} if info.deterministic else {}
    x = info(model, x_T, sched, generator=de.env.generator(12), progress=False, **kw)
    labels = ((x[:, None, :] - ring.means[None]) ** 2).sum(-1).argmin(1)
    K = ring.means.shape[0]
    for k in range(K):
        xk = x[labels == k]
        w = len(xk) / n
        assert abs(w - 1 / K) < 4 * math.sqrt(w * (1 - w) / n), (k, w)
        assert (xk.mean(0) - ring.means[k]).norm() < 0.05, k
        assert xk.std(0).mean().item() == pytest.approx(0.15, rel=0.15), k


class _Reparametrised(torch.nn.Module):
    """The exact ε-model, returning x̂₀ or v = √ᾱ ε − √(1 − ᾱ) x̂₀ instead of ε."""

    def __init__(self, model, sched, kind):
        super().__init__()
        self.model, self.sched, self.kind = model, sched, kind

    def forward(self, x, t):
        eps = self.model(x, t)
        ab = self.sched.alpha_bar[t].to(x.dtype).view(-1, 1)
        x0 = (x - (1 - ab).sqrt() * eps) / ab.sqrt()
        return x0 if self.kind == "x0" else ab.sqrt() * eps - (1 - ab).sqrt() * x0


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", ["x0", "v"])
def test_x0_and_v_models_give_the_same_samples(sched, mixture, name, kind):
    info, model = de.SAMPLERS[name], mixture.eps_model(sched)
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    want = info(model, x, sched, steps=8, generator=de.env.generator(3), progress=False)
    got = info(_Reparametrised(model, sched, kind), x, sched, steps=8, generator=de.env.generator(3),
               progress=False, prediction=kind)
    assert torch.allclose(got, want, atol=1e-9, rtol=0), (got - want).abs().max()


def test_denoiser_seam_round_trip():
    x, eps = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    ab = 0.3
    x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
    v = math.sqrt(ab) * eps - math.sqrt(1 - ab) * x0
    for kind, out in (("eps", eps), ("x0", x0), ("v", v)):
        e, z = de.diffusion.denoiser.eps_x0_from_output(out, x, ab, kind)
        assert torch.allclose(e, eps, atol=1e-12) and torch.allclose(z, x0, atol=1e-12), kind
    e16, _ = de.diffusion.denoiser.eps_x0_from_output(x0.half(), x.half(), ab, "x0")
    assert e16.dtype == torch.float16


@pytest.mark.parametrize("name", NAMES)
def test_bad_contract_arguments(sched, mixture, name):
    fn, model = de.SAMPLERS[name].fn, mixture.eps_model(sched)
    with pytest.raises(ValueError, match="prediction must be one of 'eps', 'x0', 'v'"):
        fn(model, torch.zeros(2, 2), sched, steps=3, prediction="score", progress=False)
    with pytest.raises(TypeError, match="callback must be callable"):
        fn(model, torch.zeros(2, 2), sched, steps=3, callback=3, progress=False)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        fn(model, [[0.0, 0.0]], sched, steps=3)
    with pytest.raises(TypeError):
        fn(model, torch.zeros(2, 2), sched, 3)            # only model, x, sched are positional
