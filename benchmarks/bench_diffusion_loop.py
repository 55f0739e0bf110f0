"""Benchmark: notebook 10's diffusion training loop vs a plain PyTorch loop as tutorials write it.

Both train the same class-conditional denoiser (notebook 10's U-Net) with the same loss (noise prediction, 10 % of
the labels dropped), the same batch size, the same number of steps and an EMA of the weights:

* ours       -- lecture_utils.diffusion.train_denoiser: a BatchIterator (data resident on the device), the
                course's fit (losses summed on the device, one sync per epoch), fused Adam, a fused EMA update
                (one _foreach_lerp_), channels-last images and weights;
* reference  -- DataLoader over a TensorDataset, ``.item()`` every step, torch.optim.Adam's default, an EMA
                updated parameter by parameter, contiguous (NCHW) tensors.

* ours, N processes -- the same train_denoiser under ``torchrun --nproc_per_node=N`` on the CPU (Gloo, one
                thread each): every process takes its slice of each global batch of the same size and the
                gradients are averaged (lecture_utils.distributed), as scripts/train_checkpoints.py trains under
                torchrun.  Timed inside the processes like the others (the epochs, not the start-up); images/s
                of the global batch.  It asks whether two one-thread processes use two cores better than one
                process whose two threads share every small operation: on the 2-core AMD CPU they do not
                (README, Benchmarks: a half batch costs more than half a step, and the all-reduce the rest).

Prints images/s for each and their ratios.  Goal: ours >= 1.2x on a 2-core CPU.

    python benchmarks/bench_diffusion_loop.py [--steps 140] [--batch-size 64] [--device cpu] [--processes 2]
                                              [--repeats 2] [--dry-run]
"""
from __future__ import annotations

import argparse
import copy
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lecture_utils import diffusion as D
from lecture_utils import distributed
from _compare import compare
from lecture_utils.budget import get_device
from lecture_utils.data import load_mnist
from lecture_utils.pretrained import RECIPES


def reference_loop(model, images, labels, batch_size, steps, device):
    """The tutorial way: DataLoader, per-parameter EMA, .item() each step for the running loss."""
    schedule = D.NoiseSchedule.make("cosine")
    alpha_bars = schedule.alpha_bars.float().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    ema = copy.deepcopy(model)
    loader = DataLoader(TensorDataset(images * 2 - 1, labels), batch_size=batch_size, shuffle=True, drop_last=True)
    done, running, start = 0, 0.0, time.perf_counter()
    while done < steps:
        for x0, y in loader:
            x0, y = x0.to(device), y.to(device)
            t = torch.randint(0, schedule.T, (x0.shape[0],), device=device)
            noise = torch.randn_like(x0)
            a = alpha_bars[t].view(-1, 1, 1, 1)
            x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
            y = torch.where(torch.rand(y.shape, device=device) < 0.1, torch.full_like(y, model.no_class), y)
            loss = F.mse_loss(model(x_t, t, y), noise)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                for p_ema, p in zip(ema.parameters(), model.parameters()):
                    p_ema.mul_(0.995).add_(p, alpha=0.005)
            running += loss.item()      # a host sync every step, as tutorials print running losses
            done += 1
            if done == steps:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - start)


def our_loop(model, images, labels, batch_size, steps, device):
    per_epoch = images.shape[0] // batch_size
    if steps % per_epoch:
        raise ValueError(f"--steps must be a multiple of the {per_epoch} batches per epoch")
    run = D.train_denoiser(model, images * 2 - 1, labels, steps // per_epoch,
                           options=D.DiffusionOptions(batch_size=batch_size, lr=2e-3, ema_decay=0.995),
                           device=device, progress=False)
    return run.history.images_per_s


def data_parallel_loop(processes: int, batch_size: int, steps: int, dry_run: bool) -> float:
    """Our loop under torchrun with ``processes`` one-thread CPU processes; images/s of the global batch."""
    env = dict(os.environ, OMP_NUM_THREADS="1")             # the worker joins with Gloo on the CPU
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               __file__, "--worker", "--batch-size", str(batch_size), "--steps", str(steps)]
    result = subprocess.run(command + (["--dry-run"] if dry_run else []), env=env, capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1], timeout=1800)
    found = re.findall(r"^worker images/s ([0-9.]+)$", result.stdout, flags=re.M)
    if result.returncode != 0 or not found:
        raise RuntimeError(f"torchrun failed (exit {result.returncode}):\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return float(found[-1])


def worker(args, images, labels) -> None:
    """One process of ``data_parallel_loop``: trains its slices; the first process prints the global rate."""
    device = distributed.init("cpu")
    try:
        torch.manual_seed(0)
        model = RECIPES["diffusion"].build().to(device, memory_format=torch.contiguous_format)
        per_process = our_loop(model, images, labels, args.batch_size, args.steps, device)
        if distributed.is_main():
            print(f"worker images/s {per_process * distributed.world_size():.1f}", flush=True)
    finally:
        distributed.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=140, help="optimiser steps per loop (multiple of steps/epoch)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per step (the global batch)")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: best available)")
    parser.add_argument("--processes", type=int, default=2,
                        help="CPU processes for the data-parallel row (0: leave the row out)")
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats of each loop; the best is kept")
    parser.add_argument("--dry-run", action="store_true", help="one short repeat, to check that it runs")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)   # a torchrun process
    args = parser.parse_args()
    data = load_mnist("train")
    images, labels = data.images, data.labels
    if args.dry_run:
        images, labels, args.repeats = images[:640], labels[:640], 1
        args.steps = images.shape[0] // args.batch_size
    if args.worker:
        return worker(args, images, labels)
    device = get_device(args.device)
    print(f"device {device}, threads {torch.get_num_threads()}, batch {args.batch_size}, steps {args.steps}, "
          f"{len(images)} images")

    def timed(loop):                      # a fresh model for every repeat, in the tutorials' NCHW layout
        return lambda: loop(RECIPES["diffusion"].build().to(device, memory_format=torch.contiguous_format), images,
                            labels, args.batch_size, args.steps, device)

    loops = {"reference (DataLoader + .item())": timed(reference_loop),
             "ours (BatchIterator + fit)": timed(our_loop)}
    if args.processes > 1 and device.type == "cpu":
        loops[f"ours, {args.processes} processes x 1 thread"] = lambda: data_parallel_loop(
            args.processes, args.batch_size, args.steps, args.dry_run)
    compare(loops, args.repeats, goal=">= 1.2x on a 2-core CPU")


if __name__ == "__main__":
    main()
