"""The diffusion widgets of notebook 10: one sampling run step by step, and classifier-free guidance."""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import torch

from .. import plotting
from .base import PANEL_PIXELS, StaticFallback, display_widget, to_pil, to_png

# Both widgets show frames computed once when they are built (a sampling run is seconds, a slider move must not
# be): moving a slider only swaps PNG bytes.
class DiffusionPathSlider(StaticFallback, widgets.VBox):
    """A slider over the time steps of one sampling run: the sample x_t and (optionally) the model's guess of
    x_0 at that step.  Build it with :func:`diffusion_path_slider`.  Attributes: ``slider`` (``IntSlider`` over
    the frame index), ``times``, ``frames`` (n x C x H x W in [0, 1]), ``guesses`` (or None), ``image``."""

    def __init__(self, times, frames, guesses=None, title: str | None = None):
        frames = torch.as_tensor(frames).float()
        if frames.ndim != 4 or len(times) != frames.shape[0]:
            raise ValueError(f"frames must be n x C x H x W with one time per frame; got {tuple(frames.shape)} "
                             f"frames and {len(times)} times")
        if guesses is not None and torch.as_tensor(guesses).shape != frames.shape:
            raise ValueError(f"guesses must have the frames' shape {tuple(frames.shape)}, got "
                             f"{tuple(torch.as_tensor(guesses).shape)}")
        self.times, self.title = [int(t) for t in times], title
        self.frames = frames.clamp(0, 1)
        self.guesses = None if guesses is None else torch.as_tensor(guesses).float().clamp(0, 1)
        self.scale = max(1, round(PANEL_PIXELS / frames.shape[2]))
        self._pngs = [to_png(to_pil(self._panel(i), self.scale)) for i in range(len(self.times))]
        self.slider = widgets.IntSlider(value=0, min=0, max=len(self.times) - 1, description="step",
                                        continuous_update=True, readout=False)
        self.caption = widgets.HTML()
        self.image = widgets.Image(format="png")
        header = [widgets.HTML(f"<b>{title}</b>")] if title else []
        super().__init__(header + [self.slider, self.caption, self.image])
        self.add_class("diffusion-path")
        self._on_move()
        self.slider.observe(self._on_move, names="value")

    def _panel(self, i: int) -> torch.Tensor:
        if self.guesses is None:
            return self.frames[i]
        gap = torch.ones(self.frames.shape[1], self.frames.shape[2], 2)
        return torch.cat([self.frames[i], gap, self.guesses[i]], dim=2)

    def _on_move(self, _change=None) -> None:
        i = int(self.slider.value)
        t = self.times[i]
        self.caption.value = (f"t = {t}" if t >= 0 else "t = 0: the sample") + (
            " &nbsp; | left: x<sub>t</sub>, right: the model's guess of x<sub>0</sub>" if self.guesses is not None else "")
        self.image.value = self._pngs[i]

    def current_image(self) -> torch.Tensor:
        """The frame (x_t) shown now, C x H x W in [0, 1]."""
        return self.frames[int(self.slider.value)]

    def static_figure(self):
        """Every frame in a row (and the guesses of x_0 below), t falling from left to right."""
        keep = np.linspace(0, len(self.times) - 1, min(len(self.times), 11)).round().astype(int)
        rows = [self.frames[keep]] + ([self.guesses[keep]] if self.guesses is not None else [])
        names = ["x_t"] + (["guess of x_0"] if self.guesses is not None else [])
        fig = plotting.image_rows(rows, names, title=(self.title or "from noise to a digit") + ": t = "
                                  + ", ".join(str(max(self.times[k], 0)) for k in keep))
        return fig


def diffusion_path_slider(times, frames, guesses=None, title: str | None = None, show: bool = True) -> DiffusionPathSlider:
    """A slider that walks one sample from noise (``times[0]``) to the finished image.

    Args:
        times: the time step of each frame (int; -1 or 0 for the finished sample).
        frames: n x C x H x W images in [0, 1], x_t at each of those steps.
        guesses: optional n x C x H x W, the model's estimate of x_0 at each step (shown beside x_t).
        show: display it now (in a live kernel); its output carries a static row of frames as PNG.
    """
    widget = DiffusionPathSlider(times, frames, guesses=guesses, title=title)
    if show:
        display_widget(widget)
    return widget


class GuidanceExplorer(StaticFallback, widgets.VBox):
    """A class picker and a guidance-scale slider over samples computed once for every (scale, class).

    Build it with :func:`guidance_explorer`.  ``samples[w]`` is n_classes x k x C x H x W (k samples per class, the
    same starting noise for every scale).  Attributes: ``picker``, ``slider`` (``SelectionSlider`` of the scales),
    ``image``, ``current_images()`` (k x C x H x W)."""

    def __init__(self, samples: dict, class_names=None, title: str | None = None):
        if not samples:
            raise ValueError("samples must map at least one guidance scale to images")
        shapes = {tuple(torch.as_tensor(v).shape) for v in samples.values()}
        if len(shapes) != 1 or len(next(iter(shapes))) != 5:
            raise ValueError(f"every samples[w] must be n_classes x k x C x H x W with one shape, got {sorted(shapes)}")
        self.scales = sorted(float(w) for w in samples)
        self.samples = {float(w): torch.as_tensor(v).float().clamp(0, 1) for w, v in samples.items()}
        n_classes = next(iter(shapes))[0]
        self.class_names = [str(c) for c in (range(n_classes) if class_names is None else class_names)]
        self.title = title
        self.picker = widgets.ToggleButtons(options=[(name, i) for i, name in enumerate(self.class_names)],
                                            value=0, description="class", style={"button_width": "34px"})
        self.slider = widgets.SelectionSlider(options=[(f"{w:g}", w) for w in self.scales], value=self.scales[0],
                                              description="w", continuous_update=True)
        self.image = widgets.Image(format="png")
        header = [widgets.HTML(f"<b>{title}</b>")] if title else []
        super().__init__(header + [self.picker, self.slider, self.image])
        self.add_class("guidance-explorer")
        self._on_change()
        self.picker.observe(self._on_change, names="value")
        self.slider.observe(self._on_change, names="value")

    def current_images(self) -> torch.Tensor:
        return self.samples[float(self.slider.value)][int(self.picker.value)]

    def _on_change(self, _change=None) -> None:
        images = self.current_images()
        grid = plotting.grid_array(images, nrow=images.shape[0], padding=1)
        pixels = torch.from_numpy(np.ascontiguousarray(grid)).permute(2, 0, 1).float()
        self.image.value = to_png(to_pil(pixels, max(1, round(56 / images.shape[2]))))

    def static_figure(self):
        """One row per guidance scale: the first sample of every class."""
        rows = [self.samples[w][:, 0] for w in self.scales]
        return plotting.image_rows(rows, [f"w = {w:g}" for w in self.scales],
                                   title=(self.title or "classifier-free guidance")
                                   + ": one row per guidance scale, one class per column")


def guidance_explorer(samples: dict, class_names=None, title: str | None = None, show: bool = True) -> GuidanceExplorer:
    """Pick a class and a guidance scale w; see the samples drawn with that w (precomputed, see
    :class:`GuidanceExplorer`).  The output carries a static grid (scales x classes) as PNG."""
    widget = GuidanceExplorer(samples, class_names=class_names, title=title)
    if show:
        display_widget(widget)
    return widget
