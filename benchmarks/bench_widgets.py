"""Benchmark: how fast the latent explorers answer a slider move on the CPU (goal: < 50 ms).

A move in the interpolation explorer swaps precomputed PNG frames; a move of a latent slider decodes
one code and encodes one PNG.  Both are timed headlessly (setting ``slider.value`` runs the same
Python callback a browser's move triggers; the browser's own drawing is not included), for the
notebook's MLP VAE decoder and a convolutional one, untrained (speed does not depend on the weights).

    python benchmarks/bench_widgets.py [--moves 200] [--frames 25] [--latent-size 20]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from lecture_utils.models.vae import ConvVAE, MLPVAE
from lecture_utils.widgets import interpolation_explorer, latent_sliders

GOAL_MS = 50.0


def timed_moves(move, values) -> list[float]:
    times = []
    for value in values:
        start = time.perf_counter()
        move(value)
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=200, help="slider moves timed per widget")
    parser.add_argument("--frames", type=int, default=25, help="frames per path in the explorer")
    parser.add_argument("--latent-size", type=int, default=20, help="latent dimensions of the decoders")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; goal: a move answers in < {GOAL_MS:g} ms")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (a shared machine's numbers are pessimistic)")
    print(f"{'widget':44s} {'build ms':>9s} {'median ms':>10s} {'p95 ms':>8s} {'max ms':>8s}  goal")
    for name, model in (("MLP VAE 784-400-z", MLPVAE(args.latent_size)),
                        ("conv VAE", ConvVAE(args.latent_size))):
        model.eval()
        start = time.perf_counter()
        explorer = interpolation_explorer(model.decode_images, torch.randn(args.latent_size),
                                          torch.randn(args.latent_size), n_frames=args.frames, show=False)
        build = (time.perf_counter() - start) * 1000
        grid = [k / (args.frames - 1) for k in range(args.frames)]
        values = [grid[(7 * i) % args.frames] for i in range(args.moves)]  # jumps, not only neighbours

        def move(t):
            explorer.slider.value = t

        report(f"interpolation explorer, {name}", build, timed_moves(move, values))
        start = time.perf_counter()
        panel = latent_sliders(model.decode_images, torch.zeros(args.latent_size), dims=range(8), show=False)
        build = (time.perf_counter() - start) * 1000
        values = [((i * 37) % 61) / 10 - 3 for i in range(args.moves)]

        def slide(v, slider=panel.sliders[3]):
            slider.value = v

        report(f"latent sliders (one decode a move), {name}", build, timed_moves(slide, values))


def report(name: str, build_ms: float, times: list[float]) -> None:
    times = sorted(times)
    p95 = times[int(0.95 * (len(times) - 1))]
    verdict = "ok" if p95 < GOAL_MS else "SLOW"
    print(f"{name:44s} {build_ms:9.0f} {statistics.median(times):10.2f} {p95:8.2f} {times[-1]:8.2f}  {verdict}")


if __name__ == "__main__":
    main()
