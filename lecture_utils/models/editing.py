"""One model for three image-editing tasks (notebook 07): inpainting, colorization and uncropping.

All three are the same conditional image-to-image problem: given a corrupted image and the mask of
what is missing, produce the clean image.  The missing pixels are first filled by the task's simple
baseline (:func:`lecture_utils.restoration.baseline`: mean fill, the grey copy, edge replication), and
:class:`EditingUNet` feeds this filled image *and* the mask (3 + 1 = 4 channels) to a U-Net
(:class:`~lecture_utils.models.unet.UNet`) that predicts a correction of the missing region only:

    output = mask * sigmoid(logit(filled) + UNet(filled, mask)) + (1 - mask) * filled

Known pixels stay as they were; for colorization the mask is all ones (every pixel's colour is missing,
and the grey input gives the brightness).  As the super-resolution network of notebook 06 adds a residual
to bicubic interpolation, the U-Net's last layer starts at zero, so the untrained model *is* the
baseline and training learns what the baseline misses.  The correction is added to the baseline's
logits, not to its pixels: the output stays in (0, 1) without a clamp, whose zero gradient would leave a
pixel pushed below 0 black for good.  The L1 loss on the output is an L1 loss
on the missing region, and the discriminator judges a composite image whose seams it can see.

Input: a tensor N x 4 x H x W = cat(filled N x 3 x H x W, mask N x 1 x H x W), as :func:`editing_input`
builds it; H and W must be multiples of 2**depth and at least ``min_size``.
"""
from __future__ import annotations

import torch
from torch import nn

from ..data import check_mask
from .unet import UNet

EPS = 1e-3  # pixel values are kept in [EPS, 1 - EPS] before the logit


def editing_input(filled: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The model's input: baseline-filled images (N x 3 x H x W) and masks (N x 1 x H x W) stacked to N x 4 x H x W."""
    if not torch.is_tensor(filled) or filled.ndim != 4 or filled.shape[1] != 3:
        shape = tuple(filled.shape) if torch.is_tensor(filled) else type(filled).__name__
        raise ValueError(f"the images must be N x 3 x H x W (colour images), got shape {shape}")
    return torch.cat([filled, check_mask(mask, filled).to(filled.device, filled.dtype)], dim=1)


class EditingUNet(nn.Module):
    """cat(filled, mask) N x 4 x H x W -> restored images N x 3 x H x W in [0, 1], known pixels kept.

    ``depth``, ``base_channels``, ``norm``: the U-Net's (no output activation: it predicts a correction).
    ``min_size`` (default 4 * 2**depth: a bottleneck of at least 4 x 4) is the smallest image side it accepts.
    """

    def __init__(self, depth: int = 3, base_channels: int = 32, norm: str = "batch", min_size: int | None = None):
        super().__init__()
        self.unet = UNet(in_channels=4, out_channels=3, depth=depth, base_channels=base_channels, norm=norm,
                         final_activation=None)
        last = [m for m in self.unet.modules() if isinstance(m, nn.Conv2d)][-1]   # the 1 x 1 output convolution
        nn.init.zeros_(last.weight)                                               # start exactly at the baseline
        nn.init.zeros_(last.bias)
        self.depth = depth
        self.min_size = 4 * 2 ** depth if min_size is None else int(min_size)

    def check_input(self, x: torch.Tensor) -> None:
        """ValueError unless ``x`` is N x 4 x H x W with H, W >= min_size and multiples of 2**depth."""
        if not torch.is_tensor(x) or x.ndim != 4 or x.shape[1] != 4:
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ValueError("input must be N x 4 x H x W: the baseline-filled image (3 channels) and its mask "
                             f"(1 channel), as editing_input(filled, mask) builds it; got shape {shape}")
        h, w = x.shape[2:]
        if min(h, w) < self.min_size:
            raise ValueError(f"images must be at least {self.min_size} x {self.min_size} pixels for a U-Net of "
                             f"depth {self.depth}, got {h} x {w}")
        step = 2 ** self.depth
        if h % step or w % step:
            raise ValueError(f"height and width must be multiples of 2**depth = {step}, got {h} x {w} "
                             f"(crop to {h - h % step} x {w - w % step})")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        filled, mask = x[:, :3], x[:, 3:]
        start = torch.logit(filled.clamp(EPS, 1 - EPS))                          # the baseline, as logits
        painted = torch.sigmoid(start + self.unet(x))                            # N x 3 x H x W in (0, 1)
        return mask * painted + (1 - mask) * filled
