"""The main model of each notebook, as one recipe shared by the notebook, the script that ships its
checkpoint (``scripts/train_checkpoints.py``) and the test that checks the shipped file.

A recipe says how to ``build`` the model (its architecture never depends on the budget, so shipped
weights fit every budget), how to ``train`` it at a budget's sizes, and how to ``evaluate`` it into the
numbers recorded in the manifest.  Weights ship in float16 to keep the download small; they load into
float32 models.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .budget import get_budget, seed_everything


@dataclass(frozen=True)
class Recipe:
    name: str
    notebook: str
    build: Callable[[], torch.nn.Module]
    train: Callable[[torch.nn.Module, object, torch.device], object]  # (model, sizes, device) -> History
    evaluate: Callable[[torch.nn.Module], dict]
    tolerance: dict                                                  # metric -> absolute tolerance


RECIPES: dict[str, Recipe] = {}


def register(recipe: Recipe) -> Recipe:
    RECIPES[recipe.name] = recipe
    return recipe


def half_state(model: torch.nn.Module) -> dict:
    """The model's state dict with floating tensors stored as float16."""
    return {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}


def train_and_ship(name: str, budget: str = "standard", seed: int = 0, device=None) -> dict:
    """Train recipe ``name`` at ``budget`` sizes, evaluate it as it will be loaded, ship it."""
    from .checkpoints import ship

    recipe = RECIPES[name]
    device = torch.device(device or "cpu")
    seed_everything(seed)
    model = recipe.build()
    recipe.train(model, get_budget(budget).sizes(recipe.notebook), device)
    state = half_state(model.cpu())
    reloaded = recipe.build()
    reloaded.load_state_dict(state)
    metrics = recipe.evaluate(reloaded.eval())
    from .data import sources_used

    return ship(name, {"model": state},
                trained_by=f"python scripts/train_checkpoints.py {name} --budget {budget} --seed {seed}",
                metrics=metrics, notebook=recipe.notebook, budget=budget, seed=seed,
                data_source=", ".join(sources_used()))


# --------------------------------------------------------------------------- 01 autoencoder
def _build_autoencoder():
    from .models.autoencoder import MLPAutoencoder

    return MLPAutoencoder(code_size=2)


def _train_autoencoder(model, sizes, device):
    from .data import load_mnist
    from .train import train_autoencoder

    train = load_mnist("train").subset(sizes.n_train)
    return train_autoencoder(model, train.images, sizes.epochs, sizes.batch_size, device=device)


def _evaluate_autoencoder(model):
    from .data import load_mnist
    from .metrics import reconstruction_mse

    test = load_mnist("test", verbose=False)
    return {"test_mse": round(reconstruction_mse(test.images, model.cpu().reconstruct(test.images)), 5)}


register(Recipe("autoencoder_2d", "01_autoencoders", _build_autoencoder, _train_autoencoder,
                _evaluate_autoencoder, tolerance={"test_mse": 1e-4}))


# --------------------------------------------------------------------------- 02 VAE
def _build_vae():
    from .models.vae import MLPVAE

    return MLPVAE(latent_size=20)


def _train_vae(model, sizes, device):
    from .data import load_mnist
    from .train import train_vae

    train = load_mnist("train").subset(sizes.n_train)
    epochs = max(1, round(sizes.train_images / len(train)))  # training length in images seen
    return train_vae(model, train.images, epochs, sizes.batch_size, lr=sizes.lr, device=device,
                     shift_pixels=sizes.shift_pixels)


def _evaluate_vae(model):
    from .data import load_mnist
    from .train import evaluate_vae

    test = load_mnist("test", verbose=False)
    scores = evaluate_vae(model.cpu(), test.images)
    return {"test_negative_elbo_nats": round(scores["negative_elbo"], 3)}


register(Recipe("vae", "02_vae_elbo", _build_vae, _train_vae, _evaluate_vae,
                tolerance={"test_negative_elbo_nats": 0.02}))
