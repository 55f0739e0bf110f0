"""What every widget of the course shares.

Each widget is an ``ipywidgets.VBox`` subclass built by a function of the same name
(``interpolation_explorer`` builds an :class:`~.latent.InterpolationExplorer`) that displays it in a
live kernel.  Whatever can be computed ahead is computed when the widget is built, so that moving a
control swaps PNG bytes.  Every widget also draws a static figure (:class:`StaticFallback`): its
output carries that figure as a PNG beside the widget view, so an executed notebook, a PDF or a web
page, which cannot run the widget, still shows what it would show.
"""
from __future__ import annotations

import base64
import functools
import io
from typing import Callable

import matplotlib.pyplot as plt
import torch
from IPython import get_ipython
from IPython.display import display
from PIL import Image, ImageFont

from ..checks import value_range

PANEL_PIXELS = 160          # decoded images are scaled up (nearest) to about this many pixels
CAPTION_PIXELS = 20         # the caption strip above the panels


def in_kernel() -> bool:
    """True inside a live Jupyter kernel, where a displayed widget gets a front end."""
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def display_widget(widget) -> None:
    """Display ``widget`` in a live kernel; elsewhere (a script, a test) do nothing."""
    if in_kernel():
        display(widget)


class StaticFallback:
    """Mixin: the widget's output carries a static PNG of :meth:`static_figure` beside the widget view (cached)."""

    _static_png_cache: bytes | None = None

    def static_figure(self):  # pragma: no cover - every widget defines it
        raise NotImplementedError

    def static_png(self) -> bytes:
        """The static picture (PNG bytes) shown where no widget front end exists."""
        if self._static_png_cache is None:
            self._static_png_cache = figure_png(self.static_figure())
        return self._static_png_cache

    def _repr_mimebundle_(self, **kwargs):
        data = super()._repr_mimebundle_(**kwargs) or {"text/plain": repr(self)[:110]}
        data["image/png"] = base64.b64encode(self.static_png()).decode("ascii")
        return data


@functools.lru_cache(maxsize=1)
def caption_font():
    try:
        return ImageFont.load_default(size=14)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def check_codes(name: str, z: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """A latent code as a finite float vector (d,) on the CPU; 1 x d is accepted."""
    z = torch.as_tensor(z).detach().float().cpu()
    if z.ndim == 2 and z.shape[0] == 1:
        z = z[0]
    if z.ndim != 1 or (size is not None and z.shape[0] != size):
        expected = f"a vector of {size} numbers" if size is not None else "a vector (d,) or 1 x d"
        raise ValueError(f"{name} must be {expected}, got shape {tuple(z.shape)}")
    if not bool(torch.isfinite(z).all()):
        raise ValueError(f"{name} must be finite, got {z.tolist()}")
    return z


@torch.no_grad()
def decode_checked(decode: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor,
                   chunk: int = 256) -> torch.Tensor:
    """``decode(z)`` in chunks, checked: float images B x C x H x W in [0, 1] (C = 1 or 3) on the CPU."""
    outputs = []
    for start in range(0, z.shape[0], chunk):
        images = decode(z[start:start + chunk])
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3):
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"decode must return images B x C x H x W with C = 1 or 3, got {shape}")
        outputs.append(images.detach().float().cpu())
    images = torch.cat(outputs)
    if images.shape[0] != z.shape[0]:
        raise ValueError(f"decode returned {images.shape[0]} images for {z.shape[0]} codes")
    low, high = value_range(images, "the images decode returned")      # NaN and inf refused here
    if low < -1e-4 or high > 1 + 1e-4:
        raise ValueError(f"decode must return images in [0, 1], got values in [{low:.3g}, {high:.3g}] "
                         "(rescale a tanh generator with (x + 1) / 2)")
    return images.clamp(0, 1)


def to_pil(image: torch.Tensor, scale: int) -> Image.Image:
    """One C x H x W image in [0, 1] as an RGB PIL image scaled up ``scale`` times (nearest)."""
    pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8)
    if pixels.shape[0] == 1:
        pixels = pixels.expand(3, -1, -1)
    array = pixels.permute(1, 2, 0).contiguous().numpy()
    picture = Image.fromarray(array, mode="RGB")
    return picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)


def to_png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes; the figure is closed (it is not shown a second time)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()
