"""The image-editing explorer of notebook 07: draw a mask or a crop, watch the models fill it in."""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch

from .. import plotting
from ..data.masks import check_colour_images, degrade, stroke_masks
from ..metrics import psnr
from ..restoration import baseline, restore
from .base import StaticFallback, display_widget, to_pil, to_png

# Choose a mask or a crop on a test photo and watch the model fill it in.  ``models`` maps each task
# ("inpainting", "colorization", "uncropping") to a trained EditingUNet; the picture shows
# [corrupted input | model | baseline | ground truth] and a line with PSNR on the missing region.
EDITING_CHOICES = ("inpainting: box", "inpainting: strokes", "colorization", "uncropping")


class EditingExplorer(StaticFallback, widgets.VBox):
    """Controls for a mask or crop on one image, and the models' restoration of it.

    Build it with :func:`editing_explorer`.  Attributes: ``choice`` (``ToggleButtons`` of
    :data:`EDITING_CHOICES`), ``top``, ``left``, ``box_size`` (box position and side, fractions of the image),
    ``stroke_seed`` (which random strokes), ``side`` and ``fraction`` (the cropped band), ``image``
    (``widgets.Image``), ``score`` (``widgets.HTML``); ``mask()`` (1 x 1 x H x W) and ``result()`` (a dict
    with ``corrupted``, ``mask``, ``restored``, ``baseline``, ``target``, ``psnr_model``, ``psnr_baseline``).
    """

    def __init__(self, models: dict, image: torch.Tensor, title: str | None = None):
        missing = [t for t in ("inpainting", "colorization", "uncropping") if t not in models]
        if missing:
            raise ValueError(f"models must hold a model for each task; missing {missing}")
        self.models = models
        self.target = check_colour_images(image, "image")[:1].float().cpu()
        multiple = max(2 ** getattr(m, "depth", 0) for m in models.values())
        h, w = self.target.shape[2:]
        self.target = self.target[..., :h - h % multiple, :w - w % multiple]
        for m in models.values():
            if hasattr(m, "check_input"):
                m.check_input(torch.zeros(1, 4, *self.target.shape[2:]))
        self.title = title
        self.choice = widgets.ToggleButtons(options=list(EDITING_CHOICES), value=EDITING_CHOICES[0],
                                            description="task", style={"button_width": "140px"})
        slider = dict(min=0.0, max=1.0, step=0.05, readout_format=".2f", continuous_update=False)
        self.top = widgets.FloatSlider(value=0.3, description="box top", **slider)
        self.left = widgets.FloatSlider(value=0.3, description="box left", **slider)
        self.box_size = widgets.FloatSlider(value=0.35, min=0.1, max=0.6, step=0.05, description="box side",
                                            readout_format=".2f", continuous_update=False)
        self.stroke_seed = widgets.IntSlider(value=0, min=0, max=20, description="strokes #", continuous_update=False)
        self.side = widgets.Dropdown(options=["left", "right", "top", "bottom"], value="right", description="side")
        self.fraction = widgets.FloatSlider(value=0.35, min=0.1, max=0.6, step=0.05, description="band",
                                            readout_format=".2f", continuous_update=False)
        self.image = widgets.Image(format="png")
        self.score = widgets.HTML()
        header = [widgets.HTML(f"<b>{title}</b>")] if title else []
        controls = widgets.HBox([widgets.VBox([self.top, self.left, self.box_size]),
                                 widgets.VBox([self.stroke_seed, self.side, self.fraction])])
        super().__init__(header + [self.choice, controls, self.image, self.score])
        self.add_class("editing-explorer")
        self._result = None
        self._update()
        for control in (self.choice, self.top, self.left, self.box_size, self.stroke_seed, self.side, self.fraction):
            control.observe(self._update, names="value")

    @property
    def task(self) -> str:
        return self.choice.value.split(":")[0]

    def mask(self) -> torch.Tensor:
        """The current mask, 1 x 1 x H x W (1 = missing)."""
        _, _, h, w = self.target.shape
        mask = torch.zeros(1, 1, h, w)
        choice = self.choice.value
        if choice == "inpainting: box":
            bh, bw = max(1, round(self.box_size.value * h)), max(1, round(self.box_size.value * w))
            top = round(self.top.value * (h - bh))
            left = round(self.left.value * (w - bw))
            mask[0, 0, top:top + bh, left:left + bw] = 1
        elif choice == "inpainting: strokes":
            mask = stroke_masks(1, (h, w), seed=int(self.stroke_seed.value), strokes=(2, 3))
        elif choice == "colorization":
            mask = torch.ones(1, 1, h, w)
        else:
            side, fraction = self.side.value, self.fraction.value
            band = max(1, round(fraction * (w if side in ("left", "right") else h)))
            region = {"left": (slice(None), slice(0, band)), "right": (slice(None), slice(w - band, w)),
                      "top": (slice(0, band), slice(None)), "bottom": (slice(h - band, h), slice(None))}[side]
            mask[0, 0][region] = 1
        return mask

    def result(self) -> dict:
        """The last restoration: tensors (1 x C x H x W) and PSNR on the missing region."""
        return self._result

    def _compute(self) -> dict:
        task = self.task
        mask = None if task == "colorization" else self.mask()
        corrupted, mask = degrade(self.target, task, mask=mask)
        restored = restore(self.models[task], task, corrupted, mask)
        simple = baseline(task, corrupted, mask).clamp(0, 1)
        return {"task": task, "corrupted": corrupted, "mask": mask, "restored": restored, "baseline": simple,
                "target": self.target, "psnr_model": psnr(restored, self.target, mask=mask),
                "psnr_baseline": psnr(simple, self.target, mask=mask)}

    def _update(self, _change=None) -> None:
        self._result = r = self._compute()
        shown = r["corrupted"].clone()
        if r["task"] != "colorization":   # show the hole in grey so it is visible
            shown = shown + 0.5 * r["mask"]
        panels = torch.cat([shown, r["restored"], r["baseline"], r["target"]])
        grid = plotting.grid_array(panels, nrow=4, padding=4)
        pixels = torch.from_numpy(np.ascontiguousarray(grid)).permute(2, 0, 1).float()
        scale = max(1, round(160 / self.target.shape[2]))
        self.image.value = to_png(to_pil(pixels, scale))
        self.score.value = (f"input | model | baseline | truth &nbsp;&nbsp; PSNR on the missing region: "
                            f"model <b>{r['psnr_model']:.2f} dB</b>, baseline {r['psnr_baseline']:.2f} dB")

    def static_figure(self):
        """One row per task at the default settings: input, model, baseline, truth."""
        saved = self.choice.value
        rows, labels = [], []
        try:
            for choice in EDITING_CHOICES:
                self.choice.value = choice
                r = self._result
                shown = r["corrupted"] + (0.5 * r["mask"] if r["task"] != "colorization" else 0)
                rows.append(torch.cat([shown, r["restored"], r["baseline"], r["target"]]))
                labels.append(f"{choice}\nmodel {r['psnr_model']:.1f} dB\nbaseline {r['psnr_baseline']:.1f} dB")
        finally:
            self.choice.value = saved
        fig, axes = plt.subplots(len(rows), 1, figsize=(9, 2.4 * len(rows)), squeeze=False)
        for ax, row, label in zip(axes[:, 0], rows, labels):
            ax.imshow(plotting.grid_array(row, nrow=4, padding=4), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_ylabel(label, rotation=0, ha="right", va="center")
        axes[0, 0].set_title("input | model | baseline | truth (PSNR on the missing region)")
        if self.title:
            fig.suptitle(self.title)
        fig.tight_layout()
        return fig


def editing_explorer(models: dict, image: torch.Tensor, title: str | None = None,
                     show: bool = True) -> EditingExplorer:
    """Choose a box, strokes, colorization or a cropped side on ``image`` (3 x H x W in [0, 1], e.g. a crop of
    a test photo) and see ``models[task]`` (trained :class:`~lecture_utils.models.editing.EditingUNet`s for
    "inpainting", "colorization" and "uncropping") fill it in, beside the task's baseline and the truth.

    The image is cropped to a multiple of the models' 2**depth.  ``show``: display it now (in a live kernel);
    its output carries a static figure of all four choices for front ends without widgets.
    """
    widget = EditingExplorer(models, image, title=title)
    if show:
        display_widget(widget)
    return widget
