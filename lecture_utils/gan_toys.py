"""Low-dimensional GAN experiments (notebook 03): data you can see, densities you can compute.

* a 1-D Gaussian data distribution (Goodfellow et al. 2014, Fig. 1), a kernel density estimate of
  the generator's samples, the optimal discriminator D*(x) = p_data / (p_data + p_g), and the
  1-D Wasserstein distance between samples;
* a 2-D ring of Gaussians (Metz et al. 2017, "Unrolled GANs"), where mode collapse is visible, and
  a count of the modes a set of samples covers;
* :func:`train_discriminator`: train D alone against a frozen generator, on fresh samples each
  step, to check D* numerically.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from .losses import discriminator_loss
from .train import adam, batched_inference


# --------------------------------------------------------------------------- 1-D
def gaussian_density(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """N(mean, std^2) density at x (any shape)."""
    if not std > 0:
        raise ValueError(f"std must be positive, got {std!r}")
    return torch.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


def gaussian_samples(n: int, mean: float = 0.0, std: float = 1.0, seed: int = 0) -> torch.Tensor:
    """n samples of N(mean, std^2) as an n x 1 tensor (one 1-D point per row)."""
    g = torch.Generator().manual_seed(seed)
    return mean + std * torch.randn(n, 1, generator=g)


def kernel_density(samples: torch.Tensor, grid: torch.Tensor, bandwidth: float | None = None) -> torch.Tensor:
    """Gaussian kernel density estimate of 1-D ``samples`` (N or N x 1) at the points of ``grid`` (G).

    ``bandwidth`` defaults to Silverman's rule, 0.9 min(std, IQR/1.34) N^(-1/5).
    """
    s = samples.detach().reshape(-1).double()
    if s.numel() < 2:
        raise ValueError(f"kernel_density needs at least 2 samples, got {s.numel()}")
    if bandwidth is None:
        q75, q25 = torch.quantile(s, 0.75), torch.quantile(s, 0.25)
        spread = min(float(s.std()), float(q75 - q25) / 1.34) or float(s.std()) or 1e-3
        bandwidth = 0.9 * spread * s.numel() ** -0.2
    g = grid.reshape(-1).double()
    out = torch.zeros_like(g)
    for i in range(0, s.numel(), 4096):  # chunks keep memory at G x 4096
        out += torch.exp(-0.5 * ((g[:, None] - s[None, i:i + 4096]) / bandwidth) ** 2).sum(1)
    return (out / (s.numel() * bandwidth * math.sqrt(2 * math.pi))).float()


def optimal_discriminator(p_data: torch.Tensor, p_g: torch.Tensor) -> torch.Tensor:
    """D*(x) = p_data(x) / (p_data(x) + p_g(x)) (Goodfellow et al. 2014, Prop. 1); 1/2 where both vanish."""
    total = p_data + p_g
    return torch.where(total > 0, p_data / total.clamp_min(1e-30), torch.full_like(total, 0.5))


def wasserstein_1d(a: torch.Tensor, b: torch.Tensor) -> float:
    """Earth mover's distance between two 1-D samples of the same size: mean |sorted(a) - sorted(b)|."""
    a, b = a.detach().reshape(-1).float(), b.detach().reshape(-1).float()
    if a.numel() != b.numel():
        raise ValueError(f"samples must have the same size, got {a.numel()} and {b.numel()}")
    return float((a.sort().values - b.sort().values).abs().mean())


def discriminator_probability(discriminator: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """D(x) = sigmoid(logit) for 1-D points x (a vector G, or G x 1), on the CPU, in eval mode."""
    return torch.sigmoid(batched_inference(discriminator, x.reshape(-1, 1), batch_size=max(1, x.numel())))


def train_discriminator(discriminator: nn.Module, real: Callable[[int], torch.Tensor],
                        fake: Callable[[int], torch.Tensor], steps: int, batch_size: int = 512,
                        lr: float = 1e-3) -> list[float]:
    """Train D alone (the inner max of the game, G frozen) on fresh real and fake samples every step.

    ``real(m)`` and ``fake(m)`` draw m samples each.  Adam(lr).  Returns the loss every step (floats,
    read once at the end).  With enough capacity and steps, D(x) approaches D*(x).
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    optimizer = adam(discriminator.parameters(), lr=lr, reference_on_cpu=True)
    history = []
    for _ in range(steps):
        with torch.no_grad():
            x_fake = fake(batch_size)
        loss = discriminator_loss(discriminator(real(batch_size)), discriminator(x_fake))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history.append(loss.detach())
    return torch.stack(history).tolist()


# --------------------------------------------------------------------------- 2-D ring
def ring_centers(modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    """The ``modes`` centres of the ring, evenly spaced on a circle of ``radius`` (modes x 2)."""
    if not isinstance(modes, int) or modes < 1:
        raise ValueError(f"modes must be a positive int, got {modes!r}")
    angles = torch.arange(modes) * (2 * math.pi / modes)
    return radius * torch.stack([angles.cos(), angles.sin()], dim=1)


def ring_of_gaussians(n: int, modes: int = 8, radius: float = 2.0, std: float = 0.02, seed: int = 0) -> torch.Tensor:
    """n points (n x 2) from an equal mixture of ``modes`` Gaussians (std ``std``) on a ring."""
    g = torch.Generator().manual_seed(seed)
    which = torch.randint(0, modes, (n,), generator=g)
    return ring_centers(modes, radius)[which] + std * torch.randn(n, 2, generator=g)


def mode_counts(samples: torch.Tensor, centers: torch.Tensor, std: float, within: float = 3.0) -> tuple[torch.Tensor, float]:
    """Samples per mode, and the share of *high-quality* samples.

    A sample belongs to the nearest centre if it lies within ``within`` standard deviations of it
    (the convention of Srivastava et al. 2017 and Metz et al. 2017); others belong to no mode.
    Returns (counts, a LongTensor of len(centers); high_quality_share in [0, 1]).
    """
    if samples.ndim != 2 or samples.shape[1] != centers.shape[1]:
        raise ValueError(f"samples must be N x {centers.shape[1]}, got shape {tuple(samples.shape)}")
    d = torch.cdist(samples.detach().float().cpu(), centers.float())
    nearest, index = d.min(dim=1)
    good = nearest <= within * std
    counts = torch.bincount(index[good], minlength=centers.shape[0])
    return counts, float(good.float().mean())


def modes_covered(samples: torch.Tensor, centers: torch.Tensor, std: float, min_share: float = 0.02,
                  within: float = 3.0) -> int:
    """Number of modes that received at least ``min_share`` of the samples as high-quality samples.

    With 8 equal modes, a perfect generator gives each 1/8 = 12.5%; 2% means "visited, not a stray".
    """
    if not 0 < min_share < 1:
        raise ValueError(f"min_share must lie in (0, 1), got {min_share!r}")
    counts, _ = mode_counts(samples, centers, std, within)
    return int((counts >= min_share * samples.shape[0]).sum())
