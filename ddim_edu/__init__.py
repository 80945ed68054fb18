"""ddim_edu — the package behind the DDIM course (Song, Meng & Ermon, ICLR 2021).

    import ddim_edu as de
    sched = de.NoiseSchedule.linear(T=1000)
    model, sched = de.load_pretrained("mnist")
    x0 = de.ddim_sample(model, x_T, sched, steps=50, eta=0.0)
"""
from . import analytic, checkpoints, checks, classifier, data, editing, env, grids, likelihood, metrics, models, ode, plotting, \
    samplers, schedules, timesteps, training
from .analytic import ExactEpsModel, GaussianMixture
from .editing import interpolate_latents, lerp, sdedit, slerp
from .models import MLPDenoiser, UNet, build_model, count_parameters
from .ode import dpmpp_2m_sample, euler_sample, heun_sample
from .pretrained import available_pretrained, load_pretrained
from .samplers import Trajectory, ddim_invert, ddim_invert_step, ddim_sample, ddim_sigma, ddim_step, ddpm_sample
from .schedules import NoiseSchedule
from .timesteps import make_timesteps

__version__ = "0.1.0"

__all__ = [
    "env", "NoiseSchedule", "make_timesteps", "ddim_sample", "ddpm_sample", "ddim_invert", "ddim_step",
    "ddim_sigma", "ddim_invert_step", "Trajectory", "euler_sample", "heun_sample", "dpmpp_2m_sample",
    "GaussianMixture", "ExactEpsModel", "UNet", "MLPDenoiser", "build_model", "count_parameters",
    "load_pretrained", "available_pretrained", "slerp", "lerp", "interpolate_latents", "sdedit",
]
