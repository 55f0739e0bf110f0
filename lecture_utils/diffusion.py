"""Denoising diffusion (notebook 10): noise schedules, the forward process, the noise-prediction loss,
DDPM and DDIM sampling, classifier-free guidance, and editing by sampling (inpainting, super-resolution).

Notation of Ho et al. (2020): a schedule beta_1..beta_T, alpha_t = 1 - beta_t, alpha_bar_t = prod_{s<=t}
alpha_s.  Time steps are 0-based here: index ``t`` in [0, T) is the paper's t + 1, so ``alpha_bar[0]`` is
the first noising step and ``alpha_bar[-1]`` the last.  Images live in [-1, 1] (:func:`to_model_range`).

* forward process in closed form: q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)  (:func:`q_sample`)
* true posterior q(x_{t-1} | x_t, x_0) = N(mu_tilde, beta_tilde I)  (:func:`posterior_mean_variance`)
* loss: || eps - eps_theta(x_t, t, y) ||^2 with y replaced by "no class" 10 % of the time (:func:`noise_prediction_loss`),
  optionally weighted per time step (P2, :func:`loss_weights`)
* classifier-free guidance, **this course's convention**: eps_u + w (eps_c - eps_u), so w = 0 is the
  unconditional model, w = 1 the plain conditional model and w > 1 pushes further towards the class.
  (Ho & Salimans (2022) write (1 + w') eps_c - w' eps_u: their w' is our w - 1.)  (:func:`guided_noise`)
* samplers: ancestral DDPM (:func:`ddpm_step`, :func:`ddpm_sample`) and DDIM on a subset of the steps
  (:func:`ddim_step`, :func:`ddim_sample`, eta = 0 deterministic, eta = 1 ancestral), its reverse
  (:func:`ddim_invert`), RePaint-style inpainting (:func:`inpaint`) and super-resolution by projection onto
  the low-resolution input (:func:`super_resolve`).

A model is called as ``model(x_t, t, y)`` with x_t N x C x H x W, t int64 N in [0, T), y int64 N where
``model.no_class`` means "no class" (:class:`~lecture_utils.models.diffusion_unet.DiffusionUNet`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from . import distributed
from .checks import check_finite, check_float, check_image_batch, check_not_empty, check_range
from .data import BatchIterator, check_mask
from .gans import EMA
from .train import adam, fit, scheduled_epoch_end

SCHEDULES = ("linear", "cosine")


# --------------------------------------------------------------------------- schedules
def linear_betas(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """Ho et al.'s schedule: T betas (float64) evenly spaced from ``beta_start`` to ``beta_end``."""
    _check_T(T)
    if not 0 < beta_start <= beta_end < 1:
        raise ValueError(f"need 0 < beta_start <= beta_end < 1, got beta_start={beta_start!r}, beta_end={beta_end!r}")
    return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)


