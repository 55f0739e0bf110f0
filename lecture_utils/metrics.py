"""Metrics: distances to the training set, sample quality with a domain classifier, PSNR/SSIM and sharpness.

All functions take images as float tensors N x C x H x W in [0, 1].
"""
from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from .checkpoints import load_shipped
from .checks import (check_finite, check_float, check_image_batch, check_labels, check_not_empty, check_range,
                     check_tensor)
from .data import load_mnist
from .data.masks import check_mask
from .models.classifier import MNISTClassifier


def reconstruction_mse(original: torch.Tensor, reconstruction: torch.Tensor) -> float:
    """Mean squared error per pixel between two batches of the same shape."""
    check_tensor(original, "original"), check_tensor(reconstruction, "reconstruction")
    if original.shape != reconstruction.shape:
        raise ValueError(f"shapes differ: original {tuple(original.shape)}, reconstruction {tuple(reconstruction.shape)}")
    for name, images in (("original", original), ("reconstruction", reconstruction)):
        check_finite(check_float(check_not_empty(images, name), name), name)
    return float(((original.float() - reconstruction.float()) ** 2).mean())


@torch.no_grad()
def nearest_neighbours(queries: torch.Tensor, reference: torch.Tensor, chunk: int = 1024):
    """For each query image, the RMS pixel distance to its nearest reference image, and its index.

    Distances are root-mean-square over pixels (so they lie in [0, 1] for images in [0, 1]).
    """
    check_tensor(queries, "queries"), check_tensor(reference, "reference")
    if queries.shape[1:] != reference.shape[1:]:
        raise ValueError(f"queries {tuple(queries.shape[1:])} and reference {tuple(reference.shape[1:])} "
                         "must have the same image shape")
    for name, images in (("queries", queries), ("reference", reference)):
        check_finite(check_float(check_not_empty(images, name), name), name)
    q = queries.reshape(queries.shape[0], -1).float()
    r = reference.reshape(reference.shape[0], -1).float()
    best = torch.empty(q.shape[0])
    index = torch.empty(q.shape[0], dtype=torch.long)
    for i in range(0, q.shape[0], chunk):
        d = torch.cdist(q[i:i + chunk], r)
        idx = d.min(dim=1).indices
        # cdist's matrix-product form loses the small distances (a near-copy reads 2e-4, not 0):
        # the distance to the chosen neighbour is computed again directly
        value = (q[i:i + chunk] - r[idx]).norm(dim=1)
        best[i:i + chunk], index[i:i + chunk] = value.cpu(), idx.cpu()
    return best / q.shape[1] ** 0.5, index


# --------------------------------------------------------------------------- sample quality (MNIST)
# A small classifier trained on MNIST (scripts/train_metrics_classifier.py, shipped with a sha256 in
# data/checkpoints/) is the ruler: its penultimate features give a Fréchet distance between samples and
# real test digits (the idea of FID, with a domain classifier instead of Inception), its predictions give
# class coverage and confidence.

_classifier = None
_reference_cache: dict = {}


def load_classifier():
    """The shipped MNIST classifier (eval mode, CPU), verified against its sha256; cached."""
    global _classifier
    if _classifier is None:
        model = MNISTClassifier()
        model.load_state_dict(load_shipped("mnist_classifier")["model"])
        _classifier = model.eval()
    return _classifier


@torch.no_grad()
def _features_and_probs(images: torch.Tensor, batch_size: int = 1000):
    check_image_batch(images, "images", channels=1, size=(28, 32), tolerance=1e-3,
                      hint="map a tanh output with (x + 1) / 2; divide 8-bit images by 255")
    model = load_classifier()
    feats, probs = [], []
    for i in range(0, images.shape[0], batch_size):
        x = images[i:i + batch_size].detach().float().cpu()
        f = model.features(x)
        feats.append(f)
        probs.append(torch.softmax(model.head(f), dim=1))
    return torch.cat(feats).double(), torch.cat(probs)


def classifier_features(images: torch.Tensor) -> torch.Tensor:
    """The classifier's penultimate features, N x 64 (float64)."""
    return _features_and_probs(images)[0]


