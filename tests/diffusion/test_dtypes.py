"""The dtype policy, tested for every registered sampler (de.SAMPLERS) in float16, bfloat16, float32
and float64, with the exact mixture ε and a tiny UNet, against float64 from the same x and seed.

The policy (ddim_edu/diffusion/schedule.py, samplers.py): coefficients are combined in float64 and
only the result is cast; a sampler runs in x_T's dtype and casts the model's output to it; a
network runs in its parameters' dtype and answers in its input's.

Tolerances. With unit roundoff u (float16 2⁻¹¹, bfloat16 2⁻⁸ (8 bits of mantissa), float32 2⁻²⁴),
each of the S = 10 steps rounds a few times at about u of the values it handles, and the step
maps are contractions or mild expansions, so the error of a run is a modest multiple of u times
the run's scale: we measure the largest |low − float64| over the largest of |x| and |float64 output|
(input and output: the inversion ends far smaller than it starts, and its error is set by the
start). Measured over several seeds the worst case is about 13u (DPM-Solver++(3M), ddim with
η = 0.5); the bound is 32u: float16 1.6e-2, bfloat16 0.125, float32 1.9e-6. A network run in
low precision adds its own error (bounded the same way, in the network's dtype).

Noise. Stochastic samplers draw z with ``de.env.randn`` in x's dtype, float16/bfloat16 drawn in
float32 and rounded, so all three get the same noise; torch's float64 stream is another one. The
float64 reference of a stochastic run is therefore computed with the float32 draws cast to float64
(``float32_noise``), which makes the comparison pointwise, not only in distribution.
"""
import copy

import pytest
import torch

import ddim_edu as de

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
UNIT_ROUNDOFF = {torch.float16: 2.0 ** -11, torch.bfloat16: 2.0 ** -8, torch.float32: 2.0 ** -24,
                 torch.float64: 2.0 ** -53}
K = 32          # tolerance in units of u (worst measured ≈ 13u)
S = 10
CASES = [(name, {}) for name in de.SAMPLERS] + [("ddim", {"eta": 0.5}), ("ddim", {"variance": "sigma_hat"})]
# the UNet (slow in float64 on a CPU) runs each distinct algorithm once; the mixture runs every case
MATRIX = [("mixture", name, kw) for name, kw in CASES] + [("unet", name, {}) for name, info in de.SAMPLERS.items()
                                                         if info.alias_of is None]
MATRIX_IDS = [f"{kind}-{name}" + "".join(f"-{k}={v}" for k, v in kw.items()) for kind, name, kw in MATRIX]


def tol(dtype) -> float:
    return K * UNIT_ROUNDOFF[dtype]


def rel_err(got: torch.Tensor, ref: torch.Tensor, x: torch.Tensor) -> float:
    """max |got − ref| over the run's scale max(|x|, |ref|) (see the module docstring)."""
    scale = max(ref.abs().max().item(), x.abs().max().item())
    return (got.double() - ref).abs().max().item() / scale


@pytest.fixture
def float32_noise(monkeypatch):
    """Within the test: every dtype draws noise from the float32 stream (float64 too)."""
    randn = de.env.randn

    def draw(shape, generator=None, *, dtype=torch.float32, device="cpu"):
        return randn(shape, generator, dtype=torch.float32, device=device).to(dtype)
    monkeypatch.setattr(de.env, "randn", draw)


@pytest.fixture(scope="module")
def tiny_unet():
    """A 2-level UNet with a random, non-zero output layer (an untrained ε_θ that still depends on
    x and t), in float64; callers copy it into the dtype they need."""
    torch.manual_seed(0)
    net = de.UNet(base_channels=8, channel_mults=(1, 2), num_res_blocks=1)
    torch.nn.init.normal_(net.conv_out.weight, std=0.02)
    return net.double().eval()


def _problem(kind, sched, mixture, tiny_unet):
    gen = torch.Generator().manual_seed(0)
    if kind == "mixture":
        return mixture.eps_model(sched), torch.randn(16, 2, generator=gen, dtype=torch.float64)
    return tiny_unet, torch.randn(2, 1, 8, 8, generator=gen, dtype=torch.float64)


