"""The training core that every loop in the course shares, and small steps per model family.

``fit`` runs epochs over a batch iterator and calls a *step* function once per batch.  The step
does the model-specific work (forward, loss, backward, optimiser step) and returns its losses as
detached scalar tensors.  The core adds what every loop needs and what a student should not
have to write again:

* losses are summed on the device and read once per epoch (no ``.item()`` sync per step);
* a NaN/inf guard, checked every ``guard_every`` steps, stops with a clear message naming the
  last good checkpoint;
* a history per epoch: mean losses, wall time and images/s;
* checkpoints written atomically (write to a temporary file, then rename) after every epoch,
  loaded with ``weights_only=True``; ``resume=True`` continues from one and ends with the same
  weights as an uninterrupted run;
* tqdm progress (silent in the smoke budget).

On CUDA, steps wrap their forward pass in :func:`autocast` (bf16).
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

import torch
from torch import nn

from .budget import get_budget
from .checkpoints import CheckpointError, DivergenceError, load_checkpoint, load_into, save_checkpoint
from .checks import check_finite, check_image_batch


def autocast(device: torch.device | str):
    """bf16 autocast on CUDA, nothing elsewhere (CPU runs stay in float32 and repeatable)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# --------------------------------------------------------------------------- history
@dataclass
class History:
    """One record per epoch: ``epoch``, mean losses, ``wall_time_s``, ``images_per_s``."""

    records: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: str) -> list[float]:
        return [r[key] for r in self.records]

    @property
    def last(self) -> dict:
        return self.records[-1] if self.records else {}

    @property
    def wall_time_s(self) -> float:
        return float(sum(self["wall_time_s"]))

    @property
    def images_per_s(self) -> float:
        seconds = self.wall_time_s
        return sum(r["images"] for r in self.records) / seconds if seconds > 0 else float("nan")


def _batch_size(batch) -> int:
    first = batch[0] if isinstance(batch, (tuple, list)) else batch
    return int(first.shape[0])


# --------------------------------------------------------------------------- the core loop
RESUME_FIELDS = ("state", "rng", "history", "epoch")   # what fit() writes and needs to continue a run

# A loss whose magnitude exceeds EXPLOSION_FACTOR times its reference has diverged even while finite: four
# orders of magnitude is far beyond what learning does to a loss, and what a too-large learning rate does
# within a few steps.  The reference is the larger of the loss's first-step magnitude and EXPLOSION_FLOOR,
# so that quantities that start near 0 (a KL term, an R1 penalty, a gradient norm) do not trip it by
# merely starting to move.
EXPLOSION_FACTOR = 1e4
EXPLOSION_FLOOR = 1.0


