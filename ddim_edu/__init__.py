"""ddim_edu — the package behind the DDIM course (Song, Meng & Ermon, ICLR 2021).

    import ddim_edu as de
    model, sched = de.load_pretrained("mnist")
    x0 = de.ddim_sample(model, x_T, sched, steps=50, eta=0.0)

Map of the package (README, "The package in a few lines"):

    diffusion/   the method: schedule, timestep grids, samplers and their registry, inversion,
                 editing, guidance, likelihood, the analytic Gaussian mixture
    nets/        the networks ε_θ(x_t, t): UNet, MLP, the class-conditional UNet ε_θ(x_t, t, y)
    train/       the loss, EMA, the trainer, checkpoints, shipped weights, the CLI
    evaluation/  the course classifier and the metrics built on it
    viz/         figures and widgets (loaded on first use)
    course/      the exercises (check, hint, solution), the grader, the paper's numbers
    data         the shipped MNIST subset, torchvision sets, 2-D toy sets
    env          device, fast mode, offline mode, seeding, progress bars

``import ddim_edu`` loads the method and the networks; the other subpackages load on first
attribute access (``de.viz``, ``de.course``, …).
"""
from . import diffusion, env, nets
from ._lazy import lazy_attributes
from .diffusion import (SAMPLERS, ClassifierFreeGuidance, ClassifierGuidance, ConditionalMixture, ExactEpsModel,
                        GaussianMixture, NoiseSchedule, ddim_invert, ddim_invert_step,
                        ddim_sample, ddim_sigma, ddim_step, ddpm_sample, dpmpp_2m_sample, dpmpp_3m_sample, euler_sample,
                        heun_sample,
                        interpolate_latents, label_edit, lerp, make_timesteps, sdedit, slerp)
from .nets import ConditionalUNet, MLPDenoiser, UNet, build_model, count_parameters
from .train.pretrained import available_pretrained, load_pretrained

__version__ = "0.1.0"

__getattr__, __dir__ = lazy_attributes(__name__, {
    "data": ".data", "train": ".train", "evaluation": ".evaluation", "viz": ".viz", "course": ".course"})

__all__ = [
    "env", "diffusion", "nets", "data", "train", "evaluation", "viz", "course",
    "NoiseSchedule", "make_timesteps", "SAMPLERS", "ddim_sample", "ddpm_sample", "ddim_invert", "ddim_step",
    "ddim_sigma", "ddim_invert_step", "euler_sample", "heun_sample", "dpmpp_2m_sample", "dpmpp_3m_sample",
    "GaussianMixture", "ExactEpsModel", "UNet", "MLPDenoiser", "build_model", "count_parameters",
    "load_pretrained", "available_pretrained", "slerp", "lerp", "interpolate_latents", "sdedit",
    "ConditionalUNet", "ClassifierFreeGuidance", "ClassifierGuidance", "ConditionalMixture", "label_edit",
]
