"""Data-parallel training on several processes with ``torchrun`` and PyTorch's DistributedDataParallel.

The training loops (:func:`~lecture_utils.autoencoders.train_vae`, :func:`~lecture_utils.gans.train_gan`,
:func:`~lecture_utils.diffusion.train_denoiser`) call three helpers from here, and each is the identity in an
ordinary single process:

* :func:`shard` -- the tensor version of ``DistributedSampler`` for the course's device-resident
  :class:`~lecture_utils.data.BatchIterator`: every process draws the same shuffled order (same seed), and
  each global batch of ``batch_size`` rows is cut into ``world_size`` equal slices, one per process.  Over a
  step the N processes see exactly the rows one process would see with the whole batch.
* :func:`wrap` -- the model in ``DistributedDataParallel``: after ``backward`` the gradients are averaged
  over the processes, so each optimiser step uses the gradient of the mean loss over the global batch, as a
  single process with batch N x B would.  Passes that need no gradient go straight to the module.
* :func:`shard_noise` -- a GAN's noise: every process draws the whole global batch of codes (the same random
  state everywhere) and keeps its slice, so the N processes together use one process's noise.

So N processes with per-process batch B follow one process with batch N x B.  They do not repeat it bit for
bit: batch norm normalises over each process's B rows (not N x B), the VAE's reparameterisation noise and the
diffusion loop's time steps and noise are drawn per process, and sums are added in another order.
``tests/test_distributed.py`` measures the difference (2 CPU processes, Gloo) against one process and bounds it
there (see its tolerances).

The loops that use these helpers: :func:`~lecture_utils.autoencoders.train_vae`,
:func:`~lecture_utils.gans.train_gan` and :func:`~lecture_utils.diffusion.train_denoiser`.  Other loops run
whole in every process under torchrun.

Launch with ``torchrun --nproc_per_node=N script.py`` (it sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the
rendezvous address); :func:`init` joins the group: NCCL with one GPU per process on CUDA, Gloo on CPUs.
Only the main process (:func:`is_main`) should write files.  ``fit``'s per-epoch ``checkpoint=`` is not meant
for several processes (each would write it); ``scripts/train_checkpoints.py`` does not use it.
"""
from __future__ import annotations

import os
import warnings
from typing import Callable

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


def launched() -> bool:
    """True in a process started by ``torchrun`` (or another launcher that sets ``WORLD_SIZE``)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    """True when this process belongs to an initialised group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def init(device: str | torch.device | None = None) -> torch.device:
    """Join the process group ``torchrun`` describes and return this process's device.

    ``device``: "cuda" (one GPU per process, ``LOCAL_RANK``; backend NCCL) or "cpu" (Gloo); default: CUDA
    when available.  Without ``torchrun`` it only returns the device.
    """
    wanted = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if not launched():
        return wanted
    if wanted.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        wanted = torch.device("cuda", local)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if wanted.type == "cuda" else "gloo")
    return wanted


def close() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if active():
        dist.barrier()


def per_process(batch_size: int) -> int:
    """This process's share of a global batch of ``batch_size`` rows (it must divide evenly)."""
    n = world_size()
    if batch_size % n:
        raise ValueError(f"batch_size must be a multiple of the {n} processes, got {batch_size}")
    return batch_size // n


class ShardedBatches:
    """This process's slice of each global batch of a :class:`~lecture_utils.data.BatchIterator`."""

    def __init__(self, batches):
        self.batches = batches
        self.size = per_process(batches.batch_size)
        self.start = rank() * self.size

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for batch in self.batches:
            if isinstance(batch, tuple):
                yield tuple(t[self.start:self.start + self.size] for t in batch)
            else:
                yield batch[self.start:self.start + self.size]

    def state_dict(self) -> dict:
        return self.batches.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.batches.load_state_dict(state)


def shard(batches):
    """``batches`` cut into this process's slices (:class:`ShardedBatches`); unchanged in a single process."""
    return ShardedBatches(batches) if active() else batches


class DataParallel(DistributedDataParallel):
    """``DistributedDataParallel`` that hands attribute look-ups (``model.reconstruction_nll``, ``latent_dim``)
    to the wrapped module, and runs passes that need no gradient (under ``torch.no_grad``, or with the
    parameters frozen, as the discriminator in a generator update) on the module itself: there is nothing
    to average, and DDP would wait for gradients that never come."""

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)

    def forward(self, *args, **kwargs):
        if not torch.is_grad_enabled() or not any(p.requires_grad for p in self.module.parameters()):
            return self.module(*args, **kwargs)
        return super().forward(*args, **kwargs)


def wrap(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` in :class:`DataParallel` when several processes train; the module itself otherwise.

    Call it after moving the module to its device.  Parameters and buffers start as the main process's.
    """
    if not active():
        return module
    # a 1-channel convolution's weight in channels-last has two valid stride layouts; DDP warns, harmlessly
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    device = next(module.parameters()).device
    return DataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


def shard_noise(noise: Callable[[int], torch.Tensor]) -> Callable[[int], torch.Tensor]:
    """``noise(m)`` for one process: the global batch's ``m * world_size`` codes are drawn (the same in every
    process, whose random states agree) and this process keeps its ``m``; unchanged in a single process."""
    if not active():
        return noise
    n, r = world_size(), rank()

    def sharded(m: int) -> torch.Tensor:
        return noise(m * n)[r * m:(r + 1) * m]

    return sharded


def mean(value: float | torch.Tensor) -> float:
    """The mean of a number over the processes (the number itself in a single process)."""
    if not active():
        return float(value)
    tensor = torch.tensor([float(value)], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return float(tensor.item()) / world_size()
