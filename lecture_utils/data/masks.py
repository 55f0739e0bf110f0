"""Masks and degradations: the corruptions that image restoration (notebooks 06-07) learns to undo."""
from __future__ import annotations

import torch

from ..checks import check_float, check_range

# One API for the corruptions of image restoration.  Each editing task takes clean images
# (N x 3 x H x W in [0, 1]) and returns ``(corrupted, mask)``: the corrupted images (N x 3 x H x W, missing
# pixels set to 0, a greyscale image copied into the three channels) and the pixel mask (N x 1 x H x W,
# 1 = missing or to be restored, 0 = known) that losses and metrics use.  Super-resolution's corruption,
# :func:`low_resolution`, changes the size instead, so it has no mask.
EDITING_TASKS = ("inpainting", "colorization", "uncropping")
MASK_SHAPES = ("boxes", "strokes", "mixed")
SIDES = ("left", "right", "top", "bottom")
LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601, as Pillow's convert("L")
STROKE_VERTICES = (3, 6)              # points per brush stroke (inclusive range)
STROKE_WIDTH = (0.06, 0.12)           # brush width as a fraction of the image's shorter side


def check_colour_images(images: torch.Tensor, name: str = "images", min_size: int = 1) -> torch.Tensor:
    if not torch.is_tensor(images) or images.ndim not in (3, 4):
        shape = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
        raise ValueError(f"{name} must be a tensor N x 3 x H x W (or 3 x H x W) in [0, 1], got {shape}")
    if images.ndim == 3:
        images = images[None]
    if images.shape[1] != 3:
        raise ValueError(f"{name} must have 3 colour channels (N x 3 x H x W), got {images.shape[1]} "
                         f"channels in shape {tuple(images.shape)}")
    if min(images.shape[2:]) < min_size:
        raise ValueError(f"{name} must be at least {min_size} x {min_size} pixels, got "
                         f"{images.shape[2]} x {images.shape[3]}")
    if images.numel():
        check_float(images, name)
        check_range(images, name, 0.0, 1.0, hint="divide 8-bit images by 255")
    return images.float()


def check_mask(mask: torch.Tensor, images: torch.Tensor, name: str = "mask") -> torch.Tensor:
    """A pixel mask for ``images`` (N x C x H x W): N x 1 x H x W of 0 (known) and 1 (missing), as float32.

    A single mask (1 x H x W or H x W) is repeated for every image; any other shape raises ValueError.
    """
    n, _, h, w = images.shape
    if not torch.is_tensor(mask):
        raise ValueError(f"{name} must be a tensor N x 1 x H x W, got {type(mask).__name__}")
    if mask.ndim == 2:
        mask = mask[None]
    if mask.ndim == 3:
        mask = mask[None].expand(n, -1, -1, -1) if mask.shape[0] == 1 else mask
    if mask.ndim != 4 or mask.shape[0] != n or mask.shape[1] != 1 or tuple(mask.shape[2:]) != (h, w):
        raise ValueError(f"{name} must be {n} x 1 x {h} x {w} (one channel, the images' height and width), "
                         f"got shape {tuple(mask.shape)}")
    mask = mask.float()
    if bool(((mask != 0) & (mask != 1)).any()):
        raise ValueError(f"{name} must hold only 0 (known pixel) and 1 (missing pixel)")
    return mask


