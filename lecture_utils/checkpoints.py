"""Checkpoints: atomic writes, ``weights_only`` loading with clear errors, and the shipped weights.

:func:`save_checkpoint` writes a state atomically and refuses one with NaN or inf values;
:func:`load_checkpoint` loads with ``weights_only=True``; :func:`load_into` puts a state into named
objects, saying which one does not fit.

``data/checkpoints/manifest.json`` lists each shipped file with its sha256, its size, the command
that trained it and the metrics it reached.  ``load_shipped(name)`` checks the hash before it
loads; a missing, corrupted or mismatched file raises :class:`CheckpointError` saying how to
retrain it.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Mapping

import torch

from .paths import atomic_write, file_lock, repo_root


class DivergenceError(RuntimeError):
    """A loss became NaN or infinite or grew by orders of magnitude, or the weights stopped being finite.

    Raised by the training guard (:func:`lecture_utils.train.fit`) and by :func:`save_checkpoint`; it
    lives here so that ``train`` can import the checkpoint functions without an import cycle.
    """


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupted or does not match the model."""


def _nonfinite_entries(state, prefix: str = "") -> list[str]:
    """Names of the floating-point tensors in a (nested) state that hold a NaN or an inf."""
    tensors, names = [], []

    def walk(value, name):
        if torch.is_tensor(value):
            if value.is_floating_point() and value.numel():
                tensors.append(value.detach())
                names.append(name)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                walk(item, f"{name}[{key!r}]")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(item, f"{name}[{i}]")

    walk(state, prefix)
    if not tensors:
        return []
    finite = torch.stack([torch.isfinite(t).all() for t in tensors]).tolist()      # one sync for all
    return [name for name, ok in zip(names, finite) if not ok]


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write ``state`` to ``path`` atomically: a crash mid-write never leaves a broken file.

    A state with a NaN or inf in any floating-point tensor (weights, optimiser moments) is refused with
    :class:`DivergenceError` and nothing is written, so the file at ``path`` stays the last good checkpoint.
    """
    path = Path(path)
    bad = _nonfinite_entries(state, "state")
    if bad:
        kept = (f"{str(path)!r} still holds the last good checkpoint" if path.exists()
                else "no checkpoint was written")
        raise DivergenceError(f"refusing to write a checkpoint with NaN or infinite values in "
                              f"{', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}; {kept}")
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return atomic_write(path, buffer.getvalue())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint with ``weights_only=True``; a bad file raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {str(path)!r}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is corrupted or not a torch checkpoint ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}); delete it and train again"
        ) from error
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {str(path)!r} holds a {type(state).__name__}, expected a dict")
    return state


def load_into(objects: Mapping[str, object], state: Mapping[str, dict], path: str | Path = "checkpoint") -> None:
    """``load_state_dict`` for each named object, with an error that says which one failed."""
    for name, obj in objects.items():
        if name not in state:
            raise CheckpointError(f"checkpoint {str(path)!r} has no entry {name!r}; it holds {sorted(state)}")
        try:
            obj.load_state_dict(state[name])
        except (RuntimeError, KeyError, ValueError) as error:
            # the whole message: a shape mismatch lists every mismatched tensor on its own line
            raise CheckpointError(
                f"checkpoint {str(path)!r} does not match {name!r}; it was written for another model: delete "
                f"it and train again.\n{type(error).__name__}: {error}"
            ) from error


PACKAGED = Path(__file__).resolve().parent / "shipped" / "checkpoints"


def checkpoints_dir() -> Path:
    """The folder of the shipped checkpoints and their manifest -- the one place that decides it.

    ``$LECTURE_UTILS_CHECKPOINTS`` if set (``scripts/train_checkpoints.py --out`` writes there); else the
    clone's ``data/checkpoints/`` (a clone, or an editable install); else the copy an installed wheel
    carries in ``lecture_utils/shipped/checkpoints/`` (``setup.py`` copies every file the manifest lists,
    so a new checkpoint needs no code change).  Whatever the folder, :func:`load_shipped` checks each
    file's sha256 against the manifest before loading it.
    """
    env = os.environ.get("LECTURE_UTILS_CHECKPOINTS")
    if env:
        return Path(env).expanduser().resolve()
    clone = repo_root() / "data" / "checkpoints"
    if (clone / "manifest.json").is_file() or not (PACKAGED / "manifest.json").is_file():
        return clone
    return PACKAGED


def manifest_path() -> Path:
    return checkpoints_dir() / "manifest.json"


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


REQUIRED_FIELDS = ("file", "sha256")


def read_manifest() -> dict:
    """The manifest as ``{name: entry}`` ({} when there is none); a file that is not a JSON object of
    objects raises :class:`CheckpointError` naming it."""
    path = manifest_path()
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"checkpoint manifest {str(path)!r} is not valid JSON ({error}); restore it "
                              "from git (git checkout -- data/checkpoints/manifest.json)") from error
    if not isinstance(manifest, dict) or not all(isinstance(v, dict) for v in manifest.values()):
        raise CheckpointError(f"checkpoint manifest {str(path)!r} must map each checkpoint name to an object, "
                              f"got {type(manifest).__name__}")
    return manifest


def entry(name: str) -> dict:
    """The manifest's entry for ``name``, with at least its ``file`` and ``sha256``."""
    manifest = read_manifest()
    if name not in manifest:
        raise CheckpointError(f"no shipped checkpoint named {name!r}; the manifest lists {sorted(manifest)}")
    info = manifest[name]
    missing = [key for key in REQUIRED_FIELDS if not isinstance(info.get(key), str) or not info.get(key)]
    if missing:
        raise CheckpointError(f"checkpoint manifest {str(manifest_path())!r}: entry {name!r} has no "
                              f"{' and no '.join(missing)}, so it cannot be verified; retrain it with: "
                              f"{info.get('trained_by', 'the script named in the manifest')}")
    return info