def _run(name, model, x, sched, **kw):
    return de.SAMPLERS[name](model, x, sched, steps=S, generator=de.env.generator(1), progress=False, **kw)


# --------------------------------------------------------------------------- the matrix
@pytest.mark.parametrize("kind, name, options", MATRIX, ids=MATRIX_IDS)
def test_every_sampler_in_every_dtype_matches_float64(sched, mixture, tiny_unet, float32_noise, kind, name, options):
    """Model and x in one dtype (model.half() with x.half(): the usual low-precision run). The
    float64 row is the reference itself (checked for dtype and finiteness)."""
    model, x64 = _problem(kind, sched, mixture, tiny_unet)
    ref = _run(name, model, x64, sched, **options)
    for dtype in DTYPES:
        m = model if kind == "mixture" else copy.deepcopy(model).to(dtype)    # the mixture runs in x's dtype
        out = ref if dtype == torch.float64 else _run(name, m, x64.to(dtype), sched, **options)
        assert out.dtype == dtype and out.shape == x64.shape, (dtype, out.dtype)
        assert torch.isfinite(out).all(), dtype
        err = rel_err(out, ref, x64)
        assert err <= tol(dtype), f"{dtype}: error {err:.3g} = {err / UNIT_ROUNDOFF[dtype]:.1f}u > {K}u"


@pytest.mark.parametrize("model_dtype, x_dtype, name", [
    (torch.float32, torch.float64, "ddim"),         # the issue: a float32 network, x_T from torch.from_numpy
    (torch.float16, torch.float64, "dpmpp_2m"),     # a float16 network's output cast to a float64 sampler
    (torch.bfloat16, torch.float32, "ddim_invert"),  # model.to(torch.bfloat16) under a float32 sampler
    (torch.bfloat16, torch.float64, "ddpm"),        # ... under a float64 one, with noise
])
def test_network_and_sampler_in_different_dtypes(sched, tiny_unet, float32_noise, model_dtype, x_dtype, name):
    """The output has x's dtype; the error is the larger of the network's (its weights rounded to
    its dtype first, so the float64 reference runs the same weights) and the sampler's. (A float64
    network under a float16 sampler: the matrix's mixture rows, whose ε is computed in x's dtype,
    and test_steps_answer_in_x_dtype_whatever_eps_and_noise_are.) The casts are one seam, the
    Denoiser, shared by all samplers: one sampler per pair."""
    _, x64 = _problem("unet", sched, None, tiny_unet)
    net = copy.deepcopy(tiny_unet).to(model_dtype)
    ref = _run(name, copy.deepcopy(net).double(), x64, sched)
    out = _run(name, net, x64.to(x_dtype), sched)
    assert out.dtype == x_dtype and torch.isfinite(out).all()
    assert rel_err(out, ref, x64) <= max(tol(model_dtype), tol(x_dtype))


def test_half_precision_noise_is_the_float32_noise_rounded():
    """One seed gives the same noise in float16, bfloat16 and float32 (the policy of env.randn);
    float32 and float64 draws are unchanged (torch's own streams)."""
    for shape in [(3,), (4, 2), (2, 1, 8, 8)]:
        z32 = de.env.randn(shape, de.env.generator(5))
        assert torch.equal(z32, torch.randn(shape, generator=de.env.generator(5)))
        assert torch.equal(de.env.randn(shape, de.env.generator(5), dtype=torch.float64),
                           torch.randn(shape, generator=de.env.generator(5), dtype=torch.float64))
        for dtype in (torch.float16, torch.bfloat16):
            z = de.env.randn(shape, de.env.generator(5), dtype=dtype)
            assert z.dtype == dtype and torch.equal(z, z32.to(dtype))


def test_stochastic_half_precision_run_follows_its_float32_run(sched, mixture):
    """Without any patching: DDIM η = 1 in float16/bfloat16 is the float32 run, rounded."""
    model, x = mixture.eps_model(sched), torch.randn(16, 2, generator=torch.Generator().manual_seed(2))
    ref = de.ddim_sample(model, x, sched, steps=S, eta=1.0, generator=de.env.generator(3), progress=False)
    for dtype in (torch.float16, torch.bfloat16):
        out = de.ddim_sample(model, x.to(dtype), sched, steps=S, eta=1.0, generator=de.env.generator(3),
                             progress=False)
        assert rel_err(out, ref.double(), x) <= tol(dtype), dtype


