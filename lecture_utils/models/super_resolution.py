"""Super-resolution networks (notebook 06): a low-resolution image in, an image ``scale`` times larger out.

:class:`SuperResolutionNet` is a small residual network in the style of EDSR (Lim et al., 2017) with
ESPCN's **sub-pixel convolution** (Shi et al., 2016) at the end:

* every convolution works at the *low* resolution (cheap: 1/scale^2 of the pixels);
* the last convolution outputs ``3 * scale^2`` channels, and ``PixelShuffle(scale)`` rearranges each
  group of scale^2 channels into a scale x scale block of output pixels — a learned upsampling
  without the checkerboard artefacts of transposed convolutions;
* the network predicts only what bicubic interpolation misses: its output is added to the bicubic
  upscaling of the input (a global residual, as in VDSR), so an untrained network already starts
  at the bicubic baseline.

Images are float tensors N x 3 x h x w in [0, 1]; the output is N x 3 x (scale h) x (scale w), not
clamped (train with L1 on it; :func:`~lecture_utils.restoration.upscale` clamps for display and metrics).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_input_dtype

SCALES = (2, 3, 4)
MIN_INPUT_SIZE = 4  # pixels a side: smaller inputs are nearly all border for the 3 x 3 convolutions


class ResidualBlock(nn.Module):
    """conv 3x3 - ReLU - conv 3x3, added to the input (no batch norm, as EDSR); ``residual_scale`` damps it."""

    def __init__(self, features: int, residual_scale: float = 1.0):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(features, features, 3, padding=1), nn.ReLU(inplace=True),   # N x f x h x w
            nn.Conv2d(features, features, 3, padding=1),                          # N x f x h x w
        )
        self.residual_scale = residual_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.residual_scale * self.body(x)


class SuperResolutionNet(nn.Module):
    """N x channels x h x w -> N x channels x (scale h) x (scale w): residual blocks and a sub-pixel convolution.

    Args:
        scale: 2, 3 or 4.
        features: feature maps in the body.
        n_blocks: residual blocks (0 gives ESPCN-like head -> upsampler).
        channels: 3 for colour.
    """

    def __init__(self, scale: int = 4, features: int = 32, n_blocks: int = 4, channels: int = 3):
        super().__init__()
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
        for name, value in (("features", features), ("channels", channels)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(n_blocks, int) or n_blocks < 0:
            raise ValueError(f"n_blocks must be a non-negative int, got {n_blocks!r}")
        self.scale, self.channels = scale, channels
        self.head = nn.Conv2d(channels, features, 3, padding=1)                   # N x f x h x w
        self.body = nn.Sequential(*[ResidualBlock(features, 0.5) for _ in range(n_blocks)],
                                  nn.Conv2d(features, features, 3, padding=1))    # N x f x h x w
        self.upsample = nn.Sequential(
            nn.Conv2d(features, channels * scale * scale, 3, padding=1),          # N x (C s^2) x h x w
            nn.PixelShuffle(scale),                                               # N x C x sh x sw
        )
        nn.init.zeros_(self.upsample[0].weight)   # start exactly at the bicubic baseline
        nn.init.zeros_(self.upsample[0].bias)

    def check_input(self, x: torch.Tensor) -> None:
        """ValueError unless ``x`` is N x channels x h x w with h, w >= MIN_INPUT_SIZE."""
        if not torch.is_tensor(x) or x.ndim != 4 or x.shape[1] != self.channels:
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f"low-resolution images must be N x {self.channels} x h x w, got shape {shape}")
        if min(x.shape[2:]) < MIN_INPUT_SIZE:
            raise ValueError(f"low-resolution images must be at least {MIN_INPUT_SIZE} x {MIN_INPUT_SIZE} pixels, "
                             f"got {x.shape[2]} x {x.shape[3]}")
        check_input_dtype(x, "x", self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        h = self.head(x)                                                          # N x f x h x w
        h = h + self.body(h)                                                      # N x f x h x w (long skip)
        residual = self.upsample(h)                                               # N x C x sh x sw
        base = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return base + residual
