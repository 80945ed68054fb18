"""Rebuilding a network from its saved config: every model keeps the keyword arguments it was
built with in ``model.config`` (a JSON-able dict with a ``"type"`` key), checkpoints store that
dict next to the weights, and :func:`build_model` turns it back into the network."""
from __future__ import annotations

import inspect

from torch import nn

from ..validation import check_choice
from .conditional import ConditionalUNet
from .mlp import MLPDenoiser
from .unet import UNet


_TYPES = {"unet": UNet, "mlp": MLPDenoiser, "unet_cond": ConditionalUNet}


def build_model(config: dict) -> nn.Module:
    """Rebuild a model from its ``config`` (``{"type": "unet" | "mlp" | "unet_cond", **kwargs}``)."""
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict like model.config, got {type(config).__name__}")
    if "type" not in config:
        raise ValueError(f"config must have a 'type' key (one of {', '.join(map(repr, _TYPES))}), "
                         f"got keys {sorted(config)}")
    kind = check_choice("config['type']", config["type"], tuple(_TYPES))
    cls = _TYPES[kind]
    kwargs = {k: v for k, v in config.items() if k != "type"}
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    for key in kwargs:
        if key not in allowed:
            raise ValueError(f"config key {key!r} is not an argument of {cls.__name__} "
                             f"(type {kind!r}); allowed keys: 'type', {', '.join(map(repr, allowed))}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:   # a bad value: say which config it came from
        raise ValueError(f"bad config for {cls.__name__} (type {kind!r}): {err}") from err


def unet_from_widths(widths, num_res_blocks=2, patch_size: int = 1, in_channels: int = 1,
                     num_classes: int | None = None, **kwargs) -> nn.Module:
    """A :class:`UNet` (or :class:`ConditionalUNet` when ``num_classes`` is given) described by its
    channel width per level, e.g. ``[32, 64, 128]``: ``base_channels = widths[0]`` and
    ``channel_mults = widths // widths[0]``, the form the training CLI and the presets use.
    Other keyword arguments go to the network unchanged. ``ValueError`` if a width is not a multiple
    of the first."""
    widths = [int(w) for w in widths]
    if not widths or widths[0] < 1 or any(w % widths[0] for w in widths):
        raise ValueError(f"widths must be positive multiples of the first width, got {widths}")
    kw = dict(in_channels=in_channels, base_channels=widths[0], channel_mults=[w // widths[0] for w in widths],
              num_res_blocks=num_res_blocks, patch_size=patch_size, **kwargs)
    return ConditionalUNet(num_classes=num_classes, **kw) if num_classes is not None else UNet(**kw)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
