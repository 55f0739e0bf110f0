"""Where the course keeps things: the repository root, ``data/`` and ``build/``."""
from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The course repository: the folder above this package that holds ``pyproject.toml``.

    ``$LECTURE_UTILS_ROOT`` overrides it; without a repository (a plain install) the
    current working directory is used.
    """
    env = os.environ.get("LECTURE_UTILS_ROOT")
    if env:
        return Path(env).expanduser().resolve()
    here = Path(__file__).resolve().parent
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "lecture_utils").is_dir():
            return parent
    return Path.cwd().resolve()


def data_root() -> Path:
    """``$LECTURE_UTILS_DATA`` if set, else the repository's ``data/`` folder."""
    env = os.environ.get("LECTURE_UTILS_DATA")
    return Path(env).expanduser() if env else repo_root() / "data"


def build_dir(*parts: str) -> Path:
    """A folder under the repository's ``build/`` (created on demand)."""
    path = repo_root().joinpath("build", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
