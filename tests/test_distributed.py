"""Data-parallel retraining: the sharding helpers, and scripts/train_checkpoints.py under torchrun.

Two CPU processes (Gloo) with B rows each against one process with 2 x B rows, on the smoke budget, for one
model of each family: the VAE (notebook 02) and the DCGAN (notebook 04).  Tolerances, from runs on the
shared 2-core machine (measured values in brackets):

* DCGAN: both generators' weights (raw and EMA) lie within 10% of their training displacement
  ||w_1 - w_init|| from the single-process weights [3%]; mean confidence within 0.01 [0.0002], Frechet
  distance within 2% [0.01%].  The processes see the same rows and the same noise as one process; only batch
  norm's per-process statistics and the order of sums differ.
* VAE: test negative ELBO within 1% [0.3%], weights within 60% of the displacement [34%].  The VAE's
  reparameterisation noise is drawn per process, so the runs differ as two single-process runs with
  different noise do [37% of the displacement after the smoke budget's 40 steps].

And notebook 10's diffusion loop (``diffusion.train_denoiser``) in two processes, outside the recipes: the two
replicas must hold identical weights after training (the gradients are averaged; without DistributedDataParallel
they drift apart at the first step), each process must see half the rows, and the weights must lie as close to one
process's with the whole batch as a single-process run with other noise does (each process draws its own time
steps and noise): within 1.5 times that distance [1.08 times; 73% and 68% of the displacement after 16 steps].
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lecture_utils import diffusion as D
from lecture_utils import distributed
from lecture_utils.budget import seed_everything
from lecture_utils.checkpoints import checkpoints_dir, sha256_of
from lecture_utils.data import BatchIterator
from lecture_utils.pretrained import RECIPES

ROOT = Path(__file__).resolve().parents[1]


def pretend(monkeypatch, rank: int, world: int) -> None:
    monkeypatch.setattr(distributed, "active", lambda: True)
    monkeypatch.setattr(distributed, "rank", lambda: rank)
    monkeypatch.setattr(distributed, "world_size", lambda: world)


def test_shards_partition_every_global_batch(monkeypatch):
    images, labels = torch.arange(120.0).reshape(60, 2), torch.arange(60)
    single = list(BatchIterator(images, labels, batch_size=12, seed=3))
    shards = []
    for rank in range(3):
        pretend(monkeypatch, rank, 3)
        shards.append(list(distributed.shard(BatchIterator(images, labels, batch_size=12, seed=3))))
    for step, (x, y) in enumerate(single):
        assert all(shard[step][0].shape == (4, 2) for shard in shards)
        assert torch.equal(torch.cat([shard[step][0] for shard in shards]), x)
        assert torch.equal(torch.cat([shard[step][1] for shard in shards]), y)
    assert all(len(shard) == len(single) == 5 for shard in shards)


def test_sharded_noise_is_one_process_noise_cut_in_slices(monkeypatch):
    def noise(m):
        return torch.randn(m, 5)

    torch.manual_seed(11)
    whole = noise(8)
    parts = []
    for rank in range(2):
        pretend(monkeypatch, rank, 2)
        torch.manual_seed(11)                          # every process has the same random state
        parts.append(distributed.shard_noise(noise)(4))
    assert torch.equal(torch.cat(parts), whole)


def test_a_batch_that_does_not_split_evenly_is_refused(monkeypatch):
    pretend(monkeypatch, 0, 3)
    with pytest.raises(ValueError, match="batch_size must be a multiple of the 3 processes, got 10"):
        distributed.shard(BatchIterator(torch.zeros(30, 1), batch_size=10))


def test_single_process_helpers_change_nothing():
    module = torch.nn.Linear(2, 2)
    batches = BatchIterator(torch.zeros(8, 1), batch_size=4)
    assert not distributed.active() and distributed.world_size() == 1 and distributed.is_main()
    assert distributed.wrap(module) is module and distributed.shard(batches) is batches
    assert distributed.shard_noise(torch.randn) is torch.randn


# --------------------------------------------------------------------------- torchrun, for real
def _train(out: Path, processes: int) -> None:
    env = dict(os.environ, LECTURE_UTILS_BUDGET="smoke", LECTURE_UTILS_OFFLINE="1", OMP_NUM_THREADS="1")
    env.pop("LECTURE_UTILS_CHECKPOINTS", None)
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
                if processes > 1 else [sys.executable])
    result = subprocess.run([*launcher, str(ROOT / "scripts" / "train_checkpoints.py"), "vae", "dcgan",
                             "--budget", "smoke", "--out", str(out)], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def _weights(state: dict, prefix: str = "") -> torch.Tensor:
    return torch.cat([v.float().flatten() for k, v in sorted(state.items())
                      if v.is_floating_point() and k.startswith(prefix)])


def test_torchrun_with_two_processes_matches_one_process_with_the_whole_batch(tmp_path, monkeypatch):
    shipped = checkpoints_dir() / "manifest.json"
    shipped_before = sha256_of(shipped)
    _train(tmp_path / "one", 1)
    _train(tmp_path / "two", 2)
    assert sha256_of(shipped) == shipped_before                 # the shipped folder was not touched

    manifests = {n: json.loads((tmp_path / n / "manifest.json").read_text()) for n in ("one", "two")}
    for name in ("vae", "dcgan"):
        assert manifests["two"][name]["processes"] == 2
        assert manifests["two"][name]["trained_by"].startswith("torchrun --nproc_per_node=2 ")
        assert "processes" not in manifests["one"][name]
    one, two = manifests["one"], manifests["two"]
    assert two["vae"]["metrics"]["test_negative_elbo_nats"] == pytest.approx(
        one["vae"]["metrics"]["test_negative_elbo_nats"], rel=0.01)
    assert two["dcgan"]["metrics"]["mean_confidence"] == pytest.approx(one["dcgan"]["metrics"]["mean_confidence"],
                                                                       abs=0.01)
    assert two["dcgan"]["metrics"]["frechet_distance"] == pytest.approx(one["dcgan"]["metrics"]["frechet_distance"],
                                                                        rel=0.02)

    from lecture_utils.checkpoints import load_shipped
    for name, parts, tolerance in (("vae", [""], 0.6), ("dcgan", ["generator.", "ema_generator."], 0.1)):
        states = {}
        for run in ("one", "two"):
            monkeypatch.setenv("LECTURE_UTILS_CHECKPOINTS", str(tmp_path / run))
            states[run] = load_shipped(name)["model"]            # sha256 verified
            model = RECIPES[name].build()
            model.load_state_dict(states[run])                    # and it loads into the recipe's model
        seed_everything(0)
        initial = RECIPES[name].build().state_dict()
        for prefix in parts:
            w_one, w_two, w_init = (_weights(s, prefix) for s in (states["one"], states["two"], initial))
            moved = (w_one - w_init).norm()
            assert moved > 0
            assert (w_two - w_one).norm() < tolerance * moved, (name, prefix, float((w_two - w_one).norm() / moved))


# --------------------------------------------------------------------------- the diffusion loop under torchrun
DIFFUSION_WORKER = """
import sys
import torch
from lecture_utils import distributed
from tests.test_distributed import diffusion_run

