r"""Guidance as a model wrapper: a conditional ε-model and a label y become one ``model(x_t, t)``
that every sampler of :data:`~.registry.SAMPLERS` takes unchanged.

Bayes' rule for the noisy marginals, ∇ log q_t(x | y) = ∇ log q_t(x) + ∇ log p_t(y | x), with
ε = −√(1−ᾱ_t) ∇ log q_t (Tweedie; DDIM eq. (10) trained to optimum), reads

    ε(x_t, t, y) = ε(x_t, t, ∅) − √(1−ᾱ_t) ∇_x log p_t(y | x_t).

Classifier-free guidance (Ho & Salimans 2022, eq. (6), written with w = their w + 1, the scale of
most libraries) scales the implicit classifier term ε(·, y) − ε(·, ∅) by w:

    ε̃(x_t, t) = ε(x_t, t, ∅) + w · (ε(x_t, t, y) − ε(x_t, t, ∅)).                    (CFG)

w = 0 is the unconditional model, w = 1 the conditional one, w > 1 follows the score of
q_t(x | y)^w q_t(x)^(1−w) ∝ q_t(x) p_t(y | x)^w at every t. That tilt does NOT commute with
noising, so for w ≠ 0, 1 a sampler does not draw from p(x | y)^w p(x)^(1−w) exactly: it
sharpens the class (higher p(y | x_0), less spread) by an amount only the ODE itself tells
(:mod:`.analytic_conditional` computes it exactly for a mixture).

Classifier guidance (Dhariwal & Nichol 2021, §4.2 and Algorithm 2) uses an explicit
noise-aware classifier p_φ(y | x_t, t) with an unconditional ε:

    ε̂(x_t, t) = ε(x_t, t) − w · √(1−ᾱ_t) · ∇_x log p_φ(y | x_t, t).                    (CG)

With the exact classifier p_t(y | x_t), Bayes' rule above makes (CG) and (CFG) the same ε̂:
CFG is classifier guidance with the classifier implied by the two ε's.
"""
from __future__ import annotations

import torch

from ..nets.conditional import check_labels
from ..validation import _show_typed, check_callable, check_float, check_int, check_tensor

__all__ = ["ClassifierFreeGuidance", "ClassifierGuidance", "guidance_labels"]

_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _check_x(x: torch.Tensor) -> None:
    check_tensor("x", x, floating=True)
    if x.dtype not in _DTYPES:
        raise TypeError(f"x must be float16, bfloat16, float32 or float64, got dtype {x.dtype}")


def guidance_labels(y, batch: int, num_classes: int, device) -> torch.Tensor:
    """The class y as a LongTensor [batch] on ``device``: ``y`` is one int (every example) or a
    LongTensor [batch] in 0..num_classes−1. ``TypeError``/``ValueError`` naming ``y``, its value
    and what is allowed."""
    if isinstance(y, bool) or not isinstance(y, (int, torch.Tensor)):
        raise TypeError(f"y must be a class label (an int in 0..{num_classes - 1}) or a LongTensor [B] of them, "
                        f"got {_show_typed(y)}")
    if isinstance(y, int):
        if not 0 <= y < num_classes:
            raise ValueError(f"y must be a class label in 0..{num_classes - 1}, got {y}")
        return torch.full((batch,), y, dtype=torch.long, device=device)
    return check_labels("y", y.to(device), batch, num_classes, allow_null=False)


def _check_y(y, num_classes: int):
    """``y`` as given, after checking it is one label or a 1-D LongTensor of labels."""
    if isinstance(y, torch.Tensor) and y.dim() != 1:
        raise ValueError(f"y must be one int or a LongTensor [B] of labels, got shape {tuple(y.shape)}")
    n = y.shape[0] if isinstance(y, torch.Tensor) else 1
    guidance_labels(y, n, num_classes, y.device if isinstance(y, torch.Tensor) else "cpu")
    return y


def _check_w(w) -> float:
    w = check_float("w", w, lo=0.0)
    if w == float("inf"):
        raise ValueError(f"w must be a finite number >= 0, got {w}")
    return w


def _num_classes(model, num_classes) -> int:
    k = num_classes if num_classes is not None else getattr(model, "num_classes", None)
    if k is None:
        raise TypeError(f"model ({type(model).__name__}) has no num_classes attribute: pass num_classes=K "
                        "(the null label ∅ is then K)")
    return int(k)