def cosine_betas(T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal's (2021) schedule: alpha_bar(t) = f(t) / f(0), f(t) = cos^2((t / T + s) / (1 + s) pi / 2),
    and beta_t = 1 - alpha_bar_t / alpha_bar_{t-1} clipped at ``max_beta`` (float64, T values)."""
    _check_T(T)
    if not s >= 0:
        raise ValueError(f"s must be non-negative, got {s!r}")
    steps = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=max_beta)


def _check_T(T) -> None:
    if not isinstance(T, int) or T < 1:
        raise ValueError(f"T (the number of diffusion steps) must be a positive int, got {T!r}")


@dataclass
class NoiseSchedule:
    """The products every formula needs, computed once in float64 from the betas.

    ``betas``, ``alphas``, ``alpha_bars``, ``alpha_bars_prev`` (alpha_bar_{t-1}, 1 at t = 0): T values each.
    """

    betas: torch.Tensor
    name: str = "custom"
    alphas: torch.Tensor = field(init=False)
    alpha_bars: torch.Tensor = field(init=False)
    alpha_bars_prev: torch.Tensor = field(init=False)

    def __post_init__(self):
        betas = torch.as_tensor(self.betas, dtype=torch.float64)
        if betas.ndim != 1 or len(betas) == 0 or not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError(f"betas must be a non-empty 1-D tensor with values in (0, 1), got {betas!r}")
        self.betas = betas
        self.alphas = 1 - betas
        self.alpha_bars = torch.cumprod(self.alphas, dim=0)
        self.alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bars[:-1]])

    @classmethod
    def make(cls, kind: str = "cosine", T: int = 1000) -> "NoiseSchedule":
        """``"linear"`` (Ho et al.) or ``"cosine"`` (Nichol & Dhariwal) with T steps."""
        if kind not in SCHEDULES:
            raise ValueError(f"schedule kind must be one of {SCHEDULES}, got {kind!r}")
        return cls(linear_betas(T) if kind == "linear" else cosine_betas(T), name=kind)

    @property
    def T(self) -> int:
        return len(self.betas)

    def snr(self) -> torch.Tensor:
        """Signal-to-noise ratio alpha_bar_t / (1 - alpha_bar_t) per step (T values)."""
        return self.alpha_bars / (1 - self.alpha_bars)

    def at(self, values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``values[t]`` shaped N x 1 x 1 x 1 (to broadcast over images ``like``), in ``like``'s dtype and device."""
        return values.to(like.device)[t.to(like.device)].to(like.dtype).view(-1, *([1] * (like.ndim - 1)))


def _check_t(schedule: NoiseSchedule, t: torch.Tensor, n: int) -> torch.Tensor:
    t = torch.as_tensor(t)
    if t.ndim == 0:
        t = t.expand(n)
    if t.shape != (n,) or t.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"t must be an int tensor of {n} time steps, got {tuple(t.shape)} {t.dtype}")
    if bool((t < 0).any()) or bool((t >= schedule.T).any()):
        raise ValueError(f"t must lie in [0, T = {schedule.T}), got values in [{int(t.min())}, {int(t.max())}]")
    return t.long()


# --------------------------------------------------------------------------- the forward process and its posterior
def q_sample(schedule: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, a draw from q(x_t | x_0) in one step.

    x0, noise: N x ... (same shape); t: int64 N (or a scalar) in [0, T)."""
    if noise.shape != x0.shape:
        raise ValueError(f"noise must have x0's shape {tuple(x0.shape)}, got {tuple(noise.shape)}")
    t = _check_t(schedule, t, x0.shape[0])
    ab = schedule.at(schedule.alpha_bars, t, x0)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def posterior_mean_variance(schedule: NoiseSchedule, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor):
    """Mean and variance of the true posterior q(x_{t-1} | x_t, x_0) (Ho et al., eq. 6-7):

    mu = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) x_0 + sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) x_t
    var = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t      (0 at t = 0: x_{-1} is x_0 itself)

    Returns (mean like x0, variance N x 1 x 1 x 1)."""
    t = _check_t(schedule, t, x0.shape[0])
    ab, ab_prev = schedule.at(schedule.alpha_bars, t, x0), schedule.at(schedule.alpha_bars_prev, t, x0)
    beta, alpha = schedule.at(schedule.betas, t, x0), schedule.at(schedule.alphas, t, x0)
    mean = ab_prev.sqrt() * beta / (1 - ab) * x0 + alpha.sqrt() * (1 - ab_prev) / (1 - ab) * xt
    return mean, (1 - ab_prev) / (1 - ab) * beta


def predict_x0(schedule: NoiseSchedule, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """The forward process solved for x_0: (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)."""
    ab = schedule.at(schedule.alpha_bars, _check_t(schedule, t, xt.shape[0]), xt)
    return (xt - (1 - ab).sqrt() * eps) / ab.sqrt()


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] -> [-1, 1], where the diffusion runs (so that x_T ~ N(0, I) has the data's scale)."""
    return images * 2 - 1


def to_image_range(x: torch.Tensor) -> torch.Tensor:
    """Samples in [-1, 1] -> images in [0, 1] (clamped)."""
    return ((x + 1) / 2).clamp(0, 1)


# --------------------------------------------------------------------------- the loss and its training step
def drop_labels(labels: torch.Tensor, no_class: int, p_uncond: float, generator=None) -> torch.Tensor:
    """``labels`` with each one replaced by ``no_class`` with probability ``p_uncond`` (classifier-free guidance's
    training trick: the same network learns p(x | y) and p(x))."""
    if not 0 <= p_uncond <= 1:
        raise ValueError(f"p_uncond must lie in [0, 1], got {p_uncond!r}")
    drop = torch.rand(labels.shape, generator=generator, device=labels.device) < p_uncond
    return torch.where(drop, torch.full_like(labels, no_class), labels)


