"""Walking through latent space (notebook 02, reused by 04 and 05): the interpolation explorer, latent
sliders, and picking endpoints among encoded test images."""
from __future__ import annotations

import io
import math
from typing import Callable

import ipywidgets as widgets
import numpy as np
import torch
from PIL import Image, ImageDraw

from .. import plotting
from .base import (CAPTION_PIXELS, PANEL_PIXELS, StaticFallback, caption_font, check_codes, decode_checked,
                   display_widget, to_pil, to_png)

# The explorers work with any decoder: a function ``decode(z)`` from codes (B x d float tensor) to
# images (B x C x H x W floats in [0, 1], C = 1 or 3).  A VAE passes ``vae.decode_images``, a GAN
# its generator (rescaled to [0, 1]), a class-conditional model ``lambda z: g(z, label)``.
#
# Speed: the interpolation explorer decodes and encodes every frame as a PNG once, when it is
# built (and when an endpoint changes), so a slider move only swaps bytes (well under 1 ms of
# Python; benchmarks/bench_widgets.py measures it).  The latent sliders decode one code per move.
#
# Without a widget front end (an executed notebook, a PDF, a web page), a widget's output still
# carries a static PNG of the path next to the widget view: front ends that can draw the widget
# draw it, the others show the picture.
INTERPOLATION_MODES = ("linear", "spherical")


def interpolate(z_start: torch.Tensor, z_end: torch.Tensor, t, mode: str = "linear") -> torch.Tensor:
    """Points on the path from ``z_start`` to ``z_end`` (vectors of d numbers) at times ``t`` in [0, 1].

    ``mode="linear"``: (1 - t) z_start + t z_end, a straight line (its midpoint is shorter than
    either end, a region the prior N(0, I) rarely samples in high dimensions).
    ``mode="spherical"`` (slerp, Shoemake 1985; White 2016 for generative models): moves along the
    great circle between the directions of the two codes while the norm changes linearly, so every
    point has a typical norm.  Returns len(t) x d.
    """
    if mode not in INTERPOLATION_MODES:
        raise ValueError(f"mode must be one of {INTERPOLATION_MODES}, got {mode!r}")
    a = check_codes("z_start", z_start)
    b = check_codes("z_end", z_end, a.shape[0])
    t = torch.as_tensor(t, dtype=torch.float32).reshape(-1, 1)
    if mode == "linear":
        return (1 - t) * a + t * b
    norm_a, norm_b = a.norm(), b.norm()
    if float(norm_a) == 0 or float(norm_b) == 0:
        return (1 - t) * a + t * b
    unit_a, unit_b = a / norm_a, b / norm_b
    omega = torch.arccos((unit_a @ unit_b).clamp(-1, 1))
    if float(omega) < 1e-4:  # (nearly) the same direction: slerp is the straight line
        direction = (1 - t) * unit_a + t * unit_b
    else:
        direction = (torch.sin((1 - t) * omega) * unit_a + torch.sin(t * omega) * unit_b) / torch.sin(omega)
    return direction * ((1 - t) * norm_a + t * norm_b)