device = distributed.init("cpu")
try:
    state, records = diffusion_run(device)
    torch.save({"state": state, "records": records}, f"{sys.argv[1]}/rank{distributed.rank()}.pt")
finally:
    distributed.close()
"""


def diffusion_run(device="cpu") -> tuple[dict, list[tuple[float, int]]]:
    """Notebook 10's denoiser trained for 16 steps of a global batch of 32 on 256 fixed random images: its raw
    weights and, per epoch, the mean loss and the number of images this process saw."""
    x0 = torch.rand(256, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1
    torch.manual_seed(0)
    model = RECIPES["diffusion"].build()
    run = D.train_denoiser(model, x0, torch.arange(256) % 10, 2, device=device, progress=False,
                           options=D.DiffusionOptions(batch_size=32, lr=2e-3, ema_decay=0.9))
    return ({k: v.detach().clone() for k, v in model.state_dict().items()},
            [(r["loss"], r["images"]) for r in run.history.records])


def test_the_diffusion_loop_under_torchrun_keeps_its_replicas_equal_and_follows_one_process(tmp_path, monkeypatch):
    env = dict(os.environ, OMP_NUM_THREADS="1", LECTURE_UTILS_OFFLINE="1", PYTHONPATH=str(ROOT))
    (tmp_path / "worker.py").write_text(DIFFUSION_WORKER)
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             str(tmp_path / "worker.py"), str(tmp_path)], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    # DistributedDataParallel averages the gradients, so both replicas take the same steps
    for name, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][name]), name
    assert ranks[0]["records"] != ranks[1]["records"]            # ... from different slices of each batch
    assert [images for _, images in ranks[0]["records"]] == [128, 128]  # half of each epoch's 256 rows each

    one, _ = diffusion_run()
    monkeypatch.setattr(distributed, "rank", lambda: 1)          # one process, the whole batch, other noise
    other_noise, _ = diffusion_run()
    seed_everything(0)
    initial = RECIPES["diffusion"].build().state_dict()
    w_one, w_two, w_noise, w_init = (_weights(s) for s in (one, ranks[0]["state"], other_noise, initial))
    moved, noise = (w_one - w_init).norm(), (w_noise - w_one).norm()
    assert 0 < noise < moved
    assert (w_two - w_one).norm() < 1.5 * noise, float((w_two - w_one).norm() / noise)
