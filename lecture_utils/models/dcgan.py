"""DCGAN (Radford, Metz & Chintala, 2016): the convolutional generator and discriminator.

Generator, as in the lecture and the paper's Figure 1: **project and reshape** the noise to a 4 x 4
stack of feature maps, then **fractionally-strided convolutions** (``ConvTranspose2d`` with stride 2:
the transpose, or adjoint, of a strided convolution, not its inverse), each doubling the image size, with batch norm and ReLU in between and ``tanh`` at the end.  For the
paper's 64 x 64 images that is **four** of them (4 -> 8 -> 16 -> 32 -> 64); for 32 x 32 images the
same network without its widest layer, three (pytorch/examples' DCGAN is written for 64 x 64 only).  ``channels=3``
generates colour images, ``channels=1`` grey ones.

(Why not keep four layers at 32 x 32 by projecting to 2 x 2?  We tried: on MNIST that generator
collapsed to a single image within the first epoch, with our loop and with pytorch/examples' loop
alike, while the 4 x 4 projection trains.  We have not pinned down why.)

Discriminator: the mirror image -- strided convolutions (stride 2, 4 x 4 kernels) with LeakyReLU(0.2),
batch norm on all but the first, down to 4 x 4, then one 4 x 4 convolution to a single logit per
image.  ``spectral_norm=True`` replaces batch norm by spectral normalisation of every weight (Miyato
et al., 2018), which keeps D's gradients useful to G.

Images are N x channels x image_size x image_size in [-1, 1] (tanh range).  Weights start as in
the paper: N(0, 0.02) for convolutions, N(1, 0.02) for batch-norm scales.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from ..checks import check_input_dtype


START = 4  # side of the projected feature maps (the paper's 4 x 4)


def stride2_layers(image_size: int) -> int:
    """Number of stride-2 (fractionally-strided) layers between 4 x 4 and ``image_size``: 3 for 32, 4 for 64."""
    if not isinstance(image_size, int) or image_size < 16 or image_size & (image_size - 1):
        raise ValueError(f"image_size must be a power of two, at least 16 (e.g. 32 or 64), got {image_size!r}")
    return image_size.bit_length() - 1 - 2


def dcgan_init(module: nn.Module) -> None:
    """The DCGAN paper's initialisation: weights N(0, 0.02); batch-norm scales N(1, 0.02), shifts 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            weight = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.normal_(weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    """G: noise N x latent_dim -> images N x channels x image_size x image_size in (-1, 1).

    ``features`` (the paper's ngf) sets the width: the last hidden layer has ``features`` maps and each
    layer before it twice as many (64 x 64: 8f, 4f, 2f, f; 32 x 32: 4f, 2f, f).
    """

    def __init__(self, latent_dim: int = 100, channels: int = 1, image_size: int = 32, features: int = 64):
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (colour), got {channels!r}")
        if not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive int, got {latent_dim!r}")
        n = stride2_layers(image_size)
        self.latent_dim, self.channels, self.image_size = latent_dim, channels, image_size
        widths = [features * 2 ** (n - 1 - i) for i in range(n)]  # e.g. [4f, 2f, f] for 32 x 32
        self.project = nn.Sequential(                       # project and reshape
            nn.Linear(latent_dim, widths[0] * START * START, bias=False),
            nn.Unflatten(1, (widths[0], START, START)),     # state size. widths[0] x 4 x 4
            nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]  # state size. c_out x (2 x previous side)
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, stride=2, padding=1, bias=False),
                   nn.Tanh()]                               # state size. channels x image_size x image_size
        self.convolutions = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must be N x {self.latent_dim}, got shape {tuple(z.shape)}")
        check_input_dtype(z, "z", self)
        return self.convolutions(self.project(z))


class DCGANDiscriminator(nn.Module):
    """D: images N x channels x image_size x image_size (in [-1, 1]) -> logits N.

    ``features`` (the paper's ndf): f, 2f, 4f (, 8f for 64 x 64) feature maps.  ``spectral_norm=True``
    normalises every weight and drops batch norm (``batch_norm`` defaults to ``not spectral_norm``).
    """

    def __init__(self, channels: int = 1, image_size: int = 32, features: int = 64, spectral_norm: bool = False,
                 batch_norm: bool | None = None):
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (colour), got {channels!r}")
        n = stride2_layers(image_size)
        self.channels, self.image_size = channels, image_size
        batch_norm = (not spectral_norm) if batch_norm is None else batch_norm

        def conv(c_in, c_out, stride, padding):
            layer = nn.Conv2d(c_in, c_out, 4, stride=stride, padding=padding, bias=not batch_norm)
            return _spectral_norm(layer) if spectral_norm else layer

        widths = [features * 2 ** i for i in range(n)]      # e.g. [f, 2f, 4f] for 32 x 32
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip([channels] + widths[:-1], widths)):
            layers.append(conv(c_in, c_out, 2, 1))          # state size. c_out x (previous side / 2)
            if i > 0 and batch_norm:                        # (no batch norm on the input layer, as the paper)
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        layers += [conv(widths[-1], 1, 1, 0),               # state size. 1 x 1 x 1: one logit
                   nn.Flatten(0)]                           # N logits
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = (self.channels, self.image_size, self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"images must be N x {' x '.join(map(str, expected))}, got shape {tuple(x.shape)}")
        check_input_dtype(x, "x", self)
        return self.net(x)
