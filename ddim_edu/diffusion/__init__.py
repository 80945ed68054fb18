"""The method: the noise schedule and q(x_t | x_0), timestep sub-sequences τ, the samplers
(DDIM, DDPM, the ODE solvers, inversion) and their registry, latent-space editing, the
variational bound, and a Gaussian mixture with an exact ε for testing all of them."""
from . import analytic, editing, likelihood, ode, samplers, schedule, timesteps
from .analytic import ExactEpsModel, GaussianMixture
from .editing import interpolate_latents, lerp, sdedit, sdedit_timesteps, slerp
from .ode import alpha_bar_from_sigma, dpmpp_2m_sample, euler_sample, from_xbar, heun_sample, sigma_from_alpha_bar, \
    to_xbar
from .samplers import Trajectory, ddim_invert, ddim_invert_step, ddim_sample, ddim_sigma, ddim_step, ddpm_sample
from .schedule import NoiseSchedule
from .timesteps import make_timesteps

SAMPLERS = {}   # filled by the sampler contract (registry)
