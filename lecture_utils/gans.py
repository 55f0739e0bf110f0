"""GAN training (notebooks 03-07): Algorithm 1 of Goodfellow et al. (2014), with and without labels, and pix2pix.

Algorithm 1, one *training iteration*::

    for k steps:                                   # the discriminator
        sample m noise vectors z and m data examples x (a fresh minibatch each time)
        ascend  1/m sum [log D(x) + log(1 - D(G(z)))]        (descend discriminator_loss)
    sample m noise vectors z
    descend 1/m sum log(1 - D(G(z)))                          (or the non-saturating -log D(G(z)))

:func:`gan_step` is that loop body, and every GAN of the course trains with it: the MLP and DCGAN of notebooks
03-04, the class-conditional GAN of notebook 05 (labels given: G(z, y), D(x, y)) and pix2pix (notebooks 04, 06,
07: the condition is the input image, G takes no noise, and an L1 term joins G's loss).

What only matters for speed or regularisation is composed *around* the step, never written into it:

* channels-last, ``torch.compile``d or DistributedDataParallel modules are simply what is passed in;
* bf16 autocast on CUDA wraps each call (:func:`~lecture_utils.train.autocast_step`);
* gradient norms (measured on every n-th iteration only) and the EMA of G's weights are optimiser step hooks
  (:class:`GradientNorms`, :meth:`EMA.follow`);
* DiffAugment wraps D (:class:`Augmented`); the lazy R1 penalty adds its gradient to D's in a hook (:class:`LazyR1`).

``tests/test_gan.py`` checks that a seeded run of the plain step and of the composition :func:`train_gan` uses end
with the same weights.  Tricks the field learned, each an option of :class:`GANOptions` and explained in notebook
04: two time-scale learning rates (TTUR), one-sided label smoothing (``real_label=0.9``), an EMA of G's weights,
the R1 penalty and spectral normalisation (a model option of :class:`~lecture_utils.models.dcgan.DCGANDiscriminator`).
"""
from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import distributed
from .checks import check_finite, check_float, check_image_batch, check_labels, check_range
from .data import BatchIterator
from .losses import (GENERATOR_LOSSES, discriminator_loss, generator_loss_non_saturating,
                     least_squares_discriminator_loss)
from .train import History, adam, autocast_step, batched_inference, fit, random_shift

# Devices where channels_last is the default for image models: on CUDA it feeds cuDNN's NHWC kernels
# (tensor cores); on a 2-core x86 CPU it made a DCGAN step about 25% faster (oneDNN).
CHANNELS_LAST_DEVICES = ("cuda", "cpu")
OPTIMIZERS = ("adam", "sgd")


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


