"""Training autoencoders (notebook 01), VAEs (notebook 02) and the conditional VAE (notebook 05).

Each family has a *step* (one update on a batch, what a student reads: forward, loss, backward, optimiser
step) and a ``train_*`` function that runs it with :func:`lecture_utils.train.fit` over a device-resident
:class:`~lecture_utils.data.BatchIterator`.  What only matters for speed is composed around the step, not
written into it: ``train_*`` passes the step a DistributedDataParallel model under ``torchrun``
(:mod:`lecture_utils.distributed`) and wraps each call in bf16 :func:`~lecture_utils.train.autocast` on CUDA.
``tests/test_vae.py`` checks that a seeded run of the plain step and of ``train_vae`` end with the same weights.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn

from . import distributed
from .checks import check_image_batch, check_labels
from .data import BatchIterator
from .losses import bernoulli_nll, gaussian_kl, iwae_log_likelihood, vae_loss_terms
from .train import (GeneratorState, History, adam, autocast_step, batched_inference, fit, random_shift,
                    scheduled_epoch_end)


def _check_unit_images(images: torch.Tensor, name: str = "images") -> None:
    check_image_batch(images, name, hint="divide 8-bit images by 255")


# --------------------------------------------------------------------------- autoencoder (notebook 01)
def autoencoder_step(model: nn.Module, optimizer: torch.optim.Optimizer) -> Callable:
    """One autoencoder update: Bernoulli cross-entropy between the input and the decoder's logits.

    The batch is images in [0, 1] (or ``(images, labels)``); the model returns logits.
    """

    def step(batch):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        logits = model(x)
        loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), x, reduction="sum") / x.shape[0]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach()}

    return step


def train_autoencoder(model: nn.Module, images: torch.Tensor, epochs: int, batch_size: int = 100,
                      lr: float = 1e-3, device: torch.device | str = "cpu", seed: int = 0,
                      checkpoint: str | Path | None = None, progress: bool | None = None) -> History:
    """Train an autoencoder (logits out) on ``images`` (N x 1 x 28 x 28 in [0, 1]) with Adam.

    The images move to ``device`` once and stay there (a :class:`~lecture_utils.data.BatchIterator`).
    """
    _check_unit_images(images)
    model.to(device)
    optimizer = adam(model.parameters(), lr=lr)
    batches = BatchIterator(images, batch_size=batch_size, seed=seed, device=device)
    return fit(autocast_step(autoencoder_step(model, optimizer), device), batches, epochs,
               state={"model": model, "optimizer": optimizer}, checkpoint=checkpoint,
               progress=progress, desc=type(model).__name__)


# --------------------------------------------------------------------------- VAE (notebook 02)
def vae_step(model: nn.Module, optimizer: torch.optim.Optimizer, beta: float = 1.0, shift_pixels: int = 0,
             generator: torch.Generator | None = None) -> Callable:
    """One VAE update on a batch of images in [0, 1] (or ``(images, labels)``).

    Minimises the batch mean of -ELBO = -log p(x|z) + beta * KL(q(z|x) || N(0, I)) with one
    reparameterised sample z per image (:func:`~lecture_utils.losses.vae_loss_terms`).  beta = 1 is the
    VAE, beta > 1 the beta-VAE of Higgins et al. (2017).  ``shift_pixels`` > 0 first moves each image
    by a random offset of up to that many pixels (:func:`~lecture_utils.train.random_shift`, from ``generator``).
    Returns ``loss`` (the beta-weighted objective), ``negative_elbo`` (beta = 1, nats),
    ``reconstruction`` and ``kl`` (nats), batch means, as detached scalars.
    """
    if not beta >= 0:
        raise ValueError(f"beta must be a non-negative number, got {beta!r}")

    def step(batch):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        x = random_shift(x, shift_pixels, generator=generator)
        terms = vae_loss_terms(model, x, beta=beta)
        loss = terms["negative_elbo"].mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        reconstruction, kl = terms["reconstruction"].detach().mean(), terms["kl"].detach().mean()
        return {"loss": loss.detach(), "negative_elbo": reconstruction + kl,
                "reconstruction": reconstruction, "kl": kl}

    return step


def train_vae(model: nn.Module, images: torch.Tensor, epochs: int, batch_size: int = 128,
              lr: float = 1e-3, beta: float = 1.0, device: torch.device | str = "cpu",
              checkpoint: str | Path | None = None, resume: bool = False,
              on_epoch_end: Callable[[int, dict], None] | None = None, *, shift_pixels: int = 0,
              lr_final: float | None = None) -> History:
    """Train a VAE (:mod:`lecture_utils.models.vae`) on ``images`` (N x 1 x 28 x 28 in [0, 1]) with Adam.

    The loop is :func:`vae_step` run by :func:`~lecture_utils.train.fit` (batches in a seeded order).
    ``shift_pixels`` > 0 trains on randomly shifted copies, which reduces overfitting on a small training set.
    ``lr_final`` (default: a constant rate) anneals the learning rate from ``lr`` to ``lr_final`` along a half
    cosine over the epochs (``CosineAnnealingLR``, stepped after each epoch and saved in checkpoints, so a
    resumed run continues the same schedule).  The history holds per-epoch means of ``loss``,
    ``negative_elbo``, ``reconstruction`` and ``kl`` (on the training batches as seen, shifted or not).
    ``checkpoint`` is written after every epoch; ``resume=True`` continues from it (see ``fit``).
    Under ``torchrun`` ``batch_size`` is the global batch, split evenly over the processes, and the model
    trains as DistributedDataParallel.
    """
    _check_unit_images(images)
    if lr_final is not None and not 0 <= lr_final <= lr:
        raise ValueError(f"lr_final must lie in [0, lr = {lr:g}], got {lr_final!r}")
    model.to(device)
    optimizer = adam(model.parameters(), lr=lr)
    # under torchrun: each process takes its slice of every batch, gradients averaged (lecture_utils.distributed)
    batches = distributed.shard(BatchIterator(images, batch_size=batch_size, seed=0, device=device))
    shifts = torch.Generator().manual_seed(1)
    state = {"model": model, "optimizer": optimizer, "shifts": GeneratorState(shifts)}
    schedulers = []
    if lr_final is not None:
        state["scheduler"] = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1),
                                                                        eta_min=lr_final)
        schedulers.append(state["scheduler"])
    step = vae_step(distributed.wrap(model), optimizer, beta=beta, shift_pixels=shift_pixels, generator=shifts)
    return fit(autocast_step(step, device), batches, epochs, state=state, checkpoint=checkpoint, resume=resume,
               on_epoch_end=scheduled_epoch_end(optimizer, schedulers, on_epoch_end),
               desc=f"{type(model).__name__} beta={beta:g}")


def evaluate_vae(model: nn.Module, images: torch.Tensor, iw_samples: int = 0, batch_size: int = 500,
                 seed: int = 0) -> dict[str, float]:
    """A VAE's mean scores on ``images`` (N x 1 x 28 x 28 in [0, 1]), in nats per image.

    ``negative_elbo``, ``reconstruction`` and ``kl`` use one sample z per image (as in training and
    in pytorch/examples' test loss); with ``iw_samples`` = k > 0 also ``iw_log_likelihood``, the
    importance-weighted bound L_k on log p(x).  Seeded: the same call gives the same numbers.
    """
    _check_unit_images(images)
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device

    def scores(x):                       # per image: -ELBO, reconstruction, KL (and L_k)
        eps_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        terms = vae_loss_terms(model, x, generator=torch.Generator(device).manual_seed(eps_seed))
        columns = [terms["negative_elbo"], terms["reconstruction"], terms["kl"]]
        if iw_samples:
            columns.append(iwae_log_likelihood(model, x, iw_samples, generator=generator))
        return torch.stack([c.float() for c in columns], 1)

    means = batched_inference(model, images, batch_size=batch_size, call=scores).double().mean(0).tolist()
    names = ["negative_elbo", "reconstruction", "kl", "iw_log_likelihood"]
    return dict(zip(names, means))


# --------------------------------------------------------------------------- conditional VAE (notebook 05)
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
                          seed: int = 0, progress: bool | None = None) -> History:
    """Train a :class:`~lecture_utils.models.conditional.ConditionalVAE` with Adam on labelled images in [0, 1]."""
    _check_unit_images(images)
    check_labels(labels, "labels", images.shape[0], model.n_classes)
    model.to(device)
    optimizer = adam(model.parameters(), lr=lr, reference_on_cpu=True)
    batches = BatchIterator(images.float(), labels.long(), batch_size=batch_size, seed=seed, device=device)
    return fit(autocast_step(conditional_vae_step(model, optimizer), device), batches, epochs,
               state={"model": model, "optimizer": optimizer}, progress=progress, desc="conditional VAE")
