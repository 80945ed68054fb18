"""The training data the command line can name: the shipped MNIST subset, torchvision datasets and
the 2-D toy sets, each loaded as one tensor with a description for the run's config.json."""
from __future__ import annotations

import torch

DATASETS = {
    "mnist": "the 4,500 MNIST training digits shipped with the package (offline; = mnist-subset)",
    "mnist-subset": "same as mnist",
    "mnist-full": "all 60,000 MNIST training digits from torchvision (download, or --data-root)",
    "fashion-mnist": "Fashion-MNIST training set from torchvision (download, or --data-root)",
    "cifar10": "CIFAR-10 training set from torchvision, 3x32x32 (download, or --data-root)",
    "gmm": "2-D Gaussian mixture (toy, --toy-n points)",
    "moons": "2-D two moons (toy)",
    "swiss_roll": "2-D swiss roll (toy)",
}
TOY = ("gmm", "moons", "swiss_roll")


def load_data(args) -> tuple[torch.Tensor, dict]:
    """The training tensor and a description of it for config.json."""
    from .. import data as D
    name = args.dataset
    if name in TOY:
        x = D.toy_dataset(name, n=args.toy_n, seed=args.seed)
        return x.float(), {"name": name, "n": int(x.shape[0]), "seed": args.seed, "shape": list(x.shape[1:])}
    if name in ("mnist", "mnist-subset"):
        x, _ = D.load_mnist("train", pad=args.pad)
        info = {"name": "mnist-subset", "split": "train", "description": DATASETS["mnist"]}
    else:
        out = D.load_dataset({"mnist-full": "mnist"}.get(name, name), "train", root=args.data_root, pad=args.pad)
        x = out[0] if isinstance(out, (tuple, list)) else out
        if name == "mnist-full" and x.shape[0] < 60000:
            raise SystemExit("--dataset mnist-full: full MNIST could not be loaded (offline?); "
                             "use --dataset mnist for the shipped 4,500 digits, or --data-root with the files")
        info = {"name": name, "split": "train"}
    return x.float(), {**info, "n": int(x.shape[0]), "pad": args.pad, "shape": list(x.shape[1:])}
