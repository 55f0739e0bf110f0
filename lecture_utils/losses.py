"""Losses of the course, each tested against an independent reference.

Sections: VAE (notebook 02), GAN (notebooks 03-04), image-to-image (notebooks 06-07),
style (notebook 08).  All losses take logits where a probability would follow, for stability.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .checks import check_range

# --------------------------------------------------------------------------- VAE losses (notebook 02)
# Conventions: every function returns one number per example (a tensor of shape N), in nats,
# summed over the pixels and latent dimensions; average over the batch yourself.  This is the
# unit papers and pytorch/examples report ("test loss 106" = 106 nats per digit).
LOG_2PI = math.log(2 * math.pi)


def _check_same_shape(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape; got {name_a} "
                         f"{tuple(a.shape)} and {name_b} {tuple(b.shape)}")


def _check_gaussian(mu: torch.Tensor, logvar: torch.Tensor) -> None:
    _check_same_shape("mu", mu, "logvar", logvar)
    if mu.ndim != 2:
        raise ValueError(f"mu and logvar must be N x latent_size, got shape {tuple(mu.shape)}")


def bernoulli_nll(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """-log p(x|z) for a Bernoulli decoder, per example (N,), in nats, summed over pixels.

    ``x``: targets in [0, 1] (grey levels are used as they are, as in pytorch/examples; for
    binary images this is an exact log-likelihood; on grey levels it is not a normalised density, so its
    nats compare with models scored the same way, not with binarised-MNIST papers); ``logits``: the decoder's output, same shape.
    Computed from logits (``binary_cross_entropy_with_logits``), which never takes log(0).
    """
    _check_same_shape("x", x, "logits", logits)  # (the range of x is checked once per data set, not per step)
    bce = F.binary_cross_entropy_with_logits(logits.float(), x.float(), reduction="none")
    return bce.reshape(x.shape[0], -1).sum(1)


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, log_sigma: torch.Tensor | float) -> torch.Tensor:
    """-log N(x; mean, sigma^2) per example (N,), in nats, summed over all but the first dimension.

    ``log_sigma``: log standard deviation, a float or a tensor broadcastable to ``x``.
    """
    _check_same_shape("x", x, "mean", mean)
    log_sigma = torch.as_tensor(log_sigma, dtype=torch.float32, device=x.device)
    per_value = 0.5 * LOG_2PI + log_sigma + 0.5 * ((x.float() - mean.float()) * torch.exp(-log_sigma)) ** 2
    return per_value.reshape(x.shape[0], -1).sum(1)


def log_normal_diag(z: torch.Tensor, mu: torch.Tensor | float = 0.0,
                    logvar: torch.Tensor | float = 0.0) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last dimension: shape ``z.shape[:-1]``."""
    mu = torch.as_tensor(mu, dtype=z.dtype, device=z.device)
    logvar = torch.as_tensor(logvar, dtype=z.dtype, device=z.device)
    return -0.5 * (LOG_2PI + logvar + (z - mu) ** 2 * torch.exp(-logvar)).sum(-1)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor, prior_mu: torch.Tensor | float = 0.0,
                prior_logvar: torch.Tensor | float = 0.0) -> torch.Tensor:
    """KL( N(mu, diag e^logvar) || N(prior_mu, diag e^prior_logvar) ) in closed form, per example (N,).

    ``mu``, ``logvar``: N x d.  The prior defaults to the VAE's N(0, I), where this is the familiar
    ``0.5 * sum(mu^2 + sigma^2 - log sigma^2 - 1)``.
    """
    _check_gaussian(mu, logvar)
    prior_mu = torch.as_tensor(prior_mu, dtype=mu.dtype, device=mu.device)
    prior_logvar = torch.as_tensor(prior_logvar, dtype=mu.dtype, device=mu.device)
    kl = 0.5 * (prior_logvar - logvar + (torch.exp(logvar) + (mu - prior_mu) ** 2) * torch.exp(-prior_logvar) - 1)
    return kl.sum(1)


