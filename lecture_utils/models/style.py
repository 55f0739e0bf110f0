"""Neural style transfer (Gatys, Ecker & Bethge 2015): the feature extractors.

Two feature extractors share one interface (``extractor(images) -> {layer name: N x C x H x W}``):

* :class:`VGG19Features` -- the convolutional part of VGG-19 with torchvision's ImageNet weights
  (``VGG19_Weights.IMAGENET1K_V1``), loaded through torchvision's weights API from torch's hub
  cache (``$TORCH_HOME/hub/checkpoints``), downloaded there when online.  This is Gatys et al.'s
  network.
* :class:`RandomMultiScaleFeatures` -- the offline fallback: one layer of random convolution
  filters at several scales.  Untrained filters at several scales already capture texture
  statistics through their Gram matrices (Ustyuzhaninov et al. 2016, "Texture synthesis using
  shallow convolutional networks with random filters"; He, Wang & Hopcroft 2016, "A powerful
  generative model using random weights for the deep image representation").

:func:`feature_extractor` returns the VGG-19 when its weights can be had, else the fallback with a
one-line notice.  The pixel optimisation that uses them is :func:`lecture_utils.style_transfer.transfer_style`.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import VGG19_Weights

from .. import downloads
from ..budget import offline
from ..checks import check_input_dtype, check_not_empty, check_tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# VGG-19 ("configuration E" of Simonyan & Zisserman): channels per 3x3 convolution, "M" = 2x2 pooling.
VGG19_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                512, 512, 512, 512, "M", 512, 512, 512, 512, "M")


def vgg19_layer_indices() -> dict[str, int]:
    """``{"conv1_1": 0, "conv1_2": 2, ..., "conv5_4": 34}``: each convolution's index in torchvision's
    ``vgg19().features`` (so that state-dict keys ``features.<index>.weight`` match)."""
    indices, block, conv, index = {}, 1, 1, 0
    for item in VGG19_CONFIG:
        if item == "M":
            block, conv = block + 1, 1
            index += 1
        else:
            indices[f"conv{block}_{conv}"] = index
            conv += 1
            index += 2  # the convolution and its ReLU
    return indices


# Gatys et al.: content on conv4_2, style on conv1_1 ... conv5_1 (each after its ReLU).
VGG19_CONTENT_LAYERS = ("conv4_2",)
VGG19_STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")


def check_images(images: torch.Tensor, name: str = "images", module: nn.Module | None = None) -> None:
    """``images`` must be a batch N x 3 x H x W (N >= 1); with ``module``, of the module's floating dtype.
    Metadata only (no device sync): the value range is checked where images enter, not in ``forward``."""
    check_tensor(images, name)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"{name} must be a tensor N x 3 x H x W with values in [0, 1], got shape {tuple(images.shape)}")
    check_not_empty(images, name)
    if module is not None:
        check_input_dtype(images, name, module)


class FeatureExtractor(nn.Module):
    """Maps images (N x 3 x H x W in [0, 1]) to ``{layer name: features N x C x h x w}``.

    Attributes every extractor has: ``key`` (short id written to the results file), ``description``
    (one line for people), ``layers`` (all layer names it returns), ``content_layers`` and
    ``style_layers`` (the defaults for style transfer).  Its weights are fixed (no gradients).
    """

    key: str = "base"
    description: str = ""
    content_layers: tuple[str, ...] = ()
    style_layers: tuple[str, ...] = ()

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images, module=self)
        return (images - self.mean) / self.std

    def freeze(self) -> "FeatureExtractor":
        self.eval()
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        return self

    @property
    def layers(self) -> tuple[str, ...]:
        raise NotImplementedError


class VGG19Features(FeatureExtractor):
    """The convolutional part of VGG-19, up to the deepest layer asked for.

    Layers keep torchvision's indices (``features.<i>``), so torchvision's ImageNet state dict
    loads into it key for key.  Each returned feature map is taken after the layer's ReLU.
    ``pooling="avg"`` replaces max pooling with average pooling, as Gatys et al. did ("improves the
    gradient flow and one obtains slightly more appealing results"); the weights are unchanged.
    """

    key = "vgg19_imagenet"
    description = "VGG-19 with ImageNet weights (torchvision)"

    def __init__(self, layers: tuple[str, ...] = VGG19_CONTENT_LAYERS + VGG19_STYLE_LAYERS,
                 pooling: str = "avg"):
        super().__init__()
        indices = vgg19_layer_indices()
        unknown = [name for name in layers if name not in indices]
        if unknown or not layers:
            raise ValueError(f"layers must be VGG-19 layer names from {list(indices)}, got {list(layers)}")
        if pooling not in ("avg", "max"):
            raise ValueError(f"pooling must be 'avg' or 'max', got {pooling!r}")
        self._layers = tuple(layers)
        self.content_layers = tuple(n for n in VGG19_CONTENT_LAYERS if n in layers) or self._layers[-1:]
        self.style_layers = tuple(n for n in VGG19_STYLE_LAYERS if n in layers) or self._layers
        self._index_to_name = {indices[name]: name for name in layers}
        last = max(self._index_to_name)
        modules: list[nn.Module] = []
        channels = 3
        for item in VGG19_CONFIG:
            if len(modules) > last:
                break
            if item == "M":
                pool = nn.AvgPool2d if pooling == "avg" else nn.MaxPool2d
                modules.append(pool(kernel_size=2, stride=2))                   # N x C x H/2 x W/2
            else:
                modules += [nn.Conv2d(channels, item, kernel_size=3, padding=1),  # N x item x H x W
                            nn.ReLU(inplace=False)]
                channels = item
        self.features = nn.Sequential(*modules[:last + 2])  # up to the last layer's ReLU

    @property
    def layers(self) -> tuple[str, ...]:
        return self._layers

    def load_imagenet_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Copy torchvision's ``vgg19`` weights (keys ``features.<i>.weight/bias``) into this extractor.

        Only the keys of the layers built here are needed; a missing or misshapen one is an error.
        """
        own = self.state_dict()
        wanted = [key for key in own if key.startswith("features.")]
        missing = [key for key in wanted if key not in state_dict]
        if missing:
            raise ValueError(f"the VGG-19 state dict lacks {missing[:4]}{' ...' if len(missing) > 4 else ''}")
        for key in wanted:
            if tuple(state_dict[key].shape) != tuple(own[key].shape):
                raise ValueError(f"VGG-19 weight {key} must have shape {tuple(own[key].shape)}, "
                                 f"got {tuple(state_dict[key].shape)}")
        self.load_state_dict({**own, **{key: state_dict[key] for key in wanted}})

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.normalise(images)
        out = {}
        for index, module in enumerate(self.features):
            x = module(x)
            # a layer's output is read after its ReLU, which sits at index + 1
            name = self._index_to_name.get(index - 1) if isinstance(module, nn.ReLU) else None
            if name is not None:
                out[name] = x
        return out


class RandomMultiScaleFeatures(FeatureExtractor):
    """Offline fallback: one layer of random filters, applied at several scales.

    Scale s blurs the image with a Gaussian and keeps every 2^s-th pixel (a Gaussian pyramid), then
    applies ``channels`` random ``kernel_size`` x ``kernel_size`` filters with a ReLU, so the receptive
    fields grow as (kernel_size - 1) * 2^s plus the blur's width: 5, 13, 25 and 49 pixels with the defaults
    (:func:`lecture_utils.style_transfer.measured_receptive_fields` measures them), like the multi-scale
    random filters of Ustyuzhaninov et al. (2016).  (Plain 2^s x 2^s average pooling would do the
    same job but its gradient is constant over each block, which paints visible blocks into the
    optimised image.)
    The filters are drawn from a seeded generator and made zero-mean, so they respond to structure
    (edges, spots, stripes), not to flat colour; the biases are zero.  Each scale's features also carry
    the blurred colour channels themselves (3 more channels), so that the content loss holds the
    colours of flat regions and the Gram matrices hold the palette.  (Without them, flat regions are
    invisible to the content loss and fill with saturated speckle.)

    Style layers: every scale.  Content layer: ``scale2`` (one quarter resolution), which fixes the
    layout but leaves the fine texture free, the role conv4_2 plays in VGG-19.
    """

    key = "random_multiscale_cnn"
    description = "random multi-scale CNN (offline fallback, no trained weights)"

    def __init__(self, scales: int = 4, channels: int = 128, kernel_size: int = 5, seed: int = 0):
        super().__init__()
        if scales < 1 or channels < 1 or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"need scales >= 1, channels >= 1 and an odd kernel_size, got "
                             f"scales={scales}, channels={channels}, kernel_size={kernel_size}")
        generator = torch.Generator().manual_seed(seed)
        weight = torch.randn(scales, channels, 3, kernel_size, kernel_size, generator=generator)
        weight = weight - weight.mean(dim=(2, 3, 4), keepdim=True)
        weight = weight / weight.flatten(2).norm(dim=2)[..., None, None, None]  # unit-norm filters
        self.convs = nn.ModuleList()
        for s in range(scales):
            conv = nn.Conv2d(3, channels, kernel_size, padding=kernel_size // 2,  # N x channels x H/2^s x W/2^s
                             padding_mode="reflect")  # zero padding would paint artefacts along the borders
            with torch.no_grad():
                conv.weight.copy_(weight[s])
                conv.bias.zero_()
            self.convs.append(conv)
        self._layers = tuple(f"scale{s}" for s in range(scales))
        self.margin = 2 ** (scales - 1)  # mirrored border, a multiple of every scale's step
        self.style_layers = self._layers
        self.content_layers = (self._layers[min(2, scales - 1)],)

    @property
    def layers(self) -> tuple[str, ...]:
        return self._layers

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        # Mirror the image by `margin` pixels on every side, compute the features, and crop them back to
        # the image: every pixel, the border ones included, is seen with context at every scale.  (Without
        # this the optimisation paints a frame of saturated pixels along the borders.)
        x = self.normalise(images)
        h, w = x.shape[2:]
        if min(h, w) <= self.margin:  # the mirrored border must fit inside the image
            raise ValueError(f"images must be at least {self.margin + 1} x {self.margin + 1} pixels for "
                             f"{len(self.convs)} scales, got {h} x {w}")
        m = self.margin
        x = F.pad(x, (m, m, m, m), mode="reflect")                             # N x 3 x H+2m x W+2m
        out = {}
        for s, (name, conv) in enumerate(zip(self._layers, self.convs)):
            pooled = gaussian_downsample(x, 2 ** s)                             # N x 3 x (H+2m)/2^s x ...
            features = torch.cat([F.relu(conv(pooled)), pooled], 1)            # N x channels+3 x ...
            crop = m // 2 ** s
            out[name] = features[:, :, crop:features.shape[2] - crop, crop:features.shape[3] - crop]  # N x C+3 x H/2^s x W/2^s
        return out


