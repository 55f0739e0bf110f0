"""The training core every loop of the course shares: ``fit``, its history and divergence guard, checkpoints,
and the few helpers that every family uses (autocast, the optimiser, batched inference, the shift augmentation).

``fit`` runs epochs over a batch iterator and calls a *step* function once per batch.  The step does the
model-specific work (forward, loss, backward, optimiser step; see :mod:`lecture_utils.autoencoders` and
:mod:`lecture_utils.gans`) and returns its losses as detached scalar tensors.  The core adds what every loop
needs and what a student should not have to write again:

* losses are summed on the device and read once per epoch (no ``.item()`` sync per step);
* a guard, checked every ``guard_every`` steps, stops a loss that became NaN/inf or grew by orders of
  magnitude (and, once per epoch, non-finite weights) with a clear message naming the last good checkpoint;
* a history per epoch: mean losses, wall time and images/s;
* checkpoints written atomically after every epoch, loaded with ``weights_only=True``; ``resume=True``
  continues from one and ends with the same weights as an uninterrupted run;
* tqdm progress (silent in the smoke budget).
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
from tqdm.auto import tqdm

from .budget import get_budget
from .checkpoints import CheckpointError, DivergenceError, load_checkpoint, load_into, save_checkpoint
from .checks import check_finite


def autocast(device: torch.device | str):
    """bf16 autocast on CUDA, nothing elsewhere (CPU runs stay in float32 and repeatable)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def autocast_step(step: Callable, device: torch.device | str) -> Callable:
    """``step`` run under :func:`autocast`: a training step stays plain PyTorch, and the mixed precision that
    only matters for speed on CUDA is put around it."""
    def run(batch):
        with autocast(device):
            return step(batch)

    return run


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


# Devices whose Adam has a fused kernel (one pass over all parameters instead of a dozen element-wise ops per
# tensor): about 3x faster updates on a CPU, and the recommended path on CUDA.
FUSED_ADAM_DEVICES = ("cpu", "cuda", "mps")


def adam(parameters, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
         reference_on_cpu: bool = False) -> torch.optim.Adam:
    """The course's one optimiser policy: Adam, fused where the parameters' device has the fused kernel.

    ``reference_on_cpu=True`` keeps PyTorch's reference (unfused) kernel on a CPU, for the recipes tuned with it
    (the GANs, pix2pix, super-resolution, the conditional VAE, text-to-image): adversarial training in particular
    is chaotic enough that the fused kernel's different rounding changes outcomes the notebooks show (which modes
    notebook 03's toy GAN collapses to), not just the last digits."""
    parameters = list(parameters)
    if not parameters:
        raise ValueError("parameters must hold at least one tensor, got none")
    if not lr >= 0:
        raise ValueError(f"lr must be >= 0, got {lr!r}")
    device = parameters[0].device.type
    fused = device in FUSED_ADAM_DEVICES and not (reference_on_cpu and device == "cpu")
    return torch.optim.Adam(parameters, lr=lr, betas=betas, fused=fused)


@torch.no_grad()
def batched_inference(model: nn.Module, *inputs: torch.Tensor, batch_size: int = 500,
                      call: Callable | None = None) -> torch.Tensor:
    """``call(*batch)`` (default ``model(*batch)``) over ``inputs`` in batches of ``batch_size`` rows on the
    model's device, in eval mode (batch norm uses its running statistics, dropout is off) and without
    gradients; the outputs as float32 on the CPU, concatenated.  The model's mode is restored afterwards,
    so sampling mid-training does not leave dropout or batch norm frozen."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not inputs or any(x.shape[0] != inputs[0].shape[0] for x in inputs):
        raise ValueError(f"inputs must be one or more tensors with the same number of rows, got shapes "
                         f"{[tuple(x.shape) for x in inputs]}")
    call = model if call is None else call
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        out = [call(*(x[i:i + batch_size].to(device) for x in inputs)).float().cpu()
               for i in range(0, inputs[0].shape[0], batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out)


def random_shift(images: torch.Tensor, max_shift: int, background: float = 0.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Each image (N x C x H x W) moved by its own random whole-pixel offset in [-max_shift, max_shift]
    along each axis, the uncovered border filled with ``background``; differentiable in ``images``.

    A digit moved by a pixel is still the same digit, so a small data set behaves like a larger one (the VAE
    of notebook 02, background 0).  Shown to a GAN's discriminator on real *and* fake images (background -1,
    the tanh range), it is DiffAugment's translation (Zhao et al. 2020): :class:`~lecture_utils.gans.Augmented`.
    The offsets come from ``generator`` (on its device), else from the global random state of the images' device.
    """
    if not isinstance(max_shift, int) or max_shift < 0:
        raise ValueError(f"max_shift must be a non-negative int, got {max_shift!r}")
    if images.ndim != 4:
        raise ValueError(f"images must be N x C x H x W, got shape {tuple(images.shape)}")
    if max_shift == 0:
        return images
    n, _, h, w = images.shape
    padded = nn.functional.pad(images, (max_shift,) * 4, value=background)     # N x C x H+2s x W+2s
    draw_on = generator.device if generator is not None else images.device
    offsets = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator, device=draw_on).to(images.device)
    rows = (torch.arange(h, device=images.device) + offsets[0, :, None])[:, None, :, None]  # N x 1 x H x 1
    cols = (torch.arange(w, device=images.device) + offsets[1, :, None])[:, None, None, :]  # N x 1 x 1 x W
    padded = padded.gather(2, rows.expand(-1, padded.shape[1], -1, padded.shape[3]))        # N x C x H x W+2s
    return padded.gather(3, cols.expand(-1, padded.shape[1], h, -1))                        # N x C x H x W


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
