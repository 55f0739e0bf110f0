"""Train and ship the main model of each notebook (the checkpoints presenter mode loads).

    .venv/bin/python scripts/train_checkpoints.py                 # every recipe, standard budget
    .venv/bin/python scripts/train_checkpoints.py autoencoder_2d  # one of them
    .venv/bin/python scripts/train_checkpoints.py --list
    .venv/bin/python scripts/train_checkpoints.py vae --budget smoke --out /tmp/checkpoints   # elsewhere

Each recipe (lecture_utils/pretrained/) is the same code the notebook runs.  The weights go to
data/checkpoints/<name>.pt (float16; ``--out`` writes to another folder) and the manifest records sha256,
size, this command and the metrics the shipped weights reach.  Reproducible on a CPU for a given seed.

Several processes (several GPUs, or CPU cores) with DistributedDataParallel::

    .venv/bin/torchrun --standalone --nproc_per_node=8 scripts/train_checkpoints.py --budget full --device cuda
    .venv/bin/torchrun --standalone --nproc_per_node=2 scripts/train_checkpoints.py vae --budget smoke   # CPUs, Gloo

Each process trains on its slice of every batch (the recipe's batch size is the global batch and must divide
by the number of processes; NCCL with one GPU per process on CUDA, Gloo on CPUs, see lecture_utils/distributed.py);
only the first process evaluates and writes the checkpoints and the manifest.  N processes with B rows each
follow one process with N x B rows, within the tolerance tests/test_distributed.py states.
"""
from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from lecture_utils import distributed
from lecture_utils.checkpoints import checkpoints_dir, read_manifest
from lecture_utils.pretrained import RECIPES, train_and_ship

LIMIT_BYTES = 25_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="recipes to train (default: all)")
    parser.add_argument("--budget", default="standard", choices=("smoke", "standard", "full"), help="sizes to train at")
    parser.add_argument("--seed", type=int, default=0, help="seed for the whole run")
    parser.add_argument("--device", default="cpu",
                        help="device to train on (cpu keeps runs reproducible; cuda under torchrun: one GPU per process)")
    parser.add_argument("--out", help="folder for the checkpoints and their manifest (default: data/checkpoints/)")
    parser.add_argument("--list", action="store_true", help="list the recipes and exit")
    args = parser.parse_args()
    if args.list:
        for name, recipe in RECIPES.items():
            print(f"{name:24s} notebook {recipe.notebook}")
        return
    unknown = sorted(set(args.names) - set(RECIPES))
    if unknown:
        parser.error(f"unknown recipe(s) {unknown}; known: {sorted(RECIPES)}")
    device = distributed.init(args.device)
    main_process = distributed.is_main()
    if args.out:
        out = Path(args.out).resolve()
        if main_process and not (out / "manifest.json").is_file():
            # start from a copy of the shipped folder: the evaluations load its judges (the MNIST classifier)
            shutil.copytree(checkpoints_dir(), out, dirs_exist_ok=True)
        distributed.barrier()
        os.environ["LECTURE_UTILS_CHECKPOINTS"] = str(out)   # checkpoints_dir() reads it from now on
    try:
        for name in args.names or list(RECIPES):
            started = time.perf_counter()
            info = train_and_ship(name, budget=args.budget, seed=args.seed, device=device)
            if main_process:
                print(f"{name}: {info['size_bytes'] / 1e6:.2f} MB, metrics {info['metrics']}, "
                      f"{time.perf_counter() - started:.0f} s on {distributed.world_size()} process(es)", flush=True)
            distributed.barrier()
    finally:
        distributed.close()
    if not main_process:
        return
    total = sum((checkpoints_dir() / e["file"]).stat().st_size for e in read_manifest().values())
    print(f"all shipped checkpoints: {total / 1e6:.2f} MB (limit {LIMIT_BYTES / 1e6:.0f} MB)")
    if total > LIMIT_BYTES:
        raise SystemExit("shipped checkpoints exceed the size limit")


if __name__ == "__main__":
    main()
