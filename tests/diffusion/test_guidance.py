"""Guidance (ddim_edu.diffusion.guidance) against closed forms: the wrapper's exact end points
w = 0 / 1, the one batched call, every sampler accepting it, and on the class-conditional
Gaussian mixture (labels = components; ddim_edu.diffusion.analytic_conditional): Bayes' rule for
the exact classifier, CFG = classifier guidance with the exact classifier, w = 1 sampling the
requested component, w > 1 following the closed-form guided ODE (and not the tilted law)."""
import numpy as np
import pytest
import torch

import ddim_edu as de
from ddim_edu.diffusion import ClassifierFreeGuidance, ClassifierGuidance, ConditionalMixture
from ddim_edu.nets import ConditionalUNet

KW = dict(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, groups=4)


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    model = ConditionalUNet(num_classes=3, **KW)
    with torch.no_grad():
        model.conv_out.weight.normal_(0, 0.1)
        model.label_emb.weight.normal_()
    return model.eval()


@pytest.fixture(scope="module")
def cm():
    return ConditionalMixture(de.GaussianMixture.ring(k=8, radius=2.0, std=0.3))


@pytest.fixture(scope="module")
def line():
    """Two overlapping 1-D classes, N(+1, 0.5²) and N(−1, 0.5²): guidance's effect is large here."""
    return ConditionalMixture(de.GaussianMixture([[1.0], [-1.0]], [0.5, 0.5]))


def _xt(B=4, size=12):
    g = torch.Generator().manual_seed(1)
    return torch.randn(B, 1, size, size, generator=g), torch.randint(0, 1000, (B,), generator=g)


