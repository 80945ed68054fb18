"""A small MNIST classifier, the feature extractor of the course's "classifier FID".

FID (Heusel et al. 2017) compares Inception-v3 features of real and generated images.
Inception knows nothing about 28×28 digits, so the course uses a CNN trained on the
4,500 shipped training digits instead: its 128-d penultimate layer (ReLU after global
average pooling, like Inception's pool3) gives :func:`ddim_edu.evaluation.metrics.classifier_fid`.
Numbers are comparable within the course only, never with published FIDs.

    python -m ddim_edu.evaluation.classifier --out checkpoints/mnist_classifier
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..train import checkpoints as ck
from ..train.state_dicts import load_state_checked
from .. import env
from ..validation import check_int, check_tensor

DEFAULT_NAME = "mnist_classifier"


class MNISTClassifier(nn.Module):
    """Conv(32)-Conv(32)-pool-Conv(64)-Conv(64)-pool-GAP-FC(128)-FC(10), BatchNorm after
    each conv; about 75k parameters. Input [B, 1, 28, 28] (or 32×32 padded) in [-1, 1]."""

    def __init__(self, width: int = 32, feature_dim: int = 128, num_classes: int = 10):
        super().__init__()
        w = check_int("width", width, lo=1)
        feature_dim, num_classes = check_int("feature_dim", feature_dim, lo=1), check_int("num_classes", num_classes, lo=1)
        self.config = {"type": "mnist_classifier", "width": w, "feature_dim": feature_dim, "num_classes": num_classes}

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.conv = nn.Sequential(*block(1, w), *block(w, w), nn.MaxPool2d(2),
                                  *block(w, 2 * w), *block(2 * w, 2 * w), nn.MaxPool2d(2))
        self.fc = nn.Linear(2 * w, feature_dim)
        self.head = nn.Linear(feature_dim, num_classes)
        self.dropout = nn.Dropout(0.2)

    def _check(self, x):
        check_tensor("x", x, floating=True)
        if x.dim() != 4 or x.shape[1] != 1 or x.shape[-1] not in (28, 32) or x.shape[-2] != x.shape[-1]:
            raise ValueError(f"x must be MNIST-like images [B, 1, 28, 28] (or 32x32) in [-1, 1], got {tuple(x.shape)}")
        return x[..., 2:-2, 2:-2] if x.shape[-1] == 32 else x   # undo the 2-pixel padding

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate features [B, feature_dim] (used by classifier FID)."""
        h = self.conv(self._check(x)).mean(dim=(2, 3))
        return F.relu(self.fc(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B, num_classes]."""
        return self.head(self.dropout(self.features(x)))


def random_shift(x: torch.Tensor, max_shift: int = 2, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each image by an integer offset in [−max_shift, max_shift]² (pad with −1)."""
    B, C, H, W = x.shape
    s = max_shift
    p = F.pad(x, (s, s, s, s), value=-1.0)
    dy, dx = (torch.randint(0, 2 * s + 1, (B,), generator=generator).to(x.device) for _ in range(2))
    rows = (dy[:, None] + torch.arange(H, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(W, device=x.device))[:, None, None, :]
    return p[torch.arange(B, device=x.device)[:, None, None, None], torch.arange(C, device=x.device)[None, :, None, None], rows, cols]


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    """Accuracy of ``model`` on (x, y)."""
    model.eval()
    dev = next(model.parameters()).device
    hits = sum(int((model(x[i:i + batch_size].to(dev)).argmax(1).cpu() == y[i:i + batch_size]).sum())
               for i in range(0, len(x), batch_size))
    return hits / max(1, len(x))


def train_classifier(epochs: int = 20, batch_size: int = 64, lr: float = 2e-3, seed: int = 0,
                     device=None, progress: bool | None = None) -> tuple[MNISTClassifier, dict]:
    """Train on the 4,500 shipped training digits with random ±2-pixel shifts (AdamW, one-cycle
    LR); returns (model in eval mode, {"held_out_accuracy", "train_accuracy", ...})."""
    from ..data import load_mnist
    epochs = check_int("epochs", epochs, lo=1)
    batch_size = check_int("batch_size", batch_size, lo=1)
    dev = torch.device(device) if device is not None else env.device()
    xtr, ytr = load_mnist("train")
    xte, yte = load_mnist("test")
    torch.manual_seed(seed)
    g = env.generator(seed)
    model = MNISTClassifier().to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    per_epoch = (len(xtr) + batch_size - 1) // batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * per_epoch)
    t0 = time.perf_counter()
    for epoch in env.progress_bar(range(epochs), progress, "classifier", leave=True):
        model.train()
        perm = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(xtr), batch_size):
            idx = perm[i:i + batch_size]
            xb = random_shift(xtr[idx], 2, g).to(dev)
            loss = F.cross_entropy(model(xb), ytr[idx].to(dev), label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    info = {"held_out_accuracy": evaluate(model, xte, yte), "train_accuracy": evaluate(model, xtr, ytr),
            "n_train": len(xtr), "n_held_out": len(xte), "epochs": epochs, "batch_size": batch_size, "lr": lr,
            "seed": seed, "train_time_s": round(time.perf_counter() - t0, 1),
            "parameters": sum(p.numel() for p in model.parameters())}
    return model.eval(), info


def save_classifier(model: MNISTClassifier, out_dir, info: dict, command: str | None = None) -> None:
    """model.safetensors + config.json, the same layout as a diffusion checkpoint."""
    ck.save_model_dir(out_dir, model.state_dict(), {
        "model": model.config, "dataset": {"name": "mnist-subset", "train": "4,500 training digits",
                                           "held_out": "500 held-out digits"},
        "command": command, "hardware": env.describe(), "results": {
            "held_out_accuracy": info["held_out_accuracy"]}, "training": info})


def _checkpoint_root() -> Path:
    from ..train.pretrained import checkpoints_dir
    return checkpoints_dir()


def load_classifier(path=None, device=None, require_checksum: bool = True) -> MNISTClassifier:
    """The shipped classifier (``checkpoints/mnist_classifier``) or one saved at ``path``, eval mode.
    Checked like a diffusion checkpoint (:func:`ddim_edu.train.checkpoints.read_model_dir`):
    config.json must match the checksum in model.safetensors (``require_checksum=False`` accepts a
    hand-made folder without one), weights must be finite and fit, and the "model" section may hold
    only the classifier's own fields, each in range (``ValueError`` naming the file otherwise)."""
    path = Path(path) if path is not None else _checkpoint_root() / DEFAULT_NAME
    if not path.is_dir():
        raise FileNotFoundError(f"classifier checkpoint {path} not found: expected a folder with model.safetensors "
                                f"and config.json; train it with python -m ddim_edu.evaluation.classifier --out {path}")
    config, state, weights_path = ck.read_model_dir(path, require_checksum, "the classifier's")
    where = path / ck.CONFIG_FILE
    mcfg = config.get("model")
    if not isinstance(mcfg, dict) or mcfg.get("type") != "mnist_classifier":
        raise ValueError(f"{where} does not describe an mnist_classifier (its 'model' is {mcfg!r})")
    mcfg = {k: v for k, v in mcfg.items() if k != "type"}
    allowed = ("width", "feature_dim", "num_classes")
    unknown = sorted(set(mcfg) - set(allowed))
    if unknown:
        raise ValueError(f"{where} has unknown classifier field(s) {unknown} in 'model'; allowed: {list(allowed)}")
    try:
        model = MNISTClassifier(**mcfg)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where} has an invalid classifier config: {e}") from None
    load_state_checked(model, state, str(weights_path))
    return model.to(torch.device(device) if device is not None else "cpu").eval()


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m ddim_edu.evaluation.classifier",
                                description="Train the small MNIST classifier used for classifier FID "
                                            "(4,500 shipped training digits; accuracy on the 500 held out).")
    p.add_argument("--out", default=f"checkpoints/{DEFAULT_NAME}", help="output folder")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["cpu", "cuda", "mps"], default=None)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    args = p.parse_args(argv)
    model, info = train_classifier(args.epochs, args.batch_size, args.lr, args.seed, args.device, args.progress)
    command = " ".join(["python -m ddim_edu.evaluation.classifier"] + [shlex.quote(a) for a in argv])
    save_classifier(model.cpu(), args.out, info, command)
    print(f"held-out accuracy {info['held_out_accuracy']:.4f} (train {info['train_accuracy']:.4f}), "
          f"{info['parameters']} parameters, {info['train_time_s']:.0f} s -> {os.fspath(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
