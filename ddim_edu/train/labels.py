r"""Training with class labels for classifier-free guidance (Ho & Salimans 2022, Algorithm 1):
each example keeps its label y with probability 1 − p_uncond and gets the null label ∅ otherwise,
so one network learns the conditional ε_θ(x_t, t, y) and the unconditional ε_θ(x_t, t, ∅)
with the same L_simple (DDPM eq. 14):

    L(θ) = E_{t, (x_0, y), ε, c ~ Bernoulli(p_uncond)} ‖ε − ε_θ(x_t, t, c ? ∅ : y)‖².

The :class:`~ddim_edu.train.trainer.Trainer` takes ``labels=`` and calls :func:`label_batch` each
step; the CLI's ``--conditional`` loads the labels with :func:`load_labels`."""
from __future__ import annotations

import torch

from ..validation import check_float, check_generator

__all__ = ["drop_labels", "label_batch", "LabelledModel", "check_training_labels", "with_label_embedding", "load_labels"]


def drop_labels(y: torch.Tensor, p_uncond: float, null_label: int,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """``y`` (LongTensor [B]) with each label replaced by ``null_label`` (∅) independently with
    probability ``p_uncond`` (Ho & Salimans 2022, Algorithm 1, line 3); the draw comes from
    ``generator`` (CPU). ``p_uncond = 0`` returns ``y`` unchanged without drawing."""
    p_uncond = check_float("p_uncond", p_uncond, lo=0.0, hi=1.0)
    check_generator("generator", generator)
    if p_uncond == 0.0:
        return y
    drop = torch.rand(y.shape, generator=generator) < p_uncond
    return torch.where(drop.to(y.device), torch.full_like(y, null_label), y)


class LabelledModel(torch.nn.Module):
    """``model(x, t)`` → ``net(x, t, y)`` for a fixed batch of labels ``y`` [B]: a conditional
    network behind the sampler/loss signature ε(x_t, t)."""

    def __init__(self, net, y: torch.Tensor):
        super().__init__()
        self.net, self.y = net, y

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(x, t, self.y)


def check_training_labels(model, labels, n: int, device) -> tuple[torch.Tensor | None, int]:
    """``(labels on device, the null label)`` for a trainer of ``model`` on ``n`` examples, or
    ``(None, 0)`` without labels. ``labels`` must be a LongTensor [n] in 0..num_classes−1 and
    ``model`` conditional (a ``num_classes`` attribute, e.g. :class:`~ddim_edu.nets.ConditionalUNet`);
    ``TypeError``/``ValueError`` otherwise."""
    if labels is None:
        return None, 0
    k = getattr(model, "num_classes", None)
    if k is None:
        raise TypeError(f"labels were given but the model ({type(model).__name__}) is not class-conditional; "
                        "use ddim_edu.nets.ConditionalUNet (CLI: --conditional), or labels=None")
    from ..nets.conditional import check_labels
    return check_labels("labels", labels, n, k, allow_null=False).to(device), k


def with_label_embedding(model, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Warm start of a conditional ``model`` from an unconditional UNet's ``weights`` (``--init
    checkpoints/mnist --conditional``): ``weights`` plus ``model``'s own freshly initialised label
    embedding (∅ = zero, so ε(x_t, t, ∅) starts as exactly the unconditional network; the classes
    small random codes, see :class:`~ddim_edu.nets.ConditionalUNet`). Anything else (weights that
    already hold a label embedding, another model) is returned as is."""
    key = "label_emb.weight"
    emb = getattr(model, "label_emb", None)
    if emb is None or key in weights or any(k.startswith("label_emb.") for k in weights):
        return weights
    return {**weights, key: emb.weight.detach().to("cpu").clone()}


def label_batch(net, labels: torch.Tensor | None, idx: torch.Tensor, p_uncond: float, null_label: int,
                generator: torch.Generator | None = None):
    """The callable the loss evaluates for the batch ``idx``: ``net`` itself without labels,
    else :class:`LabelledModel` with ``labels[idx]`` after :func:`drop_labels`."""
    if labels is None:
        return net
    return LabelledModel(net, drop_labels(labels[idx], p_uncond, null_label, generator))


def load_labels(args) -> torch.Tensor:
    """The class labels (LongTensor [N]) of the CLI's image dataset ``args.dataset``, in the order
    :func:`ddim_edu.train.datasets.load_data` returns the images; ``SystemExit`` for a toy set."""
    from .. import data as D
    name = args.dataset
    if name in ("gmm", "moons", "swiss_roll"):
        raise SystemExit(f"--conditional needs a labelled image dataset; {name} has no labels")
    if name in ("mnist", "mnist-subset"):
        return D.load_mnist("train", pad=args.pad)[1]
    out = D.load_dataset({"mnist-full": "mnist"}.get(name, name), "train", root=args.data_root, pad=args.pad)
    return torch.as_tensor(out[1], dtype=torch.long)
