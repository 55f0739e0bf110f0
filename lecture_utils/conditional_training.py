"""Training class-conditional models (notebook 05): Algorithm 1 with labels, and the conditional VAE.

The conditional GAN plays the same two-player game as notebook 03, with the label passed to both
players.  One iteration on a batch of real pairs (x, y):

    D step:  fakes G(z, y') for labels y' drawn uniformly from the classes;
             descend  -mean log D(x, y) - mean log(1 - D(G(z, y'), y'))
    G step:  fresh z and y';  descend  -mean log D(G(z, y'), y')            (non-saturating)

D is asked "is this a real image *of this class*?", so G is only rewarded for digits that look like
the class it was told to draw.  The loop is :func:`lecture_utils.train.fit` (data on the device,
no ``.item()`` per step, NaN guard, checkpoints); the losses are the course's
(:func:`~lecture_utils.losses.discriminator_loss`, :func:`~lecture_utils.losses.generator_loss_non_saturating`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .data import BatchIterator
from .gan_training import ema_generator, make_optimizers, to_tanh_range, to_unit_range
from .checks import check_image_batch
from .losses import bernoulli_nll, discriminator_loss, gaussian_kl, generator_loss_non_saturating
from .models.conditional import check_labels
from .train import History, autocast, fit


def conditional_gan_step(generator: nn.Module, discriminator: nn.Module, opt_g: torch.optim.Optimizer,
                         opt_d: torch.optim.Optimizer, *, ema=None, real_label: float = 1.0,
                         classifier_weight: float = 0.0, device: torch.device | str = "cpu") -> Callable:
    """One conditional-GAN iteration per batch ``(images in [-1, 1], labels)``: a D update, then a G update.

    ``classifier_weight`` > 0 (needs a discriminator with ``auxiliary_classifier=True``) adds AC-GAN's
    terms: D also minimises the cross-entropy of its class prediction on real images, G the cross-entropy
    of D's class prediction on its fakes against the requested labels.

    Returns detached scalars: ``loss_d``, ``loss_g``, ``d_real`` = mean D(x, y), ``d_fake`` = mean D(G(z, y'), y')
    and, with the classifier, ``class_loss_real`` and ``class_loss_fake``.
    """
    latent_dim, n_classes = generator.latent_dim, generator.n_classes
    if classifier_weight < 0:
        raise ValueError(f"classifier_weight must be >= 0, got {classifier_weight!r}")
    auxiliary = classifier_weight > 0
    if auxiliary and not getattr(discriminator, "auxiliary_classifier", False):
        raise ValueError("classifier_weight > 0 needs a discriminator built with auxiliary_classifier=True")

    def draw(m):
        return (torch.randn(m, latent_dim, device=device),
                torch.randint(0, n_classes, (m,), device=device))

    def step(batch):
        real, labels = batch
        m = real.shape[0]
        # -- the discriminator: real pairs against fakes of random classes
        z, fake_labels = draw(m)
        with torch.no_grad(), autocast(device):
            fake = generator(z, fake_labels)
        with autocast(device):
            if auxiliary:
                real_scores, real_classes = discriminator(real, labels, return_class_logits=True)
            else:
                real_scores = discriminator(real, labels)
            fake_scores = discriminator(fake, fake_labels)
        loss_d = discriminator_loss(real_scores, fake_scores, real_label)
        if auxiliary:
            class_loss_real = F.cross_entropy(real_classes.float(), labels)
            loss_d = loss_d + classifier_weight * class_loss_real
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        # -- the generator, against the fixed discriminator
        discriminator.requires_grad_(False)
        try:
            z, fake_labels = draw(m)
            with autocast(device):
                fake = generator(z, fake_labels)
                if auxiliary:
                    fake_scores_g, fake_classes = discriminator(fake, fake_labels, return_class_logits=True)
                else:
                    fake_scores_g = discriminator(fake, fake_labels)
            loss_g = generator_loss_non_saturating(fake_scores_g)
            if auxiliary:
                class_loss_fake = F.cross_entropy(fake_classes.float(), fake_labels)
                loss_g = loss_g + classifier_weight * class_loss_fake
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
        finally:
            discriminator.requires_grad_(True)
        if ema is not None:
            ema.update_parameters(generator)
        out = {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(),
               "d_real": torch.sigmoid(real_scores.detach().float()).mean(),
               "d_fake": torch.sigmoid(fake_scores.detach().float()).mean()}
        if auxiliary:
            out.update(class_loss_real=class_loss_real.detach(), class_loss_fake=class_loss_fake.detach())
        return out

    return step


@torch.no_grad()
def recalibrate_batch_norm(generator: nn.Module, n_batches: int = 20, batch_size: int = 256, seed: int = 0) -> nn.Module:
    """Recompute the batch-norm statistics of a conditional generator from its own samples.

    An exponential moving average of G's weights (:func:`~lecture_utils.gan_training.ema_generator`) also
    averages the running means and variances, which then lag behind the averaged weights: early in training
    they still remember the first, very different, generators, and eval-mode samples wash out.  As SWA's
    ``update_bn`` does for classifiers, run G in training mode on ``n_batches`` batches of fresh noise and
    uniform labels with a cumulative average (momentum None), then return it in eval mode.
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
    """A trained conditional model: ``sampler`` is the generator to draw from (the EMA copy if any)."""

    generator: nn.Module
    discriminator: nn.Module | None
    history: History
    ema: object = None

    @property
    def sampler(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.generator

    @torch.no_grad()
    def sample(self, labels: torch.Tensor, z: torch.Tensor | None = None, seed: int = 0,
               batch_size: int = 500) -> torch.Tensor:
        """Images in [0, 1] (CPU) of the requested ``labels`` (int64, N), from codes ``z`` (N x d; default
        seeded standard normal).  Eval mode: batch norm uses its running statistics."""
        return sample_conditional(self.sampler, labels, z=z, seed=seed, batch_size=batch_size)


@torch.no_grad()
def sample_conditional(generator: nn.Module, labels: torch.Tensor, z: torch.Tensor | None = None, seed: int = 0,
                       batch_size: int = 500) -> torch.Tensor:
    """Images in [0, 1] (CPU) from a conditional generator ``G(z, y)`` with a tanh output, or from a
    :class:`~lecture_utils.models.conditional.ConditionalVAE` (its decoder), for the requested ``labels``."""
    module = generator.module if hasattr(generator, "module") else generator
    labels = torch.as_tensor(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be a 1-D tensor of class indices, got shape {tuple(labels.shape)}")
    latent_dim = module.latent_dim
    labels = check_labels(labels, labels.shape[0], module.n_classes)
    if z is None:
        z = torch.randn(labels.shape[0], latent_dim, generator=torch.Generator().manual_seed(seed))
    if z.ndim != 2 or z.shape != (labels.shape[0], latent_dim):
        raise ValueError(f"z must be {labels.shape[0]} x {latent_dim} (one code per label), got {tuple(z.shape)}")
    was_training = module.training
    module.eval()
    try:
        device = next(module.parameters()).device
        out = []
        for i in range(0, labels.shape[0], batch_size):
            zi, yi = z[i:i + batch_size].to(device), labels[i:i + batch_size].to(device)
            if hasattr(module, "decode_images"):
                out.append(module.decode_images(zi, yi).float().cpu())
            else:
                out.append(to_unit_range(module(zi, yi).float().cpu()))
    finally:
        module.train(was_training)
    return torch.cat(out) if out else torch.empty(0, module.channels, module.image_size, module.image_size)


def _check_pairs(images: torch.Tensor, labels: torch.Tensor, n_classes: int) -> None:
    check_image_batch(images, "images", hint="divide 8-bit images by 255")
    check_labels(labels, images.shape[0], n_classes)


def train_conditional_gan(generator: nn.Module, discriminator: nn.Module, images: torch.Tensor,
                          labels: torch.Tensor, epochs: int, *, batch_size: int = 64, lr_generator: float = 2e-4,
                          lr_discriminator: float | None = None, betas: tuple[float, float] = (0.5, 0.999),
                          real_label: float = 1.0, classifier_weight: float = 0.0, ema_decay: float | None = None,
                          device: torch.device | str = "cpu", seed: int = 0, checkpoint: str | Path | None = None,
                          resume: bool = False, progress: bool | None = None,
                          on_epoch_end: Callable[[int, dict], None] | None = None) -> ConditionalRun:
    """Train a conditional GAN on ``images`` (N x C x H x W in [0, 1]) with their ``labels`` (int64, N).

    Adam(lr, betas=(0.5, 0.999)) as DCGAN; ``lr_discriminator`` != ``lr_generator`` is TTUR;
    ``classifier_weight`` > 0 adds AC-GAN's classification terms (see :func:`conditional_gan_step`);
    ``ema_decay``: sample from an exponential moving average of G's weights (None: off), whose batch-norm
    statistics are recomputed after every epoch (:func:`recalibrate_batch_norm`).  The images
    are mapped to [-1, 1] and moved to ``device`` once.  An epoch is one pass over the images.
    """
    _check_pairs(images, labels, generator.n_classes)
    device = torch.device(device)
    generator.to(device)
    discriminator.to(device)
    opt_g, opt_d = make_optimizers(generator, discriminator, "adam", lr_generator, lr_discriminator, betas=betas)
    ema = ema_generator(generator, ema_decay) if ema_decay else None
    batches = BatchIterator(to_tanh_range(images.float()), labels.long(), batch_size=batch_size, seed=seed,
                            device=device)
    step = conditional_gan_step(generator, discriminator, opt_g, opt_d, ema=ema, real_label=real_label,
                                classifier_weight=classifier_weight, device=device)
    state = {"generator": generator, "discriminator": discriminator, "opt_g": opt_g, "opt_d": opt_d}
    if ema is not None:
        state["ema"] = ema
    def epoch_end(epoch, record):
        if ema is not None:
            recalibrate_batch_norm(ema.module)
        if on_epoch_end is not None:
            on_epoch_end(epoch, record)

    history = fit(step, batches, epochs, state=state, checkpoint=checkpoint, resume=resume, progress=progress,
                  on_epoch_end=epoch_end, desc="conditional GAN")
    return ConditionalRun(generator, discriminator, history, ema)


def conditional_vae_step(model: nn.Module, optimizer: torch.optim.Optimizer) -> Callable:
    """One conditional-VAE update on ``(images in [0, 1], labels)``: minimise the mean -ELBO
    = -log p(x | z, y) + KL(q(z | x, y) || N(0, I)) (nats per image)."""

    def step(batch):
        x, y = batch
        logits, mu, logvar = model(x, y)
        loss = (bernoulli_nll(x, logits) + gaussian_kl(mu, logvar)).mean()   # -ELBO; x checked once per run
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"negative_elbo": loss.detach()}

    return step


def train_conditional_vae(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, epochs: int, *,
                          batch_size: int = 128, lr: float = 1e-3, device: torch.device | str = "cpu",
                          seed: int = 0, progress: bool | None = None) -> ConditionalRun:
    """Train a :class:`~lecture_utils.models.conditional.ConditionalVAE` with Adam on labelled images in [0, 1]."""
    _check_pairs(images, labels, model.n_classes)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    batches = BatchIterator(images.float(), labels.long(), batch_size=batch_size, seed=seed, device=device)
    history = fit(conditional_vae_step(model, optimizer), batches, epochs,
                  state={"model": model, "optimizer": optimizer}, progress=progress, desc="conditional VAE")
    return ConditionalRun(model, None, history)