def fit(step: Callable[[object], Mapping[str, torch.Tensor]], batches: Iterable, epochs: int, *,
        state: Mapping[str, object] | None = None, checkpoint: str | Path | None = None,
        resume: bool = False, progress: bool | None = None, guard_every: int = 50,
        on_epoch_end: Callable[[int, dict], None] | None = None, desc: str = "train") -> History:
    """Train for ``epochs`` epochs, calling ``step(batch)`` on every batch of ``batches``.

    Args:
        step: does one update and returns ``{loss_name: detached scalar tensor}``.
        batches: re-iterable (a :class:`~lecture_utils.data.BatchIterator` or a DataLoader).
        epochs: total number of epochs (with ``resume``, counted from the first run).
        state: everything with ``state_dict``/``load_state_dict`` that a checkpoint must hold:
            models, optimisers, schedulers, EMA copies.  The batch iterator and the torch RNG
            are saved too, so that a resumed run repeats an uninterrupted one.
        checkpoint: file written atomically after every epoch (None: no checkpoints).
        resume: continue from ``checkpoint`` when it exists.
        progress: tqdm bar over epochs; default from the budget (off in smoke).
        guard_every: steps between NaN/inf checks (each check is one device sync).
        on_epoch_end: ``callback(epoch, record)`` after each epoch (sample grids, schedules).
    """
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
    state = dict(state or {})
    history = History()
    start_epoch = 0
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    saved_epoch = None

    if resume and checkpoint is not None and checkpoint.exists():
        saved = load_checkpoint(checkpoint)
        missing = [key for key in RESUME_FIELDS if key not in saved]
        if missing:
            raise CheckpointError(f"checkpoint {str(checkpoint)!r} cannot resume a run: it has no "
                                  f"{', '.join(missing)} (it holds {sorted(saved)}); it was not written by fit(): "
                                  "delete it or pass resume=False")
        load_into(state, saved.get("state", {}), checkpoint)
        if hasattr(batches, "load_state_dict") and "batches" in saved:
            batches.load_state_dict(saved["batches"])
        torch.set_rng_state(saved["rng"])
        if torch.cuda.is_available() and saved.get("cuda_rng") is not None:
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
        history.records = list(saved["history"])
        start_epoch = saved_epoch = int(saved["epoch"])

    # Data resident in a BatchIterator are read once here, so that a NaN in the data is reported as such
    # instead of as a diverged loss epochs later (other iterables are checked by the train_* functions).
    data_checked = hasattr(batches, "tensors")
    for i, tensor in enumerate(getattr(batches, "tensors", ())):
        check_finite(tensor, f"training data (tensor {i} of the batches)")
    reference: dict[str, float] | None = None

    if progress is None:
        progress = get_budget().progress
    from tqdm.auto import tqdm

    bar = tqdm(range(start_epoch, epochs), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        start = time.perf_counter()
        sums: dict[str, torch.Tensor] = {}
        steps = images = 0
        for batch in batches:
            losses = step(batch)
            for name, value in losses.items():
                value = value.detach().float()
                sums[name] = sums[name] + value if name in sums else value.clone()
            steps += 1
            images += _batch_size(batch)
            if reference is None:       # one sync per run: the scale each loss starts at
                reference = {k: max(abs(v.item()), EXPLOSION_FLOOR) for k, v in sums.items()}
            if steps % guard_every == 0:
                _guard(sums, epoch, steps, checkpoint, saved_epoch, reference, data_checked)
        _guard(sums, epoch, steps, checkpoint, saved_epoch, reference, data_checked)
        _guard_weights(state, epoch, checkpoint, saved_epoch)
        if sums and next(iter(sums.values())).is_cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        record = {"epoch": epoch + 1, **{k: v.item() / max(steps, 1) for k, v in sums.items()},
                  "steps": steps, "images": images, "wall_time_s": seconds,
                  "images_per_s": images / seconds if seconds > 0 else float("nan")}
        history.records.append(record)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, record)
        if checkpoint is not None:
            save_checkpoint(checkpoint, {
                "state": {name: obj.state_dict() for name, obj in state.items()},
                "batches": batches.state_dict() if hasattr(batches, "state_dict") else {},
                "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "history": history.records,
                "epoch": epoch + 1,
            })
            saved_epoch = epoch + 1
        bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k in sums})
    return history


def _last_good(checkpoint: Path | None, saved_epoch: int | None) -> str:
    if saved_epoch is not None:
        return f"the last good checkpoint is {str(checkpoint)!r} (epoch {saved_epoch})"
    return "no checkpoint was written yet (pass checkpoint=... to keep one)"


def _guard(sums: dict, epoch: int, steps: int, checkpoint: Path | None, saved_epoch: int | None,
           reference: dict | None = None, data_checked: bool = False) -> None:
    """Stop a run whose losses became NaN/inf or grew EXPLOSION_FACTOR times past where they started."""
    if not sums:
        return
    means = (torch.stack([v.reshape(()) for v in sums.values()]) / max(steps, 1)).tolist()   # one sync
    bad = [name for name, v in zip(sums, means) if not math.isfinite(v)]
    grown = [name for name, v in zip(sums, means) if name not in bad and reference is not None
             and name in reference and abs(v) > EXPLOSION_FACTOR * reference[name]]
    if not bad and not grown:
        return
    what = (f"loss {', '.join(repr(b) for b in bad)} became NaN or infinite" if bad else
            "loss " + ", ".join(f"{name!r} grew from about {reference[name]:.3g} to {means[list(sums).index(name)]:.3g} "
                                f"(more than {EXPLOSION_FACTOR:g} times)" for name in grown))
    cause = ("the training data were checked and are finite, so the model diverged: try a smaller learning rate"
             if data_checked else "check the training data for NaN/inf values, else try a smaller learning rate")
    raise DivergenceError(f"training diverged: {what} in epoch {epoch + 1} by step {steps}; "
                          f"{_last_good(checkpoint, saved_epoch)}. {cause}.")


