"""Losses of the course, each tested against an independent reference.

Sections: VAE (notebook 02), GAN (notebooks 03-04), image-to-image (notebooks 06-07),
style (notebook 08).  All losses take logits where a probability would follow, for stability.
"""
from __future__ import annotations

import math
import torch
import torch.nn.functional as F

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
    binary images this is an exact log-likelihood); ``logits``: the decoder's output, same shape.
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

# --------------------------------------------------------------------------- style losses (notebook 08)