# --------------------------------------------------------------------------- the reproductions
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_ddpm_with_a_zero_model_in_half_precision_is_finite(dtype):
    """Issue: `ddpm_sample(lambda x, t: torch.zeros_like(x), torch.randn(2, 4).half(), s)` gave NaN
    (1 − ᾱ_0 was computed after the cast to float16: a division by zero in the posterior)."""
    s = de.NoiseSchedule.linear(1000)
    out = de.ddpm_sample(lambda x, t: torch.zeros_like(x), torch.randn(2, 4).to(dtype), s, progress=False)
    assert out.dtype == dtype and torch.isfinite(out).all()


THREE = de.GaussianMixture([[-1.0, 0.0], [0.5, 0.5], [0.5, -0.5]], [0.2, 0.3, 0.25], [0.5, 0.25, 0.25])


@pytest.mark.parametrize("which", ["two", "three"])
def test_ddpm_with_the_exact_mixture_in_half_precision_matches_float64(sched, mixture, float32_noise, which):
    """Issue: DDPM (all T = 1000 steps) with the exact mixture ε returned NaN in float16/bfloat16.
    Now the output std matches float64's from the same x_T and noise within K·u (measured: ≤ 3u
    in float16, ≤ 7u in bfloat16), and float64's std is the data's. (Pointwise, 1000 steps of
    rounding add up to about 40u in float16 and 115u in bfloat16: the matrix checks pointwise
    agreement at S = 10.)"""
    mix = mixture if which == "two" else THREE
    model = mix.eps_model(sched)
    x_T = torch.randn(200, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    ref = de.ddpm_sample(model, x_T, sched, generator=de.env.generator(6), progress=False)
    data_std = mix.sample(20_000, torch.Generator().manual_seed(0)).std().item()
    assert ref.std().item() == pytest.approx(data_std, rel=0.1)     # 200 samples: a few % of sampling error
    for dtype in (torch.float16, torch.bfloat16):
        out = de.ddpm_sample(model, x_T.to(dtype), sched, generator=de.env.generator(6), progress=False)
        assert out.dtype == dtype and torch.isfinite(out).all(), dtype
        assert out.double().std().item() == pytest.approx(ref.std().item(), rel=tol(dtype)), dtype


def test_float32_network_with_float64_x_T_from_numpy(sched, tiny_unet):
    """Issue: a float32 model with x_T = torch.from_numpy(np.random.randn(...)) (float64) crashed
    with "Input type (double) and bias type (float) should be the same". Float64 in, float64 out."""
    np = pytest.importorskip("numpy")
    x_T = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 1, 8, 8)))
    out = de.ddim_sample(copy.deepcopy(tiny_unet).float(), x_T, sched, steps=S, progress=False)
    assert out.dtype == torch.float64 and torch.isfinite(out).all()


# --------------------------------------------------------------------------- the steps themselves
@pytest.mark.parametrize("dtype", DTYPES)
def test_steps_answer_in_x_dtype_whatever_eps_and_noise_are(sched, dtype):
    """ddim_step / ddim_invert_step cast ε and z to x's dtype (coefficients are float64 floats)."""
    gen = torch.Generator().manual_seed(0)
    x, eps, z = (torch.randn(3, 4, generator=gen, dtype=torch.float64) for _ in range(3))
    want, want_x0 = de.ddim_step(x, eps, 500, 0, sched, 1.0, z)
    for other in DTYPES:
        got, x0 = de.ddim_step(x.to(dtype), eps.to(other), 500, 0, sched, 1.0, z.to(other))
        assert got.dtype == dtype and x0.dtype == dtype
        worst = max(UNIT_ROUNDOFF[dtype], UNIT_ROUNDOFF[other])
        assert rel_err(got, want, x) <= K * worst and rel_err(x0, want_x0, x) <= K * worst
        up = de.ddim_invert_step(x.to(dtype), eps.to(other), 0, 500, sched)
        assert up.dtype == dtype and torch.isfinite(up).all()
