"""The method: the noise schedule and q(x_t | x_0), timestep sub-sequences τ, the samplers
(DDIM, DDPM, the ODE solvers, inversion), their shared contract and registry, the ε → x̂₀
denoiser seam, latent-space editing, guidance (classifier-free and classifier) as model wrappers,
the variational bound, and a Gaussian mixture with an exact ε (also class-conditional) for testing
all of them."""
from . import analytic, analytic_conditional, contract, denoiser, editing, guidance, likelihood, ode, registry, samplers, \
    schedule, timesteps
from .analytic import ExactEpsModel, GaussianMixture
from .analytic_conditional import ConditionalExactEpsModel, ConditionalMixture
from .contract import Trajectory
from .denoiser import Denoiser
from .guidance import ClassifierFreeGuidance, ClassifierGuidance
from .editing import interpolate_latents, label_edit, lerp, sdedit, sdedit_timesteps, slerp
from .ode import alpha_bar_from_sigma, dpmpp_2m_sample, dpmpp_2m_step, dpmpp_3m_sample, dpmpp_3m_step, euler_sample, \
    from_xbar, heun_sample, heun_step, sigma_from_alpha_bar, to_xbar
from .registry import SAMPLERS, SamplerInfo, ode_solvers
from .samplers import ddim_invert, ddim_invert_step, ddim_sample, ddim_sigma, ddim_step, ddpm_sample
from .schedule import NoiseSchedule
from .timesteps import make_timesteps
