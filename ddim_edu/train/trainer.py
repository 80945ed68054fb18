r"""Training a noise predictor ε_θ: the loss, EMA of the weights, and a resumable loop.

The objective is DDPM's simplified loss (Ho et al. 2020, eq. 14), which is DDIM's
J_γ (eq. 5) with all γ_t = 1 — DDIM keeps the DDPM training and changes only sampling:

    L_simple(θ) = E_{t ~ U{0..T-1}, x_0, ε ~ N(0, I)} ‖ε − ε_θ(√ᾱ_t x_0 + √(1−ᾱ_t) ε, t)‖².

:class:`Trainer` runs AdamW with gradient clipping, keeps an exponential moving average
(EMA) of the weights with ``torch.optim.swa_utils.AveragedModel`` (samples and shipped
weights use the EMA), writes checkpoints that resume bit-for-bit (see ``checkpoints``),
and stops cleanly at a step count or a time budget. On CUDA it uses bf16 autocast and
channels_last; on CPU it runs in float32. Data-parallel runs go through ``train.py``.
"""
from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import torch
import torch.distributed as dist

from .. import env
from ..viz import grids
from .loss import diffusion_loss, held_out_loss
from .ema import make_ema
from .state import save_snapshot
from ..validation import (check_float, check_generator, check_int, check_model_output, check_tensor,
                         check_timesteps)


@dataclasses.dataclass
class TrainConfig:
    """Hyper-parameters of a run (saved in config.json under "training")."""
    steps: int = 5000
    batch_size: int = 128          # global batch; each of K data-parallel ranks takes batch_size / K
    lr: float = 5e-4
    weight_decay: float = 0.0
    lr_warmup: int = 100           # linear learning-rate warm-up over the first steps
    ema_decay: float = 0.999
    ema_warmup: bool = True
    grad_clip: float = 1.0         # max global gradient norm; 0 turns clipping off
    seed: int = 0
    log_every: int = 100
    ckpt_every: int = 1000         # 0: only at the end
    sample_every: int = 0          # 0: no sample grids during training
    snapshot_every: int = 0        # N > 0: EMA weights every N steps in out_dir/snapshots (a training curve)
    sample_count: int = 64
    sample_steps: int = 50
    max_minutes: float | None = None
    progress: bool | None = None   # None: on unless fast mode
    compile: bool = False

    def validate(self) -> "TrainConfig":
        for name in ("steps", "batch_size"):
            check_int(name, getattr(self, name), lo=1)
        for name in ("lr_warmup", "seed", "ckpt_every", "sample_every", "snapshot_every", "sample_count", "sample_steps"):
            check_int(name, getattr(self, name), lo=0)
        check_int("log_every", self.log_every, lo=1)
        check_float("lr", self.lr, lo=0.0, lo_open=True)
        check_float("weight_decay", self.weight_decay, lo=0.0)
        check_float("ema_decay", self.ema_decay, lo=0.0, hi=1.0)
        check_float("grad_clip", self.grad_clip, lo=0.0)
        if self.max_minutes is not None:
            check_float("max_minutes", self.max_minutes, lo=0.0, lo_open=True)
        return self


