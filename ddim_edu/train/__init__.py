"""Training ε_θ: the loss L_simple, the EMA of the weights, the config (one source of every
default), the resumable trainer and its state, checkpoints without pickle, the shipped
weights, named recipes (``presets``), and the command line generated from the config
(``python -m ddim_edu.train``)."""
from .._lazy import lazy_attributes

__getattr__, __dir__ = lazy_attributes(__name__, {
    "diffusion_loss": ".loss", "held_out_loss": ".loss", "loss_gap": ".loss", "loss": ".loss", "Trainer": ".trainer", "TrainConfig": ".trainer", "train": ".trainer",
    "make_ema": ".ema", "load_pretrained": ".pretrained", "available_pretrained": ".pretrained",
    "load_model": ".checkpoints", "checkpoints": ".checkpoints", "pretrained": ".pretrained",
    "trainer": ".trainer", "ema": ".ema", "state": ".state", "cli": ".cli",
    "TrainerState": ".state", "config": ".config", "samples": ".samples",
    "presets": ".presets", "preset_model": ".presets", "preset_training": ".presets", "datasets": ".datasets"})
del lazy_attributes
