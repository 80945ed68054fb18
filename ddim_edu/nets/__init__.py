"""The networks ε_θ(x_t, t): a time-conditioned UNet for images, an MLP for 2-D toy data, the
sinusoidal timestep embedding, and ``build_model`` from a saved config."""
from .models import MLPDenoiser, UNet, build_model, count_parameters, timestep_embedding
