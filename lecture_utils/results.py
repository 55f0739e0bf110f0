"""A notebook's session: version check, budget, device, seed, and its results file.

Every notebook starts with ``nb = lecture_utils.start("01_autoencoders")`` and ends with
``nb.write_results(...)``: the headline numbers go to ``build/results/<stem>.json`` at the
repository root, wherever the notebook runs from, so that tests and the course site read them.
"""
from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .budget import Budget, get_budget, get_device, presenting, seed_everything, use_pretrained
from .data import sources_used
from .paths import build_dir


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
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
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

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def results_path(self) -> Path:
        return build_dir("results") / f"{self.stem}.json"

    def write_results(self, **metrics) -> dict:
        """Write the headline numbers to ``build/results/<stem>.json`` and return them.

        Always included: ``budget``, ``device``, ``data_source``, ``wall_time_s``.
        """
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
        path = self.results_path()
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")
        tmp.replace(path)
        return record

    def pretrained_or_train(self, name: str, build, train, pretrained: bool | None = None):
        """The notebook's main model: loaded from shipped checkpoint ``name`` or trained here.

        ``build()`` returns a fresh model (its architecture must not depend on the budget, so that the
        shipped weights fit); ``train(model)`` trains it in place.  ``pretrained`` (default: the
        session's switch, on in presenter mode) chooses.  Loading verifies the checkpoint's sha256 and
        uses ``weights_only=True``.  Returns the model in eval mode on ``self.device``.
        """
        from .checkpoints import entry, load_shipped
        from .train import load_into

        pretrained = self.pretrained if pretrained is None else pretrained
        model = build()
        if pretrained:
            state = load_shipped(name)
            load_into({"model": model}, state, f"shipped checkpoint {name!r}")
            info = entry(name)
            print(f"[lecture_utils] loaded shipped checkpoint {name!r} (sha256 verified; trained by "
                  f"`{info['trained_by']}`; metrics {info.get('metrics', {})})")
            self.loaded_checkpoints.append(name)
        else:
            train(model)
        return model.to(self.device).eval()

    def save_samples(self, images: torch.Tensor, labels: torch.Tensor | None = None, **more_images) -> Path:
        """Save generated samples to ``build/results/<stem>_samples.npz`` (written atomically).

        ``images``: N x C x H x W floats in [0, 1] (stored as uint8); ``labels``: N ints or None;
        ``more_images``: further named batches of images (e.g. ``unguided=...``), stored as uint8 too.
        """
        arrays = {}
        for name, batch in {"images": images, **more_images}.items():
            if batch.ndim != 4:
                raise ValueError(f"{name} must be N x C x H x W, got shape {tuple(batch.shape)}")
            arrays[name] = (batch.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
        if labels is not None:
            if labels.shape[0] != images.shape[0]:
                raise ValueError(f"labels must have {images.shape[0]} entries, got {labels.shape[0]}")
            arrays["labels"] = labels.detach().cpu().numpy().astype(np.int64)
        path = build_dir("results") / f"{self.stem}_samples.npz"
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
        return path


def start(stem: str, min_version: str = "0.1.0", seed: int = 0) -> Session:
    """Begin a notebook: check the library version, seed everything, print budget and device."""
    require(min_version)
    budget = get_budget()
    device = get_device()
    seed_everything(seed)
    present, pretrained = presenting(), use_pretrained()
    if present:
        use_presenter_style()
    print(f"lecture_utils {__version__} | notebook {stem} | budget {budget.name} | device {device} | "
          f"torch {torch.__version__}" + (" | presenter mode" if present else "")
          + (" | main model: shipped checkpoint" if pretrained else " | main model: trained here"))
    return Session(stem=stem, budget=budget, device=device, seed=seed, present=present, pretrained=pretrained)


def use_presenter_style() -> None:
    """Figure fonts and line widths readable from the back of a lecture hall."""
    import matplotlib

    matplotlib.rcParams.update({
        "font.size": 16, "axes.titlesize": 20, "axes.labelsize": 18, "xtick.labelsize": 14,
        "ytick.labelsize": 14, "legend.fontsize": 14, "figure.titlesize": 22, "lines.linewidth": 2.5,
        "figure.dpi": 110,
    })