def _guard_weights(state: Mapping[str, object], epoch: int, checkpoint: Path | None, saved_epoch: int | None) -> None:
    """Stop a run whose weights hold a NaN or inf even though its losses looked finite (once per epoch)."""
    modules = {name: obj for name, obj in state.items() if isinstance(obj, nn.Module)}
    tensors = {f"{name}.{key}": t for name, module in modules.items()
               for key, t in module.state_dict().items()
               if torch.is_tensor(t) and t.is_floating_point() and t.numel()}
    if not tensors:
        return
    finite = torch.stack([torch.isfinite(t).all() for t in tensors.values()]).tolist()        # one sync
    if all(finite):
        return
    bad = [name for name, ok in zip(tensors, finite) if not ok]
    raise DivergenceError(f"training diverged: the weights {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''} "
                          f"hold NaN or infinite values after epoch {epoch + 1} although the losses are finite; "
                          f"{_last_good(checkpoint, saved_epoch)}. Try a smaller learning rate.")


def adam(parameters, lr: float = 1e-3, **kwargs) -> torch.optim.Adam:
    """Adam with PyTorch's fused kernel (one pass over all parameters instead of a dozen element-wise
    ops per tensor): about 3x faster updates on a CPU, and the recommended path on CUDA."""
    return torch.optim.Adam(parameters, lr=lr, fused=True, **kwargs)


# --------------------------------------------------------------------------- steps per family
def autoencoder_step(model: nn.Module, optimizer: torch.optim.Optimizer,
                     device: torch.device | str = "cpu") -> Callable:
    """One autoencoder update: Bernoulli cross-entropy between the input and the decoder's logits.

    The batch is images in [0, 1] (or ``(images, labels)``); the model returns logits.
    """

    def step(batch):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        with autocast(device):
            logits = model(x)
        loss = nn.functional.binary_cross_entropy_with_logits(
            logits.float(), x, reduction="sum") / x.shape[0]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach()}

    return step


def train_autoencoder(model: nn.Module, images: torch.Tensor, epochs: int, batch_size: int = 100,
                      lr: float = 1e-3, device: torch.device | str = "cpu", seed: int = 0,
                      checkpoint: str | Path | None = None, progress: bool | None = None) -> History:
    """Train an autoencoder (logits out) on ``images`` (N x 1 x 28 x 28 in [0, 1]) with Adam.

    The images move to ``device`` once and stay there (a :class:`BatchIterator`).
    """
    from .data import BatchIterator

    _check_unit_images(images)
    model.to(device)
    optimizer = adam(model.parameters(), lr=lr)
    batches = BatchIterator(images, batch_size=batch_size, seed=seed, device=device)
    return fit(autoencoder_step(model, optimizer, device), batches, epochs,
               state={"model": model, "optimizer": optimizer}, checkpoint=checkpoint,
               progress=progress, desc=type(model).__name__)


