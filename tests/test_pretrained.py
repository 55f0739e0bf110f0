"""Shipped checkpoints: hashes match, the size limit holds, and loaded models reproduce their metrics."""
import pytest
import torch

from lecture_utils.checkpoints import checkpoints_dir, load_shipped, read_manifest, sha256_of
from lecture_utils.data import load_mnist
from lecture_utils.pretrained import RECIPES

MANIFEST = read_manifest()


def test_every_shipped_file_matches_its_hash_and_the_size_limit():
    total = 0
    for name, info in MANIFEST.items():
        path = checkpoints_dir() / info["file"]
        assert sha256_of(path) == info["sha256"], name
        assert path.stat().st_size == info["size_bytes"], name
        total += info["size_bytes"]
    assert total <= 25_000_000


def test_every_recipe_ships():
    missing = sorted(set(RECIPES) - set(MANIFEST))
    assert not missing, f"recipes without a shipped checkpoint: {missing} (run scripts/train_checkpoints.py)"


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_loaded_model_reproduces_its_metrics(name):
    info = MANIFEST[name]
    current = load_mnist("test", verbose=False).source
    if "MNIST" in info.get("data_source", "") and current not in info["data_source"]:
        pytest.skip(f"{name} was evaluated on {info['data_source']}, this machine loads {current}")
    recipe = RECIPES[name]
    model = recipe.build()
    model.load_state_dict(load_shipped(name)["model"])
    with torch.no_grad():
        metrics = recipe.evaluate(model.eval())
    for key, tolerance in recipe.tolerance.items():
        assert metrics[key] == pytest.approx(info["metrics"][key], abs=tolerance), key