class InterpolationExplorer(StaticFallback, widgets.VBox):
    """A slider over t in [0, 1] between two latent codes, a linear/spherical toggle, and a picture
    of [start | decoded image at t | end | the path in the plane of the two codes].

    Build it with :func:`interpolation_explorer`.  Attributes a test or a notebook may use:

    * ``slider`` (``FloatSlider``, t), ``mode`` (``ToggleButtons``: ``"linear"``/``"spherical"``),
      ``image`` (``widgets.Image``, the PNG shown), ``start_picker``/``end_picker`` (Dropdowns,
      only with ``choices``);
    * ``ts`` (n_frames,), ``codes[mode]`` (n_frames x d), ``frames[mode]`` (n_frames x C x H x W
      in [0, 1]);
    * ``frame_index``, ``current_code()``, ``current_image()``, ``displayed_image()``.
    """

    def __init__(self, decode, z_start, z_end, n_frames: int = 25, start_image=None, end_image=None,
                 mode: str = "linear", choices: dict | None = None, title: str | None = None):
        if not isinstance(n_frames, int) or n_frames < 2:
            raise ValueError(f"n_frames must be an int >= 2, got {n_frames!r}")
        if mode not in INTERPOLATION_MODES:
            raise ValueError(f"mode must be one of {INTERPOLATION_MODES}, got {mode!r}")
        self.decode = decode
        self.n_frames = n_frames
        self.ts = torch.linspace(0, 1, n_frames)
        self.title = title
        self.choices = {} if choices is None else dict(choices)
        self.slider = widgets.FloatSlider(value=0.0, min=0.0, max=1.0, step=1.0 / (n_frames - 1),
                                          description="t", readout_format=".2f", continuous_update=True,
                                          layout=widgets.Layout(width="420px"))
        self.mode = widgets.ToggleButtons(options=list(INTERPOLATION_MODES), value=mode,
                                          description="path", style={"button_width": "90px"})
        self.image = widgets.Image(format="png")
        self.image.add_class("latent-explorer-image")
        controls = [self.slider, self.mode]
        self.start_picker = self.end_picker = None
        if self.choices:
            labels = list(self.choices)
            def label_of(z, default):  # the choice whose code is this endpoint, if any
                z = check_codes("z", z)
                return next((label for label in labels if torch.equal(check_codes(label, self.choices[label][0]), z)),
                            default)

            self.start_picker = widgets.Dropdown(options=labels, value=label_of(z_start, labels[0]),
                                                 description="from")
            self.end_picker = widgets.Dropdown(options=labels, value=label_of(z_end, labels[min(1, len(labels) - 1)]),
                                               description="to")
            controls.insert(0, widgets.HBox([self.start_picker, self.end_picker]))
        header = [widgets.HTML(f"<b>{title}</b>")] if title else []
        super().__init__(header + controls + [self.image])
        self.add_class("latent-explorer")
        self.set_endpoints(z_start, z_end, start_image, end_image)
        self.slider.observe(self._on_move, names="value")
        self.mode.observe(self._on_move, names="value")
        if self.choices:
            self.start_picker.observe(self._on_pick, names="value")
            self.end_picker.observe(self._on_pick, names="value")

    # ---------------------------------------------------------------- endpoints and frames
    def set_endpoints(self, z_start, z_end, start_image=None, end_image=None) -> None:
        """New endpoints: decode both paths, render every frame, and show the current t."""
        self.z_start = check_codes("z_start", z_start)
        self.z_end = check_codes("z_end", z_end, self.z_start.shape[0])
        self.codes = {m: interpolate(self.z_start, self.z_end, self.ts, m) for m in INTERPOLATION_MODES}
        decoded = decode_checked(self.decode, torch.cat([self.codes[m] for m in INTERPOLATION_MODES]))
        self.frames = dict(zip(INTERPOLATION_MODES, decoded.split(self.n_frames)))
        shape = tuple(decoded.shape[1:])
        ends = []
        for name, given, fallback in (("start_image", start_image, 0), ("end_image", end_image, -1)):
            if given is None:
                ends.append(self.frames["linear"][fallback])
                continue
            given = torch.as_tensor(given).detach().float().cpu()
            given = given[0] if given.ndim == 4 else given
            if tuple(given.shape) != shape:
                raise ValueError(f"{name} must have the decoder's image shape {shape}, got {tuple(given.shape)}")
            ends.append(given.clamp(0, 1))
        self.start_image, self.end_image = ends
        self.scale = max(1, round(PANEL_PIXELS / shape[1]))
        basis = self._plane_basis().numpy()
        self._planar = {m: (self.codes[m].numpy() @ basis.T).tolist() for m in INTERPOLATION_MODES}  # n x 2
        self._pngs = {m: [self._render(m, i) for i in range(self.n_frames)] for m in INTERPOLATION_MODES}
        self._static_png_cache = None
        self.image.layout.width = f"{4 * self.scale * shape[1] + 18}px"  # natural size: crisp pixels
        self._on_move()

    def _on_pick(self, _change=None) -> None:
        (z_start, image_start), (z_end, image_end) = (self.choices[self.start_picker.value],
                                                      self.choices[self.end_picker.value])
        self.set_endpoints(z_start, z_end, image_start, image_end)

    def _plane_basis(self) -> torch.Tensor:
        """An orthonormal basis (2 x d) of the plane through 0, z_start and z_end: both paths lie in it."""
        a, b = self.z_start, self.z_end
        first = a if float(a.norm()) > 0 else (b if float(b.norm()) > 0 else torch.eye(a.shape[0])[0])
        first = first / first.norm()
        second = b - (b @ first) * first
        if float(second.norm()) < 1e-6:
            second = torch.zeros_like(first)
        else:
            second = second / second.norm()
        return torch.stack([first, second])

    # ---------------------------------------------------------------- drawing
    def _render(self, mode: str, index: int):
        """The PNG bytes for one frame: [start | decoded | end | path]."""
        panels = [to_pil(self.start_image, self.scale), to_pil(self.frames[mode][index], self.scale),
                  to_pil(self.end_image, self.scale)]
        side = panels[0].height
        gap, top = 6, CAPTION_PIXELS
        font = caption_font()
        canvas = Image.new("RGB", (4 * side + 3 * gap, side + top), "white")
        draw = ImageDraw.Draw(canvas)
        captions = ("start", f"t = {float(self.ts[index]):.2f}", "end", f"path ({mode})")
        for k, caption in enumerate(captions):
            draw.text((k * (side + gap) + 2, 1), caption, fill="black", font=font)
        for k, panel in enumerate(panels):
            canvas.paste(panel, (k * (side + gap), top))
        draw.rectangle([side + gap - 2, top - 2, 2 * side + gap + 1, top + side + 1], outline=(220, 40, 40))
        self._draw_path(draw, (3 * (side + gap), top, side), mode, index)
        return to_png(canvas)

    def _draw_path(self, draw, box, mode: str, index: int) -> None:
        left, top, side = box
        planar = self._planar
        typical = math.sqrt(self.z_start.shape[0])   # the norm of a typical N(0, I) sample
        extent = max([typical] + [abs(c) for m in INTERPOLATION_MODES for p in planar[m] for c in p]) * 1.15

        def to_pixels(point):
            x = left + (point[0] / extent + 1) / 2 * (side - 1)
            y = top + (1 - (point[1] / extent + 1) / 2) * (side - 1)
            return x, y

        draw.rectangle([left, top, left + side - 1, top + side - 1], outline=(200, 200, 200))
        cx, cy = to_pixels((0, 0))
        r = typical / extent * (side - 1) / 2
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=(170, 170, 170))
        draw.line([to_pixels((-extent, 0)), to_pixels((extent, 0))], fill=(225, 225, 225))
        draw.line([to_pixels((0, -extent)), to_pixels((0, extent))], fill=(225, 225, 225))
        colours = {"linear": (31, 119, 180), "spherical": (255, 127, 14)}
        for m in INTERPOLATION_MODES:
            draw.line([to_pixels(p) for p in planar[m]], fill=colours[m], width=3 if m == mode else 1)
        x, y = to_pixels(planar[mode][index])
        draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=(220, 40, 40))
        for point, label in ((planar[mode][0], "A"), (planar[mode][-1], "B")):
            x, y = to_pixels(point)
            draw.text((x + 3, y - 17), label, fill="black", font=caption_font())

    def static_figure(self):
        """Film strips of both paths (every frame, or 13 of them), with the endpoints."""
        pick = torch.linspace(0, self.n_frames - 1, min(self.n_frames, 13)).round().long()
        rows = [torch.cat([self.start_image[None], self.frames[m][pick], self.end_image[None]])
                for m in INTERPOLATION_MODES]
        return plotting.image_rows(rows, [f"{m}\n(start, t = 0..1, end)" for m in INTERPOLATION_MODES],
                                   title=self.title or "latent interpolation")

    # ---------------------------------------------------------------- state
    @property
    def frame_index(self) -> int:
        """The frame shown: the slider's t rounded to the nearest precomputed time."""
        return int(round(float(self.slider.value) * (self.n_frames - 1)))

    def current_code(self) -> torch.Tensor:
        """The latent code at the slider's t on the chosen path (d,)."""
        return self.codes[self.mode.value][self.frame_index]

    def current_image(self) -> torch.Tensor:
        """The decoded image at the slider's t (C x H x W in [0, 1])."""
        return self.frames[self.mode.value][self.frame_index]

    def displayed_image(self) -> torch.Tensor:
        """The decoded image read back from the PNG on display (C x H x W in [0, 1], 8-bit levels)."""
        picture = np.asarray(Image.open(io.BytesIO(self.image.value)).convert("RGB"))
        _, h, w = self.current_image().shape
        side, gap, top = h * self.scale, 6, CAPTION_PIXELS
        crop = picture[top:top + side, side + gap:side + gap + w * self.scale][::self.scale, ::self.scale]
        pixels = torch.from_numpy(crop.copy()).permute(2, 0, 1).float() / 255
        return pixels[:1] if self.current_image().shape[0] == 1 else pixels

    def _on_move(self, _change=None) -> None:
        self.image.value = self._pngs[self.mode.value][self.frame_index]


