"""Checks at the boundaries: where data enters the library (loaders, metrics, evaluation losses,
widgets, the start of a training run).

Each check raises ``ValueError`` naming the argument, what was expected and what was given.  The
checks that read values (NaN/inf, range, label range) cost one device sync each, so they run once per
data set or per call of a metric, never inside a training step; :func:`check_input_dtype` and
:func:`check_label_shape` read only metadata and are free to call in ``forward``.

A NaN compares False with everything, so a test such as ``float(x.min()) < low`` lets it through:
here the minimum and maximum are read with ``torch.aminmax``, which propagates NaN, and a NaN or an
infinity is reported as such before the range is compared.
"""
from __future__ import annotations

import math

import torch


def _describe(x) -> str:
    if torch.is_tensor(x):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    return f"a {type(x).__name__}"


def check_tensor(x, name: str) -> torch.Tensor:
    """``x`` must be a torch tensor."""
    if not torch.is_tensor(x):
        raise ValueError(f"{name} must be a torch.Tensor, got {_describe(x)}")
    return x


def check_not_empty(x: torch.Tensor, name: str) -> torch.Tensor:
    """``x`` must hold at least one example (a first dimension > 0)."""
    check_tensor(x, name)
    if x.ndim == 0 or x.shape[0] == 0 or x.numel() == 0:
        raise ValueError(f"{name} must hold at least one example, got an empty tensor of shape {tuple(x.shape)}")
    return x


def _nonfinite_message(x: torch.Tensor, name: str) -> str:
    nan, inf = int(torch.isnan(x).sum()), int(torch.isinf(x).sum())
    return (f"{name} must be finite, got {nan} NaN and {inf} infinite values among its {x.numel()} "
            f"(shape {tuple(x.shape)})")


def check_finite(x: torch.Tensor, name: str) -> torch.Tensor:
    """Every value of ``x`` must be finite (no NaN, no inf).  One device sync."""
    check_tensor(x, name)
    if x.is_floating_point() and x.numel() and not bool(torch.isfinite(x).all()):
        raise ValueError(_nonfinite_message(x, name))
    return x


def value_range(x: torch.Tensor, name: str) -> tuple[float, float]:
    """(min, max) of ``x`` after checking that it is finite and not empty; one device sync."""
    check_not_empty(x, name)
    values = x.detach()
    if values.dtype == torch.bool:
        values = values.to(torch.uint8)
    low, high = (float(v) for v in torch.stack(torch.aminmax(values)).tolist())
    if math.isnan(low) or math.isnan(high) or math.isinf(low) or math.isinf(high):
        raise ValueError(_nonfinite_message(values, name))
    return low, high


def check_range(x: torch.Tensor, name: str, low: float, high: float, tolerance: float = 1e-6,
                hint: str = "") -> torch.Tensor:
    """Every value of ``x`` must be finite and lie in [low, high] (up to ``tolerance``).  ``hint`` is
    appended to the message (the likely fix, e.g. "divide 8-bit images by 255")."""
    actual_low, actual_high = value_range(x, name)
    if actual_low < low - tolerance or actual_high > high + tolerance:
        raise ValueError(f"{name} must lie in [{low:g}, {high:g}], got values in [{actual_low:.4g}, {actual_high:.4g}]"
                         + (f" ({hint})" if hint else ""))
    return x


def _uint8_hint(x: torch.Tensor) -> str:
    # 8-bit images hold 0..255; the library's images are floats in [0, 1]
    return " (divide 8-bit images by 255: images.float() / 255)" if x.dtype == torch.uint8 else ""


def check_float(x: torch.Tensor, name: str) -> torch.Tensor:
    """``x`` must be a floating-point tensor (images are float in the library, not uint8)."""
    check_tensor(x, name)
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}{_uint8_hint(x)}")
    return x


