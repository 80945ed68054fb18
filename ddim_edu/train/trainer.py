r"""The training loop: :class:`Trainer` fits an ε-model with L_simple (DDPM eq. 14 = DDIM eq. 5 with
γ_t = 1, or min-SNR weights; :mod:`~ddim_edu.train.loss`) by AdamW (:mod:`~ddim_edu.train.optim`) with a
warm-up and a constant, cosine or linear learning rate (:mod:`~ddim_edu.train.schedules`, ``budget``),
gradient clipping and an EMA of the weights, and owns its state (:meth:`Trainer.state_dict`): a run stopped
at any step resumes bit-for-bit (a budget's decay sets its end afresh from the resumed run's budget). bf16 autocast
and channels_last: on CUDA by default, on CPU when asked (``TrainConfig.bf16``, ``channels_last``; bf16 warns on an
x86 CPU without bf16 units); ``torchrun ... -m ddim_edu.train`` runs it data-parallel."""
from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import torch
import torch.distributed as dist

from .. import env
from ..validation import check_finite, check_tensor
from . import optim, state as files
from .state_dicts import load_state_checked
from .config import TrainConfig
from .ema import make_ema
from .labels import check_training_labels, label_batch, with_label_embedding
from .loss import diffusion_loss, held_out_loss
from .samples import save_sample_grid
from .budget import TimeBudget, decay_ends_with_budget
from .schedules import lr_at, random_shift
from .state import TrainerState

__all__ = ["Trainer", "TrainConfig", "TrainerState", "train", "diffusion_loss", "held_out_loss", "make_ema"]