class ClassifierFreeGuidance(torch.nn.Module):
    r"""``model(x_t, t)`` = ε̃(x_t, t) of classifier-free guidance (Ho & Salimans 2022, eq. (6)
    with w = their w + 1; see the module docstring):

        ε̃ = ε(x_t, t, ∅) + w · (ε(x_t, t, y) − ε(x_t, t, ∅)).

    ``model``: a conditional ε-model ``model(x, t, y)`` with labels y LongTensor [B] in
    0..K, K = ∅ (e.g. :class:`~ddim_edu.nets.ConditionalUNet`, or the exact mixture's
    :meth:`~.analytic_conditional.ConditionalMixture.eps_model`); ``y``: the class to draw, one int
    or a LongTensor [B]; ``w``: the guidance scale, a finite number ≥ 0; ``num_classes``: K
    (default ``model.num_classes``).

    For 0 < w ≠ 1 both evaluations run as ONE batched call on [2B] inputs (∅ first, then y).
    w = 0 returns ``model(x, t, ∅)`` and w = 1 ``model(x, t, y)`` exactly (one call each).
    x: [B, ...] float16/bfloat16/float32/float64 (the output has its shape and dtype), t: LongTensor [B].
    ``TypeError``/``ValueError`` for a bad model, y, w or x.
    """

    def __init__(self, model, y, w: float, num_classes: int | None = None):
        super().__init__()
        check_callable("model", model, "model(x_t, t, y)")
        self.model, self.num_classes = model, _num_classes(model, num_classes)
        self.w, self.y = _check_w(w), _check_y(y, self.num_classes)
        self.calls = 0      # batched network calls made

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        _check_x(x)
        B = x.shape[0]
        y = guidance_labels(self.y, B, self.num_classes, x.device)
        null = torch.full_like(y, self.num_classes)
        self.calls += 1
        if self.w == 0.0:
            return self.model(x, t, null)
        if self.w == 1.0:
            return self.model(x, t, y)
        out = self.model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([null, y]))
        eps_u, eps_c = out[:B], out[B:]
        return eps_u + self.w * (eps_c - eps_u)

    def extra_repr(self) -> str:
        return f"w={self.w}, num_classes={self.num_classes}"


class ClassifierGuidance(torch.nn.Module):
    r"""``model(x_t, t)`` = ε̂(x_t, t) of classifier guidance (Dhariwal & Nichol 2021, §4.2,
    Algorithm 2, scale s = w):

        ε̂ = ε(x_t, t) − w · √(1−ᾱ_t) · ∇_x log p_φ(y | x_t, t).

    ``model``: an unconditional ε-model ``model(x, t)``; ``log_prob``: a noise-aware classifier
    ``log_prob(x, t, y)`` → log p_φ(y | x_t, t) [B] (differentiable in x); ``sched``: the
    :class:`~.schedule.NoiseSchedule` (√(1−ᾱ_t) is gathered in float64, then cast to x's dtype);
    ``y``: one int or a LongTensor [B] in 0..num_classes−1; ``w``: a finite number ≥ 0.
    The gradient is taken in x's dtype under ``torch.enable_grad`` (samplers run without grad).
    ``TypeError``/``ValueError`` for a bad argument.
    """

    def __init__(self, model, log_prob, sched, y, w: float, num_classes: int):
        super().__init__()
        check_callable("model", model, "model(x_t, t)")
        check_callable("log_prob", log_prob, "log_prob(x_t, t, y) -> [B]")
        if not hasattr(sched, "alpha_bar"):
            raise TypeError(f"sched must be a NoiseSchedule, got {_show_typed(sched)}")
        self.model, self.log_prob, self.sched = model, log_prob, sched
        self.num_classes = check_int("num_classes", num_classes, lo=1)
        self.w, self.y = _check_w(w), _check_y(y, self.num_classes)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        _check_x(x)
        y = guidance_labels(self.y, x.shape[0], self.num_classes, x.device)
        eps = self.model(x, t)
        if self.w == 0.0:
            return eps
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            grad, = torch.autograd.grad(self.log_prob(xg, t, y).sum(), xg)
        scale = (1 - self.sched.alpha_bar.to(x.device)[t]).sqrt()               # float64 [B]
        scale = (self.w * scale).to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))
        return eps - scale * grad.to(x.dtype)
