"""A notebook's session: version check, budget, device, seed, and its results file.

Every notebook starts with ``nb = lecture_utils.start("01_autoencoders")`` and ends with
``nb.write_results(...)``: the headline numbers go to ``build/results/<stem>.json`` at the
repository root, wherever the notebook runs from, so that tests and the course site read them.
"""
from __future__ import annotations

import io
import json
import math
import os
import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
import torch
from torch import nn

from . import __version__
from .budget import SIZES, Budget, get_budget, get_device, presenting, seed_everything, use_pretrained
from .checkpoints import entry, load_into, load_shipped
from .checks import check_label_shape
from .data import sources_used
from .paths import atomic_write, build_dir


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:3] if part.isdigit())


def require(minimum_version: str) -> None:
    """Raise if the installed lecture_utils is older than the notebook needs."""
    if _version_tuple(__version__) < _version_tuple(minimum_version):
        raise RuntimeError(
            f"this notebook needs lecture_utils >= {minimum_version}, but {__version__} is installed; "
            "rerun the course's set-up command (python3 course.py) to update it"
        )


def _jsonable(value):
    """``value`` as JSON: tensors and arrays become (lists of) numbers, NaN and inf become null."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return _jsonable(value.item() if value.numel() == 1 else value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


@dataclass
class Session:
    """What a notebook needs from the library at the top: its budget, device and sizes."""

    stem: str
    budget: Budget
    device: torch.device
    seed: int
    present: bool = False
    pretrained: bool = False
    loaded_checkpoints: list = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    @property
    def sizes(self):
        return self.budget.sizes(self.stem)

    @property
    def trains_main_model(self) -> bool:
        """Whether this notebook trains its main model: not when checkpoints are used (presenter mode,
        ``LECTURE_UTILS_PRETRAINED=1``) nor when its budget says to load it (``train_main_model``: notebook 10's
        standard budget)."""
        trains = vars(self.sizes).get("train_main_model", True) if self.stem in SIZES else True
        return trains and not self.pretrained

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def __post_init__(self):
        _check_stem(self.stem)

    def results_path(self) -> Path:
        return build_dir("results") / f"{self.stem}.json"

    def write_results(self, **metrics) -> dict:
        """Write the headline numbers to ``build/results/<stem>.json`` (atomically) and return them.

        Always included: ``budget``, ``device``, ``data_source``, ``wall_time_s`` and the other fields of
        :data:`RECORD_FIELDS`, which a metric may not reuse.  Tensors and arrays become numbers or lists;
        a NaN or infinite value is written as ``null`` (JSON has no NaN; the notebook's own asserts are where
        a NaN must fail), so the file is always valid JSON.
        """
        clashes = sorted(set(metrics) & set(RECORD_FIELDS))
        if clashes:
            raise ValueError(f"metric names {clashes} are fields every results record has ({', '.join(RECORD_FIELDS)}); "
                             "give the metrics other names")
        record = {
            "notebook": self.stem,
            "budget": self.budget.name,
            "device": str(self.device),
            "data_source": ", ".join(sources_used()) or "none",
            "wall_time_s": round(self.elapsed(), 2),
            "pretrained": self.loaded_checkpoints,
            "presenter_mode": self.present,
            "lecture_utils": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            **{k: _jsonable(v) for k, v in metrics.items()},
        }
        atomic_write(self.results_path(), json.dumps(record, indent=2, sort_keys=False, allow_nan=False) + "\n")
        return record

    def load_shipped(self, name: str, model: nn.Module) -> nn.Module:
        """Load shipped checkpoint ``name`` into ``model`` (built by the recipe that trained it) and return the
        model in eval mode on this session's device.

        The file's sha256 is checked against the manifest and it is read with ``weights_only=True``; one printed
        line names the checkpoint, the command that trained it and its recorded metrics."""
        load_into({"model": model}, load_shipped(name), f"shipped checkpoint {name!r}")
        info = entry(name)
        print(f"[lecture_utils] loaded shipped checkpoint {name!r} (sha256 verified; trained by "
              f"`{info['trained_by']}`; metrics {info.get('metrics', {})})")
        self.loaded_checkpoints.append(name)
        return model.to(self.device).eval()

    def save_samples(self, images: torch.Tensor, labels: torch.Tensor | None = None,
                     captions: list[str] | None = None, **more_images: torch.Tensor) -> Path:
        """:func:`save_samples` under this notebook's stem."""
        return save_samples(self.stem, images, labels=labels, captions=captions, **more_images)