class Counting(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model, self.batches, self.num_classes = model, [], model.num_classes

    def forward(self, x, t, y):
        self.batches.append(x.shape[0])
        return self.model(x, t, y)


# ----------------------------------------------------------------------------- the wrapper
def test_w0_and_w1_are_the_unconditional_and_conditional_models_exactly(net):
    x, t = _xt()
    y = torch.tensor([0, 1, 2, 0])
    null = torch.full((4,), 3)
    assert torch.equal(ClassifierFreeGuidance(net, y, 0.0)(x, t), net(x, t, null))
    assert torch.equal(ClassifierFreeGuidance(net, y, 1.0)(x, t), net(x, t, y))
    assert not torch.equal(net(x, t, null), net(x, t, y))


@pytest.mark.parametrize("w", [0.5, 2.0, 7.5])
def test_guided_eps_is_the_cfg_formula_in_one_batched_call(net, w):
    x, t = _xt()
    counting = Counting(net)
    out = ClassifierFreeGuidance(counting, 2, w)(x, t)
    assert counting.batches == [8]                     # ∅ and y together: one call on [2B]
    e_u, e_c = net(x, t, torch.full((4,), 3)), net(x, t, torch.full((4,), 2))
    assert torch.allclose(out, e_u + w * (e_c - e_u), atol=1e-5)
    assert torch.allclose(out, (1 - w) * e_u + w * e_c, atol=1e-5)


def test_int_label_is_every_example(net):
    x, t = _xt()
    a = ClassifierFreeGuidance(net, 1, 3.0)(x, t)
    b = ClassifierFreeGuidance(net, torch.ones(4, dtype=torch.long), 3.0)(x, t)
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", sorted(de.SAMPLERS))
def test_every_sampler_accepts_the_wrapper(net, name):
    x, _ = _xt(B=3)
    guided = ClassifierFreeGuidance(net, torch.tensor([0, 1, 2]), 2.0)
    out = de.SAMPLERS[name](guided, x, de.NoiseSchedule.linear(), steps=3, progress=False)
    assert out.shape == x.shape and out.dtype == x.dtype and bool(torch.isfinite(out).all())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtypes(net, dtype):
    x, t = _xt()
    out = ClassifierFreeGuidance(net, 1, 2.0)(x.to(dtype), t)
    assert out.dtype == dtype
    ref = ClassifierFreeGuidance(net, 1, 2.0)(x, t)
    assert torch.allclose(out.float(), ref, atol=0.1 if dtype in (torch.float16, torch.bfloat16) else 1e-5)


def test_refuses_other_dtypes_and_bad_arguments(net):
    x, t = _xt()
    with pytest.raises(TypeError, match="floating-point"):
        ClassifierFreeGuidance(net, 1, 2.0)(x.long(), t)
    if hasattr(torch, "float8_e4m3fn"):
        with pytest.raises(TypeError, match="float16, bfloat16, float32 or float64"):
            ClassifierFreeGuidance(net, 1, 2.0)(x.to(torch.float8_e4m3fn), t)
    with pytest.raises(ValueError, match=r"w must be in \[0.0, inf\), got -1.0"):
        ClassifierFreeGuidance(net, 1, -1.0)
    with pytest.raises(ValueError, match="w must be a finite number"):
        ClassifierFreeGuidance(net, 1, float("inf"))
    with pytest.raises(ValueError, match=r"y must be a class label in 0..2, got 3"):
        ClassifierFreeGuidance(net, 3, 2.0)
    with pytest.raises(TypeError, match="y must be a class label"):
        ClassifierFreeGuidance(net, 1.0, 2.0)
    with pytest.raises(ValueError, match=r"y must have shape \[4\]"):
        ClassifierFreeGuidance(net, torch.tensor([0, 1]), 2.0)(x, t)
    with pytest.raises(TypeError, match="num_classes"):
        ClassifierFreeGuidance(lambda x, t, y: x, 1, 2.0)


# ----------------------------------------------------------------------------- the exact mixture
def test_conditional_eps_is_the_component_eps(cm, sched):
    """ε*(x, t | y) is the one-component mixture's ε*; y = ∅ is the whole mixture's."""
    g = torch.Generator().manual_seed(0)
    x = 2 * torch.randn(64, 2, generator=g, dtype=torch.float64)
    ab = sched.alpha_bar[torch.randint(0, 1000, (64,), generator=g)]
    y = torch.randint(0, 8, (64,), generator=g)
    want = torch.stack([cm.component(int(k)).eps(x[i:i + 1], ab[i:i + 1])[0] for i, k in enumerate(y)])
    assert torch.allclose(cm.eps(x, ab, y), want, atol=1e-12)
    assert torch.equal(cm.eps(x, ab, torch.full((64,), 8)), cm.mixture.eps(x, ab))


def test_bayes_rule_for_the_exact_classifier(cm, sched):
    """∇ log p_t(y | x) = ∇ log q_t(x | y) − ∇ log q_t(x) = (ε*(x) − ε*(x | y)) / √(1 − ᾱ), by autograd."""
    g = torch.Generator().manual_seed(1)
    x = (2 * torch.randn(32, 2, generator=g, dtype=torch.float64)).requires_grad_(True)
    t = torch.randint(50, 1000, (32,), generator=g)
    ab = sched.alpha_bar[t]
    y = torch.randint(0, 8, (32,), generator=g)
    grad, = torch.autograd.grad(cm.classifier(sched)(x, t, y).sum(), x)
    with torch.no_grad():
        want = (cm.eps(x, ab) - cm.eps(x, ab, y)) / (1 - ab).sqrt()[:, None]
    assert torch.allclose(grad, want, atol=1e-9)
    assert torch.allclose(cm.class_log_probs(x, ab).exp().sum(1), torch.ones(32, dtype=torch.float64))


@pytest.mark.parametrize("w", [0.0, 0.5, 1.0, 3.0, 8.0])
def test_classifier_guidance_with_the_exact_classifier_is_cfg(cm, sched, w):
    """CFG is an implicit classifier: ε − w√(1−ᾱ)∇log p_t(y|x) = ε(∅) + w(ε(y) − ε(∅)) (Dhariwal & Nichol §4.2)."""
    g = torch.Generator().manual_seed(2)
    x = 2 * torch.randn(128, 2, generator=g, dtype=torch.float64)
    t = torch.randint(0, 1000, (128,), generator=g)
    cfg = ClassifierFreeGuidance(cm.eps_model(sched), 5, w)(x, t)
    cg = ClassifierGuidance(cm.mixture.eps_model(sched), cm.classifier(sched), sched, 5, w, num_classes=8)(x, t)
    assert torch.allclose(cfg, cg, atol=1e-10)
    closed = cm.guided_eps(x, sched.alpha_bar[t], torch.full((128,), 5), w)
    assert torch.allclose(cfg, closed, atol=1e-12)


def test_w1_samples_exactly_the_requested_component(cm, sched):
    """DDIM (S = 100) with CFG at w = 1 from x_T ~ N(0, I): mean and covariance of 4,000 samples
    are the component's N(μ_y, s² I) within sampling error (4 standard errors)."""
    n, y = 4000, 3
    x_T = torch.randn(n, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x0 = de.ddim_sample(ClassifierFreeGuidance(cm.eps_model(sched), y, 1.0), x_T, sched, steps=100, progress=False)
    mu, s2 = cm.mixture.means[y], float(cm.mixture.stds[y]) ** 2
    assert (x0.mean(0) - mu).abs().max() < 4 * (s2 / n) ** 0.5
    cov = x0.T.cov()
    assert (cov.diagonal() - s2).abs().max() < 4 * s2 * (2 / n) ** 0.5 + 0.003     # + DDIM's O(1/S) bias
    assert abs(float(cov[0, 1])) < 4 * s2 / n ** 0.5


def _quadrature(line, y, w, start="component", n=40, n_steps=500):
    """Mean and variance of x_0 = guided ODE(x_T) over x_T ~ q_T (Gauss–Hermite, exact for a linear map)."""
    z, wq = np.polynomial.hermite_e.hermegauss(n)
    z, wq = torch.tensor(z)[:, None], torch.tensor(wq / wq.sum())
    sched = de.NoiseSchedule.linear()
    ab = float(sched.alpha_bar[-1])
    if start == "component":          # exact q_T(x | y)
        mu, s = float(line.mixture.means[y, 0]), float(line.mixture.stds[y])
        z = ab ** 0.5 * mu + (ab * s * s + 1 - ab) ** 0.5 * z
    sigma = de.diffusion.sigma_from_alpha_bar(sched.alpha_bar_at(999))
    x0 = line.guided_ode_solution(z, sigma, torch.full((n,), y), w, n_steps=n_steps)[:, 0]
    m = (wq * x0).sum()
    return float(m), float((wq * (x0 - m) ** 2).sum()), x0, wq


def test_w1_guided_ode_carries_q_T_given_y_to_the_component(line):
    m, v, _, _ = _quadrature(line, 0, 1.0)
    assert abs(m - 1.0) < 1e-6 and abs(v - 0.25) < 1e-6


def test_w_above_1_sharpens_as_the_closed_form_predicts(line, sched):
    """The exact guided ODE: p(y | x_0) rises and the spread falls monotonically with w, and DDIM
    with the CFG wrapper converges to it (error falls ~1/S); the law is not the tilted
    p(x|y)^w p(x)^(1−w), whose variance (by quadrature on a grid) is far larger."""
    ws, stats = [1.0, 2.0, 4.0, 8.0], []
    for w in ws:
        m, v, x0, wq = _quadrature(line, 0, w, start="unconditional", n_steps=200)
        p_y = float((wq * line.class_log_probs(x0[:, None], 1.0)[:, 0].exp()).sum())
        stats.append((m, v, p_y))
    assert all(a[2] < b[2] for a, b in zip(stats, stats[1:]))            # fidelity up
    assert all(a[1] > b[1] for a, b in zip(stats, stats[1:]))            # diversity down
    grid = torch.linspace(-6, 6, 24001, dtype=torch.float64)[:, None]
    for w, (m, v, _) in zip(ws[1:], stats[1:]):
        lp = line.tilted_log_prob(grid, torch.zeros(len(grid), dtype=torch.long), w)
        p = (lp - lp.max()).exp()
        p = p / p.sum()
        m_t = float((p * grid[:, 0]).sum())
        v_t = float((p * (grid[:, 0] - m_t) ** 2).sum())
        assert v < 0.7 * v_t and m > m_t + 0.2                           # not the tilted law
    # DDIM + wrapper → the exact guided ODE, pointwise from the same x_T (placed at the grid's first t)
    x_T = torch.linspace(-2.5, 2.5, 41, dtype=torch.float64)[:, None]
    y = torch.zeros(41, dtype=torch.long)
    model = ClassifierFreeGuidance(line.eps_model(sched), y, 4.0)
    errs = []
    for S in (25, 100):
        sigma = de.diffusion.sigma_from_alpha_bar(sched.alpha_bar_at(int(de.make_timesteps(1000, S)[-1])))
        exact = line.guided_ode_solution(x_T, sigma, y, 4.0, n_steps=300)
        errs.append(float((de.ddim_sample(model, x_T, sched, steps=S, progress=False) - exact).abs().max()))
    assert errs[1] < 0.05 and errs[1] < errs[0] / 2.5, errs


# ----------------------------------------------------------------------------- editing
@pytest.fixture(scope="module")
def digits(cm):
    return cm.component(1).sample(300, torch.Generator().manual_seed(0))


def test_label_edit_with_the_same_label_and_w1_reconstructs(cm, sched, digits):
    """Inverting and decoding with the same model is the same ODE both ways: the error is
    discretisation only, and falls about as 1/S (Table 2's shape)."""
    errs = [float((de.diffusion.label_edit(cm.eps_model(sched), digits, sched, 1, 1, 1.0, steps=S)
                   - digits).pow(2).mean()) for S in (25, 100)]
    assert errs[1] < 1e-3 and errs[1] < errs[0] / 4, errs


def test_label_edit_reconstruction_degrades_as_w_moves_from_the_inverted_model(cm, sched, digits):
    """Decoding with w ≠ w_invert is another ODE: the reconstruction error grows with w."""
    errs = [float((de.diffusion.label_edit(cm.eps_model(sched), digits, sched, 1, 1, w, steps=50)
                   - digits).pow(2).mean()) for w in (1.0, 2.0, 4.0, 8.0)]
    assert all(a < b for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] > 50 * errs[0]


def test_label_edit_moves_to_the_target_class_in_the_same_handwriting(cm, sched, digits):
    """For equal-width Gaussian classes the conditional ODE maps are affine, so invert-with-y_s
    then decode-with-y_t at w = 1 is exactly x ↦ μ_t + (x − μ_s): the offset from the class
    mean (the "handwriting") is kept, up to discretisation."""
    out, x_T = de.diffusion.label_edit(cm.eps_model(sched), digits, sched, 1, 5, 1.0, steps=100, return_latent=True)
    want = cm.mixture.means[5] + (digits - cm.mixture.means[1])
    assert (out - want).abs().max() < 0.1
    assert float(cm.class_log_probs(out, 1.0)[:, 5].exp().mean()) > 0.95
    assert x_T.shape == digits.shape and float(x_T.std()) > 0.8            # a latent, near N(0, I)