def _mask_setup(n, size, seed, fractions=None) -> tuple[int, int, torch.Tensor, torch.Generator]:
    """Checks the arguments every mask maker shares; returns H, W, N empty masks (N x 1 x H x W) and the seeded
    generator."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive int (the number of masks), got {n!r}")
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if not all(isinstance(v, int) and v >= 1 for v in (h, w)):
        raise ValueError(f"size must be a positive int or a pair (H, W) of positive ints, got {size!r}")
    if fractions is not None and not 0 < fractions[0] <= fractions[1] < 1:
        raise ValueError(f"need 0 < min_fraction <= max_fraction < 1, got {fractions[0]}, {fractions[1]}")
    return h, w, torch.zeros(n, 1, h, w), torch.Generator().manual_seed(seed)


def box_masks(n: int, size: tuple[int, int] | int, seed: int = 0, min_fraction: float = 0.25,
              max_fraction: float = 0.5) -> torch.Tensor:
    """``n`` masks N x 1 x H x W, each one axis-aligned box of missing pixels (1) at a random place.

    Each side of a box is a random fraction in [min_fraction, max_fraction] of the image's side.
    """
    h, w, masks, g = _mask_setup(n, size, seed, (min_fraction, max_fraction))
    for k in range(n):
        fh, fw = (min_fraction + (max_fraction - min_fraction) * torch.rand(2, generator=g)).tolist()
        bh, bw = max(1, round(fh * h)), max(1, round(fw * w))
        top = int(torch.randint(0, h - bh + 1, (1,), generator=g))
        left = int(torch.randint(0, w - bw + 1, (1,), generator=g))
        masks[k, 0, top:top + bh, left:left + bw] = 1
    return masks


def stroke_masks(n: int, size: tuple[int, int] | int, seed: int = 0, strokes: tuple[int, int] = (1, 3)) -> torch.Tensor:
    """``n`` free-form masks N x 1 x H x W: random brush strokes, as in DeepFill v2 (Yu et al., 2019).

    Each mask has a random number of ``strokes`` (inclusive range); a stroke is a polyline through
    3-6 random points (:data:`STROKE_VERTICES`), drawn with a round brush whose width is 6-12% of the
    image's shorter side (:data:`STROKE_WIDTH`).
    """
    vertices, width = STROKE_VERTICES, STROKE_WIDTH
    h, w, masks, g = _mask_setup(n, size, seed)
    rows = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w)
    cols = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w)
    pixels = torch.stack([rows, cols], -1)                                       # H x W x 2
    for k in range(n):
        for _ in range(int(torch.randint(strokes[0], strokes[1] + 1, (1,), generator=g))):
            count = int(torch.randint(vertices[0], vertices[1] + 1, (1,), generator=g))
            points = torch.rand(count, 2, generator=g) * torch.tensor([h - 1, w - 1])
            radius = 0.5 * min(h, w) * (width[0] + (width[1] - width[0]) * float(torch.rand(1, generator=g)))
            for a, b in zip(points[:-1], points[1:]):
                segment = b - a
                t = ((pixels - a) @ segment / segment.dot(segment).clamp(min=1e-6)).clamp(0, 1)
                distance = (pixels - (a + t[..., None] * segment)).norm(dim=-1)   # H x W
                masks[k, 0][distance <= radius] = 1
    return masks


def side_masks(n: int, size: tuple[int, int] | int, seed: int = 0, min_fraction: float = 0.25,
               max_fraction: float = 0.5) -> torch.Tensor:
    """``n`` uncropping masks N x 1 x H x W: a band along one side (left, right, top or bottom, at random) is missing.

    The band covers a random fraction in [min_fraction, max_fraction] of the image's width or height.
    """
    h, w, masks, g = _mask_setup(n, size, seed, (min_fraction, max_fraction))
    for k in range(n):
        side = SIDES[int(torch.randint(0, len(SIDES), (1,), generator=g))]
        fraction = min_fraction + (max_fraction - min_fraction) * float(torch.rand(1, generator=g))
        band = max(1, round(fraction * (w if side in ("left", "right") else h)))
        region = {"left": (slice(None), slice(0, band)), "right": (slice(None), slice(w - band, w)),
                  "top": (slice(0, band), slice(None)), "bottom": (slice(h - band, h), slice(None))}[side]
        masks[k, 0][region] = 1
    return masks


def greyscale(images: torch.Tensor) -> torch.Tensor:
    """Luminance Y = 0.299 R + 0.587 G + 0.114 B of images N x 3 x H x W in [0, 1]: N x 1 x H x W."""
    images = check_colour_images(images)
    weights = torch.tensor(LUMA_WEIGHTS, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images * weights).sum(1, keepdim=True)


def degrade(images: torch.Tensor, task: str, seed: int = 0, mask: torch.Tensor | None = None,
            mask_shape: str = "mixed") -> tuple[torch.Tensor, torch.Tensor]:
    """Corrupt clean images for an editing task; returns ``(corrupted, mask)``.

    Args:
        images: N x 3 x H x W in [0, 1] (or one image 3 x H x W).
        task: ``"inpainting"`` (holes: boxes and/or free-form strokes), ``"colorization"`` (the colour is
            missing: greyscale copied into the three channels, the mask is all ones) or ``"uncropping"``
            (a band along one side is missing).
        seed: the random masks are drawn from it (the same seed gives the same masks).
        mask: use this mask (N x 1 x H x W, or one H x W / 1 x H x W mask for all) instead of drawing one
            (inpainting and uncropping).
        mask_shape: for inpainting, ``"boxes"``, ``"strokes"`` or ``"mixed"`` (alternating).

    Returns:
        corrupted (N x 3 x H x W, missing pixels 0) and mask (N x 1 x H x W float, 1 = missing).
    """
    if task not in EDITING_TASKS:
        raise ValueError(f"task must be one of {EDITING_TASKS}, got {task!r}")
    images = check_colour_images(images, min_size=4)
    n, _, h, w = images.shape
    if n == 0:
        raise ValueError("images must hold at least one image, got an empty batch of shape "
                         f"{tuple(images.shape)}")
    if task == "colorization":
        if mask is not None:
            raise ValueError("colorization takes no mask: every pixel's colour is missing")
        return greyscale(images).expand(-1, 3, -1, -1).contiguous(), torch.ones(n, 1, h, w, device=images.device)
    if mask is None:
        if task == "uncropping":
            mask = side_masks(n, (h, w), seed=seed)
        elif mask_shape == "boxes":
            mask = box_masks(n, (h, w), seed=seed)
        elif mask_shape == "strokes":
            mask = stroke_masks(n, (h, w), seed=seed)
        elif mask_shape == "mixed":
            mask = box_masks(n, (h, w), seed=seed)
            mask[1::2] = stroke_masks(n, (h, w), seed=seed + 1)[1::2]
        else:
            raise ValueError(f"mask_shape must be one of {MASK_SHAPES}, got {mask_shape!r}")
    mask = check_mask(mask, images).to(images.device)
    return images * (1 - mask), mask


def low_resolution(images: torch.Tensor, scale: int) -> torch.Tensor:
    """Super-resolution's corruption: shrink N x 3 x H x W images ``scale`` times (bicubic, antialiased).

    H and W must be multiples of ``scale``; returns N x 3 x H/scale x W/scale in [0, 1].
    """
    if not isinstance(scale, int) or scale < 2:
        raise ValueError(f"scale must be an int >= 2, got {scale!r}")
    images = check_colour_images(images, min_size=scale)
    h, w = images.shape[2:]
    if h % scale or w % scale:
        raise ValueError(f"height and width must be multiples of scale = {scale}, got {h} x {w} "
                         f"(crop to {h - h % scale} x {w - w % scale} first)")
    small = torch.nn.functional.interpolate(images, size=(h // scale, w // scale), mode="bicubic",
                                            antialias=True, align_corners=False)
    return small.clamp(0, 1)