# --------------------------------------------------------------------------- Algorithm 1
def call(module: Callable, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """``module(x)``, or ``module(x, labels)`` for a conditional model."""
    return module(x) if labels is None else module(x, labels)


def mean_probability(scores) -> torch.Tensor:
    """D's mean belief that its inputs are real, mean sigmoid(logit), as a detached scalar (AC-GAN's
    discriminator returns ``(logits, class losses)``: the logits count)."""
    scores = scores[0] if isinstance(scores, tuple) else scores
    return torch.sigmoid(scores.detach().float()).mean()


class Noise:
    """``noise(m, labels)`` -> ``(z, labels of the fakes)``: m codes from ``prior`` (a callable ``m -> m x d``;
    default N(0, I) of the generator's ``latent_dim``) on the generator's device and, when the real minibatch
    has labels, m classes drawn uniformly from the generator's ``n_classes``."""

    def __init__(self, generator: nn.Module, prior: Callable[[int], torch.Tensor] | None = None):
        self.generator, self.prior = generator, prior

    def __call__(self, m: int, labels: torch.Tensor | None = None):
        device = next(self.generator.parameters()).device
        z = self.prior(m) if self.prior is not None else torch.randn(m, self.generator.latent_dim, device=device)
        if labels is None:
            return z, None
        return z, torch.randint(0, self.generator.n_classes, (m,), device=device)


def gan_step(generator, discriminator, opt_g, opt_d, *, k=1, noise=None, g_extra=None,
             d_loss=discriminator_loss, g_loss=generator_loss_non_saturating):
    """Algorithm 1 of Goodfellow et al. (2014) as ``step(batch)``: k discriminator updates, each on a fresh
    minibatch of m real examples and m fresh noise vectors, then one generator update with D fixed.

    ``batch``: k * m examples, or ``(examples, labels)``: then G(z, y) and D(x, y), a conditional GAN.
    ``noise(m, labels)`` returns z and the fakes' labels (:class:`Noise`); ``g_extra(fake, real)`` joins G's loss.
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k (discriminator updates per generator update) must be a positive int, got {k!r}")
    noise = noise or Noise(generator)

    def step(batch):
        x, y = (batch, None) if torch.is_tensor(batch) else batch
        m = x.shape[0] // k
        for i in range(k):                                        # -- k discriminator updates
            real, labels = x[i * m:(i + 1) * m], None if y is None else y[i * m:(i + 1) * m]
            z, fake_labels = noise(m, labels)
            with torch.no_grad():                                 # D's update needs no graph through G
                fake = call(generator, z, fake_labels)
            real_scores = call(discriminator, real, labels)
            fake_scores = call(discriminator, fake, fake_labels)
            loss_d = d_loss(real_scores, fake_scores)             # -[log D(x) + log(1 - D(G(z)))]
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
        discriminator.requires_grad_(False)                       # -- one generator update, D fixed:
        z, fake_labels = noise(m, labels)                         # gradients flow through D, none kept for D
        fake = call(generator, z, fake_labels)
        loss_g = g_loss(call(discriminator, fake, fake_labels))   # non-saturating: -log D(G(z))
        if g_extra is not None:
            loss_g = loss_g + g_extra(fake, real)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        discriminator.requires_grad_(True)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(),
                "d_real": mean_probability(real_scores), "d_fake": mean_probability(fake_scores)}

    return step


def reused_fakes_step(generator, discriminator, opt_g, opt_d, *, noise=None,
                      d_loss=discriminator_loss, g_loss=generator_loss_non_saturating):
    """DCGAN's own loop (pytorch/examples' ``dcgan/main.py``), a variant of :func:`gan_step` with k = 1: one
    generator forward per iteration, whose fakes serve D's update (detached) and then G's update.  It saves
    the generator forward that Algorithm 1 spends on fresh noise for G, at the price of G's update seeing the
    noise D has just been trained against."""
    noise = noise or Noise(generator)

    def step(batch):
        real, labels = (batch, None) if torch.is_tensor(batch) else batch
        z, fake_labels = noise(real.shape[0], labels)
        fake = call(generator, z, fake_labels)                    # with a graph through G, for G's update
        real_scores = call(discriminator, real, labels)
        fake_scores = call(discriminator, fake.detach(), fake_labels)
        loss_d = d_loss(real_scores, fake_scores)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        discriminator.requires_grad_(False)
        loss_g = g_loss(call(discriminator, fake, fake_labels))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        discriminator.requires_grad_(True)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(),
                "d_real": mean_probability(real_scores), "d_fake": mean_probability(fake_scores)}

    return step


# --------------------------------------------------------------------------- composed around the step
def make_optimizers(generator: nn.Module, discriminator: nn.Module, optimizer: str = "adam",
                    lr_generator: float = 2e-4, lr_discriminator: float | None = None,
                    betas: tuple[float, float] = (0.5, 0.999),
                    momentum: float = 0.9) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """(generator optimiser, discriminator optimiser).

    ``"adam"``: the course's Adam (:func:`~lecture_utils.train.adam`) with betas (0.5, 0.999) as in DCGAN;
    ``"sgd"``: SGD with momentum as in Goodfellow et al.  ``lr_discriminator`` defaults to ``lr_generator``;
    a larger one is TTUR.
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
    # the reference Adam kernel on a CPU: see train.adam (the GAN recipes and their figures depend on it)
    return (adam(generator.parameters(), lr_generator, betas, reference_on_cpu=True),
            adam(discriminator.parameters(), lr_discriminator, betas, reference_on_cpu=True))


def gradient_norm(parameters) -> torch.Tensor:
    """The L2 norm of all gradients together, as a device tensor (no sync)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.nn.utils.get_total_norm(grads).detach()


class GradientNorms:
    """Gradient norms of G and D as diagnostics, measured by optimiser step hooks on every ``every``-th iteration
    (the first, the (every+1)-th, ...) and repeated in between: each norm is one reduction over every weight
    gradient, a noticeable share of a small model's step on a CPU.  D's norm is that of its last update of the
    iteration.  ``norms.wrap(step)`` adds ``grad_norm_g`` and ``grad_norm_d`` to the step's results."""

    def __init__(self, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, every: int = 1):
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"grad_norm_every must be a positive int, got {every!r}")
        self.every, self.iterations, self.values, self.measuring = every, 0, {}, False
        for name, optimizer in (("grad_norm_g", opt_g), ("grad_norm_d", opt_d)):
            optimizer.register_step_pre_hook(functools.partial(self._measure, name))

    def _measure(self, name, optimizer, args, kwargs):
        if self.measuring:
            self.values[name] = gradient_norm(p for group in optimizer.param_groups for p in group["params"])

    def wrap(self, step: Callable) -> Callable:
        def measured(batch):
            self.measuring = self.iterations % self.every == 0
            self.iterations += 1
            return {**step(batch), **self.values}

        return measured


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


