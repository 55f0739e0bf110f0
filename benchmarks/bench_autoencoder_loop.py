"""Benchmark: notebook 01's autoencoder trained by the course loop vs a plain PyTorch loop.

Both train the same MLP autoencoder with the same batch size for the same number of steps:

* ours       -- lecture_utils.autoencoders.autoencoder_step run by lecture_utils.train.fit over a
                BatchIterator (data resident on the device, losses summed on the device, one sync per
                epoch) with fused Adam;
* reference  -- the pytorch/examples pattern: DataLoader over a TensorDataset, ``.item()``
                every step.

Prints images/s for each and their ratio.  Goal: ours >= 1.2x on a 2-core CPU.

    python benchmarks/bench_autoencoder_loop.py [--steps 400] [--batch-size 100] [--device cpu]
"""
from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from _compare import compare
from lecture_utils.budget import get_device
from lecture_utils.data import BatchIterator, load_mnist
from lecture_utils.models.autoencoder import MLPAutoencoder
from lecture_utils.autoencoders import autoencoder_step
from lecture_utils.train import adam, autocast_step, fit


def reference_loop(model, images, batch_size, steps, device):
    """The pytorch/examples way: a DataLoader that collates per-sample tensors, .item() each step."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(images), batch_size=batch_size, shuffle=True, drop_last=True)
    done, start = 0, time.perf_counter()
    while done < steps:
        for (x,) in loader:
            x = x.to(device)
            logits = model(x)
            loss = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            _ = loss.item()  # a host sync every step, as the examples print running losses
            done += 1
            if done == steps:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - start)


def our_loop(model, images, batch_size, steps, device):
    optimizer = adam(model.parameters(), lr=1e-3)  # fused Adam, as train_autoencoder uses
    batches = BatchIterator(images, batch_size=batch_size, seed=0, device=device)
    if steps % len(batches):
        raise ValueError(f"--steps must be a multiple of the {len(batches)} batches per epoch")
    step = autocast_step(autoencoder_step(model, optimizer), device)   # as train_autoencoder composes it
    history = fit(step, batches, steps // len(batches), progress=False)
    return history.images_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=450, help="optimiser steps per loop (multiple of steps/epoch)")
    parser.add_argument("--batch-size", type=int, default=100, help="images per step")
    parser.add_argument("--code-size", type=int, default=8, help="autoencoder code size")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: best available)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of each loop; the best is kept")
    parser.add_argument("--dry-run", action="store_true", help="one short repeat, to check that it runs")
    args = parser.parse_args()
    if args.dry_run:
        args.steps, args.repeats = 45, 1
    device = get_device(args.device)
    images = load_mnist("train").images
    print(f"device {device}, threads {torch.get_num_threads()}, batch {args.batch_size}, steps {args.steps}, "
          f"{len(images)} images")

    def timed(loop):                      # a fresh model for every repeat
        return lambda: loop(MLPAutoencoder(code_size=args.code_size).to(device), images, args.batch_size, args.steps, device)

    compare({"reference (DataLoader + .item())": timed(reference_loop),
             "ours (BatchIterator + fit)": timed(our_loop)}, args.repeats, goal=">= 1.2x on a 2-core CPU")


if __name__ == "__main__":
    main()