WEIGHTINGS = ("simple", "p2")


def loss_weights(schedule: NoiseSchedule, weighting: str = "simple") -> torch.Tensor:
    """The weight of each time step's error in :func:`noise_prediction_loss` (T values, float32, mean 1).

    ``"simple"``: Ho et al.'s L_simple, every step alike.  ``"p2"``: Choi et al.'s (2022) perception-prioritised
    weighting 1 / (k + SNR_t)^gamma with k = gamma = 1, i.e. 1 - alpha_bar_t: little weight on the nearly clean
    steps (whose noise is easy to read off), more on the noisy ones that decide a digit's shape."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    weights = torch.ones(schedule.T, dtype=torch.float64)
    if weighting == "p2":
        weights = 1 - schedule.alpha_bars
    return (weights / weights.mean()).float()


def noise_prediction_loss(model: nn.Module, schedule: NoiseSchedule, x0: torch.Tensor, labels: torch.Tensor | None,
                          p_uncond: float = 0.1, generator=None, weighting: str = "simple") -> torch.Tensor:
    """E_{t, eps} lambda_t || eps - eps_theta(x_t, t, y) ||^2 (mean over pixels and the batch), with the step
    weights lambda_t of :func:`loss_weights` (``"simple"``: all 1, Ho et al.'s simple loss).

    x0: N x C x H x W in [-1, 1]; labels: int64 N (or None: unconditional); t is uniform in [0, T)."""
    weights = loss_weights(schedule, weighting)
    n = x0.shape[0]
    t = torch.randint(0, schedule.T, (n,), generator=generator, device=x0.device)
    noise = torch.randn(x0.shape, generator=generator, device=x0.device)
    xt = q_sample(schedule, x0, t, noise)
    if labels is not None:
        labels = drop_labels(labels, model.no_class, p_uncond, generator)
    error = (model(xt, t, labels) - noise).pow(2).flatten(1).mean(dim=1)     # one per image
    return (schedule.at(weights, t, error) * error).mean()


def diffusion_step(model: nn.Module, optimizer: torch.optim.Optimizer, schedule: NoiseSchedule,
                   ema: nn.Module | None = None, p_uncond: float = 0.1, generator=None,
                   weighting: str = "simple") -> Callable:
    """One training update on a batch ``(x0 in [-1, 1], labels)`` for :func:`lecture_utils.train.fit`."""

    def step(batch):
        x0, labels = batch
        loss = noise_prediction_loss(model, schedule, x0, labels, p_uncond, generator, weighting)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if ema is not None:
            ema.update(model)
        return {"loss": loss.detach()}

    return step


# --------------------------------------------------------------------------- guidance
def guided_noise(model: nn.Module, xt: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None,
                 w: float = 1.0) -> torch.Tensor:
    """Classifier-free guidance: eps_u + w (eps_c - eps_u), in one batched call of the model.

    w = 1 is the conditional model alone, w = 0 the unconditional one (labels None also means unconditional)."""
    if labels is None or w == 0:
        return model(xt, t, torch.full_like(t, model.no_class) if labels is not None else None)
    if w == 1:
        return model(xt, t, labels)
    both = model(torch.cat([xt, xt]), torch.cat([t, t]), torch.cat([labels, torch.full_like(labels, model.no_class)]))
    eps_c, eps_u = both.chunk(2)
    return eps_u + w * (eps_c - eps_u)


# --------------------------------------------------------------------------- samplers
@torch.no_grad()
def ddpm_step(model, schedule: NoiseSchedule, x: torch.Tensor, t: int, labels=None, w: float = 1.0,
              generator=None, clip: bool = True) -> torch.Tensor:
    """One ancestral step x_t -> x_{t-1} ~ N(mu_tilde(x_t, x0_hat), beta_tilde I) with x0_hat from the predicted noise."""
    tt = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
    eps = guided_noise(model, x, tt, labels, w)
    x0 = predict_x0(schedule, x, tt, eps)
    if clip:
        x0 = x0.clamp(-_bound(clip), _bound(clip))            # the data live in [-1, 1]
    mean, var = posterior_mean_variance(schedule, x0, x, tt)
    if t == 0:
        return mean
    return mean + var.sqrt() * torch.randn(x.shape, generator=generator, device=x.device)


@torch.no_grad()
def ddim_step(model, schedule: NoiseSchedule, x: torch.Tensor, t: int, t_prev: int, labels=None, w: float = 1.0,
              eta: float = 0.0, generator=None, clip: bool = True) -> torch.Tensor:
    """One DDIM step x_t -> x_{t_prev} (Song et al., 2021, eq. 12); t_prev = -1 means "to x_0".

    x_prev = sqrt(ab_prev) x0_hat + sqrt(1 - ab_prev - sigma^2) eps_hat + sigma z,
    sigma = eta sqrt((1 - ab_prev) / (1 - ab_t)) sqrt(1 - ab_t / ab_prev): eta = 0 deterministic, eta = 1 ancestral."""
    tt = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
    eps = guided_noise(model, x, tt, labels, w)
    ab = float(schedule.alpha_bars[t])
    ab_prev = float(schedule.alpha_bars[t_prev]) if t_prev >= 0 else 1.0
    x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
    if clip:
        x0 = x0.clamp(-_bound(clip), _bound(clip))
        eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)    # the noise that goes with the clipped x0
    sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev))
    x_prev = math.sqrt(ab_prev) * x0 + math.sqrt(max(1 - ab_prev - sigma ** 2, 0.0)) * eps
    if sigma > 0:
        x_prev = x_prev + sigma * torch.randn(x.shape, generator=generator, device=x.device)
    return x_prev


def _bound(clip) -> float:
    """``clip=True`` clips the guess of x_0 to [-1, 1] (images); a number c clips to [-c, c] (latent codes)."""
    return 1.0 if clip is True else float(clip)


def ddim_timesteps(T: int, steps: int) -> list[int]:
    """The DDIM sub-sequence tau: ``steps`` time steps T / steps apart, from T - 1 down to T / steps - 1, after
    which the sampler jumps to x_0 ("trailing" spacing, Lin et al., 2024).  Every step spans T / steps time steps,
    the last one included; a grid that ends at t = 0 spends its last step where almost no noise is left.  With
    steps = T it is every step, T - 1, ..., 0."""
    if not isinstance(steps, int) or not 1 <= steps <= T:
        raise ValueError(f"steps must be an int in [1, T = {T}], got {steps!r}")
    return [round(T - i * T / steps) - 1 for i in range(steps)]


def _start(shape, labels, generator, device, noise=None) -> torch.Tensor:
    if noise is not None:
        if tuple(noise.shape) != tuple(shape):
            raise ValueError(f"noise must have shape {tuple(shape)}, got {tuple(noise.shape)}")
        return noise.to(device)
    return torch.randn(shape, generator=generator, device=device)


def _check_labels(labels, n: int, model) -> torch.Tensor | None:
    if labels is None:
        return None
    labels = torch.as_tensor(labels)
    if labels.shape != (n,) or labels.dtype != torch.int64:
        raise ValueError(f"labels must be int64 of shape ({n},), got {tuple(labels.shape)} {labels.dtype}")
    if bool((labels < 0).any()) or bool((labels > model.no_class).any()):
        raise ValueError(f"labels must lie in [0, {model.no_class}] ({model.no_class} = no class), "
                         f"got values in [{int(labels.min())}, {int(labels.max())}]")
    return labels


def _check_w(w) -> None:
    if not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
        raise ValueError(f"the guidance scale w must be a finite number >= 0, got {w!r}")


@torch.no_grad()
def ddpm_sample(model, schedule: NoiseSchedule, shape, labels=None, w: float = 1.0, seed: int = 0,
                noise: torch.Tensor | None = None, clip: bool = True, keep_every: int = 0):
    """Ancestral sampling through all T steps, from x_T ~ N(0, I) to x_0 in [-1, 1].

    shape: (N, C, H, W); labels: int64 N or None.  With ``keep_every`` = k > 0 returns (x_0, path) where path
    holds x_t every k steps (a list of (t, tensor)).  Seeded: the same call gives the same samples."""
    device = next(model.parameters()).device
    generator = torch.Generator(device).manual_seed(seed)
    labels = _check_labels(labels, shape[0], model)
    _check_w(w)
    x = _start(shape, labels, generator, device, noise)
    path = []
    for t in reversed(range(schedule.T)):
        if keep_every and t % keep_every == 0:
            path.append((t, x.cpu()))
        x = ddpm_step(model, schedule, x, t, labels, w, generator, clip)
    return (x, path) if keep_every else x


@torch.no_grad()
def ddim_sample(model, schedule: NoiseSchedule, shape, steps: int = 50, labels=None, w: float = 1.0,
                eta: float = 0.0, seed: int = 0, noise: torch.Tensor | None = None, clip: bool = True,
                keep_path: bool = False):
    """DDIM sampling on ``steps`` evenly spaced time steps (:func:`ddim_timesteps`); eta = 0 is deterministic.

    Returns x_0 (N x C x H x W, in [-1, 1] when ``clip``), or (x_0, path) with ``keep_path``: path is a list of
    (t, x_t) before each step, then (-1, x_0)."""
    device = next(model.parameters()).device
    generator = torch.Generator(device).manual_seed(seed)
    labels = _check_labels(labels, shape[0], model)
    _check_w(w)
    if not 0 <= eta <= 1:
        raise ValueError(f"eta must lie in [0, 1], got {eta!r}")
    x = _start(shape, labels, generator, device, noise)
    times = ddim_timesteps(schedule.T, steps)
    path = []
    for t, t_prev in zip(times, times[1:] + [-1]):
        if keep_path:
            path.append((t, x.cpu()))
        x = ddim_step(model, schedule, x, t, t_prev, labels, w, eta, generator, clip)
    if keep_path:
        path.append((-1, x.cpu()))
        return x, path
    return x


@torch.no_grad()
def ddim_invert(model, schedule: NoiseSchedule, x0: torch.Tensor, steps: int = 50, labels=None,
                w: float = 1.0) -> torch.Tensor:
    """The DDIM ODE run backwards: x_0 -> x_{T-1}, each step x_next = sqrt(ab_next) x0_hat + sqrt(1 - ab_next) eps_hat
    with eps_hat evaluated at the current point.  ``ddim_sample(..., noise=ddim_invert(x0), clip=False)`` returns
    x0 again up to the discretisation error, which shrinks as ``steps`` grows.  x0: N x ... floats (the model's
    range, [-1, 1] for images), finite."""
    check_finite(check_float(check_not_empty(x0, "x0"), "x0"), "x0")
    labels = _check_labels(labels, x0.shape[0], model)
    times = ddim_timesteps(schedule.T, steps)[::-1]                  # T / steps - 1, ..., T - 1
    x = x0
    for t_prev, t in zip([-1] + times[:-1], times):
        # eps_hat at the point we are at (time t_prev; at x_0 the model's first step stands in for it)
        tt = torch.full((x.shape[0],), max(t_prev, 0), dtype=torch.long, device=x.device)
        eps = guided_noise(model, x, tt, labels, w)
        ab_prev = float(schedule.alpha_bars[t_prev]) if t_prev >= 0 else 1.0
        ab = float(schedule.alpha_bars[t])
        x0_hat = (x - math.sqrt(1 - ab_prev) * eps) / math.sqrt(ab_prev)
        x = math.sqrt(ab) * x0_hat + math.sqrt(1 - ab) * eps
    return x


# --------------------------------------------------------------------------- editing by sampling
def _check_model_range(x: torch.Tensor, name: str) -> torch.Tensor:
    """Images entering a sampler: N x C x H x W floats in the model's range [-1, 1] (one read of the values)."""
    return check_image_batch(x, name, low=-1.0, high=1.0, tolerance=1e-4,
                             hint="map images in [0, 1] with to_model_range; divide 8-bit images by 255 first")


def _check_known(known: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    _check_model_range(known, "known")
    return check_mask(mask, known)


@torch.no_grad()
def inpaint(model, schedule: NoiseSchedule, known: torch.Tensor, mask: torch.Tensor, steps: int = 100,
            labels=None, w: float = 1.0, resample: int = 1, seed: int = 0) -> torch.Tensor:
    """RePaint (Lugmayr et al., 2022): sample the missing pixels, and after every step replace the known ones by
    the known image noised to the same level, q(x_t | x_0); the last step puts them back exactly.

    known: N x C x H x W in [-1, 1] (the values under the mask are replaced); mask: N x 1 x H x W, 1 = missing
    (to fill), 0 = known: the course's mask convention (:func:`lecture_utils.data.check_mask`), as in notebook 07
    and the masked metrics.  The reverse steps are DDIM with eta = 1 (ancestral) on ``steps`` time steps;
    ``resample`` = r > 1 goes back one step r - 1 times (noise again, denoise again) so that the filled part
    harmonises with the known part."""
    missing = _check_known(known, mask)
    if not isinstance(resample, int) or resample < 1:
        raise ValueError(f"resample must be a positive int, got {resample!r}")
    device = next(model.parameters()).device
    generator = torch.Generator(device).manual_seed(seed)
    labels = _check_labels(labels, known.shape[0], model)
    known = known.to(device)
    keep = 1 - missing.to(device, known.dtype)                    # 1 = known pixel: the one that is copied back
    times = ddim_timesteps(schedule.T, steps)
    x = torch.randn(known.shape, generator=generator, device=device)
    for t, t_prev in zip(times, times[1:] + [-1]):
        for r in range(resample):
            x = ddim_step(model, schedule, x, t, t_prev, labels, w, eta=1.0, generator=generator)
            if t_prev >= 0:
                noise = torch.randn(known.shape, generator=generator, device=device)
                x = keep * q_sample(schedule, known, torch.tensor(t_prev), noise) + (1 - keep) * x
                if r < resample - 1:                              # back up to x_t: q(x_t | x_t_prev)
                    ratio = float(schedule.alpha_bars[t] / schedule.alpha_bars[t_prev])
                    x = math.sqrt(ratio) * x + math.sqrt(1 - ratio) * torch.randn(
                        x.shape, generator=generator, device=device)
    return keep * known + (1 - keep) * x


def downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Average over factor x factor blocks (the degradation of :func:`super_resolve`)."""
    return F.avg_pool2d(x, factor)


def upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Each pixel repeated factor x factor times; ``downsample(upsample(y)) == y`` exactly."""
    return F.interpolate(x, scale_factor=factor, mode="nearest")


@torch.no_grad()
def super_resolve(model, schedule: NoiseSchedule, low: torch.Tensor, factor: int = 4, steps: int = 100,
                  labels=None, w: float = 1.0, seed: int = 0) -> torch.Tensor:
    """Super-resolution by projection (ILVR, Choi et al., 2021): after every step, replace the sample's
    low-frequency part by that of the low-resolution input noised to the same level,

    x <- x - up(down(x)) + up(down(x_known_t)),   x_known_t ~ q(x_t | up(low)),

    and project onto the input exactly at the end, so that ``downsample(sample, factor)`` equals ``low``.
    low: N x C x h x w in [-1, 1]; returns N x C x (h factor) x (w factor)."""
    _check_model_range(low, "low")
    if not isinstance(factor, int) or factor < 1:
        raise ValueError(f"factor must be a positive int, got {factor!r}")
    device = next(model.parameters()).device
    generator = torch.Generator(device).manual_seed(seed)
    labels = _check_labels(labels, low.shape[0], model)
    guide = upsample(low.to(device), factor)
    times = ddim_timesteps(schedule.T, steps)
    x = torch.randn(guide.shape, generator=generator, device=device)
    for t, t_prev in zip(times, times[1:] + [-1]):
        x = ddim_step(model, schedule, x, t, t_prev, labels, w, eta=1.0, generator=generator)
        target = guide
        if t_prev >= 0:
            noise = torch.randn(guide.shape, generator=generator, device=device)
            target = q_sample(schedule, guide, torch.tensor(t_prev), noise)
        x = x - upsample(downsample(x, factor), factor) + upsample(downsample(target, factor), factor)
    return x


# --------------------------------------------------------------------------- training
@dataclass
class DiffusionRun:
    """What :func:`train_diffusion` returns: the per-epoch history and the EMA model to sample from."""

    history: object
    ema: nn.Module
    schedule: NoiseSchedule


@dataclass
class DiffusionOptions:
    """A diffusion training recipe for :func:`train_diffusion` and :func:`train_denoiser`.

    ``batch_size`` examples per step; Adam at ``lr``, decayed along a half cosine to ``lr_final`` over the epochs
    when given (None: constant); ``ema_decay`` of the exponential moving average every sample comes from;
    ``p_uncond``: the share of labels replaced by "no class" (classifier-free guidance); ``weighting``: the loss's
    weight per time step (:func:`loss_weights`); ``seed``: the order of the batches and the noise."""

    batch_size: int = 128
    lr: float = 1e-3
    lr_final: float | None = None
    ema_decay: float = 0.999
    p_uncond: float = 0.1
    weighting: str = "simple"
    seed: int = 0


def train_diffusion(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None, epochs: int,
                    schedule: NoiseSchedule | None = None, options: DiffusionOptions | None = None,
                    **run) -> DiffusionRun:
    """Train a denoiser on ``images`` (N x C x H x W in [0, 1], mapped to [-1, 1]) with labels (int64 N, or None);
    see :func:`train_denoiser` for the rest."""
    if images.ndim != 4:
        raise ValueError(f"images must be N x C x H x W in [0, 1], got shape {tuple(images.shape)}")
    check_range(images, "images", 0.0, 1.0, hint="divide 8-bit images by 255")   # NaN fails here too
    return train_denoiser(model, to_model_range(images.float()), labels, epochs, schedule, options, **run)


def train_denoiser(model: nn.Module, x0: torch.Tensor, labels: torch.Tensor | None, epochs: int,
                   schedule: NoiseSchedule | None = None, options: DiffusionOptions | None = None,
                   device="cpu", progress: bool | None = None,
                   on_epoch_end: Callable[[int, dict], None] | None = None, ema=None) -> DiffusionRun:
    """Train a denoiser on data ``x0`` (N x ..., already at the diffusion's scale: images in [-1, 1], or latent
    codes scaled to unit variance) with labels (int64 N, or None) by :func:`diffusion_step` inside the course's
    :func:`lecture_utils.train.fit` (data resident on the device, no per-step sync), with the recipe ``options``
    (:class:`DiffusionOptions`).  Sample from ``run.ema``.  ``on_epoch_end(epoch, record)`` runs after each
    epoch; pass your own ``ema`` (a :class:`~lecture_utils.gans.EMA` of ``model``) to read it there.  Images are
    stored channels-last on CPU and CUDA, which oneDNN's and cuDNN's convolutions run faster
    (benchmarks/bench_diffusion_loop.py).  Under ``torchrun`` the batch size is the global batch, split evenly
    over the processes, and the model trains as DistributedDataParallel (:mod:`lecture_utils.distributed`)."""
    options = options or DiffusionOptions()
    if not isinstance(options, DiffusionOptions):
        raise ValueError(f"options must be a DiffusionOptions, got {type(options).__name__}")
    if labels is not None and labels.shape != (x0.shape[0],):
        raise ValueError(f"labels must have shape ({x0.shape[0]},), got {tuple(labels.shape)}")
    schedule = schedule or NoiseSchedule.make("cosine")
    loss_weights(schedule, options.weighting)                  # an unknown weighting fails here, before training
    channels_last = x0.ndim == 4 and torch.device(device).type in ("cpu", "cuda")
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model.to(device, memory_format=memory_format).train()
    x0 = x0.contiguous(memory_format=memory_format) if x0.ndim == 4 else x0
    optimizer = adam(model.parameters(), lr=options.lr)
    ema = ema if ema is not None else EMA(model, options.ema_decay)
    tensors = (x0, labels) if labels is not None else (x0, torch.full((x0.shape[0],), model.no_class))
    # under torchrun: each process takes its slice of every batch, gradients averaged (lecture_utils.distributed);
    # each process draws its own time steps, noise and dropped labels (its own seed)
    batches = distributed.shard(BatchIterator(*tensors, batch_size=options.batch_size, seed=options.seed,
                                              device=device))
    generator = torch.Generator(device).manual_seed(options.seed + 1 + 1000 * distributed.rank())
    state = {"model": model, "optimizer": optimizer, "ema": ema}
    schedulers = []
    if options.lr_final is not None:
        schedulers = [torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1),
                                                                 eta_min=options.lr_final)]
        state["scheduler"] = schedulers[0]
    history = fit(diffusion_step(distributed.wrap(model), optimizer, schedule, ema,
                                 options.p_uncond if labels is not None else 0.0, generator, options.weighting),
                  batches, epochs, state=state, progress=progress,
                  on_epoch_end=scheduled_epoch_end(optimizer, schedulers, on_epoch_end), desc="diffusion")
    return DiffusionRun(history=history, ema=ema.module.eval(), schedule=schedule)
