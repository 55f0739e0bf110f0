"""Recipes of notebooks 06 (x4 super-resolution) and 07 (image editing: one U-Net per task).

Notebook 06's main model is the x4 L1 CNN (``super_resolution_x4``: the headline PSNR gain over bicubic);
the notebook also compares it with the same CNN fine-tuned with a PatchGAN loss
(``super_resolution_x4_patchgan``), which ships too so that presenter mode shows the perception-distortion
trade-off without training, and with the same CNN at x2 (``super_resolution_x2``).  Notebook 07 trains one
pix2pix U-Net per task: ``editing_inpainting``, ``editing_colorization`` and ``editing_uncropping``.

The architectures are constants here (the same in every budget, so shipped weights fit whatever budget
loads them), and ``build_*`` always gives the same initial weights (seeded without touching the global
random state), so a notebook that trains at the standard budget repeats the shipped training.
"""
from __future__ import annotations

import functools
from types import SimpleNamespace

import torch

from ..data import load_photos, random_patches
from ..models.editing import EditingUNet
from ..models.patchgan import PatchDiscriminator
from ..models.super_resolution import SuperResolutionNet
from ..restoration import (dihedral_augment, evaluate_editing, evaluate_super_resolution, train_editing,
                           train_super_resolution)
from . import Recipe, register, seeded

# --------------------------------------------------------------------------- architectures (every budget)
SR_SCALE = 4
SR_FEATURES = 32            # feature maps of the super-resolution CNN's body
SR_BLOCKS = 6               # its residual blocks
SR_DISCRIMINATOR = {"features": 32, "n_layers": 2}    # PatchGAN on high-resolution patches (34 x 34 field)
SR_GAN_BETAS = (0.5, 0.999)

EDITING_DEPTH = 3           # U-Net levels (bottleneck 1/8 of the patch)
EDITING_BASE_CHANNELS = 16  # its first level's width
EDITING_DISCRIMINATOR = {"in_channels": 7, "features": 32, "n_layers": 2}   # input (4) + output (3) channels
EDITING_TEST = {"n": 64, "size": 64, "seed": 1, "scale": 0.5}   # held-out patches of the test photos
EDITING_MASK_SEED = 99      # the masks of the held-out patches


# --------------------------------------------------------------------------- 06 super-resolution
def build_super_resolution(scale: int = SR_SCALE) -> torch.nn.Module:
    """Notebook 06's CNN (x2 or x4), with fixed initial weights."""
    return seeded(lambda: SuperResolutionNet(scale, features=SR_FEATURES, n_blocks=SR_BLOCKS))


def super_resolution_patches(sizes: SimpleNamespace, n: int | None = None, size: int | None = None,
                             seed: int = 0) -> torch.Tensor:
    """Notebook 06's training patches, N x 3 x size x size (default ``sizes.n_patches`` of ``sizes.patch_size``)
    from the training photos, each turned and mirrored at random (:func:`~lecture_utils.restoration.dihedral_augment`:
    +0.2 to +0.3 dB on the held-out photos at x4 in the standard budget, for no extra training time)."""
    patches = random_patches(load_photos("train", verbose=False), sizes.n_patches if n is None else n,
                             sizes.patch_size if size is None else size, seed=seed)
    return dihedral_augment(patches, seed=seed)


def train_super_resolution_l1(model, sizes, device):
    """Notebook 06's L1 training of the x4 CNN (Adam, cosine-decayed learning rate)."""
    torch.manual_seed(0)
    return train_super_resolution(model, super_resolution_patches(sizes), sizes.epochs, batch_size=sizes.batch_size,
                                  lr=sizes.lr, device=device)


def fine_tune_patchgan(model, sizes, device):
    """Notebook 06's PatchGAN stage: continue training an L1-trained ``model`` (in place) with L1 (weight 100)
    plus the loss of a fresh PatchGAN discriminator (SRGAN's recipe)."""
    torch.manual_seed(0)
    discriminator = PatchDiscriminator(in_channels=3, **SR_DISCRIMINATOR)
    return train_super_resolution(model, super_resolution_patches(sizes), sizes.gan_epochs,
                                  discriminator=discriminator, batch_size=sizes.batch_size, lr=sizes.gan_lr,
                                  betas=SR_GAN_BETAS, device=device)


def _train_super_resolution_patchgan(model, sizes, device):
    train_super_resolution_l1(model, sizes, device)      # the same L1 network as super_resolution_x4 ...
    return fine_tune_patchgan(model, sizes, device)      # ... then the PatchGAN stage