RECORD_FIELDS = ("notebook", "budget", "device", "data_source", "wall_time_s", "pretrained", "presenter_mode",
                 "lecture_utils", "torch", "python")


def _check_stem(stem: str) -> str:
    # the stem names the results file: it must stay a plain name inside build/results/
    if (not isinstance(stem, str) or not stem.strip() or stem in (".", "..") or "/" in stem or "\\" in stem
            or os.sep in stem or (os.altsep and os.altsep in stem) or "\0" in stem):
        raise ValueError(f"stem must be a notebook name without path separators (e.g. '01_autoencoders'), "
                         f"got {stem!r}")
    return stem


def _check_writable(folder: Path) -> None:
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise RuntimeError(f"the results folder {str(folder)!r} is not writable ({error.strerror}); the notebook "
                           "could not save its results at the end. Make it writable, or set LECTURE_UTILS_ROOT "
                           "to a writable copy of the course") from error


def save_samples(stem: str, images: torch.Tensor, labels: torch.Tensor | None = None,
                 captions: list[str] | None = None, **more_images: torch.Tensor) -> Path:
    """Save generated samples to ``build/results/<stem>_samples.npz``, so anyone can score them.

    ``images``: N x C x H x W floats in [0, 1], stored as uint8 (``images``); ``labels``: N ints (the
    requested classes of a conditional model) or None; ``captions``: N strings (a text-conditional
    model's prompts) or None; ``more_images``: further named batches of images (e.g. ``unguided=...``),
    stored as uint8 too.  The file is written atomically: a unique temporary file, then
    ``os.replace``, so a reader never sees half a file and concurrent writers do not mix.
    """
    arrays = {}
    for name, batch in {"images": images, **more_images}.items():
        if not isinstance(batch, torch.Tensor) or batch.ndim != 4:
            raise ValueError(f"{name} must be an N x C x H x W tensor, got "
                             f"{tuple(batch.shape) if isinstance(batch, torch.Tensor) else type(batch).__name__}")
        arrays[name] = (batch.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    n = images.shape[0]
    if labels is not None:
        check_label_shape(labels, "labels", n)
        arrays["labels"] = labels.detach().cpu().numpy().astype(np.int64)
    if captions is not None:
        if len(captions) != n or not all(isinstance(c, str) for c in captions):
            raise ValueError(f"captions must be {n} strings (one per image), got {len(captions)} items")
        arrays["captions"] = np.array(captions, dtype=np.str_)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return atomic_write(build_dir("results") / f"{stem}_samples.npz", buffer.getvalue())


def start(stem: str, min_version: str = "0.1.0", seed: int = 0) -> Session:
    """Begin a notebook: check the library version, seed everything, print budget and device.

    The environment variables and the results folder are checked here, before any work, so that a typo
    or an unwritable ``build/`` stops the notebook in its first cell rather than after its training runs.
    """
    require(min_version)
    _check_stem(stem)
    budget = get_budget()
    device = get_device()
    try:
        results = build_dir("results")
    except OSError as error:
        raise RuntimeError(f"cannot create the results folder under {str(error.filename)!r} "
                           f"({error.strerror}); set LECTURE_UTILS_ROOT to a writable copy of the course") from error
    _check_writable(results)
    seed_everything(seed)
    present, pretrained = presenting(), use_pretrained()
    if present:
        use_presenter_style()
    session = Session(stem=stem, budget=budget, device=device, seed=seed, present=present, pretrained=pretrained)
    print(f"lecture_utils {__version__} | notebook {stem} | budget {budget.name} | device {device} | "
          f"torch {torch.__version__}" + (" | presenter mode" if present else "")
          + (" | main model: trained here" if session.trains_main_model else " | main model: shipped checkpoint"))
    return session


def use_presenter_style() -> None:
    """Figure fonts and line widths readable from the back of a lecture hall."""
    matplotlib.rcParams.update({
        "font.size": 16, "axes.titlesize": 20, "axes.labelsize": 18, "xtick.labelsize": 14,
        "ytick.labelsize": 14, "legend.fontsize": 14, "figure.titlesize": 22, "lines.linewidth": 2.5,
        "figure.dpi": 110,
    })
