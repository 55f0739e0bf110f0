"""Metrics: distances to the training set, and (with the issue on the VAE) sample quality.

All functions take images as float tensors N x C x H x W in [0, 1].
"""
from __future__ import annotations

import torch


def reconstruction_mse(original: torch.Tensor, reconstruction: torch.Tensor) -> float:
    """Mean squared error per pixel between two batches of the same shape."""
    if original.shape != reconstruction.shape:
        raise ValueError(f"shapes differ: original {tuple(original.shape)}, reconstruction {tuple(reconstruction.shape)}")
    return float(((original.float() - reconstruction.float()) ** 2).mean())


@torch.no_grad()
def nearest_neighbours(queries: torch.Tensor, reference: torch.Tensor, chunk: int = 1024):
    """For each query image, the RMS pixel distance to its nearest reference image, and its index.

    Distances are root-mean-square over pixels (so they lie in [0, 1] for images in [0, 1]).
    """
    if queries.shape[1:] != reference.shape[1:]:
        raise ValueError(f"queries {tuple(queries.shape[1:])} and reference {tuple(reference.shape[1:])} "
                         "must have the same image shape")
    q = queries.reshape(queries.shape[0], -1).float()
    r = reference.reshape(reference.shape[0], -1).float()
    best = torch.empty(q.shape[0])
    index = torch.empty(q.shape[0], dtype=torch.long)
    for i in range(0, q.shape[0], chunk):
        d = torch.cdist(q[i:i + chunk], r)
        value, idx = d.min(dim=1)
        best[i:i + chunk], index[i:i + chunk] = value.cpu(), idx.cpu()
    return best / q.shape[1] ** 0.5, index
