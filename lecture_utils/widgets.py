"""Interactive widgets (ipywidgets) with a static fallback.

Every widget function also draws a static figure when no widget front end exists (an executed
notebook, a PDF, a web page), so the same call teaches in every medium.
"""
from __future__ import annotations

import base64
import functools
import io
import math
from typing import Callable

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch

from . import plotting
from .checks import value_range

# --------------------------------------------------------------------------- latent explorer (notebook 02, reused by 04 and 05)
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
PANEL_PIXELS = 160          # decoded images are scaled up (nearest) to about this many pixels
CAPTION_PIXELS = 20         # the caption strip above the panels


@functools.lru_cache(maxsize=1)
def _caption_font():
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=14)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def _check_codes(name: str, z: torch.Tensor, size: int | None = None) -> torch.Tensor:
    z = torch.as_tensor(z).detach().float().cpu()
    if z.ndim == 2 and z.shape[0] == 1:
        z = z[0]
    if z.ndim != 1 or (size is not None and z.shape[0] != size):
        expected = f"a vector of {size} numbers" if size is not None else "a vector (d,) or 1 x d"
        raise ValueError(f"{name} must be {expected}, got shape {tuple(z.shape)}")
    if not bool(torch.isfinite(z).all()):
        raise ValueError(f"{name} must be finite, got {z.tolist()}")
    return z


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
    a = _check_codes("z_start", z_start)
    b = _check_codes("z_end", z_end, a.shape[0])
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


def _to_pil(image: torch.Tensor, scale: int):
    """One C x H x W image in [0, 1] as an RGB PIL image scaled up ``scale`` times (nearest)."""
    from PIL import Image

    pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8)
    if pixels.shape[0] == 1:
        pixels = pixels.expand(3, -1, -1)
    array = pixels.permute(1, 2, 0).contiguous().numpy()
    picture = Image.fromarray(array, mode="RGB")
    return picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)


def _png(picture) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _figure_png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with ipykernel
        return False
    return get_ipython() is not None


def _show(widget) -> None:
    if _in_ipython():
        from IPython.display import display

        display(widget)