class Trainer:
    """Train ``model`` (an ε-predictor) on ``data`` (a float tensor [N, ...] in memory, kept in float32).

    Batches are ``data[randint(N, (B,), generator=data_gen)]``; t and ε come from a second
    CPU generator (seeded from ``seed`` and the rank), so a run is a pure function of its
    seed and resumes exactly. ``labels`` (LongTensor [N], for a conditional model) trains ε_θ(x_t, t, y)
    with label dropout ``p_uncond`` (:mod:`~ddim_edu.train.labels`). ``run_info`` (model config, dataset,
    command, …) goes into config.json. Call :meth:`fit`; use :attr:`ema_model` afterwards. TypeError/ValueError for
    non-float, empty or non-finite data or val_data, bad labels, a config out of range or an unshareable batch.
    """

    def __init__(self, model, sched, data: torch.Tensor, cfg: TrainConfig | None = None, *, out_dir=None,
                 device=None, run_info: dict | None = None, val_data: torch.Tensor | None = None, labels=None):
        self.cfg = (cfg or TrainConfig()).validate()
        check_finite("data", check_tensor("data", data, floating=True, min_dim=2))
        if data.shape[0] < 1:
            raise ValueError("data must hold at least one example, got 0")
        ddp = dist.is_available() and dist.is_initialized()
        self.rank, self.world = (dist.get_rank(), dist.get_world_size()) if ddp else (0, 1)
        if self.cfg.batch_size % self.world:
            raise ValueError(f"batch_size ({self.cfg.batch_size}) must divide by the number of processes ({self.world})")
        self.device = torch.device(device) if device is not None else env.device()
        self.cuda = self.device.type == "cuda"
        self.sched, self.out_dir, self.run_info = sched, (Path(out_dir) if out_dir else None), dict(run_info or {})
        if not self.run_info.get("model"):
            self.run_info["model"] = getattr(model, "config", None)
        self.data = data.detach().to(self.device, torch.float32)
        self.labels, self.null_label = check_training_labels(model, labels, data.shape[0], self.device)
        self.val_data = None if val_data is None else check_finite(   # held-out: each log line's validation loss
            "val_data", check_tensor("val_data", val_data, floating=True)).to(self.device, torch.float32)
        cl, self.bf16 = (self.cuda if v is None else v for v in (self.cfg.channels_last, self.cfg.bf16))  # None: auto
        env.warn_bf16_emulated(self.bf16, self.device)                 # emulated on a CPU without bf16 units
        self.mem_format = torch.channels_last if cl and data.dim() == 4 else torch.preserve_format
        self.model = model.to(self.device, memory_format=self.mem_format) if data.dim() == 4 else model.to(self.device)
        self.net = self.model.train()
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP
            self.net = DDP(self.model, device_ids=[self.device.index] if self.cuda else None)
        if self.cfg.compile:
            self.net = torch.compile(self.net)
        self.ema = make_ema(self.model, self.cfg.ema_decay, self.cfg.ema_warmup)
        self.opt = optim.make_adamw(self.model, self.cfg.adamw_options(), self.device)
        base = self.cfg.seed * 1000 + 2 * self.rank
        self.data_gen = torch.Generator().manual_seed(base)
        self.noise_gen = torch.Generator().manual_seed(base + 1)
        self.step, self.wall_before, self.history, self.commands, self.stopped = 0, 0.0, [], [], None
        self.horizon_info = None                               # a cosine's end measured from a time budget
        self.clock = time.perf_counter                         # the time budget's clock (seconds)

    lr_horizon = property(lambda self: (self.horizon_info or {}).get("lr_decay_steps"))  # the budget cosine's end

    @property
    def ema_model(self) -> torch.nn.Module:
        """The EMA network (eval mode): use it for sampling."""
        return self.ema.module

    # ------------------------------------------------------------------ one step
    def lr_at(self, step: int) -> float:
        """The learning rate at ``step``; a cosine ends at ``lr_decay_steps``, the budget's horizon or ``steps``."""
        c = self.cfg
        return lr_at(step, c.lr, c.lr_warmup, c.lr_schedule, c.lr_decay_steps or self.lr_horizon or c.steps)

    def train_step(self) -> torch.Tensor:
        per_rank = self.cfg.batch_size // self.world
        idx = torch.randint(0, self.data.shape[0], (per_rank,), generator=self.data_gen).to(self.device)
        x0 = random_shift(self.data[idx], self.cfg.augment_shift, self.data_gen)   # k = 0: no draw, x0 unchanged
        if self.mem_format is torch.channels_last:
            x0 = x0.contiguous(memory_format=torch.channels_last)
        for g in self.opt.param_groups:
            g["lr"] = self.lr_at(self.step)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            net = label_batch(self.net, self.labels, idx, self.cfg.p_uncond, self.null_label, self.noise_gen)
            loss = diffusion_loss(net, x0, self.sched, self.noise_gen, **self.cfg.loss_options())
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
        """Train until ``cfg.steps`` (total, counting resumed steps), ``cfg.max_minutes``, or the end of a
        cosine measured, and measured again, from that budget (:mod:`~ddim_edu.train.budget`), whichever comes first."""
        cfg, main = self.cfg, self.rank == 0
        bar = env.progress_bar(None, cfg.progress if main else False, "train", initial=self.step, leave=True,
                               total=None if cfg.max_minutes else cfg.steps, dynamic_ncols=True)  # minutes: no total
        self._t0, budget = time.perf_counter(), TimeBudget(cfg.max_minutes, self.world, self.device, self.clock)
        acc, n_acc = torch.zeros((), device=self.device), 0
        self.stopped, self.horizon_info = None, None
        try:
            while self.step < min(cfg.steps, self.lr_horizon or cfg.steps):
                loss = self.train_step()
                acc, n_acc = acc + loss, n_acc + 1
                if decay_ends_with_budget(cfg) and not budget.settled:
                    self.horizon_info = budget.horizon(self.step, announce=main) or self.horizon_info
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
                    self.save_snapshot()
                if budget.up():
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

    def wall_time(self) -> float:
        t0 = getattr(self, "_t0", None)
        return self.wall_before + (time.perf_counter() - t0 if t0 is not None else 0.0)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> TrainerState:
        """The whole state of the run now, as a :class:`~ddim_edu.train.state.TrainerState`
        (tensors are references, not copies). With several processes every rank must call it:
        it gathers each rank's RNG states (uint8: "torch", "data", "noise", on CUDA "cuda")."""
        rng = {"torch": torch.get_rng_state(), "data": self.data_gen.get_state(), "noise": self.noise_gen.get_state()}
        if self.cuda:
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        every = [rng]
        if self.world > 1:
            every = [None] * self.world
            dist.all_gather_object(every, {k: v.cpu() for k, v in rng.items()})
        return TrainerState(
            step=self.step, model=self.model.state_dict(), ema=self.ema.module.state_dict(),
            optimizer=self.opt.state_dict(), ema_n_averaged=int(self.ema.n_averaged), rng=every,
            history=list(self.history), wall_time_s=self.wall_time(), commands=list(self.commands),
            init=self.run_info.get("init"))

    def load_state_dict(self, state: TrainerState, source: str = "the trainer state") -> "Trainer":
        """Continue from ``state`` (a :class:`~ddim_edu.train.state.TrainerState`): weights,
        EMA, AdamW, step, history, wall time, commands and this rank's RNG states. A state
        saved by another number of processes re-seeds the data and noise streams from the
        step (the run continues, but not bit-identically). ``ValueError`` (naming ``source``)
        if the weights or the optimizer state do not fit this trainer's model."""
        load_state_checked(self.model, state.model, source)
        load_state_checked(self.ema.module, state.ema, source)
        try:
            self.opt.load_state_dict(state.optimizer)
        except (KeyError, ValueError) as e:
            raise ValueError(f"the optimizer state in {source} does not fit this model: {e}") from None
        self.ema.n_averaged.fill_(int(state.ema_n_averaged))
        self.step, self.history = int(state.step), list(state.history)
        self.wall_before, self.commands = float(state.wall_time_s), list(state.commands)
        if state.init:
            self.run_info["init"] = state.init
        rng = state.rng[self.rank] if state.world_size == self.world else {}
        if "data" in rng:
            torch.set_rng_state(rng["torch"])
            self.data_gen.set_state(rng["data"])
            self.noise_gen.set_state(rng["noise"])
            if self.cuda and "cuda" in rng:
                torch.cuda.set_rng_state(rng["cuda"], self.device)
        else:  # another number of processes: continue with fresh, step-dependent streams
            base = (self.cfg.seed * 1000 + 2 * self.rank) * 1_000_003 + self.step
            self.data_gen.manual_seed(base)
            self.noise_gen.manual_seed(base + 1)
            if self.rank == 0:
                print(f"note: no RNG states for {self.world} process(es) (saved by {state.world_size}); the data and "
                      "noise streams are re-seeded, so the run is not bit-identical to an uninterrupted one")
        return self

    def start_from(self, weights: dict[str, torch.Tensor], step: int, init: dict | None = None,
                   source: str = "the initial weights") -> "Trainer":
        """Warm start: raw weights and EMA both become ``weights`` (a state dict of this model;
        ``ValueError`` naming ``source`` if it does not fit), the EMA at its full decay as if past
        ``step`` updates; the optimizer, step count and LR warm-up start afresh. ``init`` (where
        the weights came from) goes into config.json."""
        for module in (self.model, self.ema.module):
            load_state_checked(module, weights, source)
        self.ema.n_averaged.fill_(max(int(step), 1))     # past the EMA's warm-up: keep averaging at full decay
        if init is not None:
            self.run_info["init"] = init
        return self

    # ------------------------------------------------------------------ files
    def _model_config(self, state: TrainerState) -> dict:
        training = {**dataclasses.asdict(self.cfg), "world_size": self.world,
                    **({"lr_decay_from_budget": self.horizon_info} if self.horizon_info else {})}
        return files.model_config(state, training=training,
                                  schedule=self.sched.to_config(), run_info=self.run_info, stopped=self.stopped)

    def save(self) -> None:
        """Checkpoint into ``out_dir`` (nothing without one): the resume state, then the EMA
        weights + config.json. Rank 0 writes; with several processes every rank must call it."""
        if self.out_dir is None:
            return
        state = self.state_dict()
        if self.rank == 0:
            files.save_run(self.out_dir, state, self._model_config(state))
        if self.world > 1:
            dist.barrier()

    def save_snapshot(self) -> Path | None:
        """The EMA weights as they stand now in ``out_dir/snapshots/step_NNNNNNN`` (rank 0 writes;
        every rank must call it). Returns the folder, or None (no out_dir, or rank > 0)."""
        if self.out_dir is None:
            return None
        state = self.state_dict()
        return files.save_snapshot(self.out_dir, state, self._model_config(state)) if self.rank == 0 else None

    def restore(self, run_dir) -> "Trainer":
        """Continue the run saved in ``run_dir`` by :meth:`save` exactly where it stopped
        (``FileNotFoundError``/``ValueError`` for a missing, corrupt or mismatched state)."""
        return self.load_state_dict(files.load_state(run_dir), str(Path(run_dir) / files.STATE_FILE))

    def warm_start(self, run_dir) -> "Trainer":
        """Start this (new) run from the EMA weights saved in ``run_dir`` (``--init``), see
        :meth:`start_from`; ``ValueError`` if its noise schedule or model differ from this run's."""
        weights, init = files.load_init(run_dir, self.sched.to_config())
        return self.start_from(with_label_embedding(self.model, weights), init["step"], init, source=f"--init {run_dir}")

    def save_samples(self, path=None):
        """A PNG of the EMA model's samples now (see :func:`~ddim_edu.train.samples.save_sample_grid`;
        ``sample_count`` of them, DDIM with ``sample_steps`` steps from a fixed x_T) at ``path`` or
        ``out_dir/samples/step_NNNNNNN.png``. Returns the path, or None (no out_dir, or rank > 0)."""
        if self.rank != 0 or (self.out_dir is None and path is None):
            return None
        path = Path(path) if path else self.out_dir / "samples" / f"step_{self.step:07d}.png"
        return save_sample_grid(self.ema_model, self.sched, self.data, path, count=self.cfg.sample_count,
                                steps=self.cfg.sample_steps, seed=self.cfg.seed + 12345)


def train(model, data: torch.Tensor, sched, steps: int = 1000, *, out_dir=None, device=None, val_data=None,
          **kwargs) -> Trainer:
    """Convenience for notebooks: ``trainer = train(model, data, sched, steps=500)``, then sample from
    ``trainer.ema_model``. ``data`` is a float tensor [N, ...] (images [N, C, H, W] in [-1, 1], or points
    [N, D]); keyword arguments are :class:`TrainConfig` fields, with the same defaults except ``ckpt_every=0``
    (sample grids and checkpoints need an ``out_dir``); ``val_data`` adds a held-out loss to every entry of
    ``trainer.history``. ``TypeError`` for an unknown option, ``ValueError`` for a value out of range."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    bad = sorted(set(kwargs) - fields)
    if bad:
        raise TypeError(f"unknown training option(s) {bad}; allowed: {sorted(fields)}")
    kwargs.setdefault("ckpt_every", 0)
    return Trainer(model, sched, data, TrainConfig(steps=steps, **kwargs), out_dir=out_dir, device=device,
                   val_data=val_data).fit()