# --------------------------------------------------------------------------- VAE steps (notebook 02)
def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each image (N x C x H x W) moved by its own random whole-pixel offset in [-max_shift, max_shift]
    along each axis, the uncovered border filled with 0 (MNIST's background).  A cheap augmentation:
    a digit moved by a pixel is still the same digit, so a small data set behaves like a larger one."""
    if not isinstance(max_shift, int) or max_shift < 0:
        raise ValueError(f"max_shift must be a non-negative int, got {max_shift!r}")
    if images.ndim != 4:
        raise ValueError(f"images must be N x C x H x W, got shape {tuple(images.shape)}")
    if max_shift == 0:
        return images
    n, _, h, w = images.shape
    padded = nn.functional.pad(images, (max_shift,) * 4)                        # N x C x H+2s x W+2s
    offsets = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator).to(images.device)
    rows = (torch.arange(h, device=images.device) + offsets[0, :, None])[:, None, :, None]  # N x 1 x H x 1
    cols = (torch.arange(w, device=images.device) + offsets[1, :, None])[:, None, None, :]  # N x 1 x 1 x W
    padded = padded.gather(2, rows.expand(-1, padded.shape[1], -1, padded.shape[3]))        # N x C x H x W+2s
    return padded.gather(3, cols.expand(-1, padded.shape[1], h, -1))                        # N x C x H x W


def vae_step(model: nn.Module, optimizer: torch.optim.Optimizer, beta: float = 1.0,
             device: torch.device | str = "cpu", shift_pixels: int = 0,
             generator: torch.Generator | None = None) -> Callable:
    """One VAE update on a batch of images in [0, 1] (or ``(images, labels)``).

    Minimises the mean over the batch of -ELBO = -log p(x|z) + beta * KL(q(z|x) || N(0, I)) with one
    reparameterised sample z per image (``lecture_utils.losses.vae_loss_terms``).  beta = 1 is the
    VAE, beta > 1 the beta-VAE of Higgins et al. (2017).  ``shift_pixels`` > 0 first moves each image
    by a random offset of up to that many pixels (:func:`random_shift`, drawn from ``generator``).
    Returns ``loss`` (the beta-weighted objective), ``negative_elbo`` (with beta = 1, in nats),
    ``reconstruction`` and ``kl`` (nats), all batch means, as detached scalars.
    """
    from .losses import vae_loss_terms

    if not beta >= 0:
        raise ValueError(f"beta must be a non-negative number, got {beta!r}")

    def step(batch):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        x = random_shift(x, shift_pixels, generator)
        with autocast(device):
            terms = vae_loss_terms(model, x, beta=beta)
        loss = terms["negative_elbo"].mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        reconstruction, kl = terms["reconstruction"].detach().mean(), terms["kl"].detach().mean()
        return {"loss": loss.detach(), "negative_elbo": reconstruction + kl,
                "reconstruction": reconstruction, "kl": kl}

    return step


def _check_unit_images(images: torch.Tensor, name: str = "images") -> None:
    check_image_batch(images, name, hint="divide 8-bit images by 255")


def scheduled_epoch_end(optimizer: torch.optim.Optimizer, schedulers=(),
                        on_epoch_end: Callable[[int, dict], None] | None = None) -> Callable[[int, dict], None]:
    """An ``on_epoch_end`` for :func:`fit` that records the learning rate the epoch ran at (``lr`` in the
    history), steps the per-epoch ``schedulers`` (keep them in ``fit``'s ``state`` so a resumed run continues
    them) and then calls ``on_epoch_end``."""
    def epoch_end(epoch: int, record: dict) -> None:
        record["lr"] = optimizer.param_groups[0]["lr"]
        for scheduler in schedulers:
            scheduler.step()
        if on_epoch_end is not None:
            on_epoch_end(epoch, record)

    return epoch_end


class GeneratorState:
    """A ``torch.Generator`` seen through ``state_dict`` / ``load_state_dict``, so that :func:`fit`'s checkpoints
    hold its state and a resumed run draws the same random numbers as an uninterrupted one."""

    def __init__(self, generator: torch.Generator):
        self.generator = generator

    def state_dict(self) -> dict:
        return {"state": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["state"])


def train_vae(model: nn.Module, images: torch.Tensor, epochs: int, batch_size: int = 128,
              lr: float = 1e-3, beta: float = 1.0, device: torch.device | str = "cpu", seed: int = 0,
              checkpoint: str | Path | None = None, resume: bool = False, progress: bool | None = None,
              on_epoch_end: Callable[[int, dict], None] | None = None, shift_pixels: int = 0,
              lr_final: float | None = None) -> History:
    """Train a VAE (``lecture_utils.models.vae``) on ``images`` (N x 1 x 28 x 28 in [0, 1]) with Adam.

    The images move to ``device`` once (a :class:`BatchIterator`); the loop is :func:`fit`.
    ``shift_pixels`` > 0 trains on randomly shifted copies (:func:`random_shift`), which reduces
    overfitting on a small training set.  ``lr_final`` (default: none, a constant rate) anneals the
    learning rate from ``lr`` to ``lr_final`` along a half cosine over the epochs (``CosineAnnealingLR``,
    stepped after each epoch and saved in checkpoints, so a resumed run continues the same schedule; the
    super-resolution loop of notebook 06 uses the same scheduler).  The history holds per-epoch means of ``loss``,
    ``negative_elbo``, ``reconstruction`` and ``kl`` (on the training batches as seen, shifted or not).
    ``checkpoint`` is written after every epoch; ``resume=True`` continues from it (see :func:`fit`).
    Under ``torchrun`` (:mod:`lecture_utils.distributed`) ``batch_size`` is the global batch, split evenly
    over the processes, and the model trains as DistributedDataParallel.
    """
    from .data import BatchIterator

    _check_unit_images(images)
    if lr_final is not None and not 0 <= lr_final <= lr:
        raise ValueError(f"lr_final must lie in [0, lr = {lr:g}], got {lr_final!r}")
    from . import distributed

    model.to(device)
    optimizer = adam(model.parameters(), lr=lr)
    # under torchrun: each process takes its slice of every batch, gradients averaged (lecture_utils.distributed)
    batches = distributed.shard(BatchIterator(images, batch_size=batch_size, seed=seed, device=device))
    shifts = torch.Generator().manual_seed(seed + 1)
    state = {"model": model, "optimizer": optimizer, "shifts": GeneratorState(shifts)}
    if lr_final is not None:
        state["scheduler"] = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1),
                                                                        eta_min=lr_final)
    end_of_epoch = scheduled_epoch_end(optimizer, [state["scheduler"]] if "scheduler" in state else [], on_epoch_end)
    return fit(vae_step(distributed.wrap(model), optimizer, beta=beta, device=device, shift_pixels=shift_pixels, generator=shifts),
               batches, epochs, state=state, checkpoint=checkpoint, resume=resume,
               progress=progress, on_epoch_end=end_of_epoch, desc=f"{type(model).__name__} beta={beta:g}")


@torch.no_grad()
def evaluate_vae(model: nn.Module, images: torch.Tensor, iw_samples: int = 0, batch_size: int = 500,
                 seed: int = 0) -> dict[str, float]:
    """A VAE's mean scores on ``images`` (N x 1 x 28 x 28 in [0, 1]), in nats per image.

    ``negative_elbo``, ``reconstruction`` and ``kl`` use one sample z per image (as in training and
    in pytorch/examples' test loss); with ``iw_samples`` = k > 0 also ``iw_log_likelihood``, the
    importance-weighted bound L_k on log p(x).  Seeded: the same call gives the same numbers.
    """
    from .losses import iwae_log_likelihood, vae_loss_terms

    _check_unit_images(images)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    sums = {"negative_elbo": 0.0, "reconstruction": 0.0, "kl": 0.0}
    if iw_samples:
        sums["iw_log_likelihood"] = 0.0
    for start in range(0, images.shape[0], batch_size):
        x = images[start:start + batch_size].to(device)
        eps_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        terms = vae_loss_terms(model, x, generator=torch.Generator(device).manual_seed(eps_seed))
        for name in ("negative_elbo", "reconstruction", "kl"):
            sums[name] += float(terms[name].sum())
        if iw_samples:
            sums["iw_log_likelihood"] += float(iwae_log_likelihood(model, x, iw_samples, generator=generator).sum())
    model.train(was_training)
    return {name: value / images.shape[0] for name, value in sums.items()}


# --------------------------------------------------------------------------- GAN steps (notebooks 03-04)
