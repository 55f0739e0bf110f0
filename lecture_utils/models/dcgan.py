"""DCGAN (Radford, Metz & Chintala, 2016): the convolutional generator and discriminator.

Generator, as in the lecture and the paper's Figure 1: **project and reshape** the noise to a small
stack of feature maps, then **four fractionally-strided convolutions** (``ConvTranspose2d`` with
stride 2), each doubling the image size, with batch norm and ReLU in between and ``tanh`` at the end.
For a 64 x 64 image the projection gives 4 x 4 maps (the paper); for 32 x 32 it gives 2 x 2.
``channels=3`` generates colour images, ``channels=1`` grey ones.

Discriminator: the mirror image — four strided convolutions with LeakyReLU(0.2), batch norm on all
but the first, then one convolution to a single logit per image.  ``spectral_norm=True`` replaces
batch norm by spectral normalisation of every weight (Miyato et al., 2018), which keeps D
1-Lipschitz-ish and its gradients useful to G.

Images are N x channels x image_size x image_size in [-1, 1] (tanh range).  Weights start as in
the paper: N(0, 0.02) for convolutions, N(1, 0.02) for batch-norm scales.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm


def _check_size(image_size: int) -> int:
    if not isinstance(image_size, int) or image_size < 32 or image_size % 16:
        raise ValueError(f"image_size must be a multiple of 16 and at least 32 (four stride-2 layers), got {image_size!r}")
    return image_size // 16


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

    ``features`` (the paper's ngf) sets the width: 8f, 4f, 2f, f feature maps before the image.
    """

    def __init__(self, latent_dim: int = 100, channels: int = 1, image_size: int = 32, features: int = 64):
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (colour), got {channels!r}")
        start = _check_size(image_size)
        self.latent_dim, self.channels, self.image_size = latent_dim, channels, image_size
        f = features
        self.project = nn.Sequential(                       # project and reshape
            nn.Linear(latent_dim, 8 * f * start * start, bias=False),
            nn.Unflatten(1, (8 * f, start, start)),         # state size. (f*8) x s/16 x s/16
            nn.BatchNorm2d(8 * f), nn.ReLU(inplace=True),
        )

        def up(c_in, c_out):
            return [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
                    nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

        self.convolutions = nn.Sequential(
            *up(8 * f, 4 * f),                              # state size. (f*4) x s/8 x s/8
            *up(4 * f, 2 * f),                              # state size. (f*2) x s/4 x s/4
            *up(2 * f, f),                                  # state size. f x s/2 x s/2
            nn.ConvTranspose2d(f, channels, 4, stride=2, padding=1, bias=False),
            nn.Tanh(),                                      # state size. channels x s x s, in (-1, 1)
        )
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must be N x {self.latent_dim}, got shape {tuple(z.shape)}")
        return self.convolutions(self.project(z))


class DCGANDiscriminator(nn.Module):
    """D: images N x channels x image_size x image_size (in [-1, 1]) -> logits N.

    ``features`` (the paper's ndf): f, 2f, 4f, 8f feature maps.  ``spectral_norm=True`` normalises
    every weight and drops batch norm (``batch_norm`` defaults to ``not spectral_norm``).
    """

    def __init__(self, channels: int = 1, image_size: int = 32, features: int = 64, spectral_norm: bool = False,
                 batch_norm: bool | None = None):
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (colour), got {channels!r}")
        end = _check_size(image_size)
        self.channels, self.image_size = channels, image_size
        batch_norm = (not spectral_norm) if batch_norm is None else batch_norm
        f = features

        def conv(c_in, c_out, kernel, stride, padding):
            layer = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=not batch_norm)
            return _spectral_norm(layer) if spectral_norm else layer

        def down(c_in, c_out, norm=True):
            layers = [conv(c_in, c_out, 4, 2, 1)]
            if norm and batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            return layers + [nn.LeakyReLU(0.2, inplace=True)]

        self.net = nn.Sequential(
            *down(channels, f, norm=False),                 # state size. f x s/2 x s/2
            *down(f, 2 * f),                                # state size. (f*2) x s/4 x s/4
            *down(2 * f, 4 * f),                            # state size. (f*4) x s/8 x s/8
            *down(4 * f, 8 * f),                            # state size. (f*8) x s/16 x s/16
            conv(8 * f, 1, end, 1, 0),                      # state size. 1 x 1 x 1: one logit
            nn.Flatten(0),                                  # N logits
        )
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = (self.channels, self.image_size, self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"images must be N x {' x '.join(map(str, expected))}, got shape {tuple(x.shape)}")
        return self.net(x)