def check_image_batch(images, name: str = "images", channels: int | tuple[int, ...] | None = None,
                      size: int | tuple[int, ...] | None = None, low: float = 0.0, high: float = 1.0,
                      tolerance: float = 1e-6, hint: str = "") -> torch.Tensor:
    """A batch of images N x C x H x W: a float tensor, not empty, finite, with values in [low, high].

    ``channels``: the allowed C (an int or a tuple); ``size``: the allowed H = W (an int or a tuple).
    Reads the values once (one device sync); returns ``images`` unchanged.
    """
    check_tensor(images, name)
    allowed_c = (channels,) if isinstance(channels, int) else channels
    allowed_s = (size,) if isinstance(size, int) else size
    expected = (f"N x {' or '.join(map(str, allowed_c)) if allowed_c else 'C'} x "
                + (" x ".join([str(allowed_s[0])] * 2) if allowed_s else "H x W")
                + "".join(f" (or {s} x {s})" for s in (allowed_s or ())[1:]))
    if images.ndim != 4:
        raise ValueError(f"{name} must be a batch of images {expected} in [{low:g}, {high:g}], "
                         f"got shape {tuple(images.shape)}")
    if allowed_c and images.shape[1] not in allowed_c:
        raise ValueError(f"{name} must be {expected}, got {images.shape[1]} channels in shape {tuple(images.shape)}")
    if allowed_s and (images.shape[2] != images.shape[3] or images.shape[2] not in allowed_s):
        raise ValueError(f"{name} must be {expected}, got shape {tuple(images.shape)}")
    check_not_empty(images, name)
    check_float(images, name)
    return check_range(images, name, low, high, tolerance, hint)


def check_labels(labels, name: str = "labels", n: int | None = None, n_classes: int | None = None) -> torch.Tensor:
    """Class labels: a 1-D integer tensor (``n`` entries when given) with values in [0, n_classes).

    Reads the values (one device sync): call it where labels enter, not in a training step; a model's
    ``forward`` checks only shape and dtype (:func:`check_label_shape`).  Returns int64 labels.
    """
    labels = check_label_shape(labels, name, n)
    if n_classes is not None and labels.numel():
        low, high = value_range(labels, name)
        if low < 0 or high >= n_classes:
            raise ValueError(f"{name} must lie in [0, {n_classes - 1}] (class indices), got values in "
                             f"[{int(low)}, {int(high)}]")
    return labels.long()


def check_label_shape(labels, name: str = "labels", n: int | None = None) -> torch.Tensor:
    """A 1-D integer tensor (``n`` entries when given).  Metadata only: no device sync."""
    if not torch.is_tensor(labels) or labels.ndim != 1 or (n is not None and labels.shape[0] != n):
        count = f"{n} class indices (one per image)" if n is not None else "class indices"
        raise ValueError(f"{name} must be a 1-D tensor of {count}, got {_describe(labels)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"{name} must be integers (int64), got dtype {labels.dtype}")
    return labels


def check_input_dtype(x: torch.Tensor, name: str, module: torch.nn.Module) -> torch.Tensor:
    """In ``forward``: ``x`` must be floating point with the dtype of the module's weights (metadata only).

    uint8 images are refused (their 0..255 scale is not the model's [0, 1]); float64 is refused rather
    than cast so that a silent copy of every batch never hides in a training loop (call ``.float()``).
    Under autocast, where activations between two models may be bf16, only the floating-point type is checked.
    """
    check_tensor(x, name)
    parameter = next(module.parameters(), None)
    expected = parameter.dtype if parameter is not None else torch.float32
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a {expected} tensor, got dtype {x.dtype}{_uint8_hint(x)}")
    if x.device.type != "meta" and torch.is_autocast_enabled(x.device.type):
        return x                # autocast casts each operation's inputs itself (bf16 activations on CUDA)
    if x.dtype != expected:
        raise ValueError(f"{name} must have the model's dtype {expected}, got {x.dtype} "
                         f"(convert with .to({expected}))")
    return x
