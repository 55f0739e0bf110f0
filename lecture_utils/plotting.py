"""Figures the notebooks share: image grids, latent scatter plots, loss curves, panels.

Every function draws into a figure of fixed size and returns it (``plt.show()`` displays it),
so that an executed notebook, a test and a slide look the same.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torchvision.utils import make_grid

GRID_SIZE = (6, 6)
WIDE_SIZE = (10, 4)
SCATTER_SIZE = (6, 5)


def _as_images(images) -> torch.Tensor:
    images = torch.as_tensor(images).detach().float().cpu()
    if images.ndim == 3:
        images = images.unsqueeze(1)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be N x C x H x W with C = 1 or 3, got shape {tuple(images.shape)}")
    return images


def grid_array(images, nrow: int = 8, padding: int = 2, value_range: tuple[float, float] = (0, 1)) -> np.ndarray:
    """An H x W x 3 array in [0, 1] tiling ``images`` (torchvision's ``make_grid``)."""
    images = _as_images(images)
    low, high = value_range
    images = ((images - low) / (high - low)).clamp(0, 1)
    grid = make_grid(images, nrow=nrow, padding=padding, pad_value=1.0)
    return grid.permute(1, 2, 0).numpy()


def image_grid(images, nrow: int = 8, title: str | None = None, ax=None,
               value_range: tuple[float, float] = (0, 1), figsize=GRID_SIZE):
    """Show a batch of images (N x C x H x W) as one grid; returns the figure."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=figsize)
    ax.imshow(grid_array(images, nrow=nrow, value_range=value_range), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def image_rows(rows: Sequence, labels: Sequence[str], title: str | None = None,
               value_range: tuple[float, float] = (0, 1), width: float = 10.0):
    """Several batches of the same length, one row each with a label (inputs, outputs, truth)."""
    if len(rows) != len(labels):
        raise ValueError(f"got {len(rows)} rows but {len(labels)} labels")
    n = _as_images(rows[0]).shape[0]
    fig, axes = plt.subplots(len(rows), 1, figsize=(width, 1.2 * len(rows) * max(1.0, 10 / n)), squeeze=False)
    for ax, row, label in zip(axes[:, 0], rows, labels):
        ax.imshow(grid_array(row, nrow=n, value_range=value_range), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def latent_scatter(codes, labels, title: str | None = None, ax=None, figsize=SCATTER_SIZE, s: float = 6):
    """2-D codes (N x 2) coloured by integer label, with a legend of the classes."""
    codes = torch.as_tensor(codes).detach().float().cpu().numpy()
    labels = torch.as_tensor(labels).detach().cpu().numpy()
    if codes.ndim != 2 or codes.shape[1] != 2:
        raise ValueError(f"codes must be N x 2, got shape {codes.shape}")
    if labels.shape[0] != codes.shape[0]:
        raise ValueError(f"labels must have {codes.shape[0]} entries, got {labels.shape[0]}")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=figsize)
    scatter = ax.scatter(codes[:, 0], codes[:, 1], c=labels, cmap="tab10", s=s, vmin=-0.5, vmax=9.5)
    ax.legend(*scatter.legend_elements(), title="digit", loc="best", fontsize="small", markerscale=0.8)
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title)
    return fig


def loss_curves(history, keys: Sequence[str] | None = None, title: str | None = None, ax=None,
                figsize=WIDE_SIZE, logy: bool = False):
    """Per-epoch curves from a :class:`~lecture_utils.train.History` (or a list of records)."""
    records = history.records if hasattr(history, "records") else list(history)
    if not records:
        raise ValueError("history is empty: train for at least one epoch first")
    skip = {"epoch", "steps", "images", "wall_time_s", "images_per_s"}
    keys = list(keys) if keys is not None else [k for k in records[0] if k not in skip]
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=figsize)
    epochs = [r["epoch"] for r in records]
    for key in keys:
        ax.plot(epochs, [r[key] for r in records], marker="o", ms=3, label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if logy:
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return fig
