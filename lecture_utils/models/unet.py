"""A small U-Net (Ronneberger et al., 2015) for image-to-image translation, as pix2pix's generator.

An encoder halves the resolution ``depth`` times, a decoder doubles it back, and **skip connections**
hand each decoder level the encoder's features at the same resolution.  The skips carry the fine
detail (edges, texture positions) that a bottleneck alone would lose, which is why pix2pix and the
image-to-image notebooks (04 PatchGAN, 06 super-resolution, 07 inpainting/colorization/uncropping)
use it.

Input N x in_channels x H x W, output N x out_channels x H x W, with H and W divisible by 2**depth.
``final_activation``: ``"sigmoid"`` (default) for images in [0, 1], ``"tanh"`` for [-1, 1], ``None``
for unbounded outputs.  ``residual=True`` returns ``input + U-Net(input)`` (in_channels must equal
out_channels; use ``final_activation=None``): for restoration tasks the network then starts near the
identity and only learns the correction.
``upsample``: ``"transpose"`` (a 2 x 2 transposed convolution with stride 2, pix2pix's choice) or ``"resize"``
(nearest-neighbour doubling, then a 3 x 3 convolution).  A stride-2 transposed convolution paints every 2 x 2
block of output pixels with the same four kernel weights, and an adversarial loss, which rewards any texture,
turns that into a visible grid; resizing first gives every output pixel the same kind of neighbourhood
(Odena et al., 2016, "Deconvolution and checkerboard artifacts").
"""
from __future__ import annotations

import torch
from torch import nn

from ..checks import check_input_dtype

NORMS = ("batch", "instance", "none")
UPSAMPLING = ("transpose", "resize")
ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, None: nn.Identity}


def _norm(kind: str, channels: int) -> nn.Module:
    return {"batch": nn.BatchNorm2d(channels), "instance": nn.InstanceNorm2d(channels, affine=True),
            "none": nn.Identity()}[kind]


class ConvBlock(nn.Sequential):
    """Two 3 x 3 convolutions (same size), each followed by a norm and ReLU."""

    def __init__(self, c_in: int, c_out: int, norm: str = "batch"):
        bias = norm == "none"
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias), _norm(norm, c_out), nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=bias), _norm(norm, c_out), nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """U-Net: N x in_channels x H x W -> N x out_channels x H x W (H, W divisible by 2**depth).

    Args:
        in_channels, out_channels: e.g. 3 -> 3 (restoration, super-resolution on an upsampled input),
            1 -> 3 (colorization), 4 -> 3 (inpainting with a mask channel).
        depth: number of halvings (and doublings); the bottleneck is H / 2**depth.
        base_channels: feature maps at full resolution; they double per level (capped at 8x).
        norm: ``"batch"``, ``"instance"`` or ``"none"``.
        final_activation: ``"sigmoid"``, ``"tanh"`` or ``None``.
        residual: add the input to the output (in_channels == out_channels, final_activation None).
        upsample: ``"transpose"`` or ``"resize"`` (see the module's docstring).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, depth: int = 3, base_channels: int = 32,
                 norm: str = "batch", final_activation: str | None = "sigmoid", residual: bool = False,
                 upsample: str = "transpose"):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("depth", depth), ("base_channels", base_channels)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if upsample not in UPSAMPLING:
            raise ValueError(f"upsample must be one of {UPSAMPLING}, got {upsample!r}")
        if final_activation not in ACTIVATIONS:
            raise ValueError(f"final_activation must be one of {list(ACTIVATIONS)}, got {final_activation!r}")
        if residual and (in_channels != out_channels or final_activation is not None):
            raise ValueError(f"residual=True needs in_channels == out_channels and final_activation=None, got "
                             f"{in_channels} -> {out_channels} channels and final_activation={final_activation!r}")
        self.in_channels, self.out_channels, self.depth, self.residual = in_channels, out_channels, depth, residual
        widths = [base_channels * min(2 ** level, 8) for level in range(depth + 1)]
        self.stem = ConvBlock(in_channels, widths[0], norm)                           # N x w0 x H x W
        self.down = nn.ModuleList()
        for level in range(depth):
            self.down.append(nn.Sequential(
                nn.Conv2d(widths[level], widths[level], 4, stride=2, padding=1),     # N x w_l x H/2^(l+1) x ...
                ConvBlock(widths[level], widths[level + 1], norm),                    # N x w_(l+1) x H/2^(l+1) x ...
            ))
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for level in reversed(range(depth)):
            self.up.append(nn.ConvTranspose2d(widths[level + 1], widths[level], 2, stride=2)    # N x w_l x H/2^l x ...
                           if upsample == "transpose" else
                           nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                         nn.Conv2d(widths[level + 1], widths[level], 3, padding=1)))
            self.merge.append(ConvBlock(2 * widths[level], widths[level], norm))    # skip concatenated: 2 w_l in
        self.head = nn.Sequential(nn.Conv2d(widths[0], out_channels, 1),              # N x out_channels x H x W
                                  ACTIVATIONS[final_activation]())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"images must be N x {self.in_channels} x H x W, got shape {tuple(x.shape)}")
        check_input_dtype(x, "x", self)
        step = 2 ** self.depth
        if x.shape[2] % step or x.shape[3] % step:
            raise ValueError(f"height and width must be divisible by 2**depth = {step} (depth={self.depth}), "
                             f"got {x.shape[2]} x {x.shape[3]}")
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        h = skips.pop()                                                                # bottleneck
        for up, merge in zip(self.up, self.merge):
            h = merge(torch.cat([up(h), skips.pop()], dim=1))
        return x + self.head(h) if self.residual else self.head(h)
