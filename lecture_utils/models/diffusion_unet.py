"""The denoiser of notebook 10: a small U-Net eps_theta(x_t, t, y) that predicts the noise in x_t.

Ho et al. (2020) use a U-Net (Ronneberger et al., 2015) whose every residual block also receives the
time step t, turned into a vector by a sinusoidal embedding (the position encoding of transformers) and
a small MLP.  A class-conditional model adds a learned class embedding to the same vector; one extra
index, :data:`NO_CLASS` (= ``num_classes``), means "no class": training replaces 10 % of the labels by it,
so the one network is both the conditional and the unconditional model that classifier-free guidance
combines (Ho & Salimans, 2022).

For 1 x 28 x 28 digits: two resolutions below full size (28 -> 14 -> 7), group norm, SiLU, no attention.
Input and output N x C x H x W (H, W divisible by 4), ``t`` int64 N in [0, T), ``y`` int64 N in
[0, num_classes] (num_classes = no class).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..checks import check_input_dtype


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer (or real) time steps: N -> N x dim, [cos(t f_k), sin(t f_k)] with
    frequencies f_k = max_period^(-k / (dim / 2)), k = 0 .. dim/2 - 1 (Vaswani et al., 2017)."""
    if dim % 2:
        raise ValueError(f"dim must be even, got {dim}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None]                                     # N x dim/2
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)               # N x dim



def condition_embedding(model: nn.Module, t: torch.Tensor, y: torch.Tensor | None, width: int) -> torch.Tensor:
    """The time (+ class) embedding both denoisers condition on: ``model.time_mlp`` of the sinusoidal embedding
    of t (``width`` frequencies), plus ``model.class_emb(y)`` when the model has classes; y = None means the
    "no class" token for every row (the unconditional prediction of classifier-free guidance)."""
    emb = model.time_mlp(timestep_embedding(t, width))
    if model.class_emb is not None:
        emb = emb + model.class_emb(torch.full_like(t, model.no_class) if y is None else y)
    return emb