class LazyR1:
    """The R1 penalty ``gamma / 2 * |grad_x D(x)|^2`` on real images added to D's loss on every ``every``-th
    discriminator update, scaled by ``every`` ("lazy regularisation", StyleGAN2): most of its cost (a second
    backward pass) is saved.  A step pre-hook on ``opt_d`` adds the penalty's gradient to D's before the update,
    the same gradient as penalising D's loss, from the real minibatch of that update (:meth:`wrap` keeps
    the batch: ``k`` minibatches per batch as in :func:`gan_step`).  ``discriminator`` is the plain module:
    a double backward through ``torch.compile`` is not supported."""

    def __init__(self, discriminator: nn.Module, opt_d: torch.optim.Optimizer, gamma: float, every: int = 1,
                 k: int = 1):
        if not gamma > 0:
            raise ValueError(f"r1_gamma must be > 0, got {gamma!r}")
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"r1_every must be a positive int, got {every!r}")
        self.discriminator, self.gamma, self.every, self.k = discriminator, gamma, every, k
        self.updates, self.batch = 0, None
        opt_d.register_step_pre_hook(self._add_gradient)

    def _add_gradient(self, optimizer, args, kwargs):
        self.updates += 1
        if self.updates % self.every:
            return
        x, y = (self.batch, None) if torch.is_tensor(self.batch) else self.batch
        m, i = x.shape[0] // self.k, (self.updates - 1) % self.k
        real = x[i * m:(i + 1) * m].detach().requires_grad_(True)
        scores = call(self.discriminator, real, None if y is None else y[i * m:(i + 1) * m])
        (self.gamma / 2 * self.every * r1_penalty(scores, real)).backward()

    def wrap(self, step: Callable) -> Callable:
        def regularised(batch):
            self.batch = batch
            return step(batch)

        return regularised


