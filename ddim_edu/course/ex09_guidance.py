"""The exercises of notebook 09 (guidance): the classifier-free guided ε in one batched call, and
the edit loop (invert with the source label, decode with the target label and guidance), each
with its reference solution, hint and known mistakes.

The solutions are the notebook's exercise functions, filled in (they call ``de.…`` as the
notebook does); see :mod:`ddim_edu.course` for why this module, not the notebook, is their
source of truth. The checks run on the class-conditional Gaussian mixture, whose ε is exact.
"""
from __future__ import annotations

from types import SimpleNamespace

import torch

import ddim_edu as de
from .engine import Case, Exercise
from .fixtures import LIN
from .fixtures import seeded_randn as _randn
from ..diffusion import ClassifierFreeGuidance, ConditionalMixture, GaussianMixture, label_edit

NOTEBOOK = "09_guidance.ipynb"
ex09 = SimpleNamespace()


def _ring_model(sched=LIN):
    """The exact conditional ε of 8 classes on a ring (labels = components; ∅ = 8)."""
    return ConditionalMixture(GaussianMixture.ring(k=8, radius=2.0, std=0.3)).eps_model(sched)


def _t(n, seed=0):
    return torch.randint(0, 1000, (n,), generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- ex09.guided_eps
def my_guided_eps(model, x, t, y, w):
    """ε̃ = ε(x, t, ∅) + w (ε(x, t, y) − ε(x, t, ∅)) with both ε from ONE call; ∅ = model.num_classes."""
    B = x.shape[0]
    null = torch.full((B,), model.num_classes)
    labels = torch.full((B,), y)
    eps = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([null, labels]))
    eps_u, eps_c = eps[:B], eps[B:]
    return eps_u + w * (eps_c - eps_u)


def _guided_wrong(model, x, t, y, w, kind):
    B = x.shape[0]
    null, labels = torch.full((B,), model.num_classes), torch.full((B,), y)
    e_u, e_c = model(x, t, null), model(x, t, labels)
    return {"ho": e_c + w * (e_c - e_u), "swap": e_c + w * (e_u - e_c), "zero": e_u + w * (e_c - model(x, t, 0 * null)),
            "cond": w * e_c}[kind]


ex09.guided_eps = Exercise(
    "ex09.guided_eps", lambda m, x, t, y, w: ClassifierFreeGuidance(m, y, w)(x, t), solution=my_guided_eps,
    rtol=1e-9, atol=1e-12,
    cases=lambda: [Case(f"8-class ring, 32 points, y = 3, w = {w}", (_ring_model(), 2 * _randn(32, 2), _t(32), 3, w))
                   for w in (4.0, 0.0, 1.0)] + [Case("one point, y = 0, w = 0.5", (_ring_model(), _randn(1, 2, seed=1),
                                                                                       _t(1, seed=1), 0, 0.5))],
    mistakes=[(lambda m, x, t, y, w: _guided_wrong(m, x, t, y, w, "ho"),
               "that is Ho & Salimans' (1 + w)ε(y) − wε(∅) with their w: here w = 1 must give ε(x, t, y) itself, "
               "so start from ε(∅)"),
              (lambda m, x, t, y, w: _guided_wrong(m, x, t, y, w, "swap"),
               "ε(∅) and ε(y) are swapped: the guidance direction is ε(y) − ε(∅), added to ε(∅)"),
              (lambda m, x, t, y, w: _guided_wrong(m, x, t, y, w, "zero"),
               "the null label ∅ is model.num_classes (an extra label), not class 0"),
              (lambda m, x, t, y, w: _guided_wrong(m, x, t, y, w, "cond"),
               "w scales the difference ε(y) − ε(∅), not ε(y) alone")],
    hint="null = full(B, model.num_classes); one call on cat([x, x]), cat([t, t]), cat([null, y]); split the output "
         "into ε_u (first B rows) and ε_c; return ε_u + w (ε_c − ε_u).")


# ----------------------------------------------------------------------------- ex09.label_edit
def my_label_edit(model, x0, sched, y_source, y_target, w, steps):
    """x0 of class y_source redrawn as y_target: DDIM-invert with ε(·, y_source) (w = 1), decode with CFG(y_target, w)."""
    encoder = de.ClassifierFreeGuidance(model, y_source, 1.0)
    x_T = de.ddim_invert(encoder, x0, sched, steps=steps, progress=False)
    decoder = de.ClassifierFreeGuidance(model, y_target, w)
    return de.ddim_sample(decoder, x_T, sched, steps=steps, progress=False)


def _edit_wrong(model, x0, sched, ys, yt, w, steps, kind):
    if kind == "target_encoder":
        return label_edit(model, x0, sched, yt, yt, w, steps=steps)
    if kind == "unguided":
        return label_edit(model, x0, sched, ys, yt, 1.0, steps=steps)
    x_T = de.ddim_invert(ClassifierFreeGuidance(model, ys, 1.0), x0, sched, steps=steps, progress=False)
    return de.ddim_sample(ClassifierFreeGuidance(model, yt, w), x_T, sched, steps=2 * steps, progress=False)


ex09.label_edit = Exercise(
    "ex09.label_edit", lambda m, x0, s, ys, yt, w, n: label_edit(m, x0, s, ys, yt, w, steps=n), solution=my_label_edit,
    rtol=1e-6, atol=1e-8,
    cases=lambda: [Case("ring, 16 points of class 1 → class 5, w = 3, S = 20",
                        (_ring_model(), GaussianMixture.ring(8, 2.0, 0.3).means[1] + 0.3 * _randn(16, 2),
                         LIN, 1, 5, 3.0, 20)),
                   Case("same class, w = 1, S = 10 (a round trip)",
                        (_ring_model(), GaussianMixture.ring(8, 2.0, 0.3).means[2] + 0.3 * _randn(4, 2, seed=1),
                         LIN, 2, 2, 1.0, 10))],
    mistakes=[(lambda m, x0, s, ys, yt, w, n: _edit_wrong(m, x0, s, ys, yt, w, n, "target_encoder"),
               "invert with the SOURCE label: the encoder must be the model that explains x0"),
              (lambda m, x0, s, ys, yt, w, n: _edit_wrong(m, x0, s, ys, yt, w, n, "unguided"),
               "decode with guidance scale w (ClassifierFreeGuidance(model, y_target, w)), not w = 1"),
              (lambda m, x0, s, ys, yt, w, n: _edit_wrong(m, x0, s, ys, yt, w, n, "steps"),
               "decode on the same grid as the inversion (the same steps), or the latent is read at the wrong t")],
    hint="x_T = de.ddim_invert(de.ClassifierFreeGuidance(model, y_source, 1.0), x0, sched, steps=steps); then "
         "de.ddim_sample(de.ClassifierFreeGuidance(model, y_target, w), x_T, sched, steps=steps).")