class ResBlock(nn.Module):
    """norm -> SiLU -> conv 3x3, norm scaled and shifted by the embedding (one scale and one shift per channel,
    "FiLM"), SiLU -> conv 3x3, plus a skip (1 x 1 conv when the channel count changes)."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int = 8):
        super().__init__()
        self.norm1 = nn.GroupNorm(min(groups, c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * c_out)
        self.norm2 = nn.GroupNorm(min(groups, c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)               # each block starts as the identity (a stable start)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.conv2(F.silu(self.norm2(h) * (1 + scale) + shift))
        return self.skip(x) + h


class DiffusionUNet(nn.Module):
    """eps_theta(x_t, t, y): N x C x H x W -> N x C x H x W (the predicted noise).

    Args:
        image_channels: 1 for digits (4 for the latent codes of notebook 10's section 6, say).
        channels: feature maps per resolution, full size first, e.g. (16, 32, 64) at 28, 14 and 7 pixels.
        num_classes: classes of the conditional model; index ``num_classes`` is "no class".  0: unconditional.
        emb_dim: size of the time (+ class) embedding vector every block receives.
    """

    def __init__(self, image_channels: int = 1, channels: tuple[int, int, int] = (16, 32, 64),
                 num_classes: int = 10, emb_dim: int = 128):
        super().__init__()
        if len(channels) != 3 or any(not isinstance(c, int) or c < 1 for c in channels):
            raise ValueError(f"channels must be three positive ints (full, half, quarter size), got {channels!r}")
        if not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes must be a non-negative int, got {num_classes!r}")
        c1, c2, c3 = channels
        self.image_channels, self.num_classes, self.channels = image_channels, num_classes, tuple(channels)
        self.time_mlp = nn.Sequential(nn.Linear(c1, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.class_emb = nn.Embedding(num_classes + 1, emb_dim) if num_classes else None   # + "no class"
        self.conv_in = nn.Conv2d(image_channels, c1, 3, padding=1)
        self.down1 = ResBlock(c1, c1, emb_dim)
        self.pool1 = nn.Conv2d(c1, c1, 3, stride=2, padding=1)
        self.down2 = ResBlock(c1, c2, emb_dim)
        self.pool2 = nn.Conv2d(c2, c2, 3, stride=2, padding=1)
        self.mid1 = ResBlock(c2, c3, emb_dim)
        self.mid2 = ResBlock(c3, c3, emb_dim)
        self.up2 = ResBlock(c3 + c2, c2, emb_dim)
        self.up1 = ResBlock(c2 + c1, c1, emb_dim)
        self.norm_out = nn.GroupNorm(min(8, c1), c1)
        self.conv_out = nn.Conv2d(c1, image_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    @property
    def no_class(self) -> int:
        return self.num_classes

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.image_channels or x.shape[2] % 4 or x.shape[3] % 4:
            raise ValueError(f"x must be N x {self.image_channels} x H x W with H, W divisible by 4, "
                             f"got shape {tuple(x.shape)}")
        check_input_dtype(x, "x", self)
        emb = condition_embedding(self, t, y, self.conv_in.out_channels)            # N x emb_dim
        h0 = self.conv_in(x)                                      # N x c1 x 28 x 28
        h1 = self.down1(h0, emb)                                  # N x c1 x 28 x 28
        h2 = self.down2(self.pool1(h1), emb)                      # N x c2 x 14 x 14
        h = self.mid1(self.pool2(h2), emb)                        # N x c3 x 7 x 7
        h = self.mid2(h, emb)                                     # N x c3 x 7 x 7
        h = F.interpolate(h, scale_factor=2, mode="nearest")      # N x c3 x 14 x 14
        h = self.up2(torch.cat([h, h2], dim=1), emb)              # N x c2 x 14 x 14
        h = F.interpolate(h, scale_factor=2, mode="nearest")      # N x c2 x 28 x 28
        h = self.up1(torch.cat([h, h1], dim=1), emb)              # N x c1 x 28 x 28
        return self.conv_out(F.silu(self.norm_out(h)))            # N x C x 28 x 28


class LatentDenoiser(nn.Module):
    """eps_theta(z_t, t, y) for vector codes (N x latent_dim): the denoiser of diffusion in a latent space
    (notebook 10, section 6).  An MLP whose hidden layers are scaled and shifted by the time (+ class) embedding,
    as the U-Net's blocks are; a residual connection around each hidden layer.  Same call and "no class" index as
    :class:`DiffusionUNet`."""

    def __init__(self, latent_dim: int = 20, hidden: int = 256, depth: int = 3, num_classes: int = 10,
                 emb_dim: int = 128):
        super().__init__()
        for name, value in (("latent_dim", latent_dim), ("hidden", hidden), ("depth", depth)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.latent_dim, self.num_classes, self.hidden = latent_dim, num_classes, hidden
        self.time_mlp = nn.Sequential(nn.Linear(hidden, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.class_emb = nn.Embedding(num_classes + 1, emb_dim) if num_classes else None
        self.inp = nn.Linear(latent_dim, hidden)
        self.layers = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden, elementwise_affine=False) for _ in range(depth))
        self.films = nn.ModuleList(nn.Linear(emb_dim, 2 * hidden) for _ in range(depth))
        self.out = nn.Linear(hidden, latent_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @property
    def no_class(self) -> int:
        return self.num_classes

    def forward(self, z: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must be N x {self.latent_dim}, got shape {tuple(z.shape)}")
        check_input_dtype(z, "z", self)
        emb = condition_embedding(self, t, y, self.hidden)                         # N x emb_dim
        h = self.inp(z)                                                            # N x hidden
        for layer, norm, film in zip(self.layers, self.norms, self.films):
            scale, shift = film(emb).chunk(2, dim=1)
            h = h + layer(F.silu(norm(h) * (1 + scale) + shift))                   # N x hidden
        return self.out(h)                                                         # N x latent_dim
