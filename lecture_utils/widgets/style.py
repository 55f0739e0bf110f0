"""The style-weight trade-off of notebook 08: one stylised image per style weight, a slider over the weights."""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch

from .base import PANEL_PIXELS, StaticFallback, display_widget, to_pil, to_png


def _image(image, name: str) -> torch.Tensor:
    """An image C x H x W (or 1 x C x H x W), C = 1 or 3, as a float32 CPU tensor in [0, 1]."""
    image = torch.as_tensor(image).detach().float().cpu()
    image = image[0] if image.ndim == 4 else image
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"{name} must be C x H x W (or 1 x C x H x W) with C = 1 or 3, got {tuple(image.shape)}")
    return image.clamp(0, 1)


class StyleWeightExplorer(StaticFallback, widgets.VBox):
    """A slider over style weights and the stylised image for the chosen weight (with its losses).

    Build it with :func:`style_weight_slider`.  Attributes: ``overview`` (``widgets.Image`` of the static
    figure), ``slider`` (``SelectionSlider`` of the weights,
    starting in the middle), ``weights`` (sorted), ``image`` (``widgets.Image``), ``caption`` (``widgets.HTML``),
    ``current_image()`` (C x H x W).
    """

    def __init__(self, results: dict, content=None, style=None, losses: dict | None = None):
        if not results:
            raise ValueError("results is empty: give {style weight: image}")
        self.weights = sorted(results)
        self.results = {w: _image(results[w], f"results[{w!r}]") for w in self.weights}
        self.content = None if content is None else _image(content, "content")
        self.style = None if style is None else _image(style, "style")
        self.losses = dict(losses or {})
        scale = max(1, round(2 * PANEL_PIXELS / self.results[self.weights[0]].shape[1]))
        self._pngs = {w: to_png(to_pil(image, scale)) for w, image in self.results.items()}
        self.slider = widgets.SelectionSlider(options=[(f"{w:g}", w) for w in self.weights],
                                              value=self.weights[len(self.weights) // 2], description="style weight",
                                              continuous_update=True, layout=widgets.Layout(width="480px"))
        self.caption = widgets.HTML()
        self.image = widgets.Image(format="png")
        # the overview (every weight at once) stays above the slider, which shows one result large
        self.overview = widgets.Image(value=self.static_png(), format="png")
        super().__init__([self.overview, self.slider, self.caption, self.image])
        self.add_class("style-weight-explorer")
        self._on_move()
        self.slider.observe(self._on_move, names="value")

    def current_image(self) -> torch.Tensor:
        """The stylised image for the chosen weight (C x H x W in [0, 1])."""
        return self.results[self.slider.value]

    def _losses(self, weight) -> str:
        found = self.losses.get(weight)
        return f"content {found['content']:.3g}, style {found['style']:.3g}" if found else ""

    def _on_move(self, _change=None) -> None:
        weight = self.slider.value
        note = self._losses(weight)
        self.caption.value = f"style weight {weight:g}" + (f" &nbsp; ({note})" if note else "")
        self.image.value = self._pngs[weight]

    def static_figure(self):
        """[content | one result per weight, increasing | style], each result's losses under it."""
        panels = ([("content", self.content, "")] if self.content is not None else []) + \
            [(f"style weight {w:g}", self.results[w], self._losses(w).replace(", ", "\n"))
             for w in self.weights] + ([("style", self.style, "")] if self.style is not None else [])
        fig, axes = plt.subplots(1, len(panels), figsize=(2.2 * len(panels), 2.6), squeeze=False)
        for ax, (title, image, note) in zip(axes[0], panels):
            ax.imshow(image.expand(3, -1, -1).permute(1, 2, 0).numpy())
            ax.set_title(title, fontsize=9)
            ax.set_xlabel(note, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle("More style weight: more of the style's textures and colours, less of the content's detail")
        fig.tight_layout()
        return fig


def style_weight_slider(results: dict, content=None, style=None, losses: dict | None = None,
                        show: bool = True) -> StyleWeightExplorer:
    """The style-weight trade-off: ``results`` maps style weights to stylised images (C x H x W in [0, 1]).

    ``losses`` (``{weight: {"content": c, "style": s}}``, optional) are shown with each result.  The
    widget's output carries a static figure [content | one result per weight | style] for front ends
    without widgets.  ``show``: display it now (in a live kernel).
    """
    widget = StyleWeightExplorer(results, content=content, style=style, losses=losses)
    if show:
        display_widget(widget)
    return widget