def interpolation_explorer(decode: Callable[[torch.Tensor], torch.Tensor], z_start: torch.Tensor,
                           z_end: torch.Tensor, n_frames: int = 25, start_image: torch.Tensor | None = None,
                           end_image: torch.Tensor | None = None, mode: str = "linear",
                           choices: dict | None = None, title: str | None = None,
                           show: bool = True) -> InterpolationExplorer:
    """An interactive walk through latent space from ``z_start`` to ``z_end``, for any decoder.

    Args:
        decode: codes (B x d float tensor) -> images (B x C x H x W in [0, 1], C = 1 or 3), e.g.
            ``vae.decode_images``, ``lambda z: (generator(z) + 1) / 2``.  Called under no_grad with
            CPU tensors; move them to your model's device inside ``decode`` if needed.
        z_start, z_end: the two codes, vectors of d numbers (or 1 x d).
        n_frames: precomputed frames per path (the slider's steps).  All 2 x n_frames frames are
            decoded and rendered when the explorer is built, so moving the slider costs no decode.
        start_image, end_image: images (C x H x W or 1 x C x H x W) shown at the ends, e.g. the test
            digits that were encoded; default: the decoded endpoints.
        mode: the initial path, ``"linear"`` or ``"spherical"`` (see :func:`interpolate`).
        choices: optional ``{label: (code, image or None)}`` (see :func:`endpoint_choices`); adds two
            drop-downs that pick the endpoints among them (changing one re-decodes the frames).
        title: a line above the widget and on the static figure.
        show: display it now (in a live kernel).  Its output carries a static PNG of both paths for
            front ends without widgets (executed notebooks, PDF, web pages).

    Returns:
        the :class:`InterpolationExplorer` (an ``ipywidgets.VBox``).  Set ``explorer.slider.value``
        (t) or ``explorer.mode.value`` to drive it from code.
    """
    explorer = InterpolationExplorer(decode, z_start, z_end, n_frames=n_frames, start_image=start_image,
                                     end_image=end_image, mode=mode, choices=choices, title=title)
    if show:
        display_widget(explorer)
    return explorer


