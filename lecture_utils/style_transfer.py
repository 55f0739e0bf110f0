"""Neural style transfer (Gatys, Ecker & Bethge 2015): optimise the pixels of an image so that its deep
features match a content image and its Gram matrices match a style image.

The feature extractors (VGG-19 with ImageNet weights, or the random multi-scale fallback) are modules in
:mod:`lecture_utils.models.style`; this module holds what runs them: :func:`transfer_style` (L-BFGS or
Adam on the pixels), :class:`StyleTransferResult`, :func:`resize_image` and
:func:`measured_receptive_fields`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .checks import check_float, check_range
from .losses import content_loss, gram_matrix, style_loss, total_variation
from .models.style import FeatureExtractor, check_images

# Adam's epsilon for the pixels: large, so that pixels whose gradient is tiny (flat regions) take small steps
# instead of Adam's usual ~lr step that marches them to saturation (see transfer_style)
ADAM_EPS = 0.5


def resize_image(image: torch.Tensor, max_side: int) -> torch.Tensor:
    """Resize a 3 x H x W image (antialiased) so that its longer side is ``max_side`` pixels."""
    if not isinstance(image, torch.Tensor) or image.ndim != 3 or image.shape[0] != 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"image must be a tensor 3 x H x W in [0, 1], got {shape}")
    if not isinstance(max_side, int) or max_side < 8:
        raise ValueError(f"max_side must be an int >= 8, got {max_side!r}")
    check_range(check_float(image, "image"), "image", 0.0, 1.0, hint="divide 8-bit images by 255")
    h, w = image.shape[1:]
    scale = max_side / max(h, w)
    size = (max(8, round(h * scale)), max(8, round(w * scale)))
    return F.interpolate(image[None], size=size, mode="bilinear", antialias=True,
                         align_corners=False)[0].clamp(0, 1)


# --------------------------------------------------------------------------- the optimisation
@dataclass
class StyleTransferResult:
    """The stylised image (1 x 3 x H x W in [0, 1]) and the loss terms per iteration.

    ``history`` is a list of records ``{"epoch": iteration (0 = the start), "content": ..., "style": ...,
    "tv": ..., "total": ...}`` with the *weighted* terms (what was minimised), plottable with
    :func:`lecture_utils.plotting.loss_curves`.  ``raw`` holds the unweighted final losses.
    """

    image: torch.Tensor
    history: list[dict] = field(default_factory=list)
    raw: dict = field(default_factory=dict)
    seconds: float = 0.0


def _losses(extractor, image, content_targets, content_scales, style_grams, layer_weights,
            content_weight, style_weight, tv_weight):
    features = extractor(image)
    content = sum(content_loss(features[name], target) / content_scales[name]
                  for name, target in content_targets.items()) / len(content_targets)
    style = style_loss(features, style_grams, layer_weights)
    tv = total_variation(image) if tv_weight > 0 else image.new_zeros(())
    total = content_weight * content + style_weight * style + tv_weight * tv
    return total, content, style, tv


def transfer_style(content: torch.Tensor, style: torch.Tensor, extractor: FeatureExtractor, *,
                   steps: int = 200, style_weight: float = 10.0, content_weight: float = 1.0,
                   tv_weight: float = 0.0, optimizer: str = "adam", lr: float | None = None,
                   init: str = "content", style_layers: tuple[str, ...] | None = None,
                   seed: int = 0) -> StyleTransferResult:
    """Gatys et al.'s style transfer: optimise the pixels x of an image to minimise

        L(x) = content_weight * L_content(x) + style_weight * sum_l w_l E_l(x) + tv_weight * TV(x)

    with E_l Gatys' style loss of layer l (:func:`~lecture_utils.losses.style_layer_loss`) and
    L_content the mean squared feature difference on the extractor's content layers.  Each term is
    measured relative to its target's size: w_l = 1 / (L * mean(A_l^2)) with
    A_l the style image's Gram matrix, and the content loss is divided by mean(P_l^2) with P_l the
    content image's features.  (Gatys et al. use w_l = 1 / L and tune the ratio of the weights per
    network; balanced layers let one range of ``style_weight`` work for any extractor, and keep a
    layer with large activations from drowning the others.)  ``style_layers`` (default: the
    extractor's) chooses the layers l.

    ``content``: 3 x H x W (or 1 x 3 x H x W) in [0, 1]; ``style``: 3 x H' x W' in [0, 1] (any size:
    Gram matrices do not depend on the layout).  ``optimizer``: ``"lbfgs"`` (Gatys et al.; one
    iteration per step, ``lr`` default 0.1) or ``"adam"`` (``lr`` default 0.02; it sees the loss summed
    over pixels, and its large epsilon :data:`ADAM_EPS` damps the steps of pixels whose gradient is tiny).  ``init``:
    ``"content"`` (start from the content photo) or ``"noise"`` (white noise, as in the paper's
    figures).  The losses see the pixels clipped to [0, 1]; Adam also clips the free pixels after
    every step (projected gradient descent).  ``history`` has ``steps + 1`` records: the losses
    before step 1 (``epoch`` 0) and after each step.  Runs on the extractor's device; returns a
    :class:`StyleTransferResult` with the image on the CPU.
    """
    device = next(extractor.buffers()).device
    content = content[None] if torch.is_tensor(content) and content.ndim == 3 else content
    style = style[None] if torch.is_tensor(style) and style.ndim == 3 else style
    for name, image in (("content", content), ("style", style)):
        check_images(image, name)
        check_float(image, name)
        check_range(image, name, 0.0, 1.0, hint="divide 8-bit images by 255")   # NaN and inf refused here
    if content.shape[0] != 1 or style.shape[0] != 1:
        raise ValueError(f"content and style must be single images, got {content.shape[0]} and {style.shape[0]}")
    if optimizer not in ("lbfgs", "adam"):
        raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {optimizer!r}")
    if init not in ("content", "noise"):
        raise ValueError(f"init must be 'content' or 'noise', got {init!r}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    content_layers = tuple(extractor.content_layers)
    style_layers = tuple(style_layers or extractor.style_layers)
    unknown = [n for n in content_layers + style_layers if n not in extractor.layers]
    if unknown:
        raise ValueError(f"layers {unknown} are not among the extractor's layers {list(extractor.layers)}")

    content, style = content.to(device), style.to(device)
    with torch.no_grad():
        content_features = extractor(content)
        style_features = extractor(style)
    content_targets = {name: content_features[name] for name in content_layers}
    style_grams = {name: gram_matrix(style_features[name]) for name in style_layers}
    content_scales = {name: float(t.pow(2).mean().clamp_min(1e-12)) for name, t in content_targets.items()}
    layer_weights = {name: 1.0 / (len(style_grams) * float(g.pow(2).mean().clamp_min(1e-12)))
                     for name, g in style_grams.items()}

    generator = torch.Generator().manual_seed(seed)
    start = content.clone() if init == "content" else torch.rand(content.shape, generator=generator).to(device)
    image = start.requires_grad_(True)
    if optimizer == "lbfgs":
        # one L-BFGS iteration per step with a strong-Wolfe line search.  With lr = 1 the first
        # trial steps push many pixels far outside [0, 1], where the clipped loss is flat, and the
        # search stalls; lr = 0.1 starts the search inside the box.
        opt = torch.optim.LBFGS([image], lr=lr or 0.1, max_iter=1, history_size=20,
                                line_search_fn="strong_wolfe")
    else:
        # Adam moves every pixel by about lr per step however small its gradient, so pixels in flat
        # regions, pushed gently by the style term, would march to saturation (speckle).  A large eps
        # damps such steps; the loss is summed over pixels (times n_pixels below) so that eps means the
        # same at every image size.
        opt = torch.optim.Adam([image], lr=lr or 0.02, eps=ADAM_EPS)
    loss_scale = float(content.shape[2] * content.shape[3]) if optimizer == "adam" else 1.0
    targets = (content_targets, content_scales, style_grams, layer_weights)
    weights = (content_weight, style_weight, tv_weight)
    terms = []  # per step: (total, content, style, tv) at the pixels the step started from

    def closure():
        # the losses see clamp(image, 0, 1): a fixed function of the free pixels, as the L-BFGS line
        # search needs (clipping the pixels in place inside the closure would break it)
        opt.zero_grad(set_to_none=True)
        total, c, s, t = _losses(extractor, image.clamp(0, 1), *targets, *weights)
        (total * loss_scale).backward()
        evaluations.append(torch.stack([total.detach(), c.detach(), s.detach(), t.detach()]))
        return total

    evaluations: list[torch.Tensor] = []  # every evaluation, detached; read once at the end (no sync per step)
    began = time.perf_counter()
    for _ in range(steps):
        first = len(evaluations)
        opt.step(closure)  # both optimisers evaluate the loss at the current pixels first
        terms.append(evaluations[first])
        if optimizer == "adam":  # projected gradient descent: pull the free pixels back to the box
            with torch.no_grad():
                image.clamp_(0, 1)
    with torch.no_grad():
        image.clamp_(0, 1)
        total, c, s, t = _losses(extractor, image, *targets, *weights)
    terms.append(torch.stack([total, c, s, t]))
    seconds = time.perf_counter() - began
    values = torch.stack(terms).cpu().tolist()
    history = [{"epoch": i, "content": content_weight * row[1], "style": style_weight * row[2],
                "tv": tv_weight * row[3], "total": row[0]} for i, row in enumerate(values)]
    if not all(torch.isfinite(torch.tensor(values)).flatten().tolist()):
        raise FloatingPointError("style transfer diverged (a loss became NaN or infinite); lower lr or the weights")
    raw = {"content": float(c), "style": float(s), "tv": float(t), "total": float(total)}
    return StyleTransferResult(image=image.detach().cpu(), history=history, raw=raw, seconds=seconds)


def measured_receptive_fields(extractor: FeatureExtractor, size: int = 128, threshold: float = 1e-4,
                              seed: int = 0) -> dict[str, int]:
    """The receptive field of each layer of ``extractor``, measured with autograd: the side, in input
    pixels, of the region whose gradient reaches one output unit (the layer's centre location, summed
    over its channels) with a magnitude above ``threshold`` times the largest.  Input: a seeded random
    ``size`` x ``size`` colour image (the ReLUs make the gradient depend on it).  ``size`` must exceed
    the largest field, or the field is cut at the image's border."""
    if size < 8 or not 0 < threshold < 1:
        raise ValueError(f"need size >= 8 and 0 < threshold < 1, got size={size}, threshold={threshold}")
    image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))
    fields = {}
    for name in extractor.layers:
        x = image.clone().requires_grad_(True)
        features = extractor(x)[name]                                         # 1 x C x h x w
        h, w = features.shape[2:]
        (gradient,) = torch.autograd.grad(features[0, :, h // 2, w // 2].sum(), x)  # leaves the weights alone
        magnitude = gradient[0].abs().amax(0)                                 # size x size
        support = magnitude > threshold * magnitude.max()
        rows, cols = support.any(1).nonzero().flatten(), support.any(0).nonzero().flatten()
        fields[name] = int(max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1)
    return fields
