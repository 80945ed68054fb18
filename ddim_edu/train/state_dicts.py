"""Fitting saved weights to a model: :func:`check_state_dict` names every missing, unexpected or
mis-shaped key before ``load_state_dict`` (:func:`load_state_checked`), and :func:`prefixed` takes
one part (``model.``, ``ema.``) out of a flat state."""
from __future__ import annotations

import torch

__all__ = ["check_state_dict", "load_state_checked", "prefixed"]


def check_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Raise ``ValueError`` naming the keys where ``state`` does not fit ``model``."""
    want = model.state_dict()
    missing = sorted(set(want) - set(state))
    extra = sorted(set(state) - set(want))
    shapes = sorted(f"{k}: {tuple(state[k].shape)} vs model {tuple(want[k].shape)}"
                    for k in set(want) & set(state) if state[k].shape != want[k].shape)
    if missing or extra or shapes:
        parts = [f"{what}: {few_names(xs)}" for what, xs in (("missing keys", missing), ("unexpected keys", extra),
                                                        ("shape mismatches", shapes)) if xs]
        raise ValueError(f"weights in {source} do not match the model built from its config; " + "; ".join(parts))


def load_state_checked(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint"):
    """``model.load_state_dict(state)`` after :func:`check_state_dict`; returns ``model``."""
    check_state_dict(model, state, source)
    model.load_state_dict(state, strict=True)
    return model


def prefixed(state: dict, prefix: str) -> dict:
    """Sub-dict of keys starting with ``prefix``, prefix removed."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def few_names(xs: list[str]) -> str:
    """The first 8 of ``xs``, comma-separated, and how many more (for error messages)."""
    return ", ".join(xs[:8]) + (f" (+{len(xs) - 8} more)" if len(xs) > 8 else "")
