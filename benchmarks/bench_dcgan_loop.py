"""Benchmark: notebook 04's DCGAN loop vs the pytorch/examples ``dcgan/main.py`` loop.

Both train the same DCGAN (``lecture_utils.models.dcgan``, 32 x 32 MNIST digits) with Adam(2e-4,
beta1 = 0.5), the same batch size and the same number of iterations:

* reference -- the pytorch/examples pattern: the discriminator ends in ``nn.Sigmoid`` and is trained
               with ``nn.BCELoss``; a ``DataLoader`` collates one example at a time; ``.item()`` five
               times per iteration (D(x), D(G(z)) twice, both losses, as the example prints them); one
               generator forward per iteration whose fakes serve both updates.
               ``--reference-data transforms`` (default) applies the example's per-image transforms
               (PIL Resize(32), ToTensor, Normalize) in the loader; ``tensor`` loads pre-resized (bicubic)
               tensors from a TensorDataset (only the loop differs).
* ours      -- ``lecture_utils.gans.train_gan``'s step (``fast_gan_step``: the readable ``gan_step`` with the
               speed options composed around it) run by ``lecture_utils.train.fit`` over a device-resident
               ``BatchIterator``: losses on logits, no ``.item()`` per step, fakes for D under ``no_grad``,
               D frozen during G's update, gradient norms measured by optimiser hooks on the device,
               channels_last (CPU and CUDA), fused Adam; on CUDA also bf16 autocast and (``--compile``)
               torch.compile.
               It follows Algorithm 1 strictly: the generator update draws fresh noise, which costs one
               extra generator forward per iteration compared with the reference.  A third line runs our
               loop with ``reuse_fakes=True`` (``reused_fakes_step``, the reference's algorithm) to separate
               the two effects.

Prints images/s (real images consumed per second of wall clock) for each loop and their ratio, and on
a CPU also images per CPU-second (process time), which other processes on a shared machine disturb
far less when the loops run on one thread (``--threads 1``).
Goals: ours >= 1.3x on a 2-core CPU; >= 2x on a CUDA GPU.

    python benchmarks/bench_dcgan_loop.py [--steps 140] [--batch-size 64] [--features 32] [--device cpu]
    python benchmarks/bench_dcgan_loop.py --device cuda --features 64 --steps 700 --compile
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torchvision import transforms

from lecture_utils.budget import get_device
from lecture_utils.data import BatchIterator, load_mnist
from lecture_utils.gans import (CHANNELS_LAST_DEVICES, GANOptions, Noise, Speed, fast_gan_step, make_optimizers,
                                resize_images, to_tanh_range)
from lecture_utils.models.dcgan import DCGANDiscriminator, DCGANGenerator
from lecture_utils.train import fit


class ExamplesMNIST(Dataset):
    """MNIST as pytorch/examples loads it: a PIL image per example, transformed on every access."""

    def __init__(self, images_uint8: np.ndarray, labels: np.ndarray, size: int):
        self.images = [Image.fromarray(a, mode="L") for a in images_uint8]
        self.labels = labels
        self.transform = transforms.Compose([transforms.Resize(size), transforms.ToTensor(),
                                             transforms.Normalize((0.5,), (0.5,))])

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(self.images[i]), int(self.labels[i])


def reference_loop(netG, netD, loader, steps, device, latent_dim):
    """pytorch/examples dcgan/main.py, line for line (printing replaced by keeping the numbers)."""
    netD = nn.Sequential(netD, nn.Sigmoid())
    criterion = nn.BCELoss()
    optimizerD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optimizerG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real_label, fake_label = 1.0, 0.0
    done, log = 0, []
    start, cpu_start = time.perf_counter(), time.process_time()
    while done < steps:
        for data in loader:
            # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
            netD.zero_grad()
            real_cpu = data[0].to(device)
            batch_size = real_cpu.size(0)
            label = torch.full((batch_size,), real_label, dtype=real_cpu.dtype, device=device)
            output = netD(real_cpu).view(-1)
            errD_real = criterion(output, label)
            errD_real.backward()
            D_x = output.mean().item()
            noise = torch.randn(batch_size, latent_dim, device=device)
            fake = netG(noise)
            label.fill_(fake_label)
            output = netD(fake.detach()).view(-1)
            errD_fake = criterion(output, label)
            errD_fake.backward()
            D_G_z1 = output.mean().item()
            errD = errD_real + errD_fake
            optimizerD.step()
            # (2) Update G network: maximize log(D(G(z)))
            netG.zero_grad()
            label.fill_(real_label)
            output = netD(fake).view(-1)
            errG = criterion(output, label)
            errG.backward()
            D_G_z2 = output.mean().item()
            optimizerG.step()
            log.append((errD.item(), errG.item(), D_x, D_G_z1, D_G_z2))
            done += 1
            if done == steps:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    images = steps * loader.batch_size
    return images / (time.perf_counter() - start), images / (time.process_time() - cpu_start)


def our_loop(netG, netD, images, batch_size, steps, device, compile, reuse_fakes=False):
    channels_last = device.type in CHANNELS_LAST_DEVICES  # the library's default (measured faster on CPU too)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    netG.to(device, memory_format=memory_format)
    netD.to(device, memory_format=memory_format)
    opt_g, opt_d = make_optimizers(netG, netD, "adam", lr_generator=2e-4)
    images = images.to(device).contiguous(memory_format=memory_format)
    batches = BatchIterator(images, batch_size=batch_size, seed=0, device=device)
    if steps % len(batches):
        raise ValueError(f"--steps must be a multiple of the {len(batches)} batches per epoch")
    options = GANOptions(batch_size=batch_size, reuse_fakes=reuse_fakes,
                         speed=Speed(channels_last=channels_last, compile=compile))
    step = fast_gan_step(netG, netD, opt_g, opt_d, options, noise=Noise(netG), device=device)
    if compile:  # compile outside the timed region (a real run amortises it over many epochs)
        warm = BatchIterator(images[: 4 * batch_size], batch_size=batch_size, seed=1, device=device)
        fit(step, warm, 1, progress=False)
    start, cpu_start = time.perf_counter(), time.process_time()
    history = fit(step, batches, steps // len(batches), progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    images = sum(history["images"])
    return images / (time.perf_counter() - start), images / (time.process_time() - cpu_start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=140, help="iterations per loop (multiple of iterations/epoch)")
    parser.add_argument("--batch-size", type=int, default=64, help="real images per iteration")
    parser.add_argument("--features", type=int, default=32, help="DCGAN width (ngf = ndf); the notebook uses 32")
    parser.add_argument("--latent-dim", type=int, default=100, help="noise dimension nz")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: best available)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of each loop, alternating; the best is kept")
    parser.add_argument("--reference-data", choices=("transforms", "tensor"), default="transforms",
                        help="reference loader: the example's per-image PIL transforms, or pre-resized tensors")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes for the reference")
    parser.add_argument("--compile", action="store_true", help="torch.compile our forward passes (compiled before timing)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--dry-run", action="store_true", help="one short repeat, to check that it runs")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    mnist = load_mnist("train")
    images = to_tanh_range(resize_images(mnist.images, 32))
    per_epoch = len(images) // args.batch_size
    if args.dry_run:
        args.steps, args.repeats = per_epoch, 1
    if args.reference_data == "transforms":
        pixels = (mnist.images[:, 0] * 255).round().to(torch.uint8).numpy()
        dataset = ExamplesMNIST(pixels, mnist.labels.numpy(), 32)
    else:
        dataset = TensorDataset(images, mnist.labels)
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, drop_last=True,
                        num_workers=args.workers, pin_memory=device.type == "cuda")
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"{torch.get_num_threads()} CPU threads"
    print(f"device {device} ({name}), batch {args.batch_size}, iterations {args.steps}, features {args.features}, "
          f"{len(images)} images, reference data: {args.reference_data} (workers {args.workers})"
          + (", ours compiled" if args.compile else ""))
    labels = ["reference (Sigmoid+BCELoss, DataLoader, 5x .item())", "ours: Algorithm 1 (fresh noise for G)",
              "ours, fakes reused (the reference's algorithm)"]
    results = {label: [] for label in labels}
    for repeat in range(args.repeats):
        torch.manual_seed(repeat)
        g, d = DCGANGenerator(args.latent_dim, 1, 32, args.features).to(device), DCGANDiscriminator(1, 32, args.features).to(device)
        results[labels[0]].append(reference_loop(g, d, loader, args.steps, device, args.latent_dim))
        for label, reuse in ((labels[1], False), (labels[2], True)):
            torch.manual_seed(repeat)
            g, d = DCGANGenerator(args.latent_dim, 1, 32, args.features), DCGANDiscriminator(1, 32, args.features)
            results[label].append(our_loop(g, d, images, args.batch_size, args.steps, device, args.compile, reuse))
    goal = "2x on CUDA" if device.type == "cuda" else "1.3x on a 2-core CPU"
    for index, unit in ((0, "images/s (wall clock)"), (1, "images per CPU-second")):
        if index == 1 and device.type == "cuda":
            continue  # CPU time says nothing about a GPU's speed
        print(f"-- {unit}; best of {args.repeats} repeats"
              + (" (CPU time is robust to other processes on a shared machine when --threads 1)" if index else ""))
        best = {label: max(v[index] for v in values) for label, values in results.items()}
        for label, value in best.items():
            print(f"{label:52s} {value:10,.0f}   (repeats: {', '.join(f'{v[index]:,.0f}' for v in results[label])})")
        reference = best[labels[0]]
        for label in labels[1:]:
            print(f"{'ratio ' + label.split(' (')[0] + ' / reference':52s} {best[label] / reference:10.2f}x   (goal: >= {goal})")


if __name__ == "__main__":
    main()
