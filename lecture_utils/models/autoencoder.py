"""PCA and deep autoencoders (Hinton & Salakhutdinov, 2006) for 1 x 28 x 28 images in [0, 1].

Both autoencoders map an image to a ``code_size``-dimensional code and back; the decoder
returns *logits* (train with a Bernoulli cross-entropy on logits), and ``reconstruct`` gives
pixel values in [0, 1].
"""
from __future__ import annotations

import torch
from torch import nn

from ..checks import check_input_dtype


def _check_images(x: torch.Tensor, shape=(1, 28, 28), module: nn.Module | None = None) -> None:
    if x.ndim != 4 or tuple(x.shape[1:]) != shape:
        raise ValueError(f"images must be N x {' x '.join(map(str, shape))}, got shape {tuple(x.shape)}")
    if module is not None:
        check_input_dtype(x, "x", module)


class PCA(nn.Module):
    """Principal component analysis as a linear autoencoder: code = W^T (x - mean), x' = W code + mean.

    ``fit`` takes the top ``code_size`` right singular vectors of the centred data (torch.linalg.svd).
    """

    def __init__(self, code_size: int):
        super().__init__()
        if code_size < 1:
            raise ValueError(f"code_size must be at least 1, got {code_size}")
        self.code_size = code_size
        self.register_buffer("mean", torch.zeros(784))
        self.register_buffer("components", torch.zeros(784, code_size))

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> "PCA":
        _check_images(x)
        flat = x.reshape(x.shape[0], -1).double()
        mean = flat.mean(0)
        _, _, vh = torch.linalg.svd(flat - mean, full_matrices=False)
        self.mean.copy_(mean.float())
        self.components.copy_(vh[: self.code_size].T.float())
        return self

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x)
        return (x.reshape(x.shape[0], -1) - self.mean) @ self.components

    def reconstruct_from_code(self, code: torch.Tensor) -> torch.Tensor:
        return (code @ self.components.T + self.mean).reshape(-1, 1, 28, 28)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.reconstruct_from_code(self.encode(x))


class MLPAutoencoder(nn.Module):
    """A fully connected autoencoder: 784 -> hidden... -> code -> ...hidden -> 784 logits."""

    def __init__(self, code_size: int = 2, hidden: tuple[int, ...] = (512, 256)):
        super().__init__()
        self.code_size = code_size
        sizes = (784, *hidden)
        layers: list[nn.Module] = [nn.Flatten()]                                      # N x 784
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU(inplace=True)]                        # N x hidden[i]
        layers.append(nn.Linear(sizes[-1], code_size))                                # N x code_size
        self.encoder = nn.Sequential(*layers)
        layers = []
        back = (code_size, *reversed(hidden))
        for a, b in zip(back[:-1], back[1:]):
            layers += [nn.Linear(a, b), nn.ReLU(inplace=True)]                        # N x hidden[-i]
        layers += [nn.Linear(back[-1], 784), nn.Unflatten(1, (1, 28, 28))]           # N x 1 x 28 x 28 logits
        self.decoder = nn.Sequential(*layers)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, module=self)
        return self.encoder(x)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """Logits of the pixels, N x 1 x 28 x 28."""
        if code.ndim != 2 or code.shape[1] != self.code_size:
            raise ValueError(f"code must be N x {self.code_size}, got shape {tuple(code.shape)}")
        check_input_dtype(code, "code", self)
        return self.decoder(code)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self(x))

    @torch.no_grad()
    def reconstruct_from_code(self, code: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decode(code))


class ConvAutoencoder(MLPAutoencoder):
    """A convolutional autoencoder: two strided convolutions down, two transposed convolutions up."""

    def __init__(self, code_size: int = 2, channels: int = 32):
        nn.Module.__init__(self)
        self.code_size = code_size
        c = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c, 4, stride=2, padding=1), nn.ReLU(inplace=True),           # N x c x 14 x 14
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1), nn.ReLU(inplace=True),       # N x 2c x 7 x 7
            nn.Flatten(),                                                             # N x 2c*49
            nn.Linear(2 * c * 49, code_size),                                         # N x code_size
        )
        self.decoder = nn.Sequential(
            nn.Linear(code_size, 2 * c * 49), nn.ReLU(inplace=True),                  # N x 2c*49
            nn.Unflatten(1, (2 * c, 7, 7)),                                           # N x 2c x 7 x 7
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), nn.ReLU(inplace=True),  # N x c x 14 x 14
            nn.ConvTranspose2d(c, 1, 4, stride=2, padding=1),                         # N x 1 x 28 x 28 logits
        )
