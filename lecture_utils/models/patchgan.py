"""PatchGAN discriminator (Isola et al., 2017, "pix2pix"): a real/fake logit for every patch.

Instead of one verdict per image, a fully convolutional network returns a *map* of logits; each
logit sees only a square window of the input — its **receptive field** — and judges whether that
patch looks real.  Averaging the loss over the map asks every patch to look real, which punishes
blur (blur is a local property) without modelling the whole image at once.

The architecture is pix2pix's ``NLayerDiscriminator``: ``n_layers`` stride-2 convolutions (4 x 4
kernels), then two stride-1 convolutions, the last to one channel.  The receptive field of an output
logit is 16, 34, 70 pixels for 1, 2, 3 layers (:func:`receptive_field`); pix2pix's default is the
70 x 70 PatchGAN.  :func:`~lecture_utils.gans.measure_receptive_field` measures it on a real network with autograd.
"""
from __future__ import annotations

import torch
from torch import nn

from ..checks import check_input_dtype

NORMS = ("batch", "instance", "none")
KERNEL = 4


def _layer_specs(n_layers: int) -> list[tuple[int, int]]:
    """(kernel, stride) of each convolution, input to output."""
    return [(KERNEL, 2)] * n_layers + [(KERNEL, 1), (KERNEL, 1)]


def receptive_field(n_layers: int = 3) -> int:
    """Side, in input pixels, of the square window that one output logit of the PatchGAN sees.

    Walk back from one output pixel: a layer with kernel k and stride s turns a window of r pixels of
    its output into (r - 1) * s + k pixels of its input.
    """
    if not isinstance(n_layers, int) or n_layers < 1:
        raise ValueError(f"n_layers must be a positive int, got {n_layers!r}")
    size = 1
    for kernel, stride in reversed(_layer_specs(n_layers)):
        size = (size - 1) * stride + kernel
    return size


class PatchDiscriminator(nn.Module):
    """D: images N x in_channels x H x W -> a map of logits N x 1 x H' x W' (one per patch).

    ``in_channels``: 3 for an unconditional colour image; 6 for pix2pix's conditional D, which sees
    the input image and the (real or generated) output concatenated.  ``features`` (ndf) = 64 in
    pix2pix; feature maps double per layer up to 8 * features.  H and W must be at least
    3 * 2**n_layers pixels (a map of at least 1 x 1 logits); each logit sees
    ``receptive_field(n_layers)`` pixels a side, clipped by the image border.
    """

    def __init__(self, in_channels: int = 3, features: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        if not isinstance(n_layers, int) or n_layers < 1:
            raise ValueError(f"n_layers must be a positive int, got {n_layers!r}")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.in_channels, self.n_layers = in_channels, n_layers

        def norm_layer(c):
            return {"batch": nn.BatchNorm2d(c), "instance": nn.InstanceNorm2d(c, affine=True),
                    "none": nn.Identity()}[norm]

        bias = norm == "none"
        layers: list[nn.Module] = [nn.Conv2d(in_channels, features, KERNEL, stride=2, padding=1),
                                   nn.LeakyReLU(0.2, inplace=True)]                    # N x f x H/2 x W/2
        c = features
        for n in range(1, n_layers):
            c_next = features * min(2 ** n, 8)
            layers += [nn.Conv2d(c, c_next, KERNEL, stride=2, padding=1, bias=bias), norm_layer(c_next),
                       nn.LeakyReLU(0.2, inplace=True)]                                # N x c x H/2^(n+1) x W/2^(n+1)
            c = c_next
        c_next = features * min(2 ** n_layers, 8)
        layers += [nn.Conv2d(c, c_next, KERNEL, stride=1, padding=1, bias=bias), norm_layer(c_next),
                   nn.LeakyReLU(0.2, inplace=True)]                                    # N x c x (H/2^n - 1) x ...
        layers.append(nn.Conv2d(c_next, 1, KERNEL, stride=1, padding=1))               # N x 1 x (H/2^n - 2) x ...
        self.net = nn.Sequential(*layers)

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.n_layers)

    def output_size(self, input_size: int) -> int:
        """Side of the logit map for a square input of side ``input_size``."""
        size = input_size
        for kernel, stride in _layer_specs(self.n_layers):
            size = (size + 2 * 1 - kernel) // stride + 1
        return size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"images must be N x {self.in_channels} x H x W, got shape {tuple(x.shape)}")
        check_input_dtype(x, "x", self)
        if min(x.shape[2:]) < 2 ** self.n_layers * 3:
            raise ValueError(f"images of {x.shape[2]} x {x.shape[3]} are too small for {self.n_layers} stride-2 "
                             f"layers; use at least {2 ** self.n_layers * 3} pixels a side")
        return self.net(x)
