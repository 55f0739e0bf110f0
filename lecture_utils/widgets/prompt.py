"""The prompt box of notebook 09: type a caption, see samples."""
from __future__ import annotations

import html
from typing import Callable

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch

from .. import plotting
from .base import StaticFallback, display_widget, to_pil, to_png


class PromptBox(StaticFallback, widgets.VBox):
    """A caption box, a button, and samples for the caption.

    Build it with :func:`prompt_box`.  A caption ``generate`` refuses with ValueError (unknown words) shows the
    error's message instead of samples.  Attributes: ``overview`` (``widgets.Image`` of the static figure),
    ``text`` (``widgets.Text``), ``button``, ``image``
    (``widgets.Image``), ``message`` (``widgets.HTML``), ``examples``, ``messages`` (``{caption: message}`` of
    the example captions that could not be drawn), ``current_images()``.
    """

    def __init__(self, generate: Callable[[str, int], torch.Tensor], examples, samples_per_caption: int = 8):
        if not isinstance(samples_per_caption, int) or samples_per_caption < 1:
            raise ValueError(f"samples_per_caption must be a positive int, got {samples_per_caption!r}")
        self.generate, self.samples_per_caption = generate, samples_per_caption
        self.examples = [examples] if isinstance(examples, str) else list(examples)
        self.rows, self.labels, self.messages = [], [], {}
        for caption in self.examples:
            try:
                self.rows.append(generate(caption, samples_per_caption))
                self.labels.append(caption)
            except ValueError as error:
                self.messages[caption] = str(error)
        self.text = widgets.Text(value=self.examples[0] if self.examples else "", description="caption",
                                 layout=widgets.Layout(width="520px"), continuous_update=False)
        self.button = widgets.Button(description="draw", button_style="primary")
        self.message = widgets.HTML()
        self.image = widgets.Image(format="png")
        # the example captions' samples stay above the box, which draws the caption typed
        self.overview = widgets.Image(value=self.static_png(), format="png")
        super().__init__([self.overview, widgets.HBox([self.text, self.button]), self.message, self.image])
        self.add_class("prompt-box")
        self._images = None
        self._draw()
        self.button.on_click(self._draw)
        self.text.observe(self._draw, names="value")

    def current_images(self) -> torch.Tensor | None:
        """The samples shown now (n x C x H x W in [0, 1]), or None when the caption was refused."""
        return self._images

    def _draw(self, _change=None) -> None:
        try:
            images = self.generate(self.text.value, self.samples_per_caption)
        except ValueError as error:
            self._images = None
            self.message.value = f"<pre>{html.escape(str(error))}</pre>"
            return
        self._images = images = images.detach().float().cpu().clamp(0, 1)
        self.message.value = ""
        grid = plotting.grid_array(images, nrow=images.shape[0], padding=2)
        pixels = torch.from_numpy(np.ascontiguousarray(grid)).permute(2, 0, 1).float()
        self.image.value = to_png(to_pil(pixels, max(1, round(64 / images.shape[2]))))

    def static_figure(self):
        """One row of samples per example caption; the captions that were refused, with their messages."""
        if self.rows:
            return plotting.image_rows(self.rows, self.labels, title="Samples for each caption", width=11)
        fig, ax = plt.subplots(figsize=(11, 1 + 0.4 * len(self.messages)))
        ax.axis("off")
        ax.text(0, 1, "\n".join(f"{c!r}: {m.splitlines()[0]}" for c, m in self.messages.items()) or "no captions",
                va="top", family="monospace", fontsize=8)
        return fig


def prompt_box(generate: Callable[[str, int], torch.Tensor], examples, samples_per_caption: int = 8,
               show: bool = True) -> PromptBox:
    """Type a caption, see samples.  ``generate(caption, n)`` returns n images (n x C x H x W in [0, 1]).

    A caption with unknown words shows the error's message (which names the words and the vocabulary;
    see :class:`~lecture_utils.models.text_to_image.UnknownWordsError`) instead of images.  Each example
    caption that cannot be drawn is printed with its message and kept in ``box.messages``.  The widget's
    output carries a static figure, one row of samples per example caption.  ``show``: display it now (in
    a live kernel).
    """
    box = PromptBox(generate, examples, samples_per_caption=samples_per_caption)
    for caption, message in box.messages.items():
        print(f"{caption!r}: {message}")
    if show:
        display_widget(box)
    return box
