"""Train the scene-attribute classifier that judges notebook 09's generated scenes, and ship it.

    .venv/bin/python scripts/train_scene_classifier.py [--n-train 20000] [--epochs 12] [--seed 0] [--dry-run]

Trains lecture_utils.models.text_to_image.SceneAttributeClassifier on captioned scenes from
lecture_utils.data.make_scenes with *every* colour-shape pair (the judge must know the pairs the
text-to-image model never saw), each batch blurred and noised a random amount so that slightly
blurry generated scenes are read as well as crisp ones.  Evaluates on fresh scenes (another seed)
and on scenes that each show a held-out pair, then writes data/checkpoints/scene_classifier.pt and
its manifest entry (sha256, size, accuracies).  Deterministic on a CPU for a given seed.
"""
from __future__ import annotations

import argparse
import time

import torch

from lecture_utils.budget import seed_everything
from lecture_utils.checkpoints import ship
from lecture_utils.data import SCENE_HELDOUT, BatchIterator, make_scenes
from lecture_utils.models.text_to_image import HEADS, SceneAttributeClassifier
from lecture_utils.text_to_image import SCENE_CLASSIFIER_NAME, attribute_accuracy, blur_and_noise, classifier_loss
from lecture_utils.train import adam, fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=20000, help="generated training scenes")
    parser.add_argument("--epochs", type=int, default=12, help="passes over the training scenes")
    parser.add_argument("--batch-size", type=int, default=128, help="scenes per step")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights, batches and augmentation")
    parser.add_argument("--dry-run", action="store_true", help="train briefly and ship nothing")
    args = parser.parse_args()
    if args.dry_run:
        args.n_train, args.epochs = 1000, 1

    generator = seed_everything(args.seed)
    train = make_scenes(args.n_train, seed=1000 + args.seed)
    test = make_scenes(2000, seed=2000 + args.seed, verbose=False)
    heldout = make_scenes(2000, seed=3000 + args.seed, only=SCENE_HELDOUT, verbose=False)
    model = SceneAttributeClassifier()
    optimizer = adam(model.parameters(), lr=args.lr, reference_on_cpu=True)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    targets = torch.stack([train.attributes[k] for k in HEADS], 1)

    def step(batch):
        images, labels = batch
        model.train()
        loss = classifier_loss(model(blur_and_noise(images, generator)),
                               {k: labels[:, i] for i, k in enumerate(HEADS)})
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach()}

    start = time.perf_counter()
    batches = BatchIterator(train.images, targets, batch_size=args.batch_size, seed=args.seed)
    history = fit(step, batches, args.epochs, state={"model": model}, progress=True,
                  on_epoch_end=lambda epoch, record: (schedule.step(), print(f"epoch {epoch}: loss {record['loss']:.4f}")),
                  desc="scene classifier")
    seconds = time.perf_counter() - start
    model.eval()
    blurred = blur_and_noise(test.images, torch.Generator().manual_seed(7))
    metrics = {"test": attribute_accuracy(model.predict(test.images), test.attributes),
               "test_blurred": attribute_accuracy(model.predict(blurred), test.attributes),
               "heldout_pairs": attribute_accuracy(model.predict(heldout.images), heldout.attributes),
               "final_loss": round(history.last["loss"], 5)}
    metrics = {k: ({m: round(v, 4) for m, v in d.items()} if isinstance(d, dict) else d) for k, d in metrics.items()}
    print(metrics, f"{seconds:.0f} s")
    if args.dry_run:
        return
    entry = ship(SCENE_CLASSIFIER_NAME, {"model": model.state_dict()},
                 trained_by=f"python scripts/train_scene_classifier.py --n-train {args.n_train} --epochs {args.epochs} --seed {args.seed}",
                 metrics=metrics, n_train=args.n_train, train_seconds=round(seconds, 1),
                 data_source="captioned scenes (generated), all colour-shape pairs")
    print(entry)


if __name__ == "__main__":
    main()