class LatentSliders(StaticFallback, widgets.VBox):
    """One slider per chosen latent dimension and the decoded image of the current code.

    Build it with :func:`latent_sliders`.  Attributes: ``sliders`` (list of ``FloatSlider``, one per
    entry of ``dims``), ``dims``, ``image`` (``widgets.Image``), ``code()`` (the current code, d),
    ``current_image()`` (the decoded image, C x H x W) and ``displayed_image()`` (read back from the PNG).
    """

    def __init__(self, decode, z0, dims=None, value_range=(-3.0, 3.0), step: float = 0.1,
                 names=None, continuous_update: bool = True, title: str | None = None):
        self.decode = decode
        self.z0 = check_codes("z0", z0)
        d = self.z0.shape[0]
        dims = list(range(min(d, 8))) if dims is None else [int(i) for i in dims]
        if not dims or any(not 0 <= i < d for i in dims) or len(set(dims)) != len(dims):
            raise ValueError(f"dims must be distinct indices in [0, {d - 1}], got {dims}")
        low, high = map(float, value_range)
        if not low < high:
            raise ValueError(f"value_range must be (low, high) with low < high, got {value_range!r}")
        names = [f"z[{i}]" for i in dims] if names is None else list(names)
        if len(names) != len(dims):
            raise ValueError(f"names must have {len(dims)} entries (one per slider), got {len(names)}")
        self.dims, self.value_range, self.title = dims, (low, high), title
        self.sliders = [widgets.FloatSlider(value=min(max(float(self.z0[i]), low), high), min=low, max=high,
                                            step=step, description=name, readout_format=".2f",
                                            continuous_update=continuous_update)
                        for i, name in zip(dims, names)]
        self.image = widgets.Image(format="png")
        self.image.add_class("latent-sliders-image")
        first = decode_checked(decode, self.code()[None])[0]
        self.scale = max(1, round(PANEL_PIXELS / first.shape[1]))
        self.image.layout.width = f"{self.scale * first.shape[2]}px"
        header = [widgets.HTML(f"<b>{title}</b>")] if title else []
        super().__init__(header + [widgets.HBox([widgets.VBox(self.sliders), self.image])])
        self.add_class("latent-sliders")
        self._current = first
        self._on_move()
        for slider in self.sliders:
            slider.observe(self._on_move, names="value")

    def code(self) -> torch.Tensor:
        """The current code: z0 with the sliders' values in their dimensions (d,)."""
        z = self.z0.clone()
        for i, slider in zip(self.dims, self.sliders):
            z[i] = float(slider.value)
        return z

    def current_image(self) -> torch.Tensor:
        return self._current

    def displayed_image(self) -> torch.Tensor:
        picture = np.asarray(Image.open(io.BytesIO(self.image.value)).convert("RGB"))[::self.scale, ::self.scale]
        pixels = torch.from_numpy(picture.copy()).permute(2, 0, 1).float() / 255
        return pixels[:1] if self._current.shape[0] == 1 else pixels

    def _on_move(self, _change=None) -> None:
        self._current = decode_checked(self.decode, self.code()[None])[0]
        self.image.value = to_png(to_pil(self._current, self.scale))

    def static_figure(self):
        """A traversal: one row per slider, its dimension swept over ``value_range`` (others at z0)."""
        values = torch.linspace(*self.value_range, 9)
        rows = []
        for i in self.dims:
            codes = self.z0.repeat(len(values), 1)
            codes[:, i] = values
            rows.append(decode_checked(self.decode, codes))
        labels = [f"{s.description}" for s in self.sliders]
        title = self.title or "latent traversal"
        return plotting.image_rows(rows, labels, title=f"{title}: each row sweeps one dimension "
                                                       f"from {self.value_range[0]:g} to {self.value_range[1]:g}")


