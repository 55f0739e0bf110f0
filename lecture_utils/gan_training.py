"""GAN training (notebooks 03-04, reused by 05-07): Algorithm 1 of Goodfellow et al. (2014) as a step
for :func:`lecture_utils.train.fit`, and the pix2pix step (L1 + PatchGAN) for image-to-image models.

Algorithm 1, one *training iteration*::

    for k steps:                                   # the discriminator
        sample m noise vectors z and m data examples x (a fresh minibatch each time)
        ascend  1/m sum [log D(x) + log(1 - D(G(z)))]        (descend discriminator_loss)
    sample m noise vectors z
    descend 1/m sum log(1 - D(G(z)))                          (or the non-saturating -log D(G(z)))

With :func:`gan_step`, one batch of the batch iterator holds ``k * m`` examples, so the k
discriminator updates each see their own data and an epoch is one pass over the data set.

What makes the loop fast (the course's showcase; :mod:`benchmarks.bench_dcgan_loop` measures it):

* losses on **logits** (``binary_cross_entropy_with_logits``), no Sigmoid + BCELoss;
* **no** ``.item()`` per step: diagnostics are detached tensors that ``fit`` sums on the device;
* the data set lives on the device as one tensor (:class:`~lecture_utils.data.BatchIterator`);
* fakes for the discriminator are generated under ``no_grad`` (no graph through G), and D's
  parameters are frozen during the generator update (no wasted weight gradients for D);
* channels_last memory layout for image models (CUDA and CPU);
* on CUDA: bf16 autocast, fused Adam, and ``torch.compile`` as an option.

Tricks the field learned, each an argument here and each explained in notebook 04: two time-scale
learning rates (TTUR, Heusel et al. 2017: ``lr_discriminator`` != ``lr_generator``), one-sided label
smoothing (``real_label=0.9``), an exponential moving average of G's weights (``ema_decay``), the R1
penalty on D's gradient at real data (``r1_gamma``, Mescheder et al. 2018) and spectral normalisation (a
model option, :class:`~lecture_utils.models.dcgan.DCGANDiscriminator`).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import distributed
from .checks import check_finite, check_float, check_range
from .data import BatchIterator
from .losses import (GENERATOR_LOSSES, discriminator_loss, generator_loss_non_saturating,
                     least_squares_discriminator_loss)
from .train import History, autocast, fit

OPTIMIZERS = ("adam", "sgd")
# Devices where channels_last is the default for image models: on CUDA it feeds cuDNN's NHWC kernels
# (tensor cores); on a 2-core x86 CPU it made a DCGAN step about 25% faster (oneDNN), measured.
CHANNELS_LAST_DEVICES = ("cuda", "cpu")


# --------------------------------------------------------------------------- image ranges
def to_tanh_range(images: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] -> [-1, 1], the range of a tanh generator."""
    return images * 2 - 1


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] -> images in [0, 1] (clamped)."""
    return ((images + 1) / 2).clamp(0, 1)


def resize_images(images: torch.Tensor, size: int = 32) -> torch.Tensor:
    """N x C x H x W images in [0, 1] resized to size x size: bicubic (clamped to [0, 1]) when enlarging,
    antialiased bilinear when shrinking.

    Bicubic keeps MNIST's strokes crisper than bilinear: 28 -> 32 -> 28 round trips of real digits score
    a classifier confidence of 0.946 (bilinear: 0.928) and a Fréchet distance of 27 (bilinear: 42).
    """
    if images.ndim != 4:
        raise ValueError(f"images must be N x C x H x W, got shape {tuple(images.shape)}")
    if size >= images.shape[-1]:
        out = F.interpolate(images.float(), size=(size, size), mode="bicubic", align_corners=False)
    else:
        out = F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return out.clamp(0, 1)


# --------------------------------------------------------------------------- pieces of the loop
def make_optimizers(generator: nn.Module, discriminator: nn.Module, optimizer: str = "adam",
                    lr_generator: float = 2e-4, lr_discriminator: float | None = None,
                    betas: tuple[float, float] = (0.5, 0.999), momentum: float = 0.9,
                    fused: bool | None = None) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """(generator optimiser, discriminator optimiser).

    ``"adam"``: Adam(lr, betas=(0.5, 0.999)) as in DCGAN; ``"sgd"``: SGD with momentum as in Goodfellow
    et al.  ``lr_discriminator`` defaults to ``lr_generator``; a larger one is TTUR.  ``fused``: a single
    fused kernel for the whole Adam update (default: on CUDA).
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    lr_discriminator = lr_generator if lr_discriminator is None else lr_discriminator
    for name, lr in (("lr_generator", lr_generator), ("lr_discriminator", lr_discriminator)):
        if not lr > 0:
            raise ValueError(f"{name} must be positive, got {lr!r}")
    if optimizer == "sgd":
        return (torch.optim.SGD(generator.parameters(), lr=lr_generator, momentum=momentum),
                torch.optim.SGD(discriminator.parameters(), lr=lr_discriminator, momentum=momentum))
    if fused is None:
        fused = next(generator.parameters()).is_cuda
    return (torch.optim.Adam(generator.parameters(), lr=lr_generator, betas=betas, fused=fused),
            torch.optim.Adam(discriminator.parameters(), lr=lr_discriminator, betas=betas, fused=fused))


