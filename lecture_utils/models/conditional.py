"""Class-conditional generative models (notebook 05): p(x | y) instead of p(x).

An image classifier models p(y | x): image in, label out.  A class-conditional generator runs the
other way, p(x | y): a label (and noise) in, an image of that class out.  Two ways to feed the label:

* **Generator: label embedding.**  A learned vector e_y (``nn.Embedding``) is concatenated to the
  noise z, so the first layer already knows which digit to draw; the noise is left to carry
  *style* (slant, stroke width) that the class does not fix.  The same z with another y draws
  another digit in the same style.
* **Discriminator: projection** (Miyato & Koyama, 2018).  D computes features phi(x) of the image and
  scores ``logit = psi(phi(x)) + <embed(y), phi(x)>``: the first term asks "is this a real digit?",
  the inner product asks "is it a real digit *of class y*?".  This is the log-ratio form of the
  optimal conditional discriminator, and it conditions D much more strongly than concatenating a
  one-hot label to the input.  Spectral normalisation (Miyato et al., 2018) keeps D smooth.

:class:`ConditionalVAE` is the VAE with the label given to the encoder and the decoder (Sohn et al., 2015).

Images are N x channels x image_size x image_size with image_size in {28, 32} (two stride-2 layers
from 7 x 7 or 8 x 8).  The GAN works in [-1, 1] (tanh); the VAE's decoder gives Bernoulli logits
for images in [0, 1].  Labels are int64 tensors of shape N with values in [0, n_classes).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from .. import checks

IMAGE_SIZES = (28, 32)


def _check_image_size(image_size: int) -> int:
    if image_size not in IMAGE_SIZES:
        raise ValueError(f"image_size must be one of {IMAGE_SIZES}, got {image_size!r}")
    return image_size // 4


def _label_shape(labels: torch.Tensor, n: int) -> torch.Tensor:
    # shape and dtype only: no device sync in a training step (values are checked where labels enter)
    return checks.check_label_shape(labels, "labels", n).long()


def _check_images(x: torch.Tensor, channels: int, image_size: int, module: nn.Module | None = None) -> None:
    expected = (channels, image_size, image_size)
    if not torch.is_tensor(x) or x.ndim != 4 or tuple(x.shape[1:]) != expected:
        shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise ValueError(f"images must be N x {' x '.join(map(str, expected))}, got shape {shape}")
    if module is not None:
        checks.check_input_dtype(x, "x", module)


class ConditionalGenerator(nn.Module):
    """G(z, y): noise N x latent_dim and labels N -> images N x channels x s x s in (-1, 1).

    The label's learned embedding (``embedding_dim`` numbers) is concatenated to z; then a DCGAN-style
    stack: project and reshape to 2f x s/4 x s/4, two fractionally-strided convolutions.
    """

    def __init__(self, latent_dim: int = 64, n_classes: int = 10, embedding_dim: int = 32, features: int = 64,
                 channels: int = 1, image_size: int = 28):
        super().__init__()
        for name, value in (("latent_dim", latent_dim), ("n_classes", n_classes),
                            ("embedding_dim", embedding_dim), ("features", features)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (colour), got {channels!r}")
        start = _check_image_size(image_size)
        self.latent_dim, self.n_classes, self.channels, self.image_size = latent_dim, n_classes, channels, image_size
        f = features
        self.embed = nn.Embedding(n_classes, embedding_dim)                      # N x embedding_dim
        self.project = nn.Sequential(                                            # project and reshape
            nn.Linear(latent_dim + embedding_dim, 2 * f * start * start, bias=False),
            nn.Unflatten(1, (2 * f, start, start)),                              # N x 2f x s/4 x s/4
            nn.BatchNorm2d(2 * f), nn.ReLU(inplace=True),
        )
        self.convolutions = nn.Sequential(
            nn.ConvTranspose2d(2 * f, f, 4, stride=2, padding=1, bias=False),    # N x f x s/2 x s/2
            nn.BatchNorm2d(f), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(f, channels, 4, stride=2, padding=1),             # N x channels x s x s
            nn.Tanh(),                                                           # values in (-1, 1)
        )
        for m in self.modules():                                                 # DCGAN initialisation
            if isinstance(m, (nn.Linear, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(z) or z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must be N x {self.latent_dim}, got shape {tuple(getattr(z, 'shape', ()))}")
        checks.check_input_dtype(z, "z", self)
        labels = _label_shape(labels, z.shape[0])
        h = torch.cat([z, self.embed(labels)], dim=1)                            # N x (latent + embedding)
        return self.convolutions(self.project(h))


class ProjectionDiscriminator(nn.Module):
    """D(x, y): images N x channels x s x s (in [-1, 1]) and labels N -> logits N.

    ``logit = psi(phi(x)) + <embed(y), phi(x)>`` with phi two strided convolutions and a linear layer
    to ``hidden`` features (Miyato & Koyama, 2018).  ``spectral_norm`` normalises every weight.
    ``projection=False`` drops the inner product: D then ignores y (an unconditional D, for comparison).
    ``auxiliary_classifier=True`` adds a head that predicts the class from phi(x) (AC-GAN, Odena et al.,
    2017): :meth:`forward` with ``return_class_logits=True`` also returns its N x n_classes logits, and the
    training step adds a classification loss (D: on real images; G: "make D recognise the requested class").
    """

    def __init__(self, n_classes: int = 10, features: int = 64, hidden: int = 256, channels: int = 1,
                 image_size: int = 28, spectral_norm: bool = True, projection: bool = True,
                 auxiliary_classifier: bool = False):
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (colour), got {channels!r}")
        end = _check_image_size(image_size)
        self.n_classes, self.channels, self.image_size, self.projection = n_classes, channels, image_size, projection
        norm = _spectral_norm if spectral_norm else (lambda layer: layer)
        f = features
        self.phi = nn.Sequential(
            norm(nn.Conv2d(channels, f, 4, stride=2, padding=1)),               # N x f x s/2 x s/2
            nn.LeakyReLU(0.2, inplace=True),
            norm(nn.Conv2d(f, 2 * f, 4, stride=2, padding=1)),                  # N x 2f x s/4 x s/4
            nn.LeakyReLU(0.2, inplace=True),
            nn.Flatten(),                                                       # N x 2f (s/4)^2
            norm(nn.Linear(2 * f * end * end, hidden)),                         # N x hidden
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.psi = norm(nn.Linear(hidden, 1))                                   # N x 1: "a real image?"
        self.embed = norm(nn.Embedding(n_classes, hidden))                      # N x hidden: "of class y?"
        self.auxiliary_classifier = auxiliary_classifier
        self.classifier = nn.Linear(hidden, n_classes) if auxiliary_classifier else None  # N x n_classes

    def forward(self, x: torch.Tensor, labels: torch.Tensor, return_class_logits: bool = False):
        """Logits N (real/fake, for class ``labels``); with ``return_class_logits`` also N x n_classes."""
        _check_images(x, self.channels, self.image_size, self)
        labels = _label_shape(labels, x.shape[0])
        h = self.phi(x)                                                         # N x hidden
        logit = self.psi(h).squeeze(1)                                          # N
        if self.projection:
            logit = logit + (self.embed(labels) * h).sum(1)                     # + <e_y, phi(x)>
        if return_class_logits:
            if self.classifier is None:
                raise ValueError("this discriminator has no auxiliary classifier (auxiliary_classifier=False)")
            return logit, self.classifier(h)
        return logit


class ConditionalVAE(nn.Module):
    """A conditional VAE (Sohn et al., 2015): q(z | x, y) and p(x | z, y), with a N(0, I) prior on z.

    Encoder: the image and a one-hot label map (the label as ``n_classes`` constant channels) -> mean
    and log-variance of z (``latent_dim``).  Decoder: z with the label's one-hot vector -> Bernoulli
    logits N x channels x s x s.  Images in [0, 1].
    """

    def __init__(self, latent_dim: int = 16, n_classes: int = 10, features: int = 32, channels: int = 1,
                 image_size: int = 28):
        super().__init__()
        end = _check_image_size(image_size)
        self.latent_dim, self.n_classes, self.channels, self.image_size = latent_dim, n_classes, channels, image_size
        f = features
        self.encoder = nn.Sequential(
            nn.Conv2d(channels + n_classes, f, 4, stride=2, padding=1), nn.ReLU(inplace=True),   # N x f x s/2
            nn.Conv2d(f, 2 * f, 4, stride=2, padding=1), nn.ReLU(inplace=True),                  # N x 2f x s/4
            nn.Flatten(),                                                                         # N x 2f (s/4)^2
            nn.Linear(2 * f * end * end, 2 * latent_dim),                                        # N x 2 latent
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim + n_classes, 2 * f * end * end), nn.ReLU(inplace=True),
            nn.Unflatten(1, (2 * f, end, end)),                                                   # N x 2f x s/4
            nn.ConvTranspose2d(2 * f, f, 4, stride=2, padding=1), nn.ReLU(inplace=True),         # N x f x s/2
            nn.ConvTranspose2d(f, channels, 4, stride=2, padding=1),                             # N x C x s x s logits
        )

    def encode(self, x: torch.Tensor, labels: torch.Tensor):
        """(mean, log-variance) of q(z | x, y), each N x latent_dim."""
        _check_images(x, self.channels, self.image_size, self)
        labels = _label_shape(labels, x.shape[0])
        one_hot = F.one_hot(labels, self.n_classes).to(x.dtype)[:, :, None, None]
        h = self.encoder(torch.cat([x, one_hot.expand(-1, -1, *x.shape[2:])], dim=1))
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits of p(x | z, y), N x channels x s x s."""
        if not torch.is_tensor(z) or z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must be N x {self.latent_dim}, got shape {tuple(getattr(z, 'shape', ()))}")
        checks.check_input_dtype(z, "z", self)
        labels = _label_shape(labels, z.shape[0])
        return self.decoder(torch.cat([z, F.one_hot(labels, self.n_classes).to(z.dtype)], dim=1))

    def decode_images(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] (the Bernoulli means) for codes z and labels."""
        return torch.sigmoid(self.decode(z, labels))

    def forward(self, x: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None):
        """(logits, mu, logvar) with one reparameterised sample z = mu + sigma * eps."""
        mu, logvar = self.encode(x, labels)
        eps = (torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device) if generator is not None
               else torch.randn_like(mu))
        z = mu + torch.exp(0.5 * logvar) * eps
        return self.decode(z, labels), mu, logvar
