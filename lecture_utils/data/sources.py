"""What every loader shares: the :class:`ImageData` it returns, the record of the sources a notebook
loaded (for its results file), and the check of a data root folder."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

# Every source a notebook loaded, in order; the results file reports them.
_sources_used: list[str] = []


def sources_used() -> list[str]:
    """The data sources loaded so far in this process (for the results file)."""
    return list(dict.fromkeys(_sources_used))


def note_source(source: str) -> None:
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


def check_root(root: Path) -> Path:
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise ValueError(f"data root {str(root)!r} must be a folder, but it is a file")
    if root.exists() and not os.access(root, os.R_OK | os.X_OK):
        raise ValueError(f"data root {str(root)!r} is not readable; set LECTURE_UTILS_DATA to a readable folder")
    return root
