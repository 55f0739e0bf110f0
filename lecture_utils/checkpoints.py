"""Shipped weights: a manifest with sha256 hashes, verified loading, and clear errors.

``data/checkpoints/manifest.json`` lists each shipped file with its sha256, its size, the command
that trained it and the metrics it reached.  ``load_shipped(name)`` checks the hash before it
loads (with ``weights_only=True``); a missing, corrupted or mismatched file raises
:class:`~lecture_utils.train.CheckpointError` saying how to retrain it.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .paths import atomic_write, file_lock, repo_root
from .train import CheckpointError, load_checkpoint, save_checkpoint


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