def classify(images: torch.Tensor):
    """Predicted digit (int64, N) and its probability (float, N) for images in [0, 1]."""
    probs = _features_and_probs(images)[1]
    confidence, labels = probs.max(dim=1)
    return labels, confidence


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N x d each):

    ``|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})``.

    The trace of the matrix square root is computed as the sum of square roots of the eigenvalues of
    ``S_a^{1/2} S_b S_a^{1/2}`` (symmetric, so ``eigh`` is stable).
    """
    check_tensor(features_a, "features_a"), check_tensor(features_b, "features_b")
    if features_a.ndim != 2 or features_b.ndim != 2 or features_a.shape[1] != features_b.shape[1]:
        raise ValueError(f"features must be N x d with the same d, got {tuple(features_a.shape)} and {tuple(features_b.shape)}")
    if min(features_a.shape[0], features_b.shape[0]) < 2:
        raise ValueError("each feature set needs at least 2 rows")
    check_finite(features_a, "features_a"), check_finite(features_b, "features_b")
    a, b = features_a.double(), features_b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    values, vectors = torch.linalg.eigh(cov_a)
    sqrt_a = vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T
    middle = torch.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a).clamp(min=0)
    distance = (mu_a - mu_b).pow(2).sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2 * middle.sqrt().sum()
    return float(distance.clamp(min=0))


def _reference_features(reference: torch.Tensor | None) -> torch.Tensor:
    if reference is not None:
        return classifier_features(reference)
    if "test" not in _reference_cache:
        _reference_cache["test"] = classifier_features(load_mnist("test", verbose=False).images)
    return _reference_cache["test"]


def sample_quality(images: torch.Tensor, reference: torch.Tensor | None = None) -> dict:
    """Scores of MNIST-like samples (N x 1 x 28 x 28 or 32 x 32, in [0, 1]) against real digits.

    Returns ``frechet_distance`` (to ``reference``, default: the MNIST test split; lower is better),
    ``class_shares`` (the share of samples predicted as each digit, 10 floats), ``coverage_entropy``
    (entropy of those shares in nats; log 10 = 2.303 when every digit is equally common),
    ``classes_covered`` (digits with at least 5% of the samples) and ``mean_confidence``.

    Read them together: a classifier can be confidently wrong on noise, so high confidence means
    little without low Fréchet distance and full coverage.
    """
    features, probs = _features_and_probs(images)
    confidence, labels = probs.max(dim=1)
    shares = torch.bincount(labels, minlength=10).double() / labels.numel()
    entropy = -(shares[shares > 0] * shares[shares > 0].log()).sum()
    return {
        "frechet_distance": frechet_distance(features, _reference_features(reference)),
        "class_shares": [round(float(s), 4) for s in shares],
        "coverage_entropy": float(entropy),
        "classes_covered": int((shares >= 0.05).sum()),
        "mean_confidence": float(confidence.mean()),
    }


def conditional_accuracy(images: torch.Tensor, requested: torch.Tensor) -> float:
    """Share of class-conditional samples that the classifier assigns to the requested class."""
    check_tensor(images, "images")
    requested = check_labels(requested, "requested", n=images.shape[0] if images.ndim else None, n_classes=10)
    labels, _ = classify(images)
    return float((labels == requested.cpu()).float().mean())


# --------------------------------------------------------------------------- image fidelity: PSNR and SSIM (notebooks 06-07)
# Distortion measures for restoration (super-resolution, inpainting, colorization, uncropping), computed
# with scikit-image's reference implementations.  ``data_range`` is the span of the pixel values, 1.0 for
# images in [0, 1] (255 for uint8): get it wrong and PSNR is off by 20 log10(255) = 48 dB.  With a mask they
# score only the pixels that were missing (mask = 1), where the model had to invent content.
def _check_pair(prediction: torch.Tensor, target: torch.Tensor, data_range: float):
    prediction, target = torch.as_tensor(prediction), torch.as_tensor(target)
    if not (isinstance(data_range, numbers.Real) and math.isfinite(data_range) and data_range > 0):
        raise ValueError(f"data_range must be a positive number (1.0 for images in [0, 1]), got {data_range!r}")
    if prediction.shape != target.shape:
        raise ValueError(f"prediction and target must have the same shape, got {tuple(prediction.shape)} "
                         f"and {tuple(target.shape)}")
    if prediction.ndim == 3:
        prediction, target = prediction[None], target[None]
    if prediction.ndim != 4:
        raise ValueError(f"images must be C x H x W or N x C x H x W, got shape {tuple(prediction.shape)}")
    for name, images in (("prediction", prediction), ("target", target)):
        check_range(images, name, 0.0, data_range, tolerance=1e-6 * data_range,
                    hint=f"data_range = {data_range:g}; pass data_range=255 for 8-bit images; clamp model outputs")
    return prediction.detach().double().cpu(), target.detach().double().cpu()


def _check_mask(mask: torch.Tensor | None, images: torch.Tensor) -> torch.Tensor | None:
    # the course's mask convention (1 = missing), checked by data.check_mask; a metric also needs a region to score
    if mask is None:
        return None
    mask = check_mask(torch.as_tensor(mask), images).detach().double().cpu()
    if bool((mask.flatten(1).sum(1) == 0).any()):
        raise ValueError("mask is empty for at least one image: there is no missing region to score")
    return mask


def psnr(prediction: torch.Tensor, target: torch.Tensor, data_range: float = 1.0,
         mask: torch.Tensor | None = None) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(data_range^2 / MSE)``, averaged over the images.

    ``prediction``, ``target``: C x H x W or N x C x H x W with values in [0, data_range].
    ``mask`` (N x 1 x H x W of 0/1, optional): the MSE runs over the masked pixels only (all channels).
    Without a mask this is ``skimage.metrics.peak_signal_noise_ratio`` per image.  An image
    reproduced exactly (MSE 0) has PSNR ``+inf``, as in scikit-image and homework 3, so the mean is
    ``+inf`` when one is.
    """
    from skimage.metrics import peak_signal_noise_ratio   # here: importing it costs every notebook a second (scipy.stats)

    prediction, target = _check_pair(prediction, target, data_range)
    mask = _check_mask(mask, prediction)
    if mask is None:
        with np.errstate(divide="ignore"):                                      # MSE 0: +inf, no warning
            values = [peak_signal_noise_ratio(t.numpy(), p.numpy(), data_range=data_range)
                      for p, t in zip(prediction, target)]
    else:
        squared = (prediction - target) ** 2 * mask                              # N x C x H x W
        mse = squared.flatten(1).sum(1) / (mask.flatten(1).sum(1) * prediction.shape[1])
        values = (10 * torch.log10(data_range ** 2 / mse)).tolist()
    return float(torch.tensor(values, dtype=torch.float64).mean())


