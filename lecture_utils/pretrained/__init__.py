"""The main model of each notebook, as one recipe shared by the notebook, the script that ships its
checkpoint (``scripts/train_checkpoints.py``) and the test that checks the shipped file.

A recipe says how to ``build`` the model (its architecture never depends on the budget, so shipped
weights fit every budget), how to ``train`` it at a budget's sizes, and how to ``evaluate`` it into the
numbers recorded in the manifest.  Weights ship in float16 to keep the download small; they load into
float32 models.

The recipes live in this package's modules, one per group of notebooks (``mnist``: 01-02, ``gans``: 04-05,
``restoration``: 06-07, ``text_to_image``: 09); importing the package registers them all.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable

import torch

from .. import distributed
from ..budget import get_budget, seed_everything
from ..checkpoints import entry, ship
from ..data import sources_used


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


def trained_goals(name: str, sizes: SimpleNamespace, trained_here: bool) -> SimpleNamespace:
    """The sizes whose thresholds a notebook's main model must meet: this budget's ``sizes`` when the notebook
    trained it, else those of the budget the shipped checkpoint ``name`` was trained at (its manifest entry)."""
    if trained_here:
        return sizes
    return get_budget(entry(name)["budget"]).sizes(RECIPES[name].notebook)


def seeded(make, seed: int = 0):
    """``make()`` with the random generator seeded, leaving the caller's random state as it was: a recipe's
    ``build`` gives the same initial weights every time."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make()


def half_state(model: torch.nn.Module) -> dict:
    """The model's state dict with floating tensors stored as float16."""
    return {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}


def train_and_ship(name: str, budget: str = "standard", seed: int = 0, device=None) -> dict:
    """Train recipe ``name`` at ``budget`` sizes, evaluate it as it will be loaded, ship it.

    Under ``torchrun`` every process trains (:mod:`lecture_utils.distributed`: the recipe's batch is split over
    the processes) and only the main one evaluates and writes; the others return None."""
    recipe = RECIPES[name]
    device = torch.device(device or "cpu")
    seed_everything(seed)
    model = recipe.build()
    recipe.train(model, get_budget(budget).sizes(recipe.notebook), device)
    processes = distributed.world_size()
    if not distributed.is_main():
        return None
    state = half_state(model.cpu())
    reloaded = recipe.build()
    reloaded.load_state_dict(state)
    metrics = recipe.evaluate(reloaded.eval())
    launcher = f"torchrun --nproc_per_node={processes}" if processes > 1 else "python"
    extra = {"processes": processes} if processes > 1 else {}
    return ship(name, {"model": state},
                trained_by=f"{launcher} scripts/train_checkpoints.py {name} --budget {budget} --seed {seed}",
                metrics=metrics, notebook=recipe.notebook, budget=budget, seed=seed,
                data_source=", ".join(sources_used()), **extra)


def _register_all() -> None:
    # the recipe modules import Recipe and register from this package, so they load after both are defined
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{info.name}")


_register_all()