class Augmented(nn.Module):
    """D that sees its images through ``augment`` (real and fake alike): DiffAugment (Zhao et al. 2020).  With few
    training images D memorises them and stops teaching G; randomly shifted images (``augment`` default:
    :func:`~lecture_utils.train.random_shift` by up to 2 pixels, background -1) remove that shortcut, and since
    the shift is differentiable, G still learns through it.  Pass ``Augmented(D)`` as the discriminator."""

    def __init__(self, discriminator: nn.Module, augment: Callable[[torch.Tensor], torch.Tensor] | None = None):
        super().__init__()
        self.discriminator = discriminator
        self.augment = augment or functools.partial(random_shift, max_shift=2, background=-1.0)

    def forward(self, images: torch.Tensor, *labels: torch.Tensor) -> torch.Tensor:
        return self.discriminator(self.augment(images), *labels)


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

    def follow(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> "EMA":
        """Update the average after every step of ``optimizer`` (a step post-hook), the training loop unchanged."""
        optimizer.register_step_post_hook(lambda *_: self.update(model))
        return self

    def get_extra_state(self) -> dict:
        return {"updates": self.updates, "decay": self.decay}

    def set_extra_state(self, state: dict) -> None:
        self.updates, self.decay = int(state["updates"]), float(state["decay"])

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


# --------------------------------------------------------------------------- priors and sampling
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


def generate(generator: nn.Module, z: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """G(z) on the CPU, in eval mode (batch norm uses its running statistics), without gradients."""
    module = generator.module if isinstance(generator, EMA) else generator
    return batched_inference(module, z, batch_size=batch_size)


# --------------------------------------------------------------------------- train_gan
@dataclass
class Speed:
    """Options that change how fast a GAN trains, not what it learns (the weights agree to float rounding).

    ``channels_last`` (default: on CUDA and CPU) stores image models and data in NHWC order; ``compile`` runs
    the forward passes through ``torch.compile``; ``grad_norm_every`` = n measures the gradient norms on every
    n-th iteration only (:class:`GradientNorms`).
    """

    channels_last: bool | None = None
    compile: bool = False
    grad_norm_every: int = 1


@dataclass
class GANOptions:
    """A GAN recipe for :func:`train_gan` and :func:`train_conditional_gan`.

    ``batch_size`` m real examples per discriminator update, ``k`` discriminator updates per generator update
    (an iteration uses k * m examples; an epoch is one pass over the data).  ``loss``: G's loss,
    ``"non_saturating"``, ``"minimax"`` (the saturating log(1 - D(G(z)))) or ``"least_squares"`` (then D's loss
    is least squares too; ``d_real`` and ``d_fake`` then squash raw scores, not logits).  ``optimizer``,
    ``lr_generator``, ``lr_discriminator`` (TTUR when larger), ``betas``, ``momentum``: see
    :func:`make_optimizers`.  ``real_label`` < 1: one-sided label smoothing.  ``ema_decay``: sample from an
    :class:`EMA` of G's weights (None: off).  ``r1_gamma`` > 0, ``r1_every``: :class:`LazyR1`.
    ``classifier_weight`` > 0 (conditional GAN, a discriminator with ``auxiliary_classifier=True``): AC-GAN's
    class terms.  ``reuse_fakes=True`` (k = 1 only): DCGAN's loop, :func:`reused_fakes_step`.  ``n_snapshot``
    fixed codes are decoded every ``snapshot_every`` epochs (a sample grid over training).  ``seed``: the order
    of the batches and the fixed codes.  ``desc``: the progress bar's label.  ``speed``: :class:`Speed`.
    """

    batch_size: int = 64
    k: int = 1
    loss: str = "non_saturating"
    optimizer: str = "adam"
    lr_generator: float = 2e-4
    lr_discriminator: float | None = None
    betas: tuple[float, float] = (0.5, 0.999)
    momentum: float = 0.9
    real_label: float = 1.0
    ema_decay: float | None = None
    r1_gamma: float = 0.0
    r1_every: int = 1
    classifier_weight: float = 0.0
    reuse_fakes: bool = False
    n_snapshot: int = 64
    snapshot_every: int = 1
    seed: int = 0
    desc: str = "GAN"
    speed: Speed = field(default_factory=Speed)

    def __post_init__(self):
        for name in ("batch_size", "k", "r1_every", "n_snapshot", "snapshot_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.loss not in GENERATOR_LOSSES:
            raise ValueError(f"loss must be one of {sorted(GENERATOR_LOSSES)}, got {self.loss!r}")
        if not self.r1_gamma >= 0:
            raise ValueError(f"r1_gamma must be >= 0, got {self.r1_gamma!r}")
        if not self.classifier_weight >= 0:
            raise ValueError(f"classifier_weight must be >= 0, got {self.classifier_weight!r}")
        if self.reuse_fakes and self.k != 1:
            raise ValueError(f"reuse_fakes=True is DCGAN's loop with k = 1, got k={self.k}")

    def losses(self) -> dict:
        """``d_loss`` and ``g_loss`` for :func:`gan_step`."""
        d_loss = least_squares_discriminator_loss if self.loss == "least_squares" else discriminator_loss
        g_loss = GENERATOR_LOSSES[self.loss]
        if self.real_label != 1.0:
            d_loss = functools.partial(d_loss, real_label=self.real_label)
        if self.classifier_weight > 0:
            d_loss, g_loss = _with_class_terms(d_loss, g_loss, self.classifier_weight)
        return {"d_loss": d_loss, "g_loss": g_loss}


def _with_class_terms(d_loss: Callable, g_loss: Callable, weight: float) -> tuple[Callable, Callable]:
    """AC-GAN (Odena et al. 2017): D also minimises the cross-entropy of its class prediction on real images, G
    that on its fakes against the requested labels (the scores are ``(logits, class losses)``, :class:`ClassAware`)."""
    def d_loss_with_classes(real, fake):
        return d_loss(real[0], fake[0]) + weight * real[1]

    def g_loss_with_classes(fake):
        return g_loss(fake[0]) + weight * fake[1]

    return d_loss_with_classes, g_loss_with_classes


class ClassAware(nn.Module):
    """An auxiliary-classifier discriminator seen by :func:`gan_step`: ``D(x, y)`` returns ``(logits, mean
    cross-entropy of D's class prediction against y)``."""

    def __init__(self, discriminator: nn.Module):
        super().__init__()
        self.discriminator = discriminator

    def forward(self, images: torch.Tensor, labels: torch.Tensor):
        scores, class_logits = self.discriminator(images, labels, return_class_logits=True)
        return scores, F.cross_entropy(class_logits.float(), labels)


def fast_gan_step(generator: nn.Module, discriminator: nn.Module, opt_g: torch.optim.Optimizer,
                  opt_d: torch.optim.Optimizer, options: GANOptions, *, noise: Noise, device: torch.device,
                  ema: EMA | None = None) -> Callable:
    """:func:`gan_step` with the speed options and regularisers of ``options`` composed around it: the forward
    passes through DistributedDataParallel (under torchrun) and ``torch.compile`` (``speed.compile``), lazy R1,
    gradient-norm hooks, the EMA hook, and autocast.  ``generator`` and ``discriminator`` are the plain modules
    (already in their memory format); the optimisers update their parameters."""
    forward_g, forward_d = distributed.wrap(generator), distributed.wrap(discriminator)
    if options.speed.compile:
        forward_g, forward_d = torch.compile(forward_g), torch.compile(forward_d)
    if options.classifier_weight > 0:
        if not getattr(discriminator, "auxiliary_classifier", False):
            raise ValueError("classifier_weight > 0 needs a discriminator built with auxiliary_classifier=True")
        forward_d = ClassAware(forward_d)
    if options.reuse_fakes:
        step = reused_fakes_step(forward_g, forward_d, opt_g, opt_d, noise=noise, **options.losses())
    else:
        step = gan_step(forward_g, forward_d, opt_g, opt_d, k=options.k, noise=noise, **options.losses())
    if options.r1_gamma > 0:          # registered first: the gradient norm below includes the penalty's gradient
        step = LazyR1(discriminator, opt_d, options.r1_gamma, options.r1_every, options.k).wrap(step)
    step = GradientNorms(opt_g, opt_d, options.speed.grad_norm_every).wrap(step)
    if ema is not None:
        ema.follow(generator, opt_g)
    return autocast_step(step, device)


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


def _to_device(device, models, speed: Speed) -> tuple[torch.device, bool]:
    """Move ``models`` to ``device`` in the memory format of ``speed``; returns (device, channels_last)."""
    device = torch.device(device)
    channels_last = (device.type in CHANNELS_LAST_DEVICES) if speed.channels_last is None else speed.channels_last
    for model in models:
        model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    return device, channels_last


def train_gan(generator: nn.Module, discriminator: nn.Module, data: torch.Tensor, epochs: int,
              options: GANOptions | None = None, *, noise: Callable[[int], torch.Tensor] | None = None,
              fixed_noise: torch.Tensor | None = None, device: torch.device | str = "cpu",
              checkpoint: str | Path | None = None, resume: bool = False, progress: bool | None = None,
              on_epoch_end: Callable[[int, dict], None] | None = None) -> GANRun:
    """Train a GAN with Algorithm 1 (:func:`gan_step`) on ``data`` (N x ..., in G's output range, e.g. [-1, 1]).

    ``options``: the recipe (:class:`GANOptions`).  ``noise(m)`` draws m codes (default N(0, I)), e.g. a
    :class:`GaussianMixturePrior`; ``fixed_noise`` (default ``options.n_snapshot`` seeded codes) is decoded
    for the snapshots.  ``data`` moves to ``device`` once.  ``checkpoint`` is written after every epoch;
    ``resume=True`` continues from it.  Under ``torchrun`` (:mod:`lecture_utils.distributed`) the batch size
    is the global minibatch, split evenly over the processes, and G and D train as DistributedDataParallel.
    """
    options = options or GANOptions()
    if not torch.is_tensor(data) or data.ndim < 2:
        raise ValueError(f"data must be a tensor N x ..., got {getattr(data, 'shape', type(data))}")
    if options.k * options.batch_size > data.shape[0]:
        raise ValueError(f"k * batch_size = {options.k * options.batch_size} exceeds the {data.shape[0]} examples "
                         "in data")
    # Read the data's values once, here, rather than in every step: a NaN in the data would otherwise
    # surface epochs later as a "diverged" loss; images outside the tanh range (0-255 grey levels, or [0, 1]
    # images not yet mapped) would train a generator that can never match them.
    check_float(data, "data")
    if data.ndim == 4:
        check_range(data, "data", -1.0, 1.0, hint="images in G's tanh range: map [0, 1] images with "
                    "to_tanh_range, divide 8-bit images by 255 first")
    else:
        check_finite(data, "data")
    device, channels_last = _to_device(device, (generator, discriminator), options.speed)
    if channels_last and data.ndim == 4:
        data = data.to(device).contiguous(memory_format=torch.channels_last)
    opt_g, opt_d = make_optimizers(generator, discriminator, options.optimizer, options.lr_generator,
                                   options.lr_discriminator, options.betas, options.momentum)
    ema = EMA(generator, options.ema_decay) if options.ema_decay else None
    if fixed_noise is None:
        fixed_noise = (noise(options.n_snapshot).cpu() if noise is not None else
                       torch.randn(options.n_snapshot, generator.latent_dim,
                                   generator=torch.Generator().manual_seed(options.seed + 1)))
    # under torchrun each process takes its slice of every batch and of the noise; else both are no-ops
    batches = distributed.shard(BatchIterator(data, batch_size=options.k * options.batch_size, seed=options.seed,
                                              device=device))
    if distributed.active():
        latent_dim = generator.latent_dim
        noise = distributed.shard_noise(noise or (lambda m: torch.randn(m, latent_dim, device=device)))
    step = fast_gan_step(generator, discriminator, opt_g, opt_d, options, noise=Noise(generator, noise),
                         device=device, ema=ema)
    run = GANRun(generator, discriminator, History(), fixed_noise, ema=ema, optimizers=(opt_g, opt_d))
    run.snapshots.append((0, generate(run.sampler, fixed_noise)))

    def epoch_end(epoch, record):
        if epoch % options.snapshot_every == 0 or epoch == epochs:
            run.snapshots.append((epoch, generate(run.sampler, fixed_noise)))
        if on_epoch_end is not None:
            on_epoch_end(epoch, record)

    state = {"generator": generator, "discriminator": discriminator, "opt_g": opt_g, "opt_d": opt_d}
    if ema is not None:
        state["ema"] = ema
    run.history = fit(step, batches, epochs, state=state, checkpoint=checkpoint, resume=resume,
                      progress=progress, on_epoch_end=epoch_end, desc=options.desc)
    return run


# --------------------------------------------------------------------------- class-conditional GAN (notebook 05)
@torch.no_grad()
def recalibrate_batch_norm(generator: nn.Module, n_batches: int = 20, batch_size: int = 256, seed: int = 0) -> nn.Module:
    """Recompute the batch-norm statistics of a conditional generator from its own samples.

    An exponential moving average of G's weights (:class:`EMA`) also averages the running means and variances,
    which then lag behind the averaged weights: early in training they still remember the first, very
    different, generators, and eval-mode samples wash out.  As SWA's ``update_bn`` does for classifiers, run G
    in training mode on ``n_batches`` batches of fresh noise and uniform labels with a cumulative average
    (momentum None), then return it in eval mode.
    """
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return generator.eval()
    device = next(generator.parameters()).device
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    g = torch.Generator().manual_seed(seed)
    generator.train()
    for _ in range(n_batches):
        z = torch.randn(batch_size, generator.latent_dim, generator=g).to(device)
        labels = torch.randint(0, generator.n_classes, (batch_size,), generator=g).to(device)
        generator(z, labels)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    return generator.eval()


@dataclass
class ConditionalRun:
    """A trained conditional GAN: ``sampler`` is the generator to draw from (the EMA copy if any)."""

    generator: nn.Module
    discriminator: nn.Module | None
    history: History
    ema: EMA | None = None

    @property
    def sampler(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.generator

    def sample(self, labels: torch.Tensor, z: torch.Tensor | None = None, seed: int = 0,
               batch_size: int = 500) -> torch.Tensor:
        """Images in [0, 1] (CPU) of the requested ``labels`` (int64, N), from codes ``z`` (N x d; default
        seeded standard normal).  Eval mode: batch norm uses its running statistics."""
        return sample_conditional(self.sampler, labels, z=z, seed=seed, batch_size=batch_size)


def sample_conditional(generator: nn.Module, labels: torch.Tensor, z: torch.Tensor | None = None, seed: int = 0,
                       batch_size: int = 500) -> torch.Tensor:
    """Images in [0, 1] (CPU) from a conditional generator ``G(z, y)`` with a tanh output, or from a
    :class:`~lecture_utils.models.conditional.ConditionalVAE` (its decoder), for the requested ``labels``."""
    module = generator.module if isinstance(generator, EMA) else generator
    labels = torch.as_tensor(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be a 1-D tensor of class indices, got shape {tuple(labels.shape)}")
    labels = check_labels(labels, "labels", labels.shape[0], module.n_classes)
    if z is None:
        z = torch.randn(labels.shape[0], module.latent_dim, generator=torch.Generator().manual_seed(seed))
    if z.ndim != 2 or z.shape != (labels.shape[0], module.latent_dim):
        raise ValueError(f"z must be {labels.shape[0]} x {module.latent_dim} (one code per label), got {tuple(z.shape)}")
    if labels.shape[0] == 0:
        return torch.empty(0, module.channels, module.image_size, module.image_size)
    if hasattr(module, "decode_images"):
        return batched_inference(module, z, labels, batch_size=batch_size, call=module.decode_images)
    return to_unit_range(batched_inference(module, z, labels, batch_size=batch_size))


def train_conditional_gan(generator: nn.Module, discriminator: nn.Module, images: torch.Tensor,
                          labels: torch.Tensor, epochs: int, options: GANOptions | None = None, *,
                          device: torch.device | str = "cpu", checkpoint: str | Path | None = None,
                          resume: bool = False, progress: bool | None = None,
                          on_epoch_end: Callable[[int, dict], None] | None = None) -> ConditionalRun:
    """Train a conditional GAN on ``images`` (N x C x H x W in [0, 1]) with their ``labels`` (int64, N).

    Algorithm 1 with labels (:func:`gan_step`): D judges (image, label) pairs, the fakes get labels drawn
    uniformly.  ``options`` (:class:`GANOptions`): ``lr_discriminator`` != ``lr_generator`` is TTUR,
    ``classifier_weight`` > 0 adds AC-GAN's classification terms, ``ema_decay`` samples from an EMA of G's
    weights whose batch-norm statistics are recomputed after every epoch (:func:`recalibrate_batch_norm`).
    The images are mapped to [-1, 1] and moved to ``device`` once.  An epoch is one pass over the images.
    """
    options = options or GANOptions(desc="conditional GAN")
    check_image_batch(images, "images", hint="divide 8-bit images by 255")
    labels = check_labels(labels, "labels", images.shape[0], generator.n_classes)
    device, channels_last = _to_device(device, (generator, discriminator), options.speed)
    opt_g, opt_d = make_optimizers(generator, discriminator, options.optimizer, options.lr_generator,
                                   options.lr_discriminator, options.betas, options.momentum)
    ema = EMA(generator, options.ema_decay) if options.ema_decay else None
    data = to_tanh_range(images.float()).to(device)
    if channels_last:
        data = data.contiguous(memory_format=torch.channels_last)
    batches = BatchIterator(data, labels, batch_size=options.k * options.batch_size, seed=options.seed,
                            device=device)
    step = fast_gan_step(generator, discriminator, opt_g, opt_d, options, noise=Noise(generator), device=device,
                         ema=ema)
    state = {"generator": generator, "discriminator": discriminator, "opt_g": opt_g, "opt_d": opt_d}
    if ema is not None:
        state["ema"] = ema

    def epoch_end(epoch, record):
        if ema is not None:
            recalibrate_batch_norm(ema.module)
        if on_epoch_end is not None:
            on_epoch_end(epoch, record)

    history = fit(step, batches, epochs, state=state, checkpoint=checkpoint, resume=resume, progress=progress,
                  on_epoch_end=epoch_end, desc=options.desc)
    return ConditionalRun(generator, discriminator, history, ema)


# --------------------------------------------------------------------------- image-to-image (pix2pix)
class ImageToImageGenerator(nn.Module):
    """pix2pix's generator seen by :func:`gan_step`: ``G(z, inputs) = net(inputs)`` (no noise: pix2pix found
    that G learns to ignore it, and its dropout is the only randomness)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, z, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(inputs)


class PairedDiscriminator(nn.Module):
    """pix2pix's discriminator seen by :func:`gan_step`: ``D(images, inputs)`` judges ``cat(inputs, images)``
    along channels (is this output right *for this input*?), or, with ``conditional=False``, the images alone
    (super-resolution: the input has another size than the output, so the two cannot be stacked)."""

    def __init__(self, net: nn.Module, conditional: bool = True):
        super().__init__()
        self.net, self.conditional = net, conditional

    def forward(self, images: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([inputs, images], 1) if self.conditional else images)


def same_inputs(m: int, inputs: torch.Tensor):
    """pix2pix's "noise": no code, and each fake keeps the input of its real pair as its condition."""
    return None, inputs


class L1Term:
    """``weight * mean |fake - real|``, the reconstruction term pix2pix adds to G's loss; remembers the last
    mean absolute error (``last``) for the history."""

    def __init__(self, weight: float):
        if not weight >= 0:
            raise ValueError(f"l1_weight must be >= 0, got {weight!r}")
        self.weight, self.last = weight, None

    def __call__(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        l1 = (fake.float() - real.float()).abs().mean()
        self.last = l1.detach()
        return self.weight * l1


def image_to_image_step(generator: nn.Module, opt_g: torch.optim.Optimizer, *, discriminator: nn.Module | None = None,
                        opt_d: torch.optim.Optimizer | None = None, l1_weight: float = 100.0,
                        conditional: bool = True) -> Callable:
    """One pix2pix update (Isola et al. 2017) on a batch ``(inputs, targets)``.

    Without a discriminator: plain L1 regression, ``loss_g = l1_weight * l1``.  With a (Patch) discriminator,
    :func:`gan_step` with the input image as the condition (:class:`PairedDiscriminator`):

        loss_D = BCE(D(x, y), 1) + BCE(D(x, G(x)), 0)          (averaged over the patch map)
        loss_G = -log D(x, G(x)) + l1_weight * |G(x) - y|_1

    Returns detached scalars: ``l1`` (mean absolute error), ``loss_g``, and with a discriminator
    ``loss_d``, ``adv_g`` (the generator's adversarial term), ``d_real``, ``d_fake``.
    """
    if (discriminator is None) != (opt_d is None):
        raise ValueError("pass both discriminator and opt_d, or neither")
    l1 = L1Term(l1_weight)

    def regression(batch):
        inputs, targets = batch
        loss_g = l1(generator(inputs), targets)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return {"loss_g": loss_g.detach()}

    adversarial = None if discriminator is None else gan_step(
        ImageToImageGenerator(generator), PairedDiscriminator(discriminator, conditional), opt_g, opt_d,
        noise=same_inputs, g_extra=l1)

    def step(batch):
        inputs, targets = batch
        if adversarial is None:
            return {**regression(batch), "l1": l1.last}
        out = adversarial((targets, inputs))     # gan_step's (real examples, condition)
        return {**out, "l1": l1.last, "adv_g": out["loss_g"] - l1_weight * l1.last}

    return step


def train_image_to_image(generator: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, epochs: int, *,
                         discriminator: nn.Module | None = None, batch_size: int = 16, lr: float = 2e-4,
                         l1_weight: float = 100.0, device: torch.device | str = "cpu", seed: int = 0,
                         progress: bool | None = None, desc: str = "image-to-image") -> History:
    """Train ``generator`` to map ``inputs`` to ``targets`` (N x C x H x W each) with L1, or L1 + GAN.

    Pass a conditional ``discriminator`` (e.g. a :class:`~lecture_utils.models.patchgan.PatchDiscriminator`
    with ``in_channels = C_in + C_out``) to add the adversarial term.  Adam(lr, betas (0.5, 0.999)) for both,
    as pix2pix; channels-last on CUDA and CPU, autocast on CUDA.  Calling it again continues training the same
    models (new optimisers).
    """
    if inputs.shape[0] != targets.shape[0] or inputs.shape[2:] != targets.shape[2:]:
        raise ValueError(f"inputs {tuple(inputs.shape)} and targets {tuple(targets.shape)} must have the same "
                         "number of images and the same height and width")
    check_finite(check_float(inputs, "inputs"), "inputs")
    check_finite(check_float(targets, "targets"), "targets")
    models = (generator,) if discriminator is None else (generator, discriminator)
    device, channels_last = _to_device(device, models, Speed())
    opt_g = adam(generator.parameters(), lr, (0.5, 0.999), reference_on_cpu=True)
    opt_d, state = None, {"generator": generator, "opt_g": opt_g}
    if discriminator is not None:
        opt_d = adam(discriminator.parameters(), lr, (0.5, 0.999), reference_on_cpu=True)
        state.update(discriminator=discriminator, opt_d=opt_d)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    batches = BatchIterator(inputs.to(device).contiguous(memory_format=memory_format),
                            targets.to(device).contiguous(memory_format=memory_format),
                            batch_size=batch_size, seed=seed, device=device)
    step = image_to_image_step(generator, opt_g, discriminator=discriminator, opt_d=opt_d, l1_weight=l1_weight)
    return fit(autocast_step(step, device), batches, epochs, state=state, progress=progress, desc=desc)


# --------------------------------------------------------------------------- PatchGAN analysis
def measure_receptive_field(model: nn.Module, in_channels: int, input_size: int = 128,
                            position: tuple[int, int] | None = None) -> tuple[int, int, int, int]:
    """Measure which input pixels one output logit depends on, with autograd.

    Back-propagates a single logit (at ``position`` in the output map; default its centre) to a random
    input and returns the bounding box ``(top, left, height, width)`` of the input pixels with a
    non-zero gradient.  The model is used in eval mode (batch norm with fixed statistics), so that
    only the convolutions connect pixels; float64 avoids gradients that underflow to zero.
    """
    was_training = model.training
    original_dtype = next(model.parameters()).dtype
    model.eval().double()
    try:
        x = torch.randn(1, in_channels, input_size, input_size, dtype=torch.float64, requires_grad=True)
        out = model(x)
        if position is None:
            position = (out.shape[-2] // 2, out.shape[-1] // 2)
        out[0, 0, position[0], position[1]].backward()
        touched = x.grad[0].abs().sum(0) > 0
        rows = touched.any(1).nonzero().squeeze(1)
        cols = touched.any(0).nonzero().squeeze(1)
        top, left = int(rows.min()), int(cols.min())
        return top, left, int(rows.max()) - top + 1, int(cols.max()) - left + 1
    finally:
        model.to(original_dtype).train(was_training)
