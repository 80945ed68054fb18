"""The networks ε_θ(x_t, t): a time-conditioned UNet for images, its class-conditional variant
ε_θ(x_t, t, y) for guidance, an MLP for 2-D toy data, the sinusoidal timestep embedding they
share, and ``build_model`` from a saved config."""
from .build import build_model, count_parameters, unet_from_widths
from .conditional import ConditionalUNet
from .embedding import timestep_embedding
from .mlp import MLPDenoiser
from .unet import UNet

__all__ = ["UNet", "ConditionalUNet", "MLPDenoiser", "timestep_embedding", "build_model", "count_parameters", "unet_from_widths"]
