"""Variational autoencoders (Kingma & Welling, 2014) for 1 x 28 x 28 images in [0, 1].

The encoder gives the parameters of a diagonal Gaussian q(z|x) = N(mu(x), diag(sigma^2(x))):
``encode(x) -> (mu, logvar)``, both N x latent_size.  The decoder maps a code z to the
parameters of p(x|z):

* ``likelihood="bernoulli"`` (default): ``decode(z)`` returns the pixels' *logits*
  (N x 1 x 28 x 28); -log p(x|z) is the binary cross-entropy summed over pixels, the quantity
  pytorch/examples reports (grey levels in [0, 1] used as Bernoulli targets: not a normalised density on
  grey levels, so these nats compare with pytorch/examples' VAE, not with binarised-MNIST papers);
* ``likelihood="gaussian"``: ``decode(z)`` returns the pixel *means* (N x 1 x 28 x 28) and the
  model learns one log standard deviation per pixel (``log_sigma``, 1 x 28 x 28).

Every VAE here has the same interface, which the losses (:mod:`lecture_utils.losses`), the
training step (:func:`lecture_utils.autoencoders.vae_step`) and the widgets rely on::

    mu, logvar = model.encode(x)                 # N x latent_size each
    z = model.reparameterise(mu, logvar)          # N x latent_size, differentiable in mu, logvar
    out = model.decode(z)                         # N x 1 x 28 x 28 (logits or means)
    nll = model.reconstruction_nll(x, out)        # N, -log p(x|z) in nats
    images = model.decode_images(z)               # N x 1 x 28 x 28 in [0, 1] (the decoder's mean)
"""
from __future__ import annotations

import torch
from torch import nn

from ..checks import check_input_dtype
from ..losses import bernoulli_nll, gaussian_nll
from .autoencoder import _check_images

LIKELIHOODS = ("bernoulli", "gaussian")


class VAE(nn.Module):
    """Shared code of the VAEs: reparameterisation, likelihood, sampling.  Subclasses build
    ``self.encoder`` (image -> N x 2*latent_size: mean and log-variance side by side) and
    ``self.decoder`` (N x latent_size -> N x 1 x 28 x 28)."""

    def __init__(self, latent_size: int, likelihood: str = "bernoulli"):
        super().__init__()
        if not isinstance(latent_size, int) or latent_size < 1:
            raise ValueError(f"latent_size must be a positive int, got {latent_size!r}")
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        self.latent_size = latent_size
        self.likelihood = likelihood
        if likelihood == "gaussian":
            # one learned log standard deviation per pixel, shared by all images
            self.log_sigma = nn.Parameter(torch.full((1, 28, 28), -1.0))

    # ---------------------------------------------------------------- the encoder q(z|x)
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x): mean and log-variance, each N x latent_size, for images N x 1 x 28 x 28 in [0, 1]."""
        _check_images(x, module=self)
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    @staticmethod
    def reparameterise(mu: torch.Tensor, logvar: torch.Tensor,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """z = mu + sigma * eps with eps ~ N(0, I): a sample of q(z|x) through which gradients
        reach mu and logvar (the randomness sits in eps, which does not depend on the weights)."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    # ---------------------------------------------------------------- the decoder p(x|z)
    def _check_codes(self, z: torch.Tensor) -> None:
        if z.ndim != 2 or z.shape[1] != self.latent_size:
            raise ValueError(f"z must be N x {self.latent_size}, got shape {tuple(z.shape)}")
        check_input_dtype(z, "z", self)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's output for codes z (N x latent_size): logits (Bernoulli) or means
        (Gaussian), N x 1 x 28 x 28."""
        self._check_codes(z)
        return self.decoder(z)

    def decode_images(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's mean image in [0, 1] for codes z (N x latent_size): N x 1 x 28 x 28."""
        out = self.decode(z)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out.clamp(0, 1)

    def reconstruction_nll(self, x: torch.Tensor, decoder_output: torch.Tensor) -> torch.Tensor:
        """-log p(x|z) per example (N,), in nats, summed over the 784 pixels."""
        if self.likelihood == "bernoulli":
            return bernoulli_nll(x, decoder_output)
        return gaussian_nll(x, decoder_output, self.log_sigma)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """One pass through the VAE: ``(decoder_output, mu, logvar)`` for a sampled z."""
        mu, logvar = self.encode(x)
        z = self.reparameterise(mu, logvar, generator)
        return self.decode(z), mu, logvar

    # ---------------------------------------------------------------- generation
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images (N x 1 x 28 x 28 in [0, 1]) decoded from z ~ N(0, I): the decoder's mean."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_size, generator=generator).to(device)
        return self.decode_images(z)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean mu(x): images N x 1 x 28 x 28 in [0, 1]."""
        return self.decode_images(self.encode(x)[0])


class MLPVAE(VAE):
    """The VAE of pytorch/examples: 784 -> 400 -> (mu, logvar) of size z; z -> 400 -> 784."""

    def __init__(self, latent_size: int = 20, hidden: int = 400, likelihood: str = "bernoulli"):
        super().__init__(latent_size, likelihood)
        self.encoder = nn.Sequential(
            nn.Flatten(),                                                  # N x 784
            nn.Linear(784, hidden), nn.ReLU(inplace=True),                 # N x hidden
            nn.Linear(hidden, 2 * latent_size),                            # N x 2z: mu, logvar
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_size, hidden), nn.ReLU(inplace=True),         # N x hidden
            nn.Linear(hidden, 784),                                        # N x 784
            nn.Unflatten(1, (1, 28, 28)),                                  # N x 1 x 28 x 28 logits/means
        )


class ConvVAE(VAE):
    """A convolutional VAE: two strided convolutions down, two transposed convolutions up."""

    def __init__(self, latent_size: int = 20, channels: int = 32, hidden: int = 256,
                 likelihood: str = "bernoulli"):
        super().__init__(latent_size, likelihood)
        c = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c, 4, stride=2, padding=1), nn.ReLU(inplace=True),           # N x c x 14 x 14
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1), nn.ReLU(inplace=True),       # N x 2c x 7 x 7
            nn.Flatten(),                                                             # N x 2c*49
            nn.Linear(2 * c * 49, hidden), nn.ReLU(inplace=True),                     # N x hidden
            nn.Linear(hidden, 2 * latent_size),                                       # N x 2z: mu, logvar
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_size, hidden), nn.ReLU(inplace=True),                    # N x hidden
            nn.Linear(hidden, 2 * c * 49), nn.ReLU(inplace=True),                     # N x 2c*49
            nn.Unflatten(1, (2 * c, 7, 7)),                                           # N x 2c x 7 x 7
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1), nn.ReLU(inplace=True),  # N x c x 14 x 14
            nn.ConvTranspose2d(c, 1, 4, stride=2, padding=1),                         # N x 1 x 28 x 28 logits/means
        )
