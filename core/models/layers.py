"""Building blocks shared by the models: 28x28 conv stacks and dense stacks."""

from __future__ import annotations

import contextlib

from torch import nn


def mlp(sizes: list[int], slope: float = 0.2, out_act: nn.Module | None = None, dropout: float = 0.0,
        norm: bool = False) -> nn.Sequential:
    """Dense stack sizes[0] -> ... -> sizes[-1]; between layers optional batch norm, leaky ReLU, optional dropout."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            if norm:
                layers.append(nn.BatchNorm1d(b))
            layers.append(nn.LeakyReLU(slope))
            if dropout:
                layers.append(nn.Dropout(dropout))
    if out_act is not None:
        layers.append(out_act)
    return nn.Sequential(*layers)


def conv_features(width: int, norm: bool = False) -> nn.Sequential:
    """(B, 1, 28, 28) -> (B, 2*width*7*7): two stride-2 convs, leaky ReLU (DCGAN's discriminator body)."""
    return nn.Sequential(
        nn.Conv2d(1, width, 4, 2, 1),  # (B, w, 14, 14)
        nn.LeakyReLU(0.2),
        nn.Conv2d(width, 2 * width, 4, 2, 1),  # (B, 2w, 7, 7)
        nn.BatchNorm2d(2 * width) if norm else nn.Identity(),
        nn.LeakyReLU(0.2),
        nn.Flatten(),
    )


def conv_image_head(in_dim: int, width: int, norm: bool = False) -> nn.Sequential:
    """(B, in_dim) -> (B, 1, 28, 28) pre-activation: dense to 7x7, two stride-2 transposed convs."""
    return nn.Sequential(
        nn.Linear(in_dim, 2 * width * 7 * 7),
        nn.Unflatten(1, (2 * width, 7, 7)),
        nn.BatchNorm2d(2 * width) if norm else nn.Identity(),
        nn.ReLU(),
        nn.ConvTranspose2d(2 * width, width, 4, 2, 1),  # (B, w, 14, 14)
        nn.BatchNorm2d(width) if norm else nn.Identity(),
        nn.ReLU(),
        nn.ConvTranspose2d(width, 1, 4, 2, 1),  # (B, 1, 28, 28)
    )



def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")


def check_range(name: str, value, lo, hi) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {value!r}")


@contextlib.contextmanager
def evaluating(model: nn.Module):
    """Eval mode (batch norm on running statistics, no dropout) for the block, then the previous mode."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