def latent_sliders(decode: Callable[[torch.Tensor], torch.Tensor], z0: torch.Tensor, dims=None,
                   value_range: tuple[float, float] = (-3.0, 3.0), step: float = 0.1, names=None,
                   continuous_update: bool = True, title: str | None = None,
                   show: bool = True) -> LatentSliders:
    """Per-dimension sliders for a small latent space, for any decoder.

    Args:
        decode: codes (B x d) -> images (B x C x H x W in [0, 1]), as for :func:`interpolation_explorer`.
        z0: the starting code (d,); dimensions without a slider stay at z0.
        dims: which dimensions get a slider (default: the first min(d, 8)).
        value_range, step: each slider's range and step (absolute values of z[i]).
        names: slider labels (default ``z[i]``).
        continuous_update: decode while dragging (one decode per move; set False for slow decoders).
        show: display it now (in a live kernel); the output carries a static traversal grid as PNG.

    Returns:
        the :class:`LatentSliders` widget; set ``widget.sliders[k].value`` to drive it from code.
    """
    widget = LatentSliders(decode, z0, dims=dims, value_range=value_range, step=step, names=names,
                           continuous_update=continuous_update, title=title)
    if show:
        display_widget(widget)
    return widget


@torch.no_grad()
def code_of(encode: Callable, images: torch.Tensor, labels: torch.Tensor | None = None,
            index: int | None = None, digit: int | None = None, occurrence: int = 0):
    """The code and image of one example, chosen by ``index`` or by ``digit`` (its ``occurrence``-th
    example of that class).  ``encode`` maps images (1 x C x H x W) to codes (1 x d) or to
    ``(mean, logvar)`` (a VAE's ``encode``: the mean is used).  Returns ``(code (d,), image (C x H x W))``."""
    if (index is None) == (digit is None):
        raise ValueError("give exactly one of index= or digit=")
    if digit is not None:
        if labels is None:
            raise ValueError("digit= needs labels")
        where = torch.nonzero(torch.as_tensor(labels) == digit).flatten()
        if len(where) <= occurrence:
            raise ValueError(f"digit {digit} occurs {len(where)} times, cannot take occurrence {occurrence}")
        index = int(where[occurrence])
    if not 0 <= index < images.shape[0]:
        raise ValueError(f"index must be in [0, {images.shape[0] - 1}], got {index}")
    image = images[index:index + 1]
    code = encode(image)
    code = code[0] if isinstance(code, (tuple, list)) else code
    return code.detach().float().cpu()[0], image[0].detach().float().cpu()


def endpoint_choices(encode: Callable, images: torch.Tensor, labels: torch.Tensor,
                     per_class: int = 1) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{"digit c (#i)": (code, image)}`` for the first ``per_class`` examples of each class, for the
    ``choices`` of :func:`interpolation_explorer`."""
    choices = {}
    for c in sorted(set(torch.as_tensor(labels).tolist())):
        where = torch.nonzero(torch.as_tensor(labels) == c).flatten()
        for k in range(min(per_class, len(where))):
            code, image = code_of(encode, images, labels, digit=c, occurrence=k)
            choices[f"digit {c} (#{int(where[k])})"] = (code, image)
    return choices