def ssim(prediction: torch.Tensor, target: torch.Tensor, data_range: float = 1.0,
         mask: torch.Tensor | None = None) -> float:
    """Structural similarity (Wang et al., 2004), averaged over the images; 1 means identical.

    scikit-image's ``structural_similarity`` (7 x 7 windows, colour channels averaged) on each image; with
    ``mask`` (N x 1 x H x W of 0/1) its SSIM *map* is averaged over the masked pixels only (leaving out
    the 3-pixel border, as scikit-image does).  Images must be at least 7 x 7 pixels.
    """
    from skimage.metrics import structural_similarity

    prediction, target = _check_pair(prediction, target, data_range)
    mask = _check_mask(mask, prediction)
    if min(prediction.shape[2:]) < 7:
        raise ValueError(f"SSIM needs images of at least 7 x 7 pixels, got {tuple(prediction.shape[2:])}")
    values = []
    for i, (p, t) in enumerate(zip(prediction, target)):
        value, ssim_map = structural_similarity(t.numpy(), p.numpy(), data_range=data_range, channel_axis=0,
                                                full=True)
        if mask is None:
            values.append(float(value))
        else:
            # as scikit-image's mean, leave out the 3-pixel border where the 7 x 7 window was padded
            region, local = mask[i, 0].numpy()[3:-3, 3:-3] > 0, ssim_map.mean(axis=0)[3:-3, 3:-3]
            if not region.any():                                  # a region inside the border only
                region, local = mask[i, 0].numpy() > 0, ssim_map.mean(axis=0)
            values.append(float(local[region].mean()))
    return float(sum(values) / len(values))


# --------------------------------------------------------------------------- sharpness (notebook 04)
# L1 regression predicts the *median* of the plausible outputs, which averages fine detail away: its
# images are blurry.  These numbers measure that, per image, against the ground truth.
def _check_batch(name: str, images: torch.Tensor) -> torch.Tensor:
    check_tensor(images, name)
    if images.ndim != 4 or images.shape[-1] < 2 or images.shape[-2] < 2:
        raise ValueError(f"{name} must be a tensor N x C x H x W (H, W >= 2), got shape {tuple(images.shape)}")
    check_finite(check_float(check_not_empty(images, name), name), name)
    return images.detach().float().cpu()