def train_super_resolution_x2(model, sizes, device):
    """Notebook 06's x2 CNN: the same L1 training as at x4, on patches of ``sizes.patch_size_x2`` pixels."""
    torch.manual_seed(0)
    patches = super_resolution_patches(sizes, n=sizes.n_patches_x2, size=sizes.patch_size_x2, seed=1)
    return train_super_resolution(model, patches, sizes.epochs_x2, batch_size=sizes.batch_size, lr=sizes.lr,
                                  device=device)


def _evaluate_super_resolution(model, scale: int = SR_SCALE):
    scores = evaluate_super_resolution({"bicubic": "bicubic", "model": model.cpu()}, load_photos("test", verbose=False),
                                       scale)
    return {"psnr": round(scores["model"]["psnr"], 3), "ssim": round(scores["model"]["ssim"], 4),
            "psnr_bicubic": round(scores["bicubic"]["psnr"], 3),
            "psnr_gain_db": round(scores["model"]["psnr"] - scores["bicubic"]["psnr"], 3)}


_SR_TOLERANCE = {"psnr": 0.01, "ssim": 2e-4, "psnr_gain_db": 0.01}
register(Recipe("super_resolution_x4", "06_super_resolution", build_super_resolution, train_super_resolution_l1,
                _evaluate_super_resolution, tolerance=_SR_TOLERANCE))
register(Recipe("super_resolution_x4_patchgan", "06_super_resolution", build_super_resolution,
                _train_super_resolution_patchgan, _evaluate_super_resolution, tolerance=_SR_TOLERANCE))
register(Recipe("super_resolution_x2", "06_super_resolution", functools.partial(build_super_resolution, 2),
                train_super_resolution_x2, functools.partial(_evaluate_super_resolution, scale=2),
                tolerance=_SR_TOLERANCE))


# --------------------------------------------------------------------------- 07 image editing
def build_editing() -> torch.nn.Module:
    """Notebook 07's U-Net (the same for every task), with fixed initial weights."""
    return seeded(lambda: EditingUNet(depth=EDITING_DEPTH, base_channels=EDITING_BASE_CHANNELS))


def editing_train_patches(sizes: SimpleNamespace) -> torch.Tensor:
    """Notebook 07's training patches (photos shrunk by ``photo_scale`` first)."""
    return random_patches(load_photos("train", verbose=False), sizes.n_patches, sizes.patch_size, seed=0,
                          scale=sizes.photo_scale)


def editing_test_patches() -> torch.Tensor:
    """The held-out patches the shipped editing models are scored on (notebook 07's test set in the smoke and
    standard budgets)."""
    return random_patches(load_photos("test", verbose=False), EDITING_TEST["n"], EDITING_TEST["size"],
                          seed=EDITING_TEST["seed"], scale=EDITING_TEST["scale"])


def train_editing_task(model, task: str, sizes, device, with_patchgan: bool = True, epochs: int | None = None):
    """Notebook 07's pix2pix training for one ``task``: L1 warm-up epochs at ``lr``, then L1 (weight 100) + a
    conditional PatchGAN at ``gan_lr`` (pix2pix's 2e-4: at 1e-3 the adversarial phase paints saturated blotches
    into the uncropped band); ``with_patchgan=False`` trains with L1 alone for all the epochs (``epochs``, default
    ``sizes.epochs``)."""
    torch.manual_seed(0)
    if not with_patchgan:
        return train_editing(model, editing_train_patches(sizes), task, sizes.epochs if epochs is None else epochs,
                             batch_size=sizes.batch_size, lr=sizes.lr, device=device, seed=0)
    discriminator = PatchDiscriminator(**EDITING_DISCRIMINATOR)
    return train_editing(model, editing_train_patches(sizes), task, sizes.epochs, discriminator=discriminator,
                         warmup_epochs=sizes.warmup_epochs, batch_size=sizes.batch_size, lr=sizes.lr,
                         gan_lr=sizes.gan_lr, device=device, seed=0)


def _editing_recipe(task: str) -> Recipe:
    def train(model, sizes, device):
        return train_editing_task(model, task, sizes, device)

    def evaluate(model):
        scores = evaluate_editing(model.cpu().eval(), editing_test_patches(), task, seed=EDITING_MASK_SEED)
        return {"psnr": round(scores["psnr_model"], 3), "ssim": round(scores["ssim_model"], 4),
                "psnr_baseline": round(scores["psnr_baseline"], 3)}

    return Recipe(f"editing_{task}", "07_image_editing", build_editing, train, evaluate,
                  tolerance={"psnr": 0.01, "ssim": 2e-4})


for _task in ("inpainting", "colorization", "uncropping"):
    register(_editing_recipe(_task))
