"""Training and scoring image restoration (notebooks 06-07): super-resolution and image editing.

Super-resolution (notebook 06): :func:`train_super_resolution` trains a
:class:`~lecture_utils.models.super_resolution.SuperResolutionNet` with L1, or with L1 plus a PatchGAN
loss (an unconditional :class:`~lecture_utils.models.patchgan.PatchDiscriminator` that judges patches of
high-resolution images); :func:`evaluate_super_resolution` scores it against bicubic interpolation with
PSNR and SSIM on whole held-out photos.

Image editing (notebook 07): :func:`train_editing` is the pix2pix recipe
(:func:`lecture_utils.gans.train_image_to_image`: U-Net + conditional PatchGAN, L1 weight 100)
on patches corrupted by :func:`lecture_utils.data.degrade`, the same code for inpainting, colorization
and uncropping; :func:`baseline` gives each task's simple baseline, which also fills the holes of the
model's input (the model learns a correction of it), and :func:`evaluate_editing` scores model and
baseline on the missing region.
"""
from __future__ import annotations

import copy
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .data import EDITING_TASKS, BatchIterator, check_mask, degrade, low_resolution
from .gans import image_to_image_step, train_image_to_image
from .metrics import psnr, ssim
from .models.editing import editing_input
from .models.patchgan import PatchDiscriminator
from .train import History, adam, autocast_step, batched_inference, fit, scheduled_epoch_end