def gradient_magnitude(images: torch.Tensor) -> torch.Tensor:
    """Mean gradient magnitude per image (N,): sqrt(dx^2 + dy^2) of forward differences, averaged over
    pixels and channels.  Blur lowers it; for images in [0, 1] it lies in [0, sqrt(2)]."""
    x = _check_batch("images", images)
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    return (dx ** 2 + dy ** 2).sqrt().mean(dim=(1, 2, 3))


def high_frequency_energy(images: torch.Tensor) -> torch.Tensor:
    """Share of each image's spectral energy above 0.25 cycles per pixel (N,), in [0, 1].

    The channel-mean image minus its mean value is Fourier transformed; energy is |FFT|^2, split at the
    radial frequency 0.25, half the Nyquist limit of 0.5.  Blur moves energy below it.
    """
    x = _check_batch("images", images).mean(dim=1)
    x = x - x.mean(dim=(1, 2), keepdim=True)
    power = torch.fft.fft2(x).abs() ** 2
    fy = torch.fft.fftfreq(x.shape[1])[:, None]
    fx = torch.fft.fftfreq(x.shape[2])[None, :]
    high = (fx ** 2 + fy ** 2).sqrt() > 0.25
    total = power.sum(dim=(1, 2))
    return torch.where(total > 0, (power * high).sum(dim=(1, 2)) / total.clamp_min(1e-30), torch.zeros_like(total))


def radial_power_spectrum(images: torch.Tensor, bins: int = 14) -> tuple[torch.Tensor, torch.Tensor]:
    """The images' mean power spectrum in ``bins`` rings of radial frequency: ``(frequencies, power)``, both (bins,).

    The channel-mean image minus its mean value is Fourier transformed and |FFT|^2 / (H W) averaged over the images
    and over the frequencies in each ring (the zero frequency, removed with the mean, is left out).  The rings split
    [0, sqrt(2)/2] cycles per pixel evenly (the last ones hold the diagonal frequencies up to (0.5, 0.5), where a
    2 x 2 checkerboard puts its power).  ``frequencies`` are the rings' centres.  Blur removes power from the high
    rings; a periodic artefact adds power to some of them.
    """
    if not isinstance(bins, int) or isinstance(bins, bool) or bins < 2:
        raise ValueError(f"bins must be an int >= 2, got {bins!r}")
    x = _check_batch("images", images).mean(dim=1)
    h, w = x.shape[1:]
    if min(h, w) < 2 * bins ** 0.5:
        raise ValueError(f"images of {h} x {w} pixels are too small for {bins} frequency rings")
    x = x - x.mean(dim=(1, 2), keepdim=True)
    power = (torch.fft.fft2(x).abs() ** 2).mean(0) / (h * w)                     # H x W
    radius = (torch.fft.fftfreq(h)[:, None] ** 2 + torch.fft.fftfreq(w)[None, :] ** 2).sqrt()
    edges = torch.linspace(0, 0.5 * 2 ** 0.5 + 1e-6, bins + 1)
    ring = (torch.bucketize(radius, edges, right=True) - 1).flatten()             # H W ring indices
    keep = radius.flatten() > 0                                                  # the mean (removed) is not a frequency
    totals = torch.zeros(bins).index_add_(0, ring[keep], power.flatten()[keep])
    counts = torch.zeros(bins).index_add_(0, ring[keep], torch.ones(int(keep.sum())))
    return (edges[:-1] + edges[1:]) / 2, totals / counts.clamp_min(1)


def sharpness_ratio(images: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean gradient magnitude of ``images`` over that of ``reference`` (same shape): 1 = as sharp as
    the reference, below 1 = blurrier, above 1 = more (possibly invented) detail.  A sharpness *proxy*:
    any high-frequency energy counts, so noise or artefacts pass it as well as true detail."""
    a, b = _check_batch("images", images), _check_batch("reference", reference)
    if a.shape != b.shape:
        raise ValueError(f"images {tuple(a.shape)} and reference {tuple(b.shape)} must have the same shape")
    return float(gradient_magnitude(a).mean() / gradient_magnitude(b).mean().clamp_min(1e-12))
