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

from .paths import repo_root
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


def read_manifest() -> dict:
    path = manifest_path()
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def entry(name: str) -> dict:
    manifest = read_manifest()
    if name not in manifest:
        raise CheckpointError(f"no shipped checkpoint named {name!r}; the manifest lists {sorted(manifest)}")
    return manifest[name]


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


def ship(name: str, state: dict, trained_by: str, metrics: dict, **details) -> dict:
    """Write ``state`` as shipped checkpoint ``name`` (atomically) and record it in the manifest."""
    folder = checkpoints_dir()
    path = save_checkpoint(folder / f"{name}.pt", state)
    manifest = read_manifest()
    manifest[name] = {"file": path.name, "sha256": sha256_of(path), "size_bytes": path.stat().st_size,
                      "trained_by": trained_by, "metrics": metrics, **details}
    tmp = manifest_path().with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    tmp.replace(manifest_path())
    return manifest[name]