# --------------------------------------------------------------------------- super-resolution (notebook 06)
def super_resolution_pairs(patches: torch.Tensor, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(low-resolution inputs N x 3 x h x w, high-resolution targets N x 3 x sh x sw) from clean patches."""
    return low_resolution(patches, scale), patches.float()


def dihedral_augment(patches: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Each patch (N x C x H x W, H = W) turned by a random multiple of 90 degrees and mirrored with probability
    1/2: one of the 8 symmetries of a square, drawn per patch from a generator seeded with ``seed``.

    Photos are as plausible turned or mirrored, so a handful of photos yields views in every orientation: edges
    and textures the network meets at test time in a direction the training photos lack.  Returns a new tensor.
    """
    if not torch.is_tensor(patches) or patches.ndim != 4 or patches.shape[2] != patches.shape[3]:
        shape = tuple(patches.shape) if torch.is_tensor(patches) else type(patches).__name__
        raise ValueError(f"patches must be square, N x C x H x H, got shape {shape}")
    g = torch.Generator().manual_seed(seed)
    turns = torch.randint(0, 4, (patches.shape[0],), generator=g)
    mirror = torch.randint(0, 2, (patches.shape[0],), generator=g)
    out = torch.empty_like(patches)
    for k in range(patches.shape[0]):
        turned = torch.rot90(patches[k], int(turns[k]), (1, 2))
        out[k] = turned.flip(2) if mirror[k] else turned
    return out


def super_resolution_step(model: nn.Module, opt_g: torch.optim.Optimizer, *, discriminator: nn.Module | None = None,
                          opt_d: torch.optim.Optimizer | None = None, l1_weight: float = 100.0) -> Callable:
    """One update on a batch ``(low, high)``: L1 alone, or L1 + a PatchGAN loss.

    With a discriminator D (logits per patch of a high-resolution image):

        loss_D = BCE(D(y), 1) + BCE(D(G(x)), 0)
        loss_G = -log D(G(x)) + l1_weight * |G(x) - y|_1            (pix2pix's weighting, L1 weight 100)

    Without one, ``loss_g = l1_weight * l1``.  Returns detached scalars ``l1``, ``loss_g`` and, with D,
    ``loss_d``, ``adv_g``, ``d_real``, ``d_fake``.  This is pix2pix's update
    (:func:`lecture_utils.gans.image_to_image_step`) with an unconditional D: the low-resolution
    input has another size than the output, so D judges high-resolution images alone.
    """
    return image_to_image_step(model, opt_g, discriminator=discriminator, opt_d=opt_d, l1_weight=l1_weight,
                               conditional=False)


def train_super_resolution(model: nn.Module, patches: torch.Tensor, epochs: int, *,
                           discriminator: nn.Module | None = None, batch_size: int = 16, lr: float = 5e-4,
                           betas: tuple[float, float] = (0.9, 0.999), l1_weight: float = 100.0,
                           cosine: bool = True, device: torch.device | str = "cpu", seed: int = 0,
                           progress: bool | None = None) -> History:
    """Train ``model`` to undo ``low_resolution(patches, model.scale)`` (patches N x 3 x H x W in [0, 1]).

    L1 only, or with a ``discriminator`` (e.g. ``PatchDiscriminator(in_channels=3)``) also the PatchGAN
    loss; Adam(lr, betas) for both.  ``cosine``: the learning rates decay to 0 over the epochs along a
    cosine (Loshchilov & Hutter, 2017), which gains a few tenths of a dB at the end of a short run.
    Calling it again continues training the same weights (with fresh optimisers).
    """
    low, high = super_resolution_pairs(patches, model.scale)
    device = torch.device(device)
    model.to(device)
    opt_g = adam(model.parameters(), lr, betas, reference_on_cpu=True)
    opt_d, state = None, {"model": model, "opt_g": opt_g}
    if discriminator is not None:
        discriminator.to(device)
        opt_d = adam(discriminator.parameters(), lr, betas, reference_on_cpu=True)
        state.update(discriminator=discriminator, opt_d=opt_d)
    batches = BatchIterator(low, high, batch_size=batch_size, seed=seed, device=device)
    step = autocast_step(super_resolution_step(model, opt_g, discriminator=discriminator, opt_d=opt_d,
                                               l1_weight=l1_weight), device)
    schedulers = [torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
                  for opt in (opt_g, opt_d) if opt is not None and cosine]
    for i, scheduler in enumerate(schedulers):
        state[f"scheduler_{i}"] = scheduler
    return fit(step, batches, epochs, state=state, progress=progress,
               on_epoch_end=scheduled_epoch_end(opt_g, schedulers),
               desc=f"x{model.scale} {'L1 + PatchGAN' if discriminator is not None else 'L1'}")


def add_patchgan(model: nn.Module, patches: torch.Tensor, epochs: int, *, features: int = 32, n_layers: int = 2,
                 lr: float = 1e-4, betas: tuple[float, float] = (0.5, 0.999), **options) -> tuple[nn.Module, History]:
    """A copy of a trained ``model``, trained further with L1 + PatchGAN (SRGAN's recipe: start from the
    L1 network, then add the adversarial loss).  Returns ``(gan_model, history)``; ``model`` is unchanged."""
    gan_model = copy.deepcopy(model)
    discriminator = PatchDiscriminator(in_channels=3, features=features, n_layers=n_layers)
    history = train_super_resolution(gan_model, patches, epochs, discriminator=discriminator, lr=lr, betas=betas,
                                     **options)
    return gan_model, history


def bicubic_upscale(images: torch.Tensor, scale: int) -> torch.Tensor:
    """The baseline: bicubic interpolation ``scale`` times larger (N x C x h x w -> N x C x sh x sw), clamped to [0, 1]."""
    if images.ndim != 4:
        raise ValueError(f"images must be N x C x H x W, got shape {tuple(images.shape)}")
    return F.interpolate(images, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)


def upscale(model: nn.Module, images: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """The model's upscaling of ``images`` (N x C x h x w in [0, 1], or one C x h x w) in eval mode on its
    device, returned on the CPU and clamped to [0, 1]."""
    if images.ndim not in (3, 4):
        raise ValueError(f"images must be N x C x h x w or C x h x w, got shape {tuple(images.shape)}")
    out = batched_inference(model, images if images.ndim == 4 else images[None], batch_size=batch_size).clamp(0, 1)
    return out if images.ndim == 4 else out[0]


def crop_to_multiple(image: torch.Tensor, multiple: int) -> torch.Tensor:
    """Crop a C x H x W (or N x C x H x W) image at the bottom and right so H and W are multiples of ``multiple``."""
    h, w = image.shape[-2:]
    return image[..., :h - h % multiple, :w - w % multiple]


def evaluate_super_resolution(methods: dict[str, nn.Module | str], photos: dict[str, torch.Tensor], scale: int,
                              shave: int | None = None) -> dict[str, dict[str, float]]:
    """PSNR and SSIM (data_range 1) of each method on whole photos, averaged over the photos.

    ``methods``: ``{name: model or "bicubic"}``.  Each photo (3 x H x W in [0, 1]) is cropped to a multiple
    of ``scale``, shrunk with :func:`~lecture_utils.data.low_resolution`, upscaled by each method, and scored
    without a border of ``shave`` pixels (default ``scale``, the usual convention: borders lack context).
    Returns ``{name: {"psnr": dB, "ssim": ..., "per_photo": {photo: (psnr, ssim)}}}``.
    """
    shave = scale if shave is None else shave
    results = {name: {"per_photo": {}} for name in methods}
    for photo_name, photo in photos.items():
        high = crop_to_multiple(photo, scale)[None]
        low = low_resolution(high, scale)
        for name, method in methods.items():
            out = bicubic_upscale(low, scale) if method == "bicubic" else upscale(method, low)
            inner = (..., slice(shave, -shave or None), slice(shave, -shave or None))
            results[name]["per_photo"][photo_name] = (psnr(out[inner], high[inner]), ssim(out[inner], high[inner]))
    for name, record in results.items():
        values = list(record["per_photo"].values())
        record["psnr"] = sum(v[0] for v in values) / len(values)
        record["ssim"] = sum(v[1] for v in values) / len(values)
    return results


# --------------------------------------------------------------------------- image editing (notebook 07)
def mean_fill(corrupted: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Inpainting baseline: every missing pixel gets the mean colour of the image's known pixels."""
    mask = check_mask(mask, corrupted)
    known = 1 - mask
    mean = (corrupted * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True).clamp(min=1)
    return corrupted * known + mean * mask


def edge_replicate(corrupted: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Uncropping baseline: extend the known rectangle by repeating its edge pixels outwards.

    The known pixels of each image must form a rectangle (what :func:`~lecture_utils.data.side_masks`
    leaves); each pixel takes the value of the nearest known pixel in its row or column (clamped coordinates).
    """
    mask = check_mask(mask, corrupted)
    out = corrupted.clone()
    for k in range(corrupted.shape[0]):
        known = mask[k, 0] == 0
        rows, cols = known.any(1).nonzero().flatten(), known.any(0).nonzero().flatten()
        if len(rows) == 0:
            raise ValueError(f"image {k} has no known pixels to replicate")
        top, bottom, left, right = int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())
        if not bool(known[top:bottom + 1, left:right + 1].all()):
            raise ValueError(f"the known pixels of image {k} do not form a rectangle; edge replication is for "
                             "uncropping masks")
        r = torch.arange(corrupted.shape[2]).clamp(top, bottom)
        c = torch.arange(corrupted.shape[3]).clamp(left, right)
        out[k] = corrupted[k][:, r][:, :, c]
    return out


def baseline(task: str, corrupted: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each task's simple baseline: mean fill (inpainting), the greyscale image copied into every channel
    (colorization: the corrupted image itself), edge replication (uncropping)."""
    if task not in EDITING_TASKS:
        raise ValueError(f"task must be one of {EDITING_TASKS}, got {task!r}")
    if task == "inpainting":
        return mean_fill(corrupted, mask)
    if task == "uncropping":
        return edge_replicate(corrupted, mask)
    return corrupted.clone()


def model_input(task: str, corrupted: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The editing model's input N x 4 x H x W: the corrupted images with their missing pixels filled by the
    task's :func:`baseline`, and the mask."""
    return editing_input(baseline(task, corrupted, mask).clamp(0, 1), mask)


@torch.no_grad()
def restore(model: nn.Module, task: str, corrupted: torch.Tensor, mask: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """An :class:`~lecture_utils.models.editing.EditingUNet`'s restoration of ``corrupted`` images (N x 3 x H x W)
    with their ``mask`` for ``task`` (eval mode), on the CPU, in [0, 1]."""
    return batched_inference(model, model_input(task, corrupted, mask), batch_size=batch_size).clamp(0, 1)


def editing_pairs(patches: torch.Tensor, task: str, seed: int = 0, **options) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs N x 4 x H x W = cat(baseline-filled, mask), targets = the clean patches) for one task, each patch
    with its own random mask (see :func:`~lecture_utils.data.degrade`)."""
    corrupted, mask = degrade(patches, task, seed=seed, **options)
    return model_input(task, corrupted, mask), patches.float()


def train_editing(model: nn.Module, patches: torch.Tensor, task: str, epochs: int, *,
                  discriminator: nn.Module | None = None, warmup_epochs: int = 0, masks_per_patch: int = 1,
                  seed: int = 0, gan_lr: float | None = None, **options) -> History:
    """The pix2pix recipe for one editing task: corrupt ``patches`` with ``task`` and train ``model``
    (an :class:`~lecture_utils.models.editing.EditingUNet`) to restore them with L1 (weight 100) plus, with
    a ``discriminator`` (``PatchDiscriminator(in_channels=7)``: it sees the 4-channel input and the 3-channel
    output), the conditional PatchGAN loss.

    ``warmup_epochs`` of the ``epochs`` train with L1 alone before the discriminator joins (as SRGAN starts
    from its L1 network): a GAN that starts against an untrained generator pulls it away from the data.
    ``gan_lr`` (default: the ``lr`` option) is the learning rate of both networks once the discriminator joins.
    ``masks_per_patch`` > 1 repeats each patch with fresh masks.  ``options`` go to
    :func:`~lecture_utils.gans.train_image_to_image` (batch_size, lr, device, ...).  The history
    concatenates both phases.
    """
    if not 0 <= warmup_epochs <= epochs:
        raise ValueError(f"warmup_epochs must lie in [0, epochs = {epochs}], got {warmup_epochs!r}")
    inputs, targets = [], []
    for r in range(masks_per_patch):
        x, y = editing_pairs(patches, task, seed=seed + 1000 * r)
        inputs.append(x)
        targets.append(y)
    inputs, targets = torch.cat(inputs), torch.cat(targets)
    l1_weight = options.pop("l1_weight", 100.0)
    history = History()
    phases = [(warmup_epochs, None), (epochs - warmup_epochs, discriminator)] if discriminator is not None \
        else [(epochs, None)]
    for phase, (n, d) in enumerate(phases):
        if n == 0:
            continue
        phase_options = dict(options, lr=gan_lr) if d is not None and gan_lr is not None else options
        part = train_image_to_image(model, inputs, targets, n, discriminator=d, l1_weight=l1_weight,
                                    seed=seed + phase, desc=f"{task} ({'L1 + PatchGAN' if d is not None else 'L1'})",
                                    **phase_options)
        for record in part.records:
            history.records.append({**record, "epoch": len(history.records) + 1})
    return history


def evaluate_editing(model: nn.Module, patches: torch.Tensor, task: str, seed: int = 12345) -> dict:
    """Score ``model`` and the task's :func:`baseline` on the missing region of held-out ``patches``.

    Returns ``psnr_model``, ``psnr_baseline``, ``ssim_model``, ``ssim_baseline`` (masked, data_range 1)
    and the tensors ``corrupted``, ``mask``, ``restored``, ``baseline``, ``target`` for figures.
    """
    corrupted, mask = degrade(patches, task, seed=seed)
    restored = restore(model, task, corrupted, mask)
    simple = baseline(task, corrupted, mask).clamp(0, 1)
    target = patches.float()
    return {"psnr_model": psnr(restored, target, mask=mask), "psnr_baseline": psnr(simple, target, mask=mask),
            "ssim_model": ssim(restored, target, mask=mask), "ssim_baseline": ssim(simple, target, mask=mask),
            "corrupted": corrupted, "mask": mask, "restored": restored, "baseline": simple, "target": target}