def load_shipped(name: str, map_location="cpu") -> dict:
    """The state stored in shipped checkpoint ``name``, after verifying its sha256."""
    info = entry(name)
    path = checkpoints_dir() / info["file"]
    how = f"retrain it with: {info.get('trained_by', 'the script named in the manifest')}"
    if not path.is_file():
        raise CheckpointError(f"shipped checkpoint {name!r} is missing ({path}); {how}")
    actual = sha256_of(path)
    if actual != info["sha256"]:
        raise CheckpointError(
            f"shipped checkpoint {name!r} ({path}) has sha256 {actual[:12]}..., the manifest expects "
            f"{info['sha256'][:12]}...: the file is corrupted or was replaced; {how}"
        )
    return load_checkpoint(path, map_location=map_location)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"name must be a file name without path separators (e.g. 'vae'), got {name!r}")
    return name


def ship(name: str, state: dict, trained_by: str, metrics: dict, **details) -> dict:
    """Write ``state`` as shipped checkpoint ``name`` (atomically) and record it in the manifest.

    Several processes may ship at once (``scripts/train_checkpoints.py`` trains models in parallel): the
    manifest's read-modify-write holds a lock (``manifest.json.lock``, :func:`~lecture_utils.paths.file_lock`:
    POSIX ``flock``), so no entry is lost, and the manifest is replaced atomically.  ``metrics`` must be
    finite numbers: a NaN cannot be written as JSON, and a shipped model with a NaN metric is not worth
    shipping.
    """
    _check_name(name)
    entry_ = {"trained_by": trained_by, "metrics": metrics, **details}
    try:
        text = json.dumps(entry_, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"the manifest entry of {name!r} must be finite JSON values (metrics {metrics!r}): "
                         f"{error}") from error
    folder = checkpoints_dir()
    path = save_checkpoint(folder / f"{name}.pt", state)
    entry_ = {"file": path.name, "sha256": sha256_of(path), "size_bytes": path.stat().st_size, **json.loads(text)}
    with file_lock(manifest_path().with_name(manifest_path().name + ".lock")):
        manifest = read_manifest()
        manifest[name] = entry_
        atomic_write(manifest_path(), json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return entry_