def gaussian_downsample(images: torch.Tensor, factor: int) -> torch.Tensor:
    """Blur with a Gaussian (sigma = factor / 2, reflected borders) and keep every ``factor``-th pixel.

    ``images``: N x C x H x W; returns N x C x ceil(H / factor) x ceil(W / factor).  ``factor=1`` is the identity.
    """
    if factor == 1:
        return images
    sigma = factor / 2
    radius = int(math.ceil(2 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-taps ** 2 / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    x = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), stride=(1, factor), groups=c)  # along W
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), stride=(factor, 1), groups=c)  # along H


# --------------------------------------------------------------------------- loading the weights
def vgg19_cache_file() -> Path:
    """Where torch's hub cache keeps torchvision's VGG-19 weights (``$TORCH_HOME/hub/checkpoints/...``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(VGG19_Weights.IMAGENET1K_V1.url)


def load_vgg19_state_dict(download: bool = True) -> tuple[dict | None, str]:
    """torchvision's VGG-19 ImageNet state dict, or ``(None, reason)``.

    The file (548 MB) is read from torch's hub cache, where torchvision's weights API looks for it; when
    it is not there it is downloaded into the cache (:func:`lecture_utils.downloads.download`: a timeout,
    the sha256 prefix in the file's name checked, no partial file left).  Without the file, with
    ``download=False`` or ``$LECTURE_UTILS_OFFLINE=1``, or when the download fails, the state dict is
    None and the reason says why.
    """
    weights = VGG19_Weights.IMAGENET1K_V1
    cached = vgg19_cache_file()
    if not cached.is_file():
        if not download or offline():
            return None, f"no cached weights at {cached} and downloading is off"
        expected = torch.hub.HASH_REGEX.search(cached.name)
        fetched = downloads.download(weights.url, cached, what="VGG-19 weights",
                                     checksum=("sha256", expected.group(1)) if expected else None)
        if fetched is None:
            return None, "download failed"
    try:
        state = weights.get_state_dict(progress=False, check_hash=True)
    except Exception as error:  # a corrupted or foreign cache file
        first_line = str(error).splitlines()[0] if str(error) else ""
        return None, f"the cached file {cached} is unreadable (delete it): {type(error).__name__} {first_line}".strip()
    if not isinstance(state, dict):
        return None, f"the cached file {cached} holds a {type(state).__name__}, not a state dict"
    return state, f"torchvision VGG19_Weights.IMAGENET1K_V1 from {cached}"


def feature_extractor(layers: tuple[str, ...] | None = None, pooling: str = "avg",
                      device: torch.device | str = "cpu") -> FeatureExtractor:
    """The style-transfer feature extractor: VGG-19 with ImageNet weights when available, else the fallback.

    Tries torchvision's weights (hub cache, then download); if they cannot be had, one printed line says
    why and a :class:`RandomMultiScaleFeatures` is returned instead.  ``layers`` and ``pooling`` (VGG-19
    only) default to Gatys et al.'s layers and average pooling.  The extractor is frozen (eval mode, no
    gradients for its weights) and on ``device``.
    """
    state, reason = load_vgg19_state_dict()
    if state is not None:
        extractor = VGG19Features(layers or VGG19_CONTENT_LAYERS + VGG19_STYLE_LAYERS, pooling=pooling)
        try:
            extractor.load_imagenet_state_dict(state)
        except ValueError as error:
            reason = f"the cached file {vgg19_cache_file()} does not fit VGG-19 ({error})"
        else:
            print(f"[lecture_utils] style features: {extractor.description} ({reason})")
            return extractor.freeze().to(device)
    print(f"[lecture_utils] VGG-19 ImageNet weights unavailable ({reason}); "
          "using a random multi-scale CNN instead (textures yes, object-level content no)")
    return RandomMultiScaleFeatures().freeze().to(device)
