"""Colour photos: the sample photos shipped in scikit-image and scikit-learn, random patches of them, any
image file, and CIFAR-10 through torchvision when it can be had."""
from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import skimage.data
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.datasets import CIFAR10

from .. import downloads
from ..paths import data_root
from .sources import ImageData, check_root, note_source

# --------------------------------------------------------------------------- photos
# Colour photos that ship inside scikit-image and scikit-learn, split by photo so that test
# patches never come from a training photo.
PHOTO_SPLITS = {
    "train": ("astronaut", "coffee", "rocket", "china", "immunohistochemistry"),
    "test": ("chelsea", "flower"),
}


def _read_photo(name: str) -> np.ndarray:
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image   # here, not at import: scikit-learn takes a second to load
        return load_sample_image(f"{name}.jpg")
    return getattr(skimage.data, name)()


def load_photos(split: str = "train", verbose: bool = True) -> dict[str, torch.Tensor]:
    """The course's colour photos as ``{name: float32 tensor 3 x H x W in [0, 1]}``.

    ``split``: ``"train"`` (astronaut, coffee, rocket, china, immunohistochemistry), ``"test"``
    (chelsea, flower) or ``"all"``.  They ship with scikit-image and scikit-learn: no network.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    names = PHOTO_SPLITS["train"] + PHOTO_SPLITS["test"] if split == "all" else PHOTO_SPLITS[split]
    photos = {}
    for name in names:
        array = _read_photo(name)[..., :3]
        photos[name] = torch.from_numpy(np.array(array)).permute(2, 0, 1).float() / 255.0
    source = "scikit-image/scikit-learn photos"
    if verbose:
        print(f"[lecture_utils] photos {split}: {len(photos)} from {source} ({', '.join(photos)})")
    note_source(source)
    return photos


def random_patches(photos: dict[str, torch.Tensor] | list[torch.Tensor], n: int, size: int,
                   seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    """``n`` random ``size`` x ``size`` crops, N x 3 x size x size in [0, 1], drawn evenly from the photos.

    ``scale`` < 1 first shrinks each photo (antialiased), so a patch covers more of the scene.
    """
    images = list(photos.values()) if isinstance(photos, dict) else list(photos)
    if not images:
        raise ValueError("photos is empty")
    if scale != 1.0:
        images = [torch.nn.functional.interpolate(p[None], scale_factor=scale, mode="bilinear",
                                                  antialias=True, align_corners=False)[0].clamp(0, 1)
                  for p in images]
    for i, p in enumerate(images):
        if p.ndim != 3 or p.shape[0] != 3:
            raise ValueError(f"photo {i} must be 3 x H x W, got shape {tuple(p.shape)}")
        if min(p.shape[1:]) < size:
            raise ValueError(f"photo {i} ({p.shape[1]} x {p.shape[2]}) is smaller than the patch size {size}")
    g = torch.Generator().manual_seed(seed)
    which = torch.arange(n) % len(images)
    out = torch.empty(n, 3, size, size)
    for k in range(n):
        p = images[int(which[k])]
        top = int(torch.randint(0, p.shape[1] - size + 1, (1,), generator=g))
        left = int(torch.randint(0, p.shape[2] - size + 1, (1,), generator=g))
        out[k] = p[:, top:top + size, left:left + size]
    return out




# --------------------------------------------------------------------------- any image (notebook 08)
def load_image(source: str | Path, verbose: bool = True) -> torch.Tensor:
    """One colour image as a float32 tensor 3 x H x W in [0, 1].

    ``source`` is either the name of a course photo (``"chelsea"``, ``"flower"``, ... see
    :data:`PHOTO_SPLITS`) or the path of an image file that Pillow reads (PNG, JPEG, BMP, TIFF, ...).
    Grey images are repeated to three channels and an alpha channel is dropped.  A path that does not
    exist, a folder, or a file that is not a readable image raises ValueError saying which.
    """
    names = PHOTO_SPLITS["train"] + PHOTO_SPLITS["test"]
    if isinstance(source, str) and source in names:
        array = np.array(_read_photo(source)[..., :3])  # a writable copy
        image = torch.from_numpy(array).permute(2, 0, 1).float() / 255.0
        if verbose:
            print(f"[lecture_utils] image {source!r}: course photo, {image.shape[1]} x {image.shape[2]}")
        note_source("scikit-image/scikit-learn photos")
        return image
    if not isinstance(source, (str, Path)):
        raise ValueError(f"source must be a course photo name ({', '.join(names)}) or an image path, "
                         f"got {type(source).__name__}")
    path = Path(source).expanduser()
    if not path.exists():
        raise ValueError(f"image path {str(path)!r} does not exist (and it is not a course photo name: "
                         f"{', '.join(names)})")
    if path.is_dir():
        raise ValueError(f"image path {str(path)!r} is a folder; give an image file (PNG, JPEG, ...)")
    try:
        with Image.open(path) as opened:
            opened.load()
            picture = opened.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ValueError(f"image path {str(path)!r} is not a readable image file "
                         f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else 'empty'})") from error
    array = np.asarray(picture, dtype=np.uint8)
    if array.shape[0] < 8 or array.shape[1] < 8:
        raise ValueError(f"image {str(path)!r} must be at least 8 x 8 pixels, got {array.shape[0]} x {array.shape[1]}")
    image = torch.from_numpy(np.array(array)).permute(2, 0, 1).float() / 255.0
    if verbose:
        print(f"[lecture_utils] image {path.name}: {image.shape[1]} x {image.shape[2]} from {path}")
    note_source(f"image file {path.name}")
    return image




# --------------------------------------------------------------------------- CIFAR-10 (notebook 04, when online)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _fetch_cifar10(root: Path) -> bool:
    """Download torchvision's CIFAR-10 archive (md5-checked) and unpack it into ``root``."""
    archive = downloads.download(CIFAR10.url, root / CIFAR10.filename, what="CIFAR-10",
                                 checksum=("md5", CIFAR10.tgz_md5))
    if archive is None:
        return False
    target = root / CIFAR10.base_folder
    # unpack into a fresh folder beside the target, then move it into place in one step
    with tempfile.TemporaryDirectory(dir=root, prefix=".cifar10.") as unpacked:
        with tarfile.open(archive) as tar:
            tar.extractall(unpacked, filter="data")
        if target.exists():                # an incomplete or corrupted copy
            shutil.rmtree(target)
        os.replace(Path(unpacked) / CIFAR10.base_folder, target)
    archive.unlink()
    return True


