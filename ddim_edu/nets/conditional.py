r"""The class-conditional UNet ε_θ(x_t, t, y) for classifier-free guidance (Ho & Salimans 2022,
"Classifier-Free Diffusion Guidance", arXiv 2207.12598): the course's UNet plus a learned label
embedding added to the timestep embedding, with one extra "null" label ∅ = ``num_classes``.

Trained with label dropout (the label becomes ∅ with probability p_uncond,
:func:`ddim_edu.train.labels.drop_labels`), one network is both the conditional model
ε_θ(x_t, t, y) and the unconditional one ε_θ(x_t, t, ∅); guidance
(:mod:`ddim_edu.diffusion.guidance`) combines the two."""
from __future__ import annotations

import torch
from torch import nn

from ..validation import _show, check_int
from .unet import UNet

LABEL_INIT_STD = 0.2


def check_labels(name: str, y, batch: int, num_classes: int, device: torch.device | None = None,
                 allow_null: bool = True) -> torch.Tensor:
    """``y`` must be an integer tensor [batch] with values in 0..num_classes (num_classes = the null
    label ∅; 0..num_classes−1 with ``allow_null=False``) on ``device``. Returns ``y`` as torch.long;
    ``TypeError``/``ValueError`` naming ``name``, its value and what is allowed."""
    hi = num_classes if allow_null else num_classes - 1
    allowed = f"class labels 0..{hi}" + (f" ({num_classes} is the null label)" if allow_null else "")
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name} must be a LongTensor of shape [{batch}] of {allowed}, got {_show(y)} "
                        f"({type(y).__name__})")
    if y.dtype.is_floating_point or y.dtype == torch.bool or y.is_complex():
        raise TypeError(f"{name} must hold integer class labels (torch.long), got dtype {y.dtype}; allowed: {allowed}")
    if y.shape != (batch,):
        raise ValueError(f"{name} must have shape [{batch}] (one label per example), got {tuple(y.shape)}")
    if device is not None and y.device != device:
        raise ValueError(f"{name} is on {y.device} but x is on {device}: put both on one device")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) > hi):
        bad = y[(y < 0) | (y > hi)][0].item()
        raise ValueError(f"{name} holds the label {bad}; allowed: {allowed}")
    return y.long()


class ConditionalUNet(UNet):
    r"""Class-conditional UNet ε_θ(x_t, t, y) (Ho & Salimans 2022, §3.1 and Algorithm 1).

    The :class:`~ddim_edu.nets.unet.UNet` with ``nn.Embedding(num_classes + 1, 4·base)``: the
    embedding of y is added to the timestep embedding, which every residual block receives.
    Row ``num_classes`` is the null label ∅ (:attr:`null_label`), the "no label" input of the
    unconditional model ε_θ(x_t, t, ∅). Its row starts at zero, so ε_θ(x_t, t, ∅) of a new
    ConditionalUNet is exactly what a UNet with the same weights computes (a warm start from
    unconditional weights keeps the unconditional model); the class rows start as small random
    codes (std ``LABEL_INIT_STD`` = 0.2, against a timestep embedding of norm ≈ 3–7), so the
    network can tell the classes apart from the first step — zero class rows would have to grow
    out of zero one Adam step at a time, and in a short CPU run they barely do. The other
    arguments are the UNet's.

    ``forward(x, t, y=None)``: x [B, C, H, W] float, t LongTensor [B], y LongTensor [B] in
    0..num_classes or None (every example gets ∅). Returns ε̂ [B, C, H, W] in x's dtype.
    ``TypeError``/``ValueError`` for a bad x, t or y (naming it, its value and what is allowed).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, base_channels: int = 32,
                 channel_mults=(1, 2, 4), num_res_blocks: int = 2, attention: bool = False,
                 dropout: float = 0.0, groups: int = 8, patch_size: int = 1, scale_shift: bool = False,
                 zero_init: bool = False, mid_blocks: int = 2):
        num_classes = check_int("num_classes", num_classes, lo=1)
        super().__init__(in_channels=in_channels, base_channels=base_channels, channel_mults=channel_mults,
                         num_res_blocks=num_res_blocks, attention=attention, dropout=dropout, groups=groups,
                         patch_size=patch_size, scale_shift=scale_shift, zero_init=zero_init,
                         mid_blocks=mid_blocks)
        self.num_classes = num_classes
        self.config = {"type": "unet_cond", "num_classes": num_classes, **{k: v for k, v in self.config.items()
                                                                          if k != "type"}}
        self.label_emb = nn.Embedding(num_classes + 1, 4 * self.base_channels)
        with torch.no_grad():                      # class codes: small random vectors; ∅: zero
            nn.init.normal_(self.label_emb.weight, std=LABEL_INIT_STD)
            self.label_emb.weight[num_classes].zero_()

    @property
    def null_label(self) -> int:
        """The index of ∅, the "no label" input (= ``num_classes``)."""
        return self.num_classes

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """ε̂(x_t, t, y) with the shape of ``x``; ``y=None`` means ∅ for every example."""
        temb = self.embed(x, t)
        if y is None:
            y = torch.full((x.shape[0],), self.num_classes, dtype=torch.long, device=x.device)
        else:
            y = check_labels("y", y, x.shape[0], self.num_classes, x.device)
        return self.body(x, temb + self.label_emb(y).to(temb.dtype))
