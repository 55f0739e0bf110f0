"""A small MNIST classifier: the course's ruler for sample quality (notebooks 02-05).

Its 64-dimensional penultimate features feed the Fréchet distance; its predictions give class
coverage, confidence and conditional accuracy.  Trained by ``scripts/train_metrics_classifier.py``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_input_dtype, check_not_empty, check_tensor


class MNISTClassifier(nn.Module):
    """Two conv blocks and two linear layers; ~105k parameters (~0.4 MB in float32).

    Input: N x 1 x 28 x 28 (or 32 x 32, resized) in [0, 1].  ``features`` gives N x 64.
    """

    feature_size = 64

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True),  # N x 16 x 28 x 28
            nn.MaxPool2d(2),                                                             # N x 16 x 14 x 14
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(inplace=True),  # N x 32 x 14 x 14
            nn.MaxPool2d(2),                                                             # N x 32 x 7 x 7
            nn.Flatten(),                                                                # N x 1568
            nn.Dropout(0.3),
            nn.Linear(32 * 7 * 7, self.feature_size), nn.ReLU(inplace=True),             # N x 64 features
        )
        self.head = nn.Linear(self.feature_size, 10)                                     # N x 10 logits

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Checks shape and dtype (metadata only) and resizes 32 x 32 digits to 28 x 28."""
        check_tensor(images, "images")
        if images.ndim != 4 or images.shape[1] != 1 or tuple(images.shape[2:]) not in ((28, 28), (32, 32)):
            raise ValueError(f"images must be N x 1 x 28 x 28 or N x 1 x 32 x 32 in [0, 1], got shape {tuple(images.shape)}")
        check_not_empty(images, "images")
        check_input_dtype(images, "images", self)
        if images.shape[-1] == 32:
            images = F.interpolate(images, size=(28, 28), mode="bilinear", antialias=True, align_corners=False)
        return images

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(self.prepare(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))
