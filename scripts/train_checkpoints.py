"""Train and ship the main model of each notebook (the checkpoints presenter mode loads).

    .venv/bin/python scripts/train_checkpoints.py                 # every recipe, standard budget
    .venv/bin/python scripts/train_checkpoints.py autoencoder_2d  # one of them
    .venv/bin/python scripts/train_checkpoints.py --list

Each recipe (lecture_utils/pretrained.py) is the same code the notebook runs.  The weights go to
data/checkpoints/<name>.pt (float16) and the manifest records sha256, size, this command and the
metrics the shipped weights reach.  Reproducible on a CPU for a given seed.
"""
from __future__ import annotations

import argparse
import time

from lecture_utils.checkpoints import checkpoints_dir, read_manifest
from lecture_utils.pretrained import RECIPES, train_and_ship

LIMIT_BYTES = 25_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="recipes to train (default: all)")
    parser.add_argument("--budget", default="standard", choices=("smoke", "standard", "full"), help="sizes to train at")
    parser.add_argument("--seed", type=int, default=0, help="seed for the whole run")
    parser.add_argument("--device", default="cpu", help="device to train on (cpu keeps runs reproducible)")
    parser.add_argument("--list", action="store_true", help="list the recipes and exit")
    args = parser.parse_args()
    if args.list:
        for name, recipe in RECIPES.items():
            print(f"{name:24s} notebook {recipe.notebook}")
        return
    unknown = sorted(set(args.names) - set(RECIPES))
    if unknown:
        parser.error(f"unknown recipe(s) {unknown}; known: {sorted(RECIPES)}")
    for name in args.names or list(RECIPES):
        started = time.perf_counter()
        info = train_and_ship(name, budget=args.budget, seed=args.seed, device=args.device)
        print(f"{name}: {info['size_bytes'] / 1e6:.2f} MB, metrics {info['metrics']}, "
              f"{time.perf_counter() - started:.0f} s")
    total = sum((checkpoints_dir() / e["file"]).stat().st_size for e in read_manifest().values())
    print(f"all shipped checkpoints: {total / 1e6:.2f} MB (limit {LIMIT_BYTES / 1e6:.0f} MB)")
    if total > LIMIT_BYTES:
        raise SystemExit("shipped checkpoints exceed the size limit")


if __name__ == "__main__":
    main()