def monte_carlo_kl(mu: torch.Tensor, logvar: torch.Tensor, n_samples: int = 1,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """A Monte-Carlo estimate of KL(q(z|x) || N(0, I)) per example (N,): the mean over ``n_samples``
    draws z ~ q of log q(z|x) - log p(z).  Unbiased; its error shrinks like 1/sqrt(n_samples)."""
    _check_gaussian(mu, logvar)
    if not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
    eps = torch.randn((n_samples, *mu.shape), generator=generator, dtype=mu.dtype).to(mu.device)
    z = mu + torch.exp(0.5 * logvar) * eps                                   # S x N x d
    return (log_normal_diag(z, mu, logvar) - log_normal_diag(z)).mean(0)


def negative_elbo(x: torch.Tensor, logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                  beta: float = 1.0) -> torch.Tensor:
    """The VAE's loss per example (N,), in nats: -ELBO = -log p(x|z) + beta * KL(q(z|x) || p(z)),

    with a Bernoulli decoder (``logits`` N x 1 x 28 x 28, ``x`` grey levels in [0, 1]), z one sample
    of q(z|x) and the KL in closed form.  With beta = 1 this is exactly the loss pytorch/examples'
    VAE reports (binary cross-entropy summed over pixels plus the KL), so the numbers compare.
    """
    check_range(x, "x", 0.0, 1.0, hint="grey levels in [0, 1]: divide 8-bit images by 255")
    return bernoulli_nll(x, logits) + beta * gaussian_kl(mu, logvar)


def vae_loss_terms(model, x: torch.Tensor, beta: float = 1.0,
                   generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """One-sample -ELBO of any VAE of :mod:`lecture_utils.models.vae` (either likelihood).

    Returns per-example tensors (N,): ``negative_elbo`` (reconstruction + beta * kl),
    ``reconstruction`` (-log p(x|z)) and ``kl`` (closed form).
    """
    decoder_output, mu, logvar = model(x, generator=generator)
    reconstruction = model.reconstruction_nll(x, decoder_output)
    kl = gaussian_kl(mu.float(), logvar.float())
    return {"negative_elbo": reconstruction + beta * kl, "reconstruction": reconstruction, "kl": kl}


@torch.no_grad()
def iwae_log_likelihood(model, x: torch.Tensor, k: int = 100, generator: torch.Generator | None = None,
                        max_rows: int = 16384) -> torch.Tensor:
    """The importance-weighted bound on log p(x) (Burda et al., 2016) per example (N,), in nats:

        log p(x) >= L_k = E[ log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x) ],  z_1..z_k ~ q(z|x).

    L_1 is the ELBO; L_k grows with k and tends to log p(x).  ``model`` needs ``encode(x) ->
    (mu, logvar)``, ``decode(z)`` and ``reconstruction_nll(x, decoder_output)`` (every VAE of the
    course has them), with the prior N(0, I).  Decodes at most ``max_rows`` codes at a time.
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    mu, logvar = model.encode(x)
    mu, logvar = mu.float(), logvar.float()
    n = x.shape[0]
    per_chunk = max(1, min(k, max_rows // max(n, 1)))
    noise = torch.randn((k, *mu.shape), generator=generator)                    # k x N x d (CPU stream)
    log_weights = []
    for start in range(0, k, per_chunk):
        eps = noise[start:start + per_chunk].to(mu.device)
        s = eps.shape[0]
        z = mu + torch.exp(0.5 * logvar) * eps                                   # s x N x d
        out = model.decode(z.reshape(s * n, -1))                                 # s*N x ...
        log_px_z = -model.reconstruction_nll(x.repeat(s, *([1] * (x.ndim - 1))), out).reshape(s, n)
        log_weights.append(log_px_z + log_normal_diag(z) - log_normal_diag(z, mu, logvar))
    log_weights = torch.cat(log_weights)                                         # k x N
    return torch.logsumexp(log_weights, 0) - math.log(k)

# --------------------------------------------------------------------------- GAN losses (notebooks 03-04)
# Conventions: D outputs *logits* l (a real number per image, or per patch for PatchGAN); D(x) = sigmoid(l).
# Every function returns the batch mean (a scalar): the quantities of Algorithm 1 of Goodfellow et al.
# 2014, averaged over the m examples of a minibatch.  Labels: real = 1, fake = 0.


def _check_logits(name: str, logits: torch.Tensor) -> None:
    if not torch.is_tensor(logits) or not logits.is_floating_point():
        raise ValueError(f"{name} must be a float tensor of discriminator logits, got {type(logits).__name__}"
                         f"{'' if not torch.is_tensor(logits) else ' of dtype ' + str(logits.dtype)}")
    if logits.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(logits.shape)})")


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, real_label: float = 1.0) -> torch.Tensor:
    """The discriminator's binary cross-entropy with labels real = 1, fake = 0, on logits (a scalar).

        loss_D = -mean log D(x) - mean log(1 - D(G(z)))

    the negative of the value V(D, G) that D *ascends* in Algorithm 1, so an optimiser minimises it.
    ``real_logits``: D's logits on data (any shape); ``fake_logits``: on generated images (any shape).
    ``real_label`` < 1 is one-sided label smoothing (Salimans et al. 2016: 0.9): the real target becomes
    ``real_label``, which keeps D from becoming over-confident; fakes stay at 0.
    """
    _check_logits("real_logits", real_logits)
    _check_logits("fake_logits", fake_logits)
    if not 0.5 < real_label <= 1.0:
        raise ValueError(f"real_label must lie in (0.5, 1], got {real_label!r}")
    real_logits, fake_logits = real_logits.float(), fake_logits.float()
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_label))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_loss_minimax(fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator's side of the minimax game, mean log(1 - D(G(z))), which G *descends* (a scalar).

    log(1 - sigmoid(l)) = -softplus(l), computed without ever taking log(0).  Its gradient with respect
    to the logit is -sigmoid(l) = -D(G(z)): it *saturates* (vanishes) exactly when D confidently
    rejects the fakes, D(G(z)) -> 0, which is early in training.
    """
    _check_logits("fake_logits", fake_logits)
    return -F.softplus(fake_logits.float()).mean()


def generator_loss_non_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss, -mean log D(G(z)) (a scalar; Goodfellow et al. 2014, Sec. 3).

    -log sigmoid(l) = softplus(-l) = BCE with label 1.  Same fixed point as the minimax loss, but its
    gradient with respect to the logit is -(1 - D(G(z))), which is largest when D rejects the fakes.
    """
    _check_logits("fake_logits", fake_logits)
    return F.softplus(-fake_logits.float()).mean()


def least_squares_discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor,
                                     real_label: float = 1.0) -> torch.Tensor:
    """LSGAN (Mao et al. 2017): 1/2 mean (D(x) - 1)^2 + 1/2 mean D(G(z))^2 on D's raw scores (a scalar)."""
    _check_logits("real_scores", real_scores)
    _check_logits("fake_scores", fake_scores)
    return 0.5 * ((real_scores.float() - real_label) ** 2).mean() + 0.5 * (fake_scores.float() ** 2).mean()


def least_squares_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """LSGAN generator loss 1/2 mean (D(G(z)) - 1)^2 on D's raw scores (a scalar)."""
    _check_logits("fake_scores", fake_scores)
    return 0.5 * ((fake_scores.float() - 1.0) ** 2).mean()


GENERATOR_LOSSES = {
    "minimax": generator_loss_minimax,
    "non_saturating": generator_loss_non_saturating,
    "least_squares": least_squares_generator_loss,
}


def generator_loss(fake_logits: torch.Tensor, kind: str = "non_saturating") -> torch.Tensor:
    """The generator loss named ``kind``: ``"minimax"``, ``"non_saturating"`` or ``"least_squares"``."""
    if kind not in GENERATOR_LOSSES:
        raise ValueError(f"generator loss kind must be one of {sorted(GENERATOR_LOSSES)}, got {kind!r}")
    return GENERATOR_LOSSES[kind](fake_logits)


# --------------------------------------------------------------------------- style losses (notebook 08)
def _check_features(features: torch.Tensor, name: str = "features") -> None:
    if not isinstance(features, torch.Tensor) or features.ndim != 4:
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise ValueError(f"{name} must be a tensor N x C x H x W, got {shape}")


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Gram matrices of feature maps, normalised by the number of positions (Gatys et al. 2015).

    ``features``: N x C x H x W.  Returns N x C x C with

        G[n, i, j] = (1 / (H W)) * sum_k F[n, i, k] F[n, j, k],

    where F[n] is ``features[n]`` reshaped to C x (H W).  G[i, j] is how often channels i and j
    fire *together*, averaged over positions: the statistics of a texture, with the layout
    thrown away.  Dividing by H W makes images of different sizes comparable.
    """
    _check_features(features)
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)                                   # N x C x HW
    return flat @ flat.transpose(1, 2) / (h * w)                           # N x C x C


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Content loss on one layer: mean squared difference of the feature maps.

    Gatys et al. use ``1/2 * sum (F - P)^2``; the mean (here) differs by a constant factor only
    and keeps the weights independent of the image size.  ``features`` and ``target``: N x C x H x W
    (``target`` may have N = 1 and is broadcast).
    """
    _check_features(features)
    _check_features(target, "target")
    if features.shape[1:] != target.shape[1:]:
        raise ValueError(f"target must have the features' shape C x H x W = {tuple(features.shape[1:])}, "
                         f"got {tuple(target.shape[1:])}")
    return (features - target).pow(2).mean()


def style_layer_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Style loss E_l of one layer (Gatys et al. 2015, Eq. 4), averaged over the batch.

    With N_l channels, M_l positions, G the generated image's Gram matrix and A the style image's
    (both *unnormalised*, sum over positions), Gatys define

        E_l = 1 / (4 N_l^2 M_l^2) * sum_ij (G_ij - A_ij)^2.

    With the normalised Gram matrices of :func:`gram_matrix` (divided by M_l) this is exactly
    ``mean_ij (G_ij - A_ij)^2 / 4``, which is what is computed.  ``target_gram``: 1 x C x C or N x C x C.
    """
    gram = gram_matrix(features)
    if target_gram.ndim != 3 or target_gram.shape[1:] != gram.shape[1:]:
        raise ValueError(f"target_gram must be N x {gram.shape[1]} x {gram.shape[2]}, "
                         f"got {tuple(target_gram.shape)}")
    return (gram - target_gram).pow(2).mean() / 4


def style_loss(features: dict[str, torch.Tensor], target_grams: dict[str, torch.Tensor],
               layer_weights: dict[str, float] | None = None) -> torch.Tensor:
    """Gatys' style loss: sum_l w_l E_l over the layers in ``target_grams`` (default w_l = 1 / L)."""
    if not target_grams:
        raise ValueError("target_grams is empty: give at least one style layer")
    missing = [name for name in target_grams if name not in features]
    if missing:
        raise ValueError(f"features lack the style layers {missing}; they hold {sorted(features)}")
    layer_weights = layer_weights or {name: 1.0 / len(target_grams) for name in target_grams}
    return sum(layer_weights[name] * style_layer_loss(features[name], gram)
               for name, gram in target_grams.items())


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation: mean |vertical neighbour difference| + mean |horizontal one|.

    ``images``: N x C x H x W with H, W >= 2.  A small weight on it removes the high-frequency
    speckle that pixel optimisation tends to leave (Mahendran & Vedaldi 2015).
    """
    _check_features(images, "images")
    if images.shape[2] < 2 or images.shape[3] < 2:
        raise ValueError(f"images must be at least 2 x 2 pixels, got {tuple(images.shape[2:])}")
    vertical = (images[:, :, 1:, :] - images[:, :, :-1, :]).abs().mean()
    horizontal = (images[:, :, :, 1:] - images[:, :, :, :-1]).abs().mean()
    return vertical + horizontal