def gradient_norm(parameters) -> torch.Tensor:
    """The L2 norm of all gradients together, as a device tensor (no sync)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.nn.utils.get_total_norm(grads).detach()


class EMA(nn.Module):
    """An exponential moving average of a model's weights (and batch-norm statistics).

    After each optimiser step, ``ema.update(model)`` does ``average = d * average + (1 - d) * current``
    for every parameter and floating-point buffer, with ``d = min(decay, (1 + n) / (10 + n))`` after n
    updates: the warm-up lets the average forget the random initial weights quickly in short runs (with
    a fixed 0.999, the initial weights still carry half the average after 700 steps).  The average of a
    generator that circles around a good solution sits closer to it than any single iterate (Yazici et
    al. 2019).  Sample from ``ema.module``.  The update is one fused ``_foreach_lerp_`` per dtype and
    never reads a value back to the host (no sync), unlike ``torch.optim.swa_utils.AveragedModel``.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999):
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema decay must lie in (0, 1), got {decay!r}")
        self.module = copy.deepcopy(model).requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        averaged = [*self.module.parameters(), *self.module.buffers()]
        current = [*model.parameters(), *model.buffers()]
        floats = [(a, c) for a, c in zip(averaged, current) if a.is_floating_point()]
        if floats:
            torch._foreach_lerp_([a for a, _ in floats], [c.detach() for _, c in floats], 1.0 - d)
        for a, c in zip(averaged, current):
            if not a.is_floating_point():
                a.copy_(c)  # e.g. batch norm's num_batches_tracked

    update_parameters = update  # the name torch.optim.swa_utils.AveragedModel uses

    def get_extra_state(self) -> dict:
        return {"updates": self.updates, "decay": self.decay}

    def set_extra_state(self, state: dict) -> None:
        self.updates, self.decay = int(state["updates"]), float(state["decay"])

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


def ema_generator(generator: nn.Module, decay: float = 0.999) -> EMA:
    """An :class:`EMA` of the generator's weights, updated after every generator step."""
    return EMA(generator, decay)