def _rank_world():
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Trainer:
    """Train ``model`` (an ε-predictor) on ``data`` (a float tensor [N, ...] in memory).

    Batches are ``data[randint(N, (B,), generator=data_gen)]``; t and ε come from a second
    CPU generator (seeded from ``seed`` and the rank), so a run is a pure function of its
    seed and resumes exactly. ``run_info`` (model config, dataset, command, …) goes into
    config.json. Call :meth:`fit`; use :attr:`ema_model` afterwards.
    """

    def __init__(self, model, sched, data: torch.Tensor, cfg: TrainConfig | None = None, *,
                 out_dir=None, device=None, run_info: dict | None = None, val_data: torch.Tensor | None = None):
        self.cfg = (cfg or TrainConfig()).validate()
        check_tensor("data", data, floating=True, min_dim=2)
        if data.shape[0] < 1:
            raise ValueError("data must hold at least one example, got 0")
        self.rank, self.world = _rank_world()
        if self.cfg.batch_size % self.world:
            raise ValueError(f"batch_size ({self.cfg.batch_size}) must divide by the number of processes ({self.world})")
        self.device = torch.device(device) if device is not None else env.device()
        self.cuda = self.device.type == "cuda"
        self.sched, self.out_dir, self.run_info = sched, (Path(out_dir) if out_dir else None), dict(run_info or {})
        self.data = data.detach().to(self.device, torch.float32)
        # held-out examples: every log line then also records the validation loss (metrics.held_out_loss)
        self.val_data = None if val_data is None else check_tensor("val_data", val_data, floating=True).to(
            self.device, torch.float32)
        self.mem_format = torch.channels_last if self.cuda and data.dim() == 4 else torch.preserve_format
        self.model = model.to(self.device, memory_format=self.mem_format) if data.dim() == 4 else model.to(self.device)
        self.model.train()
        self.net = self.model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP
            self.net = DDP(self.model, device_ids=[self.device.index] if self.cuda else None)
        if self.cfg.compile:
            self.net = torch.compile(self.net)
        self.ema = make_ema(self.model, self.cfg.ema_decay, self.cfg.ema_warmup)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        base = self.cfg.seed * 1000 + 2 * self.rank
        self.data_gen = torch.Generator().manual_seed(base)
        self.noise_gen = torch.Generator().manual_seed(base + 1)
        self.step, self.wall_before, self.history, self.commands = 0, 0.0, [], []
        self.stopped = None

    @property
    def ema_model(self) -> torch.nn.Module:
        """The EMA network (eval mode): use it for sampling."""
        return self.ema.module

    # ------------------------------------------------------------------ one step
    def lr_at(self, step: int) -> float:
        w = self.cfg.lr_warmup
        return self.cfg.lr * (min(1.0, (step + 1) / w) if w else 1.0)

    def train_step(self) -> torch.Tensor:
        per_rank = self.cfg.batch_size // self.world
        idx = torch.randint(0, self.data.shape[0], (per_rank,), generator=self.data_gen).to(self.device)
        x0 = self.data[idx]
        if self.mem_format is torch.channels_last:
            x0 = x0.contiguous(memory_format=torch.channels_last)
        for g in self.opt.param_groups:
            g["lr"] = self.lr_at(self.step)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.cuda):
            loss = diffusion_loss(self.net, x0, self.sched, self.noise_gen)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.opt.step()
        self.ema.update_parameters(self.model)
        self.step += 1
        return loss.detach()

    # ------------------------------------------------------------------ the loop
    def fit(self) -> "Trainer":
        """Train until ``cfg.steps`` (total, counting resumed steps) or ``cfg.max_minutes``."""
        cfg, main = self.cfg, self.rank == 0
        bar = env.progress_bar(None, cfg.progress if main else False, "train", total=cfg.steps, initial=self.step,
                               dynamic_ncols=True, leave=True)
        self._t0 = time.perf_counter()
        acc, n_acc = torch.zeros((), device=self.device), 0
        self.stopped = None
        try:
            while self.step < cfg.steps:
                loss = self.train_step()
                acc += loss
                n_acc += 1
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    shown = self._log(acc, n_acc)
                    acc, n_acc = torch.zeros((), device=self.device), 0
                    bar.set_postfix(loss=f"{shown:.4f}")
                elif bar.disable is False and self.step % 10 == 0:
                    bar.set_postfix(loss=f"{float(acc) / n_acc:.4f}")
                if cfg.sample_every and self.step % cfg.sample_every == 0:
                    self.save_samples()
                if cfg.snapshot_every and self.step % cfg.snapshot_every == 0:
                    save_snapshot(self)
                if self._out_of_time():
                    self.stopped = f"time budget of {cfg.max_minutes} min reached at step {self.step}"
                    break
                if cfg.ckpt_every and self.step % cfg.ckpt_every == 0 and self.step < cfg.steps:
                    self.save()
        finally:
            bar.close()
        if n_acc:
            self._log(acc, n_acc)
        self.save()
        self.wall_before, self._t0 = self.wall_time(), None
        if self.stopped and main:
            print(f"stopped early: {self.stopped}; resume with --resume {self.out_dir}" if self.out_dir else self.stopped)
        return self

    def _log(self, acc: torch.Tensor, n: int) -> float:
        total = torch.stack([acc.float(), torch.tensor(float(n), device=self.device)])
        if self.world > 1:
            dist.all_reduce(total)
        loss = float(total[0] / total[1])
        if not math.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss} at step {self.step}: lower --lr or keep --grad-clip on")
        entry = {"step": self.step, "loss": round(loss, 6), "time_s": round(self.wall_time(), 2)}
        if self.val_data is not None and self.rank == 0:
            entry["val_loss"] = round(held_out_loss(self.model, self.val_data, self.sched), 6)
        self.history.append(entry)
        return loss

    def _out_of_time(self) -> bool:
        if self.cfg.max_minutes is None:
            return False
        late = time.perf_counter() - self._t0 >= 60 * self.cfg.max_minutes
        if self.world == 1:
            return late
        flag = torch.tensor(float(late), device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)      # every rank stops at the same step
        return bool(flag)

    def wall_time(self) -> float:
        t0 = getattr(self, "_t0", None)
        return self.wall_before + (time.perf_counter() - t0 if t0 is not None else 0.0)

    # ------------------------------------------------------------------ samples and checkpoints
    @torch.no_grad()
    def save_samples(self, path=None):
        """A PNG grid of EMA samples (DDIM, η = 0, from a fixed x_T) in ``out_dir/samples``;
        for 2-D data a density image: data (left) beside samples (right)."""
        if self.rank != 0 or (self.out_dir is None and path is None):
            return None
        from ..diffusion.samplers import ddim_sample
        n = self.cfg.sample_count or 64
        shape = (n, *self.data.shape[1:]) if self.data.dim() > 2 else (max(n, 2000), self.data.shape[1])
        gen = env.generator(self.cfg.seed + 12345)
        x_T = env.randn(shape, gen, device=self.device)
        steps = min(self.cfg.sample_steps or 50, self.sched.T)
        x0 = ddim_sample(self.ema_model, x_T, self.sched, steps=steps, eta=0.0, generator=gen,
                         progress=False).float().cpu()
        path = Path(path) if path else self.out_dir / "samples" / f"step_{self.step:07d}.png"
        if x0.dim() == 4:
            return grids.save_grid((x0.clamp(-1, 1) + 1) / 2, path, nrow=max(1, int(math.sqrt(n))))
        lim = float(self.data[:, :2].abs().max()) * 1.15
        imgs = [grids.density_image(d, lim) for d in (self.data.cpu(), x0)]
        return grids.save_grid(torch.stack(imgs), path, nrow=2, padding=4, pad_value=0.5)

    def save(self) -> None:
        """Checkpoint: state for resuming first, then EMA weights + config (rank 0 writes)."""
        from .state import save_trainer
        save_trainer(self)

    def restore(self, run_dir) -> "Trainer":
        """Continue a run saved by :meth:`save` exactly where it stopped."""
        from .state import restore_trainer
        restore_trainer(self, run_dir)
        return self

    def warm_start(self, run_dir) -> "Trainer":
        """Start this (new) run from the EMA weights saved in ``run_dir``; see ``resume.warm_start_trainer``."""
        from .state import warm_start_trainer
        warm_start_trainer(self, run_dir)
        return self


def train(model, data: torch.Tensor, sched, steps: int = 1000, *, out_dir=None, device=None, val_data=None,
          **kwargs) -> Trainer:
    """Convenience for notebooks: ``trainer = train(model, data, sched, steps=500)``, then
    sample from ``trainer.ema_model``. Keyword arguments are :class:`TrainConfig` fields;
    ``val_data`` adds a held-out loss to every entry of ``trainer.history``."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    bad = sorted(set(kwargs) - fields)
    if bad:
        raise TypeError(f"unknown training option(s) {bad}; allowed: {sorted(fields)}")
    kwargs.setdefault("ckpt_every", 0)
    return Trainer(model, sched, data, TrainConfig(steps=steps, **kwargs), out_dir=out_dir, device=device,
                   val_data=val_data).fit()