def load_cifar10(split: str = "train", root: str | Path | None = None, download: bool = True,
                 verbose: bool = True) -> ImageData | None:
    """CIFAR-10 through torchvision: float32 images N x 3 x 32 x 32 in [0, 1] and int64 labels (0..9).

    The files live under ``root`` (default: the data root) and are downloaded there when online (about
    170 MB).  Offline (``$LECTURE_UTILS_OFFLINE=1``, no network, or a failed download) it returns None
    after a one-line notice: callers fall back to photo patches (:func:`random_patches`).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = check_root(Path(root) if root is not None else data_root())
    try:
        dataset = CIFAR10(str(root), train=split == "train", download=False)
    except RuntimeError:               # absent or corrupted: torchvision checks every file's md5
        dataset = None
        if download and _fetch_cifar10(root):
            dataset = CIFAR10(str(root), train=split == "train", download=False)
    if dataset is None:
        if verbose:
            print("[lecture_utils] CIFAR-10 is not available offline; use photo patches instead")
        return None
    images = torch.from_numpy(np.asarray(dataset.data, dtype=np.uint8)).permute(0, 3, 1, 2).float() / 255.0
    labels = torch.as_tensor(dataset.targets, dtype=torch.int64)
    source = "torchvision CIFAR-10"
    if verbose:
        print(f"[lecture_utils] CIFAR-10 {split}: {len(images):,} images from {source}")
    note_source(source)
    return ImageData(images.contiguous(), labels, source)
