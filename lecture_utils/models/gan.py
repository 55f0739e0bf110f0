"""Fully connected GANs (Goodfellow et al., 2014): a generator G(z) and a discriminator D(x).

Both are plain MLPs.  The generator maps noise ``z`` (N x latent_dim) to samples of any shape
(a 1-D point, a 2-D point, a 1 x 28 x 28 image); the discriminator returns one *logit* per sample,
D(x) = sigmoid(logit), so that the losses in :mod:`lecture_utils.losses` stay numerically stable.

``pack`` > 1 turns the discriminator into a PacGAN discriminator (Lin et al., 2018): it judges
``pack`` samples at once, concatenated, which lets it see that a batch of fakes lacks variety —
a remedy for mode collapse.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..checks import check_input_dtype

OUTPUTS = ("tanh", "linear")


def _as_shape(shape) -> tuple[int, ...]:
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if not shape or any((not isinstance(s, int)) or s < 1 for s in shape):
        raise ValueError(f"sample shape must be a positive int or a tuple of positive ints, got {shape!r}")
    return shape


class MLPGenerator(nn.Module):
    """G: noise N x latent_dim -> samples N x *sample_shape.

    ``output="tanh"`` for images scaled to [-1, 1]; ``"linear"`` for unbounded toy data.
    """

    def __init__(self, latent_dim: int = 64, sample_shape=(1, 28, 28), hidden: tuple[int, ...] = (256, 512),
                 output: str = "tanh", batch_norm: bool = False):
        super().__init__()
        if not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive int, got {latent_dim!r}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        self.latent_dim = latent_dim
        self.sample_shape = _as_shape(sample_shape)
        sizes = (latent_dim, *hidden)
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers.append(nn.Linear(a, b))                                             # N x hidden[i]
            if batch_norm:
                layers.append(nn.BatchNorm1d(b))
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Linear(sizes[-1], math.prod(self.sample_shape)))             # N x prod(sample_shape)
        if output == "tanh":
            layers.append(nn.Tanh())                                                   # values in (-1, 1)
        layers.append(nn.Unflatten(1, self.sample_shape))                              # N x *sample_shape
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must be N x {self.latent_dim}, got shape {tuple(z.shape)}")
        check_input_dtype(z, "z", self)
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """D: samples N x *sample_shape -> logits N (one per sample, or one per pack of ``pack`` samples).

    LeakyReLU(0.2) hidden layers, as is usual for discriminators (gradients flow for every input).
    With ``pack`` = m > 1 the batch (N divisible by m) is cut into N/m groups of m consecutive samples,
    each group judged as one: the output has N/m logits (PacGAN).
    """

    def __init__(self, sample_shape=(1, 28, 28), hidden: tuple[int, ...] = (512, 256), pack: int = 1,
                 dropout: float = 0.0):
        super().__init__()
        if not isinstance(pack, int) or pack < 1:
            raise ValueError(f"pack must be a positive int, got {pack!r}")
        self.sample_shape = _as_shape(sample_shape)
        self.pack = pack
        sizes = (pack * math.prod(self.sample_shape), *hidden)
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.LeakyReLU(0.2, inplace=True)]               # N/pack x hidden[i]
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(sizes[-1], 1))                                         # N/pack x 1 logit
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.sample_shape:
            raise ValueError(f"samples must be N x {' x '.join(map(str, self.sample_shape))}, got shape {tuple(x.shape)}")
        if x.shape[0] % self.pack:
            raise ValueError(f"the batch size {x.shape[0]} must be divisible by pack={self.pack}")
        check_input_dtype(x, "x", self)
        return self.net(x.reshape(x.shape[0] // self.pack, -1)).squeeze(1)           # N/pack logits
