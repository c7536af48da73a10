"""Building blocks shared by the models: conv stacks for square images (28x28 for MNIST; any side divisible
by 4), dense stacks, and the argument checks every config class uses."""

from __future__ import annotations

import contextlib

from torch import nn

from core.checks import check_choice, check_int, check_range  # noqa: F401  (re-exported for the config classes)


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


def conv_features(width: int, norm: bool = False, channels: int = 1) -> nn.Sequential:
    """(B, C, S, S) -> (B, 2*width*(S/4)^2): two stride-2 convs, leaky ReLU (DCGAN's discriminator body)."""
    return nn.Sequential(
        nn.Conv2d(channels, width, 4, 2, 1),  # (B, w, S/2, S/2): 14x14 for MNIST
        nn.LeakyReLU(0.2),
        nn.Conv2d(width, 2 * width, 4, 2, 1),  # (B, 2w, S/4, S/4): 7x7
        nn.BatchNorm2d(2 * width) if norm else nn.Identity(),
        nn.LeakyReLU(0.2),
        nn.Flatten(),
    )


def conv_image_head(in_dim: int, width: int, norm: bool = False, channels: int = 1, size: int = 28) -> nn.Sequential:
    """(B, in_dim) -> (B, C, S, S) pre-activation: dense to S/4 x S/4, two stride-2 transposed convs."""
    q = size // 4
    return nn.Sequential(
        nn.Linear(in_dim, 2 * width * q * q),
        nn.Unflatten(1, (2 * width, q, q)),
        nn.BatchNorm2d(2 * width) if norm else nn.Identity(),
        nn.ReLU(),
        nn.ConvTranspose2d(2 * width, width, 4, 2, 1),  # (B, w, S/2, S/2)
        nn.BatchNorm2d(width) if norm else nn.Identity(),
        nn.ReLU(),
        nn.ConvTranspose2d(width, channels, 4, 2, 1),  # (B, C, S, S)
    )


def check_image(channels, image_size) -> None:
    """The image shape a config builds its nets for: the conv stacks halve the side twice."""
    check_int("channels", channels, 1, 4)
    check_int("image_size", image_size, 8, 256)
    if image_size % 4:
        raise ValueError(f"image_size must be divisible by 4 (two stride-2 layers), got {image_size}")



@contextlib.contextmanager
def evaluating(model: nn.Module):
    """Eval mode (batch norm on running statistics, no dropout) for the block, then the previous mode."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