class GaussianMixturePrior:
    """Noise from an equal-weight mixture of K Gaussians, ``z = mu_k + sigma * eps`` with k uniform in 0..K-1 and
    eps ~ N(0, I): the latent prior of GM-GAN (Ben-Yosef & Weinshall 2018; DeLiGAN, Gurumurthy et al. 2017,
    learns such a mixture).

    Why: a generator maps its prior continuously, so from one connected Gaussian it cannot reach ten separate
    clusters of digits without passing codes *between* them, and those codes become in-between digits (a 3
    that is half 8).  Between the components of a mixture there are gaps that the prior never samples; the
    generator can put the border between two digits in a gap, where no sample lands.  The centres ``mu_k`` are
    drawn once from N(0, I) with a seeded generator (``seed``), so the same arguments give the same prior (and
    shipped weights keep their meaning); in d dimensions two centres lie about sqrt(2 d) apart while a
    component's codes lie about ``sigma * sqrt(d)`` from its centre, so every code still sits nearest its own
    centre for ``sigma`` up to about 1.

    ``prior(m)`` draws m codes (m x latent_dim) with the global random state on the centres' device (use it
    as ``train_gan(noise=prior)``); ``prior.sample(n, seed)`` draws n codes on the CPU from its own seeded
    generator (fixed evaluation codes); ``prior.to(device)`` moves the centres.
    """

    def __init__(self, latent_dim: int, n_components: int, sigma: float = 1.0, seed: int = 0):
        if not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive int, got {latent_dim!r}")
        if not isinstance(n_components, int) or n_components < 1:
            raise ValueError(f"n_components must be a positive int, got {n_components!r}")
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma!r}")
        self.latent_dim, self.n_components, self.sigma, self.seed = latent_dim, n_components, float(sigma), seed
        self.centres = torch.randn(n_components, latent_dim, generator=torch.Generator().manual_seed(seed))

    def to(self, device) -> "GaussianMixturePrior":
        self.centres = self.centres.to(device)
        return self

    def __call__(self, m: int) -> torch.Tensor:
        device = self.centres.device
        k = torch.randint(0, self.n_components, (m,), device=device)
        return self.centres[k] + self.sigma * torch.randn(m, self.latent_dim, device=device)

    def sample(self, n: int, seed: int = 0, return_components: bool = False):
        """n codes on the CPU from a generator seeded with ``seed`` (and, if asked, their components)."""
        generator = torch.Generator().manual_seed(seed)
        k = torch.randint(0, self.n_components, (n,), generator=generator)
        z = self.centres.cpu()[k] + self.sigma * torch.randn(n, self.latent_dim, generator=generator)
        return (z, k) if return_components else z

    def __repr__(self) -> str:
        return (f"GaussianMixturePrior(latent_dim={self.latent_dim}, n_components={self.n_components}, "
                f"sigma={self.sigma:g}, seed={self.seed})")


