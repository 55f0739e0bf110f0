"""Where the course keeps things: the repository root, ``data/`` and ``build/``."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
try:
    import msvcrt
except ImportError:  # POSIX
    msvcrt = None


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
    """A folder under ``$LECTURE_UTILS_BUILD`` if set, else under the repository's ``build/`` (created on demand).

    The variable lets a run keep its results apart, as the test suite's presenter-mode runs do.
    """
    env = os.environ.get("LECTURE_UTILS_BUILD")
    path = (Path(env).expanduser() if env else repo_root() / "build").joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a half-written one.

    The data go to a temporary file with a unique name in the same folder (so that several writers at
    once never share one), are flushed to disk, then ``os.replace`` puts the file in place in one step.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


@contextlib.contextmanager
def file_lock(path: str | Path):
    """Hold an exclusive lock on ``path`` (created if needed) for a read-modify-write by several processes.

    POSIX (Linux, macOS): ``fcntl.flock``, released when the block ends or the process dies.  Windows:
    ``msvcrt.locking`` on the first byte, retried until free.  Elsewhere there is no lock, and writers must
    take turns themselves; the writes stay atomic either way (:func:`atomic_write`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        elif msvcrt is not None:
            handle.seek(0)
            while True:
                try:
                    msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:     # LK_LOCK gives up after 10 s; keep waiting
                    continue
            try:
                yield
            finally:
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            yield
