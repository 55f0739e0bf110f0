"""The class picker of notebook 05: a class-conditional decoder driven by a class and latent sliders."""
from __future__ import annotations

from typing import Callable

import ipywidgets as widgets
import numpy as np
import torch

from .. import plotting
from .base import StaticFallback, check_codes, decode_checked, display_widget, to_pil, to_png
from .latent import LatentSliders

# A class-conditional decoder ``decode(z, labels)`` (codes B x d, labels B int64 -> images B x C x H x W in
# [0, 1]) drives the latent sliders above, with the class as one more control.  Below the sliders, the
# same code z is decoded for *every* class: the class changes, the style the code carries stays.
class ClassConditionalExplorer(StaticFallback, widgets.VBox):
    """A class picker, latent sliders (a :class:`LatentSliders`) and a strip of the current code in every class.

    Build it with :func:`class_explorer`.  Attributes: ``picker`` (``ToggleButtons`` of the classes),
    ``sliders`` (the :class:`LatentSliders`), ``strip`` (``widgets.Image``: the current z for each class),
    ``code()``, ``label()``, ``current_image()`` and ``strip_images()`` (n_classes x C x H x W).
    """

    def __init__(self, decode, z0, class_names=None, dims=None, value_range=(-3.0, 3.0), step: float = 0.1,
                 n_codes: int = 6, seed: int = 0, title: str | None = None):
        self.decode_conditional = decode
        z0 = check_codes("z0", z0)
        self.class_names = [str(c) for c in (range(10) if class_names is None else class_names)]
        if not self.class_names:
            raise ValueError("class_names must name at least one class")
        self.n_classes, self.n_codes, self.seed, self.title = len(self.class_names), n_codes, seed, title
        self.picker = widgets.ToggleButtons(options=[(name, i) for i, name in enumerate(self.class_names)],
                                            value=0, description="class", style={"button_width": "34px"})
        self.sliders = LatentSliders(self._decode_picked, z0, dims=dims, value_range=value_range, step=step)
        self.strip = widgets.Image(format="png")
        self.strip.add_class("class-strip")
        header = [widgets.HTML(f"<b>{title}</b>")] if title else []
        super().__init__(header + [self.picker, self.sliders,
                                   widgets.HTML("the same z, every class:"), self.strip])
        self.add_class("class-explorer")
        self._update_strip()
        self.picker.observe(self._on_pick, names="value")
        for slider in self.sliders.sliders:
            slider.observe(self._update_strip, names="value")

    def _labels(self, label: int, n: int) -> torch.Tensor:
        return torch.full((n,), int(label), dtype=torch.long)

    def _decode_picked(self, z: torch.Tensor) -> torch.Tensor:
        return self.decode_conditional(z, self._labels(self.label() if hasattr(self, "picker") else 0, z.shape[0]))

    def label(self) -> int:
        """The picked class."""
        return int(self.picker.value)

    def code(self) -> torch.Tensor:
        """The current code (d,)."""
        return self.sliders.code()

    def current_image(self) -> torch.Tensor:
        """The current code decoded in the picked class (C x H x W in [0, 1])."""
        return self.sliders.current_image()

    def strip_images(self) -> torch.Tensor:
        """The current code decoded in every class: n_classes x C x H x W in [0, 1]."""
        z = self.code()[None].repeat(self.n_classes, 1)
        return decode_checked(lambda codes: self.decode_conditional(codes, torch.arange(self.n_classes)), z)

    def _on_pick(self, _change=None) -> None:
        self.sliders._on_move()

    def _update_strip(self, _change=None) -> None:
        images = self.strip_images()
        scale = max(1, round(56 / images.shape[2]))
        grid = plotting.grid_array(images, nrow=self.n_classes, padding=1)
        pixels = torch.from_numpy(np.ascontiguousarray(grid)).permute(2, 0, 1).float()
        self.strip.value = to_png(to_pil(pixels, scale))

    def static_figure(self):
        """Rows: ``n_codes`` seeded codes (the first is the sliders' z0); columns: the classes."""
        codes = torch.randn(self.n_codes, self.sliders.z0.shape[0], generator=torch.Generator().manual_seed(self.seed))
        codes[0] = self.sliders.z0
        rows = [decode_checked(lambda c: self.decode_conditional(c, torch.arange(self.n_classes)),
                               z[None].repeat(self.n_classes, 1)) for z in codes]
        return plotting.image_rows(rows, [f"z #{i}" for i in range(self.n_codes)],
                                   title=(self.title or "class-conditional samples")
                                   + ": one z per row, one class per column (" + ", ".join(self.class_names) + ")")


def class_explorer(decode: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], z0: torch.Tensor,
                   class_names=None, dims=None, value_range: tuple[float, float] = (-3.0, 3.0), step: float = 0.1,
                   n_codes: int = 6, seed: int = 0, title: str | None = None,
                   show: bool = True) -> ClassConditionalExplorer:
    """A class picker plus latent sliders for a class-conditional decoder, with the same z shown in every class.

    Args:
        decode: ``decode(z, labels)``: codes (B x d) and int64 labels (B) -> images (B x C x H x W in [0, 1]),
            e.g. ``lambda z, y: sample_conditional(generator, y, z)``.
        z0: the starting code (d,).
        class_names: one name per class (default the digits 0-9).
        dims, value_range, step: the sliders (see :func:`latent_sliders`).
        n_codes, seed: the static fallback shows ``n_codes`` codes (z0 and seeded normal ones) in every class.
        show: display it now (in a live kernel); its output carries the static grid as PNG.
    """
    widget = ClassConditionalExplorer(decode, z0, class_names=class_names, dims=dims, value_range=value_range,
                                      step=step, n_codes=n_codes, seed=seed, title=title)
    if show:
        display_widget(widget)
    return widget