class _StaticFallback:
    """Mixin: the widget's output carries a static PNG beside the widget view (cached)."""

    _static_png_cache: bytes | None = None

    def static_figure(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def static_png(self) -> bytes:
        """The static picture (PNG bytes) shown where no widget front end exists."""
        if self._static_png_cache is None:
            self._static_png_cache = _figure_png(self.static_figure())
        return self._static_png_cache

    def _repr_mimebundle_(self, **kwargs):
        data = super()._repr_mimebundle_(**kwargs) or {"text/plain": repr(self)[:110]}
        data["image/png"] = base64.b64encode(self.static_png()).decode("ascii")
        return data


class InterpolationExplorer(_StaticFallback, widgets.VBox):
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
                z = _check_codes("z", z)
                return next((label for label in labels if torch.equal(_check_codes(label, self.choices[label][0]), z)),
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
        self.z_start = _check_codes("z_start", z_start)
        self.z_end = _check_codes("z_end", z_end, self.z_start.shape[0])
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
        from PIL import Image, ImageDraw

        panels = [_to_pil(self.start_image, self.scale), _to_pil(self.frames[mode][index], self.scale),
                  _to_pil(self.end_image, self.scale)]
        side = panels[0].height
        gap, top = 6, CAPTION_PIXELS
        font = _caption_font()
        canvas = Image.new("RGB", (4 * side + 3 * gap, side + top), "white")
        draw = ImageDraw.Draw(canvas)
        captions = ("start", f"t = {float(self.ts[index]):.2f}", "end", f"path ({mode})")
        for k, caption in enumerate(captions):
            draw.text((k * (side + gap) + 2, 1), caption, fill="black", font=font)
        for k, panel in enumerate(panels):
            canvas.paste(panel, (k * (side + gap), top))
        draw.rectangle([side + gap - 2, top - 2, 2 * side + gap + 1, top + side + 1], outline=(220, 40, 40))
        self._draw_path(draw, (3 * (side + gap), top, side), mode, index)
        return _png(canvas)

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
            draw.text((x + 3, y - 17), label, fill="black", font=_caption_font())

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
        from PIL import Image

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
        show: display it now (in IPython).  Its output carries a static PNG of both paths for
            front ends without widgets (executed notebooks, PDF, web pages).

    Returns:
        the :class:`InterpolationExplorer` (an ``ipywidgets.VBox``).  Set ``explorer.slider.value``
        (t) or ``explorer.mode.value`` to drive it from code.
    """
    explorer = InterpolationExplorer(decode, z_start, z_end, n_frames=n_frames, start_image=start_image,
                                     end_image=end_image, mode=mode, choices=choices, title=title)
    if show:
        _show(explorer)
    return explorer


class LatentSliders(_StaticFallback, widgets.VBox):
    """One slider per chosen latent dimension and the decoded image of the current code.

    Build it with :func:`latent_sliders`.  Attributes: ``sliders`` (list of ``FloatSlider``, one per
    entry of ``dims``), ``dims``, ``image`` (``widgets.Image``), ``code()`` (the current code, d),
    ``current_image()`` (the decoded image, C x H x W) and ``displayed_image()`` (read back from the PNG).
    """

    def __init__(self, decode, z0, dims=None, value_range=(-3.0, 3.0), step: float = 0.1,
                 names=None, continuous_update: bool = True, title: str | None = None):
        self.decode = decode
        self.z0 = _check_codes("z0", z0)
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
        from PIL import Image

        picture = np.asarray(Image.open(io.BytesIO(self.image.value)).convert("RGB"))[::self.scale, ::self.scale]
        pixels = torch.from_numpy(picture.copy()).permute(2, 0, 1).float() / 255
        return pixels[:1] if self._current.shape[0] == 1 else pixels

    def _on_move(self, _change=None) -> None:
        self._current = decode_checked(self.decode, self.code()[None])[0]
        self.image.value = _png(_to_pil(self._current, self.scale))

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
        show: display it now (in IPython); the output carries a static traversal grid as PNG.

    Returns:
        the :class:`LatentSliders` widget; set ``widget.sliders[k].value`` to drive it from code.
    """
    widget = LatentSliders(decode, z0, dims=dims, value_range=value_range, step=step, names=names,
                           continuous_update=continuous_update, title=title)
    if show:
        _show(widget)
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


# --------------------------------------------------------------------------- class picker (notebook 05)
# A class-conditional decoder ``decode(z, labels)`` (codes B x d, labels B int64 -> images B x C x H x W in
# [0, 1]) drives the latent sliders above, with the class as one more control.  Below the sliders, the
# same code z is decoded for *every* class: the class changes, the style the code carries stays.
class ClassConditionalExplorer(_StaticFallback, widgets.VBox):
    """A class picker, latent sliders (a :class:`LatentSliders`) and a strip of the current code in every class.

    Build it with :func:`class_explorer`.  Attributes: ``picker`` (``ToggleButtons`` of the classes),
    ``sliders`` (the :class:`LatentSliders`), ``strip`` (``widgets.Image``: the current z for each class),
    ``code()``, ``label()``, ``current_image()`` and ``strip_images()`` (n_classes x C x H x W).
    """

    def __init__(self, decode, z0, class_names=None, dims=None, value_range=(-3.0, 3.0), step: float = 0.1,
                 n_codes: int = 6, seed: int = 0, title: str | None = None):
        self.decode_conditional = decode
        z0 = _check_codes("z0", z0)
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
        self.strip.value = _png(_to_pil(pixels, scale))

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
        show: display it now (in IPython); its output carries the static grid as PNG.
    """
    widget = ClassConditionalExplorer(decode, z0, class_names=class_names, dims=dims, value_range=value_range,
                                      step=step, n_codes=n_codes, seed=seed, title=title)
    if show:
        _show(widget)
    return widget


# --------------------------------------------------------------------------- image editing explorer (notebook 07)
# Choose a mask or a crop on a test photo and watch the model fill it in.  ``models`` maps each task
# ("inpainting", "colorization", "uncropping") to a trained EditingUNet; the picture shows
# [corrupted input | model | baseline | ground truth] and a line with PSNR on the missing region.
EDITING_CHOICES = ("inpainting: box", "inpainting: strokes", "colorization", "uncropping")


class EditingExplorer(_StaticFallback, widgets.VBox):
    """Controls for a mask or crop on one image, and the models' restoration of it.

    Build it with :func:`editing_explorer`.  Attributes: ``choice`` (``ToggleButtons`` of
    :data:`EDITING_CHOICES`), ``top``, ``left``, ``box_size`` (box position and side, fractions of the image),
    ``stroke_seed`` (which random strokes), ``side`` and ``fraction`` (the cropped band), ``image``
    (``widgets.Image``), ``score`` (``widgets.HTML``); ``mask()`` (1 x 1 x H x W) and ``result()`` (a dict
    with ``corrupted``, ``mask``, ``restored``, ``baseline``, ``target``, ``psnr_model``, ``psnr_baseline``).
    """

    def __init__(self, models: dict, image: torch.Tensor, title: str | None = None):
        from .data.masks import check_colour_images as _check_colour_images

        missing = [t for t in ("inpainting", "colorization", "uncropping") if t not in models]
        if missing:
            raise ValueError(f"models must hold a model for each task; missing {missing}")
        self.models = models
        self.target = _check_colour_images(image, "image")[:1].float().cpu()
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
        from .data import stroke_masks

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
        from .data import degrade
        from .metrics import psnr
        from .restoration import baseline, restore

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
        self.image.value = _png(_to_pil(pixels, scale))
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

    The image is cropped to a multiple of the models' 2**depth.  ``show``: display it now (in IPython);
    its output carries a static figure of all four choices for front ends without widgets.
    """
    widget = EditingExplorer(models, image, title=title)
    if show:
        _show(widget)
    return widget


# --------------------------------------------------------------------------- style and prompt widgets (notebooks 08-09)
# Both widgets draw their static figure first (plt.show(): it is what an executed notebook, a PDF
# or a web page shows), then, inside a running kernel, display the interactive version below it.
def _kernel_running() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with ipykernel
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _image_array(image) -> "np.ndarray":  # noqa: F821 - numpy is imported where it is used
    import torch as _torch

    image = _torch.as_tensor(image).detach().float().cpu()
    image = image[0] if image.ndim == 4 else image
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"an image must be C x H x W (or 1 x C x H x W) with C = 1 or 3, got {tuple(image.shape)}")
    return image.clamp(0, 1).expand(3, -1, -1).permute(1, 2, 0).numpy()


def style_weight_slider(results: dict, content=None, style=None, losses: dict | None = None,
                        interactive: bool | None = None):
    """The style-weight trade-off: ``results`` maps style weights to stylised images (C x H x W in [0, 1]).

    Static figure: [content | one result per weight, increasing | style], with each result's final
    content and style losses under it when ``losses`` (``{weight: {"content": c, "style": s}}``) is
    given.  Interactive (in a running kernel, or ``interactive=True``): a slider over the weights that
    shows one result large.  Returns ``(figure, widget or None)``.
    """
    import matplotlib.pyplot as plt

    if not results:
        raise ValueError("results is empty: give {style weight: image}")
    weights = sorted(results)
    panels = ([("content", content)] if content is not None else []) + \
        [(f"style weight {w:g}", results[w]) for w in weights] + ([("style", style)] if style is not None else [])
    arrays = [(title, _image_array(image)) for title, image in panels]
    fig, axes = plt.subplots(1, len(arrays), figsize=(2.2 * len(arrays), 2.6), squeeze=False)
    for ax, (title, array) in zip(axes[0], arrays):
        ax.imshow(array)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if losses:
        for ax, (title, _) in zip(axes[0], arrays):
            if title.startswith("style weight"):
                w = weights[[f"style weight {v:g}" for v in weights].index(title)]
                if w in losses:
                    ax.set_xlabel(f"content {losses[w]['content']:.3g}\nstyle {losses[w]['style']:.3g}", fontsize=8)
    fig.suptitle("More style weight: more of the style's textures and colours, less of the content's detail")
    fig.tight_layout()
    plt.show()
    if not (interactive if interactive is not None else _kernel_running()):
        return fig, None
    import ipywidgets
    from IPython.display import display

    output = ipywidgets.Output()
    slider = ipywidgets.SelectionSlider(options=[(f"{w:g}", w) for w in weights], value=weights[len(weights) // 2],
                                        description="style weight", continuous_update=True,
                                        layout=ipywidgets.Layout(width="480px"))

    def show(change=None):
        with output:
            output.clear_output(wait=True)
            big, ax = plt.subplots(figsize=(5, 4))
            ax.imshow(_image_array(results[slider.value]))
            ax.set_axis_off()
            note = ""
            if losses and slider.value in losses:
                note = f"  (content {losses[slider.value]['content']:.3g}, style {losses[slider.value]['style']:.3g})"
            ax.set_title(f"style weight {slider.value:g}{note}", fontsize=9)
            plt.show()

    slider.observe(show, names="value")
    box = ipywidgets.VBox([slider, output])
    show()
    if _kernel_running():
        display(box)
    return fig, box


def prompt_box(generate, examples, samples_per_caption: int = 8, interactive: bool | None = None):
    """Type a caption, see samples.  ``generate(caption, n)`` returns n images (n x C x H x W in [0, 1]).

    A caption with unknown words shows the error's message (which names the words and the
    vocabulary; see :class:`~lecture_utils.models.text_to_image.UnknownWordsError`) instead of images.
    Static figure: one row of samples per example caption (captions with unknown words are
    listed with their message).  Interactive (in a running kernel, or ``interactive=True``): a text
    box and a button.  Returns ``(figure or None, widget or None, messages)``, ``messages`` being
    ``{caption: message}`` for the captions that could not be drawn.
    """
    import matplotlib.pyplot as plt

    from . import plotting

    examples = [examples] if isinstance(examples, str) else list(examples)
    rows, labels, messages = [], [], {}
    for caption in examples:
        try:
            rows.append(generate(caption, samples_per_caption))
            labels.append(caption)
        except ValueError as error:
            messages[caption] = str(error)
    for caption, message in messages.items():
        print(f"{caption!r}: {message}")
    fig = None
    if rows:
        fig = plotting.image_rows(rows, labels, title="Samples for each caption", width=11)
        plt.show()
    if not (interactive if interactive is not None else _kernel_running()):
        return fig, None, messages
    import ipywidgets
    from IPython.display import display

    text = ipywidgets.Text(value=examples[0] if examples else "", description="caption",
                           layout=ipywidgets.Layout(width="520px"), continuous_update=False)
    button = ipywidgets.Button(description="draw", button_style="primary")
    output = ipywidgets.Output()

    def draw(_=None):
        with output:
            output.clear_output(wait=True)
            try:
                images = generate(text.value, samples_per_caption)
            except ValueError as error:
                print(error)
                return
            shown, ax = plt.subplots(figsize=(11, 1.8))
            plotting.image_grid(images, nrow=samples_per_caption, title=text.value, ax=ax)
            plt.show()

    button.on_click(draw)
    text.observe(draw, names="value")
    box = ipywidgets.VBox([ipywidgets.HBox([text, button]), output])
    draw()
    if _kernel_running():
        display(box)
    return fig, box, messages


# --------------------------------------------------------------------------- diffusion (notebook 10)
# Both widgets show frames computed once when they are built (a sampling run is seconds, a slider move must not
# be): moving a slider only swaps PNG bytes.
class DiffusionPathSlider(_StaticFallback, widgets.VBox):
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
        self._pngs = [_png(_to_pil(self._panel(i), self.scale)) for i in range(len(self.times))]
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
        show: display it now (in IPython); its output carries a static row of frames as PNG.
    """
    widget = DiffusionPathSlider(times, frames, guesses=guesses, title=title)
    if show:
        _show(widget)
    return widget


class GuidanceExplorer(_StaticFallback, widgets.VBox):
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
        self.image.value = _png(_to_pil(pixels, max(1, round(56 / images.shape[2]))))

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
        _show(widget)
    return widget