@torch.no_grad()
def generate(generator: nn.Module, z: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """G(z) on the CPU, in eval mode (batch norm uses its running statistics), without gradients."""
    module = generator.module if isinstance(generator, EMA) else generator
    was_training = module.training
    module.eval()
    try:
        device = next(module.parameters()).device
        out = [module(z[i:i + batch_size].to(device)).float().cpu() for i in range(0, z.shape[0], batch_size)]
    finally:
        module.train(was_training)
    return torch.cat(out)


def random_translation(images: torch.Tensor, max_shift: int = 2, background: float = -1.0) -> torch.Tensor:
    """Shift each image by its own random whole-pixel offset in [-max_shift, max_shift] (both axes),
    filling with ``background``; differentiable with respect to ``images``.

    DiffAugment (Zhao et al. 2020): with few training images the discriminator memorises them and stops
    teaching the generator; showing D randomly shifted real *and* fake images (and back-propagating
    through the shift to G) removes that shortcut without changing what G must generate.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be N x C x H x W, got shape {tuple(images.shape)}")
    if max_shift <= 0:
        return images
    n, _, h, w = images.shape
    padded = F.pad(images, (max_shift,) * 4, value=background)
    shifts = torch.randint(0, 2 * max_shift + 1, (n, 2), device=images.device)
    rows = (torch.arange(h, device=images.device)[None, :] + shifts[:, :1])[:, None, :, None]  # n x 1 x h x 1
    cols = (torch.arange(w, device=images.device)[None, :] + shifts[:, 1:])[:, None, None, :]  # n x 1 x 1 x w
    padded = padded.gather(2, rows.expand(n, padded.shape[1], h, padded.shape[3]))              # n x c x h x (w + 2s)
    return padded.gather(3, cols.expand(n, padded.shape[1], h, w))                              # n x c x h x w


def r1_penalty(real_scores: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder, Geiger & Nowozin 2018): mean over the batch of ``|grad_x D(x)|^2`` on real images.

    ``real_images`` (N x ...) must require grad and ``real_scores`` (N logits) must come from them; the
    result keeps its graph (``create_graph``), so adding ``gamma / 2 * r1_penalty`` to D's loss penalises
    D's slope on the data: D cannot carve a cliff around the training images, and its gradients stay
    useful to G.  For a linear D(x) = w . x + b it is ``|w|^2``.
    """
    if not real_images.requires_grad:
        raise ValueError("real_images must require grad (call .requires_grad_() before D's forward pass)")
    if real_scores.ndim != 1 or real_scores.shape[0] != real_images.shape[0]:
        raise ValueError(f"real_scores must be N = {real_images.shape[0]} logits, got shape {tuple(real_scores.shape)}")
    grad, = torch.autograd.grad(real_scores.float().sum(), real_images, create_graph=True)
    return grad.float().pow(2).flatten(1).sum(1).mean()


# --------------------------------------------------------------------------- Algorithm 1
def gan_step(generator: nn.Module, discriminator: nn.Module, opt_g: torch.optim.Optimizer,
             opt_d: torch.optim.Optimizer, *, k: int = 1, loss: str = "non_saturating", real_label: float = 1.0,
             noise: Callable[[int], torch.Tensor] | None = None, ema: EMA | None = None,
             device: torch.device | str = "cpu", channels_last: bool = False, track_grad_norms: bool = True,
             forward_generator: Callable | None = None, forward_discriminator: Callable | None = None,
             augment: Callable[[torch.Tensor], torch.Tensor] | None = None, reuse_fakes: bool = False,
             r1_gamma: float = 0.0, r1_every: int = 1, grad_norm_every: int = 1) -> Callable:
    """One iteration of Algorithm 1 per batch: ``k`` discriminator updates, then one generator update.

    The batch (a tensor, or a tuple whose first entry is the data) holds ``k * m`` examples in G's
    output range; it is split into ``k`` minibatches of ``m``, one per discriminator update, and each
    update draws its own ``m`` noise vectors, as does the generator update.

    ``loss``: the generator's loss, ``"non_saturating"`` (default), ``"minimax"`` (the saturating
    log(1 - D(G(z)))) or ``"least_squares"`` (then D uses the least-squares loss too).
    ``noise(m)``: draws m noise vectors (default: standard normal of ``generator.latent_dim``).
    ``forward_generator`` / ``forward_discriminator``: callables used for the forward passes, e.g.
    ``torch.compile``d modules (parameters, optimisers and EMA keep using the plain modules).
    ``channels_last``: convert 4-D batches to the channels-last memory layout (the models must be too).
    ``augment``: a differentiable transform applied to every image D sees, real and fake (DiffAugment,
    e.g. :func:`random_translation`); None: D sees the images as they are.
    ``reuse_fakes=True``: the generator update reuses the fakes of the last discriminator update (made
    with a graph through G) instead of drawing fresh noise -- what DCGAN's and pytorch/examples' loops do.
    It saves one generator forward per iteration; Algorithm 1 (the default, False) draws fresh noise.
    ``r1_gamma`` > 0 adds the R1 penalty ``r1_gamma / 2 * |grad_x D(x)|^2`` on real images to D's loss
    (:func:`r1_penalty`); ``r1_every`` = n computes it on every n-th discriminator update only, scaled by n
    ("lazy regularisation", StyleGAN2), which saves most of its cost (a second backward pass).  The penalised
    forward pass uses the plain discriminator (a double backward through ``torch.compile`` is not supported).

    ``grad_norm_every`` = n measures the gradient norms on every n-th iteration only (the first, the
    (n+1)-th, ...) and repeats the last measurement in between: the per-epoch mean becomes a sample of
    the iterations, and the two norms (one reduction over every weight gradient each) stop costing a
    noticeable share of a small model's step on a CPU.

    Returns (all detached scalar tensors, averaged per epoch by ``fit``):
    ``loss_d``, ``loss_g``; ``d_real`` = mean D(x) and ``d_fake`` = mean D(G(z)) in the last
    discriminator update (raw scores for least squares); ``d_fake_g`` = mean D(G(z)) seen by the
    generator update; ``grad_norm_d``, ``grad_norm_g`` (when ``track_grad_norms``).
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k (discriminator updates per generator update) must be a positive int, got {k!r}")
    if loss not in GENERATOR_LOSSES:
        raise ValueError(f"loss must be one of {sorted(GENERATOR_LOSSES)}, got {loss!r}")
    if not r1_gamma >= 0:
        raise ValueError(f"r1_gamma must be >= 0, got {r1_gamma!r}")
    if not isinstance(r1_every, int) or r1_every < 1:
        raise ValueError(f"r1_every must be a positive int, got {r1_every!r}")
    if not isinstance(grad_norm_every, int) or grad_norm_every < 1:
        raise ValueError(f"grad_norm_every must be a positive int, got {grad_norm_every!r}")
    if noise is None:
        latent_dim = generator.latent_dim

        def noise(m):
            return torch.randn(m, latent_dim, device=device)

    # (``is None``, not ``or``: a torch.compile'd module refuses ``bool()``)
    forward_g = generator if forward_generator is None else forward_generator

    def augmented(d):
        return d if augment is None else (lambda images: d(augment(images)))

    forward_d = augmented(discriminator if forward_discriminator is None else forward_discriminator)
    plain_forward_d = augmented(discriminator)          # for R1's double backward (no torch.compile)
    least_squares = loss == "least_squares"
    d_loss_fn = least_squares_discriminator_loss if least_squares else discriminator_loss
    g_loss_fn = GENERATOR_LOSSES[loss]
    probability = (lambda s: s.float()) if least_squares else (lambda s: torch.sigmoid(s.float()))
    d_params, g_params = list(discriminator.parameters()), list(generator.parameters())
    d_updates = [0]                                     # discriminator updates so far (for lazy R1)
    iterations = [0]                                    # iterations so far (for grad_norm_every)
    held_norms = {}                                     # the last measured gradient norms

    def step(batch):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        if x.shape[0] % k:
            raise ValueError(f"a batch of {x.shape[0]} examples cannot be split into k={k} equal minibatches; "
                             f"use a batch size of k * m")
        m = x.shape[0] // k
        measure = track_grad_norms and iterations[0] % grad_norm_every == 0
        iterations[0] += 1
        if channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        # -- k discriminator updates, each on a fresh minibatch of data and of noise
        for i, real in enumerate(x.split(m)):
            if reuse_fakes and i == k - 1:
                with autocast(device):
                    fake_with_graph = forward_g(noise(m))   # kept for the generator update below
                fake = fake_with_graph.detach()
            else:
                with torch.no_grad(), autocast(device):
                    fake = forward_g(noise(m))              # no graph through G: D's update does not need it
            d_updates[0] += 1
            regularise = r1_gamma > 0 and d_updates[0] % r1_every == 0
            if regularise:
                real = real.detach().requires_grad_(True)
            with autocast(device):
                real_scores = (plain_forward_d if regularise else forward_d)(real)
                fake_scores = forward_d(fake)
            loss_d = d_loss_fn(real_scores, fake_scores, real_label)
            total_d = loss_d + (r1_gamma / 2 * r1_every) * r1_penalty(real_scores, real) if regularise else loss_d
            opt_d.zero_grad(set_to_none=True)
            total_d.backward()
            if measure and i == k - 1:
                held_norms["grad_norm_d"] = gradient_norm(d_params)
            opt_d.step()
        # -- one generator update against the fixed discriminator
        discriminator.requires_grad_(False)             # gradients flow *through* D to G, none are kept for D
        try:
            with autocast(device):
                fake_scores_g = forward_d(fake_with_graph if reuse_fakes else forward_g(noise(m)))
            loss_g = g_loss_fn(fake_scores_g)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            if measure:
                held_norms["grad_norm_g"] = gradient_norm(g_params)
            opt_g.step()
        finally:
            discriminator.requires_grad_(True)
        if ema is not None:
            ema.update(generator)
        out = {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(),
               "d_real": probability(real_scores.detach()).mean(),
               "d_fake": probability(fake_scores.detach()).mean(),
               "d_fake_g": probability(fake_scores_g.detach()).mean()}
        if track_grad_norms:
            out.update(held_norms)
        return out

    return step


@dataclass
class GANRun:
    """What :func:`train_gan` hands back: the models, the per-epoch history, and the snapshots.

    ``snapshots``: ``[(epoch, G(fixed_noise))]`` on the CPU, from the EMA generator when there is one
    (epoch 0 = before training).  ``sampler`` is the generator to sample from (the EMA copy if any).
    """

    generator: nn.Module
    discriminator: nn.Module
    history: History
    fixed_noise: torch.Tensor
    snapshots: list[tuple[int, torch.Tensor]] = field(default_factory=list)
    ema: EMA | None = None
    optimizers: tuple = ()

    @property
    def sampler(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.generator

    def sample(self, n: int, seed: int | None = None, noise: Callable[[int], torch.Tensor] | None = None) -> torch.Tensor:
        """n samples (CPU, G's output range) from :attr:`sampler`.

        Without ``noise``, the codes are standard normal from a generator seeded with ``seed`` (default 0).
        With ``noise`` (a callable ``m -> m x latent_dim`` codes, such as the run's prior), the callable draws
        from its own random stream, so a ``seed`` cannot reach it: passing both is refused.  A prior with
        its own seed has ``prior.sample(n, seed)``; pass those codes through :func:`generate`.
        """
        if noise is not None:
            if seed is not None:
                raise ValueError(f"seed={seed!r} has no effect when noise is given (the noise callable draws from "
                                 "its own random stream); pass one or the other, e.g. "
                                 "generate(run.sampler, prior.sample(n, seed))")
            z = noise(n)
            if not torch.is_tensor(z) or z.ndim != 2 or z.shape[0] != n:
                raise ValueError(f"noise({n}) must return {n} x latent_dim codes, got {getattr(z, 'shape', type(z))}")
        else:
            z = torch.randn(n, self.sampler.latent_dim,
                            generator=torch.Generator().manual_seed(0 if seed is None else seed))
        return generate(self.sampler, z)


def train_gan(generator: nn.Module, discriminator: nn.Module, data: torch.Tensor, epochs: int, *,
              batch_size: int = 64, k: int = 1, optimizer: str = "adam", lr_generator: float = 2e-4,
              lr_discriminator: float | None = None, betas: tuple[float, float] = (0.5, 0.999),
              momentum: float = 0.9, loss: str = "non_saturating", real_label: float = 1.0,
              ema_decay: float | None = None, noise: Callable[[int], torch.Tensor] | None = None,
              fixed_noise: torch.Tensor | None = None, n_snapshot: int = 64, snapshot_every: int = 1,
              device: torch.device | str = "cpu", channels_last: bool | None = None, compile: bool = False,
              track_grad_norms: bool = True, grad_norm_every: int = 1, reuse_fakes: bool = False,
              augment: Callable[[torch.Tensor], torch.Tensor] | None = None, r1_gamma: float = 0.0, r1_every: int = 1,
              seed: int = 0, checkpoint: str | Path | None = None,
              resume: bool = False, progress: bool | None = None,
              on_epoch_end: Callable[[int, dict], None] | None = None, desc: str = "GAN") -> GANRun:
    """Train a GAN with Algorithm 1 on ``data`` (N x ..., already in G's output range, e.g. [-1, 1]).

    Each iteration uses ``k * batch_size`` examples (k discriminator minibatches of ``batch_size``);
    an epoch is one pass over ``data``, which moves to ``device`` once.  ``optimizer``, the learning
    rates, ``loss``, ``real_label`` and ``ema_decay`` are described in :func:`make_optimizers`,
    :func:`gan_step` and :func:`ema_generator`.  ``channels_last`` defaults to True on CUDA and CPU;
    ``compile=True`` runs the forward passes through ``torch.compile``; ``augment`` is DiffAugment,
    ``r1_gamma``, ``r1_every`` the R1 penalty on D, ``reuse_fakes`` DCGAN's one generator forward per
    iteration and ``grad_norm_every`` how often the gradient norms are measured (see :func:`gan_step`).
    The fixed noise (default ``n_snapshot`` seeded normal vectors) is decoded every ``snapshot_every``
    epochs: a sample grid over training.  Under ``torchrun`` (:mod:`lecture_utils.distributed`) ``batch_size``
    is the global minibatch, split evenly over the processes, and G and D train as DistributedDataParallel.
    """
    device = torch.device(device)
    if not torch.is_tensor(data) or data.ndim < 2:
        raise ValueError(f"data must be a tensor N x ..., got {getattr(data, 'shape', type(data))}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if k * batch_size > data.shape[0]:
        raise ValueError(f"k * batch_size = {k * batch_size} exceeds the {data.shape[0]} examples in data")
    # Read the data's values once, here, rather than in every step: a NaN in the data would otherwise
    # surface epochs later as a "diverged" loss; images outside the tanh range (0-255 grey levels, or [0, 1]
    # images not yet mapped) would train a generator that can never match them.
    check_float(data, "data")
    if data.ndim == 4:
        check_range(data, "data", -1.0, 1.0, hint="images in G's tanh range: map [0, 1] images with "
                    "to_tanh_range, divide 8-bit images by 255 first")
    else:
        check_finite(data, "data")
    channels_last = (device.type in CHANNELS_LAST_DEVICES) if channels_last is None else channels_last
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    generator.to(device, memory_format=memory_format)
    discriminator.to(device, memory_format=memory_format)
    if channels_last and data.ndim == 4:
        data = data.to(device).contiguous(memory_format=torch.channels_last)
    opt_g, opt_d = make_optimizers(generator, discriminator, optimizer, lr_generator, lr_discriminator,
                                   betas=betas, momentum=momentum)
    ema = ema_generator(generator, ema_decay) if ema_decay else None
    if fixed_noise is None:
        fixed_noise = (noise(n_snapshot).cpu() if noise is not None else
                       torch.randn(n_snapshot, generator.latent_dim, generator=torch.Generator().manual_seed(seed + 1)))
    # under torchrun (lecture_utils.distributed): each process takes its slice of every batch and of the noise,
    # and the forward passes that need gradients run through DistributedDataParallel; else all three are no-ops
    batches = distributed.shard(BatchIterator(data, batch_size=k * batch_size, seed=seed, device=device))
    if distributed.active():
        latent_dim = generator.latent_dim
        noise = distributed.shard_noise(noise or (lambda m: torch.randn(m, latent_dim, device=device)))
    forward_g, forward_d = distributed.wrap(generator), distributed.wrap(discriminator)
    if compile:
        forward_g, forward_d = torch.compile(forward_g), torch.compile(forward_d)
    step = gan_step(generator, discriminator, opt_g, opt_d, k=k, loss=loss, real_label=real_label, noise=noise,
                    ema=ema, device=device, channels_last=channels_last, track_grad_norms=track_grad_norms,
                    forward_generator=forward_g, forward_discriminator=forward_d, augment=augment,
                    reuse_fakes=reuse_fakes, r1_gamma=r1_gamma, r1_every=r1_every, grad_norm_every=grad_norm_every)
    run = GANRun(generator, discriminator, History(), fixed_noise, ema=ema, optimizers=(opt_g, opt_d))
    run.snapshots.append((0, generate(run.sampler, fixed_noise)))

    def epoch_end(epoch, record):
        if epoch % snapshot_every == 0 or epoch == epochs:
            run.snapshots.append((epoch, generate(run.sampler, fixed_noise)))
        if on_epoch_end is not None:
            on_epoch_end(epoch, record)

    state = {"generator": generator, "discriminator": discriminator, "opt_g": opt_g, "opt_d": opt_d}
    if ema is not None:
        state["ema"] = ema
    run.history = fit(step, batches, epochs, state=state, checkpoint=checkpoint, resume=resume,
                      progress=progress, on_epoch_end=epoch_end, desc=desc)
    return run


# --------------------------------------------------------------------------- image-to-image (pix2pix)
def image_to_image_step(generator: nn.Module, opt_g: torch.optim.Optimizer, *, discriminator: nn.Module | None = None,
                        opt_d: torch.optim.Optimizer | None = None, l1_weight: float = 100.0,
                        device: torch.device | str = "cpu", channels_last: bool = False,
                        conditional: bool = True) -> Callable:
    """One pix2pix update (Isola et al. 2017) on a batch ``(inputs, targets)``.

    Without a discriminator: plain L1 regression, ``loss_g = l1_weight * l1``.  With a conditional
    (Patch) discriminator, which sees ``cat(input, output)`` along channels:

        loss_D = BCE(D(x, y), 1) + BCE(D(x, G(x)), 0)          (averaged over the patch map)
        loss_G = -log D(x, G(x)) + l1_weight * |G(x) - y|_1

    ``conditional=False`` lets D judge the output alone, D(y) and D(G(x)): for tasks whose input has
    another size than the output (super-resolution), where the two cannot be stacked.
    Returns detached scalars: ``l1`` (mean absolute error), ``loss_g``, and with a discriminator
    ``loss_d``, ``adv_g`` (the generator's adversarial term), ``d_real``, ``d_fake``.
    """
    if (discriminator is None) != (opt_d is None):
        raise ValueError("pass both discriminator and opt_d, or neither")
    d_params = list(discriminator.parameters()) if discriminator is not None else []

    def step(batch):
        inputs, targets = batch
        if channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
            targets = targets.contiguous(memory_format=torch.channels_last)
        with autocast(device):
            outputs = generator(inputs)
        out = {}
        if discriminator is not None:
            judged = (lambda images: torch.cat([inputs, images], 1)) if conditional else (lambda images: images)
            with autocast(device):
                real_scores = discriminator(judged(targets))
                fake_scores = discriminator(judged(outputs.detach()))
            loss_d = discriminator_loss(real_scores, fake_scores)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            for p in d_params:
                p.requires_grad_(False)
            try:
                with autocast(device):
                    fake_scores_g = discriminator(judged(outputs))
                adv = generator_loss_non_saturating(fake_scores_g)
            finally:
                for p in d_params:
                    p.requires_grad_(True)
            out.update(loss_d=loss_d.detach(), adv_g=adv.detach(),
                       d_real=torch.sigmoid(real_scores.detach().float()).mean(),
                       d_fake=torch.sigmoid(fake_scores.detach().float()).mean())
        l1 = (outputs.float() - targets.float()).abs().mean()
        loss_g = l1_weight * l1 + (adv if discriminator is not None else 0.0)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        out.update(l1=l1.detach(), loss_g=loss_g.detach())
        return out

    return step


def train_image_to_image(generator: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, epochs: int, *,
                         discriminator: nn.Module | None = None, batch_size: int = 16, lr: float = 2e-4,
                         betas: tuple[float, float] = (0.5, 0.999), l1_weight: float = 100.0,
                         device: torch.device | str = "cpu", seed: int = 0, channels_last: bool | None = None,
                         checkpoint: str | Path | None = None, progress: bool | None = None,
                         desc: str = "image-to-image") -> History:
    """Train ``generator`` to map ``inputs`` to ``targets`` (N x C x H x W each) with L1, or L1 + GAN.

    Pass a conditional ``discriminator`` (e.g. a :class:`~lecture_utils.models.patchgan.PatchDiscriminator`
    with ``in_channels = C_in + C_out``) to add the adversarial term.  Adam(lr, betas) for both, as
    pix2pix.  Calling it again continues training the same models (new optimisers).
    """
    if inputs.shape[0] != targets.shape[0] or inputs.shape[2:] != targets.shape[2:]:
        raise ValueError(f"inputs {tuple(inputs.shape)} and targets {tuple(targets.shape)} must have the same "
                         "number of images and the same height and width")
    check_finite(check_float(inputs, "inputs"), "inputs")
    check_finite(check_float(targets, "targets"), "targets")
    device = torch.device(device)
    channels_last = (device.type in CHANNELS_LAST_DEVICES) if channels_last is None else channels_last
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    fused = device.type == "cuda"
    generator.to(device, memory_format=memory_format)
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas, fused=fused)
    opt_d, state = None, {"generator": generator, "opt_g": opt_g}
    if discriminator is not None:
        discriminator.to(device, memory_format=memory_format)
        opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=betas, fused=fused)
        state.update(discriminator=discriminator, opt_d=opt_d)
    batches = BatchIterator(inputs, targets, batch_size=batch_size, seed=seed, device=device)
    step = image_to_image_step(generator, opt_g, discriminator=discriminator, opt_d=opt_d, l1_weight=l1_weight,
                               device=device, channels_last=channels_last)
    return fit(step, batches, epochs, state=state, checkpoint=checkpoint, progress=progress, desc=desc)
